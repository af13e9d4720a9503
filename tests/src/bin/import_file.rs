//! Writes a JSON Lines import file of N accounts to standard output, for the
//! import benchmark (`bash scripts/bench --import`): the hashes cycle through
//! every fixture format of tests/fixtures/legacy-hashes, every account has an
//! external id, one in ten an 80-bit authenticator, one in twenty no password.
//!
//!     import_file 100000 > accounts.jsonl

use std::io::Write;

fn main() -> std::io::Result<()> {
    let count: usize = match std::env::args().nth(1).map(|n| n.parse()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("usage: import_file COUNT > FILE.jsonl");
            std::process::exit(2);
        }
    };
    let hashes: Vec<String> = include_str!("../../fixtures/legacy-hashes/hashes.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["hash"].as_str().map(str::to_owned))
        .collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..count {
        let mut record = serde_json::json!({
            "email": format!("customer{i}@example.com"),
            "name": format!("Customer {i}"),
            "email_verified": i % 3 != 0,
            "created_at": "2019-03-04T05:06:07Z",
            "external_id": format!("{}", 100_000 + i),
            "portal": "default",
        });
        if i % 20 != 19 {
            record["password_hash"] = hashes[i % hashes.len()].clone().into();
        }
        if i % 10 == 3 {
            record["totp_secret"] = "33VZEXI5ORWAKYWH".into();
        }
        writeln!(out, "{record}")?;
    }
    out.flush()
}

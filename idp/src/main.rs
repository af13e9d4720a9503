//! `idp`: parses the command line and hands over to [`idp::cli`].

use std::process::ExitCode;

use clap::Parser;

/// mimalloc gives the 19 MiB argon2 buffers back to the OS after each hash;
/// glibc's malloc kept them in per-thread arenas (hundreds of MB after a
/// burst of sign-ins, see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = idp::cli::Cli::parse();
    // Few blocking threads: argon2 runs there (bounded by its own semaphore), and
    // each extra thread would keep its own malloc arena of 19 MiB hash buffers.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(idp::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, but for a TOML syntax error, whose caret line points
            // at the mistake.
            let text = match &e {
                idp::cli::CliError::Config(idp::config::ConfigError::Syntax(_)) => e.to_string(),
                _ => e.to_string().replace('\n', " "),
            };
            eprintln!("error: {text}");
            ExitCode::FAILURE
        }
    }
}

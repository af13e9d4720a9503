//! docs/security.md has one row per route: which attack classes apply and how
//! the route is protected. This test reads every route the code declares
//! (the provider's routers, the admin API's OpenAPI paths, the console's
//! router) and fails when one has no row, so a new endpoint cannot ship
//! without someone writing down how it is protected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `pub const NAME: &str = "/path";` (or `= OTHER;`) in `source`.
fn constants(source: &str) -> BTreeMap<String, String> {
    let mut raw = BTreeMap::new();
    for line in source.lines() {
        let line = line.trim();
        let Some(rest) = line
            .strip_prefix("pub const ")
            .or_else(|| line.strip_prefix("const "))
        else {
            continue;
        };
        let Some((name, value)) = rest.split_once(": &str = ") else {
            continue;
        };
        raw.insert(
            name.trim().to_owned(),
            value.trim_end_matches(';').trim().to_owned(),
        );
    }
    let mut resolved = BTreeMap::new();
    for (name, value) in &raw {
        let value = match value.strip_prefix('"') {
            Some(v) => v.trim_end_matches('"').to_owned(),
            None => raw
                .get(value)
                .map(|v| v.trim_matches('"').to_owned())
                .unwrap_or_default(),
        };
        resolved.insert(name.clone(), value);
    }
    resolved
}

/// The first argument of every `.route(` call in `source`.
fn route_arguments(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let arg: String = rest
            .trim_start()
            .chars()
            .take_while(|c| *c != ',')
            .collect();
        found.push(arg.trim().to_owned());
    }
    found
}

/// Every route path the code declares.
fn declared_routes() -> BTreeSet<String> {
    let root = root();
    let paths = constants(&std::fs::read_to_string(root.join("idp/src/web/paths.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(&root.join("idp/src"), &mut files);
    rust_files(&root.join("admin/src"), &mut files);
    let mut routes = BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let local = constants(&source);
        for arg in route_arguments(&source) {
            let path = if let Some(literal) = arg.strip_prefix('"') {
                literal.trim_end_matches('"').to_owned()
            } else if let Some((_, name)) = arg.rsplit_once("paths::") {
                paths.get(name).cloned().unwrap_or_default()
            } else {
                local.get(&arg).cloned().unwrap_or_default()
            };
            assert!(
                path.starts_with('/'),
                "{}: cannot tell the path of route({arg})",
                file.display()
            );
            routes.insert(path);
        }
        // The admin API's operations are declared by their OpenAPI path.
        for piece in source.split("path = \"").skip(1) {
            if let Some((path, _)) = piece.split_once('"')
                && path.starts_with("/admin/api/")
            {
                routes.insert(path.to_owned());
            }
        }
    }
    routes
}

#[test]
fn every_route_has_a_row_in_the_security_table() {
    let doc = std::fs::read_to_string(root().join("docs/security.md")).unwrap();
    let routes = declared_routes();
    assert!(
        routes.len() > 60,
        "the scan found too few routes to be right: {routes:?}"
    );
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| !doc.contains(&format!("| `{r}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/security.md has no row for these routes: {missing:?}"
    );
}

#[test]
fn the_scan_sees_routes_of_each_kind() {
    let routes = declared_routes();
    for expected in [
        "/authorize",
        "/.well-known/openid-configuration",
        "/login",
        "/admin/api/users/{id}/unlock",
        "/admin/api/openapi.json",
        "/admin/users/{id}",
    ] {
        assert!(
            routes.contains(expected),
            "{expected} not found in {routes:?}"
        );
    }
}

//! What can go wrong reading the configuration, and a figment error put in
//! words an operator reads.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} not found")]
    Missing(PathBuf),
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A TOML syntax error: several lines, the last ones pointing at the
    /// mistake with a caret (`^`), kept as they are.
    #[error("invalid configuration: {0}")]
    Syntax(String),
    #[error("invalid configuration: {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// A section's own check, whose message already names the key
    /// (`password_policy.min_strength: must be between 0 and 4`).
    #[error("invalid configuration: {0}")]
    Rule(String),
}

pub(super) fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// A figment error as an operator reads it: the key, what was expected in
/// words (never a Rust type name), what was found, and where it came from
/// (the file, or the environment variable). A TOML syntax error keeps its
/// lines, caret included.
pub(super) fn explain(error: figment::Error, from_env: &[(String, String)]) -> ConfigError {
    use figment::error::Kind;
    let mut lines = Vec::new();
    for e in error {
        let key = e.path.join(".");
        let origin = match e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
            Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
            _ => from_env
                .iter()
                .rev()
                .find(|(k, _)| *k == key || key.starts_with(&format!("{k}.")))
                .map(|(_, var)| format!(" (from {var})"))
                .unwrap_or_default(),
        };
        if let Kind::Message(message) = &e.kind
            && message.contains("TOML parse error")
        {
            let file = match e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
                Some(figment::Source::File(path)) => format!("{}: ", path.display()),
                _ => String::new(),
            };
            let text = message
                .trim_end()
                .replacen("TOML parse error", "TOML syntax error", 1);
            return ConfigError::Syntax(format!("{file}{text}"));
        }
        let at = if key.is_empty() {
            String::new()
        } else {
            format!("{key}: ")
        };
        let what = match &e.kind {
            Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
                format!(
                    "expected {}, found {}",
                    expected_text(expected),
                    found(actual)
                )
            }
            Kind::UnknownField(field, known) => {
                let place = if key.len() > field.len() {
                    format!("{}: ", &key[..key.len() - field.len() - 1])
                } else {
                    String::new()
                };
                lines.push(format!(
                    "{place}unknown key {field}{origin}; known keys: {}",
                    known.join(", ")
                ));
                continue;
            }
            Kind::UnknownVariant(value, known) => {
                format!(
                    "unknown value {value:?}; expected one of {}",
                    known.join(", ")
                )
            }
            Kind::MissingField(field) => format!("{field} is missing"),
            Kind::DuplicateField(field) => format!("{field} is given twice"),
            Kind::InvalidLength(n, expected) => {
                format!("{n} entries, expected {}", expected_text(expected))
            }
            Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => {
                "the number is out of range".to_owned()
            }
            Kind::Message(m) => m.replace('\n', " "),
            Kind::Unsupported(actual) | Kind::UnsupportedKey(actual, _) => {
                format!("{} cannot be used here", found(actual))
            }
        };
        lines.push(format!("{at}{what}{origin}"));
    }
    ConfigError::Parse(lines.join("; "))
}

/// What serde expected, in words.
fn expected_text(expected: &str) -> String {
    let e = expected.trim_matches('`');
    match e {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a string" | "string" => "a string (in quotes)".into(),
        "a sequence" => "a list".into(),
        "socket address" => "an address and port such as \"127.0.0.1:8080\"".into(),
        "option" => "a value".into(),
        _ if e.starts_with("struct ") || e.starts_with("a map") => {
            "a table of settings ([section])".into()
        }
        _ if e.contains("::") || e.starts_with("enum ") => "another kind of value".into(),
        _ => e.to_owned(),
    }
}

/// What was found, in words.
fn found(actual: &figment::error::Actual) -> String {
    use figment::error::Actual;
    match actual {
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Char(c) => format!("{:?}", c.to_string()),
        Actual::Str(s) => format!("{s:?}"),
        Actual::Seq => "a list".into(),
        Actual::Map => "a table".into(),
        Actual::Unit => "nothing".into(),
        _ => "another kind of value".into(),
    }
}

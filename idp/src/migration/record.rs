//! One imported account as a portal's export describes it: the JSON record
//! of docs/migration.md, read into an [`ImportRecord`] whose every field has
//! been checked, or a [`Refusal`] that says why in words (never repeating a
//! password hash or a TOTP secret).

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::credentials::legacy::{Format, LegacyHash};
use crate::credentials::totp_secret;
use crate::domain::Email;

/// As many characters as an account's name may have (the account pages' limit).
pub const MAX_NAME_CHARS: usize = 200;
/// An external id is a portal's key (a number, a UUID, a login name).
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;
/// A client id or a theme name.
pub const MAX_PORTAL_CHARS: usize = 255;

/// One record as it is written; unknown fields are refused, so that a
/// misspelt `password_hash` cannot import an account without its password.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub totp_secret: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub portal: Option<String>,
}

/// A record whose fields are each valid. Whether its portal exists and
/// whether its address or external id is taken is decided by the run.
#[derive(Clone)]
pub struct ImportRecord {
    pub email: Email,
    /// `None`: the record has none (empty for a new account; an update
    /// keeps the current one).
    pub name: Option<String>,
    /// `None`: the record does not say (false for a new account; an update
    /// keeps the current one).
    pub email_verified: Option<bool>,
    /// The hash as written, and its format; `None`: no usable password yet.
    pub password_hash: Option<(String, Format)>,
    /// Base32, upper case, unpadded.
    pub totp_secret: Option<String>,
    pub created_at: Option<OffsetDateTime>,
    pub external_id: Option<String>,
    pub portal: Option<String>,
}

impl std::fmt::Debug for ImportRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportRecord")
            .field("email", &self.email.as_str())
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|(_, format)| format.name()),
            )
            .field("totp_secret", &self.totp_secret.as_ref().map(|_| "…"))
            .field("external_id", &self.external_id)
            .field("portal", &self.portal)
            .finish_non_exhaustive()
    }
}

/// Why a record was not imported, for the person running the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(String);

impl Refusal {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One line of a JSON Lines file (without its line break).
pub fn parse_line(bytes: &[u8]) -> Result<ImportRecord, Refusal> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Refusal::new(format!(
            "not UTF-8 text (invalid byte at column {})",
            e.valid_up_to() + 1
        ))
    })?;
    let input: RecordInput = serde_json::from_str(text).map_err(json_refusal)?;
    ImportRecord::try_from(input)
}

/// One element of a JSON array of records (the admin API's batch).
pub fn parse_value(value: serde_json::Value) -> Result<ImportRecord, Refusal> {
    let input: RecordInput = serde_json::from_value(value).map_err(json_refusal)?;
    ImportRecord::try_from(input)
}

/// serde_json's message names fields and positions, never Rust types; the
/// offending value is not repeated (it may be a hash).
fn json_refusal(e: serde_json::Error) -> Refusal {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => Refusal::new(format!(
            "not a JSON object (malformed JSON at column {})",
            e.column()
        )),
        Category::Data => {
            let text = e.to_string();
            let what = text.split(" at line ").next().unwrap_or(&text);
            // serde names the Rust type a record is read into; say what it is.
            let what = without_strings(&what.replace("struct RecordInput", "a JSON object"));
            Refusal::new(format!("not a valid record: {what}"))
        }
        Category::Io => Refusal::new("could not be read"),
    }
}

/// serde quotes the value it could not take (`invalid type: string
/// "$2y$10$…", expected a boolean`): with shifted columns that is a hash or
/// a secret, which a report must not repeat. Keeps only that it was a string.
fn without_strings(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("string \"") {
        out.push_str(&rest[..at]);
        out.push_str("a string");
        let quoted = &rest[at + "string \"".len()..];
        let mut escaped = false;
        let end = quoted
            .char_indices()
            .find(|&(_, c)| {
                let close = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                close
            })
            .map_or(quoted.len(), |(i, _)| i + 1);
        rest = &quoted[end..];
    }
    out.push_str(rest);
    out
}

impl TryFrom<RecordInput> for ImportRecord {
    type Error = Refusal;

    fn try_from(input: RecordInput) -> Result<Self, Refusal> {
        let email = Email::parse(&input.email).map_err(|e| Refusal::new(format!("email: {e}")))?;
        let name = input.name.map(|n| n.trim().to_owned());
        let name_text = name.as_deref().unwrap_or_default();
        if name_text.chars().count() > MAX_NAME_CHARS {
            return Err(Refusal::new(format!(
                "name: at most {MAX_NAME_CHARS} characters"
            )));
        }
        if name_text.chars().any(char::is_control) {
            return Err(Refusal::new("name: contains control characters"));
        }
        let password_hash = match input.password_hash {
            None => None,
            Some(hash) => {
                let parsed = LegacyHash::parse(&hash)
                    .map_err(|e| Refusal::new(format!("password_hash: {e}")))?;
                Some((hash, parsed.format()))
            }
        };
        let totp_secret = input
            .totp_secret
            .map(|s| totp_secret::normalise(&s))
            .transpose()
            .map_err(|e| Refusal::new(format!("totp_secret: {e}")))?;
        let created_at = input
            .created_at
            .map(|t| OffsetDateTime::parse(&t, &Rfc3339))
            .transpose()
            .map_err(|_| {
                Refusal::new("created_at: not an RFC 3339 date and time (2024-05-01T12:00:00Z)")
            })?;
        let external_id = text_field("external_id", input.external_id, MAX_EXTERNAL_ID_CHARS)?;
        let portal = text_field("portal", input.portal, MAX_PORTAL_CHARS)?;
        if external_id.is_some() && portal.is_none() {
            return Err(Refusal::new(
                "external_id: needs the portal it belongs to (portal)",
            ));
        }
        Ok(Self {
            email,
            name,
            email_verified: input.email_verified,
            password_hash,
            totp_secret,
            created_at,
            external_id,
            portal,
        })
    }
}

/// A trimmed, non-empty, bounded text without control characters.
fn text_field(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, Refusal> {
    let Some(value) = value else {
        return Ok(None);
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(Refusal::new(format!("{field}: empty")));
    }
    if value.chars().count() > max {
        return Err(Refusal::new(format!("{field}: at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(Refusal::new(format!(
            "{field}: contains control characters"
        )));
    }
    Ok(Some(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2b$04$qcb162v1VMIiBbV4QVll2.OjGdqPF91HZVw1NCApuqj0qHS.kzkiG";

    fn line(json: serde_json::Value) -> Result<ImportRecord, Refusal> {
        parse_line(json.to_string().as_bytes())
    }

    #[test]
    fn a_full_record_is_read_and_normalised() {
        let r = line(serde_json::json!({
            "email": " Jane@Example.COM ", "name": " Jane ", "email_verified": true,
            "password_hash": BCRYPT, "totp_secret": "33vz exi5 orwa kywh",
            "created_at": "2019-03-04T05:06:07Z", "external_id": "42", "portal": "helix",
        }))
        .unwrap();
        assert_eq!(r.email.as_str(), "Jane@example.com");
        assert_eq!(r.name.as_deref(), Some("Jane"));
        assert_eq!(r.email_verified, Some(true));
        assert_eq!(r.password_hash.as_ref().unwrap().1, Format::Bcrypt);
        assert_eq!(r.totp_secret.as_deref(), Some("33VZEXI5ORWAKYWH"));
        assert_eq!(r.created_at.unwrap().year(), 2019);
        assert!(!format!("{r:?}").contains(BCRYPT), "Debug hides the hash");
    }

    #[test]
    fn an_absent_hash_is_no_password_but_a_bad_one_is_refused() {
        let r = line(serde_json::json!({"email": "a@example.com"})).unwrap();
        assert!(r.password_hash.is_none());
        for bad in [
            "",
            "md5:abc",
            "$2b$31$qcb162v1VMIiBbV4QVll2.OjGdqPF91HZVw1NCApuqj0qHS.kzkiG",
        ] {
            let e = line(serde_json::json!({"email": "a@example.com", "password_hash": bad}))
                .unwrap_err();
            assert!(e.reason().starts_with("password_hash: "), "{e}");
            assert!(bad.is_empty() || !e.reason().contains(bad), "{e}");
        }
    }

    #[test]
    fn bad_input_is_refused_in_words() {
        let cases: &[(&[u8], &str)] = &[
            (b"{\"email\": ", "malformed JSON"),
            (b"[1, 2]", "not a valid record"),
            (b"42", "expected a JSON object"),
            (
                b"{\"email\": \"a@example.com\", \"email_verified\": \"$2y$04$secret\\\"hash\"}",
                "invalid type: a string, expected a boolean",
            ),
            (b"\"ann@example.com\"", "expected a JSON object"),
            (
                b"{\"email\": \"a@example.com\", \"pasword_hash\": \"x\"}",
                "unknown field `pasword_hash`",
            ),
            (b"{\"email\": \"not-an-address\"}", "email: "),
            (
                b"{\"email\": \"a@example.com\", \"email_verified\": \"yes\"}",
                "not a valid record",
            ),
            (
                b"{\"email\": \"a@example.com\", \"totp_secret\": \"ABCDEFGH\"}",
                "80 bits",
            ),
            (
                b"{\"email\": \"a@example.com\", \"created_at\": \"yesterday\"}",
                "RFC 3339",
            ),
            (
                b"{\"email\": \"a@example.com\", \"external_id\": \"7\"}",
                "needs the portal",
            ),
            (b"{\"email\": \"a\xff@example.com\"}", "not UTF-8"),
        ];
        for (input, expected) in cases {
            let e = parse_line(input).unwrap_err();
            assert!(
                e.reason().contains(expected),
                "{:?}: {e}",
                String::from_utf8_lossy(input)
            );
            assert!(!e.reason().contains("RecordInput"), "{e}");
            assert!(!e.reason().contains("$2y$04"), "never the value: {e}");
        }
    }
}

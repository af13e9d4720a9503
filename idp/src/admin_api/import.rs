//! `POST /admin/api/users/import`: a batch of portal accounts, the same
//! records as a line of `idp user import`'s file (issue 15, item 1). The
//! rules are the migration capability's (`migration::import`): each record
//! refused by its position in the batch (from 1) with its reason, the rest
//! imported; `dry_run`, `update` and `all_or_nothing` as on the command
//! line. The batch is bounded ([`MAX_RECORDS`], [`MAX_BODY_BYTES`]): a
//! larger one is a 413 that says the limit, and nothing is read further.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody, bad_request};
use super::shared::{Subject, audit};
use crate::domain::AuditKind;
use crate::migration::{
    ImportOptions, ImportRecord, Portals, Refusal, Summary, Target, import as run_import,
    parse_value,
};
use crate::web::AppState;

/// The most records one call takes; more: several calls (the import is
/// idempotent by address, so a batch sent again is skipped).
pub const MAX_RECORDS: usize = 10_000;
/// The largest body one call takes: [`MAX_RECORDS`] records of about 800
/// bytes (a name, a hash, an authenticator secret and ids).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// One account from a portal, as a line of the import file
/// (docs/migration.md). Only `email` is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the OpenAPI description of a record: records are read by `migration`
pub struct ImportRecordDoc {
    pub email: String,
    pub name: Option<String>,
    pub email_verified: Option<bool>,
    /// As the portal's software wrote it (bcrypt, argon2, scrypt, PBKDF2,
    /// SHA-crypt, MD5-crypt, phpass, LDAP salted SHA, ASP.NET Identity);
    /// absent: the customer sets a password through "forgot password".
    pub password_hash: Option<String>,
    /// Base32, at least 80 bits.
    pub totp_secret: Option<String>,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// The customer's id in `portal`.
    pub external_id: Option<String>,
    /// A client id or a theme name of this deployment.
    pub portal: Option<String>,
}

/// A batch of records and how to import it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// At most 10,000; each is checked on its own, by its position (from 1).
    #[schema(value_type = Vec<ImportRecordDoc>, max_items = 10000)]
    pub records: Vec<Value>,
    /// Check everything and report what would happen; write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// An address that exists takes the record's name, verification,
    /// password hash and authenticator; without it, it is left as it is.
    #[serde(default)]
    pub update: bool,
    /// Nothing written if any record is refused.
    #[serde(default)]
    pub all_or_nothing: bool,
}

/// A record not imported.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusedRecord {
    /// Its position in `records`, from 1.
    pub line: usize,
    pub reason: String,
}

/// What the call did (or, in a dry run or a refused all-or-nothing batch,
/// would have done).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportSummary {
    /// New accounts.
    pub imported: u64,
    /// Existing accounts that took the record's values (`update`).
    pub updated: u64,
    /// Existing accounts that only gained the record's external id.
    pub linked: u64,
    /// Existing accounts left as they were.
    pub skipped: u64,
    pub refused: Vec<RefusedRecord>,
    /// Whether anything was written.
    pub written: bool,
}

impl From<Summary> for ImportSummary {
    fn from(s: Summary) -> Self {
        Self {
            imported: s.imported,
            updated: s.updated,
            linked: s.linked,
            skipped: s.skipped,
            refused: s
                .refused
                .into_iter()
                .map(|r| RefusedRecord {
                    line: r.line,
                    reason: r.reason,
                })
                .collect(),
            written: s.written,
        }
    }
}

/// One element of `records`. Anything but an object is refused here: the
/// reader's own message for it would name its Rust type.
fn record(value: Value) -> Result<ImportRecord, Refusal> {
    if value.is_object() {
        parse_value(value)
    } else {
        Err(Refusal::new(
            "not a JSON object: a record is {\"email\": ..., ...}",
        ))
    }
}

fn too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "a batch is at most {MAX_RECORDS} records and {MAX_BODY_BYTES} bytes; send several"
    ))
}

/// Import accounts from a portal: the same records as `idp user import`.
#[utoipa::path(
    post,
    path = "/admin/api/users/import",
    tag = "users",
    request_body = ImportBody,
    responses(
        (status = 200, body = ImportSummary, description = "The batch was read: what was imported, skipped and refused (by position)"),
        (status = 400, body = ErrorBody, description = "Not a batch: malformed JSON, `records` missing or not a list, an unknown member"),
        (status = 413, body = ErrorBody, description = "More than 10,000 records or 8 MiB"),
    ),
    security(("bearer" = []))
)]
pub async fn import(
    admin: Admin,
    State(state): State<AppState>,
    payload: Result<Json<ImportBody>, JsonRejection>,
) -> Result<Json<ImportSummary>, ApiError> {
    let body = match payload {
        Ok(Json(body)) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
        Err(e) => return Err(bad_request(e.body_text())),
    };
    if body.records.len() > MAX_RECORDS {
        return Err(too_large());
    }
    let options = ImportOptions {
        dry_run: body.dry_run,
        update: body.update,
        all_or_nothing: body.all_or_nothing,
    };
    let portals = Portals::load(state.store.as_ref(), state.themes.names()).await?;
    let actor = admin.actor();
    let target = Target {
        store: state.store.as_ref(),
        kek: state.kek.as_deref(),
        portals: &portals,
        now: state.clock.now(),
        actor: &actor,
    };
    let records = body
        .records
        .into_iter()
        .enumerate()
        .map(|(i, value)| (i + 1, record(value)));
    let summary = match run_import(&target, records, &options, &mut |_| {}).await {
        Ok(summary) => summary,
        // Only an all-or-nothing run stops on a conflict, having written nothing.
        Err(crate::store::Error::Conflict) => {
            return Err(ApiError::Conflict(
                "an account or external id in the batch was created meanwhile; nothing was written: send the batch again"
                    .into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if summary.written {
        audit(
            &state,
            &admin,
            AuditKind::AdminUsersImported,
            Subject::Deployment,
            json!({
                "imported": summary.imported,
                "updated": summary.updated,
                "linked": summary.linked,
                "skipped": summary.skipped,
                "refused": summary.refused.len(),
                "update": options.update,
                "all_or_nothing": options.all_or_nothing,
            }),
        )
        .await?;
    }
    Ok(Json(summary.into()))
}

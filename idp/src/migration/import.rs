//! An import run: records in, a [`Summary`] out. Records are taken in
//! batches of [`BATCH`]; for each batch the store is asked which addresses
//! and external ids exist, every record is decided (new, update, link,
//! skip, refuse), then the batch is written in one transaction. Nothing is
//! hashed here: the portal's hash is stored as it came and replaced at the
//! customer's first correct sign-in.
//!
//! One account per address across the deployment's portals (docs/migration.md):
//! an address that exists keeps its account (and its password and
//! authenticator unless `update`), and a portal's external id is added
//! beside those of the other portals.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::record::{ImportRecord, Refusal};
use crate::credentials::totp_secret;
use crate::crypto::envelope::Kek;
use crate::domain::{AuditKind, UserId};
use crate::store::{
    self, AuditEvent, ExistingAccount, ImportAction, ImportWrite, ImportedUser, NewTotp, Store,
};

/// Records per look-up and per transaction.
pub const BATCH: usize = 500;

/// How a run behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Check everything, report what would happen, write nothing.
    pub dry_run: bool,
    /// An address that exists takes the record's name, verification,
    /// password hash and authenticator (those given); without it, it is
    /// left as it is.
    pub update: bool,
    /// Everything in one transaction, and nothing written if any record is
    /// refused. The records are kept in memory until the end.
    pub all_or_nothing: bool,
}

/// The portals of this deployment: its client ids and theme names.
#[derive(Debug, Clone, Default)]
pub struct Portals(BTreeSet<String>);

impl Portals {
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        Self(names.into_iter().collect())
    }

    /// The registered clients' ids and the installed themes' names.
    pub async fn load<'a>(
        store: &dyn Store,
        themes: impl IntoIterator<Item = &'a str>,
    ) -> store::Result<Self> {
        let clients = store.list_clients().await?;
        Ok(Self::new(
            clients
                .into_iter()
                .map(|c| c.id.as_str().to_owned())
                .chain(themes.into_iter().map(str::to_owned)),
        ))
    }

    pub fn contains(&self, portal: &str) -> bool {
        self.0.contains(portal)
    }
}

/// Where and as whom a run writes.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub store: &'a dyn Store,
    /// The key-encryption key TOTP secrets are sealed with, if configured.
    pub kek: Option<&'a Kek>,
    pub portals: &'a Portals,
    pub now: OffsetDateTime,
    /// Who imports, as the audit trail names it (`cli`, `user:<id>`, `client:<id>`).
    pub actor: &'a str,
}

/// A record not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedLine {
    /// Its line in the file (from 1), or its position in a batch (from 1).
    pub line: usize,
    pub reason: String,
}

/// What a run did (or, in a dry run or a refused all-or-nothing run, would
/// have done).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// New accounts.
    pub imported: u64,
    /// Existing accounts that took the record's values (`update`).
    pub updated: u64,
    /// Existing accounts that only gained the record's external id.
    pub linked: u64,
    /// Existing accounts left as they were.
    pub skipped: u64,
    pub refused: Vec<RefusedLine>,
    /// Whether anything was written: false for a dry run, and for an
    /// all-or-nothing run with a refused record.
    pub written: bool,
}

/// Imports `records` (line number, record or why it is not one). Errors
/// are the store's: a run stopped by one has written the batches before it
/// (all of them or none with `all_or_nothing`). `progress` hears how many
/// records were handled after each batch.
pub async fn import(
    target: &Target<'_>,
    records: impl IntoIterator<Item = (usize, Result<ImportRecord, Refusal>)>,
    options: &ImportOptions,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Summary, store::Error> {
    let mut run = Run {
        target,
        options,
        summary: Summary::default(),
        emails: HashMap::new(),
        external_ids: HashMap::new(),
        held: Vec::new(),
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut handled = 0;
    for (line, record) in records {
        handled += 1;
        match record.and_then(|r| run.check_in_file(line, r)) {
            Ok(r) => batch.push((line, r)),
            Err(refusal) => run.refuse(line, refusal),
        }
        if batch.len() == BATCH {
            run.batch(std::mem::take(&mut batch)).await?;
            progress(handled);
        }
    }
    run.batch(batch).await?;
    progress(handled);
    run.finish().await
}

struct Run<'a, 'b> {
    target: &'a Target<'b>,
    options: &'a ImportOptions,
    summary: Summary,
    /// Address key → the line that brought it.
    emails: HashMap<String, usize>,
    /// (portal, external id) → the line that brought it.
    external_ids: HashMap<(String, String), usize>,
    /// All-or-nothing: the writes, kept for the end.
    held: Vec<(usize, ImportWrite)>,
}

impl Run<'_, '_> {
    fn refuse(&mut self, line: usize, refusal: Refusal) {
        self.summary.refused.push(RefusedLine {
            line,
            reason: refusal.reason().to_owned(),
        });
    }

    /// What can be told from the file alone: the portal exists, the address
    /// and the external id are not on an earlier line.
    fn check_in_file(&mut self, line: usize, r: ImportRecord) -> Result<ImportRecord, Refusal> {
        if let Some(portal) = &r.portal
            && !self.target.portals.contains(portal)
        {
            return Err(Refusal::new(format!(
                "portal: no client or theme named {portal} in this deployment"
            )));
        }
        let key = r.email.key();
        if let Some(first) = self.emails.get(&key) {
            return Err(Refusal::new(format!(
                "the address {} is already on line {first}",
                r.email.as_str()
            )));
        }
        if let (Some(portal), Some(id)) = (&r.portal, &r.external_id) {
            let pair = (portal.clone(), id.clone());
            if let Some(first) = self.external_ids.get(&pair) {
                return Err(Refusal::new(format!(
                    "external_id {id} of portal {portal} is already on line {first}"
                )));
            }
            self.external_ids.insert(pair, line);
        }
        self.emails.insert(key, line);
        Ok(r)
    }

    async fn batch(&mut self, batch: Vec<(usize, ImportRecord)>) -> Result<(), store::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let store = self.target.store;
        let keys: Vec<String> = batch.iter().map(|(_, r)| r.email.key()).collect();
        let accounts = store.existing_accounts(&keys).await?;
        let mut by_portal: HashMap<&str, Vec<String>> = HashMap::new();
        for (_, r) in &batch {
            if let (Some(portal), Some(id)) = (&r.portal, &r.external_id) {
                by_portal.entry(portal).or_default().push(id.clone());
            }
        }
        let mut owners: HashMap<(String, String), UserId> = HashMap::new();
        for (portal, ids) in by_portal {
            for (id, user) in store.external_id_owners(portal, &ids).await? {
                owners.insert((portal.to_owned(), id), user);
            }
        }
        let mut writes = Vec::new();
        for (line, r) in batch {
            let existing = accounts.get(&r.email.key());
            match self.decide(r, existing, &owners) {
                Ok(Some(write)) => writes.push((line, write)),
                Ok(None) => self.summary.skipped += 1,
                Err(refusal) => self.refuse(line, refusal),
            }
        }
        for (_, w) in &writes {
            self.count(w.action, 1);
        }
        if self.options.dry_run {
            return Ok(());
        }
        if self.options.all_or_nothing {
            // Once a line is refused nothing will be written: hold no more.
            if self.summary.refused.is_empty() {
                self.held.extend(writes);
            } else {
                self.held = Vec::new();
            }
            return Ok(());
        }
        let (lines, writes): (Vec<usize>, Vec<ImportWrite>) = writes.into_iter().unzip();
        let collided = store.write_import(&writes, self.target.now, false).await?;
        for index in collided {
            self.count(writes[index].action, -1);
            self.refuse(
                lines[index],
                Refusal::new("the address or the external id was taken while importing"),
            );
        }
        self.summary.written = true;
        Ok(())
    }

    fn count(&mut self, action: ImportAction, by: i64) {
        let counter = match action {
            ImportAction::Create => &mut self.summary.imported,
            ImportAction::Update => &mut self.summary.updated,
            ImportAction::Link => &mut self.summary.linked,
        };
        *counter = counter.saturating_add_signed(by);
    }

    /// The write for one record, `None` when there is nothing to do.
    fn decide(
        &self,
        r: ImportRecord,
        existing: Option<&ExistingAccount>,
        owners: &HashMap<(String, String), UserId>,
    ) -> Result<Option<ImportWrite>, Refusal> {
        let user_id = existing.map_or_else(UserId::generate, |a| a.user_id.clone());
        let mut new_external_id = None;
        if let (Some(portal), Some(id)) = (&r.portal, &r.external_id) {
            let pair = (portal.clone(), id.clone());
            if let Some(owner) = owners.get(&pair)
                && *owner != user_id
            {
                return Err(Refusal::new(format!(
                    "external_id {id} of portal {portal} belongs to another account"
                )));
            }
            match existing.and_then(|a| a.external_ids.get(portal)) {
                Some(current) if current != id => {
                    return Err(Refusal::new(format!(
                        "the account of {} already has the external id {current} in portal {portal}",
                        r.email.as_str()
                    )));
                }
                Some(_) => {}
                None => new_external_id = Some(pair),
            }
        }
        let action = match existing {
            None => ImportAction::Create,
            // An administrator's password and authenticator are not a file's
            // to set: a stale or forged export must not take over the console.
            Some(a) if self.options.update && a.is_admin => {
                return Err(Refusal::new(format!(
                    "{} is an administrator's account: an import does not update it",
                    r.email.as_str()
                )));
            }
            Some(_) if self.options.update => ImportAction::Update,
            Some(_) if new_external_id.is_some() => ImportAction::Link,
            Some(_) => return Ok(None),
        };
        let totp = match (&r.totp_secret, action) {
            (Some(secret), ImportAction::Create | ImportAction::Update) => {
                let (sealed, encrypted) = totp_secret::seal(self.target.kek, &user_id, secret)
                    .map_err(|e| Refusal::new(format!("totp_secret: cannot seal it: {e}")))?;
                Some(NewTotp {
                    secret: sealed,
                    secret_encrypted: encrypted,
                    digits: 6,
                    period_secs: 30,
                })
            }
            _ => None,
        };
        let kind = match action {
            ImportAction::Create => AuditKind::UserImported,
            ImportAction::Update => AuditKind::UserImportUpdated,
            ImportAction::Link => AuditKind::UserImportLinked,
        };
        let format = r.password_hash.as_ref().map(|(_, f)| f.name());
        let audit = AuditEvent {
            kind: kind.as_str().to_owned(),
            user_id: Some(user_id.clone()),
            actor: Some(self.target.actor.to_owned()),
            client_id: None,
            ip: None,
            user_agent: None,
            detail: json!({
                "portal": r.portal,
                "external_id": r.external_id,
                "password_format": if action == ImportAction::Link { None } else { format },
                "totp": totp.is_some(),
            }),
        };
        Ok(Some(ImportWrite {
            action,
            user: ImportedUser {
                id: user_id,
                email: r.email,
                name: r.name,
                email_verified: r.email_verified,
                password_hash: r.password_hash.map(|(hash, _)| hash),
                created_at: r.created_at.unwrap_or(self.target.now),
            },
            totp,
            external_id: new_external_id,
            audit,
        }))
    }

    async fn finish(mut self) -> Result<Summary, store::Error> {
        if self.options.all_or_nothing && !self.options.dry_run && self.summary.refused.is_empty() {
            let writes: Vec<ImportWrite> = self.held.into_iter().map(|(_, w)| w).collect();
            if !writes.is_empty() {
                self.target
                    .store
                    .write_import(&writes, self.target.now, true)
                    .await?;
            }
            self.summary.written = true;
        }
        self.summary.refused.sort_by_key(|r| r.line);
        Ok(self.summary)
    }
}

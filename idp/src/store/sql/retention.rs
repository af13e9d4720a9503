//! SQL of [`RetentionStore`](crate::store::RetentionStore): one bounded
//! delete per kind of row, the same text on both backends. Each picks at most
//! `$2` keys through an index and deletes them in one statement, so a batch
//! is committed whole or not at all and holds its row locks briefly.

use sqlx::{Connection, PgConnection, PgPool, SqlitePool};

use super::{Ts, db_error};
use crate::store::{
    PruneSession, RETENTION_APPLICATION_NAME, RETENTION_LOCK_KEY, Result, retention::Prune,
};

/// The statement for `what`, its cutoff (`$1`) and, for signing keys, the
/// second instant (`$3`); `$2` is the batch size.
fn statement(what: &Prune) -> (&'static str, Ts, Option<Ts>) {
    match *what {
        Prune::AuditEvent { before } => (
            "delete from audit_event where audit_event_id in (
                select audit_event_id from audit_event where occurred_at < $1
                order by occurred_at limit $2)",
            Ts(before),
            None,
        ),
        Prune::SentMail { before } => (
            "delete from mail_outbox where mail_outbox_id in (
                select mail_outbox_id from mail_outbox
                where status = 'sent' and sent_at < $1 limit $2)",
            Ts(before),
            None,
        ),
        // A message that failed for good keeps the due time of its last attempt.
        Prune::FailedMail { before } => (
            "delete from mail_outbox where mail_outbox_id in (
                select mail_outbox_id from mail_outbox
                where status = 'failed' and next_attempt_at < $1 limit $2)",
            Ts(before),
            None,
        ),
        // A token's expires_at never passes its family's absolute expiry, and
        // the newest token of a family expires last: a family is dead at $1
        // when none of its tokens is both unexpired and unrevoked then.
        // Rotated tokens of a live family stay, whatever their own dates, so
        // presenting one again still revokes the family.
        Prune::RefreshToken { dead_at } => (
            "delete from refresh_token where refresh_token_id in (
                select r.refresh_token_id from refresh_token r
                where (r.expires_at <= $1 or r.revoked_at <= $1)
                  and not exists (
                    select 1 from refresh_token f
                    where f.family_id = r.family_id and f.expires_at > $1
                      and (f.revoked_at is null or f.revoked_at > $1))
                limit $2)",
            Ts(dead_at),
            None,
        ),
        Prune::PasswordReset { dead_at } => (
            "delete from password_reset_token where token_hash in (
                select token_hash from password_reset_token
                where expires_at <= $1 or used_at <= $1 limit $2)",
            Ts(dead_at),
            None,
        ),
        Prune::EmailVerification { dead_at } => (
            "delete from email_verification_token where token_hash in (
                select token_hash from email_verification_token
                where expires_at <= $1 or used_at <= $1 limit $2)",
            Ts(dead_at),
            None,
        ),
        Prune::RevokedAccessToken { now } => (
            "delete from revoked_access_token where jti in (
                select jti from revoked_access_token where expires_at <= $1 limit $2)",
            Ts(now),
            None,
        ),
        // Only keys out of JWKS (expires_at passed) and retired long enough
        // ago; a key never retired has no expires_at.
        Prune::SigningKey { now, retired_by } => (
            "delete from signing_key where signing_key_id in (
                select signing_key_id from signing_key
                where expires_at <= $1 and retires_at <= $3 limit $2)",
            Ts(now),
            Some(Ts(retired_by)),
        ),
    }
}

/// Runs [`statement`] on `$executor`; evaluates to `store::Result<u64>`.
macro_rules! prune_batch {
    ($executor:expr, $what:expr, $limit:expr) => {{
        let (sql, cutoff, extra) = statement($what);
        let mut query = sqlx::query(sql).bind(cutoff).bind(i64::from($limit));
        if let Some(extra) = extra {
            query = query.bind(extra);
        }
        query
            .execute($executor)
            .await
            .map(|done| done.rows_affected())
            .map_err(db_error)
    }};
}

/// PostgreSQL: a connection outside the pool holding the session-level
/// advisory lock. Closing it (or losing it) releases the lock, so a pass
/// that dies halfway cannot leave the lock behind in a pooled connection.
pub(in crate::store) struct PgPruneSession(PgConnection);

impl PgPruneSession {
    pub(in crate::store) async fn begin(pool: &PgPool) -> Result<Option<Self>> {
        let options = pool
            .connect_options()
            .as_ref()
            .clone()
            .application_name(RETENTION_APPLICATION_NAME);
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(db_error)?;
        let (locked,): (bool,) = sqlx::query_as("select pg_try_advisory_lock($1)")
            .bind(RETENTION_LOCK_KEY)
            .fetch_one(&mut conn)
            .await
            .map_err(db_error)?;
        if !locked {
            // Only a courtesy to the server: dropping the connection ends it too.
            let _ = conn.close().await;
            return Ok(None);
        }
        Ok(Some(Self(conn)))
    }
}

#[async_trait::async_trait]
impl PruneSession for PgPruneSession {
    async fn prune_batch(&mut self, what: &Prune, limit: u32) -> Result<u64> {
        prune_batch!(&mut self.0, what, limit)
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        // Released before closing: the server ends a closed session (and
        // drops its locks) only a moment later, and the next pass, on this
        // node or another, should find the lock free at once.
        let unlocked = sqlx::query("select pg_advisory_unlock($1)")
            .bind(RETENTION_LOCK_KEY)
            .execute(&mut self.0)
            .await
            .map(|_| ())
            .map_err(db_error);
        self.0.close().await.map_err(db_error)?;
        unlocked
    }
}

/// SQLite: one node, no lock; each delete takes the database's write lock
/// for one batch only.
pub(in crate::store) struct SqlitePruneSession(pub(in crate::store) SqlitePool);

#[async_trait::async_trait]
impl PruneSession for SqlitePruneSession {
    async fn prune_batch(&mut self, what: &Prune, limit: u32) -> Result<u64> {
        prune_batch!(&self.0, what, limit)
    }

    async fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

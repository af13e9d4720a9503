//! The `mail_outbox` table. Everything but the claim is the same SQL on both
//! backends; the claim differs because only PostgreSQL has (and, with several
//! nodes writing at once, needs) `for update skip locked`.

use sqlx::FromRow;

use super::{Ts, corrupt};
use crate::store::{MailStatus, OutgoingMail, QueuedMail};

#[derive(FromRow)]
pub(in crate::store) struct MailRow {
    mail_outbox_id: String,
    recipient: String,
    subject: String,
    body_text: String,
    body_html: Option<String>,
    sender: Option<String>,
    status: String,
    attempts: i32,
    next_attempt_at: Ts,
    last_error: Option<String>,
    created_at: Ts,
    sent_at: Option<Ts>,
}

impl TryFrom<MailRow> for QueuedMail {
    type Error = crate::store::Error;

    fn try_from(r: MailRow) -> Result<Self, Self::Error> {
        Ok(QueuedMail {
            status: r.status.parse().map_err(|e| corrupt("mail status", e))?,
            id: r.mail_outbox_id,
            mail: OutgoingMail {
                recipient: r.recipient,
                subject: r.subject,
                body_text: r.body_text,
                body_html: r.body_html,
                sender: r.sender,
            },
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at.into(),
            last_error: r.last_error,
            created_at: r.created_at.into(),
            sent_at: r.sent_at.map(Into::into),
        })
    }
}

pub(in crate::store) fn rows_to_mail(rows: Vec<MailRow>) -> crate::store::Result<Vec<QueuedMail>> {
    rows.into_iter().map(QueuedMail::try_from).collect()
}

/// `status` as bound in a query.
pub(in crate::store) fn status_str(status: MailStatus) -> &'static str {
    status.as_str()
}

/// The claim on PostgreSQL: rows another node is claiming right now are
/// skipped rather than waited for, and a row it has just claimed no longer
/// matches when this statement re-checks it. `$1` now, `$2` the lease's end,
/// `$3` the limit.
pub(in crate::store) const CLAIM_POSTGRES: &str = "with due as (
        select mail_outbox_id from mail_outbox
        where status = 'pending' and next_attempt_at <= $1
          and (claimed_until is null or claimed_until <= $1)
        order by next_attempt_at, mail_outbox_id
        limit $3
        for update skip locked
     )
     update mail_outbox set claimed_until = $2
     from due where mail_outbox.mail_outbox_id = due.mail_outbox_id
     returning mail_outbox.mail_outbox_id, recipient, subject, body_text, body_html, sender, status, attempts,
               next_attempt_at, last_error, created_at, sent_at";

/// The claim on SQLite: one statement, and SQLite runs one writer at a time.
pub(in crate::store) const CLAIM_SQLITE: &str = "update mail_outbox set claimed_until = $2
     where mail_outbox_id in (
        select mail_outbox_id from mail_outbox
        where status = 'pending' and next_attempt_at <= $1
          and (claimed_until is null or claimed_until <= $1)
        order by next_attempt_at, mail_outbox_id
        limit $3
     )
     returning mail_outbox_id, recipient, subject, body_text, body_html, sender, status, attempts,
               next_attempt_at, last_error, created_at, sent_at";

/// Inserts one message into the outbox, due at once, through `$executor`
/// (a connection, `&mut *self.pool.conn().await?`, or `&mut *tx` to commit it with the caller's own writes).
/// Evaluates to `store::Result<String>`: the new message's id.
///
/// ```text
/// let mut tx = self.pool.begin().await.map_err(db_error)?;
/// // ... the rows that caused the mail ...
/// insert_outbox!(&mut *tx, &mail, now)?;
/// tx.commit().await.map_err(db_error)?;
/// ```
macro_rules! insert_outbox {
    ($executor:expr, $mail:expr, $now:expr) => {{
        let mail: &$crate::store::OutgoingMail = $mail;
        let now = $crate::store::sql::Ts($now);
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = sqlx::query(
            "insert into mail_outbox (mail_outbox_id, recipient, subject, body_text, body_html, sender, status, attempts, next_attempt_at, created_at)
             values ($1, $2, $3, $4, $5, $7, 'pending', 0, $6, $6)",
        )
        .bind(&id)
        .bind(&mail.recipient)
        .bind(&mail.subject)
        .bind(&mail.body_text)
        .bind(&mail.body_html)
        .bind(now)
        .bind(&mail.sender)
        .execute($executor)
        .await
        .map_err($crate::store::sql::db_error);
        inserted.map(|_| id)
    }};
}
pub(in crate::store) use insert_outbox;

/// Implements [`MailStore`](crate::store::MailStore) for a store with a
/// `pool` field; `$claim` is the backend's claim statement.
macro_rules! impl_mail_store {
    ($store:ty, $claim:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::MailStore for $store {
            async fn enqueue_mail(
                &self,
                mail: $crate::store::OutgoingMail,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<String> {
                $crate::store::sql::mail::insert_outbox!(&mut *self.pool.conn().await?, &mail, now)
            }

            async fn claim_due_mail(
                &self,
                now: time::OffsetDateTime,
                lease: time::Duration,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::QueuedMail>> {
                let rows = sqlx::query_as::<_, $crate::store::sql::mail::MailRow>($claim)
                    .bind($crate::store::sql::Ts(now))
                    .bind($crate::store::sql::Ts(now + lease))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.pool.conn().await?)
                    .await
                    .map_err($crate::store::sql::db_error)?;
                // `returning` promises no order; deliver the oldest first.
                let mut claimed = $crate::store::sql::mail::rows_to_mail(rows)?;
                claimed.sort_by(|a, b| {
                    (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id))
                });
                Ok(claimed)
            }

            async fn mark_mail_sent(
                &self,
                id: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<()> {
                let done = sqlx::query(
                    "update mail_outbox set status = 'sent', sent_at = $2, claimed_until = null
                     where mail_outbox_id = $1 and status = 'pending'",
                )
                .bind(id)
                .bind($crate::store::sql::Ts(now))
                .execute(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?;
                if done.rows_affected() == 0 {
                    return Err($crate::store::Error::NotFound);
                }
                Ok(())
            }

            async fn mark_mail_attempt_failed(
                &self,
                id: &str,
                error: &str,
                retry_at: Option<time::OffsetDateTime>,
            ) -> $crate::store::Result<()> {
                let done = sqlx::query(
                    "update mail_outbox set attempts = attempts + 1, last_error = $2, claimed_until = null,
                        status = case when $3 is null then 'failed' else 'pending' end,
                        next_attempt_at = coalesce($3, next_attempt_at)
                     where mail_outbox_id = $1 and status = 'pending'",
                )
                .bind(id)
                .bind(error)
                .bind(retry_at.map($crate::store::sql::Ts))
                .execute(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?;
                if done.rows_affected() == 0 {
                    return Err($crate::store::Error::NotFound);
                }
                Ok(())
            }

            async fn list_mail(
                &self,
                status: Option<$crate::store::MailStatus>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::QueuedMail>> {
                let rows = sqlx::query_as::<_, $crate::store::sql::mail::MailRow>(
                    "select mail_outbox_id, recipient, subject, body_text, body_html, sender, status, attempts,
                            next_attempt_at, last_error, created_at, sent_at
                     from mail_outbox where ($1 is null or status = $1)
                     order by created_at desc, mail_outbox_id desc limit $2",
                )
                .bind(status.map($crate::store::sql::mail::status_str))
                .bind(i64::from(limit))
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?;
                $crate::store::sql::mail::rows_to_mail(rows)
            }

            async fn retry_mail(
                &self,
                id: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<()> {
                let done = sqlx::query(
                    "update mail_outbox set status = 'pending', attempts = 0, next_attempt_at = $2,
                        claimed_until = null
                     where mail_outbox_id = $1 and status = 'failed'",
                )
                .bind(id)
                .bind($crate::store::sql::Ts(now))
                .execute(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?;
                if done.rows_affected() == 0 {
                    return Err($crate::store::Error::NotFound);
                }
                Ok(())
            }
        }
    };
}
pub(in crate::store) use impl_mail_store;

/// Keeps `insert_outbox!` usable inside a transaction on both backends.
#[cfg(test)]
#[allow(dead_code)]
async fn insert_outbox_compiles_in_transactions(
    pg: &sqlx::PgPool,
    lite: &sqlx::SqlitePool,
    mail: &OutgoingMail,
    now: time::OffsetDateTime,
) -> crate::store::Result<()> {
    let mut tx = pg.begin().await.map_err(super::db_error)?;
    insert_outbox!(&mut *tx, mail, now)?;
    tx.commit().await.map_err(super::db_error)?;
    let mut tx = lite.begin().await.map_err(super::db_error)?;
    insert_outbox!(&mut *tx, mail, now)?;
    tx.commit().await.map_err(super::db_error)
}

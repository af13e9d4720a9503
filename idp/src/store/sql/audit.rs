//! The `audit_event` table: an append-only trail.

use sqlx::FromRow;
use sqlx::types::Json;

use super::Ts;
use crate::domain::{ClientId, UserId};
use crate::store::{AuditEvent, RecordedAuditEvent};

#[derive(FromRow)]
pub(in crate::store) struct AuditRow {
    audit_event_id: i64,
    occurred_at: Ts,
    kind: String,
    user_id: Option<String>,
    actor: Option<String>,
    client_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: Json<serde_json::Value>,
    user_email: Option<String>,
    actor_email: Option<String>,
}

impl From<AuditRow> for RecordedAuditEvent {
    fn from(r: AuditRow) -> Self {
        RecordedAuditEvent {
            id: r.audit_event_id,
            occurred_at: r.occurred_at.into(),
            event: AuditEvent {
                kind: r.kind,
                user_id: r.user_id.map(UserId::from_trusted),
                actor: r.actor,
                client_id: r.client_id.map(ClientId::from_trusted),
                ip: r.ip,
                user_agent: r.user_agent,
                detail: r.detail.0,
            },
            user_email: r.user_email,
            actor_email: r.actor_email,
        }
    }
}

/// The current addresses of the account concerned and of the acting
/// administrator (`actor` = `user:<id>`), looked up by primary key.
macro_rules! WITH_EMAILS {
    () => {
        " u.email as user_email, au.email as actor_email
          from audit_event a
          left join user_account u on u.user_id = a.user_id
          left join user_account au on a.actor like 'user:%' and au.user_id = substr(a.actor, 6)"
    };
}
pub(in crate::store) use WITH_EMAILS;

/// A page of the trail, newest first: optional user ($1), kind ($2), time
/// range [$3, $4) and cursor (ids below $5), at most $6 events. One user's
/// page walks the index on (user_id, audit_event_id) backwards from the
/// cursor and stops at the limit, however long the user's history
/// (migration 0007).
pub const SEARCH_AUDIT_EVENTS: &str = concat!(
    "select a.audit_event_id, a.occurred_at, a.kind, a.user_id, a.actor, a.client_id, a.ip, a.user_agent, a.detail,",
    WITH_EMAILS!(),
    " where ($1 is null or a.user_id = $1)
       and ($2 is null or a.kind = $2)
       and ($3 is null or a.occurred_at >= $3)
       and ($4 is null or a.occurred_at < $4)
       and ($5 is null or a.audit_event_id < $5)
     order by a.audit_event_id desc limit $6"
);

/// Implements [`AuditStore`](crate::store::AuditStore) for a store with a `pool` field.
macro_rules! impl_audit_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::AuditStore for $store {
            async fn record(
                &self,
                e: $crate::store::AuditEvent,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<()> {
                sqlx::query(
                    "insert into audit_event (occurred_at, kind, user_id, actor, client_id, ip, user_agent, detail)
                     values ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind($crate::store::sql::Ts(now))
                .bind(&e.kind)
                .bind(e.user_id.as_ref().map(|u| u.as_str()))
                .bind(&e.actor)
                .bind(e.client_id.as_ref().map(|c| c.as_str()))
                .bind(&e.ip)
                .bind(&e.user_agent)
                .bind(sqlx::types::Json(&e.detail))
                .execute(&mut *self.pool.conn().await?)
                .await
                .map(|_| ())
                .map_err($crate::store::sql::db_error)
            }

            async fn audit_events(
                &self,
                user: Option<&$crate::domain::UserId>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::RecordedAuditEvent>> {
                sqlx::query_as::<_, $crate::store::sql::audit::AuditRow>(
                    concat!(
                        "select a.audit_event_id, a.occurred_at, a.kind, a.user_id, a.actor, a.client_id, a.ip, a.user_agent, a.detail,",
                        $crate::store::sql::audit::WITH_EMAILS!(),
                        " where ($1 is null or a.user_id = $1)
                         order by a.audit_event_id desc limit $2"
                    ),
                )
                .bind(user.map(|u| u.as_str()))
                .bind(i64::from(limit))
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect())
                .map_err($crate::store::sql::db_error)
            }

            async fn search_audit_events(
                &self,
                q: &$crate::store::AuditQuery,
            ) -> $crate::store::Result<Vec<$crate::store::RecordedAuditEvent>> {
                sqlx::query_as::<_, $crate::store::sql::audit::AuditRow>(
                    $crate::store::sql::audit::SEARCH_AUDIT_EVENTS,
                )
                .bind(q.user.as_ref().map(|u| u.as_str()))
                .bind(q.kind.as_deref())
                .bind(q.since.map($crate::store::sql::Ts))
                .bind(q.until.map($crate::store::sql::Ts))
                .bind(q.before_id)
                .bind(i64::from(q.limit))
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect())
                .map_err($crate::store::sql::db_error)
            }
        }
    };
}
pub(in crate::store) use impl_audit_store;

//! The `user_account` table.

use sqlx::FromRow;

use super::Ts;
use crate::domain::{Email, UserId};
use crate::store::User;

#[derive(FromRow)]
pub(in crate::store) struct UserRow {
    user_id: String,
    email: String,
    name: String,
    email_verified: bool,
    password_hash: Option<String>,
    disabled: bool,
    locked_until: Option<Ts>,
    is_admin: bool,
    created_at: Ts,
    updated_at: Ts,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: UserId::from_trusted(r.user_id),
            email: Email::from_trusted(r.email),
            name: r.name,
            email_verified: r.email_verified,
            password_hash: r.password_hash,
            disabled: r.disabled,
            locked_until: r.locked_until.map(Into::into),
            is_admin: r.is_admin,
            created_at: r.created_at.into(),
            updated_at: r.updated_at.into(),
        }
    }
}

/// The columns of a [`UserRow`], for the queries below.
macro_rules! USER_COLUMNS {
    () => {
        "select user_id, email, name, email_verified, password_hash, disabled, locked_until, is_admin, created_at, updated_at
         from user_account"
    };
}

/// Accounts in email order, at most $1; the next page after cursor $2.
/// Two statements, not one with an optional cursor (`$2 is null or ...`):
/// PostgreSQL plans such a statement anew on every execution, which on a
/// large table costs more than running it.
pub(in crate::store) const LIST_USERS_FIRST: &str =
    concat!(USER_COLUMNS!(), " order by email_key limit $1");
pub(in crate::store) const LIST_USERS_NEXT: &str = concat!(
    USER_COLUMNS!(),
    " where email_key > $2 order by email_key limit $1"
);

/// The statements of the admin search, one per shape of request so that
/// each has no optional parameter and PostgreSQL can keep one plan for it:
/// the first page or the next one (after cursor $4), with or without the
/// match on the user id (when the text is one: $4, or $5 after a cursor).
/// A prefix is the range [$1, $2) in code-point order; limit $3.
pub struct SearchUsers {
    pub first: &'static str,
    pub first_or_id: &'static str,
    pub next: &'static str,
    pub next_or_id: &'static str,
}

impl SearchUsers {
    /// The statement for a request: bind low, high, limit, then the cursor
    /// when `next`, then the id when `or_id`.
    pub fn pick(&self, next: bool, or_id: bool) -> &'static str {
        match (next, or_id) {
            (false, false) => self.first,
            (false, true) => self.first_or_id,
            (true, false) => self.next,
            (true, true) => self.next_or_id,
        }
    }
}

/// One search statement of PostgreSQL: the email (key) or the lowercased
/// name in the range, compared `collate "C"` so that the two `collate "C"`
/// indexes of migration 0007 serve it whatever the database's collation; a
/// contains-search (`like '%x%'`) could only be a scan.
macro_rules! search_postgres {
    ($or_id:literal, $after:literal) => {
        concat!(
            USER_COLUMNS!(),
            r#" where ((email_key collate "C" >= $1 and email_key collate "C" < $2)
                    or (lower(name) collate "C" >= $1 and lower(name) collate "C" < $2)"#,
            $or_id,
            ")",
            $after,
            " order by email_key limit $3"
        )
    };
}

/// The same on SQLite, whose default collation already compares code
/// points: the unique index on `email_key` and the index on `lower(name)`
/// (migration 0007) serve the ranges.
macro_rules! search_sqlite {
    ($or_id:literal, $after:literal) => {
        concat!(
            USER_COLUMNS!(),
            " where ((email_key >= $1 and email_key < $2)
                    or (lower(name) >= $1 and lower(name) < $2)",
            $or_id,
            ")",
            $after,
            " order by email_key limit $3"
        )
    };
}

pub const SEARCH_USERS_POSTGRES: SearchUsers = SearchUsers {
    first: search_postgres!("", ""),
    first_or_id: search_postgres!(" or user_id = $4", ""),
    next: search_postgres!("", " and email_key > $4"),
    next_or_id: search_postgres!(" or user_id = $5", " and email_key > $4"),
};

pub const SEARCH_USERS_SQLITE: SearchUsers = SearchUsers {
    first: search_sqlite!("", ""),
    first_or_id: search_sqlite!(" or user_id = $4", ""),
    next: search_sqlite!("", " and email_key > $4"),
    next_or_id: search_sqlite!(" or user_id = $5", " and email_key > $4"),
};

/// The range of strings that start with `text` lowercased: `[low, high)` in
/// code-point order, `high` being `low` with its last character replaced by
/// the next one (a character with no next one is dropped and the one before
/// it moved instead; `None` when nothing is left: no upper bound).
pub fn prefix_bounds(text: &str) -> (String, Option<String>) {
    let low = text.to_lowercase();
    let mut chars: Vec<char> = low.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return (low, Some(chars.into_iter().collect()));
        }
    }
    (low, None)
}

/// Implements [`UserStore`](crate::store::UserStore) for a store with a `pool` field.
macro_rules! impl_user_store {
    ($store:ty, $search:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::UserStore for $store {
            async fn create_user(
                &self,
                user: $crate::store::NewUser,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<$crate::store::User> {
                let now = $crate::store::sql::Ts(now);
                sqlx::query_as::<_, $crate::store::sql::user::UserRow>(
                    "insert into user_account (user_id, email, email_key, name, email_verified, password_hash, is_admin, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                     returning user_id, email, name, email_verified, password_hash, disabled, locked_until, is_admin, created_at, updated_at",
                )
                .bind($crate::domain::UserId::generate().as_str())
                .bind(user.email.as_str())
                .bind(user.email.key())
                .bind(&user.name)
                .bind(user.email_verified)
                .bind(&user.password_hash)
                .bind(user.is_admin)
                .bind(now)
                .fetch_one(&mut *self.pool.conn().await?)
                .await
                .map(Into::into)
                .map_err($crate::store::sql::db_error)
            }

            async fn user_by_email(
                &self,
                email: &$crate::domain::Email,
            ) -> $crate::store::Result<Option<$crate::store::User>> {
                sqlx::query_as::<_, $crate::store::sql::user::UserRow>(
                    "select user_id, email, name, email_verified, password_hash, disabled, locked_until, is_admin, created_at, updated_at
                     from user_account where email_key = $1",
                )
                .bind(email.key())
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map(|r| r.map(Into::into))
                .map_err($crate::store::sql::db_error)
            }

            async fn user_by_id(
                &self,
                id: &$crate::domain::UserId,
            ) -> $crate::store::Result<Option<$crate::store::User>> {
                sqlx::query_as::<_, $crate::store::sql::user::UserRow>(
                    "select user_id, email, name, email_verified, password_hash, disabled, locked_until, is_admin, created_at, updated_at
                     from user_account where user_id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map(|r| r.map(Into::into))
                .map_err($crate::store::sql::db_error)
            }

            async fn list_users(
                &self,
                limit: u32,
                offset: u32,
            ) -> $crate::store::Result<Vec<$crate::store::User>> {
                sqlx::query_as::<_, $crate::store::sql::user::UserRow>(
                    "select user_id, email, name, email_verified, password_hash, disabled, locked_until, is_admin, created_at, updated_at
                     from user_account order by email_key limit $1 offset $2",
                )
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect())
                .map_err($crate::store::sql::db_error)
            }

            async fn search_users(
                &self,
                query: &$crate::store::UserQuery,
            ) -> $crate::store::Result<Vec<$crate::store::User>> {
                let text = query.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
                let after = query.after_email_key.as_deref();
                let limit = i64::from(query.limit);
                let Some(text) = text else {
                    let statement = match after {
                        None => $crate::store::sql::user::LIST_USERS_FIRST,
                        Some(_) => $crate::store::sql::user::LIST_USERS_NEXT,
                    };
                    let mut q = sqlx::query_as::<_, $crate::store::sql::user::UserRow>(statement)
                        .bind(limit);
                    if let Some(after) = after {
                        q = q.bind(after);
                    }
                    return q
                        .fetch_all(&mut *self.pool.conn().await?)
                        .await
                        .map(|rows| rows.into_iter().map(Into::into).collect())
                        .map_err($crate::store::sql::db_error);
                };
                let (low, high) = $crate::store::sql::user::prefix_bounds(text);
                // No upper bound (a text of U+10FFFF only): one past any string.
                let high = high.unwrap_or_else(|| format!("{low}{}", char::MAX));
                // Only a text that is a user id can match one.
                let id = $crate::domain::UserId::parse(text).ok();
                let statement = $search.pick(after.is_some(), id.is_some());
                let mut q = sqlx::query_as::<_, $crate::store::sql::user::UserRow>(statement)
                    .bind(&low)
                    .bind(&high)
                    .bind(limit);
                if let Some(after) = after {
                    q = q.bind(after);
                }
                if let Some(id) = &id {
                    q = q.bind(id.as_str());
                }
                q.fetch_all(&mut *self.pool.conn().await?)
                    .await
                    .map(|rows| rows.into_iter().map(Into::into).collect())
                    .map_err($crate::store::sql::db_error)
            }

            async fn set_user_disabled(
                &self,
                id: &$crate::domain::UserId,
                disabled: bool,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<Option<$crate::store::User>> {
                sqlx::query_as::<_, $crate::store::sql::user::UserRow>(
                    "update user_account set disabled = $2, updated_at = $3 where user_id = $1
                     returning user_id, email, name, email_verified, password_hash, disabled, locked_until, is_admin, created_at, updated_at",
                )
                .bind(id.as_str())
                .bind(disabled)
                .bind($crate::store::sql::Ts(now))
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map(|r| r.map(Into::into))
                .map_err($crate::store::sql::db_error)
            }

            async fn update_user(
                &self,
                id: &$crate::domain::UserId,
                changes: &$crate::store::UserChanges,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<Option<$crate::store::User>> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let user = sqlx::query_as::<_, $crate::store::sql::user::UserRow>(
                    "update user_account set name = coalesce($2, name), email = coalesce($3, email),
                         email_key = coalesce($4, email_key), email_verified = coalesce($5, email_verified),
                         updated_at = $6
                     where user_id = $1 and ($7 is null or email_key = $7)
                     returning user_id, email, name, email_verified, password_hash, disabled, locked_until, is_admin, created_at, updated_at",
                )
                .bind(id.as_str())
                .bind(changes.name.as_deref())
                .bind(changes.email.as_ref().map(|e| e.as_str()))
                .bind(changes.email.as_ref().map(|e| e.key()))
                .bind(changes.email_verified)
                .bind(Ts(now))
                .bind(changes.expect_email.as_ref().map(|e| e.key()))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                if user.is_some() && changes.email.is_some() {
                    for void in [
                        "update password_reset_token set used_at = $2 where user_id = $1 and used_at is null",
                        "update email_verification_token set used_at = $2 where user_id = $1 and used_at is null",
                    ] {
                        sqlx::query(void)
                            .bind(id.as_str())
                            .bind(Ts(now))
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                    }
                }
                tx.commit().await.map_err(db_error)?;
                Ok(user.map(Into::into))
            }

            async fn legacy_password_hashes(
                &self,
                own_prefix: &str,
                limit: u32,
            ) -> $crate::store::Result<Vec<String>> {
                sqlx::query_scalar::<_, String>(
                    "select password_hash from user_account
                     where password_hash is not null and password_hash not like $1
                     order by random() limit $2",
                )
                .bind(format!("{own_prefix}%"))
                .bind(i64::from(limit))
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)
            }

            async fn set_user_admin(
                &self,
                id: &$crate::domain::UserId,
                is_admin: bool,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<Option<$crate::store::User>> {
                sqlx::query_as::<_, $crate::store::sql::user::UserRow>(
                    "update user_account set is_admin = $2, updated_at = $3 where user_id = $1
                     returning user_id, email, name, email_verified, password_hash, disabled, locked_until, is_admin, created_at, updated_at",
                )
                .bind(id.as_str())
                .bind(is_admin)
                .bind($crate::store::sql::Ts(now))
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map(|r| r.map(Into::into))
                .map_err($crate::store::sql::db_error)
            }
        }
    };
}
pub(in crate::store) use impl_user_store;

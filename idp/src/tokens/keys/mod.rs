//! Token signing keys: one RS256, one ES256 and one EdDSA key signing at a
//! time, kept in the durable store, cached on every node, published at
//! `/jwks` (RFC 7517, `crate::oidc::jwks`) and rotated on a schedule with overlap.
//!
//! A key's life (times from the app clock, durations from `[keys]`):
//!
//! ```text
//! created ──publish_ahead──► activates ──► retires ──token_max_lifetime──► expires
//! │ in JWKS ...................................................................│
//!                            │ signs ......│
//! ```
//!
//! A key retires when its successor activates, so exactly one key per
//! algorithm signs at any instant, and relying parties have seen a key in
//! JWKS for `publish_ahead` before the first token it signs. Rotations go
//! through [`add_signing_keys_unless_fresh`](crate::store::KeyStore::add_signing_keys_unless_fresh), which serialises
//! nodes and refuses a second rotation of the same period.

mod error;
mod material;
#[cfg(test)]
mod tests;
mod verify;

pub use crate::crypto::envelope::{EnvelopeError, Kek};
pub use error::KeyError;
pub use verify::{TokenError, VerifyOptions, check_time_claims};

use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::{Duration, OffsetDateTime};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::KeysConfig;
use crate::domain::IdTokenAlg;
use crate::store::{SharedStore, StoredKey};
use material::{ALL_ALGS, Material, jwt_alg};

/// Where a key is in its life at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    Active,
    /// No longer signing; published until it expires.
    Retired,
}

impl KeyState {
    pub fn of(key: &StoredKey, now: OffsetDateTime) -> Self {
        if key.retires_at.is_some_and(|r| r <= now) {
            KeyState::Retired
        } else if key.activates_at > now {
            KeyState::Next
        } else {
            KeyState::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

/// The signing keys as this node knows them: a cheap handle (clone it).
#[derive(Clone)]
pub struct SigningKeys(Arc<Inner>);

struct Inner {
    store: SharedStore,
    clock: SharedClock,
    schedule: Schedule,
    kek: Option<Arc<Kek>>,
    set: RwLock<Arc<KeySet>>,
    /// One reload at a time, so a slow one cannot overwrite a newer one.
    reloading: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone, Copy)]
struct Schedule {
    rotation: Duration,
    publish_ahead: Duration,
    token_max_lifetime: Duration,
    refresh: std::time::Duration,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.snapshot();
        f.debug_struct("SigningKeys")
            .field("kids", &set.keys.iter().map(|k| &k.kid).collect::<Vec<_>>())
            .field("schedule", &self.0.schedule)
            .finish_non_exhaustive()
    }
}

/// A key not yet expired, parsed and ready.
struct LoadedKey {
    kid: String,
    alg: IdTokenAlg,
    material: Arc<Material>,
    jwk: serde_json::Value,
    created_at: OffsetDateTime,
    activates_at: OffsetDateTime,
    retires_at: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
}

impl LoadedKey {
    fn signs_at(&self, now: OffsetDateTime) -> bool {
        self.activates_at <= now && self.retires_at.is_none_or(|r| r > now)
    }

    fn published_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }

    fn same_schedule(&self, other: &LoadedKey) -> bool {
        (
            &self.kid,
            self.activates_at,
            self.retires_at,
            self.expires_at,
        ) == (
            &other.kid,
            other.activates_at,
            other.retires_at,
            other.expires_at,
        )
    }
}

/// An immutable snapshot: the keys, newest first, and their JWKS document.
struct KeySet {
    keys: Vec<LoadedKey>,
    jwks: Bytes,
}

impl KeySet {
    fn new(mut keys: Vec<LoadedKey>) -> Result<Self, KeyError> {
        keys.sort_by(|a, b| (b.activates_at, &b.kid).cmp(&(a.activates_at, &a.kid)));
        #[derive(Serialize)]
        struct Jwks<'a> {
            keys: Vec<&'a serde_json::Value>,
        }
        let jwks = serde_json::to_vec(&Jwks {
            keys: keys.iter().map(|k| &k.jwk).collect(),
        })
        .map_err(|e| KeyError::Crypto(format!("JWKS: {e}")))?;
        Ok(Self {
            keys,
            jwks: Bytes::from(jwks),
        })
    }

    /// The newest key of `alg` signing at `now`. Should clocks disagree at
    /// the very first start (no key active yet here), the oldest key that
    /// has not retired.
    fn signer(&self, alg: IdTokenAlg, now: OffsetDateTime) -> Option<&LoadedKey> {
        let of_alg = self.keys.iter().filter(|k| k.alg == alg);
        of_alg.clone().find(|k| k.signs_at(now)).or_else(|| {
            of_alg
                .filter(|k| k.retires_at.is_none_or(|r| r > now))
                .min_by_key(|k| k.activates_at)
        })
    }

    fn published(&self, kid: &str, now: OffsetDateTime) -> Option<&LoadedKey> {
        self.keys
            .iter()
            .find(|k| k.kid == kid && k.published_at(now))
    }
}

/// The key-encryption key `keys.encryption_key` names, if any.
pub fn encryption_key(config: &KeysConfig) -> Result<Option<Arc<Kek>>, KeyError> {
    config
        .encryption_key
        .as_ref()
        .map(|secret| Kek::from_base64(secret.expose()).map(Arc::new))
        .transpose()
        .map_err(KeyError::BadEncryptionKey)
}

impl SigningKeys {
    /// Loads the keys from the store, creating the first set (RS256, ES256,
    /// EdDSA, signing at once) when there is none.
    /// `kek`: the key-encryption key of `config` ([`encryption_key`]),
    /// parsed once at start-up and shared with the other sealed secrets.
    pub async fn load(
        store: SharedStore,
        clock: SharedClock,
        config: &KeysConfig,
        kek: Option<Arc<Kek>>,
    ) -> Result<Self, KeyError> {
        let days = i64::try_from(config.rotation_days).unwrap_or(i64::MAX);
        let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
        let schedule = Schedule {
            rotation: Duration::days(days),
            publish_ahead: secs(config.publish_ahead_minutes.saturating_mul(60)),
            token_max_lifetime: secs(config.token_max_lifetime_secs),
            refresh: std::time::Duration::from_secs(config.refresh_secs),
        };
        let keys = Self(Arc::new(Inner {
            store,
            clock,
            schedule,
            kek,
            set: RwLock::new(Arc::new(KeySet::new(Vec::new())?)),
            reloading: tokio::sync::Mutex::new(()),
        }));
        keys.reload().await?;
        let now = keys.0.clock.now();
        let set = keys.snapshot();
        let missing: Vec<IdTokenAlg> = ALL_ALGS
            .into_iter()
            .filter(|&alg| {
                !set.keys
                    .iter()
                    .any(|k| k.alg == alg && k.retires_at.is_none())
            })
            .collect();
        if !missing.is_empty() {
            // No relying party can have tokens of these algorithms yet: they
            // sign at once. Nodes starting together create them once.
            if keys
                .add(&missing, now, now, now - schedule.rotation)
                .await?
                .is_some()
            {
                tracing::info!(algs = ?missing, "created signing keys");
            }
            keys.reload().await?;
        }
        Ok(keys)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.0.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Signs `claims` as a JWT with header `alg`, `kid` and `typ` (`"JWT"`
    /// for ID tokens, `"at+jwt"` for access tokens), with the key of `alg`
    /// signing now.
    pub fn sign<T: Serialize>(
        &self,
        alg: IdTokenAlg,
        typ: &str,
        claims: &T,
    ) -> Result<String, KeyError> {
        let set = self.snapshot();
        let key = set
            .signer(alg, self.0.clock.now())
            .ok_or(KeyError::NoSigningKey(alg))?;
        key.material.sign(typ, claims)
    }

    /// The kid that [`SigningKeys::sign`] uses for `alg` now.
    pub fn signing_kid(&self, alg: IdTokenAlg) -> Option<String> {
        self.snapshot()
            .signer(alg, self.0.clock.now())
            .map(|k| k.kid.clone())
    }

    /// Verifies a token signed by any published key and returns its claims
    /// as they are; `exp`, `nbf` and `iat` are checked with the app clock.
    pub fn verify_claims(
        &self,
        token: &str,
        options: &VerifyOptions<'_>,
    ) -> Result<serde_json::Value, KeyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if let Some(typ) = options.typ
            && !verify::typ_matches(header.typ.as_deref(), typ)
        {
            return Err(TokenError::WrongType.into());
        }
        let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
        let now = self.0.clock.now();
        let set = self.snapshot();
        let key = set.published(kid, now).ok_or(TokenError::UnknownKey)?;
        let alg = jwt_alg(key.alg);
        if header.alg != alg {
            return Err(TokenError::WrongAlgorithm.into());
        }
        let validation = verify::jwt_validation(alg, options);
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, &key.material.decoding, &validation)
                .map_err(TokenError::from)?;
        check_time_claims(&data.claims, now, options.leeway)?;
        Ok(data.claims)
    }

    /// [`SigningKeys::verify_claims`], deserialised into `T`.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        options: &VerifyOptions<'_>,
    ) -> Result<T, KeyError> {
        let claims = self.verify_claims(token, options)?;
        serde_json::from_value(claims).map_err(|_| TokenError::Malformed.into())
    }

    /// [`check_time_claims`] at the app clock's now.
    pub fn check_times(
        &self,
        claims: &serde_json::Value,
        leeway: Duration,
    ) -> Result<(), TokenError> {
        check_time_claims(claims, self.0.clock.now(), leeway)
    }

    /// `{"keys":[...]}`: every key not expired, built when the set changes.
    pub fn jwks_json(&self) -> Bytes {
        self.snapshot().jwks.clone()
    }

    /// Re-reads the store. Keys already known are not decrypted again; the
    /// JWKS document is rebuilt only when a key or a date changed.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let _one = self.0.reloading.lock().await;
        let rows = self.0.store.signing_keys().await?;
        let now = self.0.clock.now();
        let current = self.snapshot();
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows
            .into_iter()
            .filter(|r| r.expires_at.is_none_or(|e| e > now))
        {
            let material = match current.keys.iter().find(|k| k.kid == row.kid) {
                Some(known) => known.material.clone(),
                None => Arc::new(self.open(&row)?),
            };
            keys.push(LoadedKey {
                kid: row.kid,
                alg: row.alg,
                material,
                jwk: row.public_jwk,
                created_at: row.created_at,
                activates_at: row.activates_at,
                retires_at: row.retires_at,
                expires_at: row.expires_at,
            });
        }
        let set = KeySet::new(keys)?;
        let unchanged = set.keys.len() == current.keys.len()
            && set
                .keys
                .iter()
                .zip(&current.keys)
                .all(|(a, b)| a.same_schedule(b));
        if !unchanged {
            *self.0.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        }
        Ok(())
    }

    fn open(&self, row: &StoredKey) -> Result<Material, KeyError> {
        let pem = if row.private_key_encrypted {
            let kek = self.0.kek.as_ref().ok_or(KeyError::NoEncryptionKey)?;
            let plain = kek
                .open(&envelope_context(&row.kid), &row.private_key)
                .map_err(|_| KeyError::Decrypt)?;
            String::from_utf8(plain).map_err(|_| KeyError::Decrypt)?
        } else {
            row.private_key.clone()
        };
        Material::new(row.alg, &row.kid, &pem, &row.public_jwk)
    }

    /// Whether the newest key of some algorithm is `rotation_days` old.
    fn rotation_due(&self, now: OffsetDateTime) -> bool {
        let set = self.snapshot();
        ALL_ALGS.into_iter().any(|alg| {
            set.keys
                .iter()
                .filter(|k| k.alg == alg)
                .map(|k| k.created_at)
                .max()
                .is_none_or(|newest| newest <= now - self.0.schedule.rotation)
        })
    }

    /// Makes a new key per algorithm, published now and signing after
    /// `publish_ahead`; the keys they replace retire then and expire
    /// `token_max_lifetime` later. Unless `force`, only when a rotation is
    /// due, and only once however many nodes try at the same time; with
    /// `force` (`idp keys rotate`), always. Returns the new kids, or `None`
    /// when nothing was added.
    pub async fn rotate_keys(&self, force: bool) -> Result<Option<Vec<String>>, KeyError> {
        let now = self.0.clock.now();
        if !force && !self.rotation_due(now) {
            return Ok(None);
        }
        let fresh_after = if force {
            now
        } else {
            now - self.0.schedule.rotation
        };
        let added = self
            .add(
                &ALL_ALGS,
                now,
                now + self.0.schedule.publish_ahead,
                fresh_after,
            )
            .await?;
        self.reload().await?;
        Ok(added)
    }

    /// [`SigningKeys::rotate_keys`]: whether keys were added.
    pub async fn rotate(&self, force: bool) -> Result<bool, KeyError> {
        Ok(self.rotate_keys(force).await?.is_some())
    }

    async fn add(
        &self,
        algs: &[IdTokenAlg],
        now: OffsetDateTime,
        activates_at: OffsetDateTime,
        fresh_after: OffsetDateTime,
    ) -> Result<Option<Vec<String>>, KeyError> {
        let inner = self.0.clone();
        let algs = algs.to_vec();
        // RSA key generation takes a while: keep it off the async workers.
        let new_keys = tokio::task::spawn_blocking(move || {
            algs.into_iter()
                .map(|alg| new_key(alg, inner.kek.as_deref(), now, activates_at))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| KeyError::Crypto(format!("key generation stopped: {e}")))??;
        let kids = new_keys.iter().map(|k| k.kid.clone()).collect();
        let added = self
            .0
            .store
            .add_signing_keys_unless_fresh(
                new_keys,
                activates_at,
                activates_at + self.0.schedule.token_max_lifetime,
                fresh_after,
            )
            .await?;
        Ok(added.then_some(kids))
    }

    /// One maintenance pass: reload, rotate when due. Expired keys leave
    /// JWKS at their `expires_at` (see [`SigningKeys::reload`]); their rows
    /// are deleted by the retention job (`crate::retention`), once no token
    /// they signed can still be valid.
    pub async fn maintain(&self) -> Result<(), KeyError> {
        self.reload().await?;
        if let Some(kids) = self.rotate_keys(false).await? {
            tracing::info!(?kids, "rotated signing keys");
        }
        Ok(())
    }

    /// Runs [`SigningKeys::maintain`] every `keys.refresh_secs` (real time)
    /// until `shutdown` is cancelled.
    pub fn spawn_maintenance(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let keys = self.clone();
        tokio::spawn(async move {
            let period = keys.0.schedule.refresh;
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = ticks.tick() => {
                        if let Err(e) = keys.maintain().await {
                            tracing::warn!(error = %e, "signing key maintenance failed");
                        }
                    }
                }
            }
        })
    }
}

fn new_key(
    alg: IdTokenAlg,
    kek: Option<&Kek>,
    now: OffsetDateTime,
    activates_at: OffsetDateTime,
) -> Result<StoredKey, KeyError> {
    let pem = material::generate_pem(alg)?;
    let (kid, public_jwk) = material::public_jwk(alg, &pem)?;
    let (private_key, private_key_encrypted) = match kek {
        Some(kek) => (
            kek.seal(&envelope_context(&kid), pem.as_bytes())
                .map_err(KeyError::BadEncryptionKey)?,
            true,
        ),
        None => (pem, false),
    };
    Ok(StoredKey {
        kid,
        alg,
        private_key,
        private_key_encrypted,
        public_jwk,
        created_at: now,
        activates_at,
        retires_at: None,
        expires_at: None,
    })
}

/// What a signing key's envelope is bound to (its row).
fn envelope_context(kid: &str) -> String {
    format!("idp signing key {kid}")
}

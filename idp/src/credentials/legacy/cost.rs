//! What a check of a stored hash costs, estimated from its parameters (the
//! password hasher picks the costliest of a sample with it, then times that
//! one for real), and whether its cost is the deployment's own.

use super::{Check, Format, LegacyHash, Prf};

impl LegacyHash {
    /// Whether the hash is already the deployment's own: argon2id at its
    /// `params` (memory, passes, lanes). Every other hash, an argon2id of
    /// other parameters included, is checked as a legacy one (its cost is
    /// not the deployment's, so its time would tell it apart) and replaced
    /// at the first correct sign-in.
    pub fn is_current(&self, params: &argon2::Params) -> bool {
        self.format == Format::Argon2id
            && self.argon2_params().is_some_and(|p| {
                (p.m_cost(), p.t_cost(), p.p_cost())
                    == (params.m_cost(), params.t_cost(), params.p_cost())
            })
    }

    /// An argon2 hash's parameters (none for the other formats).
    fn argon2_params(&self) -> Option<argon2::Params> {
        use argon2::password_hash::phc::PasswordHash;
        let Check::Argon2(phc) = &self.check else {
            return None;
        };
        PasswordHash::new(phc)
            .ok()
            .and_then(|h| argon2::Params::try_from(&h).ok())
    }

    /// A rough estimate of one check's cost, in nanoseconds of one core,
    /// from the hash's parameters alone: enough to pick the costliest of a
    /// sample of stored hashes (whose check is then timed for real), not a
    /// measurement.
    pub fn work(&self) -> u64 {
        let rounds = |log2: u32| 1u64 << log2.min(40);
        match &self.check {
            Check::Bcrypt(hash) | Check::WordPress(hash) => {
                let cost = hash.get(4..6).and_then(|c| c.parse().ok()).unwrap_or(31);
                rounds(cost).saturating_mul(60_000)
            }
            Check::Argon2(_) => self.argon2_params().map_or(u64::MAX, |p| {
                u64::from(p.m_cost())
                    .saturating_mul(u64::from(p.t_cost()))
                    .saturating_mul(1_000)
            }),
            Check::Scrypt { params, .. } => rounds(u32::from(params.log_n()))
                .saturating_mul(u64::from(params.r()))
                .saturating_mul(u64::from(params.p()))
                .saturating_mul(800),
            Check::Pbkdf2 {
                prf, iterations, ..
            } => {
                let per_iteration = match prf {
                    Prf::Sha1 => 1_500,
                    Prf::Sha256 => 2_500,
                    Prf::Sha512 => 3_000,
                };
                u64::from(*iterations).saturating_mul(per_iteration)
            }
            Check::ShaCrypt(hash) => {
                let given = hash
                    .get(3..)
                    .and_then(|r| r.strip_prefix("rounds="))
                    .and_then(|r| r.split('$').next())
                    .and_then(|n| n.parse::<u64>().ok());
                given.unwrap_or(5_000).saturating_mul(350)
            }
            Check::Md5Crypt { .. } => 1_000 * 300,
            Check::Phpass { log2, .. } => rounds(*log2).saturating_mul(300),
            Check::Ssha { .. } => 1_000,
        }
    }
}

//! What time it is, for the console: a seam the embedding fills.

/// The console's time (unix seconds): the provider's clock when mounted by
/// `idp serve` (so tests move both together), the system clock otherwise.
pub trait Clock: Send + Sync {
    fn unix_now(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

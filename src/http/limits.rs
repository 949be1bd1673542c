//! Per-address limits on new sessions: offers come at most at `offers_per_minute` (a
//! token bucket that allows a burst of [`BURST`]), else `429` with `Retry-After`. The
//! operator's requests are never limited; the number of sessions per address is capped in
//! [`crate::sessions`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Offers one address may send at once before the rate applies.
pub const BURST: f64 = 20.0;
/// Addresses remembered; past this, full buckets (idle addresses) are forgotten first.
const REMEMBERED: usize = 4096;

/// The offer rate limit, per client address.
pub struct OfferLimit {
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl OfferLimit {
    /// `per_minute` offers a minute per address; 0 is no limit.
    pub fn new(per_minute: u32) -> OfferLimit {
        OfferLimit { per_second: f64::from(per_minute) / 60.0, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one offer for `address` at `now`, or says how long until the next is allowed.
    pub fn take(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= REMEMBERED && !buckets.contains_key(&address) {
            let rate = self.per_second;
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < BURST);
        }
        let bucket = buckets.entry(address).or_insert(Bucket { tokens: BURST, at: now });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(BURST);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_address() {
        let limit = OfferLimit::new(60);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().expect("ip"), "192.0.2.2".parse().expect("ip"));
        let start = Instant::now();
        for _ in 0..BURST as usize {
            assert_eq!(limit.take(a, start), Ok(()));
        }
        let wait = limit.take(a, start).expect_err("the burst is spent");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(900), "{wait:?}");
        assert_eq!(limit.take(b, start), Ok(()), "another address is not held back");
        assert_eq!(limit.take(a, start + Duration::from_secs(1)), Ok(()), "one a second comes back");
        assert!(limit.take(a, start + Duration::from_secs(1)).is_err());
        assert_eq!(OfferLimit::new(0).take(a, start), Ok(()), "0 is no limit");
    }
}

//! LookupEvents allows 2 requests per second per account and region: a client-side limiter that
//! hands out one slot per interval, so pages are read as fast as the quota allows and no faster.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// CloudTrail's quota for LookupEvents, per account and region.
pub const LOOKUPS_PER_SECOND: u32 = 2;

pub struct Limiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Limiter {
    pub fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for the next slot and takes it; `false`, without waiting or taking it, when that
    /// slot falls after `until` (the invocation could not use it).
    pub async fn acquire(&self, until: Option<Instant>) -> bool {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let slot = (*next).max(Instant::now());
            if until.is_some_and(|u| slot > u) {
                return false;
            }
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot after the bound is refused without waiting, and is not spent: the next caller
    /// still gets it. (Nothing here measures time.)
    #[tokio::test]
    async fn a_slot_past_the_bound_is_refused_not_spent() {
        let limiter = Limiter::new(LOOKUPS_PER_SECOND);
        assert!(
            limiter
                .acquire(Some(Instant::now() + Duration::from_secs(60)))
                .await
        );
        // The next slot is half a second away: past a bound of now.
        assert!(!limiter.acquire(Some(Instant::now())).await);
        assert!(limiter.acquire(None).await, "unbounded always gets a slot");
    }
}

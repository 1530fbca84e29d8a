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

    /// Slots are spaced by the quota; one past the bound is refused, not waited for. (The clock
    /// is tokio's paused clock: nothing here measures time.)
    #[tokio::test(start_paused = true)]
    async fn slots_follow_the_quota_and_stop_at_the_bound() {
        let limiter = Limiter::new(LOOKUPS_PER_SECOND);
        let start = Instant::now();
        let until = start + Duration::from_millis(1200);
        let mut taken = Vec::new();
        while limiter.acquire(Some(until)).await {
            taken.push(Instant::now() - start);
        }
        assert_eq!(
            taken,
            [0, 500, 1000].map(Duration::from_millis).to_vec(),
            "three slots of 500 ms fit in 1.2 s"
        );
        assert!(limiter.acquire(None).await, "unbounded always gets a slot");
    }
}

//! Bounded windows over event time. Each keeps a fixed or capped amount of memory however
//! fast records arrive, because a plugin has a memory cap and a burst must not trip it.

use std::collections::VecDeque;

/// The times of recent occurrences, oldest first, at most `cap` of them.
#[derive(Debug, Default, Clone)]
pub struct Times {
    times: VecDeque<i64>,
}

impl Times {
    /// Records one occurrence at `t`; returns false when it was dropped: too old for the
    /// window, or the oldest had to make room (the count then saturates at `cap`).
    pub fn push(&mut self, t: i64, now: i64, window: i64, cap: usize) -> bool {
        if t <= now - window {
            return true;
        }
        self.expire(now, window);
        let mut kept = true;
        if self.times.len() >= cap {
            self.times.pop_front();
            kept = false;
        }
        self.times.push_back(t);
        kept
    }

    /// Forgets occurrences at or before `now - window`. Records arrive in roughly time
    /// order, so expiring from the front is exact for them and close for stragglers.
    pub fn expire(&mut self, now: i64, window: i64) {
        while self.times.front().is_some_and(|&t| t <= now - window) {
            self.times.pop_front();
        }
    }

    pub fn count(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

const BUCKETS: usize = 60;

/// Counts in 60 buckets of `window / 60`: memory and work per record are constant at any
/// rate, at the price of the window edge moving in steps of one bucket.
#[derive(Debug, Clone)]
pub struct Buckets {
    width: i64,
    slots: [u64; BUCKETS],
    head: Option<i64>,
    total: u64,
}

impl Buckets {
    pub fn new(window: i64) -> Self {
        Self {
            width: (window + BUCKETS as i64 - 1) / BUCKETS as i64,
            slots: [0; BUCKETS],
            head: None,
            total: 0,
        }
    }

    fn index(&self, t: i64) -> i64 {
        t.div_euclid(self.width.max(1))
    }

    /// Moves the window's end to `now`, dropping the buckets that fall out of it.
    pub fn advance(&mut self, now: i64) {
        let now_idx = self.index(now);
        let Some(head) = self.head else {
            self.head = Some(now_idx);
            return;
        };
        if now_idx <= head {
            return;
        }
        let steps = now_idx - head;
        if steps >= BUCKETS as i64 {
            self.slots = [0; BUCKETS];
            self.total = 0;
        } else {
            for i in 1..=steps {
                let slot = (head + i).rem_euclid(BUCKETS as i64) as usize;
                self.total -= self.slots[slot];
                self.slots[slot] = 0;
            }
        }
        self.head = Some(now_idx);
    }

    pub fn add(&mut self, t: i64, now: i64) {
        self.advance(now);
        let now_idx = self.head.unwrap_or_else(|| self.index(now));
        let idx = self.index(t);
        if idx <= now_idx - BUCKETS as i64 || idx > now_idx {
            return;
        }
        self.slots[idx.rem_euclid(BUCKETS as i64) as usize] += 1;
        self.total += 1;
    }

    pub fn total(&mut self, now: i64) -> u64 {
        self.advance(now);
        self.total
    }
}

/// Numeric samples with their times, at most `cap`, plus how many of them are past the
/// rule's threshold, so a quantile check is a comparison instead of a sort.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    samples: VecDeque<(i64, f64)>,
    breaching: usize,
}

impl Samples {
    /// Returns false when the oldest sample had to make room.
    pub fn push(
        &mut self,
        t: i64,
        v: f64,
        now: i64,
        window: i64,
        cap: usize,
        is_breach: impl Fn(f64) -> bool,
    ) -> bool {
        if t <= now - window {
            return true;
        }
        self.expire(now, window, &is_breach);
        let mut kept = true;
        if self.samples.len() >= cap {
            if let Some((_, old)) = self.samples.pop_front() {
                self.breaching -= usize::from(is_breach(old));
            }
            kept = false;
        }
        self.samples.push_back((t, v));
        self.breaching += usize::from(is_breach(v));
        kept
    }

    pub fn expire(&mut self, now: i64, window: i64, is_breach: impl Fn(f64) -> bool) {
        while let Some(&(t, v)) = self.samples.front() {
            if t > now - window {
                break;
            }
            self.samples.pop_front();
            self.breaching -= usize::from(is_breach(v));
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn breaching(&self) -> usize {
        self.breaching
    }

    /// Nearest-rank quantile; sorts a copy, so it runs only when an alert fires.
    pub fn quantile(&self, q: f64) -> f64 {
        let mut values: Vec<f64> = self.samples.iter().map(|&(_, v)| v).collect();
        if values.is_empty() {
            return f64::NAN;
        }
        values.sort_by(f64::total_cmp);
        values[rank(q, values.len()) - 1]
    }
}

/// The 1-based nearest rank of quantile `q` among `n` values: `ceil(q * n)`, at least 1.
pub fn rank(q: f64, n: usize) -> usize {
    // The epsilon keeps `0.99 * 100` at rank 99 when the product lands a hair above it.
    ((q * n as f64 - 1e-9).ceil() as usize).clamp(1, n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn times_expire_and_cap() {
        let mut t = Times::default();
        for i in 0..5 {
            assert!(t.push(i * S, i * S, 60 * S, 10));
        }
        assert_eq!(t.count(), 5);
        t.expire(62 * S, 60 * S);
        assert_eq!(t.count(), 2);
        // too old to count at all
        t.push(S, 62 * S, 60 * S, 10);
        assert_eq!(t.count(), 2);
        let mut capped = Times::default();
        let kept = (0..100).filter(|&i| capped.push(i, 100, 60 * S, 7)).count();
        assert_eq!(capped.count(), 7);
        assert_eq!(kept, 7);
    }

    #[test]
    fn buckets_slide() {
        let mut b = Buckets::new(60 * S);
        for i in 0..60 {
            b.add(i * S, i * S);
        }
        assert_eq!(b.total(59 * S), 60);
        assert_eq!(b.total(89 * S), 30);
        assert_eq!(b.total(500 * S), 0);
        b.add(500 * S, 500 * S);
        b.add(400 * S, 500 * S); // outside the window
        assert_eq!(b.total(500 * S), 1);
    }

    #[test]
    fn samples_track_breaches_through_expiry_and_cap() {
        let above = |v: f64| v > 0.5;
        let mut s = Samples::default();
        for i in 0..10 {
            let v = if i % 2 == 0 { 1.0 } else { 0.1 };
            s.push(i * S, v, i * S, 60 * S, 4, above);
        }
        assert_eq!(s.len(), 4);
        assert_eq!(s.breaching(), 2);
        s.expire(67 * S, 60 * S, above);
        assert_eq!(s.len(), 2);
        assert_eq!(s.breaching(), 1);
        assert_eq!(s.quantile(0.99), 1.0);
        assert_eq!(s.quantile(0.5), 0.1);
        assert_eq!(rank(0.99, 100), 99);
        assert_eq!(rank(0.99, 10), 10);
        assert_eq!(rank(0.5, 1), 1);
    }
}

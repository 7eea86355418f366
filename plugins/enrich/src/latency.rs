//! Order execution latency: `OrderSubmitted` → `OrderAccepted` and → first `OrderFilled`,
//! matched by client order id.
//!
//! Memory is bounded two ways. An order not heard of for `ttl` is dropped; "time" is the
//! event time the plugin has seen (the maximum of `ts_event`, else record timestamps, of
//! order records), so no clock grant is needed and a replayed file ages orders by its own
//! time, and also the host's `tick(now)`, so orders still age while no order flows. A jump
//! back in event time by more than `ttl` (a backtest after the live start-up lines, a file
//! replayed beside a live one) starts a new timeline instead of aging every order at once.
//! When `max_entries` orders are open the least recently active one is dropped. Both
//! evictions are counted, by reason, for `enrich_latency_evictions_total`.
//!
//! The entry also remembers the order's quantity and what has been filled, which is how a
//! fill is told apart as `filled` or `partially_filled`.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pending {
    /// `ts_event` of `OrderSubmitted`, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit_event_ns: Option<i64>,
    /// Record timestamp of `OrderSubmitted`, ns: the fallback when an event lacks `ts_event`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit_record_ns: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<f64>,
    pub filled_qty: f64,
    pub accepted: bool,
    pub fill_seen: bool,
    /// Event time of the last activity, for the TTL.
    pub seen_ns: i64,
    /// The host's `tick` time current at the last activity (`None` before the first tick).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen_tick: Option<i64>,
    #[serde(skip)]
    seq: u64,
}

/// When one order event happened, as far as the record tells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    pub event_ns: Option<i64>,
    pub record_ns: Option<i64>,
}

impl Times {
    /// The time the TTL clock sees: the venue's or engine's event time first.
    pub fn best(&self) -> Option<i64> {
        self.event_ns.or(self.record_ns)
    }
}

/// The outcome of a fill for the record.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Fill {
    /// Latency of the first fill, ns (may be negative when clocks disagree).
    pub first_fill_ns: Option<i64>,
    /// `Some(false)` when the order's quantity is known and not yet reached.
    pub complete: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evictions {
    pub ttl: u64,
    pub capacity: u64,
}

pub struct Tracker {
    ttl_ns: i64,
    max_entries: usize,
    pending: HashMap<Rc<str>, Pending>,
    /// Orders by (last activity, insertion sequence): the oldest are first in line for
    /// both TTL and capacity eviction.
    by_age: BTreeMap<(i64, u64), Rc<str>>,
    seq: u64,
    clock: Option<i64>,
    last_tick: Option<i64>,
    evictions: Evictions,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    clock: Option<i64>,
    last_tick: Option<i64>,
    pending: Vec<(String, Pending)>,
}

const SNAPSHOT_VERSION: u32 = 1;

impl Tracker {
    pub fn new(ttl_ns: i64, max_entries: usize) -> Self {
        Self {
            ttl_ns,
            max_entries,
            pending: HashMap::new(),
            by_age: BTreeMap::new(),
            seq: 0,
            clock: None,
            last_tick: None,
            evictions: Evictions::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    #[cfg(test)]
    pub fn get(&self, id: &str) -> Option<&Pending> {
        self.pending.get(id)
    }

    /// Evictions since the last call, for the caller to turn into counters.
    pub fn take_evictions(&mut self) -> Evictions {
        std::mem::take(&mut self.evictions)
    }

    /// Advances the event-time clock and drops what aged out.
    pub fn observe(&mut self, t: i64) {
        let clock = match self.clock {
            Some(c) if t >= c => t,
            // A new timeline: see the module doc.
            Some(c) if t < c.saturating_sub(self.ttl_ns) => t,
            Some(c) => c,
            None => t,
        };
        self.clock = Some(clock);
        let horizon = clock.saturating_sub(self.ttl_ns);
        while let Some((&(seen, seq), _)) = self.by_age.first_key_value() {
            if seen >= horizon {
                break;
            }
            let id = self.by_age.remove(&(seen, seq)).expect("just seen");
            self.pending.remove(&id);
            self.evictions.ttl += 1;
        }
    }

    /// Host time: drops orders idle for `ttl` of wall time, however the event time goes.
    pub fn tick(&mut self, now_ns: i64) {
        self.last_tick = Some(now_ns);
        let horizon = now_ns.saturating_sub(self.ttl_ns);
        let mut expired = Vec::new();
        for (id, p) in self.pending.iter_mut() {
            match p.seen_tick {
                Some(seen) if seen < horizon => expired.push((p.seen_ns, p.seq, id.clone())),
                Some(_) => {}
                // Orders from before the first tick start aging now.
                None => p.seen_tick = Some(now_ns),
            }
        }
        for (seen, seq, id) in expired {
            self.by_age.remove(&(seen, seq));
            self.pending.remove(&id);
            self.evictions.ttl += 1;
        }
    }

    /// The order's entry, created if need be (evicting the oldest when full), marked
    /// active at `t`.
    fn touch(&mut self, id: &str, t: i64) -> &mut Pending {
        self.seq += 1;
        let seq = self.seq;
        let key: Rc<str> = match self.pending.get_key_value(id) {
            Some((key, p)) => {
                let key = key.clone();
                self.by_age.remove(&(p.seen_ns, p.seq));
                key
            }
            None => {
                while self.pending.len() >= self.max_entries {
                    let Some((_, oldest)) = self.by_age.pop_first() else {
                        break;
                    };
                    self.pending.remove(&oldest);
                    self.evictions.capacity += 1;
                }
                let key: Rc<str> = Rc::from(id);
                self.pending.insert(key.clone(), Pending::default());
                key
            }
        };
        self.by_age.insert((t, seq), key.clone());
        let p = self.pending.get_mut(&key).expect("just inserted");
        p.seen_ns = t;
        p.seq = seq;
        p.seen_tick = self.last_tick.or(p.seen_tick);
        p
    }

    fn remove(&mut self, id: &str) {
        if let Some(p) = self.pending.remove(id) {
            self.by_age.remove(&(p.seen_ns, p.seq));
        }
    }

    /// `SubmitOrder` or `OrderInitialized`: the order exists, and its size.
    pub fn order(&mut self, id: &str, quantity: Option<f64>, t: i64) {
        let p = self.touch(id, t);
        if quantity.is_some() {
            p.quantity = quantity;
        }
    }

    /// `OrderUpdated`: a modify can change the size.
    pub fn updated(&mut self, id: &str, quantity: Option<f64>, t: i64) {
        if self.pending.contains_key(id) {
            self.order(id, quantity, t);
        }
    }

    pub fn submitted(&mut self, id: &str, times: Times, t: i64) {
        let p = self.touch(id, t);
        // A resubmitted or duplicated line keeps the first submit time.
        if p.submit_event_ns.is_none() && p.submit_record_ns.is_none() {
            p.submit_event_ns = times.event_ns;
            p.submit_record_ns = times.record_ns;
        }
    }

    /// Submit → accept, ns, for the first acceptance of an order whose submit was seen.
    pub fn accepted(&mut self, id: &str, times: Times, t: i64) -> Option<i64> {
        let p = self.pending.get(id)?;
        if p.accepted {
            return None;
        }
        let latency = elapsed(p, times);
        self.touch(id, t).accepted = true;
        latency
    }

    pub fn filled(&mut self, id: &str, last_qty: Option<f64>, times: Times, t: i64) -> Fill {
        let Some(p) = self.pending.get(id) else {
            return Fill::default();
        };
        let first_fill_ns = if p.fill_seen { None } else { elapsed(p, times) };
        let p = self.touch(id, t);
        p.fill_seen = true;
        p.filled_qty += last_qty.unwrap_or(0.0);
        let complete = p
            .quantity
            .map(|q| p.filled_qty >= q - q.abs() * 1e-9 - 1e-12);
        if complete == Some(true) {
            self.remove(id);
        }
        Fill {
            first_fill_ns,
            complete,
        }
    }

    /// A final event (rejected, canceled, expired, denied): nothing more to match.
    pub fn closed(&mut self, id: &str) {
        self.remove(id);
    }

    pub fn snapshot(&self) -> Vec<u8> {
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            clock: self.clock,
            last_tick: self.last_tick,
            pending: self
                .pending
                .iter()
                .map(|(id, p)| (id.to_string(), p.clone()))
                .collect(),
        };
        serde_json::to_vec(&snapshot).expect("the latency state always serializes")
    }

    /// Replaces the state with a snapshot from a previous instance (perhaps with other
    /// limits: what no longer fits is evicted and counted).
    pub fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let snapshot: Snapshot = serde_json::from_slice(state)
            .map_err(|e| format!("cannot restore the latency state: {e}"))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!(
                "cannot restore the latency state: version {} (this build reads {SNAPSHOT_VERSION})",
                snapshot.version
            ));
        }
        let mut entries = snapshot.pending;
        entries.sort_by_key(|(_, p)| p.seen_ns);
        self.pending.clear();
        self.by_age.clear();
        self.clock = snapshot.clock;
        self.last_tick = snapshot.last_tick;
        for (id, mut p) in entries {
            while self.pending.len() >= self.max_entries {
                let Some((_, oldest)) = self.by_age.pop_first() else {
                    break;
                };
                self.pending.remove(&oldest);
                self.evictions.capacity += 1;
            }
            self.seq += 1;
            p.seq = self.seq;
            let key: Rc<str> = Rc::from(id.as_str());
            self.by_age.insert((p.seen_ns, p.seq), key.clone());
            self.pending.insert(key, p);
        }
        if let Some(clock) = self.clock {
            self.observe(clock);
        }
        Ok(())
    }
}

/// Time since the submit, in the same clock on both ends: event times when both have
/// them, else record times.
fn elapsed(p: &Pending, now: Times) -> Option<i64> {
    match (p.submit_event_ns, now.event_ns) {
        (Some(a), Some(b)) => Some(b - a),
        _ => Some(now.record_ns? - p.submit_record_ns?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn ev(ns: i64) -> Times {
        Times {
            event_ns: Some(ns),
            record_ns: Some(ns + 5),
        }
    }

    #[test]
    fn submit_accept_fill_in_event_time() {
        let mut t = Tracker::new(300 * S, 10);
        t.order("A", Some(2.0), 100);
        t.submitted("A", ev(1_000), 1_000);
        assert_eq!(t.accepted("A", ev(21_000), 21_000), Some(20_000));
        // Only the first acceptance counts.
        assert_eq!(t.accepted("A", ev(22_000), 22_000), None);
        let fill = t.filled("A", Some(0.5), ev(31_000), 31_000);
        assert_eq!(fill.first_fill_ns, Some(30_000));
        assert_eq!(fill.complete, Some(false));
        let fill = t.filled("A", Some(1.5), ev(41_000), 41_000);
        assert_eq!(fill.first_fill_ns, None);
        assert_eq!(fill.complete, Some(true));
        assert_eq!(t.len(), 0, "a filled order is forgotten");
    }

    #[test]
    fn falls_back_to_record_times_when_an_event_lacks_ts_event() {
        let mut t = Tracker::new(300 * S, 10);
        t.submitted("A", ev(1_000), 1_000);
        let no_event = Times {
            event_ns: None,
            record_ns: Some(9_005),
        };
        assert_eq!(t.accepted("A", no_event, 9_005), Some(8_000));
        t.submitted(
            "B",
            Times {
                event_ns: None,
                record_ns: None,
            },
            0,
        );
        assert_eq!(t.accepted("B", ev(5), 5), None);
    }

    #[test]
    fn unknown_orders_give_nothing_and_create_nothing() {
        let mut t = Tracker::new(300 * S, 10);
        assert_eq!(t.accepted("X", ev(1), 1), None);
        assert_eq!(t.filled("X", Some(1.0), ev(1), 1), Fill::default());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn terminal_events_forget_the_order() {
        let mut t = Tracker::new(300 * S, 10);
        t.submitted("A", ev(1), 1);
        t.closed("A");
        assert_eq!(t.len(), 0);
        assert_eq!(t.accepted("A", ev(2), 2), None);
    }

    #[test]
    fn ttl_eviction_follows_event_time_and_counts() {
        let mut t = Tracker::new(10 * S, 100);
        t.submitted("A", ev(0), 0);
        t.submitted("B", ev(5 * S), 5 * S);
        t.observe(10 * S);
        assert_eq!(t.len(), 2, "A is exactly ttl old: kept");
        t.observe(10 * S + 1);
        assert_eq!(t.len(), 1);
        assert!(t.get("A").is_none() && t.get("B").is_some());
        // Activity renews an order.
        t.accepted("B", ev(14 * S), 14 * S);
        t.observe(20 * S);
        assert!(t.get("B").is_some());
        assert_eq!(
            t.take_evictions(),
            Evictions {
                ttl: 1,
                capacity: 0
            }
        );
        assert_eq!(t.take_evictions(), Evictions::default());
    }

    #[test]
    fn a_big_jump_back_starts_a_new_timeline() {
        let mut t = Tracker::new(10 * S, 100);
        t.observe(1_000 * S);
        t.submitted("old", ev(100 * S), 100 * S);
        t.observe(100 * S);
        assert!(
            t.get("old").is_some(),
            "not aged against the later timeline"
        );
        t.observe(105 * S);
        t.observe(111 * S);
        assert!(t.get("old").is_none());
    }

    #[test]
    fn capacity_evicts_the_least_recently_active() {
        let mut t = Tracker::new(300 * S, 3);
        for (i, id) in ["A", "B", "C"].iter().enumerate() {
            t.submitted(id, ev(i as i64), i as i64);
        }
        t.accepted("A", ev(10), 10);
        t.submitted("D", ev(11), 11);
        assert!(t.get("B").is_none(), "B was the least recently active");
        assert!(t.get("A").is_some() && t.get("C").is_some() && t.get("D").is_some());
        t.submitted("E", ev(12), 12);
        assert!(t.get("C").is_none());
        assert_eq!(t.len(), 3);
        assert_eq!(
            t.take_evictions(),
            Evictions {
                ttl: 0,
                capacity: 2
            }
        );
    }

    #[test]
    fn tick_ages_orders_in_host_time() {
        let mut t = Tracker::new(10 * S, 100);
        t.submitted("early", ev(0), 0);
        t.tick(1_000 * S);
        t.submitted("late", ev(1), 1);
        t.tick(1_005 * S);
        assert_eq!(t.len(), 2);
        t.tick(1_010 * S + 1);
        assert_eq!(t.len(), 0, "both were last seen by the tick at 1000 s");
        assert_eq!(t.take_evictions().ttl, 2);
    }

    #[test]
    fn snapshot_restore_keeps_open_orders_and_refits_limits() {
        let mut t = Tracker::new(300 * S, 10);
        t.order("A", Some(3.0), 1);
        t.submitted("A", ev(10), 10);
        t.submitted("B", ev(20), 20);
        t.accepted("B", ev(30), 30);
        t.tick(1_000 * S);
        let state = t.snapshot();

        let mut next = Tracker::new(300 * S, 10);
        next.restore(&state).unwrap();
        let json = |p: Option<&Pending>| serde_json::to_value(p).unwrap();
        assert_eq!(json(next.get("A")), json(t.get("A")));
        assert_eq!(next.accepted("A", ev(110), 110), Some(100));
        assert_eq!(
            next.accepted("B", ev(111), 111),
            None,
            "B was already accepted"
        );
        let fill = next.filled("A", Some(1.0), ev(120), 120);
        assert_eq!(fill.complete, Some(false), "quantity survived the reload");

        let mut small = Tracker::new(300 * S, 1);
        small.restore(&state).unwrap();
        assert_eq!(small.len(), 1);
        assert!(
            small.get("B").is_some(),
            "the most recently active one is kept"
        );
        assert_eq!(small.take_evictions().capacity, 1);

        assert!(next
            .restore(b"not json")
            .unwrap_err()
            .contains("latency state"));
        assert!(next
            .restore(br#"{"version":9,"clock":null,"last_tick":null,"pending":[]}"#)
            .unwrap_err()
            .contains("version 9"));
    }
}

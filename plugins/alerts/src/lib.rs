//! The `alerts` reference plugin: evaluates rules over enriched records and emits alert
//! events that fire once, stay quiet while firing, and resolve once.
//!
//! Records pass through unchanged; alerts leave on the transform's `.alerts` output.
//!
//! Time: plugins have no clock, so "now" is the larger of the last `tick(now_ns)` and the
//! newest record timestamp seen. Records are placed in windows by their own timestamp;
//! windows end at "now". So a backlog of old lines cannot raise alerts about the past,
//! and an absent-data rule measures silence against the host's ticks.

mod config;
mod defaults;
mod matcher;
mod time;
mod window;

use config::{Cmp, Config, Kind, Settings, Spec, ValueSpec};
use matcher::{number, push_number, push_value, Rec, Special};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sluice_sdk::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use window::{rank, Buckets, Samples, Times};

pub use config::Config as AlertsConfig;

/// Separates `group_by` values in a group key; the byte cannot occur in a label value a
/// person would write.
const SEP: char = '\u{1f}';
/// The group of a grouped `absent` rule that stands for "no group seen yet", so a bot
/// that never logs anything is noticed too.
const NONE_SEEN: &str = "\u{1}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Inactive,
    Pending,
    Firing,
}

/// The identity and text an alert fired with; its resolution repeats them, so the
/// fingerprint matches and the resolve message says what cleared.
#[derive(Debug, Clone)]
struct Fired {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    fingerprint: String,
}

#[derive(Debug)]
enum St {
    Plain,
    Times(Times),
    Rate {
        num: Box<Buckets>,
        den: Option<Box<Buckets>>,
    },
    Samples(Samples),
    Absent {
        last_seen: Option<i64>,
    },
    Change {
        base: Option<(f64, u64)>,
        times: Times,
    },
}

#[derive(Debug)]
struct Group {
    /// The key a `*` stood for (empty without one).
    wkey: String,
    /// Template field values captured from the record that created the group or started
    /// its pending period, for alerts raised later on a tick.
    ctx: Vec<String>,
    phase: Phase,
    since: i64,
    /// The last observed value, for `{{$value}}`.
    value: f64,
    fired: Option<Box<Fired>>,
    st: St,
}

/// FxHash: group keys are short strings we made ourselves, so a DoS-resistant hash buys
/// nothing and SipHash would be most of a lookup's cost.
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<V> = HashMap<String, V, BuildHasherDefault<Fx>>;

/// A rule's alert groups by key, in a vector so the group hit last time (most records of
/// a bot carry the same `trader_id`) is found by one string comparison, without hashing.
#[derive(Default)]
struct Groups {
    keys: Vec<String>,
    items: Vec<Group>,
    index: FxMap<usize>,
    last: usize,
}

impl Groups {
    fn find(&mut self, key: &str) -> Option<usize> {
        if self.keys.get(self.last).is_some_and(|k| k == key) {
            return Some(self.last);
        }
        let i = *self.index.get(key)?;
        self.last = i;
        Some(i)
    }

    fn insert(&mut self, key: &str, group: Group) -> usize {
        let i = self.items.len();
        self.keys.push(key.to_owned());
        self.items.push(group);
        self.index.insert(key.to_owned(), i);
        self.last = i;
        i
    }

    fn remove_at(&mut self, i: usize) -> Group {
        let key = self.keys.swap_remove(i);
        self.index.remove(&key);
        let group = self.items.swap_remove(i);
        if i < self.keys.len() {
            *self.index.get_mut(&self.keys[i]).expect("indexed") = i;
        }
        group
    }

    fn remove(&mut self, key: &str) -> Option<Group> {
        let i = self.find(key)?;
        Some(self.remove_at(i))
    }

    fn retain(&mut self, mut keep: impl FnMut(&mut Group) -> bool) {
        let mut i = 0;
        while i < self.items.len() {
            if keep(&mut self.items[i]) {
                i += 1;
            } else {
                self.remove_at(i);
            }
        }
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

struct Rule {
    spec: Spec,
    groups: Groups,
    /// Per `group_by` key: when (time, record sequence) a record matching `unless_after`
    /// or `reset_by` was last seen.
    marks: FxMap<(i64, u64)>,
    firing: usize,
    firing_reported: Option<usize>,
    /// When the earliest pending group's `for:` runs out (`i64::MAX`: none pending). Any
    /// record that moves "now" past it fires the alert, so firing does not wait for the
    /// next record this rule matches or for a tick, and a replayed log fires the same way
    /// at any replay speed.
    due: i64,
    dropped_groups: u64,
    dropped_entries: u64,
    overflow_logged: bool,
}

fn new_state(kind: &Kind) -> St {
    match kind {
        Kind::Threshold { .. } | Kind::State { .. } => St::Plain,
        Kind::Count { .. } => St::Times(Times::default()),
        Kind::Change { .. } => St::Change {
            base: None,
            times: Times::default(),
        },
        Kind::Rate { of, window, .. } => St::Rate {
            num: Box::new(Buckets::new(*window)),
            den: of.as_ref().map(|_| Box::new(Buckets::new(*window))),
        },
        Kind::Quantile { .. } => St::Samples(Samples::default()),
        Kind::Absent { .. } => St::Absent { last_seen: None },
    }
}

/// Which rules can care about a record, by the value of a top-level field, so a record
/// only meets the rules whose `when` could match it.
struct Index {
    by_field: Vec<(&'static str, HashMap<String, Vec<usize>>)>,
    always: Vec<usize>,
}

const INDEX_FIELDS: [&str; 4] = ["event", "metric", "component", "level"];

impl Index {
    fn build(rules: &[Rule]) -> Self {
        let mut by_field: Vec<(&'static str, HashMap<String, Vec<usize>>)> =
            INDEX_FIELDS.iter().map(|f| (*f, HashMap::new())).collect();
        let mut always = Vec::new();
        'rules: for (i, rule) in rules.iter().enumerate() {
            let interest = rule.spec.interest();
            for (field, map) in by_field.iter_mut() {
                let mut values = Vec::new();
                let mut all = true;
                for m in &interest {
                    match m.required(field) {
                        Some(v) => values.extend(v),
                        None => {
                            all = false;
                            break;
                        }
                    }
                }
                if all {
                    values.sort();
                    values.dedup();
                    for v in values {
                        map.entry(v).or_default().push(i);
                    }
                    continue 'rules;
                }
            }
            always.push(i);
        }
        by_field.retain(|(_, m)| !m.is_empty());
        Self { by_field, always }
    }
}

pub struct Alerts {
    rules: Vec<Rule>,
    index: Index,
    settings: Settings,
    now: i64,
    last_tick: Option<i64>,
    seq: u64,
    skewed: u64,
    candidates: Vec<usize>,
    key: String,
}

impl Plugin for Alerts {
    type Config = Config;

    fn new(config: Config) -> Result<Self, Error> {
        let (specs, settings) = config::compile(config).map_err(Error)?;
        let mut rules: Vec<Rule> = specs
            .into_iter()
            .map(|spec| Rule {
                spec,
                groups: Groups::default(),
                marks: FxMap::default(),
                firing: 0,
                firing_reported: None,
                due: i64::MAX,
                dropped_groups: 0,
                dropped_entries: 0,
                overflow_logged: false,
            })
            .collect();
        for rule in &mut rules {
            if matches!(rule.spec.kind, Kind::Absent { .. }) {
                let key = if rule.spec.group_by.is_empty() {
                    ""
                } else {
                    NONE_SEEN
                };
                let st = new_state(&rule.spec.kind);
                rule.groups.insert(key, new_group(String::new(), st));
            }
        }
        let index = Index::build(&rules);
        Ok(Self {
            rules,
            index,
            settings,
            now: 0,
            last_tick: None,
            seq: 0,
            skewed: 0,
            candidates: Vec::new(),
            key: String::new(),
        })
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        self.observe(record.fields());
        out.push(record);
        Ok(())
    }

    fn process_batch(&mut self, batch: Vec<Record>, out: &mut Output) -> Result<(), Error> {
        for record in batch {
            self.observe(record.fields());
            out.push(record);
        }
        self.report();
        Ok(())
    }

    fn tick(&mut self, now_ns: i64, _out: &mut Output) -> Result<(), Error> {
        self.last_tick = Some(self.last_tick.map_or(now_ns, |t| t.max(now_ns)));
        self.now = self.now.max(now_ns);
        let now = self.now;
        for rule in &mut self.rules {
            tick_rule(rule, now);
        }
        self.report();
        Ok(())
    }
}

export_plugin!(Alerts);

fn new_group(wkey: String, st: St) -> Group {
    Group {
        wkey,
        ctx: Vec::new(),
        phase: Phase::Inactive,
        since: 0,
        value: f64::NAN,
        fired: None,
        st,
    }
}

impl Alerts {
    /// Evaluates one record against the rules that can care about it.
    fn observe(&mut self, map: &Map<String, Value>) {
        self.seq += 1;
        let rec = Rec::new(map);
        self.candidates.clear();
        for (field, index) in &self.index.by_field {
            if let Some(v) = rec.top_str(field) {
                if let Some(rules) = index.get(v) {
                    self.candidates.extend_from_slice(rules);
                }
            }
        }
        self.candidates.extend_from_slice(&self.index.always);
        // A record no rule cares about still moves time when an alert waits out `for:`.
        if self.candidates.is_empty() && self.rules.iter().all(|r| r.due == i64::MAX) {
            return;
        }
        let mut t = rec.timestamp().and_then(time::parse).unwrap_or(self.now);
        if let Some(tick) = self.last_tick {
            if t > tick.saturating_add(self.settings.max_skew_ns) {
                t = tick;
                self.skewed += 1;
            }
        }
        self.now = self.now.max(t);
        let ctx = Ctx {
            rec: &rec,
            t,
            now: self.now,
            seq: self.seq,
            settings: &self.settings,
        };
        for &i in &self.candidates {
            let rule = &mut self.rules[i];
            on_record(rule, &ctx, &mut self.key);
            if rule.spec.for_ns > 0 {
                refresh_due(rule);
            }
        }
        for rule in &mut self.rules {
            if rule.due <= self.now {
                tick_rule(rule, self.now);
            }
        }
    }

    /// Emits the plugin's own metrics: only what changed since the last call.
    fn report(&mut self) {
        for rule in &mut self.rules {
            let name = rule.spec.name.as_str();
            if rule.firing_reported != Some(rule.firing) {
                gauge("alerts_firing", &[("rule", name)], rule.firing as f64);
                rule.firing_reported = Some(rule.firing);
            }
            if rule.dropped_groups > 0 {
                counter(
                    "alerts_groups_dropped_total",
                    &[("rule", name)],
                    rule.dropped_groups as f64,
                );
                if !rule.overflow_logged {
                    log(
                        LogLevel::Warn,
                        format!(
                            "rule `{name}` tracks {} groups already (max_groups_per_rule); \
                             records of new groups are ignored by it",
                            rule.groups.len()
                        ),
                    );
                    rule.overflow_logged = true;
                }
                rule.dropped_groups = 0;
            }
            if rule.dropped_entries > 0 {
                counter(
                    "alerts_window_entries_dropped_total",
                    &[("rule", name)],
                    rule.dropped_entries as f64,
                );
                rule.dropped_entries = 0;
            }
        }
        if self.skewed > 0 {
            counter("alerts_clock_skew_records_total", &[], self.skewed as f64);
            self.skewed = 0;
        }
    }
}

/// What one rule holds in memory, for tests and debugging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleStats {
    pub name: String,
    pub groups: usize,
    /// Occurrences or samples held in windows, over all groups.
    pub entries: usize,
    pub marks: usize,
    pub firing: usize,
}

impl Alerts {
    pub fn stats(&self) -> Vec<RuleStats> {
        self.rules
            .iter()
            .map(|r| RuleStats {
                name: r.spec.name.clone(),
                groups: r.groups.len(),
                entries: r
                    .groups
                    .items
                    .iter()
                    .map(|g| match &g.st {
                        St::Times(t) | St::Change { times: t, .. } => t.count(),
                        St::Samples(s) => s.len(),
                        _ => 0,
                    })
                    .sum(),
                marks: r.marks.len(),
                firing: r.firing,
            })
            .collect()
    }

    /// The current notion of now, in nanoseconds since the epoch.
    pub fn now(&self) -> i64 {
        self.now
    }
}

struct Ctx<'a> {
    rec: &'a Rec<'a>,
    /// The record's time, in nanoseconds since the epoch.
    t: i64,
    now: i64,
    seq: u64,
    settings: &'a Settings,
}

fn group_key(spec: &Spec, rec: &Rec, key: &mut String) {
    key.clear();
    for (i, g) in spec.group_by.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        if let Some(v) = g.get(rec) {
            push_value(key, v);
        }
    }
}

fn capture(spec: &Spec, rec: &Rec) -> Vec<String> {
    spec.template_paths
        .iter()
        .map(|p| {
            let mut s = String::new();
            if let Some(v) = p.get(rec) {
                push_value(&mut s, v);
            }
            s
        })
        .collect()
}

/// The group for the current key, created if there is room.
fn group<'a>(
    groups: &'a mut Groups,
    spec: &Spec,
    dropped: &mut u64,
    key: &str,
    wkey: &str,
    rec: &Rec,
    max_groups: usize,
) -> Option<&'a mut Group> {
    let i = match groups.find(key) {
        Some(i) => i,
        None => {
            if groups.len() >= max_groups {
                *dropped += 1;
                return None;
            }
            let mut g = new_group(wkey.to_owned(), new_state(&spec.kind));
            g.ctx = capture(spec, rec);
            groups.insert(key, g)
        }
    };
    Some(&mut groups.items[i])
}

fn mark(marks: &mut FxMap<(i64, u64)>, dropped: &mut u64, key: &str, t: i64, seq: u64, max: usize) {
    if let Some(m) = marks.get_mut(key) {
        *m = (t.max(m.0), seq);
    } else if marks.len() < max {
        marks.insert(key.to_owned(), (t, seq));
    } else {
        *dropped += 1;
    }
}

/// Calls `f(wildcard key, value)` for each number `value` reaches in the record.
fn each_value(value: &ValueSpec, rec: &Rec, mut f: impl FnMut(&str, f64)) {
    let divisor = match &value.divide_by {
        Some(p) => match p.get(rec).and_then(number) {
            Some(d) if d != 0.0 && d.is_finite() => d,
            _ => return,
        },
        None => 1.0,
    };
    value.field.each(rec, value.key_field.as_deref(), |k, v| {
        if let Some(x) = number(v) {
            if x.is_finite() {
                f(k, x / divisor);
            }
        }
    });
}

fn with_wildcard(key: &mut String, base_len: usize, spec: &Spec, wkey: &str) {
    key.truncate(base_len);
    if spec.wildcard_label.is_some() {
        key.push(SEP);
        key.push_str(wkey);
    }
}

fn on_record(rule: &mut Rule, c: &Ctx, key: &mut String) {
    let Rule {
        spec,
        groups,
        marks,
        firing,
        dropped_groups,
        dropped_entries,
        ..
    } = rule;
    let spec: &Spec = spec;
    let rec = c.rec;
    let max_groups = c.settings.max_groups;
    let max_entries = c.settings.max_entries;
    let hit = spec.when.matches(rec);
    match &spec.kind {
        Kind::Threshold { value, cmp, clear } => {
            if !hit {
                return;
            }
            let mut found: Vec<(String, f64)> = Vec::new();
            each_value(value, rec, |k, v| found.push((k.to_owned(), v)));
            group_key(spec, rec, key);
            let base_len = key.len();
            for (wkey, v) in found {
                with_wildcard(key, base_len, spec, &wkey);
                let Some(g) = group(groups, spec, dropped_groups, key, &wkey, rec, max_groups)
                else {
                    continue;
                };
                g.value = v;
                let cleared = match cmp {
                    Cmp::Above(_) => v <= *clear,
                    Cmp::Below(_) => v >= *clear,
                };
                if cmp.breaches(v) {
                    drive(spec, g, firing, true, c.now, Some(rec));
                } else if cleared {
                    drive(spec, g, firing, false, c.now, Some(rec));
                }
            }
        }
        Kind::Count { at_least, window } => {
            let unless_hit = spec.unless.as_ref().map(|(m, w)| (m.matches(rec), *w));
            let is_unless = unless_hit.is_some_and(|(u, _)| u);
            if !hit && !is_unless {
                return;
            }
            group_key(spec, rec, key);
            if hit {
                let expected = unless_hit.is_some_and(|(_, within)| {
                    marks
                        .get(key.as_str())
                        .is_some_and(|&(m, _)| c.t - m <= within)
                });
                if !expected {
                    if let Some(g) = group(groups, spec, dropped_groups, key, "", rec, max_groups) {
                        let St::Times(times) = &mut g.st else {
                            unreachable!("count groups hold times")
                        };
                        if !times.push(c.t, c.now, *window, max_entries) {
                            *dropped_entries += 1;
                        }
                        g.value = times.count() as f64;
                        let cond = times.count() >= *at_least;
                        drive(spec, g, firing, cond, c.now, Some(rec));
                    }
                }
            }
            if is_unless {
                mark(marks, dropped_groups, key, c.t, c.seq, max_groups);
            }
        }
        Kind::Change {
            value,
            ratio,
            reset_by,
            at_least,
            window,
        } => {
            let reset = reset_by.as_ref().is_some_and(|m| m.matches(rec));
            if !hit && !reset {
                return;
            }
            group_key(spec, rec, key);
            if reset {
                mark(marks, dropped_groups, key, c.t, c.seq, max_groups);
            }
            if !hit {
                return;
            }
            let reset_seq = marks.get(key.as_str()).map(|&(_, s)| s);
            let mut found: Vec<(String, f64)> = Vec::new();
            each_value(value, rec, |k, v| found.push((k.to_owned(), v)));
            let base_len = key.len();
            for (wkey, v) in found {
                with_wildcard(key, base_len, spec, &wkey);
                let Some(g) = group(groups, spec, dropped_groups, key, &wkey, rec, max_groups)
                else {
                    continue;
                };
                let St::Change { base, times } = &mut g.st else {
                    unreachable!("change groups hold a baseline")
                };
                // Compare only with a baseline taken after the last reset (fill).
                let moved = match *base {
                    Some((b, seq)) if reset_seq.is_none_or(|r| r < seq) => Some(if b == 0.0 {
                        if v == 0.0 {
                            0.0
                        } else {
                            f64::INFINITY
                        }
                    } else {
                        (v - b).abs() / b.abs()
                    }),
                    _ => None,
                };
                *base = Some((v, c.seq));
                if let Some(rel) = moved.filter(|&r| r > *ratio) {
                    if !times.push(c.t, c.now, *window, max_entries) {
                        *dropped_entries += 1;
                    }
                    g.value = rel;
                }
                times.expire(c.now, *window);
                let cond = times.count() >= *at_least;
                drive(spec, g, firing, cond, c.now, Some(rec));
            }
        }
        Kind::Rate { of, .. } => {
            let den_hit = of.as_ref().is_some_and(|m| m.matches(rec));
            if !hit && !den_hit {
                return;
            }
            group_key(spec, rec, key);
            let Some(g) = group(groups, spec, dropped_groups, key, "", rec, max_groups) else {
                return;
            };
            let St::Rate { num, den } = &mut g.st else {
                unreachable!("rate groups hold buckets")
            };
            if den_hit {
                if let Some(den) = den {
                    den.add(c.t, c.now);
                }
            }
            if hit {
                num.add(c.t, c.now);
            }
            let cond = rate_condition(&spec.kind, g, c.now);
            drive(spec, g, firing, cond, c.now, Some(rec));
        }
        Kind::Quantile {
            field,
            cmp,
            window,
            max_samples,
            ..
        } => {
            if !hit {
                return;
            }
            let Some(v) = field.get(rec).and_then(number).filter(|v| v.is_finite()) else {
                return;
            };
            group_key(spec, rec, key);
            let Some(g) = group(groups, spec, dropped_groups, key, "", rec, max_groups) else {
                return;
            };
            let St::Samples(samples) = &mut g.st else {
                unreachable!("quantile groups hold samples")
            };
            if !samples.push(c.t, v, c.now, *window, *max_samples, |x| cmp.breaches(x)) {
                *dropped_entries += 1;
            }
            let cond = quantile_condition(&spec.kind, g, c.now);
            drive(spec, g, firing, cond, c.now, Some(rec));
        }
        Kind::Absent { .. } => {
            if !hit {
                return;
            }
            if !spec.group_by.is_empty() {
                if let Some(mut none_seen) = groups.remove(NONE_SEEN) {
                    drive(spec, &mut none_seen, firing, false, c.now, None);
                }
            }
            group_key(spec, rec, key);
            let Some(g) = group(groups, spec, dropped_groups, key, "", rec, max_groups) else {
                return;
            };
            if let St::Absent { last_seen } = &mut g.st {
                *last_seen = Some(c.now);
            }
            // The next silence alert describes the group as its latest start looked: the
            // first record, or the one that ended the previous silence.
            let refresh = g.ctx.is_empty() || g.phase == Phase::Firing;
            drive(spec, g, firing, false, c.now, Some(rec));
            if refresh {
                g.ctx = capture(spec, rec);
            }
        }
        Kind::State { resolve_when } => {
            if resolve_when.matches(rec) {
                group_key(spec, rec, key);
                if let Some(i) = groups.find(key) {
                    drive(spec, &mut groups.items[i], firing, false, c.now, Some(rec));
                }
            } else if hit {
                group_key(spec, rec, key);
                if let Some(g) = group(groups, spec, dropped_groups, key, "", rec, max_groups) {
                    drive(spec, g, firing, true, c.now, Some(rec));
                }
            }
        }
    }
}

fn rate_condition(kind: &Kind, g: &mut Group, now: i64) -> bool {
    let Kind::Rate {
        cmp,
        min_count,
        window,
        ..
    } = kind
    else {
        return false;
    };
    let St::Rate { num, den } = &mut g.st else {
        return false;
    };
    let n = num.total(now);
    let value = match den {
        None => Some(n as f64 / (*window as f64 / 1e9)),
        Some(den) => match den.total(now) {
            0 => None,
            d => Some(n as f64 / d as f64),
        },
    };
    g.value = value.unwrap_or(f64::NAN);
    value.is_some_and(|v| cmp.breaches(v)) && n >= *min_count
}

fn quantile_condition(kind: &Kind, g: &mut Group, now: i64) -> bool {
    let Kind::Quantile {
        q,
        cmp,
        min_samples,
        window,
        ..
    } = kind
    else {
        return false;
    };
    let St::Samples(samples) = &mut g.st else {
        return false;
    };
    samples.expire(now, *window, |x| cmp.breaches(x));
    let n = samples.len();
    if n < *min_samples {
        return false;
    }
    let r = rank(*q, n);
    let cond = match cmp {
        Cmp::Above(_) => n - samples.breaching() < r,
        Cmp::Below(_) => samples.breaching() >= r,
    };
    if cond && g.phase != Phase::Firing {
        // Sorting is for the alert's text only, so it runs only on the way to firing.
        g.value = samples.quantile(*q);
    }
    cond
}

/// Recomputes [`Rule::due`] from the groups now pending.
fn refresh_due(rule: &mut Rule) {
    rule.due = rule
        .groups
        .items
        .iter()
        .filter(|g| g.phase == Phase::Pending)
        .map(|g| g.since.saturating_add(rule.spec.for_ns))
        .min()
        .unwrap_or(i64::MAX);
}

fn tick_rule(rule: &mut Rule, now: i64) {
    tick_groups(rule, now);
    if rule.spec.for_ns > 0 {
        refresh_due(rule);
    }
}

fn tick_groups(rule: &mut Rule, now: i64) {
    let Rule {
        spec,
        groups,
        firing,
        marks,
        ..
    } = rule;
    for g in &mut groups.items {
        let cond = match (&spec.kind, &mut g.st) {
            (Kind::Threshold { .. } | Kind::State { .. }, _) => {
                if g.phase != Phase::Pending {
                    continue;
                }
                true
            }
            (Kind::Count { at_least, window }, St::Times(times))
            | (
                Kind::Change {
                    at_least, window, ..
                },
                St::Change { times, .. },
            ) => {
                times.expire(now, *window);
                if matches!(spec.kind, Kind::Count { .. }) {
                    g.value = times.count() as f64;
                }
                times.count() >= *at_least
            }
            (Kind::Rate { .. }, _) => rate_condition(&spec.kind, g, now),
            (Kind::Quantile { .. }, _) => quantile_condition(&spec.kind, g, now),
            (Kind::Absent { window }, St::Absent { last_seen }) => {
                let seen = *last_seen.get_or_insert(now);
                g.value = ((now - seen) / 1_000_000_000) as f64;
                now - seen >= *window
            }
            _ => continue,
        };
        drive(spec, g, firing, cond, now, None);
    }
    // Forget what no longer matters, so groups of instruments or streams that went away
    // do not hold memory or slots under `max_groups_per_rule`.
    groups.retain(|g| {
        g.phase != Phase::Inactive
            || match &mut g.st {
                St::Plain => false,
                St::Times(t) => !t.is_empty(),
                St::Rate { num, den } => {
                    num.total(now) > 0 || den.as_mut().is_some_and(|d| d.total(now) > 0)
                }
                St::Samples(s) => !s.is_empty(),
                St::Absent { .. } | St::Change { .. } => true,
            }
    });
    if let Some((_, within)) = &spec.unless {
        marks.retain(|_, (t, _)| now - *t <= *within);
    }
}

/// Moves one alert through inactive → (pending) → firing → inactive, emitting only on the
/// transitions into and out of firing.
fn drive(spec: &Spec, g: &mut Group, firing: &mut usize, cond: bool, now: i64, rec: Option<&Rec>) {
    match (g.phase, cond) {
        (Phase::Inactive, true) => {
            if spec.for_ns == 0 {
                fire(spec, g, firing, rec);
            } else {
                g.phase = Phase::Pending;
                g.since = now;
                if let Some(rec) = rec {
                    g.ctx = capture(spec, rec);
                }
            }
        }
        (Phase::Pending, true) => {
            if now - g.since >= spec.for_ns {
                fire(spec, g, firing, rec);
            }
        }
        (Phase::Pending, false) => g.phase = Phase::Inactive,
        (Phase::Firing, false) => {
            g.phase = Phase::Inactive;
            *firing = firing.saturating_sub(1);
            if let Some(f) = g.fired.take() {
                let mut event =
                    AlertEvent::resolved(spec.name.as_str()).severity(spec.severity.as_str());
                event.labels = f.labels;
                event.annotations = f.annotations;
                event.fingerprint = f.fingerprint;
                alert(event);
            }
        }
        (Phase::Firing, true) | (Phase::Inactive, false) => {}
    }
}

fn fire(spec: &Spec, g: &mut Group, firing: &mut usize, rec: Option<&Rec>) {
    g.phase = Phase::Firing;
    *firing += 1;
    let fired = render(spec, g, rec);
    let mut event = AlertEvent::firing(spec.name.as_str()).severity(spec.severity.as_str());
    event.labels = fired.labels.clone();
    event.annotations = fired.annotations.clone();
    event.fingerprint = fired.fingerprint.clone();
    g.fired = Some(Box::new(fired));
    alert(event);
}

fn render(spec: &Spec, g: &Group, rec: Option<&Rec>) -> Fired {
    let mut field = |i: usize, out: &mut String| {
        if let Some(v) = rec.and_then(|r| spec.template_paths[i].get(r)) {
            push_value(out, v);
        } else if let Some(s) = g.ctx.get(i) {
            out.push_str(s);
        }
    };
    let special = |s: Special, out: &mut String| match s {
        Special::Value => {
            if g.value.is_finite() {
                push_number(out, g.value)
            }
        }
        Special::Threshold => {
            if let Some(t) = spec.kind.threshold() {
                push_number(out, t)
            }
        }
        Special::Window => {
            if let Some(w) = spec.kind.window() {
                push_number(out, w as f64 / 1e9)
            }
        }
        Special::For => push_number(out, spec.for_ns as f64 / 1e9),
        Special::Key => out.push_str(&g.wkey),
        Special::Rule => out.push_str(&spec.name),
    };
    let mut labels = BTreeMap::new();
    for (name, t) in &spec.labels {
        let mut s = String::new();
        t.render(&mut s, &mut field, &special);
        if !s.is_empty() {
            labels.insert(name.clone(), s);
        }
    }
    let mut annotations = BTreeMap::new();
    for (name, t) in &spec.annotations {
        let mut s = String::new();
        t.render(&mut s, &mut field, &special);
        annotations.insert(name.clone(), s);
    }
    let fingerprint = fingerprint(&spec.name, &labels);
    Fired {
        labels,
        annotations,
        fingerprint,
    }
}

/// The host's fingerprint (Alertmanager style): SHA-256 of the name, then `\0key\xffvalue`
/// for each label in order; the first 8 bytes in hex. Computed here so the alert carries
/// it from the start and tests can check it.
pub fn fingerprint(name: &str, labels: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    for (k, v) in labels {
        hasher.update([0]);
        hasher.update(k.as_bytes());
        hasher.update([0xff]);
        hasher.update(v.as_bytes());
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(16);
    for b in &digest[..8] {
        hex.push(char::from_digit(u32::from(b >> 4), 16).expect("nibble"));
        hex.push(char::from_digit(u32::from(b & 0xf), 16).expect("nibble"));
    }
    hex
}

//! The in-process Alertmanager: alert events become alert state, grouped per route, and a
//! group's timer decides when its receiver hears about it. The rules are Alertmanager's
//! (dispatch.go and the dedup stage of notify.go), so people who know those know these:
//!
//! - a new group waits `group_wait`, then ticks every `group_interval`;
//! - on a tick the group notifies only when it has a firing alert its receiver was not yet
//!   told about, a newly resolved one (with `send_resolved`), or when `repeat_interval` has
//!   passed since the last notification; otherwise the tick is silent (de-duplication);
//! - resolved alerts go out in the group's next notification, then leave the group; an
//!   empty group is forgotten;
//! - each route keeps its own groups, so two routes to one receiver notify independently.
//!
//! The router only keeps state and returns notifications; it never waits on a network.

use super::route::{render_labels, silenced, Labels, RouteTable, Silence};
use crate::event::Record;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert event as it arrives on a `NAME.alerts` output.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The event's labels plus `alertname` (its `name`) and `severity`.
    pub labels: Labels,
    pub annotations: Labels,
    pub fingerprint: String,
    pub status: Status,
    pub plugin: Option<String>,
}

impl Alert {
    pub fn from_record(record: &Record) -> Result<Self, String> {
        let name = match record.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err("`name` is missing or not a non-empty string".into()),
        };
        let status = match record.get("status").and_then(Value::as_str) {
            Some("firing") => Status::Firing,
            Some("resolved") => Status::Resolved,
            _ => return Err("`status` must be \"firing\" or \"resolved\"".into()),
        };
        let own_labels = string_map(record.get("labels"), "labels")?;
        let annotations = string_map(record.get("annotations"), "annotations")?;
        let fingerprint = match record.get("fingerprint").and_then(Value::as_str) {
            Some(f) if !f.is_empty() => f.to_owned(),
            _ => fingerprint(&name, &own_labels),
        };
        let mut labels = own_labels;
        // The event's own `severity` field wins over a label of that name; without either
        // the SDK's default applies.
        let severity = match record.get("severity").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => labels
                .get("severity")
                .cloned()
                .unwrap_or_else(|| "warning".to_owned()),
        };
        labels.insert("alertname".into(), name);
        labels.insert("severity".into(), severity);
        Ok(Self {
            labels,
            annotations,
            fingerprint,
            status,
            plugin: record
                .get("plugin")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

fn string_map(value: Option<&Value>, key: &str) -> Result<Labels, String> {
    match value {
        None | Some(Value::Null) => Ok(Labels::new()),
        Some(Value::Object(map)) => Ok(map
            .iter()
            .filter_map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((k.clone(), v))
            })
            .collect()),
        Some(_) => Err(format!("`{key}` must be a map")),
    }
}

/// The same identity the transform worker gives alerts without one (name and labels,
/// hashed), so events posted by hand correlate with those from plugins.
pub fn fingerprint(name: &str, labels: &Labels) -> String {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    for (k, v) in labels {
        hasher.update([0]);
        hasher.update(k.as_bytes());
        hasher.update([0xff]);
        hasher.update(v.as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

/// An alert as a notification shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSnapshot {
    pub fingerprint: String,
    pub status: Status,
    pub labels: Labels,
    pub annotations: Labels,
    pub plugin: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl AlertSnapshot {
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn severity(&self) -> &str {
        self.labels
            .get("severity")
            .map(String::as_str)
            .unwrap_or("")
    }

    /// `summary`, else `description`, else the alert's name.
    pub fn summary(&self) -> &str {
        self.annotations
            .get("summary")
            .or_else(|| self.annotations.get("description"))
            .map(String::as_str)
            .unwrap_or_else(|| self.name())
    }
}

/// What one group tells one receiver at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub receiver: usize,
    pub route: usize,
    /// `route key:group labels`, as Alertmanager writes group keys.
    pub group_key: Arc<str>,
    pub group_labels: Labels,
    /// Firing first, then resolved; oldest first within each.
    pub alerts: Vec<AlertSnapshot>,
}

impl Notification {
    pub fn status(&self) -> Status {
        if self.alerts.iter().any(|a| a.status == Status::Firing) {
            Status::Firing
        } else {
            Status::Resolved
        }
    }

    pub fn count(&self, status: Status) -> usize {
        self.alerts.iter().filter(|a| a.status == status).count()
    }

    /// Labels every alert shares.
    pub fn common_labels(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    pub fn common_annotations(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.annotations))
    }

    /// Folds a queued notification of the same group that this one replaces: the newer
    /// state wins, but resolved alerts only the older one carried are kept, since the
    /// group has forgotten them and no later notification would announce them.
    pub fn absorb(&mut self, older: Notification) {
        for alert in older.alerts {
            if alert.status == Status::Resolved
                && !self
                    .alerts
                    .iter()
                    .any(|a| a.fingerprint == alert.fingerprint)
            {
                self.alerts.push(alert);
            }
        }
        sort_alerts(&mut self.alerts);
    }
}

fn common<'a>(mut maps: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = maps.next() else {
        return Labels::new();
    };
    let mut out = first.clone();
    for m in maps {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

fn sort_alerts(alerts: &mut [AlertSnapshot]) {
    alerts.sort_by(|a, b| {
        (a.status == Status::Resolved, a.starts_at, &a.fingerprint).cmp(&(
            b.status == Status::Resolved,
            b.starts_at,
            &b.fingerprint,
        ))
    });
}

/// What the router needs to know about a receiver.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverTraits {
    pub send_resolved: bool,
    /// The receiver keeps alert state of its own (PagerDuty, Alertmanager): a resolve it
    /// never saw the trigger of may still close something there (e.g. opened before a
    /// restart), so it is sent rather than dropped.
    pub stateful: bool,
}

#[derive(Debug)]
struct Tracked {
    alert: AlertSnapshot,
    last_seen: Instant,
}

/// What was last notified for a group: Alertmanager's notification log entry.
#[derive(Debug)]
struct NotifyLog {
    firing: BTreeSet<String>,
    resolved: BTreeSet<String>,
    at: Instant,
}

#[derive(Debug)]
struct Group {
    key: Arc<str>,
    labels: Labels,
    alerts: HashMap<String, Tracked>,
    next_flush: Instant,
    flushed: bool,
    log: Option<NotifyLog>,
}

/// What became of one event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// Routes (groups) it reached.
    pub routes: usize,
    /// A silence covers it: kept, but not notified while the silence lasts.
    pub silenced: bool,
    /// Refused because `max_alerts` alerts are tracked already.
    pub over_limit: bool,
}

pub struct Router {
    table: RouteTable,
    silences: Vec<Silence>,
    receivers: Vec<ReceiverTraits>,
    groups: HashMap<(usize, Arc<str>), Group>,
    tracked: usize,
    max_alerts: usize,
    resolve_timeout: Option<Duration>,
}

impl Router {
    pub fn new(
        table: RouteTable,
        silences: Vec<Silence>,
        receivers: Vec<ReceiverTraits>,
        max_alerts: usize,
        resolve_timeout: Option<Duration>,
    ) -> Self {
        Self {
            table,
            silences,
            receivers,
            groups: HashMap::new(),
            tracked: 0,
            max_alerts,
            resolve_timeout,
        }
    }

    pub fn ingest(&mut self, alert: &Alert, now: Instant, wall: DateTime<Utc>) -> Ingested {
        let mut out = Ingested {
            silenced: silenced(&self.silences, &alert.labels, wall),
            ..Ingested::default()
        };
        for id in self.table.matching(&alert.labels) {
            let route = &self.table.routes[id];
            let traits = self.receivers[route.receiver];
            let group_labels = route.group_by.group_labels(&alert.labels);
            let key: Arc<str> = format!("{}:{}", route.key, render_labels(&group_labels)).into();
            let slot = (id, key);
            let known = self
                .groups
                .get(&slot)
                .is_some_and(|g| g.alerts.contains_key(&alert.fingerprint));
            if !known {
                if alert.status == Status::Resolved && !traits.stateful {
                    // Nobody was told it fired: nothing to resolve.
                    continue;
                }
                if self.tracked >= self.max_alerts {
                    out.over_limit = true;
                    continue;
                }
            }
            let group = self.groups.entry(slot.clone()).or_insert_with(|| Group {
                key: slot.1.clone(),
                labels: group_labels,
                alerts: HashMap::new(),
                next_flush: now + route.timing.group_wait,
                flushed: false,
                log: None,
            });
            out.routes += 1;
            let changed = match group.alerts.get_mut(&alert.fingerprint) {
                Some(tracked) => {
                    tracked.last_seen = now;
                    tracked.alert.annotations.clone_from(&alert.annotations);
                    match (tracked.alert.status, alert.status) {
                        (Status::Firing, Status::Resolved) => {
                            tracked.alert.status = Status::Resolved;
                            tracked.alert.ends_at = Some(wall);
                            true
                        }
                        (Status::Resolved, Status::Firing) => {
                            tracked.alert.status = Status::Firing;
                            tracked.alert.starts_at = wall;
                            tracked.alert.ends_at = None;
                            true
                        }
                        _ => false,
                    }
                }
                None => {
                    self.tracked += 1;
                    group.alerts.insert(
                        alert.fingerprint.clone(),
                        Tracked {
                            alert: AlertSnapshot {
                                fingerprint: alert.fingerprint.clone(),
                                status: alert.status,
                                labels: alert.labels.clone(),
                                annotations: alert.annotations.clone(),
                                plugin: alert.plugin.clone(),
                                starts_at: wall,
                                ends_at: (alert.status == Status::Resolved).then_some(wall),
                            },
                            last_seen: now,
                        },
                    );
                    true
                }
            };
            // With no group interval, a group that has notified once reports each change
            // at once (the `alertmanager` receiver relies on this).
            if changed && group.flushed && route.timing.group_interval.is_zero() {
                group.next_flush = group.next_flush.min(now);
            }
        }
        out
    }

    /// When the next group is due, if any group exists.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.groups.values().map(|g| g.next_flush).min()
    }

    /// Notifications of every group due by `now`.
    pub fn flush_due(&mut self, now: Instant, wall: DateTime<Utc>) -> Vec<Notification> {
        self.flush_where(now, wall, |g| g.next_flush <= now)
    }

    /// Notifications of every group, due or not: at shutdown, what waits in `group_wait`
    /// is sent rather than lost.
    pub fn flush_all(&mut self, now: Instant, wall: DateTime<Utc>) -> Vec<Notification> {
        self.flush_where(now, wall, |_| true)
    }

    pub fn tracked(&self) -> usize {
        self.tracked
    }

    fn flush_where(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        due: impl Fn(&Group) -> bool,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut slots: Vec<(usize, Arc<str>)> = self
            .groups
            .iter()
            .filter(|(_, g)| due(g))
            .map(|(slot, _)| slot.clone())
            .collect();
        // Deterministic order, so equal deadlines notify the same way every time.
        slots.sort();
        for slot in slots {
            let route = &self.table.routes[slot.0];
            let traits = self.receivers[route.receiver];
            let group = self.groups.get_mut(&slot).expect("listed above");
            if let Some(n) = flush_group(
                group,
                route.receiver,
                slot.0,
                &route.timing,
                traits,
                &self.silences,
                self.resolve_timeout,
                now,
                wall,
            ) {
                out.push(n);
            }
            let before = group.alerts.len();
            group.alerts.retain(|_, t| t.alert.status == Status::Firing);
            self.tracked -= before - group.alerts.len();
            if group.alerts.is_empty() {
                self.groups.remove(&slot);
            }
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn flush_group(
    group: &mut Group,
    receiver: usize,
    route: usize,
    timing: &super::route::Timing,
    traits: ReceiverTraits,
    silences: &[Silence],
    resolve_timeout: Option<Duration>,
    now: Instant,
    wall: DateTime<Utc>,
) -> Option<Notification> {
    if let Some(timeout) = resolve_timeout {
        for t in group.alerts.values_mut() {
            if t.alert.status == Status::Firing && t.last_seen + timeout <= now {
                t.alert.status = Status::Resolved;
                t.alert.ends_at = Some(wall);
            }
        }
    }
    let visible: Vec<&Tracked> = group
        .alerts
        .values()
        .filter(|t| !silenced(silences, &t.alert.labels, wall))
        .collect();
    let set = |status: Status| -> BTreeSet<String> {
        visible
            .iter()
            .filter(|t| t.alert.status == status)
            .map(|t| t.alert.fingerprint.clone())
            .collect()
    };
    let firing = set(Status::Firing);
    let resolved = set(Status::Resolved);
    let notify = needs_update(
        group.log.as_ref(),
        &firing,
        &resolved,
        traits,
        timing.repeat_interval,
        now,
    );
    let mut out = None;
    if notify {
        let mut alerts: Vec<AlertSnapshot> = visible
            .iter()
            .filter(|t| traits.send_resolved || t.alert.status == Status::Firing)
            .map(|t| t.alert.clone())
            .collect();
        sort_alerts(&mut alerts);
        if !alerts.is_empty() {
            out = Some(Notification {
                receiver,
                route,
                group_key: group.key.clone(),
                group_labels: group.labels.clone(),
                alerts,
            });
        }
        group.log = Some(NotifyLog {
            firing,
            resolved,
            at: now,
        });
    }
    group.flushed = true;
    group.next_flush = now
        + if timing.group_interval.is_zero() {
            timing.repeat_interval
        } else {
            timing.group_interval
        };
    out
}

/// Alertmanager's `DedupStage.needsUpdate`, plus resolves for stateful receivers.
fn needs_update(
    log: Option<&NotifyLog>,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
    traits: ReceiverTraits,
    repeat: Duration,
    now: Instant,
) -> bool {
    let stateful_resolve = |previous: Option<&BTreeSet<String>>| {
        traits.stateful
            && traits.send_resolved
            && resolved
                .iter()
                .any(|fp| previous.is_none_or(|p| !p.contains(fp)))
    };
    let Some(log) = log else {
        return !firing.is_empty() || stateful_resolve(None);
    };
    if !firing.is_subset(&log.firing) {
        return true;
    }
    if firing.is_empty() {
        // Everything resolved: tell a receiver that saw some of them fire. Alerts that
        // fired and resolved between two ticks were never announced, so they stay quiet.
        return !log.firing.is_empty() || stateful_resolve(Some(&log.resolved));
    }
    if traits.send_resolved && !resolved.is_subset(&log.resolved) {
        return true;
    }
    now >= log.at + repeat
}

#[cfg(test)]
mod tests {
    use super::super::route::{GroupBy, MatchKind, Matcher, Route, Timing};
    use super::*;
    use serde_json::json;

    const WAIT: Duration = Duration::from_millis(100);
    const INTERVAL: Duration = Duration::from_secs(1);
    const REPEAT: Duration = Duration::from_secs(10);

    fn wall() -> DateTime<Utc> {
        "2025-03-01T12:00:00Z".parse().unwrap()
    }

    fn timing() -> Timing {
        Timing {
            group_wait: WAIT,
            group_interval: INTERVAL,
            repeat_interval: REPEAT,
        }
    }

    fn root(receiver: usize, children: Vec<usize>) -> Route {
        Route {
            key: "{}".into(),
            receiver,
            group_by: GroupBy::Labels(vec!["alertname".into()]),
            timing: timing(),
            matchers: vec![],
            continue_matching: false,
            children,
        }
    }

    fn router(
        routes: Vec<Route>,
        receivers: Vec<ReceiverTraits>,
        silences: Vec<Silence>,
    ) -> Router {
        Router::new(RouteTable { routes }, silences, receivers, 100, None)
    }

    fn chat() -> ReceiverTraits {
        ReceiverTraits {
            send_resolved: true,
            stateful: false,
        }
    }

    fn alert(name: &str, instance: &str, status: &str) -> Alert {
        let record = json!({
            "name": name, "status": status, "severity": "critical",
            "labels": {"instance": instance},
            "annotations": {"summary": format!("{name} on {instance}")},
            "plugin": "alerts",
        });
        Alert::from_record(record.as_object().unwrap()).unwrap()
    }

    fn fps(n: &Notification) -> Vec<(String, Status)> {
        n.alerts
            .iter()
            .map(|a| (a.labels["instance"].clone(), a.status))
            .collect()
    }

    #[test]
    fn records_parse_with_defaults_and_the_workers_fingerprint() {
        let a = Alert::from_record(
            json!({"name": "BotSilent", "status": "firing", "labels": {"trader": "T1", "n": 3}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(a.labels["alertname"], "BotSilent");
        assert_eq!(a.labels["severity"], "warning");
        assert_eq!(a.labels["n"], "3");
        let mut own = Labels::new();
        own.insert("n".into(), "3".into());
        own.insert("trader".into(), "T1".into());
        assert_eq!(a.fingerprint, fingerprint("BotSilent", &own));
        assert_eq!(a.fingerprint.len(), 16);
        for bad in [
            json!({"status": "firing"}),
            json!({"name": "x", "status": "on"}),
            json!({"name": "x", "status": "firing", "labels": [1]}),
        ] {
            assert!(
                Alert::from_record(bad.as_object().unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    /// Same algorithm as the transform worker's, checked against a value it computes.
    #[test]
    fn fingerprint_matches_the_transform_workers() {
        let mut event = sluice_sdk::abi::AlertEvent::firing("OrderRejected");
        event.labels.insert("venue".into(), "BINANCE".into());
        let labels = event.labels.clone();
        let mut hasher = Sha256::new();
        hasher.update(b"OrderRejected");
        hasher.update([0]);
        hasher.update(b"venue");
        hasher.update([0xff]);
        hasher.update(b"BINANCE");
        assert_eq!(
            fingerprint("OrderRejected", &labels),
            hex::encode(&hasher.finalize()[..8])
        );
    }

    #[test]
    fn group_wait_batches_then_duplicates_are_not_renotified_until_repeat() {
        let mut r = router(vec![root(0, vec![])], vec![chat()], vec![]);
        let t0 = Instant::now();
        r.ingest(&alert("A", "a", "firing"), t0, wall());
        assert!(r.flush_due(t0, wall()).is_empty(), "group_wait not over");
        r.ingest(&alert("A", "b", "firing"), t0 + WAIT / 2, wall());
        r.ingest(&alert("B", "x", "firing"), t0 + WAIT / 2, wall());
        let out = r.flush_due(t0 + WAIT, wall());
        assert_eq!(out.len(), 1, "only A's group is due: {out:?}");
        assert_eq!(&*out[0].group_key, "{}:{alertname=\"A\"}");
        assert_eq!(
            fps(&out[0]),
            vec![("a".into(), Status::Firing), ("b".into(), Status::Firing)]
        );
        let out = r.flush_due(t0 + WAIT + WAIT / 2, wall());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].group_labels["alertname"], "B");

        // The same firing alert again: de-duplicated on every tick until repeat_interval.
        let mut t = t0 + WAIT;
        for _ in 0..9 {
            r.ingest(&alert("A", "a", "firing"), t, wall());
            t += INTERVAL;
            assert!(
                r.flush_due(t, wall()).is_empty(),
                "renotified at {:?}",
                t - t0
            );
        }
        // Each group repeats once, on its first tick after repeat_interval.
        let mut repeated = Vec::new();
        for _ in 0..2 {
            t += INTERVAL;
            repeated.extend(r.flush_due(t, wall()).into_iter().map(|n| n.group_key));
        }
        repeated.sort();
        assert_eq!(
            repeated,
            vec![
                Arc::from("{}:{alertname=\"A\"}"),
                Arc::from("{}:{alertname=\"B\"}")
            ]
        );
    }

    #[test]
    fn resolved_alerts_go_out_in_the_next_tick_then_leave_the_group() {
        let mut r = router(vec![root(0, vec![])], vec![chat()], vec![]);
        let t0 = Instant::now();
        r.ingest(&alert("A", "a", "firing"), t0, wall());
        r.ingest(&alert("A", "b", "firing"), t0, wall());
        assert_eq!(r.flush_due(t0 + WAIT, wall()).len(), 1);
        let resolved_at = t0 + WAIT + Duration::from_millis(10);
        r.ingest(&alert("A", "a", "resolved"), resolved_at, wall());
        // Not before the group's next tick.
        assert!(r.flush_due(t0 + WAIT + INTERVAL / 2, wall()).is_empty());
        assert_eq!(r.next_deadline(), Some(t0 + WAIT + INTERVAL));
        let out = r.flush_due(t0 + WAIT + INTERVAL, wall());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status(), Status::Firing);
        assert_eq!(
            fps(&out[0]),
            vec![("b".into(), Status::Firing), ("a".into(), Status::Resolved)]
        );
        assert_eq!(r.tracked(), 1, "the resolved alert left the group");
        r.ingest(&alert("A", "b", "resolved"), t0 + WAIT + INTERVAL, wall());
        let out = r.flush_due(t0 + WAIT + 2 * INTERVAL, wall());
        assert_eq!(out[0].status(), Status::Resolved);
        assert_eq!(fps(&out[0]), vec![("b".into(), Status::Resolved)]);
        assert_eq!(r.next_deadline(), None, "empty group forgotten");
    }

    #[test]
    fn fired_and_resolved_within_group_wait_is_never_announced() {
        let mut r = router(vec![root(0, vec![])], vec![chat()], vec![]);
        let t0 = Instant::now();
        r.ingest(&alert("A", "a", "firing"), t0, wall());
        r.ingest(&alert("A", "a", "resolved"), t0 + WAIT / 2, wall());
        assert!(r.flush_due(t0 + WAIT, wall()).is_empty());
        // A resolve for an alert nobody knows is dropped for chat receivers.
        r.ingest(&alert("C", "z", "resolved"), t0, wall());
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn send_resolved_false_announces_nothing_when_all_resolve() {
        let quiet = ReceiverTraits {
            send_resolved: false,
            stateful: false,
        };
        let mut r = router(vec![root(0, vec![])], vec![quiet], vec![]);
        let t0 = Instant::now();
        r.ingest(&alert("A", "a", "firing"), t0, wall());
        r.ingest(&alert("A", "b", "firing"), t0, wall());
        r.flush_due(t0 + WAIT, wall());
        r.ingest(&alert("A", "a", "resolved"), t0 + WAIT, wall());
        assert!(
            r.flush_due(t0 + WAIT + INTERVAL, wall()).is_empty(),
            "a resolve alone is not news without send_resolved"
        );
        r.ingest(&alert("A", "b", "resolved"), t0 + WAIT + INTERVAL, wall());
        assert!(r.flush_due(t0 + WAIT + 2 * INTERVAL, wall()).is_empty());
        assert_eq!(r.tracked(), 0);
    }

    #[test]
    fn each_route_notifies_on_its_own_even_to_the_same_receiver() {
        let eq = |l: &str, v: &str| Matcher {
            label: l.into(),
            kind: MatchKind::Equal(v.into()),
        };
        let mut critical = root(0, vec![]);
        critical.key = "{}/{severity=\"critical\"}".into();
        critical.matchers = vec![eq("severity", "critical")];
        critical.continue_matching = true;
        let mut everything = root(0, vec![]);
        everything.key = "{}/{}".into();
        everything.timing.group_wait = WAIT * 3;
        let mut r = router(
            vec![root(0, vec![1, 2]), critical, everything],
            vec![chat()],
            vec![],
        );
        let t0 = Instant::now();
        r.ingest(&alert("A", "a", "firing"), t0, wall());
        let first = r.flush_due(t0 + WAIT, wall());
        assert_eq!(first.len(), 1);
        assert_eq!(
            &*first[0].group_key,
            "{}/{severity=\"critical\"}:{alertname=\"A\"}"
        );
        let second = r.flush_due(t0 + WAIT * 3, wall());
        assert_eq!(second.len(), 1);
        assert_eq!(&*second[0].group_key, "{}/{}:{alertname=\"A\"}");
        // Resolved: both routes say so.
        r.ingest(&alert("A", "a", "resolved"), t0 + WAIT * 3, wall());
        let mut t = t0 + WAIT * 3;
        let mut resolved = 0;
        for _ in 0..3 {
            t += INTERVAL;
            resolved += r
                .flush_due(t, wall())
                .iter()
                .filter(|n| n.status() == Status::Resolved)
                .count();
        }
        assert_eq!(resolved, 2);
    }

    #[test]
    fn silenced_alerts_stay_quiet_until_the_silence_ends() {
        let silence = Silence {
            matchers: vec![Matcher {
                label: "instance".into(),
                kind: MatchKind::Equal("a".into()),
            }],
            until: Some(wall() + chrono::Duration::seconds(5)),
        };
        let mut r = router(vec![root(0, vec![])], vec![chat()], vec![silence]);
        let t0 = Instant::now();
        let got = r.ingest(&alert("A", "a", "firing"), t0, wall());
        assert!(got.silenced);
        assert!(r.flush_due(t0 + WAIT, wall()).is_empty());
        assert!(r
            .flush_due(t0 + WAIT + INTERVAL, wall() + chrono::Duration::seconds(4))
            .is_empty());
        let out = r.flush_due(
            t0 + WAIT + 2 * INTERVAL,
            wall() + chrono::Duration::seconds(5),
        );
        assert_eq!(out.len(), 1, "the silence ended and the alert still fires");
    }

    #[test]
    fn immediate_routes_report_each_change_and_resend_every_repeat() {
        let stateful = ReceiverTraits {
            send_resolved: true,
            stateful: true,
        };
        let mut route = root(0, vec![]);
        route.group_by = GroupBy::Labels(vec![]);
        route.timing = Timing {
            group_wait: Duration::ZERO,
            group_interval: Duration::ZERO,
            repeat_interval: REPEAT,
        };
        let mut r = router(vec![route], vec![stateful], vec![]);
        let t0 = Instant::now();
        r.ingest(&alert("A", "a", "firing"), t0, wall());
        assert_eq!(r.flush_due(t0, wall()).len(), 1);
        assert!(r.flush_due(t0 + Duration::from_secs(1), wall()).is_empty());
        let t1 = t0 + Duration::from_secs(2);
        r.ingest(&alert("B", "b", "firing"), t1, wall());
        let out = r.flush_due(t1, wall());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].alerts.len(), 2, "the whole state each time");
        assert_eq!(r.next_deadline(), Some(t1 + REPEAT));
        let out = r.flush_due(t1 + REPEAT, wall());
        assert_eq!(out.len(), 1, "resend");
        // A resolve nobody here saw fire still goes to a stateful receiver.
        r.ingest(&alert("Z", "z", "resolved"), t1 + REPEAT, wall());
        let out = r.flush_due(t1 + REPEAT, wall());
        assert_eq!(out.len(), 1);
        assert!(out[0]
            .alerts
            .iter()
            .any(|a| a.name() == "Z" && a.status == Status::Resolved));
    }

    #[test]
    fn max_alerts_and_resolve_timeout_bound_the_state() {
        let mut r = Router::new(
            RouteTable {
                routes: vec![root(0, vec![])],
            },
            vec![],
            vec![chat()],
            2,
            Some(Duration::from_secs(3)),
        );
        let t0 = Instant::now();
        assert!(!r.ingest(&alert("A", "a", "firing"), t0, wall()).over_limit);
        assert!(!r.ingest(&alert("A", "b", "firing"), t0, wall()).over_limit);
        assert!(r.ingest(&alert("A", "c", "firing"), t0, wall()).over_limit);
        assert!(
            !r.ingest(&alert("A", "a", "firing"), t0, wall()).over_limit,
            "known alerts update"
        );
        r.flush_due(t0 + WAIT, wall());
        r.ingest(
            &alert("A", "a", "firing"),
            t0 + Duration::from_secs(2),
            wall(),
        );
        // b was last seen at t0: by t0 + 3 s it resolves on its own; a is fresh.
        let out = r.flush_due(t0 + WAIT + Duration::from_secs(3), wall());
        assert_eq!(out.len(), 1);
        assert_eq!(
            fps(&out[0]),
            vec![("a".into(), Status::Firing), ("b".into(), Status::Resolved)]
        );
        assert_eq!(r.tracked(), 1);
    }

    #[test]
    fn absorb_keeps_resolved_alerts_only_the_older_notification_had() {
        let snap = |fp: &str, status| AlertSnapshot {
            fingerprint: fp.into(),
            status,
            labels: Labels::new(),
            annotations: Labels::new(),
            plugin: None,
            starts_at: wall(),
            ends_at: None,
        };
        let n = |alerts| Notification {
            receiver: 0,
            route: 0,
            group_key: "g".into(),
            group_labels: Labels::new(),
            alerts,
        };
        let older = n(vec![snap("a", Status::Firing), snap("b", Status::Resolved)]);
        let mut newer = n(vec![snap("c", Status::Firing), snap("a", Status::Resolved)]);
        newer.absorb(older);
        let got: Vec<_> = newer
            .alerts
            .iter()
            .map(|a| (a.fingerprint.as_str(), a.status))
            .collect();
        assert_eq!(
            got,
            vec![
                ("c", Status::Firing),
                ("a", Status::Resolved),
                ("b", Status::Resolved)
            ]
        );
    }
}

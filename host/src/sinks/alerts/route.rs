//! The routing tree and silences, compiled from the configuration once: label matchers
//! (regexes anchored as Alertmanager anchors them), inherited group settings, and the
//! depth-first match with `continue` that Alertmanager's routing uses.

use chrono::{DateTime, Utc};
use regex::Regex;
use std::collections::BTreeMap;
use std::time::Duration;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub enum MatchKind {
    Equal(String),
    NotEqual(String),
    Regex(Regex),
    NotRegex(Regex),
}

/// One label condition. A label the alert does not have reads as the empty string, so
/// `{team: ""}` matches alerts without `team`, as in Alertmanager.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub kind: MatchKind,
}

impl Matcher {
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.label).map(String::as_str).unwrap_or("");
        match &self.kind {
            MatchKind::Equal(v) => value == v,
            MatchKind::NotEqual(v) => value != v,
            MatchKind::Regex(r) => r.is_match(value),
            MatchKind::NotRegex(r) => !r.is_match(value),
        }
    }

    /// Alertmanager's notation (`name="v"`, `name=~"re"`), for group keys.
    fn notation(&self) -> String {
        match &self.kind {
            MatchKind::Equal(v) => format!("{}={v:?}", self.label),
            MatchKind::NotEqual(v) => format!("{}!={v:?}", self.label),
            MatchKind::Regex(r) => format!("{}=~{:?}", self.label, unanchor(r)),
            MatchKind::NotRegex(r) => format!("{}!~{:?}", self.label, unanchor(r)),
        }
    }
}

fn unanchor(r: &Regex) -> &str {
    let s = r.as_str();
    s.strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(s)
}

/// Compiles a user regex the way Alertmanager does: it must match the whole value.
pub fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

pub fn all_match(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// Group by these labels (an alert without one groups under the empty value).
    Labels(Vec<String>),
    /// `...`: every label, so each alert is its own group.
    All,
}

impl GroupBy {
    /// `...` anywhere in the list means every label, as in Alertmanager.
    pub fn parse(names: &[String]) -> Self {
        if names.iter().any(|n| n == "...") {
            GroupBy::All
        } else {
            GroupBy::Labels(names.to_vec())
        }
    }

    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match self {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Timing {
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

/// A node of the routing tree, with every inherited setting resolved.
#[derive(Debug, Clone)]
pub struct Route {
    /// Alertmanager-style identity of the route (`{}/{severity="critical"}`), the prefix of
    /// its group keys.
    pub key: String,
    pub receiver: usize,
    pub group_by: GroupBy,
    pub timing: Timing,
    pub matchers: Vec<Matcher>,
    pub continue_matching: bool,
    pub children: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct RouteTable {
    /// Index 0 is the root.
    pub routes: Vec<Route>,
}

impl RouteTable {
    /// The routes an alert goes to: depth first, the first matching child wins unless it
    /// has `continue`, and a node none of whose children match takes the alert itself.
    pub fn matching(&self, labels: &Labels) -> Vec<usize> {
        let mut out = Vec::new();
        self.visit(0, labels, &mut out);
        out
    }

    fn visit(&self, id: usize, labels: &Labels, out: &mut Vec<usize>) -> bool {
        let route = &self.routes[id];
        if !all_match(&route.matchers, labels) {
            return false;
        }
        let before = out.len();
        for &child in &route.children {
            let matched = self.visit(child, labels, out);
            if matched && !self.routes[child].continue_matching {
                break;
            }
        }
        if out.len() == before {
            out.push(id);
        }
        true
    }

    pub fn route_key(parent: Option<&str>, matchers: &[Matcher]) -> String {
        let own = format!(
            "{{{}}}",
            matchers
                .iter()
                .map(Matcher::notation)
                .collect::<Vec<_>>()
                .join(",")
        );
        match parent {
            None => own,
            Some(p) => format!("{p}/{own}"),
        }
    }
}

/// A configured silence: matching alerts are kept (so they notify once it ends) but never
/// notified while it lasts.
#[derive(Debug, Clone)]
pub struct Silence {
    pub matchers: Vec<Matcher>,
    pub until: Option<DateTime<Utc>>,
}

impl Silence {
    pub fn mutes(&self, labels: &Labels, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|u| now < u) && all_match(&self.matchers, labels)
    }
}

pub fn silenced(silences: &[Silence], labels: &Labels, now: DateTime<Utc>) -> bool {
    silences.iter().any(|s| s.mutes(labels, now))
}

/// `{a="1", b="2"}`, the notation of Alertmanager group keys.
pub fn render_labels(labels: &Labels) -> String {
    format!(
        "{{{}}}",
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn eq(label: &str, v: &str) -> Matcher {
        Matcher {
            label: label.into(),
            kind: MatchKind::Equal(v.into()),
        }
    }

    fn route(receiver: usize, matchers: Vec<Matcher>, cont: bool, children: Vec<usize>) -> Route {
        Route {
            key: String::new(),
            receiver,
            group_by: GroupBy::Labels(vec!["alertname".into()]),
            timing: Timing {
                group_wait: Duration::ZERO,
                group_interval: Duration::ZERO,
                repeat_interval: Duration::ZERO,
            },
            matchers,
            continue_matching: cont,
            children,
        }
    }

    #[test]
    fn matchers_are_anchored_and_missing_labels_read_empty() {
        let re = Matcher {
            label: "env".into(),
            kind: MatchKind::Regex(anchored("prod|staging").unwrap()),
        };
        assert!(re.matches(&labels(&[("env", "prod")])));
        assert!(!re.matches(&labels(&[("env", "preprod")])));
        assert!(!re.matches(&labels(&[])));
        let absent = eq("team", "");
        assert!(absent.matches(&labels(&[])));
        assert!(!absent.matches(&labels(&[("team", "x")])));
        let not_re = Matcher {
            label: "env".into(),
            kind: MatchKind::NotRegex(anchored("prod").unwrap()),
        };
        assert!(not_re.matches(&labels(&[("env", "production")])));
        assert_eq!(not_re.notation(), "env!~\"prod\"");
    }

    #[test]
    fn first_matching_child_wins_unless_it_continues() {
        // root(0) -> [critical(1, continue), critical-again(2), ops(3)]
        let table = RouteTable {
            routes: vec![
                route(0, vec![], false, vec![1, 2, 3]),
                route(1, vec![eq("severity", "critical")], true, vec![]),
                route(2, vec![eq("severity", "critical")], false, vec![]),
                route(3, vec![eq("team", "ops")], false, vec![]),
            ],
        };
        assert_eq!(
            table.matching(&labels(&[("severity", "critical"), ("team", "ops")])),
            vec![1, 2]
        );
        assert_eq!(
            table.matching(&labels(&[("severity", "warning"), ("team", "ops")])),
            vec![3]
        );
        // Nothing below matches: the root takes it.
        assert_eq!(table.matching(&labels(&[("severity", "info")])), vec![0]);
    }

    #[test]
    fn nested_route_without_matching_children_takes_the_alert_itself() {
        let table = RouteTable {
            routes: vec![
                route(0, vec![], false, vec![1]),
                route(1, vec![eq("team", "ops")], false, vec![2]),
                route(2, vec![eq("severity", "critical")], false, vec![]),
            ],
        };
        assert_eq!(
            table.matching(&labels(&[("team", "ops"), ("severity", "critical")])),
            vec![2]
        );
        assert_eq!(
            table.matching(&labels(&[("team", "ops"), ("severity", "info")])),
            vec![1]
        );
    }

    #[test]
    fn silences_end_at_until() {
        let now: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        let s = Silence {
            matchers: vec![eq("alertname", "Noisy")],
            until: Some("2025-01-01T01:00:00Z".parse().unwrap()),
        };
        let l = labels(&[("alertname", "Noisy")]);
        assert!(s.mutes(&l, now));
        assert!(!s.mutes(&l, "2025-01-01T01:00:00Z".parse().unwrap()));
        assert!(!s.mutes(&labels(&[("alertname", "Other")]), now));
    }

    #[test]
    fn group_labels_and_keys() {
        let l = labels(&[("alertname", "A"), ("trader", "T1"), ("x", "1")]);
        let by = GroupBy::Labels(vec!["alertname".into(), "trader".into(), "absent".into()]);
        assert_eq!(
            render_labels(&by.group_labels(&l)),
            "{alertname=\"A\", trader=\"T1\"}"
        );
        assert_eq!(GroupBy::All.group_labels(&l), l);
        let key = RouteTable::route_key(Some("{}"), &[eq("severity", "critical")]);
        assert_eq!(key, "{}/{severity=\"critical\"}");
    }
}

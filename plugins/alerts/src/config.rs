//! The transform's `config:` block and its rules, checked and compiled at init. Every
//! mistake is reported with the rule's position, its name and the key at fault, because
//! the person reading the error is editing a YAML file with a dozen rules in it.

use crate::defaults;
use crate::matcher::{Matcher, Path, PathAlt, Template};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

const NS: f64 = 1e9;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The rules. Absent: the built-in default rules (see `docs/plugins/alerts.md`).
    pub rules: Option<Vec<Value>>,
    /// Also run the default rules next to `rules`; a rule of yours with a default rule's
    /// name replaces it. Defaults to true when `rules` is absent, false otherwise.
    pub include_default_rules: Option<bool>,
    /// Names of default rules to leave out.
    pub disable: Vec<String>,
    /// Labels added to every alert (templated like a rule's labels), e.g. `env: "{{env}}"`
    /// so Alertmanager can route by environment. A rule's own labels win.
    pub labels: BTreeMap<String, String>,
    /// Where the default rules' runbook links point; each adds `#<anchor>`.
    pub runbook_base_url: String,
    /// Alert groups (distinct `group_by` values) one rule tracks; past it, records of new
    /// groups are ignored for that rule and counted.
    pub max_groups_per_rule: usize,
    /// Occurrences or samples one group keeps in a window; past it, the oldest go.
    pub max_window_entries: usize,
    /// A record stamped further than this ahead of the last tick is treated as stamped at
    /// the last tick, so one bogus timestamp cannot move the clock into the future.
    pub max_clock_skew_seconds: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rules: None,
            include_default_rules: None,
            disable: Vec::new(),
            labels: BTreeMap::new(),
            runbook_base_url: defaults::RUNBOOK_BASE.to_owned(),
            max_groups_per_rule: 1000,
            max_window_entries: 1024,
            max_clock_skew_seconds: 300.0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleCfg {
    name: String,
    kind: String,
    when: Option<Value>,
    severity: Option<String>,
    summary: Option<String>,
    description: Option<String>,
    runbook_url: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    group_by: Vec<String>,
    for_seconds: Option<f64>,
    window_seconds: Option<f64>,
    field: Option<String>,
    divide_by: Option<String>,
    wildcard_label: Option<String>,
    wildcard_key_field: Option<String>,
    above: Option<f64>,
    below: Option<f64>,
    clear: Option<f64>,
    at_least: Option<u64>,
    of: Option<Value>,
    min_count: Option<u64>,
    quantile: Option<f64>,
    min_samples: Option<u64>,
    max_samples: Option<usize>,
    resolve_when: Option<Value>,
    unless_after: Option<UnlessCfg>,
    change_above: Option<f64>,
    reset_by: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlessCfg {
    when: Value,
    within_seconds: f64,
}

/// Which way a value breaches.
#[derive(Debug, Clone, Copy)]
pub enum Cmp {
    Above(f64),
    Below(f64),
}

impl Cmp {
    pub fn breaches(self, v: f64) -> bool {
        match self {
            Cmp::Above(t) => v > t,
            Cmp::Below(t) => v < t,
        }
    }

    pub fn threshold(self) -> f64 {
        match self {
            Cmp::Above(t) | Cmp::Below(t) => t,
        }
    }
}

/// A numeric field, possibly with one `*`, optionally divided by another field.
#[derive(Debug, Clone)]
pub struct ValueSpec {
    pub field: Path,
    pub divide_by: Option<Path>,
    pub key_field: Option<String>,
}

#[derive(Debug)]
pub enum Kind {
    Threshold {
        value: ValueSpec,
        cmp: Cmp,
        /// Resolves only once the value is back at or past this (hysteresis).
        clear: f64,
    },
    Count {
        at_least: usize,
        window: i64,
    },
    Change {
        value: ValueSpec,
        ratio: f64,
        reset_by: Option<Matcher>,
        at_least: usize,
        window: i64,
    },
    Rate {
        /// `None`: matching records per second; `Some`: share of the records `of` matches.
        of: Option<Matcher>,
        cmp: Cmp,
        min_count: u64,
        window: i64,
    },
    Quantile {
        field: Path,
        q: f64,
        cmp: Cmp,
        min_samples: usize,
        max_samples: usize,
        window: i64,
    },
    Absent {
        window: i64,
    },
    State {
        resolve_when: Matcher,
    },
}

impl Kind {
    pub fn window(&self) -> Option<i64> {
        match self {
            Kind::Count { window, .. }
            | Kind::Change { window, .. }
            | Kind::Rate { window, .. }
            | Kind::Quantile { window, .. }
            | Kind::Absent { window } => Some(*window),
            Kind::Threshold { .. } | Kind::State { .. } => None,
        }
    }

    pub fn threshold(&self) -> Option<f64> {
        match self {
            Kind::Threshold { cmp, .. } | Kind::Rate { cmp, .. } | Kind::Quantile { cmp, .. } => {
                Some(cmp.threshold())
            }
            Kind::Count { at_least, .. } => Some(*at_least as f64),
            Kind::Change { ratio, .. } => Some(*ratio),
            Kind::Absent { .. } | Kind::State { .. } => None,
        }
    }
}

/// A rule ready to run.
#[derive(Debug)]
pub struct Spec {
    pub name: String,
    pub severity: String,
    pub kind: Kind,
    pub when: Matcher,
    pub group_by: Vec<PathAlt>,
    pub for_ns: i64,
    /// Records that matched this within the window before a `when` record make it expected.
    pub unless: Option<(Matcher, i64)>,
    /// Label name for the key a `*` stood for.
    pub wildcard_label: Option<String>,
    pub labels: Vec<(String, Template)>,
    pub annotations: Vec<(String, Template)>,
    /// Every field path the templates use, captured for alerts raised on a tick.
    pub template_paths: Vec<PathAlt>,
}

impl Spec {
    /// The matchers a record must pass one of for this rule to care about it.
    pub fn interest(&self) -> Vec<&Matcher> {
        let mut all = vec![&self.when];
        match &self.kind {
            Kind::State { resolve_when } => all.push(resolve_when),
            Kind::Change {
                reset_by: Some(m), ..
            } => all.push(m),
            Kind::Rate { of: Some(m), .. } => all.push(m),
            _ => {}
        }
        if let Some((m, _)) = &self.unless {
            all.push(m);
        }
        all
    }
}

pub struct Settings {
    pub max_groups: usize,
    pub max_entries: usize,
    pub max_skew_ns: i64,
}

pub fn compile(config: Config) -> Result<(Vec<Spec>, Settings), String> {
    if config.max_groups_per_rule == 0 {
        return Err("`max_groups_per_rule` must be at least 1".into());
    }
    if config.max_window_entries == 0 {
        return Err("`max_window_entries` must be at least 1".into());
    }
    if !(config.max_clock_skew_seconds.is_finite() && config.max_clock_skew_seconds >= 0.0) {
        return Err("`max_clock_skew_seconds` must be a number of seconds, 0 or more".into());
    }
    for key in config.labels.keys() {
        check_label_name(key).map_err(|e| format!("`labels`: {e}"))?;
    }
    let include_default_rules = config
        .include_default_rules
        .unwrap_or(config.rules.is_none());
    let defaults = defaults::rules(&config.runbook_base_url);
    let default_names: HashSet<String> = defaults
        .iter()
        .filter_map(|r| r.get("name")?.as_str().map(str::to_owned))
        .collect();
    for name in &config.disable {
        if !default_names.contains(name) {
            let mut known: Vec<&String> = default_names.iter().collect();
            known.sort();
            return Err(format!(
                "`disable`: `{name}` is not a default rule (they are: {})",
                known
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }

    let user = config.rules.clone().unwrap_or_default();
    let user_names: HashSet<String> = user
        .iter()
        .filter_map(|r| r.get("name")?.as_str().map(str::to_owned))
        .collect();
    let mut sources: Vec<(String, Value)> = Vec::new();
    if include_default_rules {
        for (i, rule) in defaults.into_iter().enumerate() {
            let name = rule["name"].as_str().unwrap_or_default().to_owned();
            if config.disable.contains(&name) || user_names.contains(&name) {
                continue;
            }
            sources.push((format!("default rule [{i}] `{name}`"), rule));
        }
    }
    for (i, rule) in user.into_iter().enumerate() {
        let name = rule.get("name").and_then(Value::as_str).unwrap_or("?");
        sources.push((format!("rules[{i}] `{name}`"), rule));
    }

    let mut seen = HashSet::new();
    let mut specs = Vec::new();
    for (place, value) in sources {
        let spec = compile_rule(value, &config).map_err(|e| format!("{place}: {e}"))?;
        if !seen.insert(spec.name.clone()) {
            return Err(format!("{place}: the name `{}` is used twice", spec.name));
        }
        specs.push(spec);
    }
    let settings = Settings {
        max_groups: config.max_groups_per_rule,
        max_entries: config.max_window_entries,
        max_skew_ns: (config.max_clock_skew_seconds * NS) as i64,
    };
    Ok((specs, settings))
}

fn seconds(key: &str, v: f64, allow_zero: bool) -> Result<i64, String> {
    if !v.is_finite() || v < 0.0 || (!allow_zero && v == 0.0) || v > 1e7 {
        let least = if allow_zero {
            "0 or more"
        } else {
            "more than 0"
        };
        return Err(format!(
            "`{key}` must be a number of seconds, {least} (got {v})"
        ));
    }
    Ok((v * NS).round() as i64)
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name (letters, digits and `_`, not starting with a digit)"
        ))
    }
}

fn compile_rule(value: Value, config: &Config) -> Result<Spec, String> {
    if !value.is_object() {
        return Err("a rule must be a map".into());
    }
    let cfg: RuleCfg = serde_json::from_value(value).map_err(|e| e.to_string())?;
    check_label_name(&cfg.name).map_err(|e| format!("`name`: {e}"))?;

    let kinds = [
        "threshold",
        "count",
        "change",
        "rate",
        "quantile",
        "absent",
        "state",
    ];
    if !kinds.contains(&cfg.kind.as_str()) {
        return Err(format!(
            "`kind`: unknown kind `{}` (expected one of {})",
            cfg.kind,
            kinds.join(", ")
        ));
    }
    // Keys that only some kinds read: refuse them elsewhere, since a key that silently does
    // nothing is a rule that silently does not do what its author thinks.
    let present: [(&str, bool, &[&str]); 18] = [
        (
            "window_seconds",
            cfg.window_seconds.is_some(),
            &["count", "change", "rate", "quantile", "absent"],
        ),
        (
            "field",
            cfg.field.is_some(),
            &["threshold", "change", "quantile"],
        ),
        (
            "divide_by",
            cfg.divide_by.is_some(),
            &["threshold", "change"],
        ),
        (
            "wildcard_label",
            cfg.wildcard_label.is_some(),
            &["threshold", "change"],
        ),
        (
            "wildcard_key_field",
            cfg.wildcard_key_field.is_some(),
            &["threshold", "change"],
        ),
        (
            "above",
            cfg.above.is_some(),
            &["threshold", "rate", "quantile"],
        ),
        (
            "below",
            cfg.below.is_some(),
            &["threshold", "rate", "quantile"],
        ),
        ("clear", cfg.clear.is_some(), &["threshold"]),
        ("at_least", cfg.at_least.is_some(), &["count", "change"]),
        ("of", cfg.of.is_some(), &["rate"]),
        ("min_count", cfg.min_count.is_some(), &["rate"]),
        ("quantile", cfg.quantile.is_some(), &["quantile"]),
        ("min_samples", cfg.min_samples.is_some(), &["quantile"]),
        ("max_samples", cfg.max_samples.is_some(), &["quantile"]),
        ("resolve_when", cfg.resolve_when.is_some(), &["state"]),
        ("unless_after", cfg.unless_after.is_some(), &["count"]),
        ("change_above", cfg.change_above.is_some(), &["change"]),
        ("reset_by", cfg.reset_by.is_some(), &["change"]),
    ];
    for (key, is_set, kinds) in present {
        if is_set && !kinds.contains(&cfg.kind.as_str()) {
            return Err(format!(
                "`{key}` does not apply to kind `{}` (only to {})",
                cfg.kind,
                kinds.join(", ")
            ));
        }
    }

    let severity = cfg.severity.clone().unwrap_or_else(|| "warning".to_owned());
    if !["critical", "error", "warning", "info"].contains(&severity.as_str()) {
        return Err(format!(
            "`severity`: `{severity}` is not one of critical, error, warning, info"
        ));
    }
    let when = match &cfg.when {
        Some(v) => Matcher::parse(v).map_err(|e| format!("`when`: {e}"))?,
        None if cfg.kind == "absent" => Matcher::any(),
        None => return Err("`when` is required: which records does this rule look at?".into()),
    };
    let for_ns = seconds("for_seconds", cfg.for_seconds.unwrap_or(0.0), true)?;
    let window = |required: bool| -> Result<i64, String> {
        match cfg.window_seconds {
            Some(v) => seconds("window_seconds", v, false),
            None if required => Err(format!(
                "`window_seconds` is required for kind `{}`",
                cfg.kind
            )),
            None => Ok(0),
        }
    };
    let cmp = || -> Result<Cmp, String> {
        match (cfg.above, cfg.below) {
            (Some(a), None) if a.is_finite() => Ok(Cmp::Above(a)),
            (None, Some(b)) if b.is_finite() => Ok(Cmp::Below(b)),
            (Some(_), Some(_)) => Err("set only one of `above` and `below`".into()),
            (None, None) => Err(format!("kind `{}` needs `above` or `below`", cfg.kind)),
            _ => Err("`above`/`below` must be a finite number".into()),
        }
    };
    let field = |what: &str| -> Result<Path, String> {
        let f = cfg
            .field
            .as_deref()
            .ok_or_else(|| format!("`field` is required for kind `{}` ({what})", cfg.kind))?;
        Path::parse(f).map_err(|e| format!("`field`: {e}"))
    };
    let value_spec = |what: &str| -> Result<ValueSpec, String> {
        let field = field(what)?;
        let divide_by = cfg
            .divide_by
            .as_deref()
            .map(|d| {
                let p = Path::parse(d).map_err(|e| format!("`divide_by`: {e}"))?;
                if p.has_wildcard() {
                    return Err("`divide_by` cannot have a `*`".to_owned());
                }
                Ok(p)
            })
            .transpose()?;
        if !field.has_wildcard()
            && (cfg.wildcard_label.is_some() || cfg.wildcard_key_field.is_some())
        {
            return Err("`wildcard_label` and `wildcard_key_field` need a `*` in `field`".into());
        }
        Ok(ValueSpec {
            field,
            divide_by,
            key_field: cfg.wildcard_key_field.clone(),
        })
    };
    let at_least = |max: usize| -> Result<usize, String> {
        let n = cfg.at_least.unwrap_or(1);
        if n == 0 {
            return Err("`at_least` must be 1 or more".into());
        }
        if n as usize > max {
            return Err(format!(
                "`at_least` ({n}) is more than `max_window_entries` ({max}), so it could never fire"
            ));
        }
        Ok(n as usize)
    };
    let matcher = |key: &str, v: &Value| Matcher::parse(v).map_err(|e| format!("`{key}`: {e}"));

    let kind = match cfg.kind.as_str() {
        "threshold" => {
            let cmp = cmp()?;
            let clear = match (cfg.clear, cmp) {
                (None, c) => c.threshold(),
                (Some(c), Cmp::Above(t)) if c.is_finite() && c <= t => c,
                (Some(c), Cmp::Below(t)) if c.is_finite() && c >= t => c,
                (Some(c), _) => {
                    return Err(format!(
                        "`clear` ({c}) must be on the healthy side of the threshold ({})",
                        cmp.threshold()
                    ))
                }
            };
            Kind::Threshold {
                value: value_spec("the number compared")?,
                cmp,
                clear,
            }
        }
        "count" => Kind::Count {
            at_least: at_least(config.max_window_entries)?,
            window: window(true)?,
        },
        "change" => {
            let ratio = cfg
                .change_above
                .ok_or("`change_above` is required for kind `change` (e.g. 0.02 for 2%)")?;
            if !(ratio.is_finite() && ratio > 0.0) {
                return Err("`change_above` must be a positive fraction (0.02 = 2%)".into());
            }
            Kind::Change {
                value: value_spec("the number watched")?,
                ratio,
                reset_by: cfg
                    .reset_by
                    .as_ref()
                    .map(|v| matcher("reset_by", v))
                    .transpose()?,
                at_least: at_least(config.max_window_entries)?,
                window: window(true)?,
            }
        }
        "rate" => Kind::Rate {
            of: cfg
                .of
                .as_ref()
                .map(|v| match v {
                    Value::String(s) if s == "all" => Ok(Matcher::any()),
                    v => matcher("of", v),
                })
                .transpose()?,
            cmp: cmp()?,
            min_count: cfg.min_count.unwrap_or(0),
            window: window(true)?,
        },
        "quantile" => {
            let q = cfg
                .quantile
                .ok_or("`quantile` is required for kind `quantile` (e.g. 0.99)")?;
            if !(q > 0.0 && q <= 1.0) {
                return Err(format!("`quantile` must be in (0, 1], got {q}"));
            }
            let field = field("the number sampled")?;
            if field.has_wildcard() {
                return Err("`field` cannot have a `*` for kind `quantile`".into());
            }
            let max_samples = cfg.max_samples.unwrap_or(config.max_window_entries);
            if max_samples == 0 {
                return Err("`max_samples` must be at least 1".into());
            }
            let min_samples = cfg.min_samples.unwrap_or(1).max(1) as usize;
            if min_samples > max_samples {
                return Err(format!(
                    "`min_samples` ({min_samples}) is more than `max_samples` ({max_samples})"
                ));
            }
            Kind::Quantile {
                field,
                q,
                cmp: cmp()?,
                min_samples,
                max_samples,
                window: window(true)?,
            }
        }
        "absent" => Kind::Absent {
            window: window(true)?,
        },
        "state" => Kind::State {
            resolve_when: matcher(
                "resolve_when",
                cfg.resolve_when
                    .as_ref()
                    .ok_or("`resolve_when` is required for kind `state`")?,
            )?,
        },
        _ => unreachable!("checked above"),
    };

    let unless = cfg
        .unless_after
        .as_ref()
        .map(|u| -> Result<_, String> {
            Ok((
                matcher("unless_after.when", &u.when)?,
                seconds("unless_after.within_seconds", u.within_seconds, false)?,
            ))
        })
        .transpose()?;

    let group_by = cfg
        .group_by
        .iter()
        .map(|g| PathAlt::parse(g).map_err(|e| format!("`group_by`: {e}")))
        .collect::<Result<Vec<_>, _>>()?;

    let wildcard = match &kind {
        Kind::Threshold { value, .. } | Kind::Change { value, .. } => value.field.has_wildcard(),
        _ => false,
    };
    let wildcard_label = wildcard.then(|| cfg.wildcard_label.clone().unwrap_or("key".into()));

    // Labels: group_by values, then the wildcard key, then the global labels, then the
    // rule's own; a later one with the same name wins.
    let mut template_paths = Vec::new();
    let mut label_src: BTreeMap<String, String> = BTreeMap::new();
    for g in &group_by {
        check_label_name(g.label_name())
            .map_err(|e| format!("`group_by` `{}` gives the label name {e}", g.text()))?;
        label_src.insert(g.label_name().to_owned(), format!("{{{{{}}}}}", g.text()));
    }
    if let Some(w) = &wildcard_label {
        check_label_name(w).map_err(|e| format!("`wildcard_label`: {e}"))?;
        label_src.insert(w.clone(), "{{$key}}".into());
    }
    for (k, v) in config.labels.iter().chain(cfg.labels.iter()) {
        check_label_name(k).map_err(|e| format!("`labels`: {e}"))?;
        label_src.insert(k.clone(), v.clone());
    }
    let labels = label_src
        .into_iter()
        .map(|(k, v)| {
            let t = Template::parse(&v, &mut template_paths)
                .map_err(|e| format!("`labels.{k}`: {e}"))?;
            Ok((k, t))
        })
        .collect::<Result<Vec<_>, String>>()?;

    let mut ann_src = cfg.annotations.clone();
    for (key, v) in [
        ("summary", &cfg.summary),
        ("description", &cfg.description),
        ("runbook_url", &cfg.runbook_url),
    ] {
        if let Some(v) = v {
            if ann_src.insert(key.to_owned(), v.clone()).is_some() {
                return Err(format!(
                    "`{key}` is set both as a key and under `annotations`; keep one"
                ));
            }
        }
    }
    ann_src
        .entry("summary".to_owned())
        .or_insert_with(|| cfg.name.clone());
    let annotations = ann_src
        .into_iter()
        .map(|(k, v)| {
            let t = Template::parse(&v, &mut template_paths)
                .map_err(|e| format!("`annotations.{k}`: {e}"))?;
            Ok((k, t))
        })
        .collect::<Result<Vec<_>, String>>()?;

    Ok(Spec {
        name: cfg.name,
        severity,
        kind,
        when,
        group_by,
        for_ns,
        unless,
        wildcard_label,
        labels,
        annotations,
        template_paths,
    })
}

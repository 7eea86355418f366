//! The rule language and its compiler.
//!
//! Rules arrive as loosely typed values (YAML turned into MessagePack turned into JSON
//! values) and are compiled once, at init, into plain structs the hot path can evaluate
//! without parsing anything again. Every rule key is read by hand rather than by serde so
//! that each refusal names the rule's index and the exact key (`rules[3].when.rest.status`);
//! serde only guards the set of keys.

use crate::fields::{self, FastMap, Fields, PathTable, UNINTERNED};
use crate::time;
use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_sdk::MetricKind;

/// Counters the plugin emits about itself; user rules may not take these names.
pub const OVERFLOW_METRIC: &str = "metrics_series_overflow_total";
pub const SKIPPED_METRIC: &str = "metrics_rule_skipped_total";

/// One rule as written in the config. Values stay untyped here so `compile` can say which
/// key was wrong and why; `deny_unknown_fields` catches misspelt keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    /// The Prometheus metric name.
    metric: Option<Value>,
    /// `counter`, `gauge`, `gauge_add` or `histogram`.
    kind: Option<Value>,
    /// Human description; ABI v1 carries no help text, so it documents the config only.
    help: Option<Value>,
    /// Conditions that must all hold: `field: value`, or `field: {test: arg, ...}`.
    when: Option<Value>,
    /// A field path, a number, `{mul: [...]}`, `{div: [a, b]}` or `{time: path}`.
    value: Option<Value>,
    /// Label name to a field path, `=literal`, `@key` or `{field, max_len, mask_digits}`.
    labels: Option<Value>,
    /// A list or map field: the rule applies once per item, paths relative to the item.
    for_each: Option<Value>,
    /// Overrides the global `max_series_per_metric` for this rule's metric.
    max_series: Option<Value>,
    /// Gauges only: re-send the last value every `refresh_gauges_seconds` (default true).
    refresh: Option<Value>,
}

/// A dotted field path, split once at init.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// `$.`-prefixed: from the record root even inside a `for_each` rule.
    root: bool,
    segments: Box<[Box<str>]>,
    /// Its id in the rule set's [`PathTable`] when read from the record root.
    id: u32,
}

/// The item a `for_each` rule is currently applied to.
#[derive(Clone, Copy)]
pub struct Item<'a> {
    pub value: &'a Value,
    pub key: ItemKey<'a>,
}

#[derive(Clone, Copy)]
pub enum ItemKey<'a> {
    Key(&'a str),
    Index(usize),
}

impl Path {
    fn parse(text: &str) -> Result<Self, String> {
        let (root, rest) = match text.strip_prefix("$.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if rest.is_empty() || rest.split('.').any(str::is_empty) {
            return Err(format!(
                "`{text}` is not a field path (expected names joined by dots, e.g. `order.venue`)"
            ));
        }
        Ok(Self {
            root,
            segments: rest.split('.').map(Box::from).collect(),
            id: UNINTERNED,
        })
    }

    /// Looks the path up in `map`, treating JSON null as absent: a null carries no value to
    /// match, label or count.
    pub fn lookup<'a>(&self, map: &'a Map<String, Value>) -> Option<&'a Value> {
        fields::lookup(map, &self.segments).filter(|v| !v.is_null())
    }

    /// Inside a `for_each` rule, relative paths start at the item; elsewhere, at the record.
    pub fn resolve<'a>(
        &self,
        fields: &mut Fields<'a>,
        item: Option<Item<'a>>,
    ) -> Option<&'a Value> {
        match item {
            Some(item) if !self.root => self.lookup(item.value.as_object()?),
            _ => fields.root(self.id, &self.segments),
        }
    }
}

/// A number from a field: JSON numbers, and strings holding one (`_` separators allowed),
/// as the SDK's `get_f64` reads them.
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            if s.contains('_') {
                s.replace('_', "").parse().ok()
            } else {
                s.parse().ok()
            }
        }
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(Box<str>),
    Num(f64),
    Bool(bool),
}

impl Scalar {
    fn parse(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::Str(s.as_str().into())),
            Value::Number(n) => n.as_f64().map(Self::Num),
            Value::Bool(b) => Some(Self::Bool(*b)),
            _ => None,
        }
    }

    /// Strings match strings exactly; numbers match numerically (so `429` matches `429.0`
    /// and `"429"`); booleans match booleans.
    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (Self::Str(want), Value::String(got)) => **want == **got,
            (Self::Num(want), got) => number(got) == Some(*want),
            (Self::Bool(want), Value::Bool(got)) => want == got,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Eq(Scalar),
    In(Vec<Scalar>),
    NotIn(Vec<Scalar>),
    Exists(bool),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
}

impl Test {
    /// A missing (or null) field passes only `exists: false`; a test about a value never
    /// holds for a value that is not there.
    fn holds(&self, value: Option<&Value>) -> bool {
        let Some(value) = value else {
            return matches!(self, Test::Exists(false));
        };
        match self {
            Test::Exists(want) => *want,
            Test::Eq(s) => s.matches(value),
            Test::In(list) => list.iter().any(|s| s.matches(value)),
            Test::NotIn(list) => !list.iter().any(|s| s.matches(value)),
            Test::Gt(n) => number(value).is_some_and(|v| v > *n),
            Test::Gte(n) => number(value).is_some_and(|v| v >= *n),
            Test::Lt(n) => number(value).is_some_and(|v| v < *n),
            Test::Lte(n) => number(value).is_some_and(|v| v <= *n),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    path: Path,
    tests: Vec<Test>,
}

impl Cond {
    pub fn holds(&self, fields: &mut Fields<'_>) -> bool {
        let value = self.path.resolve(fields, None);
        self.tests.iter().all(|t| t.holds(value))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Const(f64),
    Field(Path),
}

impl Operand {
    fn eval<'a>(&self, fields: &mut Fields<'a>, item: Option<Item<'a>>) -> Option<f64> {
        match self {
            Operand::Const(c) => Some(*c),
            Operand::Field(p) => number(p.resolve(fields, item)?),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueSpec {
    Operand(Operand),
    Mul(Vec<Operand>),
    Div(Operand, Operand),
    Time(Path),
}

impl ValueSpec {
    /// `None` when a field is missing or not a number, or the result is not finite: the
    /// rule is then skipped for this record (and counted).
    pub fn eval<'a>(&self, fields: &mut Fields<'a>, item: Option<Item<'a>>) -> Option<f64> {
        let v = match self {
            ValueSpec::Operand(op) => op.eval(fields, item)?,
            ValueSpec::Mul(ops) => {
                let mut product = 1.0;
                for op in ops {
                    product *= op.eval(fields, item)?;
                }
                product
            }
            ValueSpec::Div(a, b) => {
                let divisor = b.eval(fields, item)?;
                if divisor == 0.0 {
                    return None;
                }
                a.eval(fields, item)? / divisor
            }
            ValueSpec::Time(p) => time::seconds(p.resolve(fields, item)?)?,
        };
        v.is_finite().then_some(v)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum LabelSource {
    Field(Path),
    Literal(Box<str>),
    /// The map key (or list index) of the current `for_each` item.
    Key,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelSpec {
    pub source: LabelSource,
    pub max_len: usize,
    pub mask_digits: bool,
}

/// One metric, however many rules feed it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDef {
    pub name: String,
    pub kind: MetricKind,
    /// Sorted, as Prometheus and `MetricUpdate::labels` order them.
    pub label_names: Vec<String>,
    pub max_series: usize,
    pub help: Option<String>,
    /// Re-send the last value of each series periodically (gauges that hold a state).
    pub refresh: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub metric: usize,
    /// Conditions left after the `event` condition moved into the index.
    pub conds: Vec<Cond>,
    pub value: ValueSpec,
    /// In the order of the metric's `label_names`.
    pub labels: Vec<LabelSpec>,
    pub for_each: Option<Path>,
}

/// Every rule, and which of them a record can possibly match given its `event` field.
#[derive(Debug)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub metrics: Vec<MetricDef>,
    /// For each `event` value some rule asks for: those rules plus the event-less ones, in
    /// declaration order.
    by_event: FastMap<Box<str>, Vec<usize>>,
    /// Rules that do not constrain `event` to a fixed set: checked for every record.
    any_event: Vec<usize>,
    /// Every path read from the record root, for [`Fields`].
    pub paths: PathTable,
}

impl RuleSet {
    /// The rules worth checking for a record with this `event` value.
    pub fn candidates(&self, event: Option<&str>) -> &[usize] {
        event
            .and_then(|e| self.by_event.get(e))
            .unwrap_or(&self.any_event)
    }
}

/// Global settings the compiler applies to each rule.
pub struct Limits {
    pub max_series_per_metric: usize,
    pub max_label_length: usize,
}

fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn kind_name(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::GaugeAdd => "gauge_add",
        MetricKind::Histogram => "histogram",
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Compiles `rules` (each a config value) into a [`RuleSet`], or the first problem found.
pub fn compile(rules: &[Value], limits: &Limits) -> Result<RuleSet, String> {
    let mut metrics: Vec<MetricDef> = Vec::new();
    let mut declared: Vec<Declared> = Vec::new();
    let mut compiled = Vec::with_capacity(rules.len());
    let mut events: Vec<Events> = Vec::with_capacity(rules.len());

    for (index, raw) in rules.iter().enumerate() {
        let at = format!("rules[{index}]");
        let rule: RuleConfig =
            serde_json::from_value(raw.clone()).map_err(|e| format!("{at}: {e}"))?;
        let parsed = parse_rule(&at, rule, limits)?;

        let metric = match metrics.iter().position(|m| m.name == parsed.def.name) {
            None => {
                metrics.push(parsed.def);
                declared.push(Declared {
                    first: index,
                    max_series: parsed.max_series,
                    refresh: parsed.refresh,
                });
                metrics.len() - 1
            }
            Some(m) => {
                let Declared {
                    first,
                    max_series: first_cap,
                    refresh: first_refresh,
                } = declared[m];
                let existing = &mut metrics[m];
                if existing.kind != parsed.def.kind {
                    return Err(format!(
                        "{at}.kind: metric `{}` is a {} here but a {} in rules[{first}]; a metric has one kind",
                        existing.name,
                        kind_name(parsed.def.kind),
                        kind_name(existing.kind)
                    ));
                }
                if existing.label_names != parsed.def.label_names {
                    return Err(format!(
                        "{at}.labels: metric `{}` has labels [{}] here but [{}] in rules[{first}]; every rule of a metric must give the same label names",
                        existing.name,
                        parsed.def.label_names.join(", "),
                        existing.label_names.join(", ")
                    ));
                }
                match (first_cap, parsed.max_series) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(format!(
                            "{at}.max_series: metric `{}` has max_series {b} here but {a} in rules[{first}]",
                            existing.name
                        ))
                    }
                    (None, Some(b)) => {
                        existing.max_series = b;
                        declared[m].max_series = Some(b);
                    }
                    _ => {}
                }
                match (first_refresh, parsed.refresh) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(format!(
                        "{at}.refresh: metric `{}` has refresh {b} here but {a} in rules[{first}]",
                        existing.name
                    ))
                    }
                    (None, Some(b)) => {
                        existing.refresh = b;
                        declared[m].refresh = Some(b);
                    }
                    _ => {}
                }
                if existing.help.is_none() {
                    existing.help = parsed.def.help;
                }
                m
            }
        };
        compiled.push(Rule {
            metric,
            conds: parsed.conds,
            value: parsed.value,
            labels: parsed.labels,
            for_each: parsed.for_each,
        });
        events.push(parsed.events);
    }

    check_histogram_suffixes(&metrics, &declared)?;

    let any_event: Vec<usize> = (0..compiled.len())
        .filter(|&i| events[i].is_none())
        .collect();
    let mut by_event: FastMap<Box<str>, Vec<usize>> = FastMap::default();
    for (i, names) in events.iter().enumerate() {
        for name in names.iter().flatten() {
            by_event.entry(name.clone()).or_default().push(i);
        }
    }
    for list in by_event.values_mut() {
        list.extend_from_slice(&any_event);
        list.sort_unstable();
        list.dedup();
    }
    let mut paths = PathTable::default();
    for rule in &mut compiled {
        intern(rule, &mut paths);
    }
    Ok(RuleSet {
        rules: compiled,
        metrics,
        by_event,
        any_event,
        paths,
    })
}

/// Gives every path the rule reads from the record root its id in `table`; paths relative
/// to a `for_each` item stay as they are.
fn intern(rule: &mut Rule, table: &mut PathTable) {
    fn visit(path: &mut Path, item_relative: bool, table: &mut PathTable) {
        if !item_relative || path.root {
            path.id = table.intern(&path.segments);
        }
    }
    let in_item = rule.for_each.is_some();
    for cond in &mut rule.conds {
        visit(&mut cond.path, false, table);
    }
    if let Some(path) = &mut rule.for_each {
        visit(path, false, table);
    }
    let operands: Vec<&mut Operand> = match &mut rule.value {
        ValueSpec::Operand(op) => vec![op],
        ValueSpec::Mul(ops) => ops.iter_mut().collect(),
        ValueSpec::Div(a, b) => vec![a, b],
        ValueSpec::Time(path) => {
            visit(path, in_item, table);
            Vec::new()
        }
    };
    for op in operands {
        if let Operand::Field(path) = op {
            visit(path, in_item, table);
        }
    }
    for label in &mut rule.labels {
        if let LabelSource::Field(path) = &mut label.source {
            visit(path, in_item, table);
        }
    }
}

/// A histogram `h` is exposed as `h_bucket`, `h_sum` and `h_count`; another metric with
/// one of those names would clash in the exposition.
fn check_histogram_suffixes(metrics: &[MetricDef], declared: &[Declared]) -> Result<(), String> {
    for (h, hist) in metrics.iter().enumerate() {
        if hist.kind != MetricKind::Histogram {
            continue;
        }
        for (o, other) in metrics.iter().enumerate() {
            for suffix in ["_bucket", "_sum", "_count"] {
                if other.name.strip_suffix(suffix) == Some(hist.name.as_str()) {
                    return Err(format!(
                        "rules[{}].metric: `{}` clashes with the `{suffix}` series of histogram `{}` (rules[{}])",
                        declared[o].first, other.name, hist.name, declared[h].first
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Which rule first declared a metric (for conflict messages) and the settings some rule
/// of the metric gave explicitly, which the others must not contradict.
#[derive(Clone, Copy)]
struct Declared {
    first: usize,
    max_series: Option<usize>,
    refresh: Option<bool>,
}

struct ParsedRule {
    def: MetricDef,
    max_series: Option<usize>,
    refresh: Option<bool>,
    conds: Vec<Cond>,
    events: Events,
    value: ValueSpec,
    labels: Vec<LabelSpec>,
    for_each: Option<Path>,
}

fn parse_rule(at: &str, rule: RuleConfig, limits: &Limits) -> Result<ParsedRule, String> {
    let name = match rule.metric {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(format!(
                "{at}.metric: expected a metric name, got {}",
                type_name(&other)
            ))
        }
        None => return Err(format!("{at}: `metric` is required")),
    };
    if !is_metric_name(&name) {
        return Err(format!(
            "{at}.metric: `{name}` is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
        ));
    }
    if name == OVERFLOW_METRIC || name == SKIPPED_METRIC {
        return Err(format!(
            "{at}.metric: `{name}` is reserved for the plugin's own counter"
        ));
    }

    let kind = match &rule.kind {
        Some(Value::String(s)) => match s.as_str() {
            "counter" => MetricKind::Counter,
            "gauge" => MetricKind::Gauge,
            "gauge_add" => MetricKind::GaugeAdd,
            "histogram" => MetricKind::Histogram,
            other => {
                return Err(format!(
                    "{at}.kind: `{other}` is not a metric kind; expected counter, gauge, gauge_add or histogram"
                ))
            }
        },
        Some(other) => {
            return Err(format!(
                "{at}.kind: expected counter, gauge, gauge_add or histogram, got {}",
                type_name(other)
            ))
        }
        None => return Err(format!("{at}: `kind` is required")),
    };
    if kind == MetricKind::Counter && !name.ends_with("_total") {
        return Err(format!(
            "{at}.metric: counter `{name}` must end in `_total` (Prometheus naming)"
        ));
    }

    let help = match rule.help {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err(format!(
                "{at}.help: expected text, got {}",
                type_name(&other)
            ))
        }
    };

    let max_series = match rule.max_series {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n as usize),
            _ => {
                return Err(format!(
                    "{at}.max_series: expected a whole number of at least 1, got {v}"
                ))
            }
        },
    };

    let refresh = match rule.refresh {
        None => None,
        Some(Value::Bool(_)) if kind != MetricKind::Gauge => {
            return Err(format!(
                "{at}.refresh: only a gauge holds a value to re-send; this is a {}",
                kind_name(kind)
            ))
        }
        Some(Value::Bool(b)) => Some(b),
        Some(other) => {
            return Err(format!(
                "{at}.refresh: expected true or false, got {}",
                type_name(&other)
            ))
        }
    };

    let for_each = match rule.for_each {
        None => None,
        Some(Value::String(s)) => Some(Path::parse(&s).map_err(|e| format!("{at}.for_each: {e}"))?),
        Some(other) => {
            return Err(format!(
                "{at}.for_each: expected the path of a list or map field, got {}",
                type_name(&other)
            ))
        }
    };

    let (conds, events) = parse_when(at, rule.when)?;

    let value = match rule.value {
        None if kind == MetricKind::Counter => ValueSpec::Operand(Operand::Const(1.0)),
        None => {
            return Err(format!(
                "{at}: `value` is required for a {} (a field path or a number)",
                kind_name(kind)
            ))
        }
        Some(v) => parse_value(&format!("{at}.value"), &v)?,
    };
    if let (MetricKind::Counter, ValueSpec::Operand(Operand::Const(c))) = (kind, &value) {
        if *c < 0.0 {
            return Err(format!(
                "{at}.value: a counter only goes up; {c} is negative"
            ));
        }
    }

    let mut labels: Vec<(String, LabelSpec)> = Vec::new();
    match rule.labels {
        None => {}
        Some(Value::Object(map)) => {
            for (label, spec) in map {
                let key = format!("{at}.labels.{label}");
                if !is_label_name(&label) {
                    return Err(format!(
                        "{key}: `{label}` is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
                    ));
                }
                if label.starts_with("__") {
                    return Err(format!(
                        "{key}: label names starting with `__` are reserved by Prometheus"
                    ));
                }
                if kind == MetricKind::Histogram && label == "le" {
                    return Err(format!(
                        "{key}: `le` is the bucket label of a histogram and cannot be set"
                    ));
                }
                let spec = parse_label(&key, &spec, limits.max_label_length)?;
                if spec.source == LabelSource::Key && for_each.is_none() {
                    return Err(format!(
                        "{key}: `@key` is the key of a `for_each` item, and this rule has no `for_each`"
                    ));
                }
                labels.push((label, spec));
            }
        }
        Some(other) => {
            return Err(format!(
                "{at}.labels: expected a map of label name to field path, got {}",
                type_name(&other)
            ))
        }
    }
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    let label_names = labels.iter().map(|(n, _)| n.clone()).collect();
    let labels = labels.into_iter().map(|(_, s)| s).collect();

    Ok(ParsedRule {
        def: MetricDef {
            name,
            kind,
            label_names,
            max_series: max_series.unwrap_or(limits.max_series_per_metric),
            help,
            refresh: refresh.unwrap_or(kind == MetricKind::Gauge),
        },
        max_series,
        refresh,
        conds,
        events,
        value,
        labels,
        for_each,
    })
}

/// The `event` values a rule is limited to; `None` when it is not limited to a fixed set.
type Events = Option<Vec<Box<str>>>;

/// Returns the conditions and, when `event` is tested only for equality with one or more
/// strings, those strings: the index then does that test.
fn parse_when(at: &str, when: Option<Value>) -> Result<(Vec<Cond>, Events), String> {
    let map = match when {
        None => return Ok((Vec::new(), None)),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(format!(
                "{at}.when: expected a map of field path to condition, got {}",
                type_name(&other)
            ))
        }
    };
    let mut conds = Vec::with_capacity(map.len());
    let mut events = None;
    for (field, spec) in map {
        let key = format!("{at}.when.{field}");
        let path = Path::parse(&field).map_err(|e| format!("{key}: {e}"))?;
        let tests = parse_tests(&key, &spec)?;
        if field == "event" {
            if let [Test::Eq(Scalar::Str(s))] = tests.as_slice() {
                events = Some(vec![s.clone()]);
                continue;
            }
            if let [Test::In(list)] = tests.as_slice() {
                let names: Option<Vec<Box<str>>> = list
                    .iter()
                    .map(|s| match s {
                        Scalar::Str(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                if names.is_some() {
                    events = names;
                    continue;
                }
            }
        }
        conds.push(Cond { path, tests });
    }
    Ok((conds, events))
}

const TESTS: &str = "in, not_in, exists, gt, gte, lt, lte";

fn parse_tests(key: &str, spec: &Value) -> Result<Vec<Test>, String> {
    let map = match spec {
        Value::Object(map) => map,
        Value::Array(_) => {
            return Err(format!(
            "{key}: a list is ambiguous here; write `{{in: [...]}}` to match any of several values"
        ))
        }
        Value::Null => {
            return Err(format!(
                "{key}: null matches nothing; write `{{exists: false}}` to require a missing field"
            ))
        }
        scalar => return Ok(vec![Test::Eq(Scalar::parse(scalar).expect("scalar"))]),
    };
    if map.is_empty() {
        return Err(format!("{key}: empty condition; expected one of: {TESTS}"));
    }
    let mut tests = Vec::with_capacity(map.len());
    for (name, arg) in map {
        let key = format!("{key}.{name}");
        let number = || {
            arg.as_f64()
                .filter(|n| n.is_finite())
                .ok_or_else(|| format!("{key}: expected a number, got {}", type_name(arg)))
        };
        let list = || -> Result<Vec<Scalar>, String> {
            let items = arg.as_array().ok_or_else(|| {
                format!("{key}: expected a list of values, got {}", type_name(arg))
            })?;
            if items.is_empty() {
                return Err(format!("{key}: the list is empty"));
            }
            items
                .iter()
                .map(|v| {
                    Scalar::parse(v).ok_or_else(|| {
                        format!(
                            "{key}: list items must be strings, numbers or booleans, got {}",
                            type_name(v)
                        )
                    })
                })
                .collect()
        };
        tests.push(match name.as_str() {
            "in" => Test::In(list()?),
            "not_in" => Test::NotIn(list()?),
            "exists" => Test::Exists(
                arg.as_bool()
                    .ok_or_else(|| format!("{key}: expected true or false, got {}", type_name(arg)))?,
            ),
            "gt" => Test::Gt(number()?),
            "gte" => Test::Gte(number()?),
            "lt" => Test::Lt(number()?),
            "lte" => Test::Lte(number()?),
            other => {
                return Err(format!(
                    "{key}: unknown test `{other}`; expected one of: {TESTS} (or a plain value for equality)"
                ))
            }
        });
    }
    Ok(tests)
}

fn parse_operand(key: &str, v: &Value) -> Result<Operand, String> {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(c) if c.is_finite() => Ok(Operand::Const(c)),
            _ => Err(format!("{key}: {n} is not a finite number")),
        },
        Value::String(s) => Ok(Operand::Field(
            Path::parse(s).map_err(|e| format!("{key}: {e}"))?,
        )),
        other => Err(format!(
            "{key}: expected a field path or a number, got {}",
            type_name(other)
        )),
    }
}

fn parse_value(key: &str, v: &Value) -> Result<ValueSpec, String> {
    let Value::Object(map) = v else {
        return Ok(ValueSpec::Operand(parse_operand(key, v)?));
    };
    let mut entries = map.iter();
    let (Some((form, arg)), None) = (entries.next(), entries.next()) else {
        return Err(format!(
            "{key}: expected exactly one of `mul`, `div` or `time`"
        ));
    };
    let key = format!("{key}.{form}");
    let operands = |min: usize, max: usize| -> Result<Vec<Operand>, String> {
        match arg.as_array() {
            Some(items) if (min..=max).contains(&items.len()) => items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_operand(&format!("{key}[{i}]"), item))
                .collect(),
            _ if min == max => Err(format!(
                "{key}: expected a list of exactly {min} field paths or numbers"
            )),
            _ => Err(format!(
                "{key}: expected a list of at least {min} field paths or numbers"
            )),
        }
    };
    match form.as_str() {
        "mul" => Ok(ValueSpec::Mul(operands(2, usize::MAX)?)),
        "div" => {
            let mut ops = operands(2, 2)?.into_iter();
            let (a, b) = (ops.next().expect("2"), ops.next().expect("2"));
            if b == Operand::Const(0.0) {
                return Err(format!("{key}[1]: division by zero"));
            }
            Ok(ValueSpec::Div(a, b))
        }
        "time" => match arg {
            Value::String(s) => Ok(ValueSpec::Time(
                Path::parse(s).map_err(|e| format!("{key}: {e}"))?,
            )),
            other => Err(format!(
                "{key}: expected the path of a timestamp field, got {}",
                type_name(other)
            )),
        },
        other => Err(format!(
            "{key}: unknown value form `{other}`; expected `mul`, `div` or `time`"
        )),
    }
}

fn parse_source(key: &str, text: &str) -> Result<LabelSource, String> {
    if let Some(literal) = text.strip_prefix('=') {
        return Ok(LabelSource::Literal(literal.into()));
    }
    if text == "@key" {
        return Ok(LabelSource::Key);
    }
    Ok(LabelSource::Field(
        Path::parse(text).map_err(|e| format!("{key}: {e}"))?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelObject {
    /// A field path, `=literal` or `@key`, as in the short form.
    field: String,
    /// Longest value kept, in bytes (cut at a character boundary).
    max_len: Option<usize>,
    /// Replace each run of digits with `#`, so free text carrying numbers stays bounded.
    #[serde(default)]
    mask_digits: bool,
}

fn parse_label(key: &str, spec: &Value, max_label_length: usize) -> Result<LabelSpec, String> {
    match spec {
        Value::String(text) => Ok(LabelSpec {
            source: parse_source(key, text)?,
            max_len: max_label_length,
            mask_digits: false,
        }),
        Value::Object(_) => {
            let object: LabelObject =
                serde_json::from_value(spec.clone()).map_err(|e| format!("{key}: {e}"))?;
            let max_len = object.max_len.unwrap_or(max_label_length);
            if max_len == 0 {
                return Err(format!("{key}.max_len: must be at least 1"));
            }
            Ok(LabelSpec {
                source: parse_source(key, &object.field)?,
                max_len,
                mask_digits: object.mask_digits,
            })
        }
        other => Err(format!(
            "{key}: expected a field path, `=literal`, `@key` or {{field: ..., max_len: ..., mask_digits: ...}}, got {}",
            type_name(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: Limits = Limits {
        max_series_per_metric: 1000,
        max_label_length: 128,
    };

    fn compile_one(rule: Value) -> Result<RuleSet, String> {
        compile(&[rule], &LIMITS)
    }

    fn err(rules: Value) -> String {
        compile(rules.as_array().unwrap(), &LIMITS).unwrap_err()
    }

    #[test]
    fn paths_split_and_mark_root() {
        let p = Path::parse("$.account.account_id").unwrap();
        assert!(p.root);
        assert_eq!(
            &*p.segments,
            &["account".into(), "account_id".into()] as &[Box<str>]
        );
        for bad in ["", "a..b", ".a", "a.", "$."] {
            assert!(Path::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn null_counts_as_missing() {
        let rec = json!({"a": null, "b": {"c": 1}});
        let rec = rec.as_object().unwrap();
        assert_eq!(Path::parse("a").unwrap().lookup(rec), None);
        assert_eq!(Path::parse("b.c").unwrap().lookup(rec), Some(&json!(1)));
        assert_eq!(Path::parse("b.c.d").unwrap().lookup(rec), None);
    }

    #[test]
    fn tests_on_present_and_missing_values() {
        let eq = Test::Eq(Scalar::Num(429.0));
        assert!(eq.holds(Some(&json!(429))));
        assert!(eq.holds(Some(&json!(429.0))));
        assert!(eq.holds(Some(&json!("429"))));
        assert!(!eq.holds(Some(&json!(430))));
        let s = Test::Eq(Scalar::Str("429".into()));
        assert!(!s.holds(Some(&json!(429))), "strings match strings only");
        assert!(s.holds(Some(&json!("429"))));
        assert!(Test::Eq(Scalar::Bool(true)).holds(Some(&json!(true))));
        assert!(!Test::Eq(Scalar::Bool(true)).holds(Some(&json!("true"))));
        let not_in = Test::NotIn(vec![Scalar::Str("DEBUG".into())]);
        assert!(not_in.holds(Some(&json!("INFO"))));
        assert!(!not_in.holds(Some(&json!("DEBUG"))));
        for t in [
            not_in.clone(),
            Test::Gt(0.0),
            Test::Exists(true),
            Test::In(vec![Scalar::Num(1.0)]),
        ] {
            assert!(!t.holds(None), "{t:?} on a missing field");
        }
        assert!(Test::Exists(false).holds(None));
        assert!(!Test::Exists(false).holds(Some(&json!(0))));
        assert!(Test::Gte(400.0).holds(Some(&json!(400))));
        assert!(!Test::Gt(400.0).holds(Some(&json!(400))));
        assert!(Test::Lt(500.0).holds(Some(&json!("1_00"))));
        assert!(!Test::Lte(1.0).holds(Some(&json!("abc"))));
    }

    #[test]
    fn event_equality_goes_into_the_index() {
        let set = compile(
            &[
                json!({"metric": "a_total", "kind": "counter", "when": {"event": "OrderFilled"}}),
                json!({"metric": "b_total", "kind": "counter", "when": {"event": {"in": ["OrderFilled", "OrderAccepted"]}}}),
                json!({"metric": "c_total", "kind": "counter", "when": {"level": "ERROR"}}),
                json!({"metric": "d_total", "kind": "counter", "when": {"event": {"exists": true}}}),
            ],
            &LIMITS,
        )
        .unwrap();
        assert_eq!(set.candidates(Some("OrderFilled")), &[0, 1, 2, 3]);
        assert_eq!(set.candidates(Some("OrderAccepted")), &[1, 2, 3]);
        assert_eq!(set.candidates(Some("Other")), &[2, 3]);
        assert_eq!(set.candidates(None), &[2, 3]);
        assert!(
            set.rules[0].conds.is_empty(),
            "the index did the event test"
        );
        assert_eq!(set.rules[3].conds.len(), 1);
    }

    #[test]
    fn labels_are_sorted_and_metrics_shared() {
        let set = compile(
            &[
                json!({"metric": "ws_connected", "kind": "gauge", "value": 1, "labels": {"url": "ws.url", "b": "=x"}}),
                json!({"metric": "ws_connected", "kind": "gauge", "value": 0, "labels": {"b": "=y", "url": "ws.url"}}),
            ],
            &LIMITS,
        )
        .unwrap();
        assert_eq!(set.metrics.len(), 1);
        assert_eq!(set.metrics[0].label_names, ["b", "url"]);
        assert_eq!(set.rules[1].metric, 0);
        assert_eq!(
            set.rules[1].labels[0].source,
            LabelSource::Literal("y".into())
        );
    }

    #[test]
    fn value_forms() {
        let rec = json!({"q": 2, "p": "1_000.5", "z": 0, "t": "1970-01-01T00:01:00.5Z", "s": "x"});
        let rec = rec.as_object().unwrap();
        let table = PathTable::default();
        let mut fields = Fields::new(&table);
        fields.start(rec);
        let mut eval = |v: Value| parse_value("v", &v).unwrap().eval(&mut fields, None);
        assert_eq!(eval(json!(3)), Some(3.0));
        assert_eq!(eval(json!("q")), Some(2.0));
        assert_eq!(eval(json!("p")), Some(1000.5));
        assert_eq!(eval(json!("s")), None);
        assert_eq!(eval(json!("missing")), None);
        assert_eq!(eval(json!({"mul": ["q", "p", 2]})), Some(4002.0));
        assert_eq!(eval(json!({"mul": ["q", "missing"]})), None);
        assert_eq!(eval(json!({"div": ["q", 4]})), Some(0.5));
        assert_eq!(
            eval(json!({"div": ["q", "z"]})),
            None,
            "division by zero skips"
        );
        assert_eq!(eval(json!({"time": "t"})), Some(60.5));
        assert_eq!(eval(json!({"time": "s"})), None);
    }

    #[test]
    fn validation_names_rule_index_and_key() {
        let cases = [
            (json!([{"kind": "counter"}]), "rules[0]: `metric` is required"),
            (json!([{"metric": "a_total", "kind": "counter"}, {"metric": "9x", "kind": "gauge", "value": 1}]), "rules[1].metric: `9x` is not a valid Prometheus metric name"),
            (json!([{"metric": "a-b_total", "kind": "counter"}]), "rules[0].metric: `a-b_total` is not a valid"),
            (json!([{"metric": 5, "kind": "counter"}]), "rules[0].metric: expected a metric name, got a number"),
            (json!([{"metric": "orders", "kind": "counter"}]), "rules[0].metric: counter `orders` must end in `_total`"),
            (json!([{"metric": "a", "kind": "summary", "value": 1}]), "rules[0].kind: `summary` is not a metric kind"),
            (json!([{"metric": "a"}]), "rules[0]: `kind` is required"),
            (json!([{"metric": "a", "kind": "gauge"}]), "rules[0]: `value` is required for a gauge"),
            (json!([{"metric": "a_total", "kind": "counter", "valeu": 1}]), "rules[0]: unknown field `valeu`"),
            (json!([{"metric": "a_total", "kind": "counter", "value": -1}]), "rules[0].value: a counter only goes up"),
            (json!([{"metric": "a_total", "kind": "counter", "labels": {"2x": "a"}}]), "rules[0].labels.2x: `2x` is not a valid Prometheus label name"),
            (json!([{"metric": "a_total", "kind": "counter", "labels": {"__x": "a"}}]), "rules[0].labels.__x: label names starting with `__` are reserved"),
            (json!([{"metric": "h", "kind": "histogram", "value": "v", "labels": {"le": "a"}}]), "rules[0].labels.le: `le` is the bucket label"),
            (json!([{"metric": "a_total", "kind": "counter", "labels": {"k": "@key"}}]), "rules[0].labels.k: `@key` is the key of a `for_each` item"),
            (json!([{"metric": "a_total", "kind": "counter", "labels": {"k": 5}}]), "rules[0].labels.k: expected a field path"),
            (json!([{"metric": "a_total", "kind": "counter", "labels": {"k": {"field": "x", "max": 3}}}]), "rules[0].labels.k: unknown field `max`"),
            (json!([{"metric": "a_total", "kind": "counter", "labels": {"k": "a..b"}}]), "rules[0].labels.k: `a..b` is not a field path"),
            (json!([{"metric": "a_total", "kind": "counter", "when": {"rest.status": {"gtt": 1}}}]), "rules[0].when.rest.status.gtt: unknown test `gtt`"),
            (json!([{"metric": "a_total", "kind": "counter", "when": {"x": {"gt": "big"}}}]), "rules[0].when.x.gt: expected a number, got a string"),
            (json!([{"metric": "a_total", "kind": "counter", "when": {"x": {"in": []}}}]), "rules[0].when.x.in: the list is empty"),
            (json!([{"metric": "a_total", "kind": "counter", "when": {"x": [1, 2]}}]), "rules[0].when.x: a list is ambiguous"),
            (json!([{"metric": "a_total", "kind": "counter", "when": {"x": null}}]), "rules[0].when.x: null matches nothing"),
            (json!([{"metric": "a_total", "kind": "counter", "when": {"x": {"exists": "yes"}}}]), "rules[0].when.x.exists: expected true or false"),
            (json!([{"metric": "a_total", "kind": "counter", "when": "always"}]), "rules[0].when: expected a map"),
            (json!([{"metric": "g", "kind": "gauge", "value": {"mul": ["a"]}}]), "rules[0].value.mul: expected a list of at least 2"),
            (json!([{"metric": "g", "kind": "gauge", "value": {"div": ["a", 0]}}]), "rules[0].value.div[1]: division by zero"),
            (json!([{"metric": "g", "kind": "gauge", "value": {"sum": ["a", "b"]}}]), "rules[0].value.sum: unknown value form `sum`"),
            (json!([{"metric": "g", "kind": "gauge", "value": true}]), "rules[0].value: expected a field path or a number, got a boolean"),
            (json!([{"metric": "g", "kind": "gauge", "value": 1, "max_series": 0}]), "rules[0].max_series: expected a whole number of at least 1"),
            (json!([{"metric": "g", "kind": "gauge", "value": 1, "for_each": 3}]), "rules[0].for_each: expected the path"),
            (json!([{"metric": "metrics_series_overflow_total", "kind": "counter"}]), "rules[0].metric: `metrics_series_overflow_total` is reserved"),
            (json!([{"metric": "g", "kind": "gauge", "value": 1}, {"metric": "g", "kind": "gauge_add", "value": 1}]), "rules[1].kind: metric `g` is a gauge_add here but a gauge in rules[0]"),
            (json!([{"metric": "g", "kind": "gauge", "value": 1, "labels": {"a": "x"}}, {"metric": "g", "kind": "gauge", "value": 1, "labels": {"b": "x"}}]), "rules[1].labels: metric `g` has labels [b] here but [a] in rules[0]"),
            (json!([{"metric": "g", "kind": "gauge", "value": 1, "max_series": 5}, {"metric": "g", "kind": "gauge", "value": 1, "max_series": 6}]), "rules[1].max_series: metric `g` has max_series 6 here but 5 in rules[0]"),
            (json!([{"metric": "g", "kind": "gauge", "value": 1, "refresh": false}, {"metric": "g", "kind": "gauge", "value": 1, "refresh": true}]), "rules[1].refresh: metric `g` has refresh true here but false in rules[0]"),
            (json!([{"metric": "a_total", "kind": "counter", "refresh": true}]), "rules[0].refresh: only a gauge holds a value to re-send; this is a counter"),
            (json!([{"metric": "g", "kind": "gauge", "value": 1, "refresh": "yes"}]), "rules[0].refresh: expected true or false, got a string"),
            (json!([{"metric": "lat", "kind": "histogram", "value": 1}, {"metric": "lat_count", "kind": "gauge", "value": 1}]), "rules[1].metric: `lat_count` clashes with the `_count` series of histogram `lat` (rules[0])"),
        ];
        for (rules, expected) in cases {
            let message = err(rules.clone());
            assert!(
                message.starts_with(expected),
                "{rules}\n  got:      {message}\n  expected: {expected}…"
            );
        }
    }

    #[test]
    fn max_series_set_on_a_later_rule_applies_to_the_metric() {
        let set = compile(
            &[
                json!({"metric": "g", "kind": "gauge", "value": 1}),
                json!({"metric": "g", "kind": "gauge", "value": 2, "max_series": 7}),
                json!({"metric": "h", "kind": "gauge", "value": 2}),
            ],
            &LIMITS,
        )
        .unwrap();
        assert_eq!(set.metrics[0].max_series, 7);
        assert_eq!(set.metrics[1].max_series, 1000);
    }

    #[test]
    fn a_rule_with_no_when_matches_everything() {
        let set = compile_one(json!({"metric": "n_total", "kind": "counter"})).unwrap();
        assert_eq!(set.candidates(Some("x")), &[0]);
        assert_eq!(set.candidates(None), &[0]);
        assert!(set.rules[0].conds.is_empty());
    }
}

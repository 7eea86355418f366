//! Field paths, record predicates and `{{path}}` templates, compiled once at init so the
//! per-record work is map lookups and comparisons only.

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// Top-level fields that many rules read; a record is scanned once for all of them, so
/// twenty conditions on `event`, `level` or `message` cost one pass over the record.
const KNOWN: [&str; 7] = [
    "event",
    "level",
    "message",
    "component",
    "trader_id",
    "metric",
    "timestamp",
];

fn known_slot(key: &str) -> Option<usize> {
    KNOWN.iter().position(|k| *k == key)
}

/// A record with its common top-level fields looked up once.
pub struct Rec<'a> {
    pub map: &'a Map<String, Value>,
    top: [Option<&'a Value>; KNOWN.len()],
}

impl<'a> Rec<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        let mut top = [None; KNOWN.len()];
        for (k, v) in map {
            let slot = match k.as_str() {
                "event" => 0,
                "level" => 1,
                "message" => 2,
                "component" => 3,
                "trader_id" => 4,
                "metric" => 5,
                "timestamp" => 6,
                _ => continue,
            };
            top[slot] = Some(v);
        }
        Self { map, top }
    }

    fn first(&self, seg: &Seg) -> Option<&'a Value> {
        match seg {
            Seg::Top(i) => self.top[*i as usize],
            Seg::Key(k) => self.map.get(&**k),
            Seg::Any => None,
        }
    }

    pub fn top_str(&self, field: &str) -> Option<&'a str> {
        self.top[known_slot(field)?]?.as_str()
    }

    pub fn timestamp(&self) -> Option<&'a Value> {
        self.top[6]
    }
}

/// One segment of a dotted path. List indices are parsed up front so `balances.0.total`
/// costs no integer parsing per record.
#[derive(Debug, Clone)]
enum Seg {
    /// A first segment that [`Rec`] has already looked up.
    Top(u8),
    Key(Box<str>),
    /// `*`: every key of a map or every element of a list.
    Any,
}

/// A dotted path such as `order.instrument_id` or `rate_limit.*.ratio`.
#[derive(Debug, Clone)]
pub struct Path {
    segs: Vec<Seg>,
}

impl Path {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty field path".into());
        }
        let mut segs = Vec::new();
        for part in text.split('.') {
            if part.is_empty() {
                return Err(format!("field path `{text}` has an empty segment"));
            }
            segs.push(if part == "*" {
                Seg::Any
            } else {
                Seg::Key(part.into())
            });
        }
        if let Some(Seg::Key(k)) = segs.first() {
            if let Some(i) = known_slot(k) {
                segs[0] = Seg::Top(i as u8);
            }
        }
        let wildcards = segs.iter().filter(|s| matches!(s, Seg::Any)).count();
        if wildcards > 1 {
            return Err(format!("field path `{text}` has more than one `*`"));
        }
        Ok(Self { segs })
    }

    pub fn has_wildcard(&self) -> bool {
        self.segs.iter().any(|s| matches!(s, Seg::Any))
    }

    /// The last segment, used as the label name of a `group_by` path.
    pub fn last_key(&self) -> &str {
        match self.segs.last() {
            Some(Seg::Key(k)) => k,
            Some(Seg::Top(i)) => KNOWN[*i as usize],
            _ => "key",
        }
    }

    /// The top-level key when the path is a single segment (`event`, `level`, …).
    pub fn top_level(&self) -> Option<&str> {
        match self.segs.as_slice() {
            [Seg::Key(k)] => Some(k),
            [Seg::Top(i)] => Some(KNOWN[*i as usize]),
            _ => None,
        }
    }

    /// The value at this path; `None` for a wildcard path (use [`Path::each`]).
    pub fn get<'a>(&self, rec: &Rec<'a>) -> Option<&'a Value> {
        let mut segs = self.segs.iter();
        let mut current = rec.first(segs.next()?)?;
        for seg in segs {
            current = step(current, seg)?;
        }
        Some(current)
    }

    /// Calls `f(key, value)` for every value a wildcard path reaches; `key` is the map key
    /// or list index the `*` stood for, or the list element's `key_field` when given.
    pub fn each<'a>(
        &self,
        rec: &Rec<'a>,
        key_field: Option<&str>,
        mut f: impl FnMut(&str, &'a Value),
    ) {
        let record = rec.map;
        let Some(star) = self.segs.iter().position(|s| matches!(s, Seg::Any)) else {
            if let Some(v) = self.get(rec) {
                f("", v);
            }
            return;
        };
        let mut current: Option<&Value> = None;
        for (i, seg) in self.segs[..star].iter().enumerate() {
            current = match i {
                0 => rec.first(seg),
                _ => current.and_then(|c| step(c, seg)),
            };
            if current.is_none() {
                return;
            }
        }
        let rest = &self.segs[star + 1..];
        let descend = |mut v: &'a Value| -> Option<&'a Value> {
            for seg in rest {
                v = step(v, seg)?;
            }
            Some(v)
        };
        let mut index = String::new();
        match current {
            None => {
                // `*` is the first segment: iterate the record itself.
                for (k, v) in record {
                    if let Some(v) = descend(v) {
                        f(k, v);
                    }
                }
            }
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    if let Some(v) = descend(v) {
                        f(k, v);
                    }
                }
            }
            Some(Value::Array(list)) => {
                for (i, element) in list.iter().enumerate() {
                    let Some(v) = descend(element) else { continue };
                    let named = key_field
                        .and_then(|kf| element.as_object()?.get(kf))
                        .and_then(Value::as_str);
                    match named {
                        Some(name) => f(name, v),
                        None => {
                            index.clear();
                            let _ = write!(index, "{i}");
                            f(&index, v);
                        }
                    }
                }
            }
            Some(_) => {}
        }
    }
}

fn step<'a>(value: &'a Value, seg: &Seg) -> Option<&'a Value> {
    match (value, seg) {
        (Value::Object(map), Seg::Top(i)) => map.get(KNOWN[*i as usize]),
        (Value::Object(map), Seg::Key(k)) => map.get(&**k),
        (Value::Array(list), Seg::Key(k)) => list.get(k.parse::<usize>().ok()?),
        _ => None,
    }
}

/// `a.b|c.d`: the first of several paths that is present, because the same thing sits
/// under different names on different records (`position.instrument_id` on position
/// events, `order.instrument_id` on fills).
#[derive(Debug, Clone)]
pub struct PathAlt {
    text: String,
    alts: Vec<Path>,
}

impl PathAlt {
    pub fn parse(text: &str) -> Result<Self, String> {
        let alts = text
            .split('|')
            .map(|p| {
                let p = Path::parse(p)?;
                if p.has_wildcard() {
                    return Err(format!("`*` is not allowed in `{text}`"));
                }
                Ok(p)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            text: text.trim().to_owned(),
            alts,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn label_name(&self) -> &str {
        self.alts[0].last_key()
    }

    pub fn get<'a>(&self, rec: &Rec<'a>) -> Option<&'a Value> {
        self.alts.iter().find_map(|p| p.get(rec))
    }
}

/// Appends a field value as text: strings as they are, numbers compactly, null as nothing.
pub fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => {
                let _ = write!(out, "{i}");
            }
            (None, Some(f)) => push_number(out, f),
            _ => {
                let _ = write!(out, "{n}");
            }
        },
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => {}
        other => out.push_str(&other.to_string()),
    }
}

/// Numbers in alert text: integers without a fraction, others with at most four
/// decimals, because `0.81250000001` helps no one reading a page at night.
pub fn push_number(out: &mut String, x: f64) {
    if !x.is_finite() {
        let _ = write!(out, "{x}");
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        let _ = write!(out, "{x:.0}");
    } else {
        let start = out.len();
        let _ = write!(out, "{x:.4}");
        while out.ends_with('0') {
            out.pop();
        }
        if out.ends_with('.') {
            out.pop();
        }
        if out.len() == start || &out[start..] == "-" || &out[start..] == "-0" {
            out.truncate(start);
            out.push('0');
        }
    }
}

pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace('_', "").parse().ok(),
        _ => None,
    }
}

/// A literal in a predicate. Numbers compare numerically whatever their JSON form.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
}

impl Lit {
    fn from_value(v: &Value) -> Result<Self, String> {
        Ok(match v {
            Value::String(s) => Lit::Str(s.clone()),
            Value::Number(n) => Lit::Num(n.as_f64().ok_or("number out of range")?),
            Value::Bool(b) => Lit::Bool(*b),
            Value::Null => {
                return Err("`null` is not a value to compare with; write `{exists: false}`".into())
            }
            _ => return Err(format!("expected a string, number or boolean, got {v}")),
        })
    }

    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (Lit::Str(a), Value::String(b)) => a == b,
            (Lit::Num(a), v @ (Value::Number(_) | Value::String(_))) => number(v) == Some(*a),
            (Lit::Bool(a), Value::Bool(b)) => a == b,
            _ => false,
        }
    }
}

/// A condition on one field's value. `None` for the value means the field is missing.
#[derive(Debug, Clone)]
enum Cond {
    In(Vec<Lit>),
    Exists(bool),
    Cmp { op: CmpOp, rhs: f64 },
    Contains(Vec<String>),
    StartsWith(Vec<String>),
    EndsWith(Vec<String>),
    Not(Box<Cond>),
    All(Vec<Cond>),
}

#[derive(Debug, Clone, Copy)]
enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cond {
    fn parse(spec: &Value) -> Result<Self, String> {
        match spec {
            Value::Array(items) => {
                if items.is_empty() {
                    return Err("an empty list matches nothing".into());
                }
                Ok(Cond::In(
                    items
                        .iter()
                        .map(Lit::from_value)
                        .collect::<Result<_, _>>()?,
                ))
            }
            Value::Object(ops) => {
                if ops.is_empty() {
                    return Err("an empty condition map; use `{exists: true}`".into());
                }
                let mut all = Vec::new();
                for (op, arg) in ops {
                    let cond = match op.as_str() {
                        "eq" => Cond::In(vec![Lit::from_value(arg)?]),
                        "in" => match arg {
                            Value::Array(_) => Cond::parse(arg)?,
                            _ => return Err("`in` takes a list".into()),
                        },
                        // Like the metrics plugin: a missing field is in no list, but
                        // fails `not_in` too, so `level: {not_in: [DEBUG]}` needs a level.
                        "not_in" => match arg {
                            Value::Array(_) => Cond::All(vec![
                                Cond::Exists(true),
                                Cond::Not(Box::new(Cond::parse(arg)?)),
                            ]),
                            _ => return Err("`not_in` takes a list".into()),
                        },
                        "exists" => {
                            Cond::Exists(arg.as_bool().ok_or("`exists` takes true or false")?)
                        }
                        "gt" | "gte" | "lt" | "lte" => Cond::Cmp {
                            op: match op.as_str() {
                                "gt" => CmpOp::Gt,
                                "gte" => CmpOp::Gte,
                                "lt" => CmpOp::Lt,
                                _ => CmpOp::Lte,
                            },
                            rhs: arg
                                .as_f64()
                                .ok_or_else(|| format!("`{op}` takes a number"))?,
                        },
                        "contains" => Cond::Contains(strings(op, arg)?),
                        "starts_with" => Cond::StartsWith(strings(op, arg)?),
                        "ends_with" => Cond::EndsWith(strings(op, arg)?),
                        "not" => Cond::Not(Box::new(Cond::parse(arg)?)),
                        "regex" => {
                            return Err("`regex` is not supported (it would cost every record a \
                                        regex run); use contains, starts_with or ends_with"
                                .into())
                        }
                        other => {
                            return Err(format!(
                                "unknown operator `{other}` (expected one of eq, in, not_in, \
                                 exists, gt, gte, lt, lte, contains, starts_with, ends_with, not)"
                            ))
                        }
                    };
                    all.push(cond);
                }
                Ok(if all.len() == 1 {
                    all.pop().expect("one")
                } else {
                    Cond::All(all)
                })
            }
            scalar => Ok(Cond::In(vec![Lit::from_value(scalar)?])),
        }
    }

    fn eval(&self, v: Option<&Value>) -> bool {
        match self {
            Cond::In(lits) => v.is_some_and(|v| lits.iter().any(|l| l.matches(v))),
            Cond::Exists(want) => v.is_some_and(|v| !v.is_null()) == *want,
            Cond::Cmp { op, rhs } => match v.and_then(number) {
                Some(x) => match op {
                    CmpOp::Gt => x > *rhs,
                    CmpOp::Gte => x >= *rhs,
                    CmpOp::Lt => x < *rhs,
                    CmpOp::Lte => x <= *rhs,
                },
                None => false,
            },
            Cond::Contains(needles) => {
                str_of(v).is_some_and(|s| needles.iter().any(|n| s.contains(n.as_str())))
            }
            Cond::StartsWith(needles) => {
                str_of(v).is_some_and(|s| needles.iter().any(|n| s.starts_with(n.as_str())))
            }
            Cond::EndsWith(needles) => {
                str_of(v).is_some_and(|s| needles.iter().any(|n| s.ends_with(n.as_str())))
            }
            Cond::Not(inner) => !inner.eval(v),
            Cond::All(conds) => conds.iter().all(|c| c.eval(v)),
        }
    }

    /// The string values this condition requires, when it is a plain `in`; used to index
    /// rules by `event`, `level`, `metric` or `component`.
    fn required_strings(&self) -> Option<Vec<String>> {
        match self {
            Cond::In(lits) => lits
                .iter()
                .map(|l| match l {
                    Lit::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            Cond::All(conds) => conds.iter().find_map(Cond::required_strings),
            _ => None,
        }
    }
}

fn str_of(v: Option<&Value>) -> Option<&str> {
    v?.as_str()
}

fn strings(op: &str, arg: &Value) -> Result<Vec<String>, String> {
    let list = match arg {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("`{op}` takes a string or a list of strings"))?,
        _ => return Err(format!("`{op}` takes a string or a list of strings")),
    };
    if list.iter().any(String::is_empty) {
        return Err(format!("`{op}` with an empty string matches everything"));
    }
    Ok(list)
}

/// `when:`: a map of `path: condition` (all must hold), or a list of such maps (any).
#[derive(Debug, Clone)]
pub struct Matcher {
    alts: Vec<Vec<(Path, Cond)>>,
}

impl Matcher {
    /// Matches every record.
    pub fn any() -> Self {
        Self {
            alts: vec![Vec::new()],
        }
    }

    pub fn parse(spec: &Value) -> Result<Self, String> {
        let maps: Vec<&Map<String, Value>> = match spec {
            Value::Object(m) => vec![m],
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_object().ok_or_else(|| {
                        format!("alternative [{i}] must be a map of field: condition")
                    })
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(
                    "must be a map of field: condition, or a non-empty list of such maps".into(),
                )
            }
        };
        let mut alts = Vec::new();
        for (i, map) in maps.iter().enumerate() {
            let mut conds = Vec::new();
            for (field, cond) in map.iter() {
                let path = Path::parse(field).map_err(|e| alt_err(maps.len(), i, &e))?;
                if path.has_wildcard() {
                    return Err(alt_err(
                        maps.len(),
                        i,
                        &format!("`*` is not supported in a condition's field (`{field}`)"),
                    ));
                }
                let cond = Cond::parse(cond)
                    .map_err(|e| alt_err(maps.len(), i, &format!("`{field}`: {e}")))?;
                conds.push((path, cond));
            }
            alts.push(conds);
        }
        Ok(Self { alts })
    }

    pub fn matches(&self, rec: &Rec) -> bool {
        self.alts
            .iter()
            .any(|conds| conds.iter().all(|(p, c)| c.eval(p.get(rec))))
    }

    /// The values of top-level `field` this matcher requires, if every alternative
    /// requires one of a known set; `None` when some record lacking them could match.
    pub fn required(&self, field: &str) -> Option<Vec<String>> {
        let mut all = Vec::new();
        for conds in &self.alts {
            let values = conds
                .iter()
                .filter(|(p, _)| p.top_level() == Some(field))
                .find_map(|(_, c)| c.required_strings())?;
            all.extend(values);
        }
        all.sort();
        all.dedup();
        Some(all)
    }
}

fn alt_err(n: usize, i: usize, e: &str) -> String {
    if n == 1 {
        e.to_owned()
    } else {
        format!("alternative [{i}]: {e}")
    }
}

/// Values computed by a rule that templates can show: `{{$value}}` and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// The observed value: the field, the count, the rate, the quantile, the silence.
    Value,
    Threshold,
    Window,
    /// The map key or list element a `*` stood for.
    Key,
    Rule,
    /// `for_seconds`.
    For,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Field(usize),
    Special(Special),
}

/// `text {{path}} text`; each field path is registered with the rule so the values can be
/// captured for alerts that fire later, on a tick, without a record at hand.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Compiles `text`, adding each new field path to `paths` and referring to it by index.
    pub fn parse(text: &str, paths: &mut Vec<PathAlt>) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed `{{{{` in `{text}`"))?;
            let name = after[..close].trim();
            parts.push(match name {
                "$value" => Part::Special(Special::Value),
                "$threshold" => Part::Special(Special::Threshold),
                "$window" => Part::Special(Special::Window),
                "$key" => Part::Special(Special::Key),
                "$rule" => Part::Special(Special::Rule),
                "$for" => Part::Special(Special::For),
                n if n.starts_with('$') => {
                    return Err(format!(
                        "unknown template variable `{n}` (expected $value, $threshold, $window, \
                         $for, $key or $rule)"
                    ))
                }
                n => {
                    let alt = PathAlt::parse(n).map_err(|e| format!("in `{text}`: {e}"))?;
                    let i = match paths.iter().position(|p| p.text() == alt.text()) {
                        Some(i) => i,
                        None => {
                            paths.push(alt);
                            paths.len() - 1
                        }
                    };
                    Part::Field(i)
                }
            });
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            return Err(format!("`}}}}` without `{{{{` in `{text}`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// `field(i)` gives the text of template path `i`; `special(s)` the computed values.
    pub fn render(
        &self,
        out: &mut String,
        field: &mut impl FnMut(usize, &mut String),
        special: &impl Fn(Special, &mut String),
    ) {
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(i) => field(*i, out),
                Part::Special(s) => special(*s, out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn conditions() {
        let r = rec(
            json!({"event": "rest_call", "rest": {"status": 503, "endpoint": "/fapi/v1/order"},
                            "level": "ERROR", "message": "Order execution failed: x"}),
        );
        let m = |spec: Value| Matcher::parse(&spec).unwrap().matches(&Rec::new(&r));
        assert!(m(json!({"event": "rest_call"})));
        assert!(!m(json!({"event": "ws_error"})));
        assert!(m(json!({"event": ["ws_error", "rest_call"]})));
        assert!(m(json!({"rest.status": {"gte": 500, "lt": 600}})));
        assert!(!m(json!({"rest.status": {"gte": 500, "lt": 503}})));
        assert!(m(json!({"rest.status": 503})));
        // a string literal compares as a string; a number literal also reads "503"
        assert!(!m(json!({"rest.status": "503"})));
        assert!(Matcher::parse(&json!({"s": 503}))
            .unwrap()
            .matches(&Rec::new(&rec(json!({"s": "503"})))));
        assert!(
            !m(json!({"nope": {"not_in": ["x"]}})),
            "not_in needs the field"
        );
        assert!(Matcher::parse(&json!({"level": null}))
            .unwrap_err()
            .contains("exists: false"));
        assert!(m(json!({"rest.latency_seconds": {"exists": false}})));
        assert!(!m(json!({"rest.latency_seconds": {"gt": 0}})));
        assert!(m(
            json!({"message": {"starts_with": "Order execution", "not": {"contains": ["Unknown order", "timeout"]}}})
        ));
        assert!(!m(json!({"message": {"not": {"contains": "failed"}}})));
        assert!(m(json!({"rest.endpoint": {"ends_with": "/order"}})));
        assert!(m(json!([{"event": "nope"}, {"level": {"in": ["ERROR"]}}])));
        assert!(!m(
            json!([{"event": "nope"}, {"level": {"not_in": ["ERROR"]}}])
        ));
        // `not` on a missing field holds: the field is not "x".
        assert!(m(json!({"absent.field": {"not": "x"}})));
    }

    #[test]
    fn bad_conditions_say_what_is_wrong() {
        let e = |spec: Value| Matcher::parse(&spec).unwrap_err();
        assert!(e(json!({"level": {"regexp": "x"}})).contains("unknown operator `regexp`"));
        assert!(e(json!({"level": {"regex": "x"}})).contains("not supported"));
        assert!(e(json!({"n": {"gt": "x"}})).contains("`gt` takes a number"));
        assert!(e(json!({"a..b": 1})).contains("empty segment"));
        assert!(e(json!([{"a": 1}, 3])).contains("alternative [1]"));
        assert!(e(json!({"m": {"contains": ""}})).contains("matches everything"));
        assert!(e(json!([])).contains("non-empty list"));
    }

    #[test]
    fn index_keys_are_found_only_when_every_alternative_has_them() {
        let m = Matcher::parse(&json!([{"event": "a"}, {"event": ["b", "a"], "x": 1}])).unwrap();
        assert_eq!(m.required("event"), Some(vec!["a".into(), "b".into()]));
        let m = Matcher::parse(&json!([{"event": "a"}, {"level": "ERROR"}])).unwrap();
        assert_eq!(m.required("event"), None);
        assert_eq!(m.required("level"), None);
        let m = Matcher::parse(&json!({"event": {"not": "a"}})).unwrap();
        assert_eq!(m.required("event"), None);
    }

    #[test]
    fn wildcards_and_lists() {
        let r = rec(
            json!({"rate_limit": {"REQUEST_WEIGHT": {"ratio": 0.9}, "ORDERS_10S": {"ratio": 0.1}},
                            "account": {"balances": [{"currency": "USDT", "total": 10.0}, {"total": 2}]}}),
        );
        let mut seen = Vec::new();
        Path::parse("rate_limit.*.ratio")
            .unwrap()
            .each(&Rec::new(&r), None, |k, v| {
                seen.push((k.to_owned(), v.clone()))
            });
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            vec![
                ("ORDERS_10S".into(), json!(0.1)),
                ("REQUEST_WEIGHT".into(), json!(0.9))
            ]
        );
        let mut seen = Vec::new();
        Path::parse("account.balances.*.total").unwrap().each(
            &Rec::new(&r),
            Some("currency"),
            |k, v| seen.push((k.to_owned(), v.clone())),
        );
        assert_eq!(
            seen,
            vec![("USDT".into(), json!(10.0)), ("1".into(), json!(2))]
        );
        assert_eq!(
            Path::parse("account.balances.1.total")
                .unwrap()
                .get(&Rec::new(&r)),
            Some(&json!(2))
        );
        let alt = PathAlt::parse("position.instrument_id|account.balances.0.currency").unwrap();
        assert_eq!(alt.get(&Rec::new(&r)), Some(&json!("USDT")));
        assert_eq!(alt.label_name(), "instrument_id");
    }

    #[test]
    fn templates() {
        let mut paths = Vec::new();
        let t = Template::parse(
            "p99 {{$value}}s on {{ order.instrument_id }} ({{x|y}})",
            &mut paths,
        )
        .unwrap();
        assert_eq!(paths.len(), 2);
        let r = rec(json!({"order": {"instrument_id": "BTCUSDT-PERP.BINANCE"}, "y": 7}));
        let mut out = String::new();
        t.render(
            &mut out,
            &mut |i, o: &mut String| {
                if let Some(v) = paths[i].get(&Rec::new(&r)) {
                    push_value(o, v)
                }
            },
            &|s, o: &mut String| {
                if s == Special::Value {
                    push_number(o, 0.612345)
                }
            },
        );
        assert_eq!(out, "p99 0.6123s on BTCUSDT-PERP.BINANCE (7)");
        assert!(Template::parse("{{oops", &mut paths).is_err());
        assert!(Template::parse("{{$nope}}", &mut paths).is_err());
    }

    #[test]
    fn numbers_read_well() {
        let f = |x: f64| {
            let mut s = String::new();
            push_number(&mut s, x);
            s
        };
        assert_eq!(f(5.0), "5");
        assert_eq!(f(0.8125), "0.8125");
        assert_eq!(f(0.123456), "0.1235");
        assert_eq!(f(-0.00001), "0");
        assert_eq!(f(1.5), "1.5");
    }
}

//! `"{{service}}-{{env}}"`-style templates over record fields, for labels and structured
//! metadata. Parsed once at start; rendering walks pre-split paths and appends to a reused
//! buffer, so the per-record cost is a few map lookups.

use crate::event::Record;
use serde_json::Value;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    /// A dotted path into nested maps, as the SDK's `Record::get` reads it.
    Field(Vec<String>),
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let open = rest.find("{{");
            let close = rest.find("}}");
            if let Some(close) = close {
                if open.is_none_or(|open| close < open) {
                    return Err(format!("`}}}}` without `{{{{` in `{text}`"));
                }
            }
            let Some(open) = open else {
                parts.push(Part::Literal(rest.to_owned()));
                break;
            };
            let after = &rest[open + 2..];
            let inner = match after.find("}}") {
                Some(close) if !after[..close].contains("{{") => &after[..close],
                _ => return Err(format!("`{{{{` without `}}}}` in `{text}`")),
            };
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            parts.push(Part::Field(parse_path(inner.trim(), text)?));
            rest = &after[inner.len() + 2..];
        }
        Ok(Self { parts })
    }

    /// No field references: the same value for every record.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The field paths it reads.
    pub fn fields(&self) -> impl Iterator<Item = &[String]> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(path) => Some(path.as_slice()),
            Part::Literal(_) => None,
        })
    }

    /// Appends the rendered value to `out`; `false` (and `out` possibly half written) when a
    /// field is missing or null, so the caller leaves the label or metadata pair out.
    pub fn render(&self, record: &Record, out: &mut String) -> bool {
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(path) => match lookup(record, path) {
                    None | Some(Value::Null) => return false,
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Number(n)) => {
                        let _ = write!(out, "{n}");
                    }
                    Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
                    Some(other) => {
                        let _ = write!(out, "{other}");
                    }
                },
            }
        }
        true
    }
}

fn parse_path(path: &str, text: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Err(format!("empty field reference `{{{{}}}}` in `{text}`"));
    }
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segments.iter().any(|s| {
        s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '@' || c == '$')
    }) {
        return Err(format!(
            "`{path}` in `{text}` is not a field path (names of letters, digits, `_`, `-`, joined by `.`)"
        ));
    }
    Ok(segments)
}

fn lookup<'a>(record: &'a Record, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut current = record.get(first)?;
    for segment in rest {
        current = current.as_object()?.get(segment)?;
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(v: Value) -> Record {
        v.as_object().unwrap().clone()
    }

    fn render(t: &str, r: &Record) -> Option<String> {
        let mut out = String::new();
        Template::parse(t)
            .unwrap()
            .render(r, &mut out)
            .then_some(out)
    }

    #[test]
    fn renders_literals_fields_and_nested_paths() {
        let r = record(json!({
            "service": "bot", "env": "prod", "n": 42, "ok": true, "nothing": null,
            "order": {"client_order_id": "O-1", "qty": 1.5}
        }));
        assert_eq!(render("sluice", &r).as_deref(), Some("sluice"));
        assert_eq!(render("{{service}}", &r).as_deref(), Some("bot"));
        assert_eq!(
            render("{{ service }}-{{env}}!", &r).as_deref(),
            Some("bot-prod!")
        );
        assert_eq!(
            render("{{order.client_order_id}}", &r).as_deref(),
            Some("O-1")
        );
        assert_eq!(
            render("{{order.qty}}/{{n}}/{{ok}}", &r).as_deref(),
            Some("1.5/42/true")
        );
        assert_eq!(
            render("{{order}}", &r).as_deref(),
            Some(r#"{"client_order_id":"O-1","qty":1.5}"#)
        );
        assert_eq!(render("{{missing}}", &r), None);
        assert_eq!(render("x-{{order.missing}}", &r), None);
        assert_eq!(render("{{nothing}}", &r), None);
        assert_eq!(render("{{service.deeper}}", &r), None);
    }

    #[test]
    fn knows_what_it_reads() {
        let t = Template::parse("{{a.b}}:{{c}}").unwrap();
        assert!(!t.is_literal());
        let fields: Vec<_> = t.fields().map(|p| p.join(".")).collect();
        assert_eq!(fields, ["a.b", "c"]);
        assert!(Template::parse("sluice").unwrap().is_literal());
        assert!(Template::parse("").unwrap().is_literal());
    }

    #[test]
    fn malformed_templates_are_refused_with_the_reason() {
        for (bad, why) in [
            ("{{service", "without `}}`"),
            ("service}}", "without `{{`"),
            ("{{}}", "empty field"),
            ("{{ a..b }}", "not a field path"),
            ("{{a b}}", "not a field path"),
            ("{{a {{b}}", "without `}}`"),
            ("}}{{a}}", "without `{{`"),
        ] {
            let err = Template::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}

//! `${VAR}` and `${VAR:-default}` in string values, resolved from the environment after
//! parsing (so positions stay true and a value can never inject YAML structure). `$$`
//! writes a literal `$`.

use super::error::KeyPath;
use serde_json::Value;

/// Replaces variables throughout `value`; returns each failure with its path.
pub fn interpolate(
    value: &mut Value,
    path: &KeyPath,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<(KeyPath, String)>,
) {
    match value {
        Value::String(s) if s.contains('$') => match expand(s, env) {
            Ok(expanded) => {
                let whole = is_single_reference(s);
                *value = if whole {
                    typed(expanded)
                } else {
                    Value::String(expanded)
                };
            }
            Err(e) => errors.push((path.clone(), e)),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &path.index(i), env, errors);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                interpolate(v, &path.key(k), env, errors);
            }
        }
        _ => {}
    }
}

/// `port: ${PORT}` should give a number, as if the value had been written in place.
fn typed(expanded: String) -> Value {
    match serde_yaml_ng::from_str::<Value>(&expanded) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(expanded),
    }
}

fn is_single_reference(s: &str) -> bool {
    s.starts_with("${") && s.ends_with('}') && s[2..].find('}') == Some(s.len() - 3)
}

pub fn expand(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in {input:?}"))?;
            let spec = &body[..end];
            let (name, default) = match spec.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (spec, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{spec}}}` is not a valid variable reference"));
            }
            match (env(name).filter(|v| !v.is_empty() || default.is_none()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set (write `${{{name}:-default}}` to give a default)"
                    ))
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db1".into()),
            "PORT" => Some("5432".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_defaults_and_escapes() {
        assert_eq!(expand("${HOST}:${PORT}", &env).unwrap(), "db1:5432");
        assert_eq!(expand("${NOPE:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("cost $$5 and $x", &env).unwrap(), "cost $5 and $x");
    }

    #[test]
    fn reports_missing_and_malformed_references() {
        assert!(expand("${NOPE}", &env)
            .unwrap_err()
            .contains("`NOPE` is not set"));
        assert!(expand("${HOST", &env).unwrap_err().contains("unterminated"));
        assert!(expand("${BAD-NAME}", &env)
            .unwrap_err()
            .contains("not a valid"));
    }

    #[test]
    fn whole_value_references_become_typed() {
        let mut v =
            json!({"port": "${PORT}", "url": "http://${HOST}:${PORT}", "list": ["${MISSING}"]});
        let mut errors = vec![];
        interpolate(&mut v, &KeyPath::default(), &env, &mut errors);
        assert_eq!(v["port"], json!(5432));
        assert_eq!(v["url"], json!("http://db1:5432"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0.to_string(), "list[0]");
    }
}

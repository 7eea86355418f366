//! How an expected item is compared with what a plugin produced: every field the test
//! writes must be there with that value, fields it leaves out are not checked, and each
//! difference is reported with its path so a failure reads as a diff.

use serde_json::Value;

/// The differences between `expected` and `actual`, as `path: expected X, got Y` lines;
/// empty when `actual` matches.
pub fn differences(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    compare("", expected, actual, &mut out);
    out
}

fn compare(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            for (key, want) in want {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match got.get(key) {
                    Some(got) => compare(&here, want, got, out),
                    None if want.is_null() => {}
                    None => out.push(format!("`{here}`: expected {want}, missing")),
                }
            }
        }
        (Value::Number(want), Value::Number(got)) if want.as_f64() == got.as_f64() => {}
        _ if expected == actual => {}
        _ => {
            let at = if path.is_empty() { "value" } else { path };
            out.push(format!("`{at}`: expected {expected}, got {actual}"));
        }
    }
}

/// Pairs each expected item with a distinct actual one that matches it, in order of the
/// expectations; returns the expectations nobody matched (index and item).
pub fn unmatched<'a>(expected: &'a [Value], actual: &[Value]) -> Vec<(usize, &'a Value)> {
    let mut taken = vec![false; actual.len()];
    let mut missing = Vec::new();
    for (i, want) in expected.iter().enumerate() {
        let found = actual
            .iter()
            .enumerate()
            .position(|(j, got)| !taken[j] && differences(want, got).is_empty());
        match found {
            Some(j) => taken[j] = true,
            None => missing.push((i, want)),
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_left_out_are_not_checked_and_numbers_compare_by_value() {
        let got = json!({"a": 1.0, "b": {"c": "x", "d": 2}, "e": [1, 2]});
        assert!(differences(&json!({"a": 1, "b": {"c": "x"}}), &got).is_empty());
        assert!(differences(&json!({"e": [1, 2], "zz": null}), &got).is_empty());
    }

    #[test]
    fn every_difference_is_reported_with_its_path() {
        let got = json!({"a": 1, "b": {"c": "x"}});
        let diff = differences(&json!({"a": 2, "b": {"c": "y", "d": true}}), &got);
        assert_eq!(
            diff,
            vec![
                "`a`: expected 2, got 1",
                "`b.c`: expected \"y\", got \"x\"",
                "`b.d`: expected true, missing",
            ]
        );
    }

    #[test]
    fn each_expectation_needs_its_own_match() {
        let got = [json!({"name": "m", "value": 1})];
        let want = [json!({"name": "m"}), json!({"name": "m"})];
        let missing = unmatched(&want, &got);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].0, 1);
    }
}

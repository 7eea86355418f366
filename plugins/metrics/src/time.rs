//! Timestamps to Unix seconds, for `value: {time: path}`.
//!
//! Plugins get no clock, so "seconds since the last connect" cannot be computed here; a
//! gauge holding the connect time itself (as `process_start_time_seconds` does) lets
//! PromQL compute the age with `time() - gauge` instead. Parsed by hand: the host writes
//! one fixed RFC 3339 shape, and a date crate would only add Wasm size.

use serde_json::Value;

/// RFC 3339 text (`2026-11-28T00:23:21.938984132Z`, any offset) or a number of
/// nanoseconds since the epoch, as NautilusTrader's `ts_*` fields are.
pub fn seconds(value: &Value) -> Option<f64> {
    match value {
        Value::String(s) => rfc3339(s),
        Value::Number(n) => n.as_f64().map(|ns| ns / 1e9),
        _ => None,
    }
}

fn digits(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0i64, |n, b| n * 10 + i64::from(b - b'0')))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn rfc3339(s: &str) -> Option<f64> {
    let b = s.trim().as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut fraction = 0.0;
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let len = after_dot.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        // Nanoseconds at most: more digits than that add nothing an f64 of epoch seconds keeps.
        let kept = &after_dot[..len.min(9)];
        fraction = digits(kept)? as f64 / 10f64.powi(kept.len() as i32);
        rest = &after_dot[len..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let minutes = digits(&[*h1, *h2])? * 60 + digits(&[*m1, *m2])?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    let whole =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(whole as f64 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_hosts_timestamps() {
        assert_eq!(seconds(&json!("1970-01-01T00:00:00Z")), Some(0.0));
        assert_eq!(seconds(&json!("2000-03-01T00:00:00Z")), Some(951_868_800.0));
        assert_eq!(
            seconds(&json!("2024-02-29T12:00:00Z")),
            Some(1_709_208_000.0)
        );
        let t = seconds(&json!("2026-11-28T00:23:21.938984132Z")).unwrap();
        assert!((t - 1_795_825_401.938_984).abs() < 1e-5, "{t}");
        assert_eq!(
            seconds(&json!("2024-06-03T02:00:00+02:00")),
            seconds(&json!("2024-06-03T00:00:00Z"))
        );
        assert_eq!(seconds(&json!("1969-12-31T23:59:59.5Z")), Some(-0.5));
    }

    #[test]
    fn epoch_nanoseconds() {
        let t = seconds(&json!(1_717_372_928_806_165_760u64)).unwrap();
        assert!((t - 1_717_372_928.806_166).abs() < 1e-5, "{t}");
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for bad in [
            "",
            "yesterday",
            "2024-06-03",
            "2024-06-03T00:00:00",
            "2024-13-03T00:00:00Z",
            "2024-06-03T24:00:00Z",
            "2024-06-03T00:00:00.Z",
            "2024-06-03T00:00:00+0200",
            "2024-06-03T00:00:00Zjunk",
            "2024-0a-03T00:00:00Z",
        ] {
            assert_eq!(seconds(&json!(bad)), None, "{bad:?}");
        }
        assert_eq!(seconds(&json!(true)), None);
    }
}

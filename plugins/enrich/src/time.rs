//! Record timestamps to nanoseconds, by hand: the host hands us RFC 3339 UTC with nine
//! fractional digits (or epoch nanoseconds), and a date library would cost more Wasm size
//! than these few lines.

use serde_json::Value;

/// Nanoseconds since the Unix epoch of a `timestamp` field: epoch-ns numbers as they are,
/// RFC 3339 strings with any fraction length and a `Z` or `±HH:MM` offset.
pub fn timestamp_ns(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => rfc3339_ns(s),
        _ => None,
    }
}

pub fn rfc3339_ns(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // 60 is a leap second; it folds into the next second like most libraries do.
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_s = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let off = h * 3600 + m * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_host_format_and_variants() {
        assert_eq!(rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_ns("2024-06-03T00:00:11.068363520Z"),
            Some(1_717_372_811_068_363_520)
        );
        assert_eq!(
            rfc3339_ns("2024-06-03T00:00:11.068Z"),
            Some(1_717_372_811_068_000_000)
        );
        assert_eq!(
            rfc3339_ns("2024-06-03T02:00:11.068363520+02:00"),
            Some(1_717_372_811_068_363_520)
        );
        assert_eq!(
            rfc3339_ns("2024-06-02T23:00:11.0683635209999-01:00"),
            Some(1_717_372_811_068_363_520)
        );
        assert_eq!(
            rfc3339_ns("2000-02-29T00:00:00Z"),
            Some(951_782_400_000_000_000)
        );
        assert_eq!(rfc3339_ns("1969-12-31T23:59:59Z"), Some(-1_000_000_000));
        assert_eq!(timestamp_ns(&json!(42)), Some(42));
        assert_eq!(
            timestamp_ns(&json!("2024-06-03T00:00:11Z")),
            Some(1_717_372_811_000_000_000)
        );
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for bad in [
            "",
            "2024-06-03",
            "2024-06-03T00:00:11",
            "2024-13-03T00:00:11Z",
            "2024-06-03T24:00:11Z",
            "2024-06-03T00:00:11.Z",
            "2024-06-03T00:00:11Zjunk",
            "2024-06-03T00:00:11+0200",
            "20x4-06-03T00:00:11Z",
        ] {
            assert_eq!(rfc3339_ns(bad), None, "{bad}");
        }
        assert_eq!(timestamp_ns(&json!(true)), None);
    }
}

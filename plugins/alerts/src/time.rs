//! Record timestamps to nanoseconds since the Unix epoch, by hand: the host normalises
//! them to one RFC 3339 UTC shape, and a general date parser would cost more than the
//! rule evaluation it feeds.

use serde_json::Value;

/// RFC 3339 (`2024-06-03T00:12:12.185158912Z`, any fraction length, `Z` or `±HH:MM`) or
/// an integer of epoch nanoseconds. `None` for anything else.
pub fn parse(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => parse_rfc3339(s.as_bytes()),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn digits(b: &[u8], from: usize, n: usize) -> Option<i64> {
    let mut v = 0i64;
    for &c in b.get(from..from + n)? {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

pub fn parse_rfc3339(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 100_000_000i64;
        let start = i;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            nanos += i64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_s = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let s = digits(b, i + 1, 2)? * 3600 + digits(b, i + 4, 2)? * 60;
            if *sign == b'+' {
                s
            } else {
                -s
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Howard Hinnant's `days_from_civil`: days since 1970-01-01 in the proleptic Gregorian
/// calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_host_shape_and_variants() {
        assert_eq!(parse(&json!("1970-01-01T00:00:00Z")), Some(0));
        assert_eq!(
            parse(&json!("2024-06-03T00:12:12.185158912Z")),
            Some(1_717_373_532_185_158_912)
        );
        assert_eq!(
            parse(&json!("2024-06-03T00:12:12.5Z")),
            Some(1_717_373_532_500_000_000)
        );
        assert_eq!(
            parse(&json!("2024-06-03T02:12:12+02:00")),
            Some(1_717_373_532_000_000_000)
        );
        assert_eq!(
            parse(&json!("2000-02-29T23:59:59Z")),
            Some(951_868_799_000_000_000)
        );
        assert_eq!(
            parse(&json!(1_717_373_532_000_000_000i64)),
            Some(1_717_373_532_000_000_000)
        );
        for bad in [
            "",
            "2024-06-03",
            "2024-13-03T00:00:00Z",
            "2024-06-03T00:00:00",
            "2024-06-03T00:00:00.Z",
            "2024-06-03T00:00:00Zjunk",
            "x024-06-03T00:00:00Z",
        ] {
            assert_eq!(parse(&json!(bad)), None, "{bad}");
        }
    }
}

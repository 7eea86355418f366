//! The one canonical timestamp form every record leaves the decoder with.
//!
//! Sinks sort, index and compare timestamps as strings, so every source — RFC 3339 with any
//! offset or precision, or an epoch number in any common unit — is rewritten to a single
//! fixed-width UTC form whose lexical order is its chronological order.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Number, Value};

/// The reserved field that `normalize_timestamp` rewrites.
pub(crate) const TIMESTAMP_FIELD: &str = "timestamp";

/// Below these magnitudes an epoch number cannot be nanoseconds of any plausible date, so it
/// is read in the coarser unit: 1e11 s is the year 5138, 1e14 ms and 1e17 µs the same instant.
const SECONDS_BELOW: f64 = 1e11;
const MILLIS_BELOW: f64 = 1e14;
const MICROS_BELOW: f64 = 1e17;

/// Normalise the reserved `timestamp` field in place: an RFC 3339 string (any offset, any sub-second precision)
/// becomes RFC 3339 UTC with exactly 9 fractional digits and a `Z` suffix (e.g. "2024-03-01T00:04:03.474513664Z");
/// an integer is taken as epoch nanoseconds (also accept a float/integer that is clearly seconds (< 1e11) or ms (< 1e14) or µs (< 1e17)) and converted the same way.
/// A value that cannot be understood is left as is and Err(reason) is returned so the caller can flag it.
///
/// A record without a `timestamp` is fine: the source stamps receive time later, so absence
/// is not an error here.
///
/// # Errors
/// The reason the value is not a timestamp, worded to follow "bad timestamp: " in a
/// `decode_error`.
pub fn normalize_timestamp(fields: &mut Map<String, Value>) -> Result<(), String> {
    let Some(value) = fields.get_mut(TIMESTAMP_FIELD) else {
        return Ok(());
    };
    let canonical = match value {
        // Already canonical strings are the common case (NautilusTrader writes them), and
        // leaving them untouched avoids reformatting and reallocating every record.
        Value::String(s) if is_canonical(s.as_bytes()) => return Ok(()),
        Value::String(s) => {
            normalize_str(s).map_err(|e| format!("{s:?} is not an RFC 3339 timestamp ({e})"))?
        }
        Value::Number(n) => format_timestamp(epoch_number_to_datetime(n)?),
        other => {
            return Err(format!(
                "expected an RFC 3339 string or an epoch number, found {}",
                json_type_name(other)
            ))
        }
    };
    *value = Value::String(canonical);
    Ok(())
}

/// Format a chrono DateTime<Utc> in that same canonical form (used by sources for receive time).
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Canonicalises an RFC 3339 string; shared with decoders that find a timestamp inside a line.
/// The error stays chrono's so that a caller probing whether a token is a timestamp at all
/// does not pay for formatting a message it will throw away.
pub(crate) fn normalize_str(s: &str) -> Result<String, chrono::ParseError> {
    if is_canonical(s.as_bytes()) {
        return Ok(s.to_owned());
    }
    DateTime::parse_from_rfc3339(s).map(|t| format_timestamp(t.with_timezone(&Utc)))
}

/// Recognises `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` with a real calendar date without going
/// through chrono's general parser, which dominates decode time for NautilusTrader lines.
fn is_canonical(b: &[u8]) -> bool {
    const SHAPE: &[u8; 30] = b"dddd-dd-ddTdd:dd:dd.dddddddddZ";
    if b.len() != SHAPE.len() {
        return false;
    }
    let shape_ok = b.iter().zip(SHAPE).all(|(&c, &p)| match p {
        b'd' => c.is_ascii_digit(),
        _ => c == p,
    });
    if !shape_ok {
        return false;
    }
    let num = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'))
    };
    let (year, month, day) = (num(0, 4), num(5, 7), num(8, 10));
    let (hour, minute, second) = (num(11, 13), num(14, 16), num(17, 19));
    // Leap seconds (:60) are valid RFC 3339 but rare; chrono's parser handles them.
    hour < 24
        && minute < 60
        && second < 60
        && NaiveDate::from_ymd_opt(year as i32, month, day).is_some()
}

fn epoch_number_to_datetime(n: &Number) -> Result<DateTime<Utc>, String> {
    let out_of_range = || format!("epoch value {n} is out of range");
    let nanos: i64 = if let Some(i) = n.as_i64() {
        // Integers stay in integer arithmetic so that nanosecond values survive exactly.
        let i = i128::from(i);
        let scaled = i * nanos_per_unit(i.unsigned_abs() as f64);
        i64::try_from(scaled).map_err(|_| out_of_range())?
    } else if n.is_u64() {
        // Only u64 values above i64::MAX get here: far beyond i64 nanoseconds (year 2262).
        return Err(out_of_range());
    } else {
        let f = n.as_f64().ok_or_else(out_of_range)?;
        if !f.is_finite() {
            return Err(out_of_range());
        }
        let per_unit = nanos_per_unit(f.abs());
        // Splitting off the whole part keeps the fraction's precision: multiplying the
        // whole float by 1e9 would lose the sub-microsecond digits of a seconds value.
        let whole = f.trunc();
        let frac_nanos = ((f - whole) * per_unit as f64).round() as i128;
        let scaled = (whole as i128)
            .checked_mul(per_unit)
            .and_then(|w| w.checked_add(frac_nanos))
            .ok_or_else(out_of_range)?;
        i64::try_from(scaled).map_err(|_| out_of_range())?
    };
    Ok(DateTime::from_timestamp_nanos(nanos))
}

fn nanos_per_unit(magnitude: f64) -> i128 {
    if magnitude < SECONDS_BELOW {
        1_000_000_000
    } else if magnitude < MILLIS_BELOW {
        1_000_000
    } else if magnitude < MICROS_BELOW {
        1_000
    } else {
        1
    }
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn normalized(v: Value) -> Result<Value, String> {
        let mut fields = Map::new();
        fields.insert(TIMESTAMP_FIELD.to_owned(), v);
        normalize_timestamp(&mut fields)?;
        Ok(fields.remove(TIMESTAMP_FIELD).unwrap())
    }

    #[test]
    fn offset_is_converted_to_utc() {
        assert_eq!(
            normalized(json!("2024-03-01T02:04:03.474513664+02:00")),
            Ok(json!("2024-03-01T00:04:03.474513664Z"))
        );
        assert_eq!(
            normalized(json!("2024-02-29T19:34:03-04:30")),
            Ok(json!("2024-03-01T00:04:03.000000000Z"))
        );
    }

    #[test]
    fn microseconds_are_padded_to_nine_digits() {
        assert_eq!(
            normalized(json!("2024-03-01T00:04:03.474513Z")),
            Ok(json!("2024-03-01T00:04:03.474513000Z"))
        );
        assert_eq!(
            normalized(json!("2024-03-01T00:04:03Z")),
            Ok(json!("2024-03-01T00:04:03.000000000Z"))
        );
    }

    #[test]
    fn precision_beyond_nanoseconds_is_truncated_and_case_is_ignored() {
        assert_eq!(
            normalized(json!("2024-03-01T00:04:03.4745136649Z")),
            Ok(json!("2024-03-01T00:04:03.474513664Z"))
        );
        assert_eq!(
            normalized(json!("2024-03-01t00:04:03.5z")),
            Ok(json!("2024-03-01T00:04:03.500000000Z"))
        );
    }

    #[test]
    fn canonical_string_is_unchanged() {
        let ts = "2026-11-27T22:58:52.029587460Z";
        assert_eq!(normalized(json!(ts)), Ok(json!(ts)));
        assert!(is_canonical(ts.as_bytes()));
        // Right shape, impossible date: must not take the shortcut.
        assert!(!is_canonical(b"2026-02-30T22:58:52.029587460Z"));
        assert!(normalized(json!("2026-02-30T22:58:52.029587460Z")).is_err());
    }

    #[test]
    fn epoch_integer_nanoseconds() {
        assert_eq!(
            normalized(json!(1_709_251_443_474_513_664_i64)),
            Ok(json!("2024-03-01T00:04:03.474513664Z"))
        );
    }

    #[test]
    fn epoch_float_seconds() {
        // 0.5 is exact in binary, so the expected nanoseconds are exact too.
        assert_eq!(
            normalized(json!(1_709_251_443.5)),
            Ok(json!("2024-03-01T00:04:03.500000000Z"))
        );
        // Not exact in binary: the result is the nearest f64, within a microsecond.
        let Ok(Value::String(s)) = normalized(json!(1_709_251_443.474_513)) else {
            panic!("float seconds must normalise");
        };
        assert!(s.starts_with("2024-03-01T00:04:03.4745"), "{s}");
    }

    #[test]
    fn epoch_integer_units_by_magnitude() {
        let expect = Ok(json!("2024-03-01T00:04:03.474000000Z"));
        assert_eq!(normalized(json!(1_709_251_443_474_i64)), expect);
        assert_eq!(normalized(json!(1_709_251_443_474_000_i64)), expect);
        assert_eq!(
            normalized(json!(1_709_251_443_i64)),
            Ok(json!("2024-03-01T00:04:03.000000000Z"))
        );
        assert_eq!(
            normalized(json!(-1)),
            Ok(json!("1969-12-31T23:59:59.000000000Z"))
        );
    }

    #[test]
    fn unusable_values_are_left_alone() {
        for bad in [
            json!("yesterday"),
            json!(true),
            json!(null),
            json!([1]),
            json!(u64::MAX),
            json!(1e300),
        ] {
            let mut fields = Map::new();
            fields.insert(TIMESTAMP_FIELD.to_owned(), bad.clone());
            let err = normalize_timestamp(&mut fields).unwrap_err();
            assert!(!err.is_empty());
            assert_eq!(fields[TIMESTAMP_FIELD], bad, "{err}");
        }
    }

    #[test]
    fn missing_timestamp_is_not_an_error() {
        let mut fields = Map::new();
        assert_eq!(normalize_timestamp(&mut fields), Ok(()));
        assert!(fields.is_empty());
    }

    #[test]
    fn format_has_nine_digits_and_z() {
        let t = DateTime::from_timestamp(1_709_251_443, 0).unwrap();
        assert_eq!(format_timestamp(t), "2024-03-01T00:04:03.000000000Z");
    }
}

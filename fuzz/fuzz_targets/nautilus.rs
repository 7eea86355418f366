//! The NautilusTrader line decoder, through the same entry point sources use
//! (`Decoding::decode`). It never fails: every line gives a record with a `message`, and
//! one that did not decode says why in `decode_error`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sluice::decode::{Decoding, DECODE_ERROR_FIELD};

fuzz_target!(|data: &[u8]| {
    let fields = Decoding::Nautilus.decode(data);
    let message = match fields.get("message") {
        Some(Value::String(m)) => m,
        other => panic!("no string `message`: {other:?} in {fields:?}"),
    };
    match fields.get(DECODE_ERROR_FIELD) {
        Some(Value::String(reason)) => assert!(!reason.is_empty()),
        Some(other) => panic!("`decode_error` is not a string: {other:?}"),
        None => {
            // A decoded line: the fields a Nautilus record always has, colour codes gone
            // from the message, and the timestamp in the one canonical form.
            for key in ["timestamp", "level", "trader_id", "component"] {
                assert!(
                    matches!(fields.get(key), Some(Value::String(_))),
                    "decoded record without string `{key}`: {fields:?}"
                );
            }
            assert!(!message.contains('\x1b'), "ESC left in message: {fields:?}");
            let Some(Value::String(ts)) = fields.get("timestamp") else {
                unreachable!()
            };
            // Known and left alone (docs/fuzzing.md): an offset can carry a date of year
            // 0000 or 9999 out of the four-digit range ("+10000-…", "-0001-…").
            assert!(
                canonical(ts) || ts.starts_with(['+', '-']),
                "timestamp {ts:?} is not canonical: {fields:?}"
            );
        }
    }
});

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: fixed width, so lexical order is time order.
fn canonical(ts: &str) -> bool {
    const SHAPE: &[u8; 30] = b"dddd-dd-ddTdd:dd:dd.dddddddddZ";
    ts.len() == SHAPE.len()
        && ts.bytes().zip(SHAPE).all(|(c, &p)| match p {
            b'd' => c.is_ascii_digit(),
            _ => c == p,
        })
}

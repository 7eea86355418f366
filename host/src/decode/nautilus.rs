//! NautilusTrader's own log lines, in either of the two shapes its logger writes.
//!
//! Plain: `<timestamp> [LEVEL] <trader_id>.<component>: <message>`, as written by its file
//! logger, or with ANSI colour codes when captured from a terminal. JSON: one object per line
//! with `timestamp, trader_id, level, color, component, message`. Both shapes become the same
//! record, so a trader can switch `log_file_format` without breaking dashboards.
//!
//! This decoder sees every line of a busy trading node, so the plain shape is split by byte
//! scanning over the borrowed line, and the only allocations are the output strings.

use serde_json::{Map, Value};

use crate::decode::timestamp::{self, normalize_timestamp, TIMESTAMP_FIELD};
use crate::decode::{json_error_reason, undecodable, DECODE_ERROR_FIELD, MESSAGE_FIELD};

const LEVEL_FIELD: &str = "level";
const TRADER_ID_FIELD: &str = "trader_id";
const COMPONENT_FIELD: &str = "component";
const COLOR_FIELD: &str = "color";

/// The keys NautilusTrader's JSON file format always writes; a JSON line lacking any of
/// them is some other producer's JSON and must not be passed off as a Nautilus record.
const JSON_KEYS: [&str; 6] = [
    TIMESTAMP_FIELD,
    TRADER_ID_FIELD,
    LEVEL_FIELD,
    COLOR_FIELD,
    COMPONENT_FIELD,
    MESSAGE_FIELD,
];

const ESC: u8 = 0x1b;

pub(crate) fn decode(line: &str) -> Map<String, Value> {
    if line.trim_ascii_start().starts_with('{') {
        decode_json(line)
    } else {
        decode_plain(line)
    }
}

fn not_nautilus(line: &str, what: &str) -> Map<String, Value> {
    undecodable(line, format!("not a NautilusTrader log line: {what}"))
}

fn decode_json(line: &str) -> Map<String, Value> {
    let mut fields = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return not_nautilus(line, "JSON value is not an object"),
        Err(e) => return not_nautilus(line, &json_error_reason(&e)),
    };
    for key in JSON_KEYS {
        match fields.get(key) {
            Some(Value::String(_)) => {}
            Some(_) => return not_nautilus(line, &format!("JSON field {key:?} is not a string")),
            None => return not_nautilus(line, &format!("JSON object has no {key:?} field")),
        }
    }
    // Nautilus serialises a message's embedded colour codes into its JSON file as \u001b
    // escapes; they are terminal noise in a search index and would make the same event
    // differ between the plain and JSON formats.
    if let Some(Value::String(message)) = fields.get_mut(MESSAGE_FIELD) {
        if message.as_bytes().contains(&ESC) {
            let mut clean = String::with_capacity(message.len());
            strip_csi(message, &mut clean);
            *message = clean;
        }
    }
    // Same policy as the `json` decoder: the line is recognisably Nautilus, so keep it as a
    // record and flag the one field that is wrong.
    if let Err(reason) = normalize_timestamp(&mut fields) {
        fields.insert(
            DECODE_ERROR_FIELD.to_owned(),
            Value::String(format!("bad timestamp: {reason}")),
        );
    }
    fields
}

fn decode_plain(line: &str) -> Map<String, Value> {
    if !line.as_bytes().contains(&ESC) {
        return match split_plain(line) {
            Ok(parts) => {
                let message = line[parts.message_start..].to_owned();
                let mut fields = parts.into_fields(line);
                fields.insert(MESSAGE_FIELD.to_owned(), Value::String(message));
                fields
            }
            Err(what) => not_nautilus(line, what),
        };
    }
    // A terminal capture: colour codes sit around the timestamp and level and inside the
    // message, so the structure is only visible once they are gone. The cleaned copy is
    // not wasted: its tail becomes the message.
    let mut clean = String::with_capacity(line.len());
    strip_csi(line, &mut clean);
    match split_plain(&clean) {
        Ok(parts) => {
            let start = parts.message_start;
            let mut fields = parts.into_fields(&clean);
            clean.drain(..start);
            fields.insert(MESSAGE_FIELD.to_owned(), Value::String(clean));
            fields
        }
        // Keep the raw line, codes included: it is what a person would need to see why it
        // did not parse.
        Err(what) => not_nautilus(line, what),
    }
}

/// Where the fields of a plain line lie, found without copying anything but the timestamp
/// (which has to be rewritten anyway when it is not already canonical).
struct PlainParts {
    timestamp: String,
    level: std::ops::Range<usize>,
    trader_id: std::ops::Range<usize>,
    component: std::ops::Range<usize>,
    message_start: usize,
}

impl PlainParts {
    /// Everything but the message, whose string the caller may be able to reuse.
    fn into_fields(self, line: &str) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert(TIMESTAMP_FIELD.to_owned(), Value::String(self.timestamp));
        let mut put = |key: &str, range: std::ops::Range<usize>| {
            fields.insert(key.to_owned(), Value::String(line[range].to_owned()));
        };
        put(LEVEL_FIELD, self.level);
        put(TRADER_ID_FIELD, self.trader_id);
        put(COMPONENT_FIELD, self.component);
        fields
    }
}

/// Splits `<timestamp> [LEVEL] <trader_id>.<component>: <message>`.
///
/// The message is free text and may itself contain ": ", so the component ends at the
/// first ": "; Nautilus component names never contain one. A line that ends in ':' with no
/// ": " before it is a component with an empty message whose trailing space was trimmed
/// (editors and some collectors strip trailing whitespace).
fn split_plain(line: &str) -> Result<PlainParts, &'static str> {
    let b = line.as_bytes();
    let ts_end = b.iter().position(|&c| c == b' ').unwrap_or(b.len());
    let timestamp = timestamp::normalize_str(&line[..ts_end])
        .map_err(|_| "expected an RFC 3339 timestamp at the start")?;

    // Any all-caps word is a level: level names have changed across Nautilus releases
    // (older ones wrote INF/WRN), and a closed list would turn a whole stream into decode
    // errors the day a new name appears.
    let level_start = ts_end + 2;
    let level_len = b
        .get(level_start..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    let level_end = level_start + level_len;
    if b.get(ts_end..level_start) != Some(b" [")
        || level_len == 0
        || b.get(level_end) != Some(&b']')
    {
        return Err("expected [LEVEL] after timestamp");
    }
    if b.get(level_end + 1) != Some(&b' ') {
        return Err("expected ' ' after [LEVEL]");
    }

    // Trader ids are "NAME-TAG" identifiers; stopping at a space or ':' keeps an ordinary
    // sentence such as "[INFO] Done: see a.b" from being read as a trader id.
    let tid_start = level_end + 2;
    let tid_len = b[tid_start..]
        .iter()
        .take_while(|&&c| c != b'.' && c != b' ' && c != b':')
        .count();
    let tid_end = tid_start + tid_len;
    if tid_len == 0 || b.get(tid_end) != Some(&b'.') {
        return Err("expected <trader_id>.<component> after [LEVEL]");
    }

    let comp_start = tid_end + 1;
    let (comp_end, message_start) = match line[comp_start..].find(": ") {
        Some(i) => (comp_start + i, comp_start + i + 2),
        None if b.len() > comp_start && b[b.len() - 1] == b':' => (b.len() - 1, b.len()),
        None => return Err("expected ': ' after component"),
    };
    if comp_end == comp_start {
        return Err("expected <trader_id>.<component> after [LEVEL]");
    }

    Ok(PlainParts {
        timestamp,
        level: level_start..level_end,
        trader_id: tid_start..tid_end,
        component: comp_start..comp_end,
        message_start: message_start + sgr_residue_len(&b[message_start..]),
    })
}

/// Length of the colour-code residue at the start of a message from a Nautilus log file.
///
/// Nautilus's file writer deletes control characters before it removes ANSI sequences, so
/// the ESC goes first and the regex then no longer matches: a message logged as
/// "\x1b[36m====" is written as "[36m====". Only the start of the message is cleaned, where
/// Nautilus puts these codes, and only a well-formed SGR code ("[" digits/';' "m") not
/// followed by ']', so that text such as "[5m]" (a five-minute bar) survives.
fn sgr_residue_len(message: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let rest = &message[at..];
        if rest.first() != Some(&b'[') {
            return at;
        }
        let params = rest[1..]
            .iter()
            .take_while(|&&c| c.is_ascii_digit() || c == b';')
            .count();
        let end = 1 + params;
        if !rest[1..end].iter().any(u8::is_ascii_digit)
            || rest.get(end) != Some(&b'm')
            || rest.get(end + 1) == Some(&b']')
        {
            return at;
        }
        at += end + 1;
    }
}

/// Appends `s` to `out` without ANSI CSI sequences (ESC '[' parameters intermediates final),
/// which is every colour and cursor code a terminal logger emits. Any other ESC is dropped on
/// its own: it is an unprintable control byte that only garbles a stored message.
fn strip_csi(s: &str, out: &mut String) {
    let b = s.as_bytes();
    let mut copied = 0;
    let mut at = 0;
    while let Some(offset) = b[at..].iter().position(|&c| c == ESC) {
        let esc = at + offset;
        out.push_str(&s[copied..esc]);
        at = esc + csi_len(&b[esc..]).unwrap_or(1);
        copied = at;
    }
    out.push_str(&s[copied..]);
}

/// Length of the complete CSI sequence at the start of `b` (which starts with ESC), if any.
/// All its bytes are ASCII, so cutting around it keeps the string valid UTF-8.
fn csi_len(b: &[u8]) -> Option<usize> {
    if b.get(1) != Some(&b'[') {
        return None;
    }
    let body = &b[2..];
    let params = body
        .iter()
        .take_while(|c| (0x30..=0x3f).contains(*c))
        .count();
    let inter = body[params..]
        .iter()
        .take_while(|c| (0x20..=0x2f).contains(*c))
        .count();
    match body.get(params + inter) {
        Some(0x40..=0x7e) => Some(2 + params + inter + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoding;
    use serde_json::json;
    use std::collections::BTreeMap;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/nautilus/");

    fn fixture(name: &str) -> Vec<Map<String, Value>> {
        let path = format!("{FIXTURES}{name}");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        bytes
            .split(|&c| c == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| Decoding::Nautilus.decode(line))
            .collect()
    }

    fn decode(line: &str) -> Map<String, Value> {
        Decoding::Nautilus.decode(line.as_bytes())
    }

    fn record(ts: &str, level: &str, component: &str, message: &str) -> Map<String, Value> {
        json!({
            "timestamp": ts,
            "level": level,
            "trader_id": "SAMPLE-007",
            "component": component,
            "message": message,
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn s<'a>(r: &'a Map<String, Value>, key: &str) -> &'a str {
        r[key].as_str().unwrap()
    }

    /// UUIDs are random per run; masking them is what makes messages from the two fixture
    /// files comparable at all.
    fn mask_uuids(message: &str) -> String {
        const SHAPE: &[u8; 36] = b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
        let b = message.as_bytes();
        let mut out = String::with_capacity(message.len());
        let mut i = 0;
        while i < b.len() {
            let is_uuid = b.len() - i >= SHAPE.len()
                && b[i..i + SHAPE.len()].iter().zip(SHAPE).all(|(&c, &p)| {
                    if p == b'-' {
                        c == b'-'
                    } else {
                        c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
                    }
                });
            if is_uuid {
                out.push_str("<uuid>");
                i += SHAPE.len();
            } else {
                let ch = message[i..].chars().next().unwrap();
                out.push(ch);
                i += ch.len_utf8();
            }
        }
        out
    }

    #[test]
    fn every_fixture_line_decodes() {
        let plain_keys = [
            TIMESTAMP_FIELD,
            LEVEL_FIELD,
            TRADER_ID_FIELD,
            COMPONENT_FIELD,
            MESSAGE_FIELD,
        ];
        for (name, keys) in [("sample.log", &plain_keys[..]), ("sample.json", &JSON_KEYS)] {
            let mut expected = keys.to_vec();
            expected.sort_unstable();
            let records = fixture(name);
            assert_eq!(records.len(), 2677, "{name}");
            for (i, r) in records.iter().enumerate() {
                assert!(
                    !r.contains_key(DECODE_ERROR_FIELD),
                    "{name}:{}: {:?}",
                    i + 1,
                    r[DECODE_ERROR_FIELD]
                );
                let mut got: Vec<&str> = r.keys().map(String::as_str).collect();
                got.sort_unstable();
                assert_eq!(got, expected, "{name}:{}", i + 1);
                assert_eq!(s(r, TRADER_ID_FIELD), "SAMPLE-007");
                assert!(matches!(s(r, LEVEL_FIELD), "INFO" | "WARN"));
                assert_eq!(s(r, TIMESTAMP_FIELD).len(), 30);
                assert!(!s(r, MESSAGE_FIELD).contains(['\x1b', '\r']));
            }
        }
    }

    /// Both files record one simulation. What the README allows to differ — UUIDs, wall-clock
    /// timings, and the order of lines with equal timestamps — is all that does differ:
    /// in the simulated-time region the two decode to the same records in the same order,
    /// message for message once UUIDs are masked, except the three lines that report the
    /// host's memory and the wall-clock start of the run.
    #[test]
    fn plain_and_json_fixtures_decode_to_the_same_records() {
        let plain = fixture("sample.log");
        let json = fixture("sample.json");

        // Set-up runs in wall-clock time (2026), the simulation in 2024, so the simulated
        // region is every record stamped before the first, wall-clock, line.
        let simulated = |records: &[Map<String, Value>]| -> Vec<Map<String, Value>> {
            let first = s(&records[0], TIMESTAMP_FIELD).to_owned();
            records
                .iter()
                .filter(|r| s(r, TIMESTAMP_FIELD) < first.as_str())
                .cloned()
                .collect()
        };
        let (plain_sim, json_sim) = (simulated(&plain), simulated(&json));
        assert_eq!(plain_sim.len(), 2439);
        assert_eq!(json_sim.len(), plain_sim.len());

        const HOST_DEPENDENT: [&str; 3] = ["RAM-Used: ", "RAM-Avail: ", "Run started: "];
        let mut host_dependent = 0;
        for (p, j) in plain_sim.iter().zip(&json_sim) {
            for key in [
                TIMESTAMP_FIELD,
                LEVEL_FIELD,
                TRADER_ID_FIELD,
                COMPONENT_FIELD,
            ] {
                assert_eq!(p[key], j[key], "{p:?} vs {j:?}");
            }
            let (pm, jm) = (
                mask_uuids(s(p, MESSAGE_FIELD)),
                mask_uuids(s(j, MESSAGE_FIELD)),
            );
            if pm != jm {
                let prefix = HOST_DEPENDENT.iter().find(|h| pm.starts_with(**h));
                assert!(
                    prefix.is_some_and(|h| jm.starts_with(h)),
                    "{pm:?} vs {jm:?}"
                );
                host_dependent += 1;
            }
        }
        assert_eq!(host_dependent, HOST_DEPENDENT.len());

        // Over the whole files, wall-clock region included, every (level, trader_id,
        // component) occurs equally often.
        let counts = |records: &[Map<String, Value>]| {
            let mut counts = BTreeMap::<(String, String, String), usize>::new();
            for r in records {
                let key = (
                    s(r, LEVEL_FIELD).to_owned(),
                    s(r, TRADER_ID_FIELD).to_owned(),
                    s(r, COMPONENT_FIELD).to_owned(),
                );
                *counts.entry(key).or_default() += 1;
            }
            counts
        };
        assert_eq!(counts(&plain), counts(&json));

        // In the wall-clock region messages differ only where they report timings or the
        // host; everything else matches as a multiset.
        const WALL_CLOCK: [&str; 9] = [
            "RAM-Used: ",
            "RAM-Avail: ",
            "PID: ",
            "Integrity check passed in ",
            "Loaded cache in ",
            "Initialized in ",
            "Run started: ",
            "Run finished: ",
            "Elapsed time: ",
        ];
        let wall = |records: &[Map<String, Value>]| {
            let first = s(&records[0], TIMESTAMP_FIELD).to_owned();
            let mut messages = BTreeMap::<String, usize>::new();
            for r in records
                .iter()
                .filter(|r| s(r, TIMESTAMP_FIELD) >= first.as_str())
            {
                let m = mask_uuids(s(r, MESSAGE_FIELD));
                let m = match WALL_CLOCK.iter().find(|w| m.starts_with(**w)) {
                    Some(w) => (*w).to_owned(),
                    None => m,
                };
                *messages.entry(m).or_default() += 1;
            }
            messages
        };
        assert_eq!(wall(&plain), wall(&json));
    }

    #[test]
    fn fixture_banner_residue_is_cleaned_in_both_formats() {
        let plain = fixture("sample.log");
        let json = fixture("sample.json");
        let banner = |records: &[Map<String, Value>]| {
            records
                .iter()
                .filter(|r| s(r, MESSAGE_FIELD) == " SimulatedVenue BINANCE")
                .count()
        };
        assert_eq!(banner(&plain), 2);
        assert_eq!(banner(&json), 2);
        for r in plain.iter().chain(&json) {
            assert!(!s(r, MESSAGE_FIELD).starts_with("[36m"), "{r:?}");
        }
    }

    #[test]
    fn plain_line() {
        assert_eq!(
            decode("2026-11-27T22:58:52.029587460Z [INFO] SAMPLE-007.BacktestEngine: ====="),
            record(
                "2026-11-27T22:58:52.029587460Z",
                "INFO",
                "BacktestEngine",
                "====="
            )
        );
    }

    #[test]
    fn empty_message() {
        let expected = record(
            "2026-11-27T22:58:52.029616804Z",
            "INFO",
            "BacktestEngine",
            "",
        );
        assert_eq!(
            decode("2026-11-27T22:58:52.029616804Z [INFO] SAMPLE-007.BacktestEngine: "),
            expected
        );
        assert_eq!(
            decode("2026-11-27T22:58:52.029616804Z [INFO] SAMPLE-007.BacktestEngine:"),
            expected
        );
    }

    #[test]
    fn message_containing_colon_space() {
        assert_eq!(
            decode("2026-11-27T22:58:52.029620900Z [INFO] SAMPLE-007.BacktestEngine: CPU architecture: AMD EPYC"),
            record("2026-11-27T22:58:52.029620900Z", "INFO", "BacktestEngine", "CPU architecture: AMD EPYC")
        );
        // A message that itself ends in ':' is still split at the first ": ".
        assert_eq!(
            decode("2024-06-03T00:00:00.000000000Z [INFO] SAMPLE-007.BacktestEngine: Balances starting:"),
            record("2024-06-03T00:00:00.000000000Z", "INFO", "BacktestEngine", "Balances starting:")
        );
    }

    #[test]
    fn banner_non_ascii() {
        let art = "⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⣠⣴⣶⡟⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀";
        assert_eq!(
            decode(&format!(
                "2026-11-27T22:58:52.029617064Z [INFO] SAMPLE-007.BacktestEngine: {art}"
            )),
            record(
                "2026-11-27T22:58:52.029617064Z",
                "INFO",
                "BacktestEngine",
                art
            )
        );
        assert_eq!(
            decode("2026-11-27T22:58:52.1Z [INFO] SAMPLE-007.Cache: Integrity check passed in 6μs"),
            record(
                "2026-11-27T22:58:52.100000000Z",
                "INFO",
                "Cache",
                "Integrity check passed in 6μs"
            )
        );
    }

    #[test]
    fn warn_and_other_levels() {
        assert_eq!(
            decode("2024-06-03T00:00:00.000000000Z [WARN] SAMPLE-007.EMACross: Received empty bars response (no data returned)"),
            record("2024-06-03T00:00:00.000000000Z", "WARN", "EMACross", "Received empty bars response (no data returned)")
        );
        for level in ["TRACE", "DEBUG", "WARNING", "ERROR", "CRITICAL"] {
            let r = decode(&format!(
                "2024-06-03T00:00:00Z [{level}] SAMPLE-007.RiskEngine: x"
            ));
            assert_eq!(r[LEVEL_FIELD], json!(level), "{r:?}");
        }
    }

    #[test]
    fn component_with_punctuation_and_trader_as_component() {
        let r =
            decode("2024-06-03T00:00:00Z [INFO] TRADER-001.OrderMatchingEngine(BINANCE): Ready");
        assert_eq!(r[TRADER_ID_FIELD], json!("TRADER-001"));
        assert_eq!(r[COMPONENT_FIELD], json!("OrderMatchingEngine(BINANCE)"));
        let r = decode("2024-06-03T00:00:00Z [INFO] SAMPLE-007.SAMPLE-007: READY");
        assert_eq!(r[COMPONENT_FIELD], json!("SAMPLE-007"));
        // Everything after the first '.' up to ": " is the component, dots included.
        let r = decode("2024-06-03T00:00:00Z [INFO] TRADER-001.Strategy.v2: msg. with: dots");
        assert_eq!(r[COMPONENT_FIELD], json!("Strategy.v2"));
        assert_eq!(r[MESSAGE_FIELD], json!("msg. with: dots"));
    }

    #[test]
    fn timestamp_is_normalized() {
        let r = decode("2026-11-28T00:58:52.029587+02:00 [INFO] TRADER-001.Portfolio: x");
        assert_eq!(r[TIMESTAMP_FIELD], json!("2026-11-27T22:58:52.029587000Z"));
    }

    /// The shape NautilusTrader writes to a colour terminal.
    #[test]
    fn ansi_coloured_line() {
        let line = "\x1b[1m2026-11-27T22:58:52.029587460Z\x1b[0m \x1b[1;33m[WARN] TRADER-001.RiskEngine: \x1b[94mTrading state: \x1b[1;31mHALTED\x1b[0m";
        assert_eq!(
            decode(line),
            json!({
                "timestamp": "2026-11-27T22:58:52.029587460Z",
                "level": "WARN",
                "trader_id": "TRADER-001",
                "component": "RiskEngine",
                "message": "Trading state: HALTED",
            })
            .as_object()
            .unwrap()
            .clone()
        );
    }

    #[test]
    fn ansi_line_that_does_not_parse_keeps_its_codes() {
        let line = "\x1b[1mnot a timestamp\x1b[0m";
        let r = decode(line);
        assert_eq!(r[MESSAGE_FIELD], json!(line));
        assert_eq!(
            r[DECODE_ERROR_FIELD],
            json!("not a NautilusTrader log line: expected an RFC 3339 timestamp at the start")
        );
    }

    #[test]
    fn colour_residue_from_nautilus_file_writer() {
        let r = decode("2024-06-03T00:00:00.000000000Z [INFO] SAMPLE-007.BacktestEngine: [36m SimulatedVenue BINANCE");
        assert_eq!(r[MESSAGE_FIELD], json!(" SimulatedVenue BINANCE"));
        let r = decode("2024-06-03T00:00:00Z [INFO] T-1.C: [1;33m[0mboth");
        assert_eq!(r[MESSAGE_FIELD], json!("both"));
        // Not residue: bracketed text that merely looks similar.
        for message in ["[5m] bars ready", "[m] empty", "[36x] no", "see [36m later"] {
            let r = decode(&format!("2024-06-03T00:00:00Z [INFO] T-1.C: {message}"));
            assert_eq!(r[MESSAGE_FIELD], json!(message));
        }
    }

    #[test]
    fn csi_stripping() {
        let strip = |s: &str| {
            let mut out = String::new();
            strip_csi(s, &mut out);
            out
        };
        assert_eq!(strip("\x1b[1;36mA\x1b[0m"), "A");
        assert_eq!(strip("a\x1b[2Kb\x1b[?25lc"), "abc");
        assert_eq!(strip("é\x1b[38;5;208mü"), "éü");
        // Incomplete or non-CSI escapes lose only the ESC byte.
        assert_eq!(strip("x\x1b[12"), "x[12");
        assert_eq!(strip("x\x1b(By"), "x(By");
        assert_eq!(strip("\x1b"), "");
    }

    #[test]
    fn invalid_utf8() {
        let mut line =
            b"2026-11-27T22:58:52.029587460Z [INFO] SAMPLE-007.BacktestEngine: caf".to_vec();
        line.push(0xe9);
        let r = Decoding::Nautilus.decode(&line);
        assert_eq!(r.len(), 2);
        assert_eq!(r[DECODE_ERROR_FIELD], json!("invalid UTF-8 at byte 68"));
        assert_eq!(
            r[MESSAGE_FIELD],
            json!("2026-11-27T22:58:52.029587460Z [INFO] SAMPLE-007.BacktestEngine: caf\u{fffd}")
        );
    }

    #[test]
    fn truncated_line() {
        let line = "2026-11-27T22:58:52.0Z [INF";
        let r = decode(line);
        assert_eq!(r.len(), 2);
        assert_eq!(r[MESSAGE_FIELD], json!(line));
        assert_eq!(
            r[DECODE_ERROR_FIELD],
            json!("not a NautilusTrader log line: expected [LEVEL] after timestamp")
        );
    }

    #[test]
    fn what_is_missing_is_reported() {
        for (line, what) in [
            ("", "expected an RFC 3339 timestamp at the start"),
            ("hello world", "expected an RFC 3339 timestamp at the start"),
            (
                "2026-13-27T22:58:52Z [INFO] T-1.C: m",
                "expected an RFC 3339 timestamp at the start",
            ),
            ("2026-11-27T22:58:52Z", "expected [LEVEL] after timestamp"),
            (
                "2026-11-27T22:58:52Z [info] T-1.C: m",
                "expected [LEVEL] after timestamp",
            ),
            (
                "2026-11-27T22:58:52Z [] T-1.C: m",
                "expected [LEVEL] after timestamp",
            ),
            (
                "2026-11-27T22:58:52Z  [INFO] T-1.C: m",
                "expected [LEVEL] after timestamp",
            ),
            (
                "2026-11-27T22:58:52Z [INFO]T-1.C: m",
                "expected ' ' after [LEVEL]",
            ),
            ("2026-11-27T22:58:52Z [INFO]", "expected ' ' after [LEVEL]"),
            (
                "2026-11-27T22:58:52Z [INFO] ",
                "expected <trader_id>.<component> after [LEVEL]",
            ),
            (
                "2026-11-27T22:58:52Z [INFO] Done: see a.b",
                "expected <trader_id>.<component> after [LEVEL]",
            ),
            (
                "2026-11-27T22:58:52Z [INFO] .C: m",
                "expected <trader_id>.<component> after [LEVEL]",
            ),
            (
                "2026-11-27T22:58:52Z [INFO] T-1.: m",
                "expected <trader_id>.<component> after [LEVEL]",
            ),
            (
                "2026-11-27T22:58:52Z [INFO] T-1.",
                "expected ': ' after component",
            ),
            (
                "2026-11-27T22:58:52Z [INFO] T-1.C m",
                "expected ': ' after component",
            ),
            (
                "  File \"strategy.py\", line 12, in on_bar",
                "expected an RFC 3339 timestamp at the start",
            ),
        ] {
            let r = decode(line);
            assert_eq!(r[MESSAGE_FIELD], json!(line));
            assert_eq!(
                r[DECODE_ERROR_FIELD],
                json!(format!("not a NautilusTrader log line: {what}")),
                "{line:?}"
            );
        }
    }

    #[test]
    fn carriage_return_is_not_part_of_the_message() {
        let r = Decoding::Nautilus.decode(b"2024-06-03T00:00:00Z [INFO] T-1.C: done\r");
        assert_eq!(r[MESSAGE_FIELD], json!("done"));
        let r = Decoding::Nautilus.decode(b"2024-06-03T00:00:00Z [INFO] T-1.C:\r");
        assert_eq!(r[MESSAGE_FIELD], json!(""));
    }

    #[test]
    fn json_line() {
        let line = r#"{"timestamp":"2026-11-27T22:58:50.274950948Z","trader_id":"SAMPLE-007","level":"INFO","color":"CYAN","component":"BacktestEngine","message":"ok: fine"}"#;
        let mut expected = record(
            "2026-11-27T22:58:50.274950948Z",
            "INFO",
            "BacktestEngine",
            "ok: fine",
        );
        expected.insert(COLOR_FIELD.to_owned(), json!("CYAN"));
        assert_eq!(decode(line), expected);
    }

    #[test]
    fn json_line_normalizes_timestamp_and_strips_ansi_from_message() {
        let line = r#"{"timestamp":"2024-06-03T02:00:00+02:00","trader_id":"T-1","level":"INFO","color":"NORMAL","component":"C","message":"\u001b[36m SimulatedVenue BINANCE\u001b[0m"}"#;
        let r = decode(line);
        assert_eq!(r[TIMESTAMP_FIELD], json!("2024-06-03T00:00:00.000000000Z"));
        assert_eq!(r[MESSAGE_FIELD], json!(" SimulatedVenue BINANCE"));
        assert_eq!(r[COLOR_FIELD], json!("NORMAL"));
        assert_eq!(r.len(), 6);
    }

    #[test]
    fn json_line_with_bad_timestamp_is_kept_and_flagged() {
        let line = r#"{"timestamp":"later","trader_id":"T-1","level":"INFO","color":"NORMAL","component":"C","message":"m"}"#;
        let r = decode(line);
        assert_eq!(r[TIMESTAMP_FIELD], json!("later"));
        assert_eq!(r[MESSAGE_FIELD], json!("m"));
        let reason = s(&r, DECODE_ERROR_FIELD);
        assert!(reason.starts_with("bad timestamp: "), "{reason}");
    }

    #[test]
    fn json_that_is_not_nautilus() {
        let missing = r#"{"timestamp":"2024-06-03T00:00:00Z","level":"INFO","message":"m"}"#;
        let wrong_type = r#"{"timestamp":"2024-06-03T00:00:00Z","trader_id":7,"level":"INFO","color":"NORMAL","component":"C","message":"m"}"#;
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let deep_object = format!("{{\"a\":{}", "[".repeat(10_000));
        for (line, what) in [
            (missing, "JSON object has no \"trader_id\" field"),
            (wrong_type, "JSON field \"trader_id\" is not a string"),
            (
                "{\"a\":",
                "invalid JSON at column 5: EOF while parsing a value",
            ),
            (
                deep_object.as_str(),
                "invalid JSON at column 132: recursion limit exceeded",
            ),
        ] {
            let r = decode(line);
            assert_eq!(r.len(), 2);
            assert_eq!(r[MESSAGE_FIELD], json!(line));
            assert_eq!(
                r[DECODE_ERROR_FIELD],
                json!(format!("not a NautilusTrader log line: {what}"))
            );
        }
        // A JSON array is not JSON-shaped for this decoder, so it is judged as plain text.
        let r = decode(&deep);
        assert_eq!(
            r[DECODE_ERROR_FIELD],
            json!("not a NautilusTrader log line: expected an RFC 3339 timestamp at the start")
        );
    }
}

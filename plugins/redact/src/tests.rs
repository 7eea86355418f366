//! Behaviour through the SDK harness: MessagePack in and out, init and process as the
//! host runs them. Recall over the labelled corpus is in `tests/corpus.rs`.

use super::*;
use sluice_sdk::testing::{Harness, Outcome};
use sluice_sdk::MetricKind;

const KEY: &str = "ZBITDIohmQt6kKuPdHXsfnYBFFTXRmw2Y35j3fFnHZNXAdWwHO0Q3403QBE5OZfc";
const LISTEN: &str = "7FTniXAupMkRbiRtN3pTIW7Bc2nURsZ6LGRHQyDS3V0yJEkAO1yR9lJYr8mu";
const SIG: &str = "b48943dfa1788bc2a55a55781f6888190168e92dedaf6491f07b83af7fd96434";

fn run(config: Value, records: Vec<Record>) -> Outcome {
    let out = sluice_sdk::testing::run::<Redact>(config, records);
    assert_eq!(out.error, None);
    out
}

fn message(config: Value, text: &str) -> String {
    let out = run(config, vec![record!({ "message": text })]);
    out.records[0].message().unwrap().to_owned()
}

fn init_error(config: Value) -> String {
    match Harness::<Redact>::new(config) {
        Ok(_) => panic!("init accepted the config"),
        Err(e) => e,
    }
}

#[test]
fn demo_generator_shapes_keep_their_context() {
    let cases = [
        (
            format!("API key {KEY} has trading permissions"),
            "API key [REDACTED:binance_api_key] has trading permissions".to_owned(),
        ),
        (
            format!("Request header X-MBX-APIKEY: {KEY}"),
            "Request header X-MBX-APIKEY: [REDACTED:binance_api_key]".to_owned(),
        ),
        (format!("Listen key {LISTEN}"), "Listen key [REDACTED:listen_key]".to_owned()),
        (
            format!("Connected to wss://fstream.binance.com/ws/{LISTEN}"),
            "Connected to wss://fstream.binance.com/ws/[REDACTED:listen_key]".to_owned(),
        ),
        (
            format!("Request DELETE /fapi/v1/order?symbol=BTCUSDT&orderId=4000553556&recvWindow=5000&timestamp=1795825373222&signature={SIG}"),
            "Request DELETE /fapi/v1/order?symbol=BTCUSDT&orderId=4000553556&recvWindow=5000&timestamp=1795825373222&signature=[REDACTED:hmac_signature]".to_owned(),
        ),
        (
            "connect postgres://trader:hunter2hunter2@db.internal:5432/nautilus".to_owned(),
            "connect postgres://trader:[REDACTED:url_password]@db.internal:5432/nautilus".to_owned(),
        ),
        (
            "bank account number 12345678901 ok, account_id=BINANCE-001".to_owned(),
            "bank account number [REDACTED:account_number] ok, account_id=BINANCE-001".to_owned(),
        ),
        (
            "pay to DE89 3704 0044 0532 0130 00 today".to_owned(),
            "pay to [REDACTED:iban] today".to_owned(),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(message(Value::Null, &input), expected);
    }
}

#[test]
fn operator_fields_are_kept() {
    let text = "<--[EVT] OrderFilled(instrument_id=BTCUSDT-PERP.BINANCE, client_order_id=O-20240603-000000-001-001-1, venue_order_id=4000553556, account_id=BINANCE-001, trade_id=1234567890, position_id=BTCUSDT-PERP.BINANCE-LONG, last_qty=0.012 BTC, last_px=67_472.5 USDT, ts_event=1717372800000000000, event_id=8a60f86f-d725-44dc-93a3-cdc59588f809) sha256=b48943dfa1788bc2a55a55781f6888190168e92dedaf6491f07b83af7fd96434";
    assert_eq!(message(Value::Null, text), text);
}

#[test]
fn nested_strings_at_any_depth_are_redacted() {
    let out = run(
        Value::Null,
        vec![record!({
            "message": "ok",
            "qty": 1.5,
            "http": {"requests": [
                {"url": format!("https://fapi.binance.com/fapi/v1/order?timestamp=1&signature={SIG}"), "status": 200},
                ["deeper", {"note": format!("Listen key {LISTEN}")}]
            ]}
        })],
    );
    let r = &out.records[0];
    assert_eq!(
        r.get("http.requests").unwrap()[0]["url"],
        "https://fapi.binance.com/fapi/v1/order?timestamp=1&signature=[REDACTED:hmac_signature]"
    );
    assert_eq!(
        r.get("http.requests").unwrap()[1][1]["note"],
        "Listen key [REDACTED:listen_key]"
    );
    assert_eq!(r.get("http.requests").unwrap()[1][0], "deeper");
    assert_eq!(r.get("http.requests").unwrap()[0]["status"], 200);
    assert_eq!(r.get_f64("qty"), Some(1.5));
    assert_eq!(r.message(), Some("ok"));
}

#[test]
fn masked_field_names_match_case_insensitively_at_any_depth() {
    let out = run(
        Value::Null,
        vec![record!({
            "message": "login",
            "Password": "pa ss",
            "user": {"API_KEY": 123, "name": "ops", "token": null, "apiSecret": ""},
            "calls": [{"signature": {"alg": "hmac", "v": "x"}}, {"Authorization": "Basic dXNlcjpwYXNz"}],
        })],
    );
    let r = &out.records[0];
    assert_eq!(r.get_str("Password"), Some("[REDACTED:password]"));
    assert_eq!(r.get_str("user.API_KEY"), Some("[REDACTED:api_key]"));
    assert_eq!(r.get_str("user.name"), Some("ops"));
    assert_eq!(r.get("user.token"), Some(&Value::Null));
    assert_eq!(r.get_str("user.apiSecret"), Some(""));
    assert_eq!(
        r.get("calls").unwrap()[0]["signature"],
        "[REDACTED:signature]"
    );
    assert_eq!(
        r.get("calls").unwrap()[1]["Authorization"],
        "[REDACTED:authorization]"
    );
    assert_eq!(out.metrics.len(), 1);
    assert_eq!(out.metrics[0].labels["category"], "field");
    assert_eq!(out.metrics[0].value, 4.0);
}

#[test]
fn configured_fields_replace_the_default_list() {
    let out = run(
        json!({"fields": ["PIN"]}),
        vec![record!({"pin": "1234", "password": "plain", "note": "password=hunter22"})],
    );
    let r = &out.records[0];
    assert_eq!(r.get_str("pin"), Some("[REDACTED:pin]"));
    assert_eq!(r.get_str("password"), Some("plain"));
    assert_eq!(r.get_str("note"), Some("password=[REDACTED:password]"));
}

#[test]
fn user_patterns_replace_the_match_or_their_secret_group() {
    let config = json!({"patterns": [
        {"name": "desk_code", "pattern": "DESK-[0-9]{4}"},
        {"name": "pin", "pattern": "pin (?P<secret>[0-9]{4,6})\\b"},
    ]});
    let out = run(
        config,
        vec![record!({"message": "DESK-1234 entered pin 998877 and DESK-42"})],
    );
    assert_eq!(
        out.records[0].message(),
        Some("[REDACTED:desk_code] entered pin [REDACTED:pin] and DESK-42")
    );
    let labels: Vec<&str> = out
        .metrics
        .iter()
        .map(|m| m.labels["category"].as_str())
        .collect();
    assert_eq!(labels, ["desk_code", "pin"]);
}

#[test]
fn invalid_user_regex_is_refused_naming_the_pattern() {
    let err = init_error(json!({"patterns": [{"name": "broken_one", "pattern": "key=([a-z"}]}));
    assert!(
        err.contains("`patterns`") && err.contains("`broken_one`"),
        "{err}"
    );
    let err = init_error(json!({"patterns": [{"name": "email", "pattern": "x"}]}));
    assert!(err.contains("`email`") && err.contains("taken"), "{err}");
    let err = init_error(json!({"patterns": [{"name": "has space", "pattern": "x"}]}));
    assert!(err.contains("`has space`"), "{err}");
}

#[test]
fn unknown_categories_are_refused_by_name() {
    let err = init_error(json!({"categories": ["email", "emails", "jwt", "pasword"]}));
    assert!(
        err.contains("`categories`") && err.contains("`emails`") && err.contains("`pasword`"),
        "{err}"
    );
    assert!(!err.contains("`jwt`"), "{err}");
    let err = init_error(json!({"disable": ["ibann"]}));
    assert!(
        err.contains("`disable`") && err.contains("`ibann`"),
        "{err}"
    );
    let err = init_error(json!({"categorie": ["email"]}));
    assert!(err.contains("unknown field `categorie`"), "{err}");
}

#[test]
fn categories_and_disable_choose_what_is_looked_for() {
    let text = format!("ops@example.com Listen key {LISTEN}");
    assert_eq!(
        message(json!({"categories": ["email"]}), &text),
        format!("[REDACTED:email] Listen key {LISTEN}")
    );
    assert_eq!(
        message(json!({"disable": ["email"]}), &text),
        "ops@example.com Listen key [REDACTED:listen_key]"
    );
    assert_eq!(
        message(
            json!({"categories": ["email", "listen_key"], "disable": ["listen_key"]}),
            &text
        ),
        format!("[REDACTED:email] Listen key {LISTEN}")
    );
    assert_eq!(message(json!({"categories": []}), &text), text);
}

fn keyed(var: &str, value: &str, text: &str) -> String {
    std::env::set_var(var, value);
    message(json!({"hash_key_env": var}), text)
}

fn tag_of(output: &str, label: &str) -> String {
    let start = output
        .find(&format!("[REDACTED:{label}:"))
        .expect("a keyed tag")
        + label.len()
        + 11;
    output[start..start + 8].to_owned()
}

#[test]
fn keyed_hash_is_stable_per_secret_and_differs_per_key() {
    let other = "Aa1".repeat(21) + "B";
    let a1 = keyed(
        "SLUICE_REDACT_TEST_KEY_A",
        "key-a",
        &format!("API key {KEY} has trading permissions"),
    );
    let a2 = keyed(
        "SLUICE_REDACT_TEST_KEY_A",
        "key-a",
        &format!("Request header X-MBX-APIKEY: {KEY}"),
    );
    let a3 = keyed(
        "SLUICE_REDACT_TEST_KEY_A",
        "key-a",
        &format!("API key {other} has trading permissions"),
    );
    let b1 = keyed(
        "SLUICE_REDACT_TEST_KEY_B",
        "key-b",
        &format!("API key {KEY} has trading permissions"),
    );
    let (h1, h2, h3, hb) = (
        tag_of(&a1, "binance_api_key"),
        tag_of(&a2, "binance_api_key"),
        tag_of(&a3, "binance_api_key"),
        tag_of(&b1, "binance_api_key"),
    );
    assert!(
        h1.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{h1}"
    );
    assert_eq!(h1, h2, "same secret, same key");
    assert_ne!(h1, h3, "different secret");
    assert_ne!(h1, hb, "different key");
    assert!(!a1.contains(KEY));
    // HMAC-SHA256(key, secret), first 4 bytes in hex.
    let mut mac = HmacSha256::new_from_slice(b"key-a").unwrap();
    mac.update(KEY.as_bytes());
    let digest = mac.finalize().into_bytes();
    let expected: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(h1, expected);
}

#[test]
fn ungranted_hash_key_variable_fails_init_saying_to_grant_it() {
    let err = init_error(json!({"hash_key_env": "SLUICE_REDACT_TEST_NEVER_SET"}));
    assert!(
        err.contains("SLUICE_REDACT_TEST_NEVER_SET")
            && err.contains("grants: {env: [SLUICE_REDACT_TEST_NEVER_SET]}"),
        "{err}"
    );
    std::env::set_var("SLUICE_REDACT_TEST_EMPTY", "");
    let err = init_error(json!({"hash_key_env": "SLUICE_REDACT_TEST_EMPTY"}));
    assert!(err.contains("is empty"), "{err}");
}

#[test]
fn one_counter_update_per_category_per_batch() {
    let mut h = Harness::<Redact>::new(Value::Null).unwrap();
    let batch = vec![
        record!({"message": format!("a&signature={SIG}")}),
        record!({"message": format!("b&signature={SIG} to ops@example.com")}),
        record!({"message": "clean"}),
    ];
    let out = h.process(batch);
    let mut seen: Vec<(String, f64)> = out
        .metrics
        .iter()
        .map(|m| {
            assert_eq!(m.name, "redact_secrets_total");
            assert_eq!(m.kind, MetricKind::Counter);
            (m.labels["category"].clone(), m.value)
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("email".to_owned(), 1.0),
            ("hmac_signature".to_owned(), 2.0)
        ]
    );
    let out = h.process(vec![record!({"message": "clean again"})]);
    assert!(out.metrics.is_empty(), "counts restart per batch");
}

#[test]
fn redacted_output_is_stable_when_redacted_again() {
    let text = format!(
        "API key {KEY} has trading permissions; password=\"a b c\" Authorization: Bearer abc123def456ghi"
    );
    let once = message(Value::Null, &text);
    assert!(
        !once.contains(KEY) && !once.contains("a b c") && !once.contains("abc123def456ghi"),
        "{once}"
    );
    assert_eq!(message(Value::Null, &once), once);
}

#[test]
fn multibyte_text_around_secrets_stays_valid() {
    let text = format!("ключ: API key {KEY}é — signature={SIG}€ Bearer ab12cd34€€ 口座番号 account number 12345678😀");
    let out = message(Value::Null, &text);
    assert!(
        !out.contains(KEY) && !out.contains(SIG) && !out.contains("12345678"),
        "{out}"
    );
    assert!(
        out.starts_with("ключ: API key [REDACTED:binance_api_key]é"),
        "{out}"
    );
}

#[test]
fn pem_blocks_go_whole_even_without_a_footer() {
    let body = "MIIEowIBAAKCAQEA7bq9\nc2VjcmV0IGtleSBtYXRlcmlhbA==";
    let text = format!(
        "key:\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\ndone"
    );
    assert_eq!(
        message(Value::Null, &text),
        "key:\n-----BEGIN RSA PRIVATE KEY-----[REDACTED:private_key]-----END RSA PRIVATE KEY-----\ndone"
    );
    let cut = format!("-----BEGIN PRIVATE KEY-----\n{body}");
    assert_eq!(
        message(Value::Null, &cut),
        "-----BEGIN PRIVATE KEY-----[REDACTED:private_key]"
    );
}

/// Near-misses repeated into megabyte strings: every rule must stay linear. Not timed:
/// completing (and leaving the non-secret bytes alone) is the assertion.
#[test]
fn hostile_input_completes() {
    const MIB: usize = 1 << 20;
    let fill = |unit: &str| unit.repeat(MIB / unit.len() + 1);
    let inputs = [
        fill("signature="),
        "a@".repeat(100_000),
        fill("-----BEGIN RSA PRIVATE KEY-----"),
        fill("password=\""),
        fill("AKIA"),
        fill("eyJ."),
        fill("streams=a/"),
        fill("12345678:"),
        fill("DE89 "),
        fill("://:@"),
        fill("/ws/"),
        fill("x-mbx-apikey: "),
        fill("Bearer "),
        fill("account number "),
        fill("a.b@c.d "),
        "A".repeat(MIB),
        fill("aB3"),
    ];
    let mut h = Harness::<Redact>::new(Value::Null).unwrap();
    for input in inputs {
        let out = h.process(vec![record!({ "message": input.clone() })]);
        assert_eq!(out.error, None);
        let text = out.records[0].message().unwrap();
        assert!(!text.is_empty());
    }
}

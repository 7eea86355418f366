//! Recall per category over at least 1,000 planted secrets, and the share of tokens
//! changed in at least 500 lines without secrets (real NautilusTrader lines, demo
//! generator lines, near-misses). `cargo test -p sluice-plugin-redact --release --test
//! corpus -- --nocapture` prints the table that `docs/plugins/redact.md` quotes.

#[allow(dead_code)]
#[path = "common/corpus.rs"]
mod corpus;

use corpus::{CleanCase, Report, SecretCase};
use serde_json::{Map, Value};
use sluice_plugin_redact::Redact;
use sluice_sdk::testing::Harness;
use sluice_sdk::Record;

const SEED: u64 = 0x5EC2_E7D0;

fn sample_log() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/nautilus/sample.log"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn clean_cases() -> Vec<CleanCase> {
    let mut cases = corpus::nautilus_lines(&sample_log());
    cases.extend(corpus::demo_lines(include_str!(
        "fixtures/demo-clean.jsonl"
    )));
    cases.extend(corpus::near_miss_lines(SEED));
    cases
}

fn redact_all(
    harness: &mut Harness<Redact>,
    records: Vec<Map<String, Value>>,
) -> Vec<Map<String, Value>> {
    let mut out = Vec::with_capacity(records.len());
    for chunk in records.chunks(256) {
        let result = harness.process(chunk.iter().cloned().map(Record::from));
        assert_eq!(result.error, None);
        assert_eq!(result.records.len(), chunk.len());
        out.extend(result.records.into_iter().map(Record::into_map));
    }
    out
}

#[test]
fn recall_is_complete_and_clean_lines_stay_clean() {
    let secrets: Vec<SecretCase> = corpus::secret_cases(SEED, 50);
    let clean = clean_cases();
    assert!(
        secrets.len() >= 1_000 && clean.len() >= 500,
        "{} / {}",
        secrets.len(),
        clean.len()
    );

    let mut harness = Harness::<Redact>::new(Value::Null).unwrap();
    let secret_out = redact_all(
        &mut harness,
        secrets.iter().map(|c| c.record.clone()).collect(),
    );
    let clean_out = redact_all(
        &mut harness,
        clean.iter().map(|c| c.record.clone()).collect(),
    );
    let report = Report::measure(&secrets, &secret_out, &clean, &clean_out);
    report.print();

    assert!(
        report.missed.is_empty(),
        "secrets survived:\n{}",
        report.missed.join("\n")
    );
    for (category, cases, removed, _) in &report.recall {
        assert!(*cases >= 50, "{category}");
        assert_eq!(removed, cases, "{category}");
    }
    assert!(
        report.changed_share() < 0.01,
        "{:.3}% of non-secret tokens changed",
        100.0 * report.changed_share()
    );

    // Secret lines keep what operators need: every field without the secret is intact.
    for (case, out) in secrets.iter().zip(&secret_out) {
        for key in ["timestamp", "level", "trader_id", "component"] {
            assert_eq!(case.record[key], out[key], "{key} of {:?}", case.record);
        }
    }
}

#[test]
fn every_category_is_found_alone_too() {
    // With only its own category enabled, each category still removes all its secrets
    // (no category relies on another catching its secret by accident)...
    let secrets = corpus::secret_cases(SEED ^ 1, 12);
    for &category in &corpus::CATEGORIES {
        let mut harness =
            Harness::<Redact>::new(serde_json::json!({"categories": [category], "fields": []}))
                .unwrap();
        let cases: Vec<&SecretCase> = secrets.iter().filter(|c| c.category == category).collect();
        let out = redact_all(
            &mut harness,
            cases.iter().map(|c| c.record.clone()).collect(),
        );
        for (case, out) in cases.iter().zip(&out) {
            let mut texts = Vec::new();
            corpus::strings(&Value::Object(out.clone()), &mut texts);
            for secret in &case.secrets {
                // ...except the AWS pairs, whose access key id belongs to the other AWS category.
                if category == "aws_secret_access_key" && secret.starts_with("AKIA") {
                    continue;
                }
                assert!(
                    !texts.iter().any(|t| t.contains(secret.as_str())),
                    "{category}: {secret} in {texts:?}"
                );
            }
        }
    }
}

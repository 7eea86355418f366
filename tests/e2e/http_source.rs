//! The http source: delivery-acknowledged 200s, the body size limit (413) and bearer
//! authentication (401), with the token taken from the environment.

use crate::support::{pipeline, Sluice};
use sluice_tests::{free_port, http, read_jsonl, wait_for};
use std::time::Duration;

#[test]
fn accepts_ndjson_and_arrays_and_enforces_size_and_auth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let port = free_port();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "test-token-123\n").unwrap();
    let config = pipeline(
        dir.path(),
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: null}}
sources:
  ingest:
    type: http
    address: 127.0.0.1:{port}
    path: /ingest
    max_body_bytes: 1024
    bearer_token: {{file: {token}}}
sinks:
  out: {{type: file, inputs: [ingest], path: "{d}/out.jsonl"}}
"#,
            token = token_file.display()
        ),
    );
    let sluice = Sluice::start(dir.path(), &config);
    let addr = format!("127.0.0.1:{port}");
    let auth = [("Authorization", "Bearer test-token-123")];
    let up = wait_for(Duration::from_secs(20), || {
        std::net::TcpStream::connect(&addr).ok().map(|_| ())
    });
    assert!(
        up.is_some(),
        "http source did not start:\n{}",
        sluice.log_text()
    );

    let (status, body) = http(
        "POST",
        &addr,
        "/ingest",
        &auth,
        b"{\"n\":1}\n{\"n\":2}\nnot json\n",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("3 records delivered"), "{body}");
    let (status, _) = http("POST", &addr, "/ingest", &auth, br#"[{"n":3},{"n":4}]"#);
    assert_eq!(status, 200);

    let (status, _) = http("POST", &addr, "/ingest", &[], b"{\"n\":5}\n");
    assert_eq!(status, 401);
    let (status, _) = http(
        "POST",
        &addr,
        "/ingest",
        &[("Authorization", "Bearer wrong")],
        b"{\"n\":5}\n",
    );
    assert_eq!(status, 401);
    let big = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(2000));
    let (status, _) = http("POST", &addr, "/ingest", &auth, big.as_bytes());
    assert_eq!(status, 413);

    // The 200s came after the sink wrote the records, so they are in the file now.
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(out.len(), 5, "{out:?}");
    assert_eq!(out[2]["message"], "not json");
    assert!(out[2].contains_key("decode_error"));
    assert_eq!(out[4]["n"], 4);
    assert_eq!(sluice.stop(), 0);
    assert!(
        !sluice_log_contains_secret(dir.path()),
        "the token leaked into the log"
    );
}

fn sluice_log_contains_secret(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("sluice-"))
        .any(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains("test-token-123")
        })
}

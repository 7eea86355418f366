//! Helpers for the end-to-end tests: where the built binary and plugins are, and small
//! utilities to run pipelines and wait for their effects.
//!
//! `scripts/test` builds `target/release/sluice` and the Wasm plugins before running the
//! tests; the helpers say so when something is missing instead of building it themselves,
//! so two cargo processes never fight over the target directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A compiled plugin from `plugins/`, e.g. `plugin_wasm("sluice_plugin_example")`.
pub fn plugin_wasm(name: &str) -> PathBuf {
    let path = workspace_root().join(format!("target/wasm32-wasip1/release/{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/build-plugins` (or `scripts/test`, which does it)",
        path.display()
    );
    path
}

pub fn sluice_bin() -> PathBuf {
    let path = workspace_root().join("target/release/sluice");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release -p sluice` (or `scripts/test`, which does it)",
        path.display()
    );
    path
}

/// Polls `check` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The JSON records of a JSON-lines file (empty if it does not exist yet).
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Map<String, serde_json::Value>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// A free loopback port (bound and released; fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 client for loopback tests, so the tests need no HTTP crate.
pub fn http(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // The server may answer (413) and close before reading a large body.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

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
/// Waits until `path` holds at least `n` lines. Reads only what was appended since the
/// last look, every 100 ms: re-reading a file of hundreds of MiB every few ms would take
/// the CPU from the pipeline under test.
pub fn wait_for_lines(path: &Path, n: usize, timeout: Duration) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let deadline = Instant::now() + timeout;
    let (mut offset, mut lines) = (0u64, 0usize);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if let Ok(mut file) = std::fs::File::open(path) {
            if file.seek(SeekFrom::Start(offset)).is_ok() {
                while let Ok(read) = file.read(&mut buf) {
                    if read == 0 {
                        break;
                    }
                    offset += read as u64;
                    lines += buf[..read].iter().filter(|&&b| b == b'\n').count();
                }
            }
        }
        if lines >= n {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

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

/// Percent-encodes a query-string value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real Prometheus server (Debian package `prometheus`) on loopback, scraping the given
/// targets every second; killed when dropped.
pub struct PrometheusServer {
    child: std::process::Child,
    pub address: String,
}

impl PrometheusServer {
    pub fn start(dir: &Path, targets: &[String]) -> Self {
        let binary = Path::new("/usr/bin/prometheus");
        assert!(
            binary.is_file(),
            "Prometheus is not installed: `apt-get install prometheus` (.ci/run does it)"
        );
        let config = dir.join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sluice\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let child = std::process::Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .unwrap();
        let server = Self { child, address };
        let ready = wait_for(Duration::from_secs(60), || {
            std::net::TcpStream::connect(&server.address).ok()?;
            (http("GET", &server.address, "/-/ready", &[], b"").0 == 200).then_some(())
        });
        assert!(
            ready.is_some(),
            "prometheus did not become ready: {}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        server
    }

    /// An instant query through the HTTP API; returns `data.result`.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let (status, body) = http(
            "GET",
            &self.address,
            &format!("/api/v1/query?query={}", url_encode(promql)),
            &[],
            b"",
        );
        assert_eq!(status, 200, "{promql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `promql` returns at least one sample whose value satisfies `check`.
    pub fn wait_for_value(
        &self,
        promql: &str,
        timeout: Duration,
        check: impl Fn(f64) -> bool,
    ) -> Option<f64> {
        wait_for(timeout, || {
            self.query(promql).iter().find_map(|s| {
                let v: f64 = s["value"][1].as_str()?.parse().ok()?;
                check(v).then_some(v)
            })
        })
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident memory of a running process, in KiB (`VmHWM`), for memory-bound checks.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

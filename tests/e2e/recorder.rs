//! A tiny HTTP server on 127.0.0.1 for webhook-style receivers: records every request and
//! answers as the test says.

use serde_json::Value;
use sluice_tests::wait_for;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) at: Instant,
    pub(crate) path: String,
    pub(crate) body: String,
}

impl Request {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{} sent non-JSON ({e}): {}", self.path, self.body))
    }
}

pub(crate) type Reply = (u16, Vec<(&'static str, String)>, String);
pub(crate) type Responder = dyn Fn(&str, usize) -> Reply + Send + Sync;

/// A tiny HTTP server on 127.0.0.1 that records every request and answers each with what
/// `respond(path, n)` says (`n`: how many requests that path had before).
pub(crate) struct Recorder {
    pub(crate) address: String,
    pub(crate) requests: Arc<Mutex<Vec<Request>>>,
}

impl Recorder {
    pub(crate) fn start(respond: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let respond: Arc<Responder> = Arc::new(respond);
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (log, respond) = (log.clone(), respond.clone());
                std::thread::spawn(move || serve(stream, &log, &*respond));
            }
        });
        Self { address, requests }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub(crate) fn on(&self, prefix: &str) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Waits until `prefix` has at least `n` requests; returns them all.
    pub(crate) fn wait(&self, prefix: &str, n: usize, timeout: Duration) -> Vec<Request> {
        wait_for(timeout, || {
            let got = self.on(prefix);
            (got.len() >= n).then_some(got)
        })
        .unwrap_or_else(|| panic!("{prefix}: fewer than {n} requests: {:#?}", self.on(prefix)))
    }
}

/// One connection: requests until the client closes (keep-alive is honoured).
pub(crate) fn serve(mut stream: TcpStream, log: &Mutex<Vec<Request>>, respond: &Responder) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + 4 + length {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end + 4..head_end + 4 + length]).into_owned();
        buf.drain(..head_end + 4 + length);
        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
        let (status, headers, reply) = {
            let mut log = log.lock().unwrap();
            let before = log.iter().filter(|r| r.path == path).count();
            log.push(Request {
                at: Instant::now(),
                path: path.clone(),
                body,
            });
            respond(&path, before)
        };
        let mut response = format!(
            "HTTP/1.1 {status} Status\r\nContent-Length: {}\r\nContent-Type: application/json\r\n",
            reply.len()
        );
        for (k, v) in headers {
            response.push_str(&format!("{k}: {v}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&reply);
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

pub(crate) fn ok(_: &str, _: usize) -> Reply {
    (200, vec![], "ok".into())
}

//! A receiver that speaks Loki's push API on 127.0.0.1: it decodes the real wire format
//! (snappy block + protobuf with the host's `wire` types, or JSON, optionally gzipped),
//! answers as scripted (2xx, 429 with `Retry-After`, 500, 400 with a reason, or a stall
//! past the sink's timeout) and records every request.

use crate::support::Sluice;
use sluice::sinks::loki::wire;
use sluice_tests::wait_for;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub(crate) type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub(crate) ts: i64,
    pub(crate) line: String,
    pub(crate) metadata: Labels,
}

#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Status {
        code: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Holds the request this long without answering, then closes the connection.
    Stall(Duration),
    /// Answers 204 after this long: a slow but working Loki.
    Slow(Duration),
}

pub(crate) fn status(code: u16) -> Reply {
    Reply::Status {
        code,
        headers: vec![],
        body: String::new(),
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) at: Instant,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Vec<u8>,
    /// The answer given; 0 when the receiver stalled.
    pub(crate) answered: u16,
    pub(crate) streams: Vec<(Labels, Vec<Line>)>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) script: VecDeque<Reply>,
    /// The answer once the script is used up.
    pub(crate) default: Option<Reply>,
    pub(crate) requests: Vec<Request>,
}

pub(crate) struct Receiver {
    pub(crate) _rt: tokio::runtime::Runtime,
    pub(crate) addr: SocketAddr,
    pub(crate) state: Arc<Mutex<State>>,
}

impl Receiver {
    pub(crate) fn start(script: Vec<Reply>) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), script)
    }

    /// On a given address: a sink can be pointed at it before it listens.
    pub(crate) fn start_on(addr: SocketAddr, script: Vec<Reply>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            ..State::default()
        }));
        let listener = rt.block_on(tokio::net::TcpListener::bind(addr)).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = state.clone();
        rt.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Self {
            _rt: rt,
            addr,
            state,
        }
    }

    pub(crate) fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = Some(reply);
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every entry Loki would have stored (those of requests answered 2xx), with its
    /// stream's labels.
    pub(crate) fn delivered(&self) -> Vec<(Labels, Line)> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .flat_map(|r| r.streams)
            .flat_map(|(labels, lines)| lines.into_iter().map(move |l| (labels.clone(), l)))
            .collect()
    }

    pub(crate) fn wait_delivered(&self, n: usize, sluice: &Sluice) -> Vec<(Labels, Line)> {
        // Generous: a loaded 2-core CI machine runs the whole suite at once.
        wait_for(Duration::from_secs(90), || {
            let got = self.delivered();
            (got.len() >= n).then_some(got)
        })
        .unwrap_or_else(|| {
            panic!(
                "expected {n} delivered lines, have {}; requests: {:?}\nlog:\n{}",
                self.delivered().len(),
                self.requests()
                    .iter()
                    .map(|r| r.answered)
                    .collect::<Vec<_>>(),
                sluice.log_text()
            )
        })
    }
}

pub(crate) async fn serve(socket: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(socket);
    loop {
        let mut headers = BTreeMap::new();
        let mut first = String::new();
        if reader.read_line(&mut first).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let streams = decode(&headers, &body);
        let reply = {
            let mut s = state.lock().unwrap();
            let reply = s
                .script
                .pop_front()
                .or_else(|| s.default.clone())
                .unwrap_or_else(|| status(204));
            s.requests.push(Request {
                at: Instant::now(),
                headers,
                body,
                answered: match &reply {
                    Reply::Status { code, .. } => *code,
                    Reply::Stall(_) => 0,
                    Reply::Slow(_) => 204,
                },
                streams,
            });
            reply
        };
        let reply = match reply {
            Reply::Slow(d) => {
                tokio::time::sleep(d).await;
                status(204)
            }
            other => other,
        };
        match reply {
            Reply::Slow(_) => unreachable!("answered above"),
            Reply::Stall(d) => {
                tokio::time::sleep(d).await;
                return;
            }
            Reply::Status {
                code,
                headers,
                body,
            } => {
                let mut text = format!("HTTP/1.1 {code} X\r\nContent-Length: {}\r\n", body.len());
                for (k, v) in headers {
                    text.push_str(&format!("{k}: {v}\r\n"));
                }
                text.push_str("\r\n");
                text.push_str(&body);
                if reader.get_mut().write_all(text.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The push body as Loki reads it: `Content-Type` picks protobuf (always snappy block
/// format) or JSON; `Content-Encoding: gzip` wraps JSON.
pub(crate) fn decode(headers: &BTreeMap<String, String>, body: &[u8]) -> Vec<(Labels, Vec<Line>)> {
    use prost::Message;
    match headers.get("content-type").map(String::as_str) {
        Some("application/x-protobuf") => {
            let raw = snap::raw::Decoder::new()
                .decompress_vec(body)
                .expect("snappy block format");
            let request = wire::PushRequest::decode(&raw[..]).expect("a PushRequest");
            request
                .streams
                .into_iter()
                .map(|s| {
                    assert_eq!(s.hash, 0);
                    let lines = s
                        .entries
                        .into_iter()
                        .map(|e| Line {
                            ts: e.timestamp.expect("every entry has a timestamp").as_nanos(),
                            line: e.line,
                            metadata: e
                                .structured_metadata
                                .into_iter()
                                .map(|p| (p.name, p.value))
                                .collect(),
                        })
                        .collect();
                    (parse_labels(&s.labels), lines)
                })
                .collect()
        }
        Some("application/json") => {
            let raw = match headers.get("content-encoding").map(String::as_str) {
                Some("gzip") => {
                    use std::io::Read;
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(body)
                        .read_to_end(&mut out)
                        .expect("gzip");
                    out
                }
                None => body.to_vec(),
                Some(other) => panic!("unexpected Content-Encoding {other}"),
            };
            let v: serde_json::Value = serde_json::from_slice(&raw).expect("JSON push");
            v["streams"]
                .as_array()
                .expect("streams")
                .iter()
                .map(|s| {
                    let labels = s["stream"]
                        .as_object()
                        .expect("stream labels")
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect();
                    let lines = s["values"]
                        .as_array()
                        .expect("values")
                        .iter()
                        .map(|e| {
                            let e = e.as_array().unwrap();
                            assert!(e.len() == 2 || e.len() == 3, "{e:?}");
                            Line {
                                ts: e[0]
                                    .as_str()
                                    .expect("timestamp as a string")
                                    .parse()
                                    .unwrap(),
                                line: e[1].as_str().unwrap().to_owned(),
                                metadata: e
                                    .get(2)
                                    .map(|m| {
                                        m.as_object()
                                            .unwrap()
                                            .iter()
                                            .map(|(k, v)| {
                                                (k.clone(), v.as_str().unwrap().to_owned())
                                            })
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                            }
                        })
                        .collect();
                    (labels, lines)
                })
                .collect()
        }
        other => panic!("unexpected Content-Type {other:?}"),
    }
}

/// `{a="x", b="y\"z"}` as Loki's parser reads it (Go string escapes).
pub(crate) fn parse_labels(text: &str) -> Labels {
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a label set: {text}"));
    let mut labels = Labels::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') || chars.peek() == Some(&',') {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if name.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('='), "{text}");
        assert_eq!(chars.next(), Some('"'), "{text}");
        let mut value = String::new();
        loop {
            match chars
                .next()
                .unwrap_or_else(|| panic!("unterminated value in {text}"))
            {
                '"' => break,
                '\\' => match chars.next().unwrap() {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    'u' => {
                        let hex: String = (0..4).map(|_| chars.next().unwrap()).collect();
                        value.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                    }
                    c => value.push(c),
                },
                c => value.push(c),
            }
        }
        assert!(
            labels.insert(name, value).is_none(),
            "duplicate label in {text}"
        );
    }
    labels
}

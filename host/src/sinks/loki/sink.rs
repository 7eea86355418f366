//! The run loop: records are encoded into the request being built as they arrive; it is
//! sent when its lines reach `batch.max_bytes` or its oldest record waited
//! `batch.timeout_ms`, on its own task, with at most `concurrency` in flight (when all are
//! busy the loop stops reading, which pushes back on the pipeline).
//!
//! A request holds clones of the acknowledgement tokens of every host batch that put a
//! record into it (a batch split over two requests is in both), and drops them only once
//! Loki answered 2xx, or once refused records were dead-lettered or dropped on purpose.
//! Anything else (abort while retrying, a panic) fails them, so the source does not
//! checkpoint past records Loki never stored. Requests may finish out of order; the file
//! source's checkpoint only advances over the longest delivered prefix, so that is safe.

use super::config::LokiSinkConfig;
use super::encoder::{self, Encoder, Pending, Placement};
use super::service::{Attempt, Service};
use crate::ack::AckToken;
use crate::event::Record;
use crate::sinks::SinkContext;
use crate::telemetry::{ComponentTelemetry, Status};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Acknowledgement tokens that fail unless explicitly released: whatever path drops a
/// request without delivering it (abort, panic) holds its source back.
#[derive(Default)]
struct Held(Vec<AckToken>);

impl Held {
    fn release(mut self) {
        self.0.clear();
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for ack in &self.0 {
            ack.fail();
        }
    }
}

#[derive(Default)]
struct Request {
    pending: Pending,
    acks: Held,
    /// The records themselves, kept only when they may have to go to the dead letter.
    records: Vec<Record>,
    started: Option<Instant>,
}

/// What every request task shares.
struct Shared {
    service: Service,
    telemetry: ComponentTelemetry,
    abort: CancellationToken,
    config: LokiSinkConfig,
    /// Requests currently between a failed attempt and their outcome.
    retrying: AtomicUsize,
    dead_letter: Option<DeadLetter>,
}

pub async fn run(config: LokiSinkConfig, mut cx: SinkContext) -> anyhow::Result<()> {
    let url = config.push_url().map_err(|e| anyhow::anyhow!("url: {e}"))?;
    let service = Service::new(&config, url)?;
    let mut encoder = Encoder::new(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let overflow = overflow_counter(&cx.telemetry, &cx.name);
    let max_bytes = config.batch.max_bytes;
    let timeout = Duration::from_millis(config.batch.timeout_ms);
    let concurrency = config.concurrency;
    let keep_records = config.dead_letter_path.is_some();
    tracing::info!(sink = %cx.name, url = %service.shown_url, "loki sink pushing");
    let shared = Arc::new(Shared {
        service,
        telemetry: cx.telemetry.clone(),
        abort: cx.abort.clone(),
        dead_letter: config.dead_letter_path.clone().map(DeadLetter::new),
        retrying: AtomicUsize::new(0),
        config,
    });
    let mut current = Request::default();
    let mut inflight: JoinSet<()> = JoinSet::new();
    cx.telemetry.set_status(Status::Running, None);

    loop {
        let deadline = current
            .started
            .map(|t| tokio::time::Instant::from_std(t + timeout));
        tokio::select! {
            biased;
            _ = cx.abort.cancelled() => {
                // Dropping `current` fails its tokens; request tasks see the abort too.
                drop(std::mem::take(&mut current));
                while let Some(batch) = cx.input.recv().await {
                    batch.fail();
                }
                while inflight.join_next().await.is_some() {}
                return Ok(());
            }
            Some(joined) = inflight.join_next(), if !inflight.is_empty() => report_panic(&cx.name, joined),
            _ = sleep_until(deadline) => {
                dispatch(&shared, &mut inflight, std::mem::take(&mut current), concurrency).await;
            }
            batch = cx.input.recv(), if inflight.len() < concurrency => {
                let Some(mut batch) = batch else { break };
                cx.telemetry.received(batch.len());
                if batch.is_empty() {
                    continue;
                }
                let acks = std::mem::take(&mut batch.acks);
                let now = Instant::now();
                let received_ns = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as i64);
                let mut attached = false;
                for record in batch.records.drain(..) {
                    if !attached {
                        current.acks.0.extend(acks.iter().cloned());
                        attached = true;
                    }
                    current.started.get_or_insert(now);
                    if encoder.encode(&record, received_ns, now, &mut current.pending) == Placement::Overflow {
                        overflow.inc();
                    }
                    if keep_records {
                        current.records.push(record);
                    }
                    if current.pending.bytes >= max_bytes {
                        dispatch(&shared, &mut inflight, std::mem::take(&mut current), concurrency).await;
                        attached = false;
                    }
                }
            }
        }
    }

    if !current.pending.is_empty() {
        dispatch(&shared, &mut inflight, current, concurrency).await;
    }
    while let Some(joined) = inflight.join_next().await {
        report_panic(&cx.name, joined);
    }
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn report_panic(name: &str, joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined {
        tracing::error!(sink = %name, error = %e, "a loki request task failed; its records were not acknowledged");
    }
}

/// Starts sending `request` once a slot is free.
async fn dispatch(
    shared: &Arc<Shared>,
    inflight: &mut JoinSet<()>,
    request: Request,
    concurrency: usize,
) {
    if request.pending.is_empty() {
        return;
    }
    while inflight.len() >= concurrency {
        if let Some(joined) = inflight.join_next().await {
            report_panic(&shared.telemetry.name, joined);
        }
    }
    inflight.spawn(deliver(shared.clone(), request));
}

/// Sends one request until it is delivered, refused, or the pipeline is torn down.
async fn deliver(shared: Arc<Shared>, request: Request) {
    let Request {
        pending,
        acks,
        records,
        ..
    } = request;
    let count = pending.count;
    let body = encoder::body(
        pending.into_streams(),
        shared.config.format,
        shared.config.compression(),
    );
    let telemetry = &shared.telemetry;
    let mut attempt = 0u32;
    let mut degraded = false;
    loop {
        let outcome = tokio::select! {
            biased;
            _ = shared.abort.cancelled() => break,
            outcome = shared.service.attempt(&body) => outcome,
        };
        match outcome {
            Attempt::Delivered => {
                telemetry.sent("default", count);
                acks.release();
                if degraded && shared.retrying.fetch_sub(1, Ordering::AcqRel) == 1 {
                    telemetry.set_status(Status::Running, None);
                }
                return;
            }
            Attempt::Rejected { status, reason } => {
                rejected(&shared, status, &reason, count, records, acks).await;
                if degraded {
                    shared.retrying.fetch_sub(1, Ordering::AcqRel);
                }
                return;
            }
            Attempt::Retry {
                kind,
                reason,
                after,
            } => {
                telemetry.error(kind);
                telemetry.retry();
                if !degraded {
                    degraded = true;
                    shared.retrying.fetch_add(1, Ordering::AcqRel);
                }
                let delay = after
                    .unwrap_or_else(|| shared.service.backoff.delay(attempt, &mut rand::rng()));
                let message = format!(
                    "push to {} failed: {reason}; retrying in {} ms ({count} records waiting)",
                    shared.service.shown_url,
                    delay.as_millis()
                );
                telemetry.set_status(Status::Degraded, Some(message.clone()));
                telemetry.warn_limited(kind, &message);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shared.abort.cancelled() => break,
                }
                attempt = attempt.saturating_add(1);
            }
        }
    }
    // Torn down before delivery: `acks` fails as it drops.
    if degraded {
        shared.retrying.fetch_sub(1, Ordering::AcqRel);
    }
    drop(acks);
}

/// Loki refused the request's records: dead-letter them if configured, and acknowledge
/// them either way (dropping them is deliberate: sending them again would fail again).
async fn rejected(
    shared: &Shared,
    status: u16,
    reason: &str,
    count: usize,
    records: Vec<Record>,
    acks: Held,
) {
    let telemetry = &shared.telemetry;
    telemetry.error("rejected");
    let error = format!("HTTP {status}: {reason}");
    let outcome = match &shared.dead_letter {
        Some(dead_letter) => match dead_letter.write(&records, status, &error).await {
            Ok(()) => format!("written to the dead letter {}", dead_letter.path.display()),
            Err(e) => {
                telemetry.error("dead_letter_write");
                let message = format!(
                    "Loki refused {count} records ({error}) and they cannot be written to the dead letter {}: {e}; they will be read again after a restart",
                    dead_letter.path.display()
                );
                tracing::error!(sink = %telemetry.name, "{message}");
                if shared.retrying.load(Ordering::Acquire) == 0 {
                    telemetry.set_status(Status::Running, Some(message));
                }
                return; // `acks` fails as it drops
            }
        },
        None => "dropped (set `dead_letter_path` to keep them)".to_owned(),
    };
    telemetry.dropped("loki_rejected", count);
    let message = format!("Loki refused {count} records with {error}; {outcome}");
    telemetry.warn_limited("rejected", &message);
    if shared.retrying.load(Ordering::Acquire) == 0 {
        telemetry.set_status(Status::Running, Some(message));
    }
    acks.release();
}

/// Appends refused records to a JSON-lines file, one writer at a time.
struct DeadLetter {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl DeadLetter {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    async fn write(&self, records: &[Record], status: u16, error: &str) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for record in records {
            serde_json::to_writer(
                &mut buf,
                &serde_json::json!({"loki_error": error, "loki_status": status, "record": record}),
            )
            .expect("JSON maps always serialize");
            buf.push(b'\n');
        }
        let _guard = self.lock.lock().await;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await?;
        file.write_all(&buf).await?;
        file.flush().await?;
        file.sync_data().await
    }
}

/// `sluice_loki_stream_overflow_total{component}`: records sent to the fallback stream.
fn overflow_counter(telemetry: &ComponentTelemetry, name: &str) -> prometheus::IntCounter {
    let counter = prometheus::IntCounter::with_opts(
        prometheus::Opts::new(
            "sluice_loki_stream_overflow_total",
            "Records a loki sink sent to its fallback stream because max_streams was reached.",
        )
        .const_label("component", name),
    )
    .expect("valid metric");
    if let Err(e) = telemetry.registry().register(Box::new(counter.clone())) {
        tracing::debug!(sink = %name, error = %e, "overflow counter not registered");
    }
    counter
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::AckStatus;
    use crate::event::Batch;
    use crate::telemetry::Telemetry;
    use axum::http::StatusCode;
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use tokio::sync::mpsc;

    /// A push endpoint answering the scripted statuses in turn, then `fallback`.
    async fn loki(script: Vec<u16>, fallback: u16) -> (String, Arc<Mutex<Vec<u16>>>) {
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let answered = Arc::new(Mutex::new(Vec::new()));
        let seen = answered.clone();
        let app = axum::Router::new().route(
            "/loki/api/v1/push",
            axum::routing::post(move || {
                let code = script.lock().unwrap().pop_front().unwrap_or(fallback);
                seen.lock().unwrap().push(code);
                async move { StatusCode::from_u16(code).unwrap() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, answered)
    }

    struct Harness {
        input: mpsc::Sender<Batch>,
        abort: CancellationToken,
        sink: tokio::task::JoinHandle<anyhow::Result<()>>,
        telemetry: Telemetry,
    }

    fn start(url: &str, extra: serde_json::Value) -> Harness {
        let mut config = serde_json::json!({
            "inputs": ["x"], "url": url, "batch": {"timeout_ms": 10},
            "retry_initial_backoff_ms": 5, "retry_max_backoff_ms": 20, "concurrency": 2,
        });
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let config: LokiSinkConfig = serde_json::from_value(config).unwrap();
        let telemetry = Telemetry::new();
        let (input, rx) = mpsc::channel(8);
        let abort = CancellationToken::new();
        let cx = SinkContext {
            name: "loki".into(),
            input: rx,
            telemetry: telemetry.component("loki", "sink"),
            abort: abort.clone(),
        };
        Harness {
            input,
            abort,
            sink: tokio::spawn(run(config, cx)),
            telemetry,
        }
    }

    fn batch(n: usize) -> (Batch, std::sync::mpsc::Receiver<AckStatus>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let records = (0..n)
            .map(|i| {
                serde_json::json!({"message": format!("m{i}")})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect();
        let token = AckToken::new(move |s| tx.send(s).unwrap());
        (Batch::new("src".into(), records, Some(token)), rx)
    }

    async fn wait_answers(answered: &Arc<Mutex<Vec<u16>>>, n: usize) {
        for _ in 0..500 {
            if answered.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("only {:?} answered", answered.lock().unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_acknowledged_only_after_a_2xx() {
        let (url, answered) = loki(vec![500, 503], 204).await;
        let h = start(&url, serde_json::json!({}));
        let (b, acked) = batch(3);
        h.input.send(b).await.unwrap();
        wait_answers(&answered, 2).await;
        assert!(acked.try_recv().is_err(), "no ack while Loki fails");
        drop(h.input);
        h.sink.await.unwrap().unwrap();
        assert_eq!(acked.try_recv(), Ok(AckStatus::Delivered));
        assert_eq!(*answered.lock().unwrap(), [500, 503, 204]);
        let text = h.telemetry.encode();
        assert!(
            text.contains(
                r#"sluice_component_sent_events_total{component="loki",output="default"} 3"#
            ),
            "{text}"
        );
        assert_eq!(h.telemetry.health()["loki"].status, Status::Running);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abort_while_retrying_fails_the_batch_even_if_part_of_it_was_delivered() {
        // One record per request: the batch is split over three requests, the first
        // delivered, the others failing until the abort.
        let (url, answered) = loki(vec![204], 500).await;
        let h = start(
            &url,
            serde_json::json!({"batch": {"max_bytes": 1, "timeout_ms": 10}, "concurrency": 1}),
        );
        let (b, acked) = batch(3);
        h.input.send(b).await.unwrap();
        wait_answers(&answered, 4).await;
        assert_eq!(h.telemetry.health()["loki"].status, Status::Degraded);
        assert!(h.telemetry.health()["loki"]
            .last_error
            .as_deref()
            .unwrap()
            .contains("HTTP 500"));
        h.abort.cancel();
        drop(h.input);
        tokio::time::timeout(Duration::from_secs(5), h.sink)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(acked.try_recv(), Ok(AckStatus::Failed));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_records_are_dead_lettered_and_acknowledged_once() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join("dead.jsonl");
        let (url, answered) = loki(vec![400], 204).await;
        let h = start(&url, serde_json::json!({"dead_letter_path": dead}));
        let (b, acked) = batch(2);
        h.input.send(b).await.unwrap();
        wait_answers(&answered, 1).await;
        let (b2, acked2) = batch(1);
        h.input.send(b2).await.unwrap();
        drop(h.input);
        h.sink.await.unwrap().unwrap();
        assert_eq!(
            *answered.lock().unwrap(),
            [400, 204],
            "the 400 is not retried"
        );
        assert_eq!(acked.try_recv(), Ok(AckStatus::Delivered));
        assert_eq!(acked2.try_recv(), Ok(AckStatus::Delivered));
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["record"]["message"], "m1");
        assert_eq!(lines[0]["loki_status"], 400);
        let text = h.telemetry.encode();
        assert!(text.contains(r#"sluice_component_dropped_events_total{component="loki",reason="loki_rejected"} 2"#), "{text}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_letter_that_cannot_be_written_fails_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (url, _) = loki(vec![], 400).await;
        // A directory where the file should be: opening it for append fails.
        let h = start(&url, serde_json::json!({"dead_letter_path": dir.path()}));
        let (b, acked) = batch(1);
        h.input.send(b).await.unwrap();
        drop(h.input);
        h.sink.await.unwrap().unwrap();
        assert_eq!(acked.try_recv(), Ok(AckStatus::Failed));
    }
}

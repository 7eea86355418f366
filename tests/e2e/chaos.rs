//! Failure on purpose, bounded and on loopback only: `kill -9` while a log grows, a Loki
//! that refuses, fails and stalls for 30 s, a disk buffer that fills, a slow sink. Each
//! test asserts what Sluice promises (docs/reliability.md): every line delivered at least
//! once, duplicates only where an acknowledgement had not been saved, memory bounded.

use crate::loki_receiver::{status, Receiver, Reply};
use crate::support::{append, pipeline, Sluice};
use sluice_tests::{free_port, http, peak_rss_kib, plugin_wasm, wait_for};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// file `in.log` → example plugin → loki at `loki`, with the given `buffer:` block.
fn chaos_pipeline(dir: &Path, loki: SocketAddr, admin: u16, buffer: &str) -> PathBuf {
    let d = dir.display();
    pipeline(
        dir,
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: "127.0.0.1:{admin}"}}
sources:
  logs: {{type: file, include: ["{d}/in.log"], decode: json, poll_interval_ms: 20}}
transforms:
  tag:
    inputs: [logs]
    plugin: {plugin}
    config: {{add: {{env: chaos}}}}
sinks:
  loki:
    type: loki
    inputs: [tag]
    url: http://{loki}
    labels: {{job: sluice, env: "{{{{env}}}}"}}
    batch: {{timeout_ms: 100}}
    request_timeout_ms: 3000
    retry_initial_backoff_ms: 100
    retry_max_backoff_ms: 500
    buffer: {buffer}
"#,
            plugin = plugin_wasm("sluice_plugin_example").display(),
        ),
    )
}

fn line(n: usize) -> String {
    format!(
        r#"{{"n":{n},"message":"order {n} {pad}"}}"#,
        pad = "x".repeat(n % 97)
    )
}

fn lines(range: std::ops::Range<usize>) -> impl Iterator<Item = String> {
    range.map(line)
}

/// The `n` of every line Loki stored, in arrival order.
fn delivered(receiver: &Receiver) -> Vec<usize> {
    receiver
        .delivered()
        .iter()
        .map(|(_, l)| {
            let v: serde_json::Value = serde_json::from_str(&l.line).expect("a JSON line");
            assert_eq!(v["env"], "chaos", "went through the plugin: {v}");
            v["n"].as_u64().unwrap() as usize
        })
        .collect()
}

fn wait_all_delivered(receiver: &Receiver, total: usize, sluice: &Sluice) -> Vec<usize> {
    wait_for(Duration::from_secs(120), || {
        let got = delivered(receiver);
        let distinct: BTreeSet<_> = got.iter().copied().collect();
        (distinct.len() >= total).then_some(got)
    })
    .unwrap_or_else(|| {
        let got: BTreeSet<_> = delivered(receiver).into_iter().collect();
        let missing: Vec<_> = (0..total).filter(|n| !got.contains(n)).take(20).collect();
        panic!(
            "{} of {total} lines delivered; first missing {missing:?}\nlog:\n{}",
            got.len(),
            sluice.log_text()
        )
    })
}

/// Lines of `in.log` before the file source's saved checkpoint.
fn checkpointed_lines(dir: &Path) -> usize {
    let Ok(bytes) = std::fs::read(dir.join("data/checkpoints/logs.json")) else {
        return 0;
    };
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    let offset = entries
        .iter()
        .find(|e| e["path"].as_str() == Some(&dir.join("in.log").display().to_string()))
        .map_or(0, |e| e["offset"].as_u64().unwrap() as usize);
    let input = std::fs::read(dir.join("in.log")).unwrap();
    input[..offset.min(input.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

fn metric(admin: u16, prefix: &str) -> f64 {
    let (_, body) = http("GET", &format!("127.0.0.1:{admin}"), "/metrics", &[], b"");
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A small deterministic generator, seeded from the clock and printed, so a failing run
/// can be replayed with `CHAOS_SEED`.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let seed = std::env::var("CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("CHAOS_SEED={seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Appends 40 lines every 20 ms until stopped; returns how many it wrote.
struct Writer {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(path: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicUsize::new(0));
        let (s, w) = (stop.clone(), written.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let n = w.load(Ordering::Relaxed);
                append(&path, lines(n..n + 40));
                w.store(n + 40, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self {
            stop,
            written,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.written.load(Ordering::Relaxed)
    }
}

#[test]
fn twenty_kill_9s_while_the_log_grows_lose_nothing_and_resend_only_what_was_not_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![]);
    let config = chaos_pipeline(dir.path(), receiver.addr, free_port(), "{type: memory}");
    let writer = Writer::start(dir.path().join("in.log"));
    let mut rng = Rng::seeded();
    // (requests received when run k ended, lines checkpointed when run k ended)
    let mut runs = Vec::new();
    for _ in 0..20 {
        let sluice = Sluice::start(dir.path(), &config);
        std::thread::sleep(Duration::from_millis(300 + rng.below(1200)));
        drop(sluice); // SIGKILL, then wait for the process to be gone.
        std::thread::sleep(Duration::from_millis(100));
        runs.push((receiver.requests().len(), checkpointed_lines(dir.path())));
    }
    let total = writer.finish();
    let sluice = Sluice::start(dir.path(), &config);
    wait_all_delivered(&receiver, total, &sluice);
    assert_eq!(sluice.stop(), 0, "a clean stop after the kills");
    assert_eq!(
        checkpointed_lines(dir.path()),
        total,
        "a clean stop checkpoints everything"
    );

    // Split what Loki stored by the run that sent it.
    let requests = receiver.requests();
    let mut seen = BTreeSet::new();
    let mut duplicates = 0;
    let mut start = 0;
    let mut checkpoint_before = 0;
    for (run, &(end, checkpoint)) in runs
        .iter()
        .chain(std::iter::once(&(requests.len(), total)))
        .enumerate()
    {
        let mut this_run = BTreeSet::new();
        for r in &requests[start..end] {
            if !(200..300).contains(&r.answered) {
                continue;
            }
            for (_, stream) in &r.streams {
                for l in stream {
                    let v: serde_json::Value = serde_json::from_str(&l.line).unwrap();
                    let n = v["n"].as_u64().unwrap() as usize;
                    assert!(this_run.insert(n), "run {run} sent line {n} twice");
                    if !seen.insert(n) {
                        duplicates += 1;
                        assert!(
                            n >= checkpoint_before,
                            "run {run} resent line {n}, which the run before had checkpointed \
                             (checkpoint at line {checkpoint_before})"
                        );
                    }
                }
            }
        }
        start = end;
        checkpoint_before = checkpoint;
    }
    assert_eq!(seen.len(), total, "every line at least once");
    assert_eq!(*seen.iter().next_back().unwrap(), total - 1);
    eprintln!("{total} lines, 20 kills, {duplicates} duplicates");
}

#[test]
fn a_loki_that_refuses_fails_and_stalls_for_30_s_gets_everything_after_a_kill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let loki: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin = free_port();
    let config = chaos_pipeline(dir.path(), loki, admin, "{type: disk, max_bytes: 64MiB}");
    let input = dir.path().join("in.log");

    // 10 s of connection refused: the lines go to the disk buffer and are checkpointed.
    let began = Instant::now();
    let sluice = Sluice::start(dir.path(), &config);
    append(&input, lines(0..2000));
    wait_for(Duration::from_secs(30), || {
        (checkpointed_lines(dir.path()) == 2000).then_some(())
    })
    .unwrap_or_else(|| panic!("not handed off to disk\n{}", sluice.log_text()));
    assert!(metric(admin, "sluice_buffer_disk_bytes{component=\"loki\"}") > 0.0);
    std::thread::sleep(Duration::from_secs(10).saturating_sub(began.elapsed()));
    assert!(metric(admin, "sluice_sink_retries_total{component=\"loki\"}") > 0.0);
    drop(sluice); // kill -9 with everything still undelivered

    // 10 s of 500s, after a restart.
    let receiver = Receiver::start_on(loki, vec![]);
    receiver.set_default(Reply::Status {
        code: 500,
        headers: vec![],
        body: "ingester unavailable".into(),
    });
    let sluice = Sluice::start(dir.path(), &config);
    append(&input, lines(2000..4000));
    std::thread::sleep(Duration::from_secs(10));
    assert!(delivered(&receiver).is_empty());
    assert!(receiver.requests().len() > 2, "the sink kept retrying");

    // 10 s of requests that hang past the sink's 3 s timeout (long enough that a loaded
    // machine answering slowly is not taken for a stall and retried).
    receiver.set_default(Reply::Stall(Duration::from_secs(6)));
    append(&input, lines(4000..5000));
    std::thread::sleep(Duration::from_secs(10));
    assert!(delivered(&receiver).is_empty());

    receiver.set_default(status(204));
    let got = wait_all_delivered(&receiver, 5000, &sluice);
    assert_eq!(sluice.stop(), 0);
    let mut counts = BTreeMap::new();
    for n in delivered(&receiver) {
        *counts.entry(n).or_insert(0) += 1;
    }
    assert!(
        counts.values().all(|&c| c == 1),
        "nothing was stored before the recovery, so nothing is stored twice: {:?}",
        counts
            .iter()
            .filter(|(_, &c)| c > 1)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert_eq!(got.len(), 5000);
}

/// Sends 4,000 lines of ~270 bytes (with labels and the plugin's field, well over the
/// 1 MiB buffer) to a Loki that is down.
fn fill_a_small_disk_buffer(dir: &Path, when_full: &str) -> (Sluice, SocketAddr, u16) {
    let loki: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin = free_port();
    let config = chaos_pipeline(
        dir,
        loki,
        admin,
        &format!("{{type: disk, max_bytes: 1MiB, when_full: {when_full}}}"),
    );
    append(
        &dir.join("in.log"),
        (0..4000).map(|n| format!(r#"{{"n":{n},"message":"{n} {}"}}"#, "y".repeat(250))),
    );
    let sluice = Sluice::start(dir, &config);
    wait_for(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", admin)).ok()
    })
    .expect("admin address up");
    (sluice, loki, admin)
}

#[test]
fn a_full_disk_buffer_drops_the_newest_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let (sluice, loki, admin) = fill_a_small_disk_buffer(dir.path(), "drop_newest");
    // Dropping never holds the source back.
    wait_for(Duration::from_secs(30), || {
        (checkpointed_lines(dir.path()) == 4000).then_some(())
    })
    .unwrap_or_else(|| panic!("source held back\n{}", sluice.log_text()));
    let dropped = metric(
        admin,
        "sluice_component_dropped_events_total{component=\"loki\",reason=\"buffer_full\"}",
    ) as usize;
    assert!(
        dropped > 0,
        "4,000 lines do not fit in 1 MiB; metrics:\n{}",
        http("GET", &format!("127.0.0.1:{admin}"), "/metrics", &[], b"").1
    );
    let used = metric(admin, "sluice_buffer_disk_bytes{component=\"loki\"}");
    assert!(used <= (1 << 20) as f64, "{used} bytes in a 1 MiB buffer");
    let receiver = Receiver::start_on(loki, vec![]);
    let kept = 4000 - dropped;
    let got = wait_for(Duration::from_secs(60), || {
        let got = delivered(&receiver);
        (got.len() >= kept).then_some(got)
    })
    .unwrap_or_else(|| {
        panic!(
            "{} of {kept} kept lines arrived",
            delivered(&receiver).len()
        )
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(delivered(&receiver).len(), kept, "no more than was kept");
    // Whole batches are dropped, the ones that came when it was full; what was kept
    // arrives once each.
    let distinct: BTreeSet<usize> = got.iter().copied().collect();
    assert_eq!(distinct.len(), kept, "no duplicates");
    assert!(distinct.contains(&0), "the first batch was kept");
    assert_eq!(sluice.stop(), 0);
}

#[test]
fn a_full_disk_buffer_that_blocks_holds_the_source_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (sluice, loki, admin) = fill_a_small_disk_buffer(dir.path(), "block");
    let held = wait_for(Duration::from_secs(30), || {
        let used = metric(admin, "sluice_buffer_disk_bytes{component=\"loki\"}");
        (used > (512 << 10) as f64).then_some(used)
    })
    .unwrap_or_else(|| panic!("buffer did not fill\n{}", sluice.log_text()));
    std::thread::sleep(Duration::from_secs(2));
    let checkpointed = checkpointed_lines(dir.path());
    assert!(
        checkpointed < 4000,
        "a full buffer pushes back: {checkpointed} lines checkpointed with {held} bytes buffered"
    );
    assert_eq!(
        metric(
            admin,
            "sluice_component_dropped_events_total{component=\"loki\""
        ),
        0.0
    );

    let receiver = Receiver::start_on(loki, vec![]);
    let mut got = wait_all_delivered(&receiver, 4000, &sluice);
    assert_eq!(sluice.stop(), 0);
    got.sort_unstable();
    assert_eq!(got, (0..4000).collect::<Vec<_>>(), "each line exactly once");
    assert_eq!(checkpointed_lines(dir.path()), 4000);
}

#[test]
fn a_slow_sink_keeps_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![]);
    receiver.set_default(Reply::Slow(Duration::from_secs(3)));
    let config = chaos_pipeline(dir.path(), receiver.addr, free_port(), "{type: memory}");
    // 300,000 lines (~46 MB) ready at once; the sink takes 3 s per request.
    append(&dir.path().join("in.log"), lines(0..300_000));
    let sluice = Sluice::start(dir.path(), &config);
    let pid = sluice.pid();
    std::thread::sleep(Duration::from_secs(15));
    let peak = peak_rss_kib(pid).expect("the process is running");
    let delivered = delivered(&receiver).len();
    drop(sluice);
    eprintln!(
        "slow sink: {delivered} of 300000 lines delivered in 15 s, peak RSS {} MiB",
        peak / 1024
    );
    assert!(delivered > 0, "the slow sink still made progress");
    assert!(delivered < 300_000, "the sink was the bottleneck");
    assert!(
        peak < 150 * 1024,
        "peak RSS {} MiB with a slow sink (target ≤ 150 MiB)",
        peak / 1024
    );
}

#[test]
fn sigterm_waits_for_a_failing_sink_and_a_second_signal_exits_at_once_losing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let loki: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin = free_port();
    let config = chaos_pipeline(dir.path(), loki, admin, "{type: memory}");
    append(&dir.path().join("in.log"), lines(0..500));
    let mut sluice = Sluice::start(dir.path(), &config);
    wait_for(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", admin))
            .is_ok_and(|_| metric(admin, "sluice_sink_retries_total") > 0.0)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the sink never tried\n{}", sluice.log_text()));

    sluice.signal("TERM");
    assert_eq!(
        sluice.wait_exit(Duration::from_secs(3)),
        None,
        "the first signal drains: it waits for the sink (up to the 60 s deadline)"
    );
    sluice.signal("TERM");
    assert_eq!(sluice.wait_exit(Duration::from_secs(5)), Some(130));
    let log = std::fs::read_to_string(&sluice.log).unwrap();
    assert!(
        log.contains("second signal: exiting without draining"),
        "{log}"
    );
    assert_eq!(checkpointed_lines(dir.path()), 0, "nothing was delivered");

    let receiver = Receiver::start_on(loki, vec![]);
    let sluice = Sluice::start(dir.path(), &config);
    let mut got = wait_all_delivered(&receiver, 500, &sluice);
    assert_eq!(sluice.stop(), 0);
    got.sort_unstable();
    assert_eq!(got, (0..500).collect::<Vec<_>>());
}

/// http → loki with the given buffer and a 2 s acknowledgement timeout.
fn http_pipeline(dir: &Path, http_port: u16, loki: SocketAddr, buffer: &str) -> PathBuf {
    let d = dir.display();
    pipeline(
        dir,
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: null}}
sources:
  ingest: {{type: http, address: "127.0.0.1:{http_port}", ack_timeout_ms: 2000}}
sinks:
  loki:
    type: loki
    inputs: [ingest]
    url: http://{loki}
    labels: {{job: sluice, env: chaos}}
    batch: {{timeout_ms: 100}}
    retry_initial_backoff_ms: 100
    retry_max_backoff_ms: 500
    buffer: {buffer}
"#
        ),
    )
}

#[test]
fn the_http_source_answers_200_once_records_are_on_disk_and_503_when_nothing_took_them() {
    let dir = tempfile::tempdir().unwrap();
    let loki: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let body: String = (0..100)
        .map(|n| format!("{{\"n\":{n},\"env\":\"chaos\"}}\n"))
        .collect();
    let listening = |sluice: &Sluice| {
        wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&addr).ok()
        })
        .unwrap_or_else(|| panic!("http source not up\n{}", sluice.log_text()));
    };

    // Loki is down and nothing buffers on disk: after 2 s the client is told to retry.
    let memory = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(
        memory.path(),
        &http_pipeline(memory.path(), port, loki, "{type: memory}"),
    );
    listening(&sluice);
    let (status, text) = http("POST", &addr, "/", &[], body.as_bytes());
    assert_eq!(status, 503, "{text}");
    drop(sluice);

    // With a disk buffer the answer is 200 as soon as the records are synced to it, and
    // they survive a kill -9 while Loki is still down.
    let config = http_pipeline(dir.path(), port, loki, "{type: disk, max_bytes: 16MiB}");
    let sluice = Sluice::start(dir.path(), &config);
    listening(&sluice);
    let began = Instant::now();
    let (status, text) = http("POST", &addr, "/", &[], body.as_bytes());
    assert_eq!(status, 200, "{text}");
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "answered at hand-off, not after a timeout"
    );
    drop(sluice);

    let receiver = Receiver::start_on(loki, vec![]);
    let sluice = Sluice::start(dir.path(), &config);
    let got = wait_for(Duration::from_secs(60), || {
        let got = delivered(&receiver);
        (got.len() >= 100).then_some(got)
    })
    .unwrap_or_else(|| panic!("buffered records not delivered\n{}", sluice.log_text()));
    assert_eq!(sluice.stop(), 0);
    let distinct: BTreeSet<usize> = got.into_iter().collect();
    assert_eq!(distinct, (0..100).collect());
}

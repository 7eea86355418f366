//! `sluice bench`: the whole pipeline end to end, measured the way a user would run it. It
//! writes a NautilusTrader log of N lines from the demo generator, starts `sluice run` as a
//! child process on file → redact → enrich → metrics → alerts → Loki sink, ships to a
//! receiver in this process that decodes and counts, and reports events/s, MiB/s, CPU
//! seconds per million events and memory of the child, then the end-to-end latency of a
//! live stream written at a steady rate.

mod receiver;

use crate::sources::demo::generator::{DemoConfig, Generator};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Lines in the throughput phase.
    pub lines: u64,
    /// Lines per second and seconds of the latency phase.
    pub live_rate: u64,
    pub live_seconds: u64,
    /// Where the reference plugins' `.wasm` files are.
    pub plugins: PathBuf,
    /// The `sluice` binary to run.
    pub sluice: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub lines: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_kib: u64,
    /// Idle with the plugins loaded from the compiled cache, as a restarted agent runs.
    pub idle_rss_kib: u64,
    /// Idle right after a first start that compiled the plugins.
    pub idle_first_start_rss_kib: u64,
    pub live_lines: u64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
}

impl Report {
    pub fn events_per_second(&self) -> f64 {
        self.lines as f64 / self.seconds
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |kib: u64| kib as f64 / 1024.0;
        writeln!(
            f,
            "file → redact → enrich → metrics → alerts → Loki (protobuf + snappy), Wasm plugins"
        )?;
        writeln!(
            f,
            "  throughput  {:>10.0} events/s  {:>7.1} MiB/s   ({} lines, {:.1} MiB in {:.2} s)",
            self.events_per_second(),
            self.bytes as f64 / 1048576.0 / self.seconds,
            self.lines,
            self.bytes as f64 / 1048576.0,
            self.seconds
        )?;
        writeln!(
            f,
            "  CPU         {:>10.2} s per million events (user + system, all threads)",
            self.cpu_seconds / self.lines as f64 * 1e6
        )?;
        writeln!(
            f,
            "  memory      {:>10.1} MiB peak RSS under load; idle with 4 plugins loaded: {:.1} MiB \
             (compiled cache), {:.1} MiB (first start, compiling)",
            mib(self.peak_rss_kib),
            mib(self.idle_rss_kib),
            mib(self.idle_first_start_rss_kib)
        )?;
        write!(
            f,
            "  latency     p50 {:.1} ms, p99 {:.1} ms from line stamp to Loki ({} lines at a steady rate)",
            self.latency_p50_ms, self.latency_p99_ms, self.live_lines
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
    #[error("sluice run failed: {reason}\n--- its log ---\n{log}")]
    Pipeline { reason: String, log: String },
}

/// The marker the live phase's lines carry, so the receiver times only those.
const LIVE_TRADER: &str = "BENCH-LIVE";

pub async fn run(
    options: &BenchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, BenchError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| BenchError::Setup(format!("{what}: {e}"));
    for plugin in ["redact", "enrich", "metrics", "alerts"] {
        let path = options.plugins.join(format!("sluice_plugin_{plugin}.wasm"));
        if !path.is_file() {
            return Err(BenchError::Setup(format!(
                "{} is missing: build the plugins (scripts/build-plugins) or pass --plugins DIR",
                path.display()
            )));
        }
    }
    let dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| setup("cannot create a work directory", &e))?;
    let _cleanup = RemoveOnDrop(dir.clone());

    let staged = dir.join("bulk.staging");
    let bytes = generate(&staged, options.lines, progress)
        .map_err(|e| setup("cannot write the log", &e))?;

    let (receiver, counts) = receiver::start(LIVE_TRADER)
        .await
        .map_err(|e| setup("cannot start the Loki receiver", &e))?;
    let admin = free_port().map_err(|e| setup("no free port", &e))?;
    let config = dir.join("bench.yaml");
    std::fs::write(&config, pipeline(&dir, &options.plugins, receiver, admin))
        .map_err(|e| setup("cannot write the pipeline", &e))?;
    let log = dir.join("sluice.log");
    // A first start compiles the plugins into the cache; the measured run is the second
    // start, as an agent that restarts runs. Idle: plugins loaded, nothing to read yet.
    let mut child = Child2::spawn(&options.sluice, &config, &log)?;
    wait_ready(admin, &mut child).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_first_start_rss_kib = child.status_kib("VmRSS").unwrap_or(0);
    child.stop();
    let mut child = Child2::spawn(&options.sluice, &config, &log)?;
    wait_ready(admin, &mut child).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = child.status_kib("VmRSS").unwrap_or(0);

    progress(&format!(
        "running {} lines through the pipeline",
        options.lines
    ));
    let cpu_before = child.cpu_seconds().unwrap_or(0.0);
    let start = Instant::now();
    std::fs::rename(&staged, dir.join("bulk.log"))
        .map_err(|e| setup("cannot move the log in place", &e))?;
    let deadline = Duration::from_secs(120 + options.lines / 5_000);
    let mut last_report = Instant::now();
    loop {
        let got = counts.entries.load(Ordering::Relaxed);
        if got >= options.lines {
            break;
        }
        child.check_running()?;
        if start.elapsed() > deadline {
            return Err(child.failed(format!(
                "only {got} of {} lines reached Loki in {deadline:?}",
                options.lines
            )));
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            progress(&format!(
                "  {got} / {} delivered ({:.0} events/s)",
                options.lines,
                got as f64 / start.elapsed().as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = child.cpu_seconds().unwrap_or(0.0) - cpu_before;
    let peak_rss_kib = child.status_kib("VmHWM").unwrap_or(0);

    progress(&format!(
        "latency: {} lines/s for {} s",
        options.live_rate, options.live_seconds
    ));
    let live_lines = write_live(&dir.join("live.log"), options).await?;
    let wanted = options.lines + live_lines;
    let wait = Instant::now();
    while counts.entries.load(Ordering::Relaxed) < wanted {
        child.check_running()?;
        if wait.elapsed() > Duration::from_secs(60) {
            return Err(child.failed(format!(
                "the live lines did not all reach Loki ({} of {wanted})",
                counts.entries.load(Ordering::Relaxed)
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut latencies = std::mem::take(&mut *counts.latencies_ns.lock().expect("latencies"));
    latencies.sort_unstable();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |ns| *ns as f64 / 1e6)
    };
    let report = Report {
        lines: options.lines,
        bytes,
        seconds,
        cpu_seconds,
        peak_rss_kib,
        idle_rss_kib,
        idle_first_start_rss_kib,
        live_lines,
        latency_p50_ms: quantile(0.50),
        latency_p99_ms: quantile(0.99),
    };
    child.stop();
    if counts.bad_requests.load(Ordering::Relaxed) > 0 {
        return Err(BenchError::Setup(
            "the receiver could not decode some pushes".into(),
        ));
    }
    Ok(report)
}

/// Writes `lines` demo lines (simulated clock: as fast as they can be made) and returns
/// the bytes written.
fn generate(path: &Path, lines: u64, progress: &mut dyn FnMut(&str)) -> std::io::Result<u64> {
    let mut generator = Generator::new(&DemoConfig {
        rate: 0.0,
        ..DemoConfig::default()
    });
    let now = chrono::Utc::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut bytes = 0;
    for i in 0..lines {
        let line = generator.next_line(now).line;
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        bytes += line.len() as u64 + 1;
        if lines >= 10 && i % (lines / 10) == 0 && i > 0 {
            progress(&format!("  generated {i} / {lines} lines"));
        }
    }
    out.flush()?;
    progress(&format!(
        "generated {lines} lines ({:.1} MiB)",
        bytes as f64 / 1048576.0
    ));
    Ok(bytes)
}

/// Appends live lines in 10 ms steps, each stamped with the time it is written.
async fn write_live(path: &Path, options: &BenchOptions) -> Result<u64, BenchError> {
    let io = |e: std::io::Error| BenchError::Setup(format!("cannot write {}: {e}", path.display()));
    let mut generator = Generator::new(&DemoConfig {
        trader_id: LIVE_TRADER.into(),
        ..DemoConfig::default()
    });
    let mut file = std::fs::File::create(path).map_err(io)?;
    let total = options.live_rate * options.live_seconds;
    let start = Instant::now();
    let mut written = 0;
    while written < total {
        let due = ((start.elapsed().as_secs_f64() * options.live_rate as f64) as u64).min(total);
        let mut chunk = String::new();
        for _ in written..due {
            chunk.push_str(&generator.next_line(chrono::Utc::now()).line);
            chunk.push('\n');
        }
        file.write_all(chunk.as_bytes()).map_err(io)?;
        written = due;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(written)
}

fn pipeline(dir: &Path, plugins: &Path, receiver: std::net::SocketAddr, admin: u16) -> String {
    let (d, p) = (dir.display(), plugins.display());
    format!(
        r#"# Written by `sluice bench`.
data_dir: {d}/data
admin: {{address: "127.0.0.1:{admin}"}}
sources:
  bot:
    type: file
    include: ["{d}/bulk.log", "{d}/live.log"]
    decode: nautilus
    read_from: beginning
    poll_interval_ms: 20
transforms:
  redact: {{inputs: [bot], plugin: "{p}/sluice_plugin_redact.wasm", redaction: true}}
  enrich: {{inputs: [redact], plugin: "{p}/sluice_plugin_enrich.wasm", config: {{env: bench, service: hedge-grid}}, on_error: pass}}
  metrics: {{inputs: [enrich], plugin: "{p}/sluice_plugin_metrics.wasm", on_error: pass}}
  alerts: {{inputs: [metrics], plugin: "{p}/sluice_plugin_alerts.wasm", on_error: pass}}
sinks:
  loki:
    type: loki
    inputs: [alerts]
    url: "http://{receiver}"
    labels: {{job: sluice-bench, env: "{{{{env}}}}", level: "{{{{level}}}}"}}
    batch: {{timeout_ms: 100}}
"#
    )
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_ready(admin: u16, child: &mut Child2) -> Result<(), BenchError> {
    let start = Instant::now();
    loop {
        child.check_running()?;
        let ready = reqwest::get(format!("http://127.0.0.1:{admin}/ready"))
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ready {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err(child.failed("not ready after 120 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `sluice run` child and what /proc says about it.
struct Child2 {
    child: Child,
    log: PathBuf,
}

impl Child2 {
    fn spawn(sluice: &Path, config: &Path, log: &Path) -> Result<Self, BenchError> {
        let stderr = std::fs::File::create(log)
            .map_err(|e| BenchError::Setup(format!("cannot create {}: {e}", log.display())))?;
        let child = Command::new(sluice)
            .args(["run", "-c"])
            .arg(config)
            .env("SLUICE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| BenchError::Setup(format!("cannot start {}: {e}", sluice.display())))?;
        Ok(Self {
            child,
            log: log.to_owned(),
        })
    }

    fn failed(&mut self, reason: String) -> BenchError {
        let _ = self.child.kill();
        let _ = self.child.wait();
        BenchError::Pipeline {
            reason,
            log: std::fs::read_to_string(&self.log).unwrap_or_default(),
        }
    }

    fn check_running(&mut self) -> Result<(), BenchError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.failed(format!("it exited ({status})"))),
            Err(e) => Err(self.failed(e.to_string())),
        }
    }

    fn status_kib(&self, key: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// User + system CPU time of every thread so far.
    fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the `(comm)`, which may contain spaces: utime is the 12th, stime the 13th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Some(ticks / per_second)
    }

    fn stop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// An error on the way out must not leave a pipeline running.
impl Drop for Child2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! The `sluice` command line.

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use sluice::config::{self, PipelineConfig};
use sluice::decode::Decoding;
use sluice::plugin::WasmHarness;
use sluice::reload::{LoadPipeline, ReloadHandle};
use sluice::telemetry::Telemetry;
use sluice::topology::Reload;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// jemalloc, as Vector and TiKV ship: under load a third of Sluice's CPU went to glibc's
/// malloc, free and memmove; with jemalloc the pipeline needs a quarter to a half less CPU
/// per event (`docs/performance.md`, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A log shipper that streams records through WebAssembly plugins.
#[derive(Parser)]
#[command(name = "sluice", version, propagate_version = true)]
struct Cli {
    /// Format of Sluice's own log on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SLUICE_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `sluice=debug`.
    #[arg(long, global = true, default_value = "info", env = "SLUICE_LOG")]
    log_level: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Clone)]
struct PipelineArgs {
    /// Pipeline file; repeat to layer overlays on a base (later files win).
    #[arg(short, long = "config", value_name = "FILE")]
    config: Vec<PathBuf>,
    /// Environment overlay: adds `NAME.yaml` from the first file's directory
    /// (`pipelines/base.yaml` when no -c is given).
    #[arg(long, value_name = "NAME", env = "SLUICE_ENV")]
    env: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline (the built-in demo when no -c/--env is given) until SIGINT/SIGTERM.
    Run(PipelineArgs),
    /// Check a pipeline and report every problem with file:line:col; start nothing.
    Validate(PipelineArgs),
    /// Work with one plugin outside a pipeline.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Print the JSON Schema of pipeline files, for editors to complete and check them.
    Schema,
    /// Print the records leaving a component's output as JSON lines, live (redaction still
    /// applies: outputs before a `redaction: true` transform are refused).
    Tap {
        /// `NAME` for a source or a transform's records; `NAME.metrics`, `NAME.alerts`,
        /// `NAME.dead_letter` for a transform's other outputs.
        output: String,
        #[command(flatten)]
        admin: AdminArgs,
        /// Stop after this many records.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// A live table of every component's throughput, drops, errors, plugin latency and
    /// buffer use, from a running Sluice's admin API.
    Top {
        #[command(flatten)]
        admin: AdminArgs,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Print one table (over one interval) and exit, without redrawing the screen.
        #[arg(long)]
        once: bool,
    },
    /// Measure the whole pipeline: N generated NautilusTrader lines through file → redact →
    /// enrich → metrics → alerts → a local Loki receiver; events/s, MiB/s, CPU, memory,
    /// latency.
    Bench {
        /// Lines in the throughput phase.
        #[arg(long, default_value_t = 1_000_000)]
        lines: u64,
        /// A quick run (20,000 lines, 1 s of live lines) that checks everything works.
        #[arg(long)]
        short: bool,
        /// Lines per second in the latency phase.
        #[arg(long, default_value_t = 2_000)]
        live_rate: u64,
        /// Seconds of the latency phase.
        #[arg(long, default_value_t = 5)]
        live_seconds: u64,
        /// Directory of the reference plugins' .wasm (default: beside this binary's
        /// target directory, where scripts/build-plugins puts them).
        #[arg(long)]
        plugins: Option<PathBuf>,
    },
    /// Run the YAML unit tests of transforms (records in; records, metrics, alerts out).
    Test {
        /// Test files (`*.test.yaml`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct AdminArgs {
    /// The admin address of the running Sluice (`admin.address` in its pipeline).
    #[arg(long, env = "SLUICE_ADMIN_ADDRESS", default_value = "127.0.0.1:8686")]
    address: String,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Read lines on stdin, run them through PLUGIN.wasm, write records as JSON lines on
    /// stdout (metric updates, alerts and plugin logs go to stderr).
    Run {
        plugin: PathBuf,
        /// YAML (or JSON) file holding the plugin's `config:` block.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = DecodeArg::Text)]
        decode: DecodeArg,
        /// Records per plugin call.
        #[arg(long, default_value_t = 1024)]
        batch_size: usize,
    },
    /// Create a plugin crate NAME/ that builds to Wasm and passes its generated tests.
    New {
        name: String,
        /// Directory to create it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Path of a Sluice checkout's `sdk/` to depend on (default: the checkout this
        /// binary was built from, if it is still there; otherwise the git repository).
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DecodeArg {
    Text,
    Json,
    Nautilus,
}

impl From<DecodeArg> for Decoding {
    fn from(d: DecodeArg) -> Self {
        match d {
            DecodeArg::Text => Decoding::Text,
            DecodeArg::Json => Decoding::Json,
            DecodeArg::Nautilus => Decoding::Nautilus,
        }
    }
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log_level);
    if let Err(e) = try_main(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn try_main(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run(PipelineArgs {
        config: vec![],
        env: None,
    })) {
        Command::Validate(args) => {
            let config = load(&args)?;
            println!(
                "{}: ok ({} sources, {} transforms, {} sinks)",
                describe(&config),
                config.sources.len(),
                config.transforms.len(),
                config.sinks.len()
            );
            Ok(())
        }
        Command::Run(args) => {
            let config = load(&args)?;
            let reload_args = args.clone();
            let load_again: LoadPipeline = Arc::new(move || load(&reload_args));
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(run(config, load_again))
        }
        Command::Test { files } => unit_tests(&files),
        Command::Bench {
            lines,
            short,
            live_rate,
            live_seconds,
            plugins,
        } => {
            let exe = std::env::current_exe()?;
            let plugins = plugins.unwrap_or_else(|| {
                exe.parent()
                    .and_then(Path::parent)
                    .map(|target| target.join("wasm32-wasip1/release"))
                    .unwrap_or_default()
            });
            let options = sluice::bench::BenchOptions {
                lines: if short { 20_000 } else { lines.max(1) },
                live_rate: live_rate.max(1),
                live_seconds: if short { 1 } else { live_seconds.max(1) },
                plugins,
                sluice: exe,
            };
            let report = client_runtime()?.block_on(sluice::bench::run(&options, &mut |line| {
                eprintln!("{line}")
            }))?;
            println!("{report}");
            Ok(())
        }
        Command::Tap {
            output,
            admin,
            limit,
        } => client_runtime()?.block_on(tap(&admin.address, &output, limit)),
        Command::Top {
            admin,
            interval,
            once,
        } => client_runtime()?.block_on(top(&admin.address, interval.max(0.1), once)),
        Command::Plugin(PluginCommand::New {
            name,
            dir,
            sdk_path,
        }) => plugin_new(&name, &dir, sdk_path),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&config::pipeline_schema())?
            );
            Ok(())
        }
        Command::Plugin(PluginCommand::Run {
            plugin,
            config,
            decode,
            batch_size,
        }) => plugin_run(&plugin, config.as_deref(), decode.into(), batch_size.max(1)),
    }
}

fn describe(config: &PipelineConfig) -> String {
    let files: Vec<String> = config
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    files.join(" + ")
}

/// The files to load: `-c` files, the `--env` overlay, or the embedded demo.
fn load(args: &PipelineArgs) -> anyhow::Result<PipelineConfig> {
    let mut files = args.config.clone();
    if let Some(env) = &args.env {
        if files.is_empty() {
            files.push(PathBuf::from("pipelines/base.yaml"));
        }
        let dir = files[0].parent().map(Path::to_owned).unwrap_or_default();
        files.push(dir.join(format!("{env}.yaml")));
    }
    let loaded = if files.is_empty() {
        tracing::info!("no pipeline given: running the built-in demo (pipelines/demo.yaml)");
        config::load_sources(
            &[(
                PathBuf::from("pipelines/demo.yaml"),
                config::DEMO_PIPELINE.to_owned(),
            )],
            &|name| std::env::var(name).ok(),
        )
    } else {
        config::load_files(&files)
    };
    loaded.map_err(|errors| anyhow::anyhow!("{errors}"))
}

async fn run(config: PipelineConfig, load_again: LoadPipeline) -> anyhow::Result<()> {
    let telemetry = Telemetry::new();
    let shutdown = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let (reload, requests) = ReloadHandle::new();
    let admin = match config.admin.address {
        Some(address) => {
            let (bound, handle) = sluice::admin::serve(
                address,
                telemetry.clone(),
                ready.clone(),
                Some(reload.clone()),
                shutdown.clone(),
            )
            .await?;
            tracing::info!(address = %bound, "admin server: /health /ready /metrics, POST /reload");
            Some(handle)
        }
        None => None,
    };
    tokio::spawn(watch_signals(shutdown.clone(), reload.clone()));
    let pipeline = tokio::spawn(sluice::topology::run(
        config,
        telemetry,
        shutdown.clone(),
        ready,
        Some(Reload {
            load: load_again,
            handle: reload,
            requests,
            watch_files: true,
        }),
    ));
    let result = pipeline.await.context("pipeline task")?;
    shutdown.cancel();
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    result
}

/// SIGHUP: reload. First SIGINT/SIGTERM: drain and stop. Second: exit at once.
async fn watch_signals(shutdown: CancellationToken, reload: ReloadHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload.request("SIGHUP"),
        }
    }
    tracing::info!("stopping: draining the pipeline (signal again to exit at once)");
    shutdown.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::warn!("second signal: exiting without draining");
    std::process::exit(130);
}

fn plugin_run(
    plugin: &Path,
    config: Option<&Path>,
    decoding: Decoding,
    batch_size: usize,
) -> anyhow::Result<()> {
    let config_value = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_yaml_ng::from_str::<serde_json::Value>(&text)
                .with_context(|| format!("{} is not valid YAML", path.display()))?
        }
        None => serde_json::Value::Null,
    };
    let mut harness = WasmHarness::load(plugin, &config_value)?;
    let stdin = std::io::stdin();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut stderr = std::io::stderr();
    let mut batch = Vec::with_capacity(batch_size);
    let mut failures = 0usize;
    let mut lines = stdin.lock().split(b'\n');
    loop {
        let line = lines.next().transpose()?;
        if let Some(line) = &line {
            let mut record = decoding.decode(line);
            record
                .entry("timestamp")
                .or_insert_with(|| sluice::decode::format_timestamp(chrono::Utc::now()).into());
            batch.push(record);
        }
        if batch.len() >= batch_size || (line.is_none() && !batch.is_empty()) {
            match harness.process(&batch) {
                Ok(response) => {
                    for record in &response.records {
                        serde_json::to_writer(&mut stdout, record)?;
                        stdout.write_all(b"\n")?;
                    }
                    stdout.flush()?;
                    for m in &response.metrics {
                        writeln!(stderr, "metric {}", serde_json::to_string(m)?)?;
                    }
                    for a in &response.alerts {
                        writeln!(stderr, "alert {}", serde_json::to_string(a)?)?;
                    }
                    for l in &response.logs {
                        writeln!(stderr, "log {}", serde_json::to_string(l)?)?;
                    }
                    if let Some(error) = response.error {
                        failures += 1;
                        writeln!(
                            stderr,
                            "error: the plugin failed a batch of {}: {error}",
                            batch.len()
                        )?;
                    }
                }
                Err(e) => {
                    failures += 1;
                    writeln!(
                        stderr,
                        "error: the plugin failed a batch of {}: {e}",
                        batch.len()
                    )?;
                    harness = WasmHarness::load(plugin, &config_value)?;
                }
            }
            batch.clear();
        }
        if line.is_none() {
            break;
        }
    }
    if failures > 0 {
        bail!("{failures} batch(es) failed");
    }
    Ok(())
}

fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn admin_get(address: &str, path: &str) -> anyhow::Result<reqwest::Response> {
    let response = reqwest::get(format!("http://{address}{path}"))
        .await
        .with_context(|| format!("cannot reach Sluice's admin API at {address}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        match body["error"].as_str() {
            Some(error) => bail!("{error}"),
            None => bail!("{address}{path} answered {status}"),
        }
    }
    Ok(response)
}

async fn tap(address: &str, output: &str, limit: Option<usize>) -> anyhow::Result<()> {
    let query = limit.map(|n| format!("?limit={n}")).unwrap_or_default();
    let mut response = admin_get(address, &format!("/tap/{output}{query}")).await?;
    eprintln!("tapping `{output}` on {address} (Ctrl-C stops)");
    let skipped_prefix = format!("{{\"{}\":", sluice::admin::TAP_SKIPPED_KEY);
    let mut stdout = std::io::stdout().lock();
    let (mut pending, mut records) = (Vec::new(), 0u64);
    while let Some(chunk) = response.chunk().await? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Some(n) = line.strip_prefix(skipped_prefix.as_bytes()) {
                let n = String::from_utf8_lossy(n);
                eprintln!(
                    "tap: skipped {} batches: this terminal reads slower than `{output}` sends",
                    n.trim().trim_end_matches('}')
                );
            } else {
                stdout.write_all(&line)?;
                records += 1;
            }
        }
        stdout.flush()?;
    }
    eprintln!("tap ended after {records} records");
    Ok(())
}

async fn top(address: &str, interval: f64, once: bool) -> anyhow::Result<()> {
    use sluice::top::{parse_exposition, render, Component, Snapshot};
    async fn scrape(address: &str) -> anyhow::Result<(Vec<Component>, Snapshot)> {
        // `/health` answers 503 while something is degraded: still a component list.
        let health = reqwest::get(format!("http://{address}/health"))
            .await
            .with_context(|| format!("cannot reach Sluice's admin API at {address}"))?
            .bytes()
            .await?;
        let health: serde_json::Value = serde_json::from_slice(&health)?;
        let components = health["components"]
            .as_object()
            .map(|all| {
                all.iter()
                    .map(|(name, c)| Component {
                        name: name.clone(),
                        kind: c["kind"].as_str().unwrap_or("").to_owned(),
                        status: c["status"].as_str().unwrap_or("").to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let metrics = admin_get(address, "/metrics").await?.text().await?;
        Ok((components, Snapshot::new(&parse_exposition(&metrics))))
    }
    let mut before = scrape(address).await?.1;
    let mut at = std::time::Instant::now();
    if !once {
        eprintln!("sampling {address} every {interval} s (Ctrl-C stops)");
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs_f64(interval)).await;
        let (components, after) = scrape(address).await?;
        let seconds = at.elapsed().as_secs_f64();
        at = std::time::Instant::now();
        let table = render(&components, &before, &after, seconds);
        if once {
            print!("{table}");
            return Ok(());
        }
        print!(
            "\x1b[2J\x1b[Hsluice top  {address}  {}  (every {interval} s, Ctrl-C stops)\n\n{table}",
            chrono::Utc::now().format("%H:%M:%S")
        );
        std::io::stdout().flush()?;
        before = after;
    }
}

fn plugin_new(name: &str, dir: &Path, sdk_path: Option<PathBuf>) -> anyhow::Result<()> {
    use sluice::scaffold::{create, Sdk};
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    let sdk = match sdk_path {
        Some(path) => Sdk::Path(std::path::absolute(path)?),
        None if built_from.join("Cargo.toml").is_file() => Sdk::Path(built_from.canonicalize()?),
        None => Sdk::Git(SLUICE_GIT.into()),
    };
    let files = create(dir, name, &sdk)?;
    let root = dir.join(name);
    println!("created {}/", root.display());
    for file in files {
        println!("  {}", file.display());
    }
    println!(
        "next:\n  cd {}\n  cargo test\n  cargo build --release --target wasm32-wasip1\n  sluice test {name}.test.yaml",
        root.display()
    );
    Ok(())
}

/// Where `sluice plugin new` points a plugin's SDK dependency when no checkout is at hand.
const SLUICE_GIT: &str = "https://github.com/sluice/sluice";

/// Prints each test as it is known, with its differences, then a summary; fails if any
/// test failed or any file could not be used.
fn unit_tests(files: &[PathBuf]) -> anyhow::Result<()> {
    let (mut passed, mut failed, mut broken) = (0usize, 0usize, 0usize);
    for file in files {
        println!("{}", file.display());
        match sluice::unit_tests::run_file(file) {
            Err(e) => {
                broken += 1;
                println!("  error: {e}");
            }
            Ok(outcomes) => {
                for outcome in outcomes {
                    if outcome.failures.is_empty() {
                        passed += 1;
                        println!("  ok    {}", outcome.name);
                    } else {
                        failed += 1;
                        println!("  FAIL  {}", outcome.name);
                        for failure in &outcome.failures {
                            println!("        {}", failure.replace('\n', "\n        "));
                        }
                    }
                }
            }
        }
    }
    println!(
        "{} tests: {passed} passed, {failed} failed",
        passed + failed
    );
    if failed > 0 || broken > 0 {
        bail!(
            "{failed} test(s) failed{}",
            if broken > 0 {
                format!(", {broken} file(s) could not be run")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    // Colours only for a person at a terminal: journald, files and log shippers get
    // plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

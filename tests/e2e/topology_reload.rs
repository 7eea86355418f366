//! Pipeline reloads that change the topology while records flow: sources, transforms and
//! sinks added, removed, restarted with new settings and rewired, twenty times, between a
//! hundred plugin builds swapped in (twenty of them broken), with every number of the kept
//! stream delivered exactly once and in order, removed sinks flushed, and counters never
//! reset. And the reloads that must change nothing.

use crate::hot_reload::{build, replace, WRONG_ABI};
use crate::support::{append, Sluice};
use sluice_tests::{free_port, http, read_jsonl, wait_for, wait_for_lines};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What one version of the pipeline has, beside the kept `numbers -> tag -> out` stream.
#[derive(Clone)]
struct Shape {
    /// The `letters` source, also feeding `tag`.
    letters: bool,
    /// Sink `copy` writing `copy-N.jsonl` from these inputs.
    copy: Option<(u32, &'static [&'static str])>,
    /// Transform `audit` on `tag`, into sink `audits`.
    audit: bool,
    /// `tag`'s plugin settings.
    version: u32,
    /// Settings of `out` and `numbers`: a change restarts them.
    out_batches: u32,
    poll_ms: u32,
}

struct Setup {
    dir: tempfile::TempDir,
    admin: String,
    config: PathBuf,
}

impl Setup {
    fn new(shape: &Shape) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plugin.wasm"), build("0")).unwrap();
        let setup = Self {
            admin: format!("127.0.0.1:{}", free_port()),
            config: dir.path().join("pipeline.yaml"),
            dir,
        };
        setup.write(shape);
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, shape: &Shape) {
        let d = self.dir.path().display();
        let mut text = format!(
            "data_dir: {d}/data\nadmin: {{address: \"{}\"}}\nsources:\n  numbers: {{type: file, include: [\"{d}/numbers.log\"], decode: json, poll_interval_ms: {}}}\n",
            self.admin, shape.poll_ms
        );
        let mut tag_inputs = vec!["numbers"];
        if shape.letters {
            text += &format!(
                "  letters: {{type: file, include: [\"{d}/letters.log\"], decode: json, poll_interval_ms: 20}}\n"
            );
            tag_inputs.push("letters");
        }
        text += &format!(
            "transforms:\n  tag: {{inputs: {tag_inputs:?}, plugin: plugin.wasm, config: {{version: v{}}}}}\n",
            shape.version
        );
        if shape.audit {
            text += "  audit: {inputs: [tag], plugin: plugin.wasm, config: {version: audit}}\n";
        }
        text += &format!(
            "sinks:\n  out: {{type: file, inputs: [tag], path: \"{d}/out.jsonl\", buffer: {{type: memory, max_batches: {}}}}}\n",
            shape.out_batches
        );
        if let Some((n, inputs)) = shape.copy {
            text += &format!(
                "  copy: {{type: file, inputs: {inputs:?}, path: \"{d}/copy-{n}.jsonl\"}}\n"
            );
        }
        if shape.audit {
            text +=
                &format!("  audits: {{type: file, inputs: [audit], path: \"{d}/audits.jsonl\"}}\n");
        }
        let tmp = self.config.with_extension("tmp~");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }

    fn post_reload(&self) -> (u16, serde_json::Value) {
        let (status, body) = http("POST", &self.admin, "/reload", &[], b"");
        (
            status,
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
        )
    }

    fn get(&self, path: &str) -> String {
        http("GET", &self.admin, path, &[], b"").1
    }

    fn start(&self) -> Sluice {
        let sluice = Sluice::start(self.dir.path(), &self.config);
        let up = wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&self.admin).ok()?;
            (http("GET", &self.admin, "/ready", &[], b"").0 == 200).then_some(())
        });
        assert!(up.is_some(), "not ready:\n{}", sluice.log_text());
        sluice
    }
}

/// Appends `{"<key>": i}` lines in small bursts until told to stop; returns how many.
fn feed(
    input: PathBuf,
    key: &'static str,
    per_burst: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            append(&input, numbered(key, n as u64..(n + per_burst) as u64));
            n += per_burst;
            std::thread::sleep(Duration::from_millis(10));
        }
        n
    })
}

/// `{"<key>": i}` lines for each `i` in `range`.
fn numbered(key: &'static str, range: std::ops::Range<u64>) -> impl Iterator<Item = String> {
    range.map(move |i| format!(r#"{{"{key}": {i}}}"#))
}

/// The values of `key` in a sink's file, in the order written.
fn values(path: &Path, key: &str) -> Vec<u64> {
    read_jsonl(path)
        .iter()
        .filter_map(|r| r.get(key)?.as_u64())
        .collect()
}

/// What a sink wrote of `key` is one run with no gap and no repeat.
fn assert_contiguous(values: &[u64], what: &str) {
    for pair in values.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "{what}: {} followed by {}",
            pair[0],
            pair[1]
        );
    }
}

fn counter(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{metrics}"))
}

#[test]
fn twenty_topology_changes_under_load_lose_nothing_and_reset_nothing() {
    let mut shape = Shape {
        letters: false,
        copy: None,
        audit: false,
        version: 0,
        out_batches: 8,
        poll_ms: 20,
    };
    let s = Setup::new(&shape);
    let sluice = s.start();
    let stop = Arc::new(AtomicBool::new(false));
    let numbers = feed(s.path("numbers.log"), "n", 20, stop.clone());
    let letters = feed(s.path("letters.log"), "l", 5, stop.clone());

    type Step = (&'static str, fn(&mut Shape));
    let steps: [Step; 20] = [
        ("add a sink", |s| s.copy = Some((1, &["tag"]))),
        ("add a source", |s| s.letters = true),
        ("add a transform and its sink", |s| s.audit = true),
        ("new plugin settings", |s| s.version = 1),
        ("restart the kept sink", |s| s.out_batches = 16),
        ("restart the kept source", |s| s.poll_ms = 25),
        ("give a sink a second input", |s| {
            s.copy = Some((1, &["tag", "letters"]))
        }),
        ("remove a sink", |s| s.copy = None),
        ("remove a source", |s| s.letters = false),
        ("remove a transform and its sink", |s| s.audit = false),
        ("add the sink again", |s| s.copy = Some((2, &["tag"]))),
        ("add the source again", |s| s.letters = true),
        ("plugin settings and the sink at once", |s| {
            s.version = 2;
            s.out_batches = 8
        }),
        ("restart the source again", |s| s.poll_ms = 20),
        ("add the transform again", |s| s.audit = true),
        ("a second input again", |s| {
            s.copy = Some((2, &["tag", "letters"]))
        }),
        ("replace a sink", |s| {
            s.copy = Some((3, &["tag", "letters"]))
        }),
        ("remove the transform, new settings", |s| {
            s.audit = false;
            s.version = 3
        }),
        ("drop the second input", |s| s.copy = Some((3, &["tag"]))),
        ("restart source and sink at once", |s| {
            s.poll_ms = 30;
            s.out_batches = 12
        }),
    ];
    let plugin = s.path("plugin.wasm");
    let (mut swapped, mut refused) = (0, 0);
    for (i, (what, change)) in steps.iter().enumerate() {
        // Five new builds of the plugin file: four good, one of another ABI (refused, then
        // a good one is put back).
        for j in 0..5 {
            let good = j != 2;
            if good {
                replace(&plugin, &build(&format!("{i}.{j}")));
            } else {
                replace(&plugin, WRONG_ABI.as_bytes());
            }
            let (status, body) = s.post_reload();
            if good {
                assert_eq!(status, 200, "build {i}.{j}: {body}");
                swapped += 1;
            } else {
                assert_eq!(status, 422, "the wrong ABI was not refused: {body}");
                refused += 1;
                replace(&plugin, &build(&format!("{i}.{j}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        change(&mut shape);
        s.write(&shape);
        let (status, body) = s.post_reload();
        assert_eq!(status, 200, "reload {} ({what}): {body}", i + 1);
        if *what == "remove a sink" {
            // Flushed before the reload answered: what `copy` got is complete.
            let got = values(&s.path("copy-1.jsonl"), "n");
            assert!(got.len() > 20, "copy-1 got {} records", got.len());
            assert_contiguous(&got, "copy-1, removed");
        }
    }
    assert_eq!((swapped, refused), (80, 20));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (numbers, letters) = (numbers.join().unwrap(), letters.join().unwrap());

    let out = s.path("out.jsonl");
    if !wait_for_lines(&out, numbers + letters, Duration::from_secs(60)) {
        let (n, l) = (values(&out, "n"), values(&out, "l"));
        let missing = |got: &[u64], total: usize| -> Vec<u64> {
            let got: std::collections::BTreeSet<u64> = got.iter().copied().collect();
            (0..total as u64)
                .filter(|i| !got.contains(i))
                .take(20)
                .collect()
        };
        panic!(
            "records missing: {} of {numbers} numbers (first missing {:?}), {} of {letters} letters (first missing {:?}); log:\n{}",
            n.len(),
            missing(&n, numbers),
            l.len(),
            missing(&l, letters),
            sluice.log_text()
        );
    }
    let health = s.get("/health");
    let metrics = s.get("/metrics");
    assert_eq!(sluice.stop(), 0);

    // The kept stream: every number once, in order, each tagged by one version, and
    // versions only move forward.
    let records = read_jsonl(&out);
    let mut next = 0;
    let mut last_version = 0;
    for r in records.iter().filter(|r| r.get("n").is_some()) {
        assert_eq!(
            r["n"], next,
            "number {next} missing, repeated or out of order"
        );
        next += 1;
        let v: u32 = r["plugin_version"].as_str().unwrap()[1..].parse().unwrap();
        assert!(v >= last_version, "number {next} went back to v{v}");
        last_version = v;
    }
    assert_eq!(next as usize, numbers);
    assert_eq!(last_version, 3);
    // The source that came and went: what was written while it was gone is read when it
    // comes back, from its checkpoint.
    let letters_out = values(&out, "l");
    assert_eq!(letters_out, (0..letters as u64).collect::<Vec<_>>());

    // A replaced sink hands over without a gap: copy-2 then copy-3 is one run.
    let mut copies = values(&s.path("copy-2.jsonl"), "n");
    assert!(!copies.is_empty());
    copies.extend(values(&s.path("copy-3.jsonl"), "n"));
    assert_contiguous(&copies, "copy-2 then copy-3");
    assert_eq!(copies.last().copied(), Some(numbers as u64 - 1));
    assert!(!read_jsonl(&s.path("audits.jsonl")).is_empty());

    // Restarted twice, `out` still counts from the first record.
    let received = counter(
        &metrics,
        "sluice_component_received_events_total{component=\"out\",component_kind=\"file\"}",
    );
    assert_eq!(received as usize, numbers + letters);
    // Each change applied once, whether the file watcher or `POST /reload` got there first:
    // 8 components added, 6 removed, 7 restarted, 6 rewired.
    assert_eq!(
        counter(&metrics, "sluice_reloads_total{kind=\"component\"}"),
        27.0
    );
    // Plugin swaps: the three settings changes, and each good build for `tag` and, while
    // it ran, `audit`. The file watcher may try a build before the request does, but a
    // build is swapped in once; a broken one put back quickly may never be seen by it.
    let plugin_swaps = counter(&metrics, "sluice_reloads_total{kind=\"plugin\"}");
    assert!(plugin_swaps >= 83.0, "{plugin_swaps} plugin swaps");
    // Removed components leave /health; kept and added ones are there.
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    let components = health["components"].as_object().unwrap();
    for name in ["numbers", "letters", "tag", "out", "copy"] {
        assert!(components.contains_key(name), "{name} missing: {health}");
    }
    assert!(!components.contains_key("audit"), "{health}");
    assert!(!components.contains_key("audits"), "{health}");
    assert!(
        !metrics.contains("sluice_plugin_info{plugin=\"audit\""),
        "{metrics}"
    );
}

#[test]
fn a_reload_that_cannot_apply_changes_nothing() {
    let shape = Shape {
        letters: false,
        copy: None,
        audit: false,
        version: 0,
        out_batches: 8,
        poll_ms: 20,
    };
    let s = Setup::new(&shape);
    let sluice = s.start();
    append(&s.path("numbers.log"), numbered("n", 0..10));
    assert!(wait_for_lines(
        &s.path("out.jsonl"),
        10,
        Duration::from_secs(20)
    ));
    let original = std::fs::read_to_string(&s.config).unwrap();

    // A new transform whose plugin refuses its config, and a new sink after it: neither
    // starts.
    let with_broken = original.replace(
        "transforms:\n",
        "transforms:\n  broken: {inputs: [numbers], plugin: plugin.wasm, config: {version: x, fail_init: nope}}\n",
    ) + &format!(
        "  copy: {{type: file, inputs: [broken], path: \"{}/copy.jsonl\"}}\n",
        s.dir.path().display()
    );
    std::fs::write(&s.config, with_broken).unwrap();
    let (status, body) = s.post_reload();
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("broken") && error.contains("nope"),
        "{error}"
    );

    // A new admin address needs a restart: refused, naming it.
    std::fs::write(&s.config, original.replace(&s.admin, "127.0.0.1:1")).unwrap();
    let (status, body) = s.post_reload();
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("`admin`") && error.contains("restart"),
        "{error}"
    );

    // Nothing of the refused reloads runs, and the pipeline still flows.
    let health = s.get("/health");
    assert!(
        !health.contains("\"broken\"") && !health.contains("\"copy\""),
        "{health}"
    );
    append(&s.path("numbers.log"), numbered("n", 10..20));
    assert!(wait_for_lines(
        &s.path("out.jsonl"),
        20,
        Duration::from_secs(20)
    ));
    assert!(!s.path("copy.jsonl").exists());
    assert_eq!(sluice.stop(), 0);
}

#[test]
fn a_disk_buffered_sink_replaced_under_load_hands_its_backlog_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let admin = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("pipeline.yaml");
    let write = |n: u32| {
        let text = format!(
            "data_dir: {d}/data\nadmin: {{address: \"{admin}\"}}\nsources:\n  numbers: {{type: file, include: [\"{d}/numbers.log\"], decode: json, poll_interval_ms: 20}}\nsinks:\n  out: {{type: file, inputs: [numbers], path: \"{d}/out-{n}.jsonl\", buffer: {{type: disk, max_bytes: 4MiB}}}}\n"
        );
        let tmp = config.with_extension("tmp~");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &config).unwrap();
    };
    write(0);
    let sluice = Sluice::start(dir.path(), &config);
    let up = wait_for(Duration::from_secs(30), || {
        std::net::TcpStream::connect(&admin).ok()?;
        (http("GET", &admin, "/ready", &[], b"").0 == 200).then_some(())
    });
    assert!(up.is_some(), "not ready:\n{}", sluice.log_text());
    let stop = Arc::new(AtomicBool::new(false));
    let numbers = feed(dir.path().join("numbers.log"), "n", 50, stop.clone());
    for n in 1..=3 {
        std::thread::sleep(Duration::from_millis(300));
        write(n);
        let (status, body) = http("POST", &admin, "/reload", &[], b"");
        assert_eq!(status, 200, "reload {n}: {body}");
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let numbers = numbers.join().unwrap();
    let last = dir.path().join("out-3.jsonl");
    let all = || -> Vec<u64> {
        (0..=3)
            .flat_map(|n| values(&dir.path().join(format!("out-{n}.jsonl")), "n"))
            .collect()
    };
    let complete = wait_for(Duration::from_secs(30), || {
        (all().len() >= numbers).then_some(())
    });
    assert!(
        complete.is_some(),
        "{} of {numbers}; log:\n{}",
        all().len(),
        sluice.log_text()
    );
    assert_eq!(sluice.stop(), 0);
    // Each version of the sink wrote a part, and together they are every number once, in
    // order: what one left in the buffer, the next delivered first.
    assert_eq!(all(), (0..numbers as u64).collect::<Vec<_>>());
    assert!(!values(&last, "n").is_empty());
}

/// A pipeline in `dir` with sources `a` and `b` (files), the chaos plugin at
/// `plugin.wasm`, and whatever `rest` adds (`transforms:` and `sinks:`).
struct Graph {
    dir: tempfile::TempDir,
    admin: String,
    config: PathBuf,
}

impl Graph {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plugin.wasm"), build("g")).unwrap();
        Graph {
            admin: format!("127.0.0.1:{}", free_port()),
            config: dir.path().join("pipeline.yaml"),
            dir,
        }
    }

    fn write(&self, a_poll_ms: u32, rest: &str) {
        let d = self.dir.path().display();
        let text = format!(
            "data_dir: {d}/data\nadmin: {{address: \"{}\"}}\nsources:\n  a: {{type: file, include: [\"{d}/a.log\"], decode: json, poll_interval_ms: {a_poll_ms}}}\n  b: {{type: file, include: [\"{d}/b.log\"], decode: json, poll_interval_ms: 20}}\n{}",
            self.admin,
            rest.replace("DIR", &d.to_string())
        );
        let tmp = self.config.with_extension("tmp~");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }

    fn start(&self) -> Sluice {
        let sluice = Sluice::start(self.dir.path(), &self.config);
        let up = wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&self.admin).ok()?;
            (http("GET", &self.admin, "/ready", &[], b"").0 == 200).then_some(())
        });
        assert!(up.is_some(), "not ready:\n{}", sluice.log_text());
        sluice
    }

    /// Reloads, and answers within `within` (a reload that hangs fails here).
    fn reload(&self, within: Duration) -> (u16, String) {
        let started = std::time::Instant::now();
        let answer = http("POST", &self.admin, "/reload", &[], b"");
        assert!(
            started.elapsed() < within,
            "the reload took {:?}",
            started.elapsed()
        );
        answer
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

const TAG: &str = "plugin: plugin.wasm, config: {version: t}";

/// Every number of `key` from 0 to `total` at least once (a reroute may repeat some).
fn assert_all_arrive(path: &Path, key: &str, total: usize, log: &str) {
    let ok = wait_for(Duration::from_secs(30), || {
        let got: std::collections::BTreeSet<u64> = values(path, key).into_iter().collect();
        (got.len() == total).then_some(())
    });
    assert!(
        ok.is_some(),
        "{} of {total} `{key}` numbers in {}; log:\n{log}",
        values(path, key)
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        path.display()
    );
}

#[test]
fn taking_transforms_out_in_front_of_a_sink_loses_nothing() {
    let g = Graph::new();
    g.write(20, &format!("transforms:\n  t: {{inputs: [a], {TAG}}}\n  c: {{inputs: [t], {TAG}}}\nsinks:\n  s: {{type: file, inputs: [c], path: \"DIR/s.jsonl\"}}\n"));
    let sluice = g.start();
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = feed(g.path("a.log"), "n", 20, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    // Two chained transforms out at once: `t` still hands `c` what it holds, and `c`
    // hands it to `s`.
    g.write(20, "transforms:\n  keep: {inputs: [b], plugin: plugin.wasm}\nsinks:\n  s: {type: file, inputs: [a], path: \"DIR/s.jsonl\"}\n".replace("plugin.wasm}", "plugin.wasm, config: {version: k}}").as_str());
    let (status, body) = g.reload(Duration::from_secs(10));
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(300));
    // And one back in, then out again.
    g.write(20, &format!("transforms:\n  t: {{inputs: [a], {TAG}}}\nsinks:\n  s: {{type: file, inputs: [t], path: \"DIR/s.jsonl\"}}\n"));
    let (status, body) = g.reload(Duration::from_secs(10));
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(300));
    g.write(
        20,
        "sinks:\n  s: {type: file, inputs: [a], path: \"DIR/s.jsonl\"}\n",
    );
    let (status, body) = g.reload(Duration::from_secs(10));
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let total = feeder.join().unwrap();
    assert_all_arrive(&g.path("s.jsonl"), "n", total, &sluice.log_text());
    assert_eq!(sluice.stop(), 0);
}

#[test]
fn moving_sinks_off_restarted_sources_and_removed_transforms_takes_effect_at_once() {
    let g = Graph::new();
    g.write(
        20,
        &format!("transforms:\n  t: {{inputs: [b], {TAG}}}\nsinks:\n  s: {{type: file, inputs: [a, b], path: \"DIR/s.jsonl\"}}\n  r: {{type: file, inputs: [t], path: \"DIR/r1.jsonl\"}}\n"),
    );
    let sluice = g.start();
    append(&g.path("a.log"), numbered("n", 0..10));
    append(&g.path("b.log"), numbered("m", 0..10));
    assert!(wait_for_lines(
        &g.path("s.jsonl"),
        20,
        Duration::from_secs(20)
    ));
    assert!(wait_for_lines(
        &g.path("r1.jsonl"),
        10,
        Duration::from_secs(20)
    ));

    // In one reload: `a` restarts (new poll interval) while `s` stops reading it, and `r`
    // changes (new path) while moving off `t`, which is removed. Both old connections
    // must go: the reload answers promptly, and `s` gets no more of `a`.
    g.write(
        25,
        "sinks:\n  s: {type: file, inputs: [b], path: \"DIR/s.jsonl\"}\n  r: {type: file, inputs: [b], path: \"DIR/r2.jsonl\"}\n",
    );
    let (status, body) = g.reload(Duration::from_secs(10));
    assert_eq!(status, 200, "{body}");
    append(&g.path("a.log"), numbered("n", 10..20));
    append(&g.path("b.log"), numbered("m", 10..20));
    assert!(wait_for_lines(
        &g.path("s.jsonl"),
        30,
        Duration::from_secs(20)
    ));
    assert!(wait_for_lines(
        &g.path("r2.jsonl"),
        10,
        Duration::from_secs(20)
    ));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(values(&g.path("s.jsonl"), "n"), (0..10).collect::<Vec<_>>());
    assert_eq!(
        values(&g.path("r2.jsonl"), "m"),
        (10..20).collect::<Vec<_>>()
    );
    assert_eq!(sluice.stop(), 0);
}

#[test]
fn a_finished_source_stays_finished_and_a_sink_that_cannot_start_is_retried() {
    let g = Graph::new();
    let d = g.dir.path().display().to_string();
    let demo = "  bot: {type: demo, rate: 1000, count: 50}\n";
    let with = |extra_sink: &str| {
        g.write(
            20,
            &format!(
                "sinks:\n  s: {{type: file, inputs: [bot], path: \"DIR/s.jsonl\"}}\n{extra_sink}"
            ),
        );
        // The demo source goes beside `a` and `b`.
        let text = std::fs::read_to_string(&g.config)
            .unwrap()
            .replace("sources:\n", &format!("sources:\n{demo}"));
        std::fs::write(&g.config, text).unwrap();
    };
    with("");
    let sluice = g.start();
    assert!(wait_for_lines(
        &g.path("s.jsonl"),
        50,
        Duration::from_secs(20)
    ));

    // A new sink whose disk buffer cannot be created (a file where its directory goes).
    std::fs::create_dir_all(g.path("data/buffers")).unwrap();
    std::fs::write(g.path("data/buffers/d"), b"in the way").unwrap();
    with(&format!("  d: {{type: file, inputs: [a], path: \"{d}/d.jsonl\", buffer: {{type: disk, max_bytes: 1MiB}}}}\n"));
    let (status, body) = g.reload(Duration::from_secs(10));
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("applied in part") && body.contains("sink `d`"),
        "{body}"
    );
    assert!(!http("GET", &g.admin, "/health", &[], b"")
        .1
        .contains("\"d\""));
    // Cleared, the next reload starts it; the demo, finished, is not started again.
    std::fs::remove_file(g.path("data/buffers/d")).unwrap();
    let (status, body) = g.reload(Duration::from_secs(10));
    assert_eq!(status, 200, "{body}");
    // (This request, or the file watcher's reload of the earlier change, started it.)
    let log = sluice.log_text();
    assert!(log.contains("added=[\"d\"]"), "{log}");
    append(&g.path("a.log"), numbered("n", 0..5));
    assert!(wait_for_lines(
        &g.path("d.jsonl"),
        5,
        Duration::from_secs(20)
    ));
    assert_eq!(read_jsonl(&g.path("s.jsonl")).len(), 50);
    assert_eq!(sluice.stop(), 0);
}

#[test]
fn a_source_a_reload_starts_may_fail_without_stopping_the_pipeline() {
    let g = Graph::new();
    let sinks = "sinks:\n  s: {type: file, inputs: [a], path: \"DIR/s.jsonl\"}\n";
    g.write(20, sinks);
    let sluice = g.start();
    // A new http source on an address something else holds: it cannot bind.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let with_http = |g: &Graph| {
        g.write(20, sinks);
        let text = std::fs::read_to_string(&g.config).unwrap().replace(
            "sources:\n",
            &format!("sources:\n  h: {{type: http, address: \"{address}\"}}\n"),
        );
        std::fs::write(&g.config, text).unwrap();
    };
    with_http(&g);
    let (status, body) = g.reload(Duration::from_secs(10));
    assert_eq!(status, 200, "{body}");
    let health = wait_for(Duration::from_secs(20), || {
        let body = http("GET", &g.admin, "/health", &[], b"").1;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["components"]["h"]["status"] == "degraded").then_some(v)
    })
    .unwrap_or_else(|| panic!("`h` not shown degraded; log:\n{}", sluice.log_text()));
    assert!(
        health["components"]["h"]["last_error"].as_str().is_some(),
        "{health}"
    );
    // The rest keeps running.
    append(&g.path("a.log"), numbered("n", 0..5));
    assert!(wait_for_lines(
        &g.path("s.jsonl"),
        5,
        Duration::from_secs(20)
    ));
    // Once the address is free, the next reload starts it: it was not recorded as running.
    drop(taken);
    let (status, body) = g.reload(Duration::from_secs(10));
    assert_eq!(status, 200, "{body}");
    let running = wait_for(Duration::from_secs(20), || {
        let body = http("GET", &g.admin, "/health", &[], b"").1;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["components"]["h"]["status"] == "running").then_some(())
    });
    assert!(running.is_some(), "log:\n{}", sluice.log_text());
    assert_eq!(sluice.stop(), 0);
}

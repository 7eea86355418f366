//! The read loop of the `file` source. It runs on a blocking thread: file reads are
//! blocking calls, and one thread per file source is cheap.

use super::checkpoint::{Checkpoints, FileId, HEAD_BYTES};
use super::config::{FileSourceConfig, ReadFrom};
use crate::ack::{AckStatus, AckToken};
use crate::event::Batch;
use crate::sources::{LineBatcher, LineSplitter, SourceContext};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHUNK: usize = 64 * 1024;
/// How often acknowledged offsets are saved: what a crash re-reads is at most this much
/// (plus what was in flight). Saving is one small file written, synced and renamed.
const PERSIST_EVERY: Duration = Duration::from_millis(200);
/// How long shutdown waits for the sinks to acknowledge what was read.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

struct Tracked {
    path: PathBuf,
    file: File,
    /// Bytes consumed from the file so far.
    read_pos: u64,
    splitter: LineSplitter,
    head_len: usize,
    /// Polls in a row in which no include glob matched the file.
    unseen: u32,
}

pub(super) fn run(config: FileSourceConfig, cx: SourceContext) -> anyhow::Result<()> {
    let checkpoints = Checkpoints::load(&cx.data_dir.join("checkpoints"), &cx.name)?;
    let excludes: Vec<glob::Pattern> = config
        .exclude
        .iter()
        .filter_map(|p| glob::Pattern::new(p).ok())
        .collect();
    let origin: Arc<str> = cx.name.as_str().into();
    let poll = Duration::from_millis(config.poll_interval_ms.max(10));
    let mut files: BTreeMap<FileId, Tracked> = BTreeMap::new();
    let mut first_scan = true;
    let mut last_persist = Instant::now();
    cx.telemetry
        .set_status(crate::telemetry::Status::Running, None);

    while !cx.shutdown.is_cancelled() {
        for (path, id) in scan(&config.include, &excludes) {
            if let Some(tracked) = files.get_mut(&id) {
                tracked.unseen = 0;
                if tracked.path != path {
                    tracing::info!(source = %cx.name, from = %tracked.path.display(), to = %path.display(), "file renamed; following it");
                    checkpoints.rename(id, &path);
                    tracked.path = path;
                }
                continue;
            }
            match open(
                &path,
                id,
                &checkpoints,
                config.read_from,
                first_scan,
                config.max_line_bytes,
            ) {
                Ok(tracked) => {
                    tracing::info!(source = %cx.name, path = %path.display(), offset = tracked.read_pos, "watching file");
                    files.insert(id, tracked);
                }
                Err(e) => {
                    cx.telemetry.error("open");
                    cx.telemetry
                        .warn_limited("open", &format!("cannot open {}: {e}", path.display()));
                }
            }
        }
        first_scan = false;

        let mut progressed = false;
        let mut retired = Vec::new();
        for (&id, tracked) in files.iter_mut() {
            if cx.shutdown.is_cancelled() {
                break;
            }
            match read_available(id, tracked, &config, &checkpoints, &cx, &origin) {
                Ok(read) => {
                    progressed |= read > 0;
                    if read == 0 && tracked.unseen > 0 {
                        retired.push(id);
                    }
                }
                Err(e) => {
                    cx.telemetry.error("read");
                    cx.telemetry.warn_limited(
                        "read",
                        &format!("cannot read {}: {e}", tracked.path.display()),
                    );
                }
            }
            tracked.unseen += 1;
        }
        for id in retired {
            if let Some(t) = files.remove(&id) {
                tracing::info!(source = %cx.name, path = %t.path.display(), "file gone and read to its end; no longer watching it");
                checkpoints.forget(id);
            }
        }
        if last_persist.elapsed() >= PERSIST_EVERY {
            persist(&checkpoints, &cx);
            last_persist = Instant::now();
        }
        if !progressed {
            sleep_unless_cancelled(&cx, poll);
        }
    }

    // Graceful stop: let in-flight batches reach the sinks, then save where they got to.
    let deadline = Instant::now() + DRAIN_DEADLINE;
    while checkpoints.outstanding() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if checkpoints.outstanding() > 0 {
        tracing::warn!(source = %cx.name, batches = checkpoints.outstanding(), "stopping with unacknowledged batches; they will be read again on restart");
    }
    persist(&checkpoints, &cx);
    Ok(())
}

fn persist(checkpoints: &Checkpoints, cx: &SourceContext) {
    if let Err(e) = checkpoints.persist() {
        cx.telemetry.error("checkpoint");
        cx.telemetry
            .warn_limited("checkpoint", &format!("cannot write checkpoint: {e}"));
    }
}

fn sleep_unless_cancelled(cx: &SourceContext, total: Duration) {
    let until = Instant::now() + total;
    while Instant::now() < until && !cx.shutdown.is_cancelled() {
        std::thread::sleep(Duration::from_millis(10).min(total));
    }
}

fn scan(include: &[String], excludes: &[glob::Pattern]) -> Vec<(PathBuf, FileId)> {
    let mut found = Vec::new();
    for pattern in include {
        let Ok(paths) = glob::glob(pattern) else {
            continue;
        };
        for path in paths.flatten() {
            if excludes.iter().any(|e| e.matches_path(&path)) {
                continue;
            }
            if let Ok(meta) = std::fs::metadata(&path) {
                if meta.is_file() {
                    found.push((
                        path,
                        FileId {
                            dev: meta.dev(),
                            ino: meta.ino(),
                        },
                    ));
                }
            }
        }
    }
    found.sort();
    found.dedup_by_key(|(_, id)| *id);
    found
}

fn read_head(file: &File, n: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0; n];
    let got = file.read_at(&mut buf, 0).ok()?;
    (got == n).then_some(buf)
}

fn open(
    path: &Path,
    id: FileId,
    checkpoints: &Checkpoints,
    read_from: ReadFrom,
    first_scan: bool,
    max_line_bytes: usize,
) -> std::io::Result<Tracked> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let offset = match checkpoints.resume(id, |n| read_head(&file, n)) {
        Some(offset) if offset <= size => offset,
        Some(_) => 0,
        None if read_from == ReadFrom::End && first_scan => size,
        None => 0,
    };
    let head_len = (size as usize).min(HEAD_BYTES);
    let head = read_head(&file, head_len).unwrap_or_default();
    checkpoints.track(id, path, offset, &head);
    file.seek(SeekFrom::Start(offset))?;
    Ok(Tracked {
        path: path.to_owned(),
        file,
        read_pos: offset,
        splitter: LineSplitter::starting_at(max_line_bytes, offset),
        head_len,
        unseen: 0,
    })
}

/// Reads what the file has now, sending a batch whenever `batch_size` lines are ready.
/// Returns the number of bytes read.
fn read_available(
    id: FileId,
    t: &mut Tracked,
    config: &FileSourceConfig,
    checkpoints: &Checkpoints,
    cx: &SourceContext,
    origin: &Arc<str>,
) -> std::io::Result<u64> {
    let size = t.file.metadata()?.len();
    if size < t.read_pos {
        tracing::info!(source = %cx.name, path = %t.path.display(), "file truncated; reading it again from the start");
        t.file.seek(SeekFrom::Start(0))?;
        t.read_pos = 0;
        t.splitter = LineSplitter::new(config.max_line_bytes);
        checkpoints.reset(id);
    }
    let batcher = LineBatcher {
        decoding: config.decode,
        extra: config
            .file_key
            .iter()
            .map(|k| (k.clone(), Value::String(t.path.display().to_string())))
            .collect(),
    };
    let mut buf = vec![0u8; CHUNK];
    let mut lines = Vec::new();
    let mut total = 0u64;
    loop {
        let n = t.file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        t.read_pos += n as u64;
        t.splitter.push(&buf[..n], &mut lines);
        if lines.len() >= config.batch_size {
            emit(id, t, &batcher, &mut lines, checkpoints, cx, origin);
            if cx.shutdown.is_cancelled() {
                break;
            }
        }
    }
    if !lines.is_empty() {
        emit(id, t, &batcher, &mut lines, checkpoints, cx, origin);
    }
    if t.head_len < HEAD_BYTES && t.read_pos > t.head_len as u64 {
        t.head_len = (t.read_pos as usize).min(HEAD_BYTES);
        if let Some(head) = read_head(&t.file, t.head_len) {
            checkpoints.update_head(id, &head);
        }
    }
    Ok(total)
}

fn emit(
    id: FileId,
    t: &Tracked,
    batcher: &LineBatcher,
    lines: &mut Vec<crate::sources::lines::Line>,
    checkpoints: &Checkpoints,
    cx: &SourceContext,
    origin: &Arc<str>,
) {
    let place = t.path.display().to_string();
    let records = batcher.decode_all(lines.drain(..), &place, &cx.telemetry);
    // Offset just past the last complete line: a partial line is read again on restart.
    let end = t.read_pos - t.splitter.pending() as u64;
    let seq = checkpoints.begin(id, end);
    let c = checkpoints.clone();
    let ack = AckToken::new(move |status| c.ack(id, seq, status == AckStatus::Delivered));
    cx.telemetry.received(records.len());
    cx.telemetry.sent("default", records.len());
    cx.out
        .blocking_send(Batch::new(origin.clone(), records, Some(ack)));
}

//! What a disk buffer knows about its segments, shared by its writer, its reader and the
//! acknowledgements coming back from the sink: which segments exist and how long they are,
//! how far the sink has acknowledged (saved to `ack.json`), and how much room is left.

use crate::telemetry::ComponentTelemetry;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A place in the buffer: segment number and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Pos {
    pub segment: u64,
    pub offset: u64,
}

pub struct State {
    /// Segment number → bytes of whole frames in it.
    pub segments: BTreeMap<u64, u64>,
    /// The segment the writer appends to; every lower one is sealed.
    pub writing: u64,
    /// Everything before this was acknowledged by the sink (or skipped as damaged).
    pub acked: Pos,
    /// Frames handed to the sink, in order: (sequence, end position, outcome once known).
    pending: VecDeque<(u64, Pos, Option<bool>)>,
    next_seq: u64,
    pub writer_done: bool,
    saved: Pos,
    last_save: Instant,
}

impl State {
    /// Bytes on disk not yet acknowledged.
    pub fn used(&self) -> u64 {
        let total: u64 = self.segments.values().sum();
        let acked_in_first = match self.segments.first_key_value() {
            Some((&first, _)) if first == self.acked.segment => self.acked.offset,
            _ => 0,
        };
        total - acked_in_first.min(total)
    }
}

pub struct Ledger {
    dir: PathBuf,
    telemetry: ComponentTelemetry,
    pub max_bytes: u64,
    pub state: Mutex<State>,
    /// Signalled when data is committed (for the reader) or room is freed (for the writer).
    pub changed: Condvar,
}

pub fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:016}.seg"))
}

impl Ledger {
    /// Opens the buffer in `dir`: finds the segments left by earlier runs and where the
    /// sink had got to, and starts a new segment for this run's writes (a crash may have
    /// left a torn frame at the end of the last one; the reader skips it as damage).
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        telemetry: ComponentTelemetry,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut segments = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            segments.insert(n, entry.metadata()?.len());
        }
        let saved: Option<Pos> = std::fs::read(dir.join("ack.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let first = segments.keys().next().copied();
        let acked = match (saved, first) {
            (Some(p), Some(f)) if p.segment >= f => p,
            (_, Some(f)) => Pos {
                segment: f,
                offset: 0,
            },
            (Some(p), None) => p,
            (None, None) => Pos::default(),
        };
        for (&n, _) in segments.range(..acked.segment) {
            std::fs::remove_file(segment_path(dir, n))?;
        }
        segments.retain(|&n, _| n >= acked.segment);
        let writing = segments.keys().last().map_or(acked.segment, |&n| n) + 1;
        std::fs::File::create(segment_path(dir, writing))?;
        segments.insert(writing, 0);
        Ok(Self {
            dir: dir.to_owned(),
            telemetry,
            max_bytes,
            state: Mutex::new(State {
                segments,
                writing,
                acked,
                pending: VecDeque::new(),
                next_seq: 0,
                writer_done: false,
                saved: acked,
                last_save: Instant::now(),
            }),
            changed: Condvar::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Registers a frame handed to the sink; its acknowledgement calls [`Self::complete`].
    pub fn track(&self, end: Pos) -> u64 {
        let mut state = self.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        state.pending.push_back((seq, end, None));
        seq
    }

    /// A damaged region was skipped: nothing to wait for before it.
    pub fn skip(&self, end: Pos) {
        let seq = self.track(end);
        self.complete(seq, true);
    }

    /// The sink's outcome for frame `seq`. The acknowledged position moves over every
    /// delivered frame at the front; a failed one holds it, so the next run sends it again.
    pub fn complete(&self, seq: u64, delivered: bool) {
        let mut state = self.lock();
        if let Some(entry) = state.pending.iter_mut().find(|e| e.0 == seq) {
            entry.2 = Some(delivered);
        }
        let mut moved = false;
        while let Some(&(_, end, Some(true))) = state.pending.front() {
            state.acked = end;
            state.pending.pop_front();
            moved = true;
        }
        if !moved {
            return;
        }
        let acked = state.acked.segment;
        let gone: Vec<u64> = state.segments.range(..acked).map(|(&n, _)| n).collect();
        for n in gone {
            state.segments.remove(&n);
            if let Err(e) = std::fs::remove_file(segment_path(&self.dir, n)) {
                tracing::warn!(path = %segment_path(&self.dir, n).display(), error = %e, "cannot delete a delivered buffer segment");
            }
        }
        self.telemetry.buffer_bytes(state.used(), self.max_bytes);
        if state.last_save.elapsed() >= Duration::from_millis(100) {
            save(&self.dir, &mut state);
        }
        self.changed.notify_all();
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if let Ok(state) = self.state.get_mut() {
            save(&self.dir, state);
        }
    }
}

/// Writes the acknowledged position (atomically: a torn `ack.json` would resend all).
pub fn save(dir: &Path, state: &mut State) {
    if state.saved == state.acked {
        return;
    }
    let tmp = dir.join("ack.json.tmp");
    let written = serde_json::to_vec(&state.acked)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, dir.join("ack.json")));
    match written {
        Ok(()) => state.saved = state.acked,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot save the disk buffer's position; a restart may send some records again")
        }
    }
    state.last_save = Instant::now();
}

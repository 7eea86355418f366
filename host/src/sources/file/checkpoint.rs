//! Acknowledged read positions per file identity, persisted atomically.
//!
//! A file is identified by device and inode plus a hash of its first bytes, so a deleted
//! file whose inode is reused is not mistaken for the old one. The saved offset of a file
//! only moves past a batch once that batch and every earlier one were delivered; a batch
//! that failed holds it back, so a restart reads it again (at-least-once).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How many leading bytes identify a file's content.
pub const HEAD_BYTES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Entry {
    path: PathBuf,
    dev: u64,
    ino: u64,
    offset: u64,
    /// sha256 (hex, first 16 digits) of the first `head_len` bytes.
    head: String,
    head_len: usize,
}

#[derive(Default)]
struct FileAcks {
    path: PathBuf,
    head: String,
    head_len: usize,
    acked: u64,
    /// (batch sequence, offset after the batch, delivered?) in read order.
    pending: VecDeque<(u64, u64, Option<bool>)>,
    next_seq: u64,
}

#[derive(Default)]
struct State {
    files: BTreeMap<FileId, FileAcks>,
    /// Entries loaded from disk that no open file has claimed yet.
    saved: Vec<Entry>,
    dirty: bool,
}

#[derive(Clone)]
pub struct Checkpoints {
    path: PathBuf,
    state: Arc<Mutex<State>>,
}

pub fn head_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

impl Checkpoints {
    /// Loads `<dir>/<source>.json`. A corrupted file is moved aside and reported, and the
    /// source starts as if new (it may then re-read data: duplicates, never loss).
    pub fn load(dir: &Path, source: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{source}.json"));
        let saved = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Vec<Entry>>(&bytes) {
                Ok(entries) => entries,
                Err(e) => {
                    let aside = path.with_extension("json.corrupt");
                    tracing::error!(
                        source, path = %path.display(), error = %e,
                        "checkpoint file is corrupted; moved to {} and starting from `read_from`", aside.display()
                    );
                    std::fs::rename(&path, aside)?;
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            path,
            state: Arc::new(Mutex::new(State {
                saved,
                ..State::default()
            })),
        })
    }

    /// The acknowledged offset of a file seen before, matched by identity and content.
    /// `read_head` reads the file's first `n` bytes.
    pub fn resume(&self, id: FileId, read_head: impl Fn(usize) -> Option<Vec<u8>>) -> Option<u64> {
        let mut state = self.state.lock().unwrap();
        let pos = state.saved.iter().position(|e| {
            e.dev == id.dev
                && e.ino == id.ino
                && read_head(e.head_len).is_some_and(|h| head_hash(&h) == e.head)
        })?;
        Some(state.saved.remove(pos).offset)
    }

    /// Starts tracking a file read from `offset`.
    pub fn track(&self, id: FileId, path: &Path, offset: u64, head: &[u8]) {
        let mut state = self.state.lock().unwrap();
        let acks = state.files.entry(id).or_default();
        acks.path = path.to_owned();
        acks.acked = offset;
        acks.head = head_hash(head);
        acks.head_len = head.len();
        acks.pending.clear();
        state.dirty = true;
    }

    /// A file's head grew (it was shorter than HEAD_BYTES when first seen).
    pub fn update_head(&self, id: FileId, head: &[u8]) {
        let mut state = self.state.lock().unwrap();
        if let Some(acks) = state.files.get_mut(&id) {
            acks.head = head_hash(head);
            acks.head_len = head.len();
            state.dirty = true;
        }
    }

    pub fn rename(&self, id: FileId, path: &Path) {
        if let Some(acks) = self.state.lock().unwrap().files.get_mut(&id) {
            acks.path = path.to_owned();
        }
    }

    /// The file was truncated: everything before is gone, reading restarts at 0.
    pub fn reset(&self, id: FileId) {
        let mut state = self.state.lock().unwrap();
        if let Some(acks) = state.files.get_mut(&id) {
            acks.acked = 0;
            acks.pending.clear();
            state.dirty = true;
        }
    }

    pub fn forget(&self, id: FileId) {
        let mut state = self.state.lock().unwrap();
        state.files.remove(&id);
        state.dirty = true;
    }

    /// Registers a batch that ends at `end_offset`; returns its sequence number for `ack`.
    pub fn begin(&self, id: FileId, end_offset: u64) -> u64 {
        let mut state = self.state.lock().unwrap();
        let acks = state.files.entry(id).or_default();
        let seq = acks.next_seq;
        acks.next_seq += 1;
        acks.pending.push_back((seq, end_offset, None));
        seq
    }

    pub fn ack(&self, id: FileId, seq: u64, delivered: bool) {
        let mut state = self.state.lock().unwrap();
        let Some(acks) = state.files.get_mut(&id) else {
            return;
        };
        if let Some(slot) = acks.pending.iter_mut().find(|p| p.0 == seq) {
            slot.2 = Some(delivered);
        }
        let mut moved = false;
        while let Some(&(_, end, Some(true))) = acks.pending.front() {
            acks.acked = end;
            acks.pending.pop_front();
            moved = true;
        }
        state.dirty |= moved;
    }

    /// Batches sent but neither delivered nor failed yet.
    pub fn outstanding(&self) -> usize {
        let state = self.state.lock().unwrap();
        state
            .files
            .values()
            .map(|f| f.pending.iter().filter(|p| p.2.is_none()).count())
            .sum()
    }

    pub fn acked_offset(&self, id: FileId) -> Option<u64> {
        self.state.lock().unwrap().files.get(&id).map(|f| f.acked)
    }

    /// Writes the checkpoint if anything moved: temp file, fsync, rename.
    pub fn persist(&self) -> std::io::Result<()> {
        let entries = {
            let mut state = self.state.lock().unwrap();
            if !state.dirty {
                return Ok(());
            }
            state.dirty = false;
            let mut entries: Vec<Entry> = state
                .files
                .iter()
                .map(|(id, f)| Entry {
                    path: f.path.clone(),
                    dev: id.dev,
                    ino: id.ino,
                    offset: f.acked,
                    head: f.head.clone(),
                    head_len: f.head_len,
                })
                .collect();
            // Files not reopened this run keep their entry while they still exist.
            entries.extend(state.saved.iter().filter(|e| e.path.exists()).cloned());
            entries
        };
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(&entries).expect("entries serialize"))?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_advances_only_over_a_delivered_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::load(dir.path(), "s").unwrap();
        let id = FileId { dev: 1, ino: 2 };
        c.track(id, Path::new("/a.log"), 0, b"head");
        let a = c.begin(id, 100);
        let b = c.begin(id, 200);
        let d = c.begin(id, 300);
        c.ack(id, b, true);
        assert_eq!(c.acked_offset(id), Some(0));
        c.ack(id, a, true);
        assert_eq!(c.acked_offset(id), Some(200));
        c.ack(id, d, false);
        assert_eq!(c.acked_offset(id), Some(200));
        assert_eq!(c.outstanding(), 0);
    }

    #[test]
    fn persisted_offsets_resume_only_for_the_same_content() {
        let dir = tempfile::tempdir().unwrap();
        let id = FileId { dev: 1, ino: 2 };
        {
            let c = Checkpoints::load(dir.path(), "s").unwrap();
            c.track(id, Path::new("/a.log"), 0, b"first line\n");
            let s = c.begin(id, 42);
            c.ack(id, s, true);
            c.persist().unwrap();
        }
        let c = Checkpoints::load(dir.path(), "s").unwrap();
        assert_eq!(c.resume(id, |n| Some(b"other file\n"[..n].to_vec())), None);
        assert_eq!(
            c.resume(id, |n| Some(b"first line\nmore"[..n].to_vec())),
            Some(42)
        );
    }

    #[test]
    fn corrupted_checkpoint_is_moved_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.json"), b"{not json").unwrap();
        let c = Checkpoints::load(dir.path(), "s").unwrap();
        assert_eq!(c.resume(FileId { dev: 1, ino: 2 }, |_| Some(vec![])), None);
        assert!(dir.path().join("s.json.corrupt").exists());
    }
}

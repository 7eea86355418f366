//! Watches the pipeline files and plugins in use and asks for a reload when one's content
//! changes.
//!
//! Files really change in ways a watch on the file itself misses: editors and deploy tools
//! write a temporary file and rename it over the old one, Kubernetes swaps a ConfigMap's
//! `..data` symlink, a file is deleted and created again. So the watch is on each file's
//! directory, events only wake it up, and what decides is the file's content: after a
//! quiet moment (debounce) every watched file is read and hashed; a changed hash asks for
//! a reload, an unchanged one (a touch, an editor's backup file) does nothing. Events on
//! other files in those directories (a log being tailed next to its pipeline, an
//! output file) are ignored, so they cannot hold the debounce open. A watched
//! file that is missing holds the reload back until it exists again, so a delete and
//! re-create is one reload of the new content, not a failed one in between.

use super::ReloadHandle;
use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Events closer together than this are one change.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// However busy the files are, a change is looked at within this long.
const MAX_DEBOUNCE: Duration = Duration::from_secs(2);

type Shared = std::sync::Arc<std::sync::Mutex<BTreeSet<PathBuf>>>;

/// Whether an event can concern a watched file: it names one, or it is Kubernetes
/// swapping a ConfigMap's `..data` symlink (the watched file is a link through it).
fn relevant(event: &notify::Event, watched: &BTreeSet<PathBuf>) -> bool {
    event.paths.iter().any(|p| {
        watched.contains(p)
            || p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".."))
    })
}

/// Starts watching; `files` says which files matter and is updated after each reload.
pub fn watch_files(
    reload: ReloadHandle,
    mut files: watch::Receiver<Vec<PathBuf>>,
    shutdown: CancellationToken,
) -> notify::Result<tokio::task::JoinHandle<()>> {
    let (tx, mut events) = mpsc::unbounded_channel();
    let watched: Shared = Default::default();
    let filter = watched.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if relevant(&event, &filter.lock().unwrap()) {
                let _ = tx.send(());
            }
        }
    })?;
    let mut digests = digest_all(&files.borrow_and_update());
    let mut dirs = BTreeSet::new();
    rewatch(&mut watcher, &mut dirs, &watched, &files.borrow());
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = files.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let list = files.borrow_and_update().clone();
                    rewatch(&mut watcher, &mut dirs, &watched, &list);
                    digests = digest_all(&list);
                    continue;
                }
                event = events.recv() => if event.is_none() { return },
            }
            // Wait for the writes to settle.
            let started = tokio::time::Instant::now();
            while started.elapsed() < MAX_DEBOUNCE {
                if !matches!(
                    tokio::time::timeout(DEBOUNCE, events.recv()).await,
                    Ok(Some(()))
                ) {
                    break;
                }
            }
            let now = digest_all(&files.borrow());
            if now.values().any(Option::is_none) {
                continue; // deleted, or between a delete and a create: wait for it
            }
            let changed: Vec<String> = now
                .iter()
                .filter(|(path, digest)| digests.get(*path) != Some(digest))
                .map(|(path, _)| path.display().to_string())
                .collect();
            digests = now;
            if !changed.is_empty() {
                reload.request(format!("changed: {}", changed.join(", ")));
            }
        }
    }))
}

fn digest_all(files: &[PathBuf]) -> BTreeMap<PathBuf, Option<[u8; 32]>> {
    files
        .iter()
        .map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone()))
        .map(|f| {
            let digest = std::fs::read(&f).ok().map(|b| Sha256::digest(b).into());
            (f, digest)
        })
        .collect()
}

/// Watches the directory of every file (not the file: renames and symlink swaps replace
/// it), and stops watching directories no longer needed.
fn rewatch(
    watcher: &mut impl Watcher,
    dirs: &mut BTreeSet<PathBuf>,
    watched: &Shared,
    files: &[PathBuf],
) {
    // Absolute, so event paths (absolute under an absolute watch) compare equal; not
    // canonical, since the file may be a symlink that will be swapped.
    let files: BTreeSet<PathBuf> = files
        .iter()
        .map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone()))
        .collect();
    let wanted: BTreeSet<PathBuf> = files
        .iter()
        .map(|f| f.parent().unwrap_or(Path::new("/")).to_owned())
        .collect();
    *watched.lock().unwrap() = files;
    for gone in dirs.difference(&wanted) {
        let _ = watcher.unwatch(gone);
    }
    for dir in wanted.difference(dirs) {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch for changes; SIGHUP and POST /reload still reload");
        }
    }
    *dirs = wanted;
}

//! The disk buffer: a writer thread appends each incoming batch as a frame to the current
//! segment and, once the frames are synced, lets go of the batches' acknowledgements (the
//! durable hand-off); a reader thread feeds the sink from disk in order. Segments are
//! deleted once the sink acknowledged everything in them.

mod frame;
mod ledger;

use super::WhenFull;
use crate::ack::{AckStatus, AckToken};
use crate::event::Batch;
use crate::telemetry::ComponentTelemetry;
use ledger::{segment_path, Ledger, Pos};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where a new segment starts once the current one is this long.
const SEGMENT_BYTES: u64 = 8 << 20;
/// A writer syncs after at most this many bytes of batches that arrived together.
const GROUP_COMMIT_BYTES: usize = 1 << 20;
/// How often a waiting thread looks at the abort token.
const WAKE: Duration = Duration::from_millis(200);
/// At shutdown, how long the sink may keep delivering from disk once every input is
/// written. What it has not delivered by then is safe on disk and sent after a restart,
/// so there is no reason to hold the shutdown for the pipeline's whole drain deadline.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Saves how far the sink got when dropped (after the sink finished).
pub struct DiskBufferGuard(Arc<Ledger>);

impl Drop for DiskBufferGuard {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        ledger::save(self.0.dir(), &mut state);
    }
}

pub(super) fn build(
    dir: &Path,
    max_bytes: u64,
    when_full: WhenFull,
    origin: Arc<str>,
    telemetry: ComponentTelemetry,
    abort: CancellationToken,
) -> std::io::Result<super::Buffer> {
    let ledger = Arc::new(Ledger::open(dir, max_bytes, telemetry.clone())?);
    {
        let state = ledger.lock();
        tracing::info!(
            sink = %origin, dir = %dir.display(), waiting_bytes = state.used(),
            "disk buffer opened"
        );
        telemetry.buffer_bytes(state.used(), max_bytes);
    }
    let sink_abort = abort.child_token();
    let (sender, input) = mpsc::channel(crate::topology::CHANNEL_CAPACITY);
    let (output, receiver) = mpsc::channel(crate::topology::CHANNEL_CAPACITY);
    let writer = Writer {
        end: 0,
        ledger: ledger.clone(),
        telemetry: telemetry.clone(),
        when_full,
        abort,
        sink_abort: sink_abort.clone(),
        file: File::options()
            .write(true)
            .open(segment_path(dir, ledger.lock().writing))?,
    };
    let reader = Reader {
        ledger: ledger.clone(),
        telemetry,
        origin: origin.clone(),
        abort: sink_abort.clone(),
    };
    std::thread::Builder::new()
        .name(format!("buffer-write-{origin}"))
        .spawn(move || writer.run(input))?;
    std::thread::Builder::new()
        .name(format!("buffer-read-{origin}"))
        .spawn(move || reader.run(output))?;
    Ok(super::Buffer {
        sender,
        receiver,
        guard: Some(DiskBufferGuard(ledger)),
        sink_abort: Some(sink_abort),
    })
}

struct Writer {
    ledger: Arc<Ledger>,
    telemetry: ComponentTelemetry,
    when_full: WhenFull,
    abort: CancellationToken,
    /// Cancelled [`SHUTDOWN_GRACE`] after the inputs closed.
    sink_abort: CancellationToken,
    file: File,
    /// Bytes written to the current segment, synced or not.
    end: u64,
}

enum Room {
    Made,
    Full,
    Aborted,
}

impl Writer {
    fn run(mut self, mut input: mpsc::Receiver<Batch>) {
        let mut frame = Vec::new();
        let mut held = Vec::new();
        while let Some(first) = input.blocking_recv() {
            // Everything already waiting is written before one sync (group commit).
            let mut next = Some(first);
            let mut written = 0;
            while let Some(batch) = next.take() {
                frame::encode(&batch.records, &mut frame);
                match self.make_room(frame.len() as u64, &mut held) {
                    Room::Made => match self.append(&frame) {
                        Ok(()) => {
                            written += frame.len();
                            held.push(batch);
                        }
                        Err(e) => self.failed("write", &e, &[batch]),
                    },
                    // Dropped on purpose: its acknowledgement says delivered.
                    Room::Full => self.telemetry.dropped("buffer_full", batch.len()),
                    Room::Aborted => batch.fail(),
                }
                if written < GROUP_COMMIT_BYTES {
                    next = input.try_recv().ok();
                }
            }
            self.sync(&mut held);
        }
        self.ledger.lock().writer_done = true;
        self.ledger.changed.notify_all();
        std::thread::sleep(SHUTDOWN_GRACE);
        self.sink_abort.cancel();
    }

    /// Syncs what was written and lets go of those batches, which releases their sources'
    /// acknowledgements.
    fn sync(&mut self, held: &mut Vec<Batch>) {
        if held.is_empty() {
            return;
        }
        match self.file.sync_data() {
            Ok(()) => self.commit(),
            Err(e) => {
                self.failed("sync", &e, held);
                // Not durable: the next frames overwrite them.
                self.end = self.ledger.lock().segments[&self.segment()];
            }
        }
        held.clear();
    }

    fn segment(&self) -> u64 {
        self.ledger.lock().writing
    }

    /// Waits until `len` more bytes fit (or drops, by policy). A batch larger than the
    /// whole buffer is let in once the buffer is empty, so it cannot block forever.
    fn make_room(&mut self, len: u64, held: &mut Vec<Batch>) -> Room {
        loop {
            {
                let state = self.ledger.lock();
                let unsynced = self.end - state.segments[&state.writing];
                let used = state.used() + unsynced;
                if used == 0 || used + len <= self.ledger.max_bytes {
                    return Room::Made;
                }
                if self.when_full == WhenFull::DropNewest {
                    return Room::Full;
                }
                if self.abort.is_cancelled() {
                    return Room::Aborted;
                }
                if held.is_empty() {
                    drop(self.ledger.changed.wait_timeout(state, WAKE).unwrap());
                    continue;
                }
            }
            // Room comes only from the sink, which sees only synced frames.
            self.sync(held);
        }
    }

    fn append(&mut self, frame: &[u8]) -> std::io::Result<()> {
        if self.end > 0 && self.end + frame.len() as u64 > SEGMENT_BYTES {
            // Seal the current segment (synced, so the reader may finish it), start the next.
            self.file.sync_data()?;
            self.commit();
            let next = self.segment() + 1;
            self.file = File::create(segment_path(self.ledger.dir(), next))?;
            let mut state = self.ledger.lock();
            state.writing = next;
            state.segments.insert(next, 0);
            self.end = 0;
        }
        // Positioned, so what a failed write left behind is overwritten by the next frame.
        self.file.write_all_at(frame, self.end)?;
        self.end += frame.len() as u64;
        Ok(())
    }

    /// Makes the synced frames visible to the reader.
    fn commit(&self) {
        let mut state = self.ledger.lock();
        let writing = state.writing;
        state.segments.insert(writing, self.end);
        self.telemetry
            .buffer_bytes(state.used(), self.ledger.max_bytes);
        drop(state);
        self.ledger.changed.notify_all();
    }

    fn failed(&self, what: &str, error: &std::io::Error, batches: &[Batch]) {
        for batch in batches {
            batch.fail();
        }
        self.telemetry.error("buffer_write");
        self.telemetry.warn_limited(
            "buffer_write",
            &format!(
                "cannot {what} the disk buffer in {}: {error}; these records stay unacknowledged, so their source sends them again",
                self.ledger.dir().display()
            ),
        );
    }
}

struct Reader {
    ledger: Arc<Ledger>,
    telemetry: ComponentTelemetry,
    origin: Arc<str>,
    abort: CancellationToken,
}

impl Reader {
    fn run(self, output: mpsc::Sender<Batch>) {
        let mut pos = self.ledger.lock().acked;
        let mut open: Option<(u64, File)> = None;
        while let Some(limit) = self.readable(&mut pos) {
            if open.as_ref().is_none_or(|(n, _)| *n != pos.segment) {
                match File::open(segment_path(self.ledger.dir(), pos.segment)) {
                    Ok(f) => open = Some((pos.segment, f)),
                    Err(e) => {
                        self.io_error(&e);
                        continue;
                    }
                }
            }
            let file = &open.as_ref().expect("opened above").1;
            match frame::read(file, pos.offset, limit) {
                Ok(frame::Frame::Good(records, len)) => {
                    pos.offset += len;
                    let seq = self.ledger.track(pos);
                    let ledger = self.ledger.clone();
                    let token = AckToken::new(move |status| {
                        ledger.complete(seq, status == AckStatus::Delivered)
                    });
                    let batch = Batch::new(self.origin.clone(), records, Some(token));
                    if let Err(e) = output.blocking_send(batch) {
                        // The sink stopped: this stays on disk for the next run.
                        e.0.fail();
                        return;
                    }
                }
                Ok(frame::Frame::Damaged) => match frame::next_good(file, pos.offset, limit) {
                    Ok(next) => {
                        self.telemetry.error("buffer_corrupted");
                        tracing::error!(
                            sink = %self.origin,
                            segment = %segment_path(self.ledger.dir(), pos.segment).display(),
                            offset = pos.offset, skipped_bytes = next - pos.offset,
                            "disk buffer damaged; skipping to the next intact batch (the records in between are lost)"
                        );
                        pos.offset = next;
                        self.ledger.skip(pos);
                    }
                    Err(e) => self.io_error(&e),
                },
                Err(e) => self.io_error(&e),
            }
        }
    }

    /// Waits for data at `pos` (moving it to the next segment at the end of a sealed one)
    /// and returns where the readable data of its segment ends; `None` once the writer has
    /// finished and everything was read, or on abort.
    fn readable(&self, pos: &mut Pos) -> Option<u64> {
        let mut state = self.ledger.lock();
        loop {
            if self.abort.is_cancelled() {
                return None;
            }
            let (&segment, &end) = state.segments.range(pos.segment..).next()?;
            if segment != pos.segment {
                *pos = Pos { segment, offset: 0 };
            }
            if pos.offset < end {
                return Some(end);
            }
            if segment < state.writing {
                *pos = Pos {
                    segment: segment + 1,
                    offset: 0,
                };
                continue;
            }
            if state.writer_done {
                return None;
            }
            state = self.ledger.changed.wait_timeout(state, WAKE).unwrap().0;
        }
    }

    fn io_error(&self, e: &std::io::Error) {
        self.telemetry.error("buffer_read");
        self.telemetry.warn_limited(
            "buffer_read",
            &format!(
                "cannot read the disk buffer in {}: {e}; retrying",
                self.ledger.dir().display()
            ),
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Record;
    use crate::telemetry::Telemetry;
    use serde_json::json;
    use std::sync::mpsc as std_mpsc;

    const WAIT: Duration = Duration::from_secs(10);

    fn records(batch: u64, size: usize) -> Vec<Record> {
        (0..4)
            .map(|i| {
                json!({"batch": batch, "i": i, "message": "m".repeat(size)})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect()
    }

    fn batch_no(batch: &Batch) -> u64 {
        batch.records[0]["batch"].as_u64().unwrap()
    }

    struct Opened {
        buffer: crate::buffers::Buffer,
        telemetry: Telemetry,
        source_acks: std_mpsc::Receiver<(u64, AckStatus)>,
        ack_tx: std_mpsc::Sender<(u64, AckStatus)>,
    }

    fn open(dir: &Path, max_bytes: u64, when_full: WhenFull) -> Opened {
        let telemetry = Telemetry::new();
        let buffer = build(
            dir,
            max_bytes,
            when_full,
            Arc::from("s"),
            telemetry.component("s", "console"),
            CancellationToken::new(),
        )
        .unwrap();
        let (ack_tx, source_acks) = std_mpsc::channel();
        Opened {
            buffer,
            telemetry,
            source_acks,
            ack_tx,
        }
    }

    impl Opened {
        fn send(&self, n: u64, size: usize) {
            let tx = self.ack_tx.clone();
            let token = AckToken::new(move |status| {
                let _ = tx.send((n, status));
            });
            let batch = Batch::new("src".into(), records(n, size), Some(token));
            self.buffer.sender.blocking_send(batch).unwrap();
        }

        fn source_acks(&self, n: usize) -> Vec<(u64, AckStatus)> {
            (0..n)
                .map(|_| self.source_acks.recv_timeout(WAIT).expect("a source ack"))
                .collect()
        }

        fn recv(&mut self) -> Batch {
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                match self.buffer.receiver.try_recv() {
                    Ok(batch) => return batch,
                    Err(_) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => panic!("nothing from the buffer: {e}"),
                }
            }
        }

        /// Stops like the topology does: inputs close, the sink fails what it did not take.
        fn stop(self) -> String {
            let Opened {
                buffer, telemetry, ..
            } = self;
            drop(buffer.sender);
            let mut receiver = buffer.receiver;
            receiver.close();
            while let Ok(batch) = receiver.try_recv() {
                batch.fail();
            }
            drop(buffer.guard);
            telemetry.encode()
        }
    }

    #[test]
    fn sources_are_acknowledged_once_synced_and_a_restart_resends_only_what_the_sink_did_not_acknowledge(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = open(dir.path(), 64 << 20, WhenFull::Block);
        for n in 0..10 {
            buffer.send(n, 10);
        }
        // The durable hand-off: every source batch is released before the sink took any.
        let acks = buffer.source_acks(10);
        assert!(
            acks.iter().all(|(_, s)| *s == AckStatus::Delivered),
            "{acks:?}"
        );
        for n in 0..4 {
            let batch = buffer.recv();
            assert_eq!(batch_no(&batch), n);
            assert_eq!(batch.records, records(n, 10));
        }
        let fifth = buffer.recv();
        assert_eq!(batch_no(&fifth), 4);
        fifth.fail();
        drop(fifth);
        buffer.stop();

        let mut again = open(dir.path(), 64 << 20, WhenFull::Block);
        for n in 4..10 {
            assert_eq!(batch_no(&again.recv()), n, "resent in order");
        }
        again.send(10, 10);
        assert_eq!(batch_no(&again.recv()), 10);
        assert!(again.buffer.receiver.try_recv().is_err());
        again.stop();
    }

    #[test]
    fn a_damaged_batch_is_skipped_counted_and_the_rest_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let buffer = open(dir.path(), 64 << 20, WhenFull::Block);
        for n in 0..5 {
            buffer.send(n, 100);
        }
        buffer.source_acks(5);
        buffer.stop();
        // Flip a byte inside the third frame of the segment just written.
        let segment = segment_path(dir.path(), 1);
        let mut bytes = std::fs::read(&segment).unwrap();
        let frame = bytes.len() / 5;
        bytes[2 * frame + frame / 2] ^= 0xff;
        std::fs::write(&segment, bytes).unwrap();

        let mut again = open(dir.path(), 64 << 20, WhenFull::Block);
        let got: Vec<u64> = (0..4).map(|_| batch_no(&again.recv())).collect();
        assert_eq!(got, vec![0, 1, 3, 4]);
        let metrics = again.stop();
        assert!(
            metrics.contains(
                r#"sluice_component_errors_total{component="s",error_kind="buffer_corrupted"} 1"#
            ),
            "{metrics}"
        );
    }

    #[test]
    fn a_torn_frame_at_the_end_of_a_crashed_run_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let buffer = open(dir.path(), 64 << 20, WhenFull::Block);
        for n in 0..3 {
            buffer.send(n, 100);
        }
        buffer.source_acks(3);
        buffer.stop();
        let segment = segment_path(dir.path(), 1);
        let len = std::fs::metadata(&segment).unwrap().len();
        File::options()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(len - 7)
            .unwrap();
        let mut again = open(dir.path(), 64 << 20, WhenFull::Block);
        assert_eq!(batch_no(&again.recv()), 0);
        assert_eq!(batch_no(&again.recv()), 1);
        again.send(3, 100);
        assert_eq!(batch_no(&again.recv()), 3);
        assert!(again.stop().contains("buffer_corrupted\"} 1"));
    }

    #[test]
    fn when_full_drop_newest_drops_and_counts_and_block_waits_for_the_sink() {
        // Each batch is a little over 1 KiB: four fit in 5,000 bytes.
        let dir = tempfile::tempdir().unwrap();
        let mut dropping = open(dir.path(), 5_000, WhenFull::DropNewest);
        for n in 0..12 {
            dropping.send(n, 256);
        }
        let acks = dropping.source_acks(12);
        assert!(
            acks.iter().all(|(_, s)| *s == AckStatus::Delivered),
            "dropped on purpose counts as handled: {acks:?}"
        );
        let got: Vec<u64> = (0..4).map(|_| batch_no(&dropping.recv())).collect();
        assert_eq!(got, vec![0, 1, 2, 3]);
        assert!(dropping.buffer.receiver.try_recv().is_err());
        let metrics = dropping.stop();
        assert!(
            metrics.contains(
                r#"sluice_component_dropped_events_total{component="s",reason="buffer_full"} 32"#
            ),
            "{metrics}"
        );

        let dir = tempfile::tempdir().unwrap();
        let mut blocking = open(dir.path(), 5_000, WhenFull::Block);
        let sender = blocking.buffer.sender.clone();
        let tx = blocking.ack_tx.clone();
        let feeder = std::thread::spawn(move || {
            for n in 0..12 {
                let tx = tx.clone();
                let token = AckToken::new(move |status| {
                    let _ = tx.send((n, status));
                });
                sender
                    .blocking_send(Batch::new("src".into(), records(n, 256), Some(token)))
                    .unwrap();
            }
        });
        let first = blocking.source_acks(4);
        assert_eq!(
            first.iter().map(|a| a.0).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        assert!(
            blocking
                .source_acks
                .recv_timeout(Duration::from_millis(500))
                .is_err(),
            "a full buffer takes nothing more until the sink acknowledges"
        );
        for n in 0..12 {
            assert_eq!(batch_no(&blocking.recv()), n);
        }
        assert_eq!(blocking.source_acks(8).len(), 8);
        feeder.join().unwrap();
        let metrics = blocking.stop();
        assert!(!metrics.contains("buffer_full"), "{metrics}");
    }

    #[test]
    fn delivered_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = open(dir.path(), 256 << 20, WhenFull::Block);
        let segments = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".seg")
                })
                .count()
        };
        // 40 batches of ~400 KiB: 16 MiB, three segments.
        for n in 0..40 {
            buffer.send(n, 100_000);
            if n % 8 == 7 {
                for _ in 0..8 {
                    let _ = buffer.recv();
                }
            }
        }
        assert!(segments() <= 2, "{} segments left", segments());
        let metrics = buffer.stop();
        assert!(
            metrics.contains(r#"sluice_buffer_disk_bytes{component="s"} 0"#),
            "{metrics}"
        );
    }
}

//! The history recorder: the runner's workers and nemesis stream every op into
//! `history.jsonl` through one shared [`Recorder`].

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use checker::history::{HistoryWriter, Op};

use crate::store::StoreError;

/// The longest a recorded op waits in memory before the background flush.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Past this many buffered bytes the background thread flushes at once
/// instead of waiting out [`FLUSH_INTERVAL`], so memory stays bounded under load.
pub const FLUSH_BYTES: usize = 1 << 20;

/// Records a history to a JSONL file (the format of [`checker::history`],
/// each line encoded and numbered by its own [`HistoryWriter`], here into
/// memory), shared by every worker of a run (`Send + Sync`; wrap it in an
/// `Arc`).
///
/// # Guarantees
/// - **Order**: [`record`](Recorder::record) gives each op the next `index`
///   (0, 1, 2, ...) and the lines in the file are in index order, whatever
///   the threads.
/// - **Whole lines**: an op is serialized into one complete line in memory,
///   and the buffered lines are written with a single `write_all` per flush
///   (no `BufWriter`, which may write part of a line). Between flushes the
///   file therefore always ends with a complete line, so a harness killed at
///   any moment leaves a history that `faultline check` reads. The one window
///   left is the kernel itself: a `SIGKILL` that lands while a flush's
///   `write` is copying into the page cache may cut that write short, and a
///   reader of a file still being written may see a flush half done. Either
///   way the file is a prefix of the history; a reader of a live or killed
///   history drops a final line that has no newline.
/// - **Freshness**: a background thread flushes at least every
///   [`FLUSH_INTERVAL`] (100 ms) while anything is buffered, and at once past
///   [`FLUSH_BYTES`]. [`flush`](Recorder::flush) writes everything recorded
///   so far (the runner calls it at every phase change).
/// - **Shutdown**: [`finish`](Recorder::finish) flushes, stops the thread and
///   syncs the file to disk; dropping the recorder flushes and stops the
///   thread too, ignoring errors.
/// - **Errors**: if a write fails (disk full, ...), that error is returned by
///   the next `record`, `flush` or `finish`, and by every later one: a history
///   with a hole is not a history.
///
/// Flushes reach the operating system, not the disk: they survive the
/// harness being killed, not the machine losing power (only `finish` syncs).
pub struct Recorder {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

struct Shared {
    path: PathBuf,
    /// Held across a whole flush, so flushes write their batches in order.
    /// Lock order: `file`, then `buffer`.
    file: Mutex<File>,
    /// Recording only appends to memory under this lock, so workers never
    /// wait on the disk (except behind a flush's brief swap of the buffer).
    buffer: Mutex<Buffer>,
    /// Wakes the flusher when the buffer stops being empty, gets large, or
    /// the recorder stops.
    wake: Condvar,
}

struct Buffer {
    /// The history format's own writer, into memory: it numbers the ops and
    /// encodes each as one line; flushes take its bytes.
    lines: HistoryWriter<Vec<u8>>,
    /// When the oldest op in `lines` was recorded.
    since: Option<Instant>,
    stopping: bool,
    /// The first write error, returned from then on.
    failed: Option<(io::ErrorKind, String)>,
}

impl Default for Buffer {
    fn default() -> Self {
        Buffer {
            lines: HistoryWriter::new(Vec::new()),
            since: None,
            stopping: false,
            failed: None,
        }
    }
}

impl Buffer {
    /// Bytes buffered.
    fn len(&self) -> usize {
        self.lines.get_ref().len()
    }

    fn check(&self) -> io::Result<()> {
        match &self.failed {
            None => Ok(()),
            Some((kind, message)) => Err(io::Error::new(
                *kind,
                format!("the history recorder stopped: {message}"),
            )),
        }
    }
}

impl Recorder {
    /// Creates (or truncates) the history file at `path` and starts the
    /// background flusher.
    pub fn create(path: impl AsRef<Path>) -> Result<Recorder, StoreError> {
        let path = path.as_ref().to_path_buf();
        let io_error = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error)?;
        let shared = Arc::new(Shared {
            path: path.clone(),
            file: Mutex::new(file),
            buffer: Mutex::new(Buffer::default()),
            wake: Condvar::new(),
        });
        let for_thread = Arc::clone(&shared);
        let flusher = std::thread::Builder::new()
            .name("history-flusher".into())
            .spawn(move || for_thread.run_flusher())
            .map_err(io_error)?;
        Ok(Recorder {
            shared,
            flusher: Some(flusher),
        })
    }

    /// The history file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Numbers `op` with the next index and buffers it as one line; returns
    /// the index given.
    pub fn record(&self, op: &mut Op) -> io::Result<u64> {
        let mut buffer = self.shared.lock_buffer();
        buffer.check()?;
        let start = buffer.len();
        // Writes nothing if the op does not serialize.
        let index = buffer.lines.append(op)?;
        let was_empty = start == 0;
        if was_empty {
            buffer.since = Some(Instant::now());
        }
        if was_empty || (buffer.len() >= FLUSH_BYTES && start < FLUSH_BYTES) {
            self.shared.wake.notify_one();
        }
        Ok(index)
    }

    /// How many ops have been recorded.
    pub fn recorded(&self) -> u64 {
        self.shared.lock_buffer().lines.next_index()
    }

    /// Writes every op recorded so far to the file.
    pub fn flush(&self) -> io::Result<()> {
        self.shared.flush()
    }

    /// Flushes, stops the background thread and syncs the file to disk.
    pub fn finish(mut self) -> io::Result<()> {
        self.stop()?;
        let file = self.shared.lock_file();
        file.sync_data()
    }

    /// Stops the flusher and flushes what it left; safe to call twice.
    fn stop(&mut self) -> io::Result<()> {
        if let Some(flusher) = self.flusher.take() {
            self.shared.lock_buffer().stopping = true;
            self.shared.wake.notify_one();
            // A panic in the flusher leaves the buffer intact; flush below.
            let _ = flusher.join();
        }
        self.shared.flush()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl Shared {
    fn lock_buffer(&self) -> MutexGuard<'_, Buffer> {
        // A panic while holding the lock cannot leave a partial line in the
        // buffer (a line is encoded apart and appended whole), so the data is usable.
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_file(&self) -> MutexGuard<'_, File> {
        self.file.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn flush(&self) -> io::Result<()> {
        let mut file = self.lock_file();
        let lines = {
            let mut buffer = self.lock_buffer();
            buffer.check()?;
            buffer.since = None;
            std::mem::take(buffer.lines.get_mut())
        };
        if lines.is_empty() {
            return Ok(());
        }
        if let Err(e) = file.write_all(&lines) {
            let mut buffer = self.lock_buffer();
            let message = format!("writing {}: {e}", self.path.display());
            buffer.failed = Some((e.kind(), message));
            return Err(e);
        }
        Ok(())
    }

    /// The background thread: sleeps while the buffer is empty, otherwise
    /// until the oldest buffered op is [`FLUSH_INTERVAL`] old or the buffer
    /// is large, then flushes.
    fn run_flusher(&self) {
        let mut buffer = self.lock_buffer();
        while !buffer.stopping && buffer.failed.is_none() {
            let due = match buffer.since {
                None => None,
                Some(_) if buffer.len() >= FLUSH_BYTES => Some(Duration::ZERO),
                Some(since) => {
                    Some((since + FLUSH_INTERVAL).saturating_duration_since(Instant::now()))
                }
            };
            buffer = match due {
                None => self.wake.wait(buffer).unwrap_or_else(|p| p.into_inner()),
                Some(wait) if !wait.is_zero() => {
                    self.wake
                        .wait_timeout(buffer, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                Some(_) => {
                    drop(buffer);
                    // An error is kept in the buffer and ends the loop.
                    let _ = self.flush();
                    self.lock_buffer()
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use checker::history::{parse_jsonl, OpType, Process};
    use serde_json::json;

    fn assert_send_sync<T: Send + Sync>() {}

    fn ops_in(path: &Path) -> Vec<Op> {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "partial line");
        parse_jsonl(&text, path).unwrap()
    }

    #[test]
    fn recorder_is_shareable_between_threads() {
        assert_send_sync::<Recorder>();
    }

    #[test]
    fn concurrent_records_get_indices_in_line_order() {
        let dir = TestDir::new("order");
        let path = dir.path().join("history.jsonl");
        let recorder = Arc::new(Recorder::create(&path).unwrap());
        let threads: Vec<_> = (0..8u64)
            .map(|process| {
                let recorder = Arc::clone(&recorder);
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let mut invoke = Op::invoke(process, "write", json!(i));
                        recorder.record(&mut invoke).unwrap();
                        let mut ok = invoke.completed(OpType::Ok, json!(i));
                        recorder.record(&mut ok).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(recorder.recorded(), 8000);
        Arc::try_unwrap(recorder).ok().unwrap().finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 8000);
        for (i, line) in text.lines().enumerate() {
            let op: Op = serde_json::from_str(line).unwrap();
            assert_eq!(op.index, i as u64, "line {i}");
        }
    }

    #[test]
    fn ops_reach_the_file_within_the_flush_interval_without_a_flush() {
        let dir = TestDir::new("fresh");
        let path = dir.path().join("history.jsonl");
        let recorder = Recorder::create(&path).unwrap();
        let mut op = Op::invoke(1, "read", json!(null)).with_key("k1");
        assert_eq!(recorder.record(&mut op).unwrap(), 0);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(2);
        while std::fs::metadata(&path).unwrap().len() == 0 {
            assert!(Instant::now() < deadline, "not flushed within 2 s");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Generous against a loaded machine, but far below "only on drop".
        assert!(started.elapsed() < Duration::from_millis(1000));
        // Read back while the recorder is alive: complete, parseable lines.
        assert_eq!(ops_in(&path), vec![op.clone()]);

        let mut nemesis = Op {
            process: Process::Nemesis,
            op_type: OpType::Info,
            ..Op::invoke(0, "partition", json!({"n1": ["n2"]}))
        };
        assert_eq!(recorder.record(&mut nemesis).unwrap(), 1);
        recorder.flush().unwrap();
        assert_eq!(ops_in(&path), vec![op, nemesis]);
        drop(recorder);
    }

    #[test]
    fn a_file_read_while_recording_is_a_prefix_of_whole_lines() {
        let dir = TestDir::new("live");
        let path = dir.path().join("history.jsonl");
        let recorder = Arc::new(Recorder::create(&path).unwrap());
        let writer = {
            let recorder = Arc::clone(&recorder);
            std::thread::spawn(move || {
                let big = "x".repeat(300);
                for i in 0..20_000u64 {
                    let mut op = Op::invoke(i % 10, "add", json!([i, big]));
                    recorder.record(&mut op).unwrap();
                }
            })
        };
        let mut reads = 0;
        while !writer.is_finished() || reads == 0 {
            // A flush may be half-copied at the moment we read: the file is
            // a prefix of the history, so keep its complete lines.
            let text = std::fs::read_to_string(&path).unwrap();
            let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            let ops = parse_jsonl(complete, &path).unwrap();
            assert!(ops.iter().enumerate().all(|(i, op)| op.index == i as u64));
            reads += 1;
            std::thread::sleep(Duration::from_millis(3));
        }
        writer.join().unwrap();
        drop(recorder);
        assert_eq!(ops_in(&path).len(), 20_000);
    }

    #[test]
    fn drop_flushes_what_is_buffered() {
        let dir = TestDir::new("drop");
        let path = dir.path().join("history.jsonl");
        {
            let recorder = Recorder::create(&path).unwrap();
            for i in 0..3 {
                recorder
                    .record(&mut Op::invoke(i, "read", json!(null)))
                    .unwrap();
            }
        }
        assert_eq!(ops_in(&path).len(), 3);
    }

    #[test]
    fn creating_in_a_missing_directory_names_the_path() {
        let dir = TestDir::new("missing");
        let path = dir.path().join("nope/history.jsonl");
        let err = Recorder::create(&path).err().unwrap();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}

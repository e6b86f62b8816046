//! The node's data dir.
//!
//! # Format
//! - `meta.json`: [`Meta`] (`{"term":3,"voted_for":"n2"}`), replaced
//!   atomically (write `meta.json.tmp`, rename) before the node answers
//!   anyone after a term or vote change.
//! - `oplog.jsonl`: one [`Entry`] as JSON per line, appended in oplog order
//!   (in multi-primary topology: own and others' entries as applied). A
//!   rollback rewrites the file (`oplog.jsonl.tmp`, rename). On recovery a
//!   torn last line (or anything after the first malformed line) is dropped.
//!
//! Writes go through a writer thread that batches them: with `--fsync
//! always` each batch is written and `fdatasync`ed before it is reported
//! durable (group commit); with `--fsync never` entries wait in the
//! process's own buffer, reported durable at once, and reach the file every
//! flush interval, unless the node crashes first (`POST /admin/crash`).
//! From a crash request on, nothing more is written or reported durable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::warn;

use crate::mode::Fsync;
use crate::oplog::Entry;
use crate::replication::{Meta, PersistOp};

/// Set by a crash: the writer thread must not write anything more.
pub static CRASHING: AtomicBool = AtomicBool::new(false);

const META: &str = "meta.json";
const OPLOG: &str = "oplog.jsonl";

/// What a node finds in its data dir at start.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Term and vote.
    pub meta: Meta,
    /// Oplog entries in file order.
    pub entries: Vec<Entry>,
}

/// Reads the data dir (creating it if needed). With `numbered`, entries
/// must be numbered 1, 2, 3... and recovery stops at the first that is not.
pub fn recover(dir: &Path, numbered: bool) -> io::Result<Recovered> {
    fs::create_dir_all(dir)?;
    let meta = match fs::read(dir.join(META)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Meta::default(),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    let mut dropped = false;
    if let Ok(file) = File::open(dir.join(OPLOG)) {
        for line in BufReader::new(file).lines() {
            let entry = line
                .ok()
                .and_then(|l| serde_json::from_str::<Entry>(&l).ok());
            match entry {
                Some(entry) if !numbered || entry.index == entries.len() as u64 + 1 => {
                    entries.push(entry)
                }
                _ => {
                    dropped = true;
                    break;
                }
            }
        }
    }
    if dropped {
        warn!(
            kept = entries.len(),
            "oplog file had a torn or malformed tail; dropping it"
        );
        rewrite(dir, &entries, true)?;
    }
    Ok(Recovered { meta, entries })
}

/// Replaces `meta.json`.
pub fn save_meta(dir: &Path, meta: &Meta, fsync: Fsync) -> io::Result<()> {
    let tmp = dir.join("meta.json.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(meta).map_err(io::Error::other)?)?;
    if fsync == Fsync::Always {
        file.sync_data()?;
    }
    fs::rename(tmp, dir.join(META))
}

fn rewrite(dir: &Path, entries: &[Entry], sync: bool) -> io::Result<()> {
    let tmp = dir.join("oplog.jsonl.tmp");
    let mut file = io::BufWriter::new(File::create(&tmp)?);
    for entry in entries {
        serde_json::to_writer(&mut file, entry).map_err(io::Error::other)?;
        file.write_all(b"\n")?;
    }
    let file = file.into_inner().map_err(|e| e.into_error())?;
    if sync {
        file.sync_data()?;
    }
    fs::rename(tmp, dir.join(OPLOG))
}

/// The handle of the writer thread.
pub struct Writer {
    sender: Option<mpsc::Sender<(u64, PersistOp)>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread; `on_durable(seq)` is called from it.
    pub fn spawn(
        dir: PathBuf,
        fsync: Fsync,
        flush_interval: Duration,
        on_durable: impl Fn(u64) + Send + 'static,
    ) -> io::Result<Writer> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(OPLOG))?;
        let (sender, receiver) = mpsc::channel();
        let mut state = WriterState {
            dir,
            fsync,
            file,
            buffer: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("oplog-writer".into())
            .spawn(move || {
                if let Err(e) = state.run(&receiver, flush_interval, &on_durable) {
                    tracing::error!("oplog writer failed: {e}");
                    std::process::exit(70);
                }
            })?;
        Ok(Writer {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Queues a change; changes reach the file in the order queued.
    pub fn submit(&self, seq: u64, op: PersistOp) {
        if let Some(sender) = &self.sender {
            let _ = sender.send((seq, op));
        }
    }

    /// Flushes what is buffered and stops the thread.
    pub fn close(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

struct WriterState {
    dir: PathBuf,
    fsync: Fsync,
    file: File,
    buffer: Vec<u8>,
}

impl WriterState {
    fn run(
        &mut self,
        receiver: &mpsc::Receiver<(u64, PersistOp)>,
        flush_interval: Duration,
        on_durable: &dyn Fn(u64),
    ) -> io::Result<()> {
        let mut next_flush = Instant::now() + flush_interval;
        loop {
            let first = match self.fsync {
                Fsync::Always => receiver
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Fsync::Never => {
                    receiver.recv_timeout(next_flush.saturating_duration_since(Instant::now()))
                }
            };
            let mut batch = match first {
                Ok(change) => vec![change],
                Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.flush(),
            };
            batch.extend(receiver.try_iter());
            let last_seq = batch.last().map(|(seq, _)| *seq);
            for (_, op) in batch {
                self.apply(op)?;
            }
            if self.fsync == Fsync::Always {
                self.flush()?;
                self.file.sync_data()?;
            } else if Instant::now() >= next_flush {
                self.flush()?;
                next_flush = Instant::now() + flush_interval;
            }
            // A crashing node (`POST /admin/crash`) wrote none of this batch:
            // it must not report it durable, or a primary would count its own
            // (or a follower's) ack for entries power loss takes away. The
            // flag is never cleared, so a batch written before it was set and
            // reported here was written.
            if CRASHING.load(Ordering::SeqCst) {
                continue;
            }
            if let Some(seq) = last_seq {
                on_durable(seq);
            }
        }
    }

    fn apply(&mut self, op: PersistOp) -> io::Result<()> {
        match op {
            PersistOp::Append(entries) => {
                for entry in &entries {
                    serde_json::to_writer(&mut self.buffer, entry).map_err(io::Error::other)?;
                    self.buffer.push(b'\n');
                }
            }
            PersistOp::Rewrite(entries) => {
                self.buffer.clear();
                if CRASHING.load(Ordering::SeqCst) {
                    return Ok(());
                }
                rewrite(&self.dir, &entries, self.fsync == Fsync::Always)?;
                self.file = OpenOptions::new().append(true).open(self.dir.join(OPLOG))?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() && !CRASHING.load(Ordering::SeqCst) {
            self.file.write_all(&self.buffer)?;
        }
        self.buffer.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::Op;
    use std::sync::{Arc, Mutex};

    fn entry(index: u64) -> Entry {
        Entry {
            term: 1,
            index,
            origin: "n1".into(),
            ts_ms: 0,
            op: Op::Noop,
        }
    }

    #[test]
    fn recovers_what_was_written_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(0));
        let seen_by_writer = seen.clone();
        let mut writer = Writer::spawn(
            dir.path().into(),
            Fsync::Always,
            Duration::from_millis(10),
            move |seq| {
                *seen_by_writer.lock().unwrap() = seq;
            },
        )
        .unwrap();
        writer.submit(1, PersistOp::Append(vec![entry(1), entry(2)]));
        writer.submit(2, PersistOp::Rewrite(vec![entry(1)]));
        writer.submit(3, PersistOp::Append(vec![entry(2), entry(3)]));
        writer.close();
        assert_eq!(*seen.lock().unwrap(), 3);
        save_meta(
            dir.path(),
            &Meta {
                term: 4,
                voted_for: Some("n2".into()),
            },
            Fsync::Always,
        )
        .unwrap();
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(OPLOG))
            .unwrap();
        file.write_all(b"{\"term\":1,\"ind").unwrap();
        let recovered = recover(dir.path(), true).unwrap();
        assert_eq!(recovered.entries, vec![entry(1), entry(2), entry(3)]);
        assert_eq!(recovered.meta.term, 4);
    }
}

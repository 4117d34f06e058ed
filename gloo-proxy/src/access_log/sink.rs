//! Access log files: each path is opened once (for appending) and written by a thread of its
//! own, so a request never waits for the disk. Logs naming the same path share it, across
//! listeners and configuration versions, as Envoy's access log manager shares files.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, Weak};

/// An open access log file.
#[derive(Debug)]
pub(super) struct FileSink {
    lines: Sender<String>,
}

fn open_files() -> &'static Mutex<HashMap<PathBuf, Weak<FileSink>>> {
    static FILES: std::sync::OnceLock<Mutex<HashMap<PathBuf, Weak<FileSink>>>> =
        std::sync::OnceLock::new();
    FILES.get_or_init(Default::default)
}

impl FileSink {
    /// The sink of `path`, opened (and created) if no log has it open.
    pub(super) fn open(path: &str) -> Result<Arc<FileSink>, String> {
        let key = PathBuf::from(path);
        let mut files = open_files()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        files.retain(|_, sink| sink.strong_count() > 0);
        if let Some(sink) = files.get(&key).and_then(Weak::upgrade) {
            return Ok(sink);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&key)
            .map_err(|e| format!("cannot open access log file {path:?}: {e}"))?;
        let (lines, receiver) = channel();
        std::thread::Builder::new()
            .name("gloo-access-log".into())
            .spawn(move || write_lines(file, receiver))
            .map_err(|e| format!("cannot start the writer of access log file {path:?}: {e}"))?;
        let sink = Arc::new(FileSink { lines });
        files.insert(key, Arc::downgrade(&sink));
        Ok(sink)
    }

    /// Queues a line (it carries its own newline).
    pub(super) fn write(&self, line: String) {
        // The writer only stops when the sink is dropped.
        let _ = self.lines.send(line);
    }
}

/// Writes lines as they come, flushing whenever none is waiting; returns when every sink
/// handle is gone.
fn write_lines(file: std::fs::File, lines: Receiver<String>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
    while let Ok(line) = lines.recv() {
        let mut result = out.write_all(line.as_bytes());
        while let (Ok(()), Ok(more)) = (&result, lines.try_recv()) {
            result = out.write_all(more.as_bytes());
        }
        if let Err(e) = result.and_then(|()| out.flush()) {
            tracing::warn!("access log write failed: {e}");
        }
    }
}

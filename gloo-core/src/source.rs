//! Config sources: where resources come from, and how changes are announced.
//!
//! A [`ConfigSource`] publishes a [`SourceSnapshot`] (all its resources, plus the errors of
//! whatever could not be read) on a `tokio::sync::watch` channel. [`MemorySource`] is the
//! embedded default: an application sets resources from code. [`DirectorySource`] reads every
//! `*.yaml`, `*.yml` and `*.json` below a folder and watches it; a file that stops parsing keeps
//! its last good contents in force, so a bad edit never drops the last good config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher};
use tokio::sync::watch;

use crate::load::{self, FileContents, LoadError, LoadedResource, Origin};
use crate::model::Resource;

/// Everything a source holds at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceSnapshot {
    /// The resources in force (for a directory: each file's newest good contents).
    pub resources: Vec<LoadedResource>,
    /// Problems reading the source: each names the file and position.
    pub errors: Vec<LoadError>,
    /// Increases by one with every published change.
    pub generation: u64,
}

/// A source of Gloo resources that announces changes.
///
/// ```
/// use gloo_core::source::{ConfigSource, MemorySource};
/// let source = MemorySource::new("app");
/// let updates = source.subscribe();
/// assert!(updates.borrow().resources.is_empty());
/// ```
pub trait ConfigSource: Send + Sync {
    /// A short name for logs and statuses (`dir:/etc/gloo`, `memory`).
    fn name(&self) -> &str;

    /// A receiver that always holds the newest snapshot and wakes on every change.
    fn subscribe(&self) -> watch::Receiver<Arc<SourceSnapshot>>;
}

/// The embedded default source: resources set from code.
#[derive(Debug)]
pub struct MemorySource {
    name: String,
    sender: watch::Sender<Arc<SourceSnapshot>>,
}

impl MemorySource {
    /// An empty source.
    pub fn new(name: impl Into<String>) -> Self {
        let (sender, _) = watch::channel(Arc::new(SourceSnapshot::default()));
        MemorySource {
            name: name.into(),
            sender,
        }
    }

    /// Replaces every resource, publishing a new snapshot.
    pub fn set(&self, resources: impl IntoIterator<Item = Resource>) {
        let origin_name: Arc<str> = self.name.as_str().into();
        let resources = resources
            .into_iter()
            .enumerate()
            .map(|(index, resource)| LoadedResource {
                resource,
                origin: Origin::new(origin_name.clone(), index + 1),
            })
            .collect();
        self.sender.send_modify(|current| {
            *current = Arc::new(SourceSnapshot {
                resources,
                errors: Vec::new(),
                generation: current.generation + 1,
            });
        });
    }

    /// Replaces every resource with those parsed from YAML text; documents that fail to parse
    /// are reported in the snapshot's errors.
    pub fn set_yaml(&self, text: &str) {
        let parsed = load::parse_str(text, self.name.as_str(), load::Format::Yaml);
        self.sender.send_modify(|current| {
            *current = Arc::new(SourceSnapshot {
                resources: parsed.resources,
                errors: parsed.errors,
                generation: current.generation + 1,
            });
        });
    }
}

impl ConfigSource for MemorySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn subscribe(&self) -> watch::Receiver<Arc<SourceSnapshot>> {
        self.sender.subscribe()
    }
}

/// Why a directory source could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The folder could not be listed.
    #[error("cannot read config directory {path}: {source}")]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file watcher could not be started.
    #[error("cannot watch config directory {path}: {source}")]
    Watch {
        /// The folder.
        path: PathBuf,
        /// The watcher's error.
        source: notify::Error,
    },
}

/// What the directory source remembers of one file.
#[derive(Debug, Clone)]
struct FileState {
    /// Length and modification time when last read, to skip unchanged files cheaply.
    stamp: (u64, Option<SystemTime>),
    /// The newest contents that parsed without errors (what is in force).
    good: Vec<LoadedResource>,
    /// Errors of the newest read, if it failed.
    errors: Vec<LoadError>,
}

/// Every `*.yaml`, `*.yml` and `*.json` file below a folder, re-read when files change.
///
/// ```no_run
/// use gloo_core::source::{ConfigSource, DirectorySource};
/// let source = DirectorySource::watch("./gloo-config").expect("config dir");
/// let snapshot = source.subscribe().borrow().clone();
/// println!("{} resources, {} errors", snapshot.resources.len(), snapshot.errors.len());
/// ```
pub struct DirectorySource {
    name: String,
    dir: PathBuf,
    state: Arc<Mutex<BTreeMap<PathBuf, FileState>>>,
    sender: watch::Sender<Arc<SourceSnapshot>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl std::fmt::Debug for DirectorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectorySource")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// How long to wait after a change for more changes before re-reading (editors write a file
/// in several steps).
const DEBOUNCE: Duration = Duration::from_millis(20);
/// The longest a burst of events delays a re-read.
const MAX_DEBOUNCE: Duration = Duration::from_millis(200);

/// Whether a watch event can change the configuration: not a mere access (reading the
/// folder to rescan it is one, and must not trigger another rescan), and about a config file
/// or a folder (not, say, a log file written beside them).
fn is_relevant(event: &notify::Event) -> bool {
    if matches!(event.kind, notify::EventKind::Access(_)) {
        return false;
    }
    event.paths.is_empty()
        || event.paths.iter().any(|p| {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            !hidden && (load::Format::from_path(p).is_some() || p.extension().is_none())
        })
}

impl DirectorySource {
    /// Reads the folder once, without watching it.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, SourceError> {
        let dir = dir.as_ref().to_path_buf();
        let (sender, _) = watch::channel(Arc::new(SourceSnapshot::default()));
        let source = DirectorySource {
            name: format!("dir:{}", dir.display()),
            dir,
            state: Arc::new(Mutex::new(BTreeMap::new())),
            sender,
            _watcher: None,
        };
        rescan(&source.dir, &source.state, &source.sender)?;
        Ok(source)
    }

    /// Reads the folder and keeps watching it: every change publishes a new snapshot.
    pub fn watch(dir: impl AsRef<Path>) -> Result<Self, SourceError> {
        let mut source = Self::load(dir)?;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| is_relevant(&e)) {
                    let _ = tx.send(());
                }
            })
            .map_err(|source_err| SourceError::Watch {
                path: source.dir.clone(),
                source: source_err,
            })?;
        watcher
            .watch(&source.dir, RecursiveMode::Recursive)
            .map_err(|source_err| SourceError::Watch {
                path: source.dir.clone(),
                source: source_err,
            })?;
        let (dir, state, sender) = (
            source.dir.clone(),
            source.state.clone(),
            source.sender.clone(),
        );
        std::thread::Builder::new()
            .name("gloo-config-watch".into())
            .spawn(move || {
                // Ends when the source (and with it the watcher, which owns `tx`) is dropped.
                while rx.recv().is_ok() {
                    // Coalesce a burst of events into one re-read, but never wait longer
                    // than MAX_DEBOUNCE (a file being written all the time cannot hold
                    // edits back).
                    let first = std::time::Instant::now();
                    while first.elapsed() < MAX_DEBOUNCE && rx.recv_timeout(DEBOUNCE).is_ok() {}
                    if let Err(err) = rescan(&dir, &state, &sender) {
                        tracing::warn!(error = %err, "config directory re-read failed; keeping the last good config");
                    }
                }
            })
            .map_err(|io| SourceError::ReadDir {
                path: source.dir.clone(),
                source: io,
            })?;
        source._watcher = Some(watcher);
        Ok(source)
    }

    /// Re-reads the folder now (the watcher does this by itself on changes).
    pub fn reload(&self) -> Result<(), SourceError> {
        rescan(&self.dir, &self.state, &self.sender)
    }
}

impl ConfigSource for DirectorySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn subscribe(&self) -> watch::Receiver<Arc<SourceSnapshot>> {
        self.sender.subscribe()
    }
}

/// Several sources served as one: their resources one after another (in the order given) and
/// all their errors, republished whenever any of them changes. `gloo run` uses it to serve the
/// Settings directory together with the config source the Settings name (Kubernetes, Consul
/// KV, another directory).
///
/// It follows its sources from tasks on the current tokio runtime (so create it inside one);
/// dropping it stops them. A change that leaves the merged resources and errors as they were
/// publishes nothing.
///
/// ```
/// use std::sync::Arc;
/// use gloo_core::source::{ConfigSource, MemorySource, MergedSource};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let a = Arc::new(MemorySource::new("a"));
/// let b = Arc::new(MemorySource::new("b"));
/// a.set_yaml("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: one}\nspec: {static: {hosts: [{addr: 10.0.0.1, port: 80}]}}\n");
/// let merged = MergedSource::new(vec![a.clone(), b.clone()]);
/// assert_eq!(merged.name(), "a+b");
/// assert_eq!(merged.subscribe().borrow().resources.len(), 1);
/// # }
/// ```
pub struct MergedSource {
    name: String,
    sender: watch::Sender<Arc<SourceSnapshot>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _sources: Vec<Arc<dyn ConfigSource>>,
}

impl std::fmt::Debug for MergedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergedSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl MergedSource {
    /// Merges `sources` (named `<first>+<second>+...`).
    pub fn new(sources: Vec<Arc<dyn ConfigSource>>) -> Self {
        let name = sources
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join("+");
        let receivers: Vec<_> = sources.iter().map(|s| s.subscribe()).collect();
        let (sender, _) = watch::channel(Arc::new(SourceSnapshot::default()));
        merge_into(&sender, &receivers);
        let tasks = (0..receivers.len())
            .map(|index| {
                let sender = sender.clone();
                let all = receivers.clone();
                let mut mine = receivers[index].clone();
                tokio::spawn(async move {
                    while mine.changed().await.is_ok() {
                        mine.borrow_and_update();
                        merge_into(&sender, &all);
                    }
                })
            })
            .collect();
        MergedSource {
            name,
            sender,
            tasks,
            _sources: sources,
        }
    }
}

/// Publishes the concatenation of what `receivers` hold now, unless it is what `sender` has.
fn merge_into(
    sender: &watch::Sender<Arc<SourceSnapshot>>,
    receivers: &[watch::Receiver<Arc<SourceSnapshot>>],
) {
    let snapshots: Vec<Arc<SourceSnapshot>> =
        receivers.iter().map(|r| r.borrow().clone()).collect();
    let resources: Vec<LoadedResource> = snapshots
        .iter()
        .flat_map(|s| s.resources.iter().cloned())
        .collect();
    let errors: Vec<LoadError> = snapshots
        .iter()
        .flat_map(|s| s.errors.iter().cloned())
        .collect();
    // `send_if_modified` holds the channel's lock, so two sources' tasks publish in turn.
    sender.send_if_modified(|current| {
        if current.generation > 0 && current.resources == resources && current.errors == errors {
            return false;
        }
        *current = Arc::new(SourceSnapshot {
            resources,
            errors,
            generation: current.generation + 1,
        });
        true
    });
}

impl ConfigSource for MergedSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn subscribe(&self) -> watch::Receiver<Arc<SourceSnapshot>> {
        self.sender.subscribe()
    }
}

impl Drop for MergedSource {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn stamp(path: &Path) -> (u64, Option<SystemTime>) {
    match std::fs::metadata(path) {
        Ok(meta) => (meta.len(), meta.modified().ok()),
        Err(_) => (0, None),
    }
}

/// Re-reads changed files and publishes a snapshot if anything changed.
fn rescan(
    dir: &Path,
    state: &Mutex<BTreeMap<PathBuf, FileState>>,
    sender: &watch::Sender<Arc<SourceSnapshot>>,
) -> Result<(), SourceError> {
    let files = load::config_files(dir).map_err(|source| SourceError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut state = match state.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut changed = false;
    let before = state.len();
    state.retain(|path, _| files.contains(path));
    changed |= state.len() != before;
    for path in files {
        let now = stamp(&path);
        if state.get(&path).is_some_and(|f| f.stamp == now) {
            continue;
        }
        changed = true;
        let FileContents { resources, errors } = load::load_file(&path);
        match state.get_mut(&path) {
            Some(file) if !errors.is_empty() => {
                // A bad edit: keep what was in force, report why the new text was refused.
                file.stamp = now;
                file.errors = errors;
                tracing::warn!(file = %path.display(), "config file has errors; keeping its last good contents");
            }
            Some(file) => {
                *file = FileState {
                    stamp: now,
                    good: resources,
                    errors: Vec::new(),
                };
            }
            None => {
                state.insert(
                    path,
                    FileState {
                        stamp: now,
                        good: resources,
                        errors,
                    },
                );
            }
        }
    }
    if changed {
        let resources = state
            .values()
            .flat_map(|f| f.good.iter().cloned())
            .collect();
        let errors = state
            .values()
            .flat_map(|f| f.errors.iter().cloned())
            .collect();
        sender.send_modify(|current| {
            *current = Arc::new(SourceSnapshot {
                resources,
                errors,
                generation: current.generation + 1,
            });
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &str =
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: NAME}\nspec: {}\n";

    fn names(snapshot: &SourceSnapshot) -> Vec<String> {
        snapshot
            .resources
            .iter()
            .map(|r| r.resource.metadata().name.clone())
            .collect()
    }

    #[test]
    fn directory_reads_nested_files_and_skips_hidden_and_other_extensions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("team/a")).unwrap();
        std::fs::write(dir.path().join("one.yaml"), UPSTREAM.replace("NAME", "one")).unwrap();
        std::fs::write(
            dir.path().join("team/a/two.yml"),
            UPSTREAM.replace("NAME", "two"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join(".hidden.yaml"),
            UPSTREAM.replace("NAME", "h"),
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not config").unwrap();
        let source = DirectorySource::load(dir.path()).unwrap();
        let snapshot = source.subscribe().borrow().clone();
        assert_eq!(names(&snapshot), ["one", "two"]);
        assert!(snapshot.errors.is_empty());
    }

    #[test]
    fn a_bad_edit_keeps_the_files_last_good_contents_and_reports_why() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ups.yaml");
        std::fs::write(&file, UPSTREAM.replace("NAME", "good")).unwrap();
        let source = DirectorySource::load(dir.path()).unwrap();
        std::fs::write(
            &file,
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: x}\nspec: {bogus: 1}\n",
        )
        .unwrap();
        source.reload().unwrap();
        let snapshot = source.subscribe().borrow().clone();
        assert_eq!(names(&snapshot), ["good"]);
        assert_eq!(snapshot.errors.len(), 1);
        assert!(
            snapshot.errors[0].to_string().contains("ups.yaml:4:"),
            "{}",
            snapshot.errors[0]
        );
        // Fixing the file replaces the kept contents and clears the error.
        std::fs::write(&file, UPSTREAM.replace("NAME", "fixed")).unwrap();
        source.reload().unwrap();
        let snapshot = source.subscribe().borrow().clone();
        assert_eq!(names(&snapshot), ["fixed"]);
        assert!(snapshot.errors.is_empty());
    }

    #[tokio::test]
    async fn watching_publishes_edits_and_deletions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), UPSTREAM.replace("NAME", "a")).unwrap();
        let source = DirectorySource::watch(dir.path()).unwrap();
        let mut updates = source.subscribe();
        updates.borrow_and_update();
        std::fs::write(dir.path().join("b.yaml"), UPSTREAM.replace("NAME", "b")).unwrap();
        let wait = |mut rx: watch::Receiver<Arc<SourceSnapshot>>, want: Vec<&'static str>| async move {
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if names(&rx.borrow_and_update()) == want {
                        return rx;
                    }
                    rx.changed().await.unwrap();
                }
            })
            .await
            .expect("the watcher published the change")
        };
        let updates = wait(updates, vec!["a", "b"]).await;
        std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
        wait(updates, vec!["b"]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_written_all_the_time_beside_the_config_does_not_hold_edits_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), UPSTREAM.replace("NAME", "a")).unwrap();
        let source = DirectorySource::watch(dir.path()).unwrap();
        let mut updates = source.subscribe();
        updates.borrow_and_update();
        // A log in the config directory, appended to every 5 ms (faster than the debounce).
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (stop, log) = (stop.clone(), dir.path().join("gloo.log"));
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    use std::io::Write;
                    if let Ok(mut f) = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                    {
                        let _ = writeln!(f, "log line");
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(dir.path().join("b.yaml"), UPSTREAM.replace("NAME", "b")).unwrap();
        let published = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                if names(&updates.borrow_and_update()) == ["a", "b"] {
                    return;
                }
                updates.changed().await.unwrap();
            }
        })
        .await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        assert!(
            published.is_ok(),
            "the edit was held back by the log writes"
        );
    }

    #[test]
    fn memory_source_publishes_generations() {
        let source = MemorySource::new("memory");
        let rx = source.subscribe();
        source.set_yaml(&UPSTREAM.replace("NAME", "m"));
        assert_eq!(rx.borrow().generation, 1);
        assert_eq!(names(&rx.borrow()), ["m"]);
        source.set(Vec::new());
        assert_eq!(rx.borrow().generation, 2);
        assert!(rx.borrow().resources.is_empty());
    }
}

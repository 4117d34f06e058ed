//! Running rule evaluation off the async runtime's workers.
//!
//! ModSecurity evaluates synchronously (hundreds of microseconds per request with the CRS), so
//! every call into it runs on the WAF's own evaluation threads, and the filter awaits the
//! result as an [`Evaluation`]. Outside a tokio runtime (nothing could wait for the result)
//! the work runs in place.
//!
//! # Evaluation threads at the lowest CPU priority
//!
//! Every evaluation thread runs in Linux's `SCHED_IDLE` class. So evaluation uses every core
//! the workers leave idle, and a worker with a request to serve takes its core back at once:
//! evaluation never delays the requests of routes without a WAF, however many WAF requests
//! are queued. The price is that under a load of non-WAF traffic saturating every core, WAF
//! requests wait (for the cores, not for a lock): that is the priority the gateway should
//! have, since a WAF request costs a thousand times as much CPU as a plain one. When the
//! threads cannot be started, or the priority cannot be set, evaluation falls back to tokio's
//! blocking pool.
//!
//! # One lane per CPU
//!
//! There is one lane per CPU the process may use (its affinity mask): a queue, and a thread
//! kept to that CPU. A job goes to the lane of the CPU its runtime thread submits it from, so
//! it runs on that same core as soon as the runtime thread waits, with the request and the
//! rules still in that core's caches and no wake-up sent to another processor. The runtime
//! thread, woken with the result, comes back to the same core too (Linux counts a core
//! running only `SCHED_IDLE` work as idle). A job does not wait for its own lane's thread
//! when it cannot run soon: when that thread is inside another job, an idle thread of another
//! lane takes the job at once; and a job that has waited [`STEAL_AFTER`] goes to whichever
//! lane's thread looks next. While jobs keep coming, one idle thread (the watcher) looks every
//! [`STEAL_AFTER`], so a job whose core stays busy (its worker saturated with non-WAF
//! traffic) still runs on an idle core.
//!
//! A deployment that prefers the WAF's latency under saturation to the other routes' sets the
//! environment variable `GLOO_WAF_EVALUATION_PRIORITY=normal` (read when the threads start):
//! they then keep the ordinary scheduling class and share the cores with the workers as equals.
//! `lowest` is the default; any other value is reported and taken as `lowest`.
//!
//! With tokio's blocking pool, evaluation threads competed with the workers as equals: on 2
//! cores, with 16 concurrent CRS evaluations, a plain route's p99 was about 13 times its idle
//! p99 (`benches/proxy/waf_isolation.sh`).
//!
//! # What a trip costs
//!
//! A trip to the evaluation threads costs two thread wake-ups: an evaluation thread's, then
//! (with the result) the runtime's, each a futex or eventfd syscall and two context switches.
//! With the CRS that is all of what the layer adds to libmodsecurity's own transaction
//! (`benches/waf.rs --paired`, in the process's CPU time: evaluated in place, the layer costs
//! what the engine does). So the layer makes as few trips as it can (two for a benign exchange:
//! see `future.rs`). The alternatives below were measured with the same bench, each against
//! `spawn_blocking` in interleaved runs on a 2-core machine at load average 4 to 6 (benign
//! GET, filter's CPU over libmodsecurity's own measured first; `spawn_blocking` was +18% to
//! +21% there):
//!
//! * A dedicated pool (one thread per core, one queue, a oneshot reply; used until the lanes
//!   replaced it): +16% to +23%, no better. It saves tokio's bookkeeping, not the wake-ups.
//! * The same pool with idle threads spinning before they park, so that the next job needs
//!   no wake-up: +30% with 50 µs of spin, +45% with 200 µs. The spin burns more CPU than a
//!   wake-up: the runtime thread, woken with the result, itself waits for a core on a busy
//!   machine, so the next job comes later than the spin lasts.
//! * Every thread of the process pinned to one core (`taskset`): +0.1% to +5.5% in runs
//!   where the shared queue cost +9% to +38%. So most of a trip's cost is crossing cores,
//!   which is what the lanes avoid without pinning the workers (see the README for the
//!   lanes' own figures).
//! * `tokio::task::block_in_place` evaluates on the worker's own thread after handing the
//!   worker's other tasks to a new thread. It panics on a current-thread runtime, and
//!   gloo-proxy's workers are current-thread runtimes (one per core, as Envoy's are); on a
//!   multi-thread runtime it still wakes a thread per call to take over the worker.
//! * Evaluating in place (1 ms of CPU per CRS request) would stall every other request of
//!   the worker: the one thing this module is for.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::ffi;

/// The work did not complete (it panicked, or the runtime is shutting down).
#[derive(Debug)]
pub(crate) struct EvaluationFailed;

/// Work running on an evaluation thread; resolves to its result.
#[derive(Debug)]
pub(crate) struct Evaluation<T> {
    state: State<T>,
}

#[derive(Debug)]
enum State<T> {
    Evaluator(oneshot::Receiver<T>),
    Pool(JoinHandle<T>),
    Done(Option<T>),
}

impl<T: Send + 'static> Evaluation<T> {
    /// Starts `work` on an evaluation thread (tokio's blocking pool when there are none; in
    /// place without a runtime).
    pub(crate) fn spawn(work: impl FnOnce() -> T + Send + 'static) -> Self {
        let state = match tokio::runtime::Handle::try_current() {
            Err(_) => State::Done(Some(work())),
            Ok(runtime) => match evaluators() {
                Some(lanes) => {
                    let (reply, result) = oneshot::channel();
                    lanes.submit(Box::new(move || {
                        // A request dropped while its job waited (its client left, or its
                        // route timed out) is not evaluated: under overload the queues shed
                        // the work nobody waits for.
                        if !reply.is_closed() {
                            let _ = reply.send(work());
                        }
                    }));
                    State::Evaluator(result)
                }
                None => State::Pool(runtime.spawn_blocking(work)),
            },
        };
        Self { state }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Jobs queued for the evaluation threads and not started yet.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// How many evaluations wait for an evaluation thread (see `waf::evaluations_waiting`).
pub(crate) fn waiting() -> usize {
    WAITING.load(Ordering::SeqCst)
}

/// How long a job waits for its own lane's thread (whose core its runtime thread just used,
/// and will give up when it next waits) before another lane's thread may take it; a job whose
/// lane's thread is inside another job may be taken at once.
const STEAL_AFTER: Duration = Duration::from_millis(1);
/// How long the watcher keeps watching after the last job was submitted.
const WATCH_FOR: Duration = Duration::from_millis(50);
/// No lane's thread is watching.
const NO_WATCHER: usize = usize::MAX;

/// Jobs submitted so far (the watcher's sign that traffic goes on).
static SUBMITTED: AtomicUsize = AtomicUsize::new(0);

/// The evaluation threads: one lane per CPU the process may use, each a queue and a thread
/// kept to that CPU (see the module docs).
pub(crate) struct Lanes {
    lanes: Vec<Lane>,
    /// The lane of each CPU, by CPU number.
    by_cpu: Vec<usize>,
    /// The lane whose thread watches the other lanes' queues (it looks every
    /// [`STEAL_AFTER`] while jobs are submitted), or [`NO_WATCHER`].
    watcher: AtomicUsize,
}

struct Lane {
    jobs: Mutex<VecDeque<Queued>>,
    /// Set by the lane's thread before it parks; cleared by whoever wakes it (or by the
    /// thread, when it wakes by itself).
    parked: AtomicBool,
    /// Whether the lane's thread is inside a job.
    running: AtomicBool,
    /// The lane's thread, registered by the thread itself (see [`Lanes::serve`]).
    thread: OnceLock<std::thread::Thread>,
}

impl Lane {
    fn new() -> Self {
        Self {
            jobs: Mutex::new(VecDeque::new()),
            parked: AtomicBool::new(false),
            running: AtomicBool::new(false),
            thread: OnceLock::new(),
        }
    }
}

struct Queued {
    job: Job,
    since: Instant,
}

fn lock(jobs: &Mutex<VecDeque<Queued>>) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
    // A job never runs under the lock, so a poisoned queue is still consistent.
    jobs.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Lanes {
    /// Lanes for `cpus` (lane `i` is `cpus[i]`'s), with no threads yet: each lane's thread
    /// registers itself in [`serve`](Self::serve). A CPU the process may not use shares a lane
    /// by its number.
    fn new(cpus: &[usize]) -> Self {
        let count = cpus.len().max(1);
        let by_cpu = (0..cpus.iter().max().map_or(0, |&cpu| cpu + 1))
            .map(|cpu| cpus.iter().position(|&c| c == cpu).unwrap_or(cpu % count))
            .collect();
        Self {
            lanes: (0..count).map(|_| Lane::new()).collect(),
            by_cpu,
            watcher: AtomicUsize::new(NO_WATCHER),
        }
    }

    /// How many lanes (and evaluation threads) there are.
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.lanes.len()
    }

    /// The lane of the CPU the caller runs on.
    fn lane_here(&self) -> usize {
        ffi::current_cpu()
            .and_then(|cpu| self.by_cpu.get(cpu).copied())
            .unwrap_or(0)
    }

    /// Queues `job` on the caller's CPU's lane and wakes that lane's thread. When that thread
    /// is inside a job (the new one would wait for it), or no thread watches the queues, wakes
    /// another lane's thread too.
    fn submit(&self, job: Job) {
        self.submit_to(self.lane_here(), job, Instant::now());
    }

    /// [`submit`](Self::submit) to lane `here`, of a job queued at `since`.
    fn submit_to(&self, here: usize, job: Job, since: Instant) {
        WAITING.fetch_add(1, Ordering::SeqCst);
        SUBMITTED.fetch_add(1, Ordering::SeqCst);
        lock(&self.lanes[here].jobs).push_back(Queued { job, since });
        self.wake(here);
        if self.lanes[here].running.load(Ordering::SeqCst)
            || self.watcher.load(Ordering::SeqCst) == NO_WATCHER
        {
            self.wake_another(here);
        }
    }

    /// Wakes a parked thread of a lane other than `index`, if there is one.
    fn wake_another(&self, index: usize) {
        let count = self.lanes.len();
        let _ = (1..count).any(|step| self.wake((index + step) % count));
    }

    /// Wakes lane `index`'s thread if it is parked; whether it was.
    fn wake(&self, index: usize) -> bool {
        let lane = &self.lanes[index];
        if !lane.parked.swap(false, Ordering::SeqCst) {
            return false;
        }
        if let Some(thread) = lane.thread.get() {
            thread.unpark();
        }
        true
    }

    /// The next job for lane `index`'s thread: its own lane's first; else another lane's
    /// first job, when that lane's thread is inside a job or the job has waited
    /// [`STEAL_AFTER`].
    fn take(&self, index: usize) -> Option<Job> {
        let count = self.lanes.len();
        // One lane's lock at a time (holding one while taking another could deadlock with a
        // thread doing the same the other way round).
        let own = lock(&self.lanes[index].jobs).pop_front();
        let job = own.or_else(|| {
            (1..count).find_map(|step| {
                let lane = &self.lanes[(index + step) % count];
                let mut jobs = lock(&lane.jobs);
                let first = jobs.front()?;
                (lane.running.load(Ordering::SeqCst) || first.since.elapsed() >= STEAL_AFTER)
                    .then(|| jobs.pop_front())
                    .flatten()
            })
        })?;
        WAITING.fetch_sub(1, Ordering::SeqCst);
        Some(job.job)
    }

    /// Runs `job` on lane `index`'s thread.
    fn run(&self, index: usize, job: Job) {
        let lane = &self.lanes[index];
        lane.running.store(true, Ordering::SeqCst);
        // Jobs behind this one would wait for it (a job submitted before `running` was set
        // woke nobody else), and a busy thread watches nothing: another lane's thread takes
        // over.
        let was_watching = self
            .watcher
            .compare_exchange(index, NO_WATCHER, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if !lock(&lane.jobs).is_empty() || (was_watching && WAITING.load(Ordering::SeqCst) > 0) {
            self.wake_another(index);
        }
        // A panicking job drops its reply (its request answers 500); the thread carries on.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
        lane.running.store(false, Ordering::SeqCst);
    }

    /// Lane `index`'s thread: runs jobs, its own lane's first; parks when there are none. One
    /// idle thread at a time watches the other lanes while jobs are being submitted, so a job
    /// whose own thread cannot get its core (a busy runtime thread holds it) is taken by
    /// another core after [`STEAL_AFTER`].
    fn serve(&self, index: usize) {
        let lane = &self.lanes[index];
        // Before `parked` is first set, so whoever finds it set can wake this thread.
        let _ = lane.thread.set(std::thread::current());
        let mut submitted = SUBMITTED.load(Ordering::SeqCst);
        let mut last_activity = Instant::now();
        loop {
            // Marked parked before it looks, so that a job queued after the look wakes it.
            lane.parked.store(true, Ordering::SeqCst);
            if let Some(job) = self.take(index) {
                lane.parked.store(false, Ordering::SeqCst);
                self.run(index, job);
                continue;
            }
            let now = SUBMITTED.load(Ordering::SeqCst);
            if now != submitted || WAITING.load(Ordering::SeqCst) > 0 {
                submitted = now;
                last_activity = Instant::now();
            }
            let watching = self.lanes.len() > 1
                && last_activity.elapsed() < WATCH_FOR
                && self
                    .watcher
                    .compare_exchange(NO_WATCHER, index, Ordering::SeqCst, Ordering::SeqCst)
                    .map_or_else(|current| current == index, |_| true);
            if watching {
                std::thread::park_timeout(STEAL_AFTER);
            } else {
                let stopped_watching = self
                    .watcher
                    .compare_exchange(index, NO_WATCHER, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                // A job submitted while the watcher stopped may have woken nobody: the
                // watcher looks again (and watches on) instead of parking.
                if !(stopped_watching && WAITING.load(Ordering::SeqCst) > 0) {
                    std::thread::park();
                }
            }
            lane.parked.store(false, Ordering::SeqCst);
        }
    }
}

/// The evaluation lanes, started on first use (a [`WafLayer`](super::WafLayer) starts them
/// when it is built, so that no request waits for them); `None` when they cannot run (no
/// thread could start, or the lowest priority could not be set).
pub(crate) fn evaluators() -> Option<&'static Lanes> {
    static LANES: OnceLock<Option<&'static Lanes>> = OnceLock::new();
    *LANES.get_or_init(start_evaluators)
}

/// The variable that chooses the evaluation threads' priority (see the module docs).
const PRIORITY_VARIABLE: &str = "GLOO_WAF_EVALUATION_PRIORITY";

/// Whether the evaluation threads run at the lowest priority, from [`PRIORITY_VARIABLE`].
fn lowest_priority_wanted() -> bool {
    match std::env::var(PRIORITY_VARIABLE) {
        Err(_) => true,
        Ok(value) if value.eq_ignore_ascii_case("lowest") => true,
        Ok(value) if value.eq_ignore_ascii_case("normal") => false,
        Ok(value) => {
            tracing::warn!(
                "{PRIORITY_VARIABLE}={value:?} is neither `lowest` nor `normal`: using `lowest`"
            );
            true
        }
    }
}

fn start_evaluators() -> Option<&'static Lanes> {
    let mut cpus = ffi::allowed_cpus();
    if cpus.is_empty() {
        let count = std::thread::available_parallelism().map_or(1, |n| n.get());
        cpus = (0..count).collect();
    }
    let count = cpus.len();
    let lanes: &'static Lanes = Box::leak(Box::new(Lanes::new(&cpus)));
    let lowest = lowest_priority_wanted();
    let (started, ready) = std::sync::mpsc::channel::<bool>();
    for (index, &cpu) in cpus.iter().enumerate() {
        let started = started.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("gloo-waf-{index}"))
            .spawn(move || {
                if let Err(e) = ffi::pin_to_cpu(cpu) {
                    tracing::warn!("WAF evaluation thread {index}: cannot keep to CPU {cpu}: {e}");
                }
                let lowered = if lowest {
                    ffi::lowest_cpu_priority()
                } else {
                    Ok(())
                };
                if let Err(e) = &lowered {
                    tracing::warn!("WAF evaluation thread: cannot lower its CPU priority: {e}");
                }
                let _ = started.send(lowered.is_ok());
                if lowered.is_ok() {
                    lanes.serve(index);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("WAF evaluation thread {index} did not start: {e}");
            return None;
        }
    }
    drop(started);
    // Every thread says whether it runs at the lowest priority; all must.
    ready.iter().take(count).all(|ok| ok).then_some(lanes)
}

// Never pinned structurally: the result is only ever moved out whole.
impl<T> Unpin for Evaluation<T> {}

impl<T> Future for Evaluation<T> {
    type Output = Result<T, EvaluationFailed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            State::Evaluator(result) => Pin::new(result).poll(cx).map_err(|_| EvaluationFailed),
            State::Pool(handle) => Pin::new(handle).poll(cx).map_err(|_| EvaluationFailed),
            State::Done(result) => Poll::Ready(result.take().ok_or(EvaluationFailed)),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn evaluation_runs_on_the_waf_threads_at_the_lowest_priority_and_survives_a_panic() {
        let failed = Evaluation::spawn(|| -> u32 { panic!("a rule set bug") }).await;
        assert!(failed.is_err(), "a panicking job fails its evaluation");
        // More jobs than threads: all still run, on the (surviving) evaluation threads.
        let threads = evaluators().expect("the evaluation threads run").count();
        let mut runs = Vec::new();
        for _ in 0..threads * 3 {
            runs.push(Evaluation::spawn(|| {
                let name = std::thread::current().name().map(str::to_owned);
                (name, ffi::runs_at_lowest_cpu_priority())
            }));
        }
        for run in runs {
            let (name, idle) = run.await.expect("the job ran");
            let name = name.unwrap_or_default();
            assert!(name.starts_with("gloo-waf-"), "ran on {name:?}");
            assert!(idle, "{name} runs at the lowest priority");
        }
        assert!(
            !ffi::runs_at_lowest_cpu_priority(),
            "the runtime's thread keeps its own"
        );
    }

    #[tokio::test]
    async fn a_job_whose_request_is_gone_is_not_evaluated() {
        let threads = evaluators().expect("the evaluation threads run").count();
        // Hold every evaluation thread, queue a job, drop its request, then let them go.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let (busy_tx, busy_rx) = std::sync::mpsc::channel::<()>();
        let holders: Vec<_> = (0..threads)
            .map(|_| {
                let hold = hold.clone();
                let busy = busy_tx.clone();
                Evaluation::spawn(move || {
                    let _ = busy.send(());
                    let _ = hold.lock().map(|h| h.recv());
                })
            })
            .collect();
        for _ in 0..threads {
            busy_rx.recv().expect("every evaluation thread is held");
        }
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Nothing starts while every thread is held: the count only grows.
        let before = waiting();
        let dropped = {
            let ran = ran.clone();
            Evaluation::spawn(move || ran.store(true, std::sync::atomic::Ordering::SeqCst))
        };
        drop(dropped);
        assert!(waiting() > before, "the queued job is counted as waiting");
        for _ in 0..threads {
            release.send(()).expect("a holder waits");
        }
        for holder in holders {
            holder.await.expect("held and released");
        }
        // Every thread at a barrier at once: each has finished what it took before, and the
        // dropped job was queued before these.
        let barrier = Arc::new(std::sync::Barrier::new(threads));
        let barriers: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = barrier.clone();
                Evaluation::spawn(move || {
                    barrier.wait();
                })
            })
            .collect();
        for b in barriers {
            b.await.expect("through the barrier");
        }
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "the dropped job did not run"
        );
    }

    /// Lanes with no threads (a test starts the ones it wants), one per CPU `0..count`.
    fn lanes(count: usize) -> &'static Lanes {
        let cpus: Vec<usize> = (0..count).collect();
        Box::leak(Box::new(Lanes::new(&cpus)))
    }

    /// Starts lane `index`'s thread and waits until it has looked for work; returns its id.
    fn serve(lanes: &'static Lanes, index: usize) -> std::thread::ThreadId {
        let id = std::thread::spawn(move || lanes.serve(index)).thread().id();
        while !lanes.lanes[index].parked.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        id
    }

    /// A job that sends the id of the thread it runs on.
    fn reports_its_thread(to: std::sync::mpsc::Sender<std::thread::ThreadId>) -> Job {
        Box::new(move || {
            let _ = to.send(std::thread::current().id());
        })
    }

    fn queued(lanes: &Lanes, index: usize) -> usize {
        lock(&lanes.lanes[index].jobs).len()
    }

    #[test]
    fn a_job_is_queued_on_the_lane_of_the_cpu_it_is_submitted_from() {
        let cpus = ffi::allowed_cpus();
        let (&cpu, &other) = (cpus.last().expect("a CPU"), cpus.first().expect("a CPU"));
        let lanes: &'static Lanes = Box::leak(Box::new(Lanes::new(&cpus)));
        for target in [cpu, other] {
            std::thread::spawn(move || {
                ffi::pin_to_cpu(target).expect("a thread may keep to a CPU it is allowed");
                lanes.submit(Box::new(|| {}));
            })
            .join()
            .expect("submitted");
        }
        let last = cpus.len() - 1;
        assert_eq!(queued(lanes, last), if last == 0 { 2 } else { 1 });
        assert_eq!(queued(lanes, 0), if last == 0 { 2 } else { 1 });
        assert_eq!((0..cpus.len()).map(|i| queued(lanes, i)).sum::<usize>(), 2);
    }

    #[test]
    fn another_lane_takes_a_job_only_when_its_own_thread_is_busy_or_it_has_waited() {
        let lanes = lanes(2);
        lanes.submit_to(1, Box::new(|| {}), Instant::now());
        assert!(
            lanes.take(0).is_none(),
            "a fresh job waits for its own lane's thread"
        );
        assert!(
            lanes.take(1).is_some(),
            "its own lane's thread takes it at once"
        );
        lanes.submit_to(1, Box::new(|| {}), Instant::now());
        lanes.lanes[1].running.store(true, Ordering::SeqCst);
        assert!(
            lanes.take(0).is_some(),
            "a job whose lane's thread is busy goes at once"
        );
        lanes.lanes[1].running.store(false, Ordering::SeqCst);
        let old = Instant::now()
            .checked_sub(STEAL_AFTER)
            .expect("the clock is past STEAL_AFTER");
        lanes.submit_to(1, Box::new(|| {}), old);
        assert!(
            lanes.take(0).is_some(),
            "a job that waited STEAL_AFTER goes to any lane"
        );
        assert!(lanes.take(0).is_none() && lanes.take(1).is_none());
    }

    #[test]
    fn a_job_submitted_while_its_lane_is_busy_runs_on_another_lane_at_once() {
        let lanes = lanes(2);
        let first = serve(lanes, 0);
        let second = serve(lanes, 1);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (held_tx, held) = std::sync::mpsc::channel();
        lanes.submit_to(
            0,
            Box::new(move || {
                let _ = held_tx.send(std::thread::current().id());
                let _ = hold.recv();
            }),
            Instant::now(),
        );
        // Lane 0's thread, unless it was slow to take the job and lane 1's took it (after
        // STEAL_AFTER): either way, one thread is held.
        let holder = held.recv().expect("the holder runs");
        let free = if holder == first { second } else { first };
        let (ran_tx, ran) = std::sync::mpsc::channel();
        lanes.submit_to(0, reports_its_thread(ran_tx), Instant::now());
        // Only the other thread can run it while the holder's is held.
        let ran_on = ran
            .recv_timeout(Duration::from_secs(30))
            .expect("the job ran while a thread was held");
        assert_eq!(ran_on, free);
        release.send(()).expect("the holder waits");
    }

    #[test]
    fn a_job_its_own_lane_never_takes_is_taken_by_the_watching_lane() {
        // Lane 1 has no thread, as if its core never came free.
        let lanes = lanes(2);
        let watcher = serve(lanes, 0);
        let (ran_tx, ran) = std::sync::mpsc::channel();
        lanes.submit_to(1, reports_its_thread(ran_tx), Instant::now());
        let ran_on = ran
            .recv_timeout(Duration::from_secs(30))
            .expect("the watching lane took the job");
        assert_eq!(ran_on, watcher);
    }

    #[test]
    fn without_a_runtime_evaluation_runs_in_place() {
        let here = std::thread::current().id();
        let evaluation = Evaluation::spawn(move || std::thread::current().id() == here);
        assert!(matches!(evaluation.state, State::Done(Some(true))));
    }
}

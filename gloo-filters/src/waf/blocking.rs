//! Running rule evaluation off the async runtime's workers.
//!
//! ModSecurity evaluates synchronously (hundreds of microseconds per request with the CRS), so
//! every call into it runs on the WAF's own evaluation threads, and the filter awaits the
//! result as an [`Evaluation`]. Outside a tokio runtime (nothing could wait for the result)
//! the work runs in place.
//!
//! # Evaluation threads at the lowest CPU priority
//!
//! There are as many evaluation threads as the machine has cores, sharing one queue, and each
//! runs in Linux's `SCHED_IDLE` class. So evaluation uses every core the workers leave idle,
//! and a worker with a request to serve takes its core back at once: evaluation never delays
//! the requests of routes without a WAF, however many WAF requests are queued. The price is
//! that under a load of non-WAF traffic saturating every core, WAF requests wait (for the
//! cores, not for a lock): that is the priority the gateway should have, since a WAF request
//! costs a thousand times as much CPU as a plain one. When the threads cannot be started, or
//! the priority cannot be set, evaluation falls back to tokio's blocking pool, as before.
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
//! * A dedicated pool (one thread per core, one queue, a oneshot reply; what is used now, at
//!   the lowest priority, for isolation): +16% to +23%, no better. It saves tokio's
//!   bookkeeping, not the wake-ups, which are what cost.
//! * The same pool with idle threads spinning before they park, so that the next job needs
//!   no wake-up: +30% with 50 µs of spin, +45% with 200 µs. The spin burns more CPU than a
//!   wake-up: the runtime thread, woken with the result, itself waits for a core on a busy
//!   machine, so the next job comes later than the spin lasts.
//! * Every thread pinned to one core (no inter-processor wake-up, the rules stay in one
//!   core's caches): no better at load 4 to 6, but 954 µs instead of 1007 µs per GET on the
//!   nearly idle machine, about half the trips' cost. Pinning is not done: gloo-proxy's
//!   workers are not pinned either, and an evaluation thread pinned to a core a worker keeps
//!   busy could not run at all while another core sat idle (the lowest priority waits).
//! * `tokio::task::block_in_place` evaluates on the worker's own thread after handing the
//!   worker's other tasks to a new thread. It panics on a current-thread runtime, and
//!   gloo-proxy's workers are current-thread runtimes (one per core, as Envoy's are); on a
//!   multi-thread runtime it still wakes a thread per call to take over the worker.
//! * Evaluating in place (1 ms of CPU per CRS request) would stall every other request of
//!   the worker: the one thing this module is for.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

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
                Some(queue) => {
                    let (reply, result) = oneshot::channel();
                    WAITING.fetch_add(1, Ordering::Relaxed);
                    let job: Job = Box::new(move || {
                        WAITING.fetch_sub(1, Ordering::Relaxed);
                        // A request dropped while its job waited (its client left, or its
                        // route timed out) is not evaluated: under overload the queue sheds
                        // the work nobody waits for.
                        if !reply.is_closed() {
                            let _ = reply.send(work());
                        }
                    });
                    match queue.send(job) {
                        Ok(()) => State::Evaluator(result),
                        // The threads are gone (they never stop while the queue lives, so
                        // this is not expected): the evaluation fails, and its request with it.
                        Err(_) => {
                            WAITING.fetch_sub(1, Ordering::Relaxed);
                            State::Done(None)
                        }
                    }
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
    WAITING.load(Ordering::Relaxed)
}

/// The evaluation threads' queue, started on first use (a [`WafLayer`](super::WafLayer) starts
/// them when it is built, so that no request waits for them); `None` when they cannot run (no
/// thread could start, or the lowest priority could not be set).
pub(crate) fn evaluators() -> Option<&'static Sender<Job>> {
    static QUEUE: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(start_evaluators).as_ref()
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

fn start_evaluators() -> Option<Sender<Job>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lowest = lowest_priority_wanted();
    let (queue, jobs) = mpsc::channel::<Job>();
    let jobs = Arc::new(Mutex::new(jobs));
    let (started, ready) = mpsc::channel::<bool>();
    for index in 0..threads {
        let jobs = jobs.clone();
        let started = started.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("gloo-waf-{index}"))
            .spawn(move || {
                let lowered = if lowest {
                    ffi::lowest_cpu_priority()
                } else {
                    Ok(())
                };
                if let Err(e) = &lowered {
                    tracing::warn!("WAF evaluation thread: cannot lower its CPU priority: {e}");
                }
                let _ = started.send(lowered.is_ok());
                if lowered.is_err() {
                    return;
                }
                loop {
                    let job = match jobs.lock() {
                        Ok(jobs) => jobs.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    let Ok(job) = job else { return };
                    // A panicking job drops its reply (its request answers 500); the thread
                    // carries on.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("WAF evaluation thread {index} did not start: {e}");
            return None;
        }
    }
    drop(started);
    // Every thread says whether it runs at the lowest priority; all must.
    ready.iter().take(threads).all(|ok| ok).then_some(queue)
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

    #[tokio::test]
    async fn evaluation_runs_on_the_waf_threads_at_the_lowest_priority_and_survives_a_panic() {
        let failed = Evaluation::spawn(|| -> u32 { panic!("a rule set bug") }).await;
        assert!(failed.is_err(), "a panicking job fails its evaluation");
        // More jobs than threads: all still run, on the (surviving) evaluation threads.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
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
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
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

    #[test]
    fn without_a_runtime_evaluation_runs_in_place() {
        let here = std::thread::current().id();
        let evaluation = Evaluation::spawn(move || std::thread::current().id() == here);
        assert!(matches!(evaluation.state, State::Done(Some(true))));
    }
}

//! Running rule evaluation off the async runtime's workers.
//!
//! ModSecurity evaluates synchronously (hundreds of microseconds per request with the CRS), so
//! every call into it runs on tokio's blocking pool (`spawn_blocking`), and the filter awaits
//! the result as an [`Evaluation`]. Outside a tokio runtime there is no pool to use, and the
//! work runs in place.
//!
//! # Why tokio's blocking pool
//!
//! A trip to the pool costs two thread wake-ups: a pool thread's, then (with the result) the
//! runtime's, each a futex or eventfd syscall and two context switches. With the CRS that is
//! most of what the layer adds to libmodsecurity's own transaction (`benches/waf.rs`, in the
//! process's CPU time). So the layer makes as few trips as it can (two for a benign exchange:
//! see `future.rs`). The alternatives below were measured with the same bench, each against
//! `spawn_blocking` in interleaved runs on a 2-core machine at load average 4 to 6 (benign
//! GET, filter's CPU over libmodsecurity's own measured first; `spawn_blocking` was +18% to
//! +21% there):
//!
//! * A dedicated pool (one thread per core, one queue, a oneshot reply): +16% to +23%, no
//!   better. It saves tokio's bookkeeping, not the wake-ups, which are what cost.
//! * The same pool with idle threads spinning before they park, so that the next job needs
//!   no wake-up: +30% with 50 µs of spin, +45% with 200 µs. The spin burns more CPU than a
//!   wake-up: the runtime thread, woken with the result, itself waits for a core on a busy
//!   machine, so the next job comes later than the spin lasts.
//! * Every thread pinned to one core (no inter-processor wake-up, the rules stay in one
//!   core's caches): no better at load 4 to 6, but 954 µs instead of 1007 µs per GET on the
//!   nearly idle machine, about half the trips' cost. Pinning is not done: an evaluation
//!   sharing its worker's core would take that core's time from the worker's other requests.
//! * `tokio::task::block_in_place` evaluates on the worker's own thread after handing the
//!   worker's other tasks to a new thread. It panics on a current-thread runtime, and
//!   gloo-proxy's workers are current-thread runtimes (one per core, as Envoy's are); on a
//!   multi-thread runtime it still wakes a thread per call to take over the worker.
//! * Evaluating in place (1 ms of CPU per CRS request) would stall every other request of
//!   the worker: the one thing this module is for.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::JoinHandle;

/// The work did not complete (it panicked, or the runtime is shutting down).
#[derive(Debug)]
pub(crate) struct EvaluationFailed;

/// Work running on the blocking pool; resolves to its result.
#[derive(Debug)]
pub(crate) struct Evaluation<T> {
    state: State<T>,
}

#[derive(Debug)]
enum State<T> {
    Pool(JoinHandle<T>),
    Done(Option<T>),
}

impl<T: Send + 'static> Evaluation<T> {
    /// Starts `work` on the current runtime's blocking pool (in place without a runtime).
    pub(crate) fn spawn(work: impl FnOnce() -> T + Send + 'static) -> Self {
        let state = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => State::Pool(runtime.spawn_blocking(work)),
            Err(_) => State::Done(Some(work())),
        };
        Self { state }
    }
}

// Never pinned structurally: the result is only ever moved out whole.
impl<T> Unpin for Evaluation<T> {}

impl<T> Future for Evaluation<T> {
    type Output = Result<T, EvaluationFailed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            State::Pool(handle) => Pin::new(handle).poll(cx).map_err(|_| EvaluationFailed),
            State::Done(result) => Poll::Ready(result.take().ok_or(EvaluationFailed)),
        }
    }
}

//! Running rule evaluation off the async runtime's workers.
//!
//! ModSecurity evaluates synchronously (hundreds of microseconds per request with the CRS), so
//! every call into it runs on tokio's blocking pool (`spawn_blocking`), and the filter awaits
//! the result as an [`Evaluation`]. Outside a tokio runtime there is no pool to use, and the
//! work runs in place.

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

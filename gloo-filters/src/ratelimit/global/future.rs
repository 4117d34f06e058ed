//! The response future of [`GlobalRateLimit`](super::GlobalRateLimit), and the headers Envoy's
//! rate limit filter writes.

use std::fmt;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::Service;

use super::layer::Config;
use super::request::{Code, DescriptorStatus, RateLimitResponse};
use crate::ratelimit::RateLimited;

static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
static X_ENVOY_RATELIMITED: HeaderName = HeaderName::from_static("x-envoy-ratelimited");

/// Envoy's `XRateLimitHeaderUtils::populateHeaders`
/// (`source/extensions/filters/http/ratelimit/ratelimit_headers.cc`): the status with the
/// fewest requests remaining (the first of equals) gives `x-ratelimit-remaining` and
/// `x-ratelimit-reset`; `x-ratelimit-limit` is its limit followed by the quota policy of every
/// status with a limit, `, <limit>;w=<window seconds>[;name="<name>"]`. Statuses without a
/// limit are skipped; none with a limit: no headers.
pub(crate) fn x_ratelimit_headers(statuses: &[DescriptorStatus]) -> Option<HeaderMap> {
    let min = statuses.iter().filter(|s| s.current_limit.is_some()).fold(
        None::<&DescriptorStatus>,
        |min, s| match min {
            Some(m) if m.limit_remaining <= s.limit_remaining => Some(m),
            _ => Some(s),
        },
    )?;
    let limit = min.current_limit.as_ref()?;
    let mut value = limit.requests_per_unit().to_string();
    for status in statuses {
        if let Some(l) = &status.current_limit {
            let _ = write!(
                value,
                ", {};w={}",
                l.requests_per_unit(),
                l.unit().seconds()
            );
            if let Some(name) = l.get_name() {
                let _ = write!(value, ";name=\"{name}\"");
            }
        }
    }
    let mut headers = HeaderMap::with_capacity(3);
    // A limit name that is not a valid header value drops only the limit header.
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.append(X_RATELIMIT_LIMIT.clone(), value);
    }
    headers.append(
        X_RATELIMIT_REMAINING.clone(),
        HeaderValue::from(min.limit_remaining),
    );
    let reset = min.duration_until_reset.map_or(0, |d| d.as_secs());
    headers.append(X_RATELIMIT_RESET.clone(), HeaderValue::from(reset));
    Some(headers)
}

/// The seconds until every refusing window has ended.
fn retry_after_seconds(response: &RateLimitResponse) -> Option<u64> {
    response
        .statuses
        .iter()
        .filter(|s| s.code == Code::OverLimit)
        .filter_map(|s| s.duration_until_reset)
        .map(|d| d.as_secs().max(1))
        .max()
}

fn append(response_headers: &mut HeaderMap, headers: HeaderMap) {
    let mut last = None;
    for (name, value) in headers {
        if let Some(name) = name {
            last = Some(name);
        }
        if let Some(name) = &last {
            response_headers.append(name.clone(), value);
        }
    }
}

/// Marks the answer [`GlobalRateLimit`](super::GlobalRateLimit) made itself because its
/// limiter failed and the layer fails closed (`failure_mode_deny`): Envoy's response flag
/// `RateLimitServiceError`. (Refusals carry [`RateLimited`] instead.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimiterFailed;

fn local_reply<B: Default>(status: StatusCode) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}

pin_project! {
    /// Response future of [`GlobalRateLimit`](super::GlobalRateLimit): waits for the limiter's
    /// answer (`F`, the [`RateLimitCheck`](super::RateLimitCheck)'s future), then either
    /// answers the refusal itself or calls the inner service and adds the `x-ratelimit-*`
    /// headers to its response.
    pub struct ResponseFuture<Svc, Req, F>
    where
        Svc: Service<Req>,
    {
        #[pin]
        state: State<Svc, Req, F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Svc, Req, F>
    where
        Svc: Service<Req>,
    {
        Checking {
            #[pin]
            check: F,
            parts: Option<(Svc, Req)>,
            config: Config,
        },
        Calling {
            #[pin]
            future: Svc::Future,
            headers: Option<HeaderMap>,
        },
        Done,
    }
}

impl<Svc: Service<Req>, Req, F> ResponseFuture<Svc, Req, F> {
    pub(crate) fn inner(future: Svc::Future) -> Self {
        Self {
            state: State::Calling {
                future,
                headers: None,
            },
        }
    }

    pub(crate) fn checking(check: F, service: Svc, request: Req, config: Config) -> Self {
        Self {
            state: State::Checking {
                check,
                parts: Some((service, request)),
                config,
            },
        }
    }
}

impl<Svc, ReqB, ResB, F, E> Future for ResponseFuture<Svc, Request<ReqB>, F>
where
    Svc: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Default,
    F: Future<Output = Result<RateLimitResponse, E>>,
{
    type Output = Result<Response<ResB>, Svc::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().state.project() {
                StateProj::Checking {
                    check,
                    parts,
                    config,
                } => {
                    let config = *config;
                    let verdict = ready!(check.poll(cx));
                    let Some((mut service, request)) = parts.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let headers = match verdict {
                        Ok(answer) => {
                            let mut headers = if config.x_ratelimit_headers {
                                x_ratelimit_headers(&answer.statuses)
                            } else {
                                None
                            };
                            if answer.is_over_limit() {
                                if config.x_envoy_ratelimited {
                                    headers.get_or_insert_with(HeaderMap::new).insert(
                                        X_ENVOY_RATELIMITED.clone(),
                                        HeaderValue::from_static("true"),
                                    );
                                }
                                if config.enforce {
                                    self.as_mut().project().state.set(State::Done);
                                    let mut response = local_reply(config.rate_limited_status);
                                    response.extensions_mut().insert(RateLimited);
                                    if let Some(headers) = headers {
                                        append(response.headers_mut(), headers);
                                    }
                                    if config.retry_after {
                                        if let Some(seconds) = retry_after_seconds(&answer) {
                                            response
                                                .headers_mut()
                                                .insert(RETRY_AFTER, HeaderValue::from(seconds));
                                        }
                                    }
                                    return Poll::Ready(Ok(response));
                                }
                            }
                            headers
                        }
                        Err(_) if config.failure_mode_deny => {
                            // Envoy: `status_on_error` (500), empty body, response flag
                            // RateLimitServiceError.
                            self.as_mut().project().state.set(State::Done);
                            let mut response = local_reply(config.status_on_error);
                            response.extensions_mut().insert(LimiterFailed);
                            return Poll::Ready(Ok(response));
                        }
                        // Fail open: the request goes on without headers.
                        Err(_) => None,
                    };
                    let future = service.call(request);
                    self.as_mut()
                        .project()
                        .state
                        .set(State::Calling { future, headers });
                }
                StateProj::Calling { future, headers } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(headers) = headers.take() {
                        append(response.headers_mut(), headers);
                    }
                    self.as_mut().project().state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

impl<Svc: Service<Req>, Req, F> fmt::Debug for ResponseFuture<Svc, Req, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Checking { .. } => "Checking",
            State::Calling { .. } => "Calling",
            State::Done => "Done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

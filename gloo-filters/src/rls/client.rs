//! The gRPC client of `envoy.service.ratelimit.v3.RateLimitService`: what Envoy's rate limit
//! filter calls, as a [`RateLimitCheck`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use http_body::Body;
use tonic::client::GrpcService;
use tonic::transport::Channel;

use super::convert::{request_to_proto, response_from_proto};
use crate::ratelimit::global::{RateLimitCheck, RateLimitRequest, RateLimitResponse};

/// Envoy's default bound on one call to the rate limit service (the filter's `timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(20);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client of a remote rate limit service: a [`RateLimitCheck`] for
/// [`GlobalRateLimitLayer`](crate::ratelimit::global::GlobalRateLimitLayer), so the layer is
/// Envoy's `envoy.filters.http.ratelimit` calling a rate limit server (this crate's
/// [`RateLimitService`](super::RateLimitService), envoyproxy/ratelimit, Gloo's) over gRPC.
///
/// Each check is one unary `ShouldRateLimit` call, as Envoy makes it: the domain, the
/// descriptors (with their limit overrides and `hits_addend`) and the request's `hits_addend`.
/// The answer is read as Envoy reads it: `OVER_LIMIT` refuses, any other overall code
/// (`UNKNOWN` included) passes, the statuses feed the `x-ratelimit-*` headers. A gRPC error, a
/// transport error or no answer within the [`timeout`](Self::timeout) (Envoy's default:
/// 20 ms; a request carries it as `grpc-timeout`) is an [`RlsError`], and the layer applies
/// its `failure_mode_deny`.
///
/// Not applied (this crate's service never sends them): the response's
/// `response_headers_to_add`, `request_headers_to_add`, `raw_body`, `dynamic_metadata` and
/// `quota`.
///
/// `T` is the gRPC transport: a tonic [`Channel`] ([`connect_lazy`](Self::connect_lazy)), or
/// any [`GrpcService`] (a proxy routes the call through its own upstream cluster, say). The
/// client is cheap to clone; its futures are boxed (tonic's calls are `async fn`s: one
/// allocation per call, beside a network round trip).
///
/// ```
/// use gloo_filters::ratelimit::global::*;
/// use gloo_filters::rls::RateLimitClient;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = RateLimitClient::connect_lazy("http://127.0.0.1:18081")?
///     .timeout(Duration::from_millis(100));
/// let policy = RateLimitPolicy::new().rate_limit(RateLimitActions::new().remote_address());
/// let layer = GlobalRateLimitLayer::new(client, "custom", policy).failure_mode_deny(true);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
pub struct RateLimitClient<T = Channel> {
    grpc: RateLimitServiceClient<T>,
    timeout: Option<Duration>,
}

impl RateLimitClient<Channel> {
    /// A client of the service at `uri` (`http://host:port`, HTTP/2 without TLS), connecting
    /// on first use and reconnecting as needed. Must be called within a Tokio runtime.
    pub fn connect_lazy(uri: impl AsRef<str>) -> Result<Self, RlsError> {
        let endpoint = Channel::from_shared(uri.as_ref().to_owned()).map_err(RlsError::other)?;
        Ok(Self::new(endpoint.connect_lazy()))
    }
}

impl<T> RateLimitClient<T> {
    /// A client calling through `transport`, with Envoy's default timeout (20 ms).
    pub fn new(transport: T) -> Self
    where
        T: GrpcService<tonic::body::Body>,
        T::Error: Into<BoxError>,
        T::ResponseBody: Body<Data = Bytes> + Send + 'static,
        <T::ResponseBody as Body>::Error: Into<BoxError> + Send,
    {
        Self {
            grpc: RateLimitServiceClient::new(transport),
            timeout: Some(DEFAULT_TIMEOUT),
        }
    }

    /// The bound on one call (Envoy's filter `timeout`); zero means none, as in Envoy.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// The bound on one call (`None`: none).
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

/// The future of one check (boxed: see [`RateLimitClient`]).
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<RateLimitResponse, RlsError>> + Send>>;

impl<T> RateLimitCheck for RateLimitClient<T>
where
    T: GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<BoxError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<BoxError> + Send,
{
    type Error = RlsError;
    type Future = CheckFuture;

    fn check(&self, request: RateLimitRequest) -> Self::Future {
        let mut grpc = self.grpc.clone();
        let timeout = self.timeout;
        let mut request = tonic::Request::new(request_to_proto(request));
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        Box::pin(async move {
            let started = std::time::Instant::now();
            let call = grpc.should_rate_limit(request);
            let answer = match timeout {
                Some(timeout) => tokio::time::timeout(timeout, call)
                    .await
                    .map_err(|_| RlsError::timeout(timeout))?,
                None => call.await,
            };
            match answer {
                Ok(response) => Ok(response_from_proto(response.into_inner())),
                // tonic's channel enforces `grpc-timeout` itself (and says `Cancelled`), the
                // service may say `DeadlineExceeded`: either way the time ran out.
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
                    ) && timeout.is_some_and(|t| started.elapsed() >= t) =>
                {
                    Err(RlsError::timeout(timeout.unwrap_or_default()))
                }
                Err(status) => Err(RlsError::status(status)),
            }
        })
    }
}

impl<T: Clone> Clone for RateLimitClient<T> {
    fn clone(&self) -> Self {
        Self {
            grpc: self.grpc.clone(),
            timeout: self.timeout,
        }
    }
}

impl<T> fmt::Debug for RateLimitClient<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A call to the rate limit service failed: no answer in time, a gRPC error status (the
/// service's own, or a transport failure as tonic reports it), or a bad service address.
/// Opaque, like tower's `Elapsed`: the filter's policy is the same whatever the cause.
#[derive(Clone, Debug)]
pub struct RlsError {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Timeout(Duration),
    Status(tonic::Code, String),
    Other(String),
}

impl RlsError {
    fn timeout(after: Duration) -> Self {
        Self {
            kind: Kind::Timeout(after),
        }
    }

    fn status(status: tonic::Status) -> Self {
        Self {
            kind: Kind::Status(status.code(), status.message().to_owned()),
        }
    }

    fn other(error: impl fmt::Display) -> Self {
        Self {
            kind: Kind::Other(error.to_string()),
        }
    }

    /// Whether the service did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout(_))
    }

    /// The gRPC status code of the failed call, when there was one.
    pub fn code(&self) -> Option<tonic::Code> {
        match &self.kind {
            Kind::Status(code, _) => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for RlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Timeout(t) => write!(f, "rate limit service timed out after {t:?}"),
            Kind::Status(code, message) => {
                write!(f, "rate limit service failed: {code:?}: {message}")
            }
            Kind::Other(message) => write!(f, "rate limit service: {message}"),
        }
    }
}

impl std::error::Error for RlsError {}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;

    use http::{Request, Response, StatusCode};
    use http_body_util::Full;
    use tower::{service_fn, Layer, ServiceExt};

    use super::*;
    use crate::ratelimit::global::{
        Descriptor, GlobalRateLimitLayer, MemoryStore, RateLimit, RateLimitActions,
        RateLimitDescriptor, RateLimitDomain, RateLimitPolicy, RateLimiter, Unit,
    };
    use crate::rls::RateLimitService;

    /// Serves our rate limit service on a loopback port; returns its URI.
    async fn serve(limiter: RateLimiter<MemoryStore>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(RateLimitService::new(limiter).into_server())
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        format!("http://{addr}")
    }

    fn request(ip: [u8; 4]) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::default());
        req.extensions_mut().insert(SocketAddr::from((ip, 4000)));
        req
    }

    #[tokio::test]
    async fn the_layer_asks_a_remote_service_as_envoy_does() {
        let limiter = RateLimiter::new(MemoryStore::new())
            .domain(RateLimitDomain::new("edge").descriptor(
                Descriptor::new("remote_address").rate_limit(RateLimit::new(2, Unit::Hour)),
            ))
            .expect("valid");
        let client = RateLimitClient::connect_lazy(serve(limiter).await)
            .expect("uri")
            .timeout(Duration::from_secs(5));
        let policy = RateLimitPolicy::new().rate_limit(RateLimitActions::new().remote_address());
        let svc = GlobalRateLimitLayer::new(client.clone(), "edge", policy)
            .x_ratelimit_headers(true)
            .layer(service_fn(|_req: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            }));
        let first = svc
            .clone()
            .oneshot(request([192, 0, 2, 1]))
            .await
            .expect("ok");
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()["x-ratelimit-limit"], "2, 2;w=3600");
        assert_eq!(first.headers()["x-ratelimit-remaining"], "1");
        svc.clone()
            .oneshot(request([192, 0, 2, 1]))
            .await
            .expect("ok");
        let refused = svc
            .clone()
            .oneshot(request([192, 0, 2, 1]))
            .await
            .expect("ok");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["x-envoy-ratelimited"], "true");
        assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
        let other = svc.oneshot(request([192, 0, 2, 2])).await.expect("ok");
        assert_eq!(other.status(), StatusCode::OK);

        // The descriptor's hits travel: 5 more for 192.0.2.2 is over its 2.
        let answer = client
            .check(
                RateLimitRequest::new("edge").descriptor(
                    RateLimitDescriptor::new()
                        .entry("remote_address", "192.0.2.3")
                        .hits_addend(5),
                ),
            )
            .await
            .expect("answer");
        assert!(answer.is_over_limit());
    }

    #[tokio::test]
    async fn silence_and_absence_are_errors_that_failure_mode_deny_turns_into_500() {
        // Accepts connections and never answers.
        let mute = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mute_addr = mute.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = mute.accept().await {
                held.push(stream);
            }
        });
        let slow = RateLimitClient::connect_lazy(format!("http://{mute_addr}"))
            .expect("uri")
            .timeout(Duration::from_millis(50));
        let ask = RateLimitRequest::new("edge")
            .descriptor(RateLimitDescriptor::new().entry("remote_address", "192.0.2.1"));
        let err = slow.check(ask.clone()).await.expect_err("no answer");
        assert!(err.is_timeout(), "{err}");

        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let absent = RateLimitClient::connect_lazy(format!("http://127.0.0.1:{port}"))
            .expect("uri")
            .timeout(Duration::from_secs(5));
        let err = absent.check(ask).await.expect_err("nobody listens");
        assert!(!err.is_timeout());
        assert_eq!(err.code(), Some(tonic::Code::Unavailable), "{err}");

        let policy = RateLimitPolicy::new().rate_limit(RateLimitActions::new().remote_address());
        let inner = service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
        let open = GlobalRateLimitLayer::new(slow.clone(), "edge", policy.clone()).layer(inner);
        let closed = GlobalRateLimitLayer::new(slow, "edge", policy)
            .failure_mode_deny(true)
            .layer(inner);
        assert_eq!(
            open.oneshot(request([192, 0, 2, 1]))
                .await
                .expect("ok")
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            closed
                .oneshot(request([192, 0, 2, 1]))
                .await
                .expect("ok")
                .status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert!(RateLimitClient::connect_lazy("not a uri").is_err());
    }
}

//! Behaviour tests of the local rate limit middleware.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, Service, ServiceExt};

use super::bucket::{Buckets, Decision};
use super::*;

type Body = Full<Bytes>;

const HOUR: Duration = Duration::from_secs(3600);

fn bucket(max: u32, per_fill: u32, interval: Duration) -> TokenBucket {
    TokenBucket::new(max, per_fill, interval).expect("valid test bucket")
}

/// An inner service that counts its calls and answers `200 hello`.
fn counting(
    calls: Arc<AtomicUsize>,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
       + Clone
       + Send {
    service_fn(move |_req: Request<Body>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello")))) }
    })
}

fn request() -> Request<Body> {
    Request::new(Body::default())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("missing header {name}"))
}

/// (status, x-ratelimit-remaining, x-ratelimit-reset) of one request.
async fn send<S>(svc: &S) -> (StatusCode, String, String)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let res = svc.clone().oneshot(request()).await.expect("infallible");
    let remaining = header(res.headers(), "x-ratelimit-remaining").to_owned();
    let reset = header(res.headers(), "x-ratelimit-reset").to_owned();
    (res.status(), remaining, reset)
}

#[test]
fn exact_under_concurrency() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let calls = Arc::new(AtomicUsize::new(0));
        let limited = Arc::new(AtomicUsize::new(0));
        let svc = LocalRateLimitLayer::new(bucket(1_000, 1, HOUR)).layer(counting(calls.clone()));

        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let svc = svc.clone();
                let limited = limited.clone();
                tokio::spawn(async move {
                    for _ in 0..50 {
                        let res = svc.clone().oneshot(request()).await.expect("infallible");
                        if res.status() == StatusCode::TOO_MANY_REQUESTS {
                            limited.fetch_add(1, Ordering::SeqCst);
                        } else {
                            assert_eq!(res.status(), StatusCode::OK);
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1_000);
        assert_eq!(limited.load(Ordering::SeqCst), 2_200);
    });
}

#[tokio::test]
async fn limited_answer_is_envoys_local_reply() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = LocalRateLimitLayer::new(bucket(1, 1, HOUR)).layer(counting(calls.clone()));

    let ok = svc.clone().oneshot(request()).await.expect("infallible");
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(
        ok.headers().get("x-ratelimit-limit").is_none(),
        "headers are off by default"
    );

    let res = svc.clone().oneshot(request()).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(res.headers(), "content-type"), "text/plain");
    assert!(res.headers().get("x-ratelimit-limit").is_none());
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"local_rate_limited");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "inner service not called when limited"
    );

    // Configurable status.
    let svc = LocalRateLimitLayer::new(bucket(1, 1, HOUR))
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .layer(counting(calls.clone()));
    svc.clone().oneshot(request()).await.expect("infallible");
    let res = svc.oneshot(request()).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"local_rate_limited");

    // Like Envoy, a status below 400 falls back to 429.
    let svc = LocalRateLimitLayer::new(bucket(1, 1, HOUR))
        .status(StatusCode::OK)
        .layer(counting(calls));
    svc.clone().oneshot(request()).await.expect("infallible");
    let res = svc.oneshot(request()).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_429_carries_retry_after_when_asked() {
    let calls = Arc::new(AtomicUsize::new(0));
    // One token every 1.5 s: the refusal says 2 (rounded up), and nothing without the option.
    let interval = Duration::from_millis(1500);
    let svc = LocalRateLimitLayer::new(bucket(1, 1, interval))
        .retry_after(true)
        .layer(counting(calls.clone()));
    let ok = svc.clone().oneshot(request()).await.expect("infallible");
    assert!(ok.headers().get("retry-after").is_none(), "only refusals");
    let refused = svc.oneshot(request()).await.expect("infallible");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(refused.headers(), "retry-after"), "2");

    // At least 1, even when the next token is a few milliseconds away.
    let svc = LocalRateLimitLayer::new(bucket(1, 20, Duration::from_secs(1)))
        .retry_after(true)
        .layer(counting(calls.clone()));
    svc.clone().oneshot(request()).await.expect("infallible");
    let refused = svc.oneshot(request()).await.expect("infallible");
    assert_eq!(header(refused.headers(), "retry-after"), "1");

    // A refusal with another status never gets it.
    let svc = LocalRateLimitLayer::new(bucket(1, 1, HOUR))
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .retry_after(true)
        .layer(counting(calls.clone()));
    svc.clone().oneshot(request()).await.expect("infallible");
    let refused = svc.oneshot(request()).await.expect("infallible");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().get("retry-after").is_none());

    // Off by default.
    let svc = LocalRateLimitLayer::new(bucket(1, 1, HOUR)).layer(counting(calls));
    svc.clone().oneshot(request()).await.expect("infallible");
    let refused = svc.oneshot(request()).await.expect("infallible");
    assert!(refused.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn not_enforced_counts_but_never_refuses() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = LocalRateLimitLayer::new(bucket(2, 1, HOUR))
        .enforce(false)
        .x_ratelimit_headers(true)
        .layer(counting(calls.clone()));

    let mut seen = Vec::new();
    for _ in 0..4 {
        let (status, remaining, _) = send(&svc).await;
        assert_eq!(status, StatusCode::OK);
        seen.push(remaining);
    }
    assert_eq!(seen, ["1", "0", "0", "0"]);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn x_ratelimit_headers_match_envoy() {
    let calls = Arc::new(AtomicUsize::new(0));
    // 1 token per hour: nextTokenAvailable() = ceil(1000 / (1/3600)) ms = 3_600_000 ms.
    let svc = LocalRateLimitLayer::new(bucket(3, 1, HOUR))
        .x_ratelimit_headers(true)
        .layer(counting(calls.clone()));

    let res = svc.clone().oneshot(request()).await.expect("infallible");
    assert_eq!(header(res.headers(), "x-ratelimit-limit"), "3");
    assert_eq!(header(res.headers(), "x-ratelimit-remaining"), "2");
    assert_eq!(header(res.headers(), "x-ratelimit-reset"), "0");

    assert_eq!(send(&svc).await, (StatusCode::OK, "1".into(), "0".into()));
    // Last token taken: less than one token left, so reset is the token period.
    assert_eq!(
        send(&svc).await,
        (StatusCode::OK, "0".into(), "3600".into())
    );
    // Refused answers carry the headers too.
    let res = svc.clone().oneshot(request()).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(res.headers(), "x-ratelimit-limit"), "3");
    assert_eq!(header(res.headers(), "x-ratelimit-remaining"), "0");
    assert_eq!(header(res.headers(), "x-ratelimit-reset"), "3600");
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // 1 token per 1.5 s: 1500 ms, truncated to 1 s (integer division before std::ceil).
    let svc = LocalRateLimitLayer::new(bucket(1, 1, Duration::from_millis(1_500)))
        .x_ratelimit_headers(true)
        .layer(counting(calls.clone()));
    assert_eq!(send(&svc).await, (StatusCode::OK, "0".into(), "1".into()));
    assert_eq!(
        send(&svc).await,
        (StatusCode::TOO_MANY_REQUESTS, "0".into(), "1".into())
    );

    // 10 tokens per second: 100 ms to the next token, which Envoy reports as 0.
    let svc = LocalRateLimitLayer::new(bucket(1, 10, Duration::from_secs(1)))
        .x_ratelimit_headers(true)
        .layer(counting(calls));
    assert_eq!(send(&svc).await, (StatusCode::OK, "0".into(), "0".into()));
}

#[tokio::test]
async fn headers_are_appended_like_envoy() {
    let inner = service_fn(|_req: Request<Body>| async {
        let mut res = Response::new(Body::default());
        res.headers_mut()
            .insert("x-ratelimit-limit", http::HeaderValue::from_static("99"));
        Ok::<_, Infallible>(res)
    });
    let svc = LocalRateLimitLayer::new(bucket(5, 1, HOUR))
        .x_ratelimit_headers(true)
        .layer(inner);
    let res = svc.oneshot(request()).await.expect("infallible");
    let limits: Vec<_> = res.headers().get_all("x-ratelimit-limit").iter().collect();
    assert_eq!(limits, ["99", "5"]);
}

#[tokio::test]
async fn errors_pass_through() {
    #[derive(Debug, PartialEq)]
    struct Boom;
    let inner = service_fn(|_req: Request<Body>| async { Err::<Response<Body>, _>(Boom) });
    let svc = LocalRateLimitLayer::new(bucket(1, 1, HOUR)).layer(inner);
    assert_eq!(svc.clone().oneshot(request()).await.unwrap_err(), Boom);
    // The refused request never reaches the failing service.
    let res = svc.oneshot(request()).await.expect("limited answer");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

fn from(ip: [u8; 4]) -> Request<Body> {
    let mut req = request();
    req.extensions_mut().insert(SocketAddr::from((ip, 40_000)));
    req
}

#[tokio::test]
async fn per_key_buckets_are_independent() {
    let calls = Arc::new(AtomicUsize::new(0));
    let by_ip = KeyFn::new(|head| head.extensions().get::<SocketAddr>().map(|a| a.ip()));
    let svc = LocalRateLimitLayer::new(bucket(2, 1, HOUR))
        .key_extractor(by_ip)
        .layer(counting(calls.clone()));
    let status = |res: Response<Body>| res.status();

    let a = [10, 0, 0, 1];
    let b = [10, 0, 0, 2];
    for _ in 0..2 {
        assert_eq!(
            status(svc.clone().oneshot(from(a)).await.unwrap()),
            StatusCode::OK
        );
    }
    assert_eq!(
        status(svc.clone().oneshot(from(a)).await.unwrap()),
        StatusCode::TOO_MANY_REQUESTS,
        "key A exhausted"
    );
    assert_eq!(
        status(svc.clone().oneshot(from(b)).await.unwrap()),
        StatusCode::OK,
        "key B has its own bucket"
    );

    // No key: the shared bucket, separate from every keyed one.
    for _ in 0..2 {
        assert_eq!(
            status(svc.clone().oneshot(request()).await.unwrap()),
            StatusCode::OK
        );
    }
    assert_eq!(
        status(svc.clone().oneshot(request()).await.unwrap()),
        StatusCode::TOO_MANY_REQUESTS,
        "keyless requests share one bucket"
    );
    assert_eq!(
        status(svc.clone().oneshot(from(b)).await.unwrap()),
        StatusCode::OK,
        "the shared bucket does not drain keyed ones"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2 + 1 + 2 + 1);
}

#[tokio::test]
async fn refills_over_time() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = LocalRateLimitLayer::new(bucket(1, 1, Duration::from_millis(50)))
        .layer(counting(calls.clone()));
    let status = |res: Response<Body>| res.status();

    assert_eq!(
        status(svc.clone().oneshot(request()).await.unwrap()),
        StatusCode::OK
    );
    assert_eq!(
        status(svc.clone().oneshot(request()).await.unwrap()),
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(
        status(svc.oneshot(request()).await.unwrap()),
        StatusCode::OK
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // A long wait refills up to the capacity, not beyond (300 ms period: slack for slow CI).
    let svc = LocalRateLimitLayer::new(bucket(1, 1, Duration::from_millis(300)))
        .layer(counting(calls.clone()));
    assert_eq!(
        status(svc.clone().oneshot(request()).await.unwrap()),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        status(svc.clone().oneshot(request()).await.unwrap()),
        StatusCode::OK
    );
    assert_eq!(
        status(svc.oneshot(request()).await.unwrap()),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn clones_of_a_layer_share_buckets_new_layers_do_not() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = LocalRateLimitLayer::new(bucket(1, 1, HOUR));
    let route_a = layer.layer(counting(calls.clone()));
    let route_b = layer.clone().layer(counting(calls.clone()));

    assert_eq!(
        route_a.oneshot(request()).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        route_b.oneshot(request()).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS,
        "services from clones of one layer share its bucket"
    );

    let other = LocalRateLimitLayer::new(*layer.bucket()).layer(counting(calls.clone()));
    assert_eq!(
        other.oneshot(request()).await.unwrap().status(),
        StatusCode::OK,
        "a new layer has its own budget"
    );

    // Builder methods other than key_extractor keep the buckets.
    let loud = layer
        .clone()
        .x_ratelimit_headers(true)
        .layer(counting(calls));
    assert_eq!(
        loud.oneshot(request()).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[test]
fn idle_keyed_buckets_are_swept() {
    let buckets = Buckets::<u32>::new(bucket(1, 1, Duration::from_millis(50)));
    for key in 0..100 {
        assert_eq!(
            buckets.decide(Some(&key)),
            Decision::Allowed { remaining: 0 }
        );
    }
    assert_eq!(buckets.keyed_len(), 100);
    // Let every one of them refill completely (and then some).
    std::thread::sleep(Duration::from_millis(150));
    // Keep one key busy until the 4,096th keyed decision triggers the sweep.
    let hot = 1_000;
    for _ in 100..4_096 {
        buckets.decide(Some(&hot));
    }
    assert!(
        buckets.keyed_len() <= 1,
        "idle keys are dropped, at most the busy one stays"
    );
}

#[test]
fn key_extractors() {
    let req = request();
    assert_eq!(Shared.extract(&req), None);

    let ip: IpAddr = [192, 0, 2, 1].into();
    let by_ip = KeyFn::new(|head| head.extensions().get::<SocketAddr>().map(|a| a.ip()));
    assert_eq!(by_ip.extract(&from([192, 0, 2, 1])), Some(ip));
    assert_eq!(by_ip.extract(&req), None);

    let by_header = KeyFn::new(|head| head.headers().get("x-user").cloned());
    let req = Request::builder()
        .header("x-user", "ann")
        .body(())
        .expect("request");
    assert_eq!(
        by_header.extract(&req).as_ref().map(|v| v.as_bytes()),
        Some(&b"ann"[..])
    );
}

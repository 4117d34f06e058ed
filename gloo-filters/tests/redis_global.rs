//! The global limiter against a real Redis (`GLOO_TEST_REDIS_SERVER`): shards share one budget,
//! Redis outages follow the failure policy without hanging, and counting resumes after a
//! restart.

mod support {
    pub mod redis_server;
}

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gloo_filters::ratelimit::global::*;
use gloo_filters::ratelimit::redis::RedisStore;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{service_fn, Layer, Service, ServiceExt};

use support::redis_server::RedisServer;

type Body = Full<Bytes>;

/// The limiters' fixed clock: every request of a test falls in the same windows.
const NOW: u64 = 1_700_000_000;
const LIMIT: u32 = 5;
/// Each Redis call is bounded by this.
const STORE_TIMEOUT: Duration = Duration::from_millis(200);
/// No request may take longer than this (the store timeout plus generous scheduling slack).
const NO_HANG: Duration = Duration::from_secs(3);

fn limiter(url: &str) -> RateLimiter<RedisStore> {
    let store = RedisStore::with_timeout(url, STORE_TIMEOUT).expect("redis store");
    RateLimiter::new(store)
        .clock(|| NOW)
        .domain(RateLimitDomain::new("edge").descriptor(
            Descriptor::new("remote_address").rate_limit(RateLimit::new(LIMIT, Unit::Minute)),
        ))
        .expect("valid domain")
}

/// One proxy shard: the middleware over its own limiter (its own Redis connection).
/// A shard over `limiter` (clones share its Redis connection).
fn shard(
    limiter: RateLimiter<RedisStore>,
    deny_on_failure: bool,
    calls: Arc<AtomicUsize>,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    let policy = RateLimitPolicy::new().rate_limit(RateLimitActions::new().remote_address());
    GlobalRateLimitLayer::new(limiter, "edge", policy)
        .failure_mode_deny(deny_on_failure)
        .layer(service_fn(move |_req: Request<Body>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok")))) }
        }))
}

fn request() -> Request<Body> {
    let mut req = Request::new(Body::default());
    req.extensions_mut()
        .insert(SocketAddr::from(([192, 0, 2, 7], 40_000)));
    req
}

/// One request through `svc`; fails the test if it takes longer than [`NO_HANG`].
async fn send<S>(svc: &S) -> StatusCode
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let call = svc.clone().oneshot(request());
    match tokio::time::timeout(NO_HANG, call).await {
        Ok(Ok(res)) => res.status(),
        Ok(Err(never)) => match never {},
        Err(_) => panic!("a request hung for more than {NO_HANG:?}"),
    }
}

#[tokio::test]
async fn two_shards_share_one_budget() {
    let redis = RedisServer::start();
    let calls = Arc::new(AtomicUsize::new(0));
    let a = shard(limiter(&redis.url()), false, calls.clone());
    let b = shard(limiter(&redis.url()), false, calls.clone());

    // Alternate between the shards: together they get LIMIT requests, not 2 * LIMIT.
    let mut statuses = Vec::new();
    for i in 0..(2 * LIMIT) {
        statuses.push(send(if i % 2 == 0 { &a } else { &b }).await);
    }
    let passed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(passed, LIMIT as usize, "{statuses:?}");
    assert!(statuses[LIMIT as usize..]
        .iter()
        .all(|s| *s == StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(calls.load(Ordering::SeqCst), LIMIT as usize);
}

#[tokio::test]
async fn limiter_statuses_come_from_the_shared_counter() {
    let redis = RedisServer::start();
    let one = limiter(&redis.url());
    let two = limiter(&redis.url());
    let req = RateLimitRequest::new("edge").descriptor(
        RateLimitDescriptor::new()
            .entry("remote_address", "198.51.100.1")
            .hits_addend(2),
    );
    let first = one.should_rate_limit(&req).await.expect("redis up");
    assert_eq!(first.statuses[0].limit_remaining, LIMIT - 2);
    let second = two.should_rate_limit(&req).await.expect("redis up");
    assert_eq!(second.statuses[0].limit_remaining, LIMIT - 4);
    assert_eq!(
        second.statuses[0].duration_until_reset,
        Some(Duration::from_secs(60 - NOW % 60))
    );
    let third = one.should_rate_limit(&req).await.expect("redis up");
    assert!(third.is_over_limit());
}

#[tokio::test]
async fn redis_outage_follows_the_failure_policy_and_counting_resumes_after_restart() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    let calls = Arc::new(AtomicUsize::new(0));
    let open_limiter = limiter(&redis.url());
    let open = shard(open_limiter.clone(), false, calls.clone());
    let closed = shard(limiter(&redis.url()), true, calls.clone());
    // The fail-open shard answers 200 whether or not its connection is back: this fail-closed
    // twin on the same limiter (the same connection) says when it is.
    let open_probe = shard(open_limiter, true, Arc::new(AtomicUsize::new(0)));

    // Up: both count in the same budget.
    assert_eq!(send(&open).await, StatusCode::OK);
    assert_eq!(send(&closed).await, StatusCode::OK);

    // Redis killed mid-run.
    redis.kill();
    for _ in 0..(2 * LIMIT) {
        // Fail open: everything passes, well beyond the limit.
        assert_eq!(send(&open).await, StatusCode::OK);
        // Fail closed: Envoy's 500.
        assert_eq!(send(&closed).await, StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2 + 2 * LIMIT as usize);

    // Restarted (empty, no persistence): the shards reconnect and count from zero again.
    let _redis = RedisServer::start_on(port);
    for (name, shard) in [("fail-closed", &closed), ("fail-open", &open_probe)] {
        let mut reconnected = false;
        for _ in 0..200 {
            if send(shard).await == StatusCode::OK {
                reconnected = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(reconnected, "the {name} shard never got Redis back");
    }
    // Two requests counted (one per connection); LIMIT - 2 more pass through either shard,
    // then both refuse.
    for i in 0..(LIMIT - 2) {
        let svc = if i % 2 == 0 { &open } else { &closed };
        assert_eq!(send(svc).await, StatusCode::OK, "request {i} after restart");
    }
    assert_eq!(send(&open).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(&closed).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_hung_redis_times_out_instead_of_hanging_requests() {
    let redis = RedisServer::start();
    let limiter = limiter(&redis.url());
    let req = RateLimitRequest::new("edge")
        .descriptor(RateLimitDescriptor::new().entry("remote_address", "198.51.100.2"));
    limiter.should_rate_limit(&req).await.expect("redis up");

    // SIGSTOP: the socket stays open but nothing answers.
    redis.signal("STOP");
    let outcome = tokio::time::timeout(NO_HANG, limiter.should_rate_limit(&req)).await;
    redis.signal("CONT");
    match outcome {
        Err(_) => panic!("the limiter hung on a stopped Redis"),
        Ok(Ok(answer)) => panic!("a stopped Redis answered: {answer:?}"),
        Ok(Err(LimitError::Store(e))) => assert!(e.is_timeout(), "{e}"),
        Ok(Err(e)) => panic!("unexpected error {e}"),
    }

    // Resumed: answers again (the counter kept its value, or the connection was rebuilt).
    let mut answered = false;
    for _ in 0..200 {
        if let Ok(answer) = limiter.should_rate_limit(&req).await {
            assert!(answer.statuses[0].limit_remaining < LIMIT - 1);
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(answered, "the limiter never recovered after SIGCONT");
}

//! Cost per request of gloo-filters' global rate limit: the middleware over the in-memory store
//! (matching, key building, counting, no I/O), and the limiter over a real Redis on loopback (one
//! pipelined round trip per request, whatever the number of descriptors).
//!
//! The Redis cases need `GLOO_TEST_REDIS_SERVER` (a `redis-server` binary; `scripts/test.sh`
//! installs it); without it they are skipped with a note. Limits are large enough never to
//! refuse, so every case measures the admitted path.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gloo_filters::ratelimit::global::*;
use gloo_filters::ratelimit::redis::RedisStore;
use http::{Request, Response};
use http_body_util::Full;
use tower::{service_fn, Layer, Service, ServiceExt};

type Body = Full<Bytes>;

fn bare() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    })
}

fn domain() -> RateLimitDomain {
    let plenty = || RateLimit::new(u32::MAX, Unit::Hour);
    RateLimitDomain::new("edge")
        .descriptor(Descriptor::new("remote_address").rate_limit(plenty()))
        .descriptor(Descriptor::new("user").rate_limit(plenty()))
        .descriptor(
            Descriptor::new("generic_key")
                .value("api")
                .descriptor(Descriptor::new("plan").rate_limit(plenty())),
        )
}

fn request(client: u16) -> Request<Body> {
    let mut req = Request::new(Body::default());
    req.extensions_mut()
        .insert(SocketAddr::from(([192, 0, 2, 1], 40_000 + client % 64)));
    req
}

fn memory(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let limiter = RateLimiter::new(MemoryStore::new())
        .domain(domain())
        .expect("valid domain");
    let policy = RateLimitPolicy::new().rate_limit(RateLimitActions::new().remote_address());
    let svc = GlobalRateLimitLayer::new(limiter, "edge", policy)
        .x_ratelimit_headers(true)
        .layer(bare());
    let mut client = 0u16;
    c.bench_function("global rate limit layer, memory store, 1 descriptor", |b| {
        b.iter(|| {
            client = client.wrapping_add(1);
            let response = runtime.block_on(svc.clone().oneshot(request(client)));
            black_box(response.map(|r| r.status()))
        })
    });
}

/// A `redis-server` on a free loopback port, killed on drop.
struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Option<(Redis, u16)> {
    let binary = std::env::var_os("GLOO_TEST_REDIS_SERVER").filter(|p| !p.is_empty())?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(binary)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let redis = Redis(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((redis, port))
}

fn redis(c: &mut Criterion) {
    let Some((_redis, port)) = start_redis() else {
        eprintln!("GLOO_TEST_REDIS_SERVER is not set: skipping the Redis cases");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let limiter = runtime.block_on(async {
        let store =
            RedisStore::with_timeout(format!("redis://127.0.0.1:{port}/"), Duration::from_secs(1))
                .expect("store");
        RateLimiter::new(store)
            .domain(domain())
            .expect("valid domain")
    });
    let one = RateLimitRequest::new("edge")
        .descriptor(RateLimitDescriptor::new().entry("remote_address", "192.0.2.1"));
    let three = one
        .clone()
        .descriptor(RateLimitDescriptor::new().entry("user", "alice"))
        .descriptor(
            RateLimitDescriptor::new()
                .entry("generic_key", "api")
                .entry("plan", "gold"),
        );
    for (name, req) in [
        ("global rate limiter, redis store, 1 descriptor", one),
        (
            "global rate limiter, redis store, 3 descriptors (one round trip)",
            three,
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let answer = runtime.block_on(limiter.should_rate_limit(&req));
                black_box(answer.expect("redis answers").overall_code)
            })
        });
    }
}

criterion_group!(benches, memory, redis);
criterion_main!(benches);

//! Added cost per request of gloo-filters' layers, against the bare service they wrap
//! (BENCHMARKS.md: a local rate limit must add at most 1 µs).
//!
//! Each case runs one request through a ready service on the current thread: the bare
//! service, then the same service behind a local rate limit with a shared bucket, with the
//! `x-ratelimit-*` headers, and with a bucket per client key. Buckets are large enough never
//! to refuse, so every case measures the admitted path (the one real traffic mostly takes).
//! Times are the process's CPU time per request (`cpu_time.rs`); the added cost is a case's
//! time minus the bare service's (`benches/filter_targets.sh` prints it against the target).

#[path = "cpu_time.rs"]
mod cpu_time;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cpu_time::CpuTime;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gloo_filters::ratelimit::{KeyFn, LocalRateLimitLayer, RequestHead, TokenBucket};
use http::{Request, Response};
use http_body_util::Full;
use tower::{service_fn, Layer, Service, ServiceExt};

type Body = Full<Bytes>;

fn bare() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    })
}

/// A bucket that never runs out during a bench: u32::MAX tokens, refilled fast.
fn plenty() -> TokenBucket {
    TokenBucket::new(u32::MAX, u32::MAX, Duration::from_millis(50)).expect("a valid bucket")
}

fn request(client: u16) -> Request<Body> {
    let mut req = Request::new(Body::default());
    req.extensions_mut()
        .insert(SocketAddr::from(([192, 0, 2, 1], 40_000 + client % 64)));
    req
}

fn run<S>(c: &mut Criterion<CpuTime>, name: &str, svc: S)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let mut client = 0u16;
    c.bench_function(name, |b| {
        b.iter(|| {
            client = client.wrapping_add(1);
            let response = runtime.block_on(svc.clone().oneshot(request(client)));
            black_box(response.map(|r| r.status()))
        })
    });
}

fn local_rate_limit(c: &mut Criterion<CpuTime>) {
    run(c, "local rate limit, bare service", bare());
    run(
        c,
        "local rate limit, shared bucket",
        LocalRateLimitLayer::new(plenty()).layer(bare()),
    );
    run(
        c,
        "local rate limit, shared bucket, x-ratelimit headers",
        LocalRateLimitLayer::new(plenty())
            .x_ratelimit_headers(true)
            .layer(bare()),
    );
    let by_client =
        KeyFn::new(|head: &RequestHead<'_>| head.extensions().get::<SocketAddr>().copied());
    run(
        c,
        "local rate limit, bucket per client (64 clients)",
        LocalRateLimitLayer::new(plenty())
            .key_extractor(by_client)
            .layer(bare()),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = local_rate_limit
}
criterion_main!(benches);

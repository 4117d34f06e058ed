//! Cost per request of gloo-filters' WAF layer with the OWASP Core Rule Set (Debian's
//! `modsecurity-crs`, loaded as Gloo's `coreRuleSet` loads it), against the bare service it
//! wraps. One request at a time, on a current-thread tokio runtime (ModSecurity runs on its
//! blocking pool, as in gloo-proxy):
//!
//! * a benign browser-like GET (request phases 1-2, response phases 3-4 with a small HTML
//!   body);
//! * a benign form POST (the body buffered and inspected too);
//! * the GET with `requestHeadersOnly` and `responseHeadersOnly`;
//! * the GET with no runtime at all, so ModSecurity runs in place: the rules' own cost,
//!   without the trips to the blocking pool.
//!
//! Needs the `waf` feature (libmodsecurity) and the CRS:
//! `cargo bench -p gloo-benches --features waf --bench waf`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gloo_filters::waf::{RuleSet, WafBody, WafLayer, WafRules, CRS_RULES_DIR, CRS_SETUP_FILE};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, Service, ServiceExt};

type Body = Full<Bytes>;

const PAGE: &[u8] = b"<html><body><h1>Products</h1><p>page 2 of 7</p></body></html>";

/// Reads the body it gets and answers a small HTML page.
async fn upstream<B>(req: Request<B>) -> Result<Response<Body>, Infallible>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let _ = req.into_body().collect().await;
    let mut response = Response::new(Full::new(Bytes::from_static(PAGE)));
    response
        .headers_mut()
        .insert("content-type", http::HeaderValue::from_static("text/html"));
    Ok(response)
}

fn get() -> Request<Body> {
    Request::get("/products?page=2&sort=price")
        .header("host", "shop.example.com")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .header("accept", "text/html,application/xhtml+xml")
        .header("accept-language", "en-US,en;q=0.5")
        .header("cookie", "session=3f2a9c; theme=dark")
        .body(Full::default())
        .unwrap_or_default()
}

fn post() -> Request<Body> {
    let form = "item=1234&quantity=2&note=please+gift+wrap&coupon=SPRING24";
    Request::post("/cart")
        .header("host", "shop.example.com")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .header("accept", "*/*")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", form.len().to_string())
        .body(Full::new(Bytes::from_static(form.as_bytes())))
        .unwrap_or_default()
}

fn crs() -> WafLayer {
    let rules = WafRules::compile([
        RuleSet::rules("SecRuleEngine On\nSecRequestBodyAccess On\n"),
        RuleSet::new().file(CRS_SETUP_FILE),
        RuleSet::new().directory(CRS_RULES_DIR),
    ]);
    match rules {
        Ok(rules) => WafLayer::new(rules),
        Err(e) => panic!("the CRS does not load (apt-get install modsecurity-crs): {e}"),
    }
}

fn run<S, B>(c: &mut Criterion, name: &str, svc: S, request: fn() -> Request<Body>)
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    c.bench_function(name, |b| {
        b.iter(|| {
            let (status, body) = runtime.block_on(async {
                let response = svc.clone().oneshot(request()).await?;
                let status = response.status();
                let body = response.into_body().collect().await.map(|c| c.to_bytes());
                Ok::<_, Infallible>((status, body.ok()))
            })?;
            assert_eq!(status, http::StatusCode::OK, "a benign request was refused");
            Ok::<_, Infallible>(black_box(body))
        })
    });
}

/// Polls `future` to completion without a runtime (it must never wait: with no runtime the
/// WAF evaluates in place and the inner service answers at once).
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn bench(c: &mut Criterion) {
    let bare = service_fn(upstream::<Body>);
    run(c, "waf/bare service, GET", bare, get);
    let svc = crs().layer(service_fn(upstream::<WafBody<Body>>));
    run(c, "waf/CRS, benign GET", svc.clone(), get);
    run(c, "waf/CRS, benign form POST", svc.clone(), post);
    let headers_only = crs()
        .request_headers_only(true)
        .response_headers_only(true)
        .layer(service_fn(upstream::<WafBody<Body>>));
    run(c, "waf/CRS headers only, benign GET", headers_only, get);
    c.bench_function("waf/CRS in place (no blocking pool), benign GET", |b| {
        b.iter(|| {
            let response = now(svc.clone().oneshot(get()));
            let ok = response.map(|r| r.status() == http::StatusCode::OK);
            assert_eq!(ok, Ok(true), "a benign request was refused");
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

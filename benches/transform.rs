//! Added cost per request of gloo-filters' transformation layer, against the bare service it
//! wraps. One request at a time through a ready service on the current thread:
//!
//! * no rule matches (the layer's floor);
//! * a header template, body streamed (`DontParse`), like Gloo docs' inject-header examples;
//! * the extract-query-params example of Gloo's docs (two `:path` extractors, two headers);
//! * the typical header transformation of issue 5's target (at most 5 µs added): one header
//!   from a request header and one from a `:path` extraction, body streamed;
//! * a JSON body (about 200 bytes) buffered, parsed and rendered into a new body.
//!
//! Times are the process's CPU time per request (`cpu_time.rs`); the added cost is a case's
//! time minus the bare service's (`benches/filter_targets.sh` prints it against the target).

#[path = "cpu_time.rs"]
mod cpu_time;

use std::convert::Infallible;

use bytes::Bytes;
use cpu_time::CpuTime;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gloo_filters::transform::{
    Extraction, RequestBodyParse, RequestMatch, RouteMatch, TransformBody, TransformationLayer,
    TransformationTemplate, Transformations,
};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, Service, ServiceExt};

type Body = Full<Bytes>;

const JSON: &str = r#"{"user": {"name": "ada", "id": 42, "roles": ["admin", "dev"]}, "items": [{"sku": "a-1", "qty": 2}, {"sku": "b-2", "qty": 1}], "note": "a short note about the order"}"#;

/// Reads the body it gets (so buffered and streamed bodies cost the same to consume).
async fn upstream<B>(req: Request<B>) -> Result<Response<Body>, Infallible>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Ok(Response::new(Full::new(body)))
}

fn request() -> Request<Body> {
    Request::post("/api/orders?foo=foo-value&bar=bar-value")
        .header("content-type", "application/json")
        .header("x-solo-hdr1", "val1")
        .body(Full::new(Bytes::from_static(JSON.as_bytes())))
        .unwrap_or_default()
}

fn run<S, B>(c: &mut Criterion<CpuTime>, name: &str, svc: S)
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
            let bytes = runtime.block_on(async {
                let response = svc.clone().oneshot(request()).await?;
                Ok::<_, Infallible>(
                    response
                        .into_body()
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .ok(),
                )
            });
            black_box(bytes)
        })
    });
}

fn layer(template: TransformationTemplate) -> TransformationLayer {
    TransformationLayer::new(
        Transformations::new().request_transform(
            RequestMatch::new()
                .matcher(RouteMatch::prefix("/api"))
                .request_transformation(template),
        ),
    )
    .expect("a valid transformation")
}

fn transformations(c: &mut Criterion<CpuTime>) {
    run(c, "transform, bare service", service_fn(upstream::<Body>));
    let wrap = |l: TransformationLayer| l.layer(service_fn(upstream::<TransformBody<Body>>));
    run(
        c,
        "transform, no rule matches",
        wrap(
            TransformationLayer::new(
                Transformations::new().request_transform(
                    RequestMatch::new()
                        .matcher(RouteMatch::prefix("/other"))
                        .request_transformation(TransformationTemplate::new()),
                ),
            )
            .expect("a valid transformation"),
        ),
    );
    run(
        c,
        "transform, one header template, body streamed",
        wrap(layer(
            TransformationTemplate::new()
                .parse_body_behavior(RequestBodyParse::DontParse)
                .header("x-solo-resp-hdr1", "{{ header(\"x-solo-hdr1\") }}"),
        )),
    );
    run(
        c,
        "transform, extract query params (Gloo docs)",
        wrap(layer(
            TransformationTemplate::new()
                .parse_body_behavior(RequestBodyParse::DontParse)
                .extractor(
                    "foo",
                    Extraction::header(":path", "(.*foo=([^&]*).*)").subgroup(2),
                )
                .extractor(
                    "bar",
                    Extraction::header(":path", "(.*bar=([^&]*).*)").subgroup(2),
                )
                .header("foo", "{{ foo }}")
                .header("bar", "{{ bar }}"),
        )),
    );
    run(
        c,
        "transform, header from a request header + an extraction",
        wrap(layer(
            TransformationTemplate::new()
                .parse_body_behavior(RequestBodyParse::DontParse)
                .extractor(
                    "foo",
                    Extraction::header(":path", "(.*foo=([^&]*).*)").subgroup(2),
                )
                .header("x-solo-resp-hdr1", "{{ header(\"x-solo-hdr1\") }}")
                .header("x-foo", "{{ foo }}"),
        )),
    );
    run(
        c,
        "transform, JSON body parsed and re-rendered",
        wrap(layer(
            TransformationTemplate::new()
                .header("x-user", "{{ user.name }}")
                .body("{\"who\": \"{{ user.name }}\", \"skus\": [{% for i in items %}\"{{ i.sku }}\"{% if not loop.is_last %},{% endif %}{% endfor %}]}"),
        )),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = transformations
}
criterion_main!(benches);

//! Our rate limit service behind the real Envoy 1.40 (`GLOO_TEST_ENVOY`), counting in a real
//! Redis (`GLOO_TEST_REDIS_SERVER`): Envoy's `envoy.filters.http.ratelimit` builds descriptors
//! from the route's `rate_limits` actions and calls `ShouldRateLimit` over gRPC (a static
//! HTTP/2 cluster on 127.0.0.1).

mod support {
    pub mod envoy;
    pub mod grpc;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod http;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod redis_server;
}

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use gloo_filters::ratelimit::global::*;
use gloo_filters::ratelimit::redis::RedisStore;
use gloo_filters::rls::RateLimitService;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use support::envoy::{http_listener, static_cluster, Envoy};
use support::http;
use support::redis_server::{free_port, RedisServer};

/// The limiter's fixed clock: the whole test is in one window.
const NOW: u64 = 1_700_000_000;

/// An upstream that answers every request `200 ok`; returns its port.
async fn start_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the backend");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    port
}

fn listener_yaml(name: &str, port: u16, failure_mode_deny: bool) -> String {
    let routes = r#"
              - match: {prefix: "/"}
                route:
                  cluster: backend
                  rate_limits:
                  - actions:
                    - request_headers: {header_name: x-user, descriptor_key: user}"#;
    let filters = format!(
        r#"
          - name: envoy.filters.http.ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
              domain: edge
              failure_mode_deny: {failure_mode_deny}
              enable_x_ratelimit_headers: DRAFT_VERSION_03
              timeout: 2s
              rate_limit_service:
                transport_api_version: V3
                grpc_service:
                  envoy_grpc: {{cluster_name: rls}}"#
    );
    http_listener(name, port, routes, &filters)
}

/// (status, headers) of `GET /` with `x-user: <user>` (none when `None`) on `port`.
async fn get(port: u16, user: Option<&str>) -> Result<(u16, Vec<(String, String)>), String> {
    let user = user.map_or(String::new(), |u| format!("x-user: {u}\r\n"));
    let request = format!("GET / HTTP/1.1\r\nhost: test\r\n{user}connection: close\r\n\r\n");
    let answer = http::send(port, &request).await?;
    Ok((answer.status, answer.headers))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_limits_through_our_rate_limit_service() {
    let mut redis = RedisServer::start();
    let store = RedisStore::with_timeout(redis.url(), Duration::from_millis(200)).expect("store");
    let limiter = RateLimiter::new(store)
        .clock(|| NOW)
        .domain(
            RateLimitDomain::new("edge")
                .descriptor(Descriptor::new("user").rate_limit(RateLimit::new(3, Unit::Minute)))
                .descriptor(
                    Descriptor::new("user")
                        .value("vip")
                        .rate_limit(RateLimit::new(5, Unit::Minute)),
                ),
        )
        .expect("valid domain");
    let rls_port = support::grpc::serve(
        tonic::transport::Server::builder()
            .add_service(RateLimitService::new(limiter).into_server()),
    )
    .await;
    let backend_port = start_backend().await;

    let (open_port, deny_port, admin_port) = (free_port(), free_port(), free_port());
    let bootstrap = format!(
        "admin:\n  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin_port}}}}}\n\
         static_resources:\n  listeners:{}{}\n  clusters:{}{}",
        listener_yaml("open", open_port, false),
        listener_yaml("deny", deny_port, true),
        static_cluster("backend", backend_port, false),
        static_cluster("rls", rls_port, true),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut envoy = Envoy::start(&bootstrap, admin_port, dir.path());

    // Ready when both listeners answer (each warm-up user has its own counter).
    let mut ready = false;
    for i in 0..400 {
        envoy.check_running();
        let open = get(open_port, Some(&format!("warmup-{i}"))).await;
        let deny = get(deny_port, Some(&format!("warmup-{i}"))).await;
        if matches!((&open, &deny), (Ok((200, _)), Ok((200, _)))) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        ready,
        "Envoy never served both listeners:\n{}",
        envoy.logs()
    );

    // The descriptor Envoy builds from x-user reaches the service: 3 for alice, and Envoy
    // writes the draft 03 headers from our statuses.
    for remaining in ["2", "1", "0"] {
        let (status, headers) = get(open_port, Some("alice")).await.expect("answer");
        assert_eq!(status, 200, "{headers:?}\n{}", envoy.logs());
        assert_eq!(header(&headers, "x-ratelimit-limit"), Some("3, 3;w=60"));
        assert_eq!(header(&headers, "x-ratelimit-remaining"), Some(remaining));
        assert_eq!(
            header(&headers, "x-ratelimit-reset"),
            Some((60 - NOW % 60).to_string().as_str())
        );
        assert!(header(&headers, "x-envoy-ratelimited").is_none());
    }
    // The other listener asks the same service and Redis: alice is out there too.
    for port in [open_port, deny_port] {
        let (status, headers) = get(port, Some("alice")).await.expect("answer");
        assert_eq!(status, 429, "{headers:?}");
        assert_eq!(header(&headers, "x-envoy-ratelimited"), Some("true"));
        assert_eq!(header(&headers, "x-ratelimit-remaining"), Some("0"));
    }

    // Each header value is limited separately; the exact value wins over the key-only rule.
    let (status, _) = get(open_port, Some("bob")).await.expect("answer");
    assert_eq!(status, 200);
    for _ in 0..5 {
        let (status, headers) = get(open_port, Some("vip")).await.expect("answer");
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-ratelimit-limit"), Some("5, 5;w=60"));
    }
    assert_eq!(get(open_port, Some("vip")).await.expect("answer").0, 429);

    // No x-user header: no descriptor, Envoy does not call the service, never limited.
    for _ in 0..5 {
        let (status, headers) = get(open_port, None).await.expect("answer");
        assert_eq!(status, 200);
        assert!(header(&headers, "x-ratelimit-limit").is_none());
    }

    // Redis down: the service answers UNAVAILABLE and Envoy applies failure_mode_deny.
    redis.kill();
    for _ in 0..5 {
        assert_eq!(get(open_port, Some("carol")).await.expect("answer").0, 200);
        assert_eq!(get(deny_port, Some("carol")).await.expect("answer").0, 500);
    }
}

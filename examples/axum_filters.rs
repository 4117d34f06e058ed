//! gloo-filters inside an ordinary axum app, with no gateway anywhere: a local rate limit of
//! 3 requests per client IP, refilled at one token every 10 seconds, with the
//! `x-ratelimit-*` headers and `retry-after` on refusals.
//!
//! ```sh
//! cargo run -p gloo-examples --bin axum_filters -- 127.0.0.1:3000
//! for i in 1 2 3 4; do curl -si localhost:3000/hello | head -1; done   # 200 200 200 429
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use gloo_filters::ratelimit::{KeyFn, LocalRateLimitLayer, RequestHead, TokenBucket};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_string());

    // Three requests, then one more every ten seconds, for each client IP. axum puts the
    // client's address in the request extensions (`into_make_service_with_connect_info`).
    let per_client = KeyFn::new(|head: &RequestHead<'_>| {
        head.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(client)| client.ip())
    });
    let rate_limit = LocalRateLimitLayer::new(TokenBucket::new(3, 1, Duration::from_secs(10))?)
        .x_ratelimit_headers(true)
        .retry_after(true)
        .key_extractor(per_client);

    let app = Router::new()
        .route("/hello", get(|| async { "hello from axum\n" }))
        .layer(rate_limit);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

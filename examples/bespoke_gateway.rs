//! A bespoke gateway binary: gloo's control plane and proxy in one process, as `gloo run`, plus
//! one filter of our own: a tower layer that adds `x-powered-by: bespoke` to every response.
//!
//! ```sh
//! cargo run -p gloo-examples --bin bespoke_gateway -- examples/quickstart [ADMIN_ADDR]
//! curl -i localhost:8080/health          # x-powered-by: bespoke
//! ```
//!
//! The filter is registered "everywhere": every HTTP listener runs it just before the router,
//! on every route, although gloo-core's translation of the Gloo YAML does not list it.

use gloo_proxy::body::Body;
use gloo_proxy::control_plane::{ControlPlane, WRITE_NAMESPACE};
use gloo_proxy::filter::FilterLayer;
use gloo_proxy::gateway::{feed_from_cache, ProxyServer};
use tower::util::MapResponseLayer;

/// Our filter's work: `x-powered-by: bespoke` on every response. Any tower layer whose
/// service takes and answers `http` requests can be a filter; this one is tower's own
/// `MapResponseLayer` over this function.
fn powered_by(mut response: http::Response<Body>) -> http::Response<Body> {
    let value = http::HeaderValue::from_static("bespoke");
    response.headers_mut().insert("x-powered-by", value);
    response
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init(); // RUST_LOG=info for more
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or("usage: bespoke_gateway CONFIG_DIR [ADMIN_ADDR]")?;
    let admin = args
        .get(2)
        .map_or("127.0.0.1:19000", String::as_str)
        .parse()?;
    // gloo-core: watch the directory and translate it into an in-process snapshot cache.
    let control_plane = ControlPlane::start(dir.as_ref(), None)?;
    let feed = feed_from_cache(
        control_plane.cache().clone(),
        &format!("{WRITE_NAMESPACE}~gateway-proxy"),
    );
    // gloo-proxy: serve that translation, with our filter on every route.
    ProxyServer::new()
        .filter_everywhere(
            "bespoke.powered_by",
            FilterLayer::new(MapResponseLayer::new(powered_by)),
        )
        .admin(Some(admin))
        .run(feed)
        .await?;
    Ok(())
}

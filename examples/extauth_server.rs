//! Gloo's external auth server as its own process, for deployment pattern 5 (ingress for a
//! service mesh): the AuthConfigs of a directory of Gloo YAML, translated by gloo-core as Gloo
//! translates them for its ext auth server (`gloo_core::translate::ext_auth_configs`), served
//! by gloo-filters' `envoy.service.auth.v3.Authorization` implementation. `gloo run` (or any
//! Envoy) calls it through the Upstream its Settings' `extauth.extauthzServerRef` names.
//!
//! `cargo run -p gloo-examples --bin extauth_server -- examples/mesh-ingress/gloo 127.0.0.1:8093`
//!
//! It reads the directory once at start-up (restart it after editing an AuthConfig). An
//! AuthConfig gloo-core rejects, or one gloo-filters cannot build, is reported on stderr and
//! not served, so the routes that use it are denied (fail closed).

use std::net::SocketAddr;

use gloo_core::snapshot::ConfigSnapshot;
use gloo_core::source::{ConfigSource, DirectorySource};
use gloo_core::status::Reports;
use gloo_filters::extauth::config::ExtAuthConfig;
use gloo_filters::extauth::grpc::ExtAuthzService;
use gloo_filters::extauth::BuildOptions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(listen)) = (args.next(), args.next()) else {
        return Err("usage: extauth_server <config dir> <listen address>".into());
    };
    let listen: SocketAddr = listen
        .parse()
        .map_err(|e| format!("listen address {listen:?}: {e}"))?;
    let source = DirectorySource::load(&dir)?;
    let snapshot =
        ConfigSnapshot::from_source(&source.subscribe().borrow(), &mut Reports::default());
    let mut configs = Vec::new();
    for (id, json) in gloo_core::translate::ext_auth_configs(&snapshot) {
        match ExtAuthConfig::from_json(&json.to_string()) {
            Ok(config) => configs.push(config),
            Err(e) => eprintln!("AuthConfig {id}: {e}; not served"),
        }
    }
    let service = ExtAuthzService::new();
    service.apply(&configs, &BuildOptions::new())?;
    let ids: Vec<String> = configs
        .iter()
        .map(|c| c.auth_config_ref_name.clone())
        .collect();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("ext auth server listening on {listen}, serving {ids:?}");
    tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}

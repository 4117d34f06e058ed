//! A gRPC service for one test, served by tonic on a free loopback port.

use tokio::net::TcpListener;
use tonic::transport::server::Router;

/// Serves `router` (e.g. `Server::builder().add_service(svc)`) on 127.0.0.1; returns the port.
pub async fn serve(router: Router) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the gRPC service");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = router
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    port
}

/// Serves `routes` over TLS (`tls` should offer ALPN `h2`) on 127.0.0.1; returns the port. A
/// connection whose handshake fails is dropped.
#[allow(dead_code)] // each test binary uses part of the helper
pub async fn serve_tls(
    routes: tonic::service::Routes,
    tls: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the gRPC service");
    let port = listener.local_addr().expect("addr").port();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, routes) = (acceptor.clone(), routes.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let mut routes = routes.clone();
                        async move { tower::Service::call(&mut routes, request).await }
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
            });
        }
    });
    port
}

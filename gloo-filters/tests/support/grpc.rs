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

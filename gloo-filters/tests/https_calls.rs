//! The calls filters make themselves (identity provider, introspection, JWKS) reach `https`
//! URLs over rustls, trusting the system's CA certificates: here `SSL_CERT_FILE`, pointing at a
//! test CA that `openssl` makes, as an operator would point it at a private CA. A server whose
//! certificate no trusted CA signed is refused.

mod support {
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod certs;
}

use std::path::Path;

use bytes::Bytes;
use gloo_filters::extauth::oidc::{HyperIdpClient, IdpClient};
use gloo_filters::extauth::{AuthHttpClient, HyperAuthClient};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use support::certs::{ca_and_leaf, server_config};

/// An HTTPS server on 127.0.0.1 with `<ca>-leaf`'s certificate, answering every request with
/// its method and path as JSON; its port.
async fn https_server(dir: &Path, ca: &str) -> u16 {
    let config = server_config(dir, &format!("{ca}-leaf"), None, &[]);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|request: Request<hyper::body::Incoming>| async move {
                    let method = request.method().to_string();
                    let path = request.uri().path().to_string();
                    let body = request.into_body().collect().await?.to_bytes();
                    let answer = serde_json::json!({
                        "method": method,
                        "path": path,
                        "body": String::from_utf8_lossy(&body),
                    });
                    Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(answer.to_string()))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

fn json(body: &Bytes) -> serde_json::Value {
    serde_json::from_slice(body).expect("a JSON answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_provider_calls_reach_https_urls_signed_by_a_trusted_ca_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    ca_and_leaf(dir.path(), "trusted");
    ca_and_leaf(dir.path(), "stranger");
    // Read once per process, when the first client is made: set before any.
    std::env::set_var("SSL_CERT_FILE", dir.path().join("trusted.crt"));
    std::env::remove_var("SSL_CERT_DIR");
    let trusted = https_server(dir.path(), "trusted").await;
    let stranger = https_server(dir.path(), "stranger").await;

    // The OIDC step's client: discovery-style GET by host name.
    let idp = HyperIdpClient::new();
    let get = |port: u16, path: &str| {
        Request::get(format!("https://localhost:{port}{path}"))
            .body(Bytes::new())
            .expect("request")
    };
    let answer = idp
        .send(get(trusted, "/.well-known/openid-configuration"))
        .await
        .expect("the IdP answers over https");
    assert_eq!(
        json(answer.body())["path"],
        "/.well-known/openid-configuration"
    );

    // The access token step's client: an introspection POST by IP address.
    let introspect = Request::post(format!("https://127.0.0.1:{trusted}/introspect"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Bytes::from_static(b"token=abc"))
        .expect("request");
    let answer = HyperAuthClient::new()
        .send(introspect)
        .await
        .expect("introspection answers over https");
    let answer = json(answer.body());
    assert_eq!(answer["method"], "POST");
    assert_eq!(answer["body"], "token=abc");

    // A certificate from a CA the system does not trust is refused, naming the URL and why.
    let err = idp
        .send(get(stranger, "/jwks"))
        .await
        .expect_err("an untrusted certificate is refused");
    let message = err.to_string();
    assert!(
        message.contains(&format!("https://localhost:{stranger}/jwks")),
        "{message}"
    );
    assert!(message.contains("certificate"), "{message}");
}

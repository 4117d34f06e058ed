//! Pattern 7, behind an OpenShift-style router (`examples/openshift-router`): a real HAProxy in
//! front of `gloo run`, in TCP passthrough with the PROXY protocol and in HTTP mode with
//! X-Forwarded-For, and the gateway seeing the real client address (a rate limit keyed on it,
//! and the access log); traffic shadowing, a 90/10 traffic shift and a canary by header.

#[path = "../../gloo-proxy/tests/support/mod.rs"]
mod e2e;
mod support;

use std::io::Write;
use std::process::Command;

use e2e::{free_port, http_raw, poll, read_response, Backend, LogsOnPanic, Proc, Response};

/// `GET path` for host `shop.example` with extra headers, on a connection closed after it.
fn request(path: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request + "\r\n"
}

/// `GET path` on 127.0.0.1:`port` from the local address `source` (any 127.0.0.0/8 address is
/// ours on Linux: each stands for a different client), with extra headers.
fn get_from(source: &str, port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    let connect = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::new(
            source.parse().map_err(std::io::Error::other)?,
            0,
        ))?;
        socket
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await?
            .into_std()
    };
    let mut stream = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .and_then(|rt| rt.block_on(connect))
        .unwrap_or_else(|e| panic!("connect from {source} to :{port}: {e}"));
    stream.set_nonblocking(false).expect("blocking socket");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("read timeout");
    stream
        .write_all(request(path, headers).as_bytes())
        .and_then(|()| read_response(&mut stream, false))
        .unwrap_or_else(|e| panic!("GET {path} from {source} on :{port}: {e}"))
}

/// `GET path` with headers on 127.0.0.1:`port`.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    http_raw(port, request(path, headers).as_bytes(), false)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Three sign-ups from `client` pass, the fourth is limited, and another client still passes:
/// the gateway counts by the real client address, not the router's.
fn check_rate_limit_by_client(
    router: u16,
    client: &str,
    other: &str,
    headers: &[(&str, &str)],
    mode: &str,
) {
    let statuses: Vec<u16> = (0..4)
        .map(|_| get_from(client, router, "/signup", headers).status)
        .collect();
    assert_eq!(
        statuses,
        [200, 200, 200, 429],
        "{mode}: sign-ups from {client}"
    );
    let r = get_from(other, router, "/signup", headers);
    assert_eq!(r.status, 200, "{mode}: {other} has its own budget: {r:?}");
}

#[test]
fn the_gateway_behind_haproxy_sees_clients_and_splits_shadows_and_canaries_traffic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let (v1, v2, shadow) = (
        Backend::start("shop-v1"),
        Backend::start("shop-v2"),
        Backend::start("shop-shadow"),
    );
    let (passthrough, forwarded, rls, admin, router_tcp, router_http) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let replacements: Vec<(String, String)> = [
        ("bindPort: 8081", format!("bindPort: {passthrough}")),
        ("bindPort: 8082", format!("bindPort: {forwarded}")),
        ("port: 18091", format!("port: {}", v1.port)),
        ("port: 18092", format!("port: {}", v2.port)),
        ("port: 18093", format!("port: {}", shadow.port)),
        ("port: 18081", format!("port: {rls}")),
        (
            "bind 127.0.0.1:9081",
            format!("bind 127.0.0.1:{router_tcp}"),
        ),
        (
            "bind 127.0.0.1:9082",
            format!("bind 127.0.0.1:{router_http}"),
        ),
        (
            "server gloo 127.0.0.1:8081",
            format!("server gloo 127.0.0.1:{passthrough}"),
        ),
        (
            "server gloo 127.0.0.1:8082",
            format!("server gloo 127.0.0.1:{forwarded}"),
        ),
    ]
    .into_iter()
    .map(|(from, to)| (from.to_string(), to))
    .collect();
    let cfg = dir.path().join("openshift-router");
    support::copy_example("openshift-router", &cfg, &replacements);

    let gloo_dir = cfg.join("gloo").display().to_string();
    let rls_addr = format!("127.0.0.1:{rls}");
    let mut gloo = e2e::gloo_ready(
        "gloo-run",
        &[
            "run",
            "--config",
            &gloo_dir,
            "--access-log",
            "--ratelimit-server",
            &rls_addr,
        ],
        admin,
        &logs,
    );
    let haproxy = |name: &'static str, file: &str| {
        Proc::spawn(
            name,
            Command::new(support::haproxy())
                .arg("-f")
                .arg(cfg.join(file))
                .arg("-db"),
            &logs,
        )
    };
    let router_tcp_proc = haproxy("haproxy-tcp", "haproxy-tcp.cfg");
    let router_http_proc = haproxy("haproxy-http", "haproxy-http.cfg");
    let rls_line = format!("rate limit service listening on {rls_addr}");
    let ready = poll(
        "the routers, the gateway and its rate limit service",
        || {
            gloo.check_running()?;
            if !gloo.stderr_text().contains(&rls_line) {
                return Err(format!("no `{rls_line}` yet"));
            }
            for router in [router_tcp, router_http] {
                let r = http_raw(
                    router,
                    b"GET /shop/ready HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n",
                    false,
                )
                .map_err(|e| e.to_string())?;
                if r.status != 200 {
                    return Err(format!(":{router} {r:?}"));
                }
            }
            Ok(())
        },
    );
    let _logs = LogsOnPanic(&cfg, vec![&gloo, &router_tcp_proc, &router_http_proc]);
    ready.unwrap_or_else(|e| panic!("{e}"));

    // The real client address, through each router mode.
    check_rate_limit_by_client(router_tcp, "127.0.0.2", "127.0.0.3", &[], "PROXY protocol");
    // The client's own X-Forwarded-For is not believed: one trusted hop is the router's entry.
    let spoofed = [("x-forwarded-for", "203.0.113.7")];
    check_rate_limit_by_client(
        router_http,
        "127.0.0.4",
        "127.0.0.5",
        &spoofed,
        "X-Forwarded-For",
    );
    let access_log = gloo.stderr_text();
    let logged = |needle: &str| {
        access_log
            .lines()
            .any(|l| l.contains("gloo_proxy::access") && l.contains(needle))
    };
    // PROXY protocol: the client's address and port; X-Forwarded-For: its address alone.
    assert!(
        logged(" 127.0.0.2:") && logged("GET /signup 429"),
        "{access_log}"
    );
    assert!(logged(" 127.0.0.4:0 GET /signup 429"), "{access_log}");
    assert!(logged(" 127.0.0.5:0 GET /signup 200"), "{access_log}");
    assert!(
        !logged("203.0.113.7"),
        "a spoofed address was logged: {access_log}"
    );
    let seen = v1.seen();
    let xff = seen
        .last()
        .and_then(|s| s.header("x-forwarded-for"))
        .unwrap_or_default();
    assert!(
        xff.starts_with("203.0.113.7") && xff.contains("127.0.0.5"),
        "the upstream gets the whole chain: {xff:?}"
    );

    // Canary: asking for it gets v2, every time.
    let before = v2.count();
    for _ in 0..20 {
        let r = get(router_http, "/shop/cart", &[("x-canary", "true")]);
        assert_eq!(r.header("x-backend"), Some("shop-v2"), "{r:?}");
    }
    assert_eq!(v2.count() - before, 20);

    // Traffic shift 90/10, each request shadowed.
    let (v1_before, v2_before, shadow_before) = (v1.count(), v2.count(), shadow.count());
    const N: usize = 1000;
    for _ in 0..N {
        let r = get(router_http, "/shop/item", &[]);
        assert_eq!(r.status, 200, "{r:?}");
    }
    let (to_v1, to_v2) = (v1.count() - v1_before, v2.count() - v2_before);
    assert_eq!(to_v1 + to_v2, N);
    let share = to_v2 as f64 / N as f64;
    println!(
        "traffic shift 90/10 over {N} requests: v1 {to_v1}, v2 {to_v2} ({:.1}% to v2)",
        share * 100.0
    );
    // Binomial(1000, 0.1) has a standard deviation of 9.5 requests: ±40 is over 4 of them.
    assert!(
        (0.06..=0.14).contains(&share),
        "v2 got {:.1}%",
        share * 100.0
    );
    // The shadow gets a copy of each (asynchronously), with `-shadow` appended to the host.
    let shadowed = poll("the shadow to get every copy", || {
        let n = shadow.count() - shadow_before;
        (n == N).then_some(n).ok_or(format!("{n} copies"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    println!("shadowed: {shadowed} of {N}");
    let host = shadow
        .seen()
        .last()
        .and_then(|s| s.header("host").map(str::to_string));
    assert_eq!(host.as_deref(), Some("shop.example-shadow"));
}

//! Listeners: bind the addresses the config names, accept connections (HTTP/1.1, h2c, and
//! PROXY protocol when configured) and hand every request to the [`Proxy`].
//!
//! Listeners are reconciled against each new config: a listener whose address is unchanged
//! keeps its socket and its connections (they pick up the new routes on their next
//! request); a removed listener stops accepting while its open connections finish.
//!
//! [`ProxyServer`](crate::gateway::ProxyServer) does all this; a runtime of your own (here one
//! thread serving one resource set) uses the same pieces:
//!
//! ```no_run
//! use std::sync::Arc;
//! use gloo_proxy::config::{Compiler, XdsResources};
//! use gloo_proxy::filter::{FilterRegistry, HttpService};
//! use gloo_proxy::proxy::{Proxy, RouteService};
//! use gloo_proxy::server::{Listeners, Sockets};
//! use gloo_proxy::stats::Stats;
//!
//! # async fn example(resources: XdsResources) {
//! let stats = Arc::new(Stats::default());
//! let registry = FilterRegistry::with_builtins();
//! let upstreams = registry.upstreams().clone();
//! let mut compiler = Compiler::new(registry, stats.clone(), HttpService::new(RouteService), 1);
//! let config = compiler.compile(resources);
//! // Bind what the listeners name (once, shared by every worker); report what cannot bind.
//! let sockets = Sockets::new();
//! for error in sockets.sync(&config) {
//!     eprintln!("{error}");
//! }
//! // The request path reads the configuration in force from a watch channel: send a newly
//! // compiled one there, then reconcile the listeners with it.
//! let (_config_tx, config_rx) = tokio::sync::watch::channel(config.clone());
//! // Filters that call out through a cluster (a remote JWKS, ext_authz) read the same one.
//! upstreams.attach(config_rx.clone());
//! let proxy = Arc::new(Proxy::new(config_rx, stats, false));
//! let mut listeners = Listeners::new();
//! listeners.reconcile(&config, &proxy, &sockets);
//! println!("serving {:?}", listeners.addresses());
//! std::future::pending::<()>().await; // accept loops run until `listeners` is dropped
//! # }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::rustls::server::Acceptor;
use tokio_rustls::LazyConfigAcceptor;

use crate::body::{Body, LastActivity};
use crate::config::{HttpListener, ProxyConfig};
use crate::proxy::{Downstream, Proxy};
use crate::proxy_protocol;

mod h1;
pub(crate) use h1::Rewind;

/// A listener that could not be started.
#[derive(Debug, thiserror::Error)]
#[error("listener {name:?} cannot listen on {address}: {source}")]
pub struct BindError {
    /// The listener.
    pub name: String,
    /// Its address.
    pub address: SocketAddr,
    /// Why.
    pub source: std::io::Error,
}

/// The listening sockets, bound once (in the control thread) and shared by every worker, so
/// a bind error is reported once and workers only ever accept.
#[derive(Debug, Default)]
pub struct Sockets {
    bound: std::sync::Mutex<HashMap<SocketAddr, std::net::TcpListener>>,
}

impl Sockets {
    /// No sockets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds the addresses `config` names that are not bound yet, and closes those it no
    /// longer names. Returns the listeners that could not bind.
    pub fn sync(&self, config: &ProxyConfig) -> Vec<BindError> {
        let mut bound = match self.bound.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let wanted: Vec<(&str, SocketAddr)> = config
            .listeners
            .iter()
            .filter(|l| !l.embedded)
            .map(|l| (l.name.as_str(), l.address))
            .chain(
                config
                    .tcp_listeners
                    .iter()
                    .map(|l| (l.name.as_str(), l.address)),
            )
            .collect();
        bound.retain(|addr, _| wanted.iter().any(|(_, a)| a == addr));
        let mut errors = Vec::new();
        for (name, address) in wanted {
            if bound.contains_key(&address) {
                continue;
            }
            match bind(address) {
                Ok(socket) => {
                    tracing::info!("listener {name:?} bound to {address}");
                    bound.insert(address, socket);
                }
                Err(source) => errors.push(BindError {
                    name: name.to_string(),
                    address,
                    source,
                }),
            }
        }
        errors
    }

    /// A handle on the socket bound to `address`, for one worker's runtime.
    fn get(&self, address: SocketAddr) -> Option<std::io::Result<TcpListener>> {
        let bound = match self.bound.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let socket = bound.get(&address)?;
        Some(socket.try_clone().and_then(TcpListener::from_std))
    }
}

fn bind(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    // Accepted connections inherit it on Linux: no `setsockopt` per connection.
    socket.set_nodelay(true)?;
    socket.bind(address)?;
    socket.listen(4096)?.into_std()
}

struct Running {
    address: SocketAddr,
    /// A TCP proxy listener's accept loop (else an HTTP one's).
    tcp: bool,
    accept: JoinHandle<()>,
}

/// A listener to accept on, of either kind.
enum Served<'a> {
    Http(&'a Arc<HttpListener>),
    Tcp(&'a Arc<crate::tcp::TcpProxyListener>),
}

impl Served<'_> {
    fn address(&self) -> SocketAddr {
        match self {
            Served::Http(l) => l.address,
            Served::Tcp(l) => l.address,
        }
    }

    fn is_tcp(&self) -> bool {
        matches!(self, Served::Tcp(_))
    }
}

/// The listeners one worker accepts on.
#[derive(Default)]
pub struct Listeners {
    running: HashMap<String, Running>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.running.iter().map(|(n, r)| (n, r.address)))
            .finish()
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for r in self.running.values() {
            r.accept.abort();
        }
    }
}

impl Listeners {
    /// No listeners.
    pub fn new() -> Self {
        Self::default()
    }

    /// The addresses being listened on, by listener name.
    pub fn addresses(&self) -> HashMap<String, SocketAddr> {
        self.running
            .iter()
            .map(|(n, r)| (n.clone(), r.address))
            .collect()
    }

    /// Starts (on the current runtime), keeps or stops accept loops to match `config`, on
    /// the sockets in `sockets`.
    pub fn reconcile(&mut self, config: &ProxyConfig, proxy: &Arc<Proxy>, sockets: &Sockets) {
        let wanted: HashMap<&str, Served<'_>> = config
            .listeners
            .iter()
            .filter(|l| !l.embedded)
            .map(|l| (l.name.as_str(), Served::Http(l)))
            .chain(
                config
                    .tcp_listeners
                    .iter()
                    .map(|l| (l.name.as_str(), Served::Tcp(l))),
            )
            .collect();
        // A listener whose kind changed is started afresh (its address is what it keeps).
        self.running.retain(|name, r| {
            let keep = wanted
                .get(name.as_str())
                .is_some_and(|l| l.address() == r.address && l.is_tcp() == r.tcp);
            if !keep {
                r.accept.abort();
            }
            keep
        });
        for (name, l) in wanted {
            if self.running.contains_key(name) {
                continue;
            }
            match sockets.get(l.address()) {
                Some(Ok(socket)) => {
                    let accept = match l {
                        Served::Http(l) => {
                            let (l, proxy) = (l.clone(), proxy.clone());
                            tokio::spawn(async move {
                                accept_loop(socket, &l.name, &proxy, |stream, remote| {
                                    serve_connection(stream, remote, l.clone(), proxy.clone())
                                })
                                .await
                            })
                        }
                        Served::Tcp(l) => {
                            let (l, proxy) = (l.clone(), proxy.clone());
                            tokio::spawn(async move {
                                accept_loop(socket, &l.name, &proxy, |stream, remote| {
                                    crate::tcp::serve_connection(
                                        stream,
                                        remote,
                                        l.clone(),
                                        proxy.clone(),
                                    )
                                })
                                .await
                            })
                        }
                    };
                    self.running.insert(
                        name.to_string(),
                        Running {
                            address: l.address(),
                            tcp: l.is_tcp(),
                            accept,
                        },
                    );
                }
                Some(Err(e)) => tracing::error!("listener {name:?}: cannot accept: {e}"),
                // Not bound: the bind error was reported when the config was applied.
                None => {}
            }
        }
    }
}

/// Accepts connections on `socket` for the listener `name` until aborted, counting each and
/// spawning `serve` on it with the client's address (an IPv4 client of a dual-stack listener
/// as an IPv4 address).
async fn accept_loop<F, Fut>(socket: TcpListener, name: &str, proxy: &Proxy, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match socket.accept().await {
            Ok((stream, remote)) => {
                let remote = SocketAddr::new(remote.ip().to_canonical(), remote.port());
                proxy.stats().downstream.cx_total.inc();
                // Inherited from the listening socket on Linux.
                #[cfg(not(target_os = "linux"))]
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, remote));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("listener {name:?}: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The client address a listener that reads PROXY protocol headers takes from one (the
/// connection's own when the header names none); `None` when the header is bad or late, and
/// the connection is to be closed.
pub(crate) async fn proxy_protocol_source(
    stream: &mut TcpStream,
    remote: SocketAddr,
) -> Option<SocketAddr> {
    match tokio::time::timeout(Duration::from_secs(5), proxy_protocol::read_header(stream)).await {
        Ok(Ok(Some(source))) => Some(source),
        Ok(Ok(None)) => Some(remote),
        Ok(Err(e)) => {
            tracing::debug!("{remote}: bad PROXY protocol header: {e}");
            None
        }
        Err(_) => {
            tracing::debug!("{remote}: no PROXY protocol header in time");
            None
        }
    }
}

struct Connection {
    proxy: Arc<Proxy>,
    listener: Arc<HttpListener>,
    downstream: Downstream,
}

async fn serve_connection(
    mut stream: TcpStream,
    mut remote: SocketAddr,
    listener: Arc<HttpListener>,
    proxy: Arc<Proxy>,
) {
    if listener.proxy_protocol {
        match proxy_protocol_source(&mut stream, remote).await {
            Some(source) => remote = source,
            None => return,
        }
    }
    // The address the client dialled: the listener's own, or for a wildcard bind the
    // interface it arrived on (one `getsockname` then).
    let local = if listener.address.ip().is_unspecified() {
        stream.local_addr().unwrap_or(listener.address)
    } else {
        listener.address
    };
    let local = SocketAddr::new(local.ip().to_canonical(), local.port());
    serve_accepted(stream, remote, local, listener, proxy).await
}

/// Serves a connection of `listener` from `remote` to `local` whose PROXY protocol header (if
/// any) has been read: TLS when the listener terminates it, then HTTP. A hybrid listener hands
/// the connections of its HTTP filter chains here (see [`crate::tcp`]).
pub(crate) async fn serve_accepted<S>(
    stream: S,
    remote: SocketAddr,
    local: SocketAddr,
    listener: Arc<HttpListener>,
    proxy: Arc<Proxy>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let scheme = if listener.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut downstream = Downstream {
        remote,
        peer: remote,
        local,
        scheme,
        client_certificate: None,
    };
    match listener.tls.clone() {
        None => {
            let conn = Arc::new(Connection {
                proxy,
                listener,
                downstream,
            });
            serve_http(stream, conn).await
        }
        Some(tls) => {
            let handshake = async {
                let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
                let chain = tls
                    .select(start.client_hello().server_name())
                    .ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "no certificate for this server name",
                        )
                    })?;
                let served_uri_sans = chain.uri_sans.clone();
                let stream = start.into_stream(chain.config.clone()).await?;
                Ok::<_, std::io::Error>((stream, served_uri_sans))
            };
            match tokio::time::timeout(listener.tls_handshake_timeout, handshake).await {
                // Boxed, so plain connections' tasks do not carry a TLS connection's room.
                Ok(Ok((tls_stream, served_uri_sans))) => {
                    // A client that presented a (verified) certificate: mutual TLS.
                    downstream.client_certificate = tls_stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .filter(|chain| !chain.is_empty())
                        .map(|chain| {
                            Arc::new(crate::xfcc::ClientCertificate::new(
                                chain.iter().map(|c| c.clone().into_owned()).collect(),
                                served_uri_sans,
                            ))
                        });
                    let conn = Arc::new(Connection {
                        proxy,
                        listener,
                        downstream,
                    });
                    Box::pin(serve_http(tls_stream, conn)).await
                }
                Ok(Err(e)) => tracing::debug!("{remote}: TLS handshake failed: {e}"),
                Err(_) => tracing::debug!("{remote}: TLS handshake timed out"),
            }
        }
    }
}

/// hyper's HTTP/1 header count limit when none is set (Envoy's default too).
const HYPER_MAX_HEADERS: usize = 100;

/// The most bytes of a request head read before it is refused (hyper's read buffer limit,
/// which answers 431 beyond it): a little more than the listener's header limit.
fn head_limit(settings: &crate::config::ConnectionSettings) -> usize {
    settings.max_request_headers_bytes.max(8192) + 1024
}

/// Serves HTTP/1.1 and HTTP/2 (by preface, or ALPN over TLS) on one connection, and closes it
/// as Envoy's connection manager would: after `idle_timeout` with no request in flight, and
/// drained after `max_connection_duration` or `max_requests_per_connection`.
///
/// Plain HTTP/1.1 requests are served by [`h1::serve`]; from the first request that needs
/// more (or an HTTP/2 preface), hyper serves the connection.
async fn serve_http<I>(io: I, conn: Arc<Connection>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let settings = &conn.listener.settings;
    let activity = Arc::new(Activity::new());
    // The clocks run in a task of their own: it wakes only at its deadlines, and the
    // connection's own polls cost an atomic load and a waker check for them.
    let watchdog = tokio::spawn(watch_connection(
        activity.clone(),
        settings.idle_timeout,
        settings.max_connection_duration,
        settings.request_headers_timeout,
    ));
    let (io, read) = match h1::serve(io, &conn, &activity).await {
        h1::Ended::Closed => {
            watchdog.abort();
            return;
        }
        h1::Ended::Handover(io, read) => (io, read),
    };
    // Boxed: hyper's connection future is large and most connections never need it, and
    // every connection's task is as large as its future (each new connection copies it).
    Box::pin(serve_with_hyper(
        h1::Rewind::new(io, read),
        conn,
        activity,
        watchdog,
    ))
    .await;
}

/// Serves the rest of a connection with hyper (HTTP/2, and HTTP/1 requests the lean loop
/// hands over), from the bytes the lean loop already read.
async fn serve_with_hyper<I>(
    io: h1::Rewind<I>,
    conn: Arc<Connection>,
    activity: Arc<Activity>,
    watchdog: JoinHandle<()>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let listener = conn.listener.clone();
    let settings = &listener.settings;
    let remote = conn.downstream.remote;
    // hyper keeps its own header timeout from here.
    activity.hyper_serves.store(true, Ordering::Release);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // Slow clients get this long to send their headers (slowloris).
        .header_read_timeout(settings.request_headers_timeout)
        .max_buf_size(head_limit(settings))
        // hyper's title case capitalises after `-` only (Envoy's proper case after any
        // character that is not a letter or digit): only names like `x_a.b` differ.
        .title_case_headers(settings.http1_proper_case);
    if settings.max_headers_count != HYPER_MAX_HEADERS {
        // Only when it differs: with the limit set, hyper builds its header array per
        // request instead of using its inline default.
        builder.http1().max_headers(settings.max_headers_count);
    }
    let mut http2 = builder.http2();
    http2.timer(TokioTimer::new()).max_header_list_size(
        u32::try_from(settings.max_request_headers_bytes).unwrap_or(u32::MAX),
    );
    // The connection manager's `http2_protocol_options`.
    if let Some(streams) = settings.http2_max_concurrent_streams {
        http2.max_concurrent_streams(streams);
    }
    if let Some(window) = settings.http2_initial_stream_window {
        http2.initial_stream_window_size(window);
    }
    if let Some(window) = settings.http2_initial_connection_window {
        http2.initial_connection_window_size(window);
    }
    let downstream = conn.downstream.clone();
    let service = {
        let activity = activity.clone();
        let max_requests = settings.max_requests_per_connection;
        service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let conn = conn.clone();
            let guard = activity.begin();
            // Boxed: hyper spawns each HTTP/2 stream's future as a task, and a task's future
            // is moved several times on its way in and out (about ten copies a request).
            // Unboxed, the request path's future (some 8 KB) went with it each time.
            Box::pin(async move {
                let http1 = req.version() < http::Version::HTTP_2;
                let mut response =
                    std::pin::pin!(conn.proxy.handle(req, &conn.listener, &conn.downstream)).await;
                if max_requests.is_some_and(|max| guard.served >= max) {
                    if http1 {
                        response.headers_mut().insert(
                            http::header::CONNECTION,
                            http::HeaderValue::from_static("close"),
                        );
                    }
                    guard.activity.drain();
                }
                // The stream stays active until its response body is done.
                Ok::<_, Infallible>(response.map(|body| TrackedBody {
                    body,
                    _guard: guard,
                }))
            })
        })
    };
    let connection = Box::pin(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
    let result = Drainable {
        connection,
        activity,
        draining: false,
    }
    .await;
    watchdog.abort();
    if let Err(e) = result {
        tracing::debug!("{remote}: connection ended with an error: {e}");
        // hyper answered a malformed HTTP/1 request itself (431 for a head too large, 400
        // otherwise) and closed: the access log has it, as Envoy's codec errors are logged.
        let refused = e
            .downcast_ref::<hyper::Error>()
            .filter(|e| e.is_parse() || e.is_parse_too_large());
        if let (Some(e), Some(logs)) = (refused, &listener.access_log) {
            let status = if e.is_parse_too_large() { 431 } else { 400 };
            logs.write_refused(&downstream, status);
        }
    }
}

/// Raises the connection's drain flag once it has been idle for `idle_timeout` or open for
/// `max_duration`; while [`h1::serve`] serves it, also once it has waited `head_timeout` for
/// a request (hyper keeps that clock itself).
async fn watch_connection(
    activity: Arc<Activity>,
    idle_timeout: Option<Duration>,
    max_duration: Option<Duration>,
    head_timeout: Duration,
) {
    let end_of_life = max_duration.map(|d| activity.last_stream_end.origin() + d);
    // Read again at each check: a handover to hyper ends the head clock.
    let idle_limit = || {
        if activity.hyper_serves.load(Ordering::Acquire) {
            idle_timeout
        } else {
            Some(idle_timeout.map_or(head_timeout, |idle| idle.min(head_timeout)))
        }
    };
    loop {
        let now = tokio::time::Instant::now();
        let idle_check = idle_limit().map(|idle| match activity.idle_since() {
            Some(since) => since + idle,
            None => now + idle,
        });
        let Some(wake) = [idle_check, end_of_life].into_iter().flatten().min() else {
            return;
        };
        tokio::time::sleep_until(wake).await;
        let now = tokio::time::Instant::now();
        let idle = matches!(
            (idle_limit(), activity.idle_since()),
            (Some(limit), Some(since)) if since + limit <= now
        );
        if idle || end_of_life.is_some_and(|t| t <= now) {
            activity.drain();
            return;
        }
    }
}

/// The connection future, shut down gracefully (in-flight requests finish, HTTP/1 gets
/// `connection: close`, HTTP/2 a GOAWAY) once its drain flag is raised.
struct Drainable<C> {
    connection: std::pin::Pin<Box<C>>,
    activity: Arc<Activity>,
    draining: bool,
}

impl<C, E> std::future::Future for Drainable<C>
where
    C: std::future::Future<Output = Result<(), E>> + GracefulShutdown,
{
    type Output = Result<(), E>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        if !this.draining {
            this.activity.waker.register(cx.waker());
            if this.activity.drain_requested.load(Ordering::Acquire) {
                this.draining = true;
                this.connection.as_mut().shutdown();
            }
        }
        this.connection.as_mut().poll(cx)
    }
}

/// A connection that can be shut down gracefully (hyper-util's, here).
trait GracefulShutdown {
    fn shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S, E> GracefulShutdown for auto::UpgradeableConnection<'_, I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Future: 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: http_body::Body + Send + 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn shutdown(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// What a connection is doing: requests in flight (until their response body ends), how
/// many it has served, and since when it has been idle.
struct Activity {
    in_flight: AtomicUsize,
    served: AtomicU32,
    /// When the last stream ended (at first: when the connection opened).
    last_stream_end: LastActivity,
    /// Raised when the connection should close once its in-flight requests are done.
    drain_requested: std::sync::atomic::AtomicBool,
    /// Wakes the connection's task to act on `drain_requested`.
    waker: futures_util::task::AtomicWaker,
    /// Set once hyper serves the connection (it then keeps its own header timeout).
    hyper_serves: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            served: AtomicU32::new(0),
            last_stream_end: LastActivity::new(),
            drain_requested: std::sync::atomic::AtomicBool::new(false),
            waker: futures_util::task::AtomicWaker::new(),
            hyper_serves: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the connection should close once its in-flight requests are done.
    fn drain_requested(&self) -> bool {
        self.drain_requested.load(Ordering::Acquire)
    }

    /// Completes when the connection is asked to close (the caller's task is woken then).
    async fn drained(&self) {
        std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            if self.drain_requested() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await
    }

    /// Asks the connection to close once its in-flight requests are done.
    fn drain(&self) {
        self.drain_requested.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn begin(self: &Arc<Self>) -> StreamGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let served = self
            .served
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        StreamGuard {
            activity: self.clone(),
            served,
        }
    }

    /// Since when no stream has been active, or `None` while one is.
    fn idle_since(&self) -> Option<tokio::time::Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        Some(self.last_stream_end.at())
    }
}

/// One active stream; dropped when its response body has been sent (or abandoned).
struct StreamGuard {
    activity: Arc<Activity>,
    /// This stream's number on the connection (1 for the first).
    served: u32,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.activity.last_stream_end.touch();
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its stream counted as active until it ends.
struct TrackedBody {
    body: Body,
    _guard: StreamGuard,
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

//! HTTP/1.1 to upstreams, in the request's own task.
//!
//! A general client (hyper's) runs every connection as its own task and talks to it through
//! channels: each request then costs several task wake-ups. A proxy knows more: the worker
//! that sends a request is the one that reads its answer. So this client writes the request
//! and reads the answer directly on a pooled connection, in the calling task; a response that
//! arrived whole (the common case) is handed back with its body already in memory and its
//! connection back in the pool. Longer bodies stream from the connection, which returns to
//! the pool when the body ends.
//!
//! Pools are per worker (each worker thread has its own runtime and connections), keyed by
//! endpoint address.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::body::{Body, BoxError};

/// Largest response header block accepted from an upstream.
const MAX_HEAD: usize = 64 * 1024;
/// Most idle connections kept per endpoint and worker.
const MAX_IDLE: usize = 1024;

/// How a cluster's HTTP/1.1 connections are opened, kept and read: its
/// `upstream_connection_options`, the `common_http_protocol_options` and HTTP/1 options of its
/// `HttpProtocolOptions`. [`Default`] is Envoy's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionOptions {
    /// How long a connection may wait in the pool for its next request (`idle_timeout`:
    /// 1 hour; zero, `None`: for ever). An older one is closed, not used.
    pub(crate) idle_timeout: Option<Duration>,
    /// Requests a connection serves before it is closed (`max_requests_per_connection`;
    /// `None`: no limit).
    pub(crate) max_requests: Option<u32>,
    /// The most fields a response head, or its trailers, may have (`max_headers_count`: 100).
    /// An answer with more is a protocol error, as Envoy's codec finds it.
    pub(crate) max_headers: usize,
    /// TCP keepalive on the connections' sockets (`tcp_keepalive`; `None`: the system's
    /// default, usually off).
    pub(crate) keepalive: Option<Keepalive>,
    /// Whether a chunked answer's trailers are passed on (`enable_trailers`); by default they
    /// are dropped, as Envoy's HTTP/1 codec drops them.
    pub(crate) trailers: bool,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            idle_timeout: Some(Duration::from_secs(3600)),
            max_requests: None,
            max_headers: 100,
            keepalive: None,
            trailers: false,
        }
    }
}

/// TCP keepalive probes (Envoy's `core.v3.TcpKeepalive`): a value left unset keeps the
/// system's (Linux: probes after 7200 s idle, every 75 s, 9 of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Keepalive {
    /// Idle time before the first probe (`keepalive_time`).
    pub(crate) time: Option<Duration>,
    /// Time between probes (`keepalive_interval`).
    pub(crate) interval: Option<Duration>,
    /// Unanswered probes before the connection is dropped (`keepalive_probes`).
    pub(crate) probes: Option<u32>,
}

impl Keepalive {
    /// Turns keepalive on for `tcp`, with the values set.
    pub(crate) fn apply(&self, tcp: &TcpStream) -> io::Result<()> {
        let mut params = socket2::TcpKeepalive::new();
        if let Some(time) = self.time {
            params = params.with_time(time);
        }
        if let Some(interval) = self.interval {
            params = params.with_interval(interval);
        }
        if let Some(probes) = self.probes {
            params = params.with_retries(probes);
        }
        socket2::SockRef::from(tcp).set_tcp_keepalive(&params)
    }
}

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made.
    #[error("connection failure: {0}")]
    Connect(io::Error),
    /// The connection failed or closed before a complete response head arrived.
    #[error("upstream reset before the response: {0}")]
    Reset(io::Error),
    /// The upstream answered something that is not HTTP/1.
    #[error("invalid response from upstream: {0}")]
    Protocol(String),
    /// The cluster is at its circuit breaker's `max_connections`.
    #[error("upstream connection limit reached")]
    Overflow,
}

/// How many connections a cluster may have open (its circuit breaker's `max_connections`),
/// counted across workers, and how many requests may wait for one (`max_pending_requests`).
#[derive(Debug)]
pub(crate) struct ConnectionLimit {
    max: u32,
    state: Arc<LimitState>,
}

#[derive(Debug)]
struct LimitState {
    open: std::sync::atomic::AtomicU32,
    pending: std::sync::atomic::AtomicU32,
    max_pending: u32,
    /// Raised when a connection closes or goes back to a pool, while requests wait.
    available: tokio::sync::Notify,
}

impl LimitState {
    fn announce(&self) {
        if self.pending.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.available.notify_waiters();
        }
    }
}

impl ConnectionLimit {
    pub(crate) fn new(max: u32, max_pending: u32) -> Self {
        ConnectionLimit {
            max,
            state: Arc::new(LimitState {
                open: std::sync::atomic::AtomicU32::new(0),
                pending: std::sync::atomic::AtomicU32::new(0),
                max_pending,
                available: tokio::sync::Notify::new(),
            }),
        }
    }

    fn take(&self) -> Option<ConnectionSlot> {
        use std::sync::atomic::Ordering;
        let prev = self.state.open.fetch_add(1, Ordering::AcqRel);
        let slot = ConnectionSlot(self.state.clone());
        (prev < self.max).then_some(slot)
    }

    /// A place over the limit: for a worker's pool that has no connection at all to the
    /// endpoint (see [`acquire`]).
    fn take_over_limit(&self) -> ConnectionSlot {
        self.state
            .open
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        ConnectionSlot(self.state.clone())
    }

    /// A place among the requests waiting for a connection, if there is one left.
    fn pend(&self) -> Option<PendingRequest> {
        use std::sync::atomic::Ordering;
        let prev = self.state.pending.fetch_add(1, Ordering::SeqCst);
        let pending = PendingRequest(self.state.clone());
        (prev < self.state.max_pending).then_some(pending)
    }
}

/// One open connection's place under the limit, given back when the connection closes.
#[derive(Debug)]
struct ConnectionSlot(Arc<LimitState>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.0.announce();
    }
}

/// A request waiting for a connection.
struct PendingRequest(Arc<LimitState>);

impl Drop for PendingRequest {
    fn drop(&mut self) {
        self.0
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl SendError {
    /// Whether the connection could not be made at all.
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }
}

/// A connection to an upstream, plain or TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl hyper_util::client::legacy::connect::Connection for Stream {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        let connected = hyper_util::client::legacy::connect::Connected::new();
        match self {
            Stream::Tls(s) if s.get_ref().1.alpn_protocol() == Some(b"h2") => {
                connected.negotiated_h2()
            }
            _ => connected,
        }
    }
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open connection with what has been read past the last response.
#[derive(Debug)]
struct Conn {
    stream: Stream,
    _slot: ConnectionSlot,
    _owned: Owned,
    buf: BytesMut,
    /// Where each request's head (and a body at hand) is written, kept from one request to
    /// the next so it is not allocated per request.
    out: BytesMut,
    /// When it went idle, as nanoseconds after [`epoch`] (eight bytes rather than an
    /// `Instant`'s sixteen: with the count beside it, a connection stays as small as it was).
    idle_since: u64,
    /// Requests sent on it.
    served: u32,
}

/// One connection counted among its worker's connections to an endpoint, until it closes.
#[derive(Debug)]
struct Owned(Arc<std::sync::atomic::AtomicU32>);

impl Owned {
    fn new(count: &Arc<std::sync::atomic::AtomicU32>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Owned(count.clone())
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Idle connections of one worker, by endpoint (and, for clusters that start connections
/// with a PROXY protocol header, by the client connection it names).
#[derive(Debug, Default)]
struct Idle {
    plain: HashMap<SocketAddr, Vec<Conn>, foldhash::fast::RandomState>,
    by_origin: HashMap<
        (SocketAddr, crate::proxy_protocol::Origin),
        Vec<Conn>,
        foldhash::fast::RandomState,
    >,
    /// When connections past the idle timeout are next looked for.
    next_sweep: Option<Instant>,
}

impl Idle {
    fn get_mut(&mut self, key: &PoolKey) -> Option<&mut Vec<Conn>> {
        match &key.origin {
            None => self.plain.get_mut(&key.address),
            Some(origin) => self.by_origin.get_mut(&(key.address, **origin)),
        }
    }

    fn entry(&mut self, key: PoolKey) -> &mut Vec<Conn> {
        match key.origin {
            None => self.plain.entry(key.address).or_default(),
            Some(origin) => self.by_origin.entry((key.address, *origin)).or_default(),
        }
    }
}

/// The instant connections' idle times are counted from.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` as nanoseconds after [`epoch`].
fn since_epoch(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_nanos() as u64
}

/// Now, as nanoseconds after [`epoch`].
fn nanos_since_epoch() -> u64 {
    since_epoch(Instant::now())
}

/// How often idle connections are looked over for ones past the idle timeout.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Idle connections of one worker, by endpoint, and how many it has open (idle or busy).
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Idle>,
    open:
        Mutex<HashMap<SocketAddr, Arc<std::sync::atomic::AtomicU32>, foldhash::fast::RandomState>>,
    options: ConnectionOptions,
}

impl Pool {
    /// An empty pool whose connections follow `options`.
    pub(crate) fn new(options: ConnectionOptions) -> Self {
        Pool {
            options,
            ..Pool::default()
        }
    }

    /// The TCP keepalive its connections' sockets get.
    pub(crate) fn keepalive(&self) -> Option<Keepalive> {
        self.options.keepalive
    }

    /// The count of this worker's open connections to `address`.
    fn open_count(&self, address: SocketAddr) -> Arc<std::sync::atomic::AtomicU32> {
        match self.open.lock() {
            Ok(mut open) => open.entry(address).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    fn take(&self, key: &PoolKey) -> Option<Conn> {
        let mut idle = self.idle.lock().ok()?;
        let conns = idle.get_mut(key)?;
        while let Some(conn) = conns.pop() {
            if self.options.idle_timeout.is_none_or(|t| {
                nanos_since_epoch().saturating_sub(conn.idle_since) < t.as_nanos() as u64
            }) {
                return Some(conn);
            }
        }
        None
    }

    /// Closes the idle connections past the idle timeout (the oldest of each endpoint come
    /// first), now and then: rather than waiting below the busy ones for a request that would
    /// find them expired.
    #[cold]
    #[inline(never)]
    fn sweep(&self, idle: &mut Idle, now: Instant) {
        if let Some(timeout) = self.options.idle_timeout {
            let (now, timeout) = (since_epoch(now), timeout.as_nanos() as u64);
            let expired = |c: &Conn| now.saturating_sub(c.idle_since) >= timeout;
            for conns in idle.plain.values_mut().chain(idle.by_origin.values_mut()) {
                let n = conns.iter().take_while(|c| expired(c)).count();
                conns.drain(..n);
            }
            idle.by_origin.retain(|_, conns| !conns.is_empty());
        }
        idle.next_sweep = Some(now + SWEEP_EVERY);
    }

    /// Keeps `conn` for the next request to its endpoint (from its origin), unless it has
    /// served its `max_requests`; then it closes.
    fn put(&self, key: PoolKey, mut conn: Conn) {
        if self
            .options
            .max_requests
            .is_some_and(|max| conn.served >= max)
        {
            return;
        }
        let now = Instant::now();
        conn.idle_since = since_epoch(now);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.next_sweep.is_none_or(|at| now >= at) {
                self.sweep(&mut idle, now);
            }
            let conns = idle.entry(key);
            if conns.len() < MAX_IDLE {
                conns.push(conn);
                // A request waiting at the connection limit can take it (announced after
                // the push, so a request that looked before it is woken to look again).
                if let Some(pooled) = conns.last() {
                    pooled._slot.0.announce();
                }
            }
        }
    }
}

/// Options for one exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange<'a> {
    pub(crate) address: SocketAddr,
    pub(crate) connect_timeout: Duration,
    pub(crate) tls: Option<&'a crate::tls::UpstreamTls>,
    pub(crate) limit: &'a ConnectionLimit,
    /// Write header names in proper case (`Content-Type`: the cluster's HTTP/1
    /// `header_key_format.proper_case_words`).
    pub(crate) proper_case: bool,
    /// The PROXY protocol header new connections start with, if the cluster sends one.
    pub(crate) proxy_protocol: Option<crate::proxy_protocol::Version>,
    /// The downstream connection the request came on, for that header (`None`: the proxy's
    /// own request). Connections are pooled by it when the cluster sends the header.
    pub(crate) origin: Option<&'a crate::proxy_protocol::Origin>,
}

/// Where a pooled connection goes, and for whom: its endpoint, and the downstream origin its
/// PROXY protocol header named (`None` for clusters that send none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolKey {
    address: SocketAddr,
    origin: Option<Box<crate::proxy_protocol::Origin>>,
}

impl Exchange<'_> {
    /// The pool key of this exchange's connections.
    fn key(&self) -> PoolKey {
        PoolKey {
            address: self.address,
            origin: self
                .origin
                .filter(|_| self.proxy_protocol.is_some())
                .map(|o| Box::new(*o)),
        }
    }
}

/// Writes a header name as Envoy's proper-case formatter does: the first letter, and each
/// letter after a character that is neither a letter nor a digit, in upper case.
pub(crate) fn write_proper_case(out: &mut impl bytes::BufMut, name: &str) {
    let mut capitalize = true;
    for &b in name.as_bytes() {
        let c = if capitalize && b.is_ascii_alphabetic() {
            b.to_ascii_uppercase()
        } else {
            b
        };
        out.put_u8(c);
        capitalize = !b.is_ascii_alphanumeric();
    }
}

fn write_head(
    out: &mut BytesMut,
    req: &http::request::Parts,
    body_len: Option<u64>,
    proper_case: bool,
) {
    use std::fmt::Write;
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(
        req.uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .as_bytes(),
    );
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &req.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        if proper_case {
            write_proper_case(out, name.as_str());
        } else {
            out.extend_from_slice(name.as_str().as_bytes());
        }
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match (body_len, proper_case) {
        (Some(0), _) if !method_expects_body(&req.method) => {}
        (Some(n), false) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        (Some(n), true) => {
            let _ = write!(out, "Content-Length: {n}\r\n");
        }
        (None, false) => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        (None, true) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether a request without a body still says `content-length: 0`: Envoy's HTTP/1 codec
/// leaves it out only for the methods that take no body (GET, HEAD, DELETE, TRACE, CONNECT);
/// every other one, custom methods included, gets it (`differential.rs` compares them).
fn method_expects_body(method: &http::Method) -> bool {
    !matches!(
        *method,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::DELETE
            | http::Method::TRACE
            | http::Method::CONNECT
    )
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    /// This many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes.
    Close,
}

struct Head {
    response: Response<()>,
    framing: Framing,
    keep_alive: bool,
}

/// The parser's slots for header fields kept on the stack: room for Envoy's default limit of
/// 100 fields and the one past it that shows a head is over the limit.
const INLINE_HEADERS: usize = 128;

/// Why a head (or trailers) with more than `max_headers_count` fields is refused, in Envoy's
/// words.
pub(crate) const TOO_MANY_HEADERS: &str = "headers count exceeds limit";

fn parse_head(
    buf: &mut BytesMut,
    head_request: bool,
    spare: &mut HeaderMap,
    max_headers: usize,
) -> Result<Option<Head>, SendError> {
    // Runs once per proxied response, so it allocates nothing for a usual head: the parser's
    // slots (32 bytes each) start uninitialised, the fields' places are kept as 16-byte
    // offsets on the stack until the head's bytes are frozen, and the fields go into the
    // caller's spare map.
    let mut inline_slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; INLINE_HEADERS];
    let mut heap_slots = Vec::new();
    // One slot past the limit, so a head at the limit is told from one over it; a head of at
    // most `MAX_HEAD` bytes cannot hold more fields than this (`a:\r\n` is four bytes).
    let room = max_headers.min(MAX_HEAD / 4) + 1;
    let slots = if room <= INLINE_HEADERS {
        &mut inline_slots[..room]
    } else {
        heap_slots.resize_with(room, std::mem::MaybeUninit::uninit);
        &mut heap_slots[..]
    };
    let mut parsed = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buf,
        slots,
    ) {
        // However it arrived, a head is at most `MAX_HEAD` (so its offsets fit in `u32`).
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(None),
        Ok(_) => return Err(SendError::Protocol("response head too large".into())),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(SendError::Protocol(TOO_MANY_HEADERS.into()))
        }
        Err(e) => return Err(SendError::Protocol(e.to_string())),
    };
    if parsed.headers.len() > max_headers {
        return Err(SendError::Protocol(TOO_MANY_HEADERS.into()));
    }
    let code = parsed.code.unwrap_or(0);
    let status = StatusCode::from_u16(code)
        .map_err(|_| SendError::Protocol(format!("invalid status {code}")))?;
    let http10 = parsed.version == Some(0);
    let mut framing = None;
    let mut keep_alive = !http10;
    // Whether the answer has a transfer coding, and if so whether chunked is its last.
    let mut coded: Option<bool> = None;
    // Each field's name and value as offsets into the head, so values can share its bytes
    // instead of being copied. Anything outside the head (an empty value httparse did not
    // point into the buffer) is read as empty rather than trusted.
    let base = buf.as_ptr() as usize;
    let offset = |field: &[u8]| -> Result<(u32, u32), SendError> {
        let span = match (field.as_ptr() as usize)
            .checked_sub(base)
            .filter(|s| s + field.len() <= len)
        {
            Some(start) => (start, start + field.len()),
            None if field.is_empty() => (0, 0),
            None => return Err(SendError::Protocol("header field outside the head".into())),
        };
        match (u32::try_from(span.0), u32::try_from(span.1)) {
            (Ok(start), Ok(end)) => Ok((start, end)),
            _ => Err(SendError::Protocol("response head too large".into())),
        }
    };
    let count = parsed.headers.len();
    let mut inline = crate::head::inline_room::<(u32, u32, u32, u32)>();
    let mut heap = Vec::new();
    let spans = crate::head::field_room(&mut inline, &mut heap, count);
    for (span, h) in spans.iter_mut().zip(parsed.headers.iter()) {
        let (name_start, name_end) = offset(h.name.as_bytes())?;
        let (value_start, value_end) = offset(h.value)?;
        *span = (name_start, name_end, value_start, value_end);
    }
    let head = buf.split_to(len).freeze();
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    // The map the request's fields went out in, cleared, when the caller has it: no
    // allocation per response (as the server loop reuses each answer's map for the next request).
    let mut map = std::mem::take(spare);
    map.clear();
    map.reserve(count);
    for &(name_start, name_end, value_start, value_end) in spans.iter() {
        let raw_name = &head[name_start as usize..name_end as usize];
        let name = crate::head::field_name(raw_name).map_err(|_| {
            SendError::Protocol(format!(
                "invalid header name {:?}",
                String::from_utf8_lossy(raw_name)
            ))
        })?;
        let raw = head.slice(value_start as usize..value_end as usize);
        // Hop-by-hop fields describe this connection, and the proxy strips them from every
        // answer it passes on (except a 101's): those whose removal needs nothing more are
        // left out here, once their framing has been read. `TE` and a `Connection` naming
        // other fields are kept for the proxy's stripping to handle.
        let mut left_out =
            !switching && name != header::TE && crate::proxy::hop_by_hop_index(&name).is_some();
        if name == header::CONTENT_LENGTH {
            let n = crate::head::content_length(&raw)
                .ok_or_else(|| SendError::Protocol("invalid content-length".into()))?;
            if framing.is_some_and(|f| f != Framing::Length(n)) {
                return Err(SendError::Protocol("conflicting content-length".into()));
            }
            framing = Some(Framing::Length(n));
        } else if name == header::TRANSFER_ENCODING {
            // An HTTP/1.0 message with a transfer coding has faulty framing (RFC 9112 6.1),
            // as hyper's client also refuses it.
            if http10 {
                return Err(SendError::Protocol(
                    "transfer-encoding in an HTTP/1.0 answer".into(),
                ));
            }
            coded = Some(crate::head::ends_chunked(&raw));
        } else if name == header::CONNECTION {
            // Tokens, not substrings: `x-closed` does not close, nor does `x-keep-alive`
            // keep an HTTP/1.0 connection.
            let options = crate::head::connection_options(&raw);
            if options.close {
                keep_alive = false;
            } else if options.keep_alive {
                keep_alive = true;
            }
            if options.names_other_field {
                left_out = false;
            }
        }
        if left_out {
            continue;
        }
        let value = HeaderValue::from_maybe_shared(raw)
            .map_err(|_| SendError::Protocol("invalid header value".into()))?;
        map.append(name, value);
    }
    let framing = if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if let Some(chunked) = coded {
        // A transfer coding wins over Content-Length (RFC 9112 6.3): with chunked last, the
        // chunks frame the body; with any other last, the connection's end does.
        map.remove(header::CONTENT_LENGTH);
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else {
        framing.unwrap_or(Framing::Close)
    };
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = if http10 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    *response.headers_mut() = map;
    Ok(Some(Head {
        response,
        framing,
        keep_alive: keep_alive && framing != Framing::Close,
    }))
}

/// A connection for a request that found none idle: a new one while the cluster is under
/// `max_connections`; at the limit, the request waits (one of at most
/// `max_pending_requests`, else `Overflow`) for a connection to close or come back to this
/// worker's pool, as Envoy's pending requests do. The route timeout bounds the wait.
///
/// As in Envoy, a worker with no connection at all to the endpoint opens one even at the
/// limit (for a request that got a place among the pending ones): the connections at the
/// limit may all sit in other workers' pools, and this worker's waiting requests would
/// otherwise never be served. So with N workers an endpoint can have up to N - 1 connections
/// over `max_connections`, as with Envoy's N workers.
async fn acquire(pool: &Pool, exchange: &Exchange<'_>) -> Result<(Conn, bool), SendError> {
    let limit = exchange.limit;
    let owned = pool.open_count(exchange.address);
    let mut pending = None;
    loop {
        if let Some(slot) = limit.take() {
            return Ok((
                connect_with(slot, Owned::new(&owned), exchange, pool.options.keepalive).await?,
                false,
            ));
        }
        if pending.is_none() {
            pending = Some(limit.pend().ok_or(SendError::Overflow)?);
        }
        if owned.load(std::sync::atomic::Ordering::Acquire) == 0 {
            let slot = limit.take_over_limit();
            return Ok((
                connect_with(slot, Owned::new(&owned), exchange, pool.options.keepalive).await?,
                false,
            ));
        }
        let available = limit.state.available.notified();
        tokio::pin!(available);
        available.as_mut().enable();
        // Looked at again once registered, so nothing released meanwhile is missed.
        if let Some(conn) = pool.take(&exchange.key()) {
            return Ok((conn, true));
        }
        if limit.state.open.load(std::sync::atomic::Ordering::Acquire) < limit.max {
            continue;
        }
        available.await;
    }
}

async fn connect(pool: &Pool, exchange: &Exchange<'_>) -> Result<Conn, SendError> {
    let slot = exchange.limit.take().ok_or(SendError::Overflow)?;
    connect_with(
        slot,
        Owned::new(&pool.open_count(exchange.address)),
        exchange,
        pool.options.keepalive,
    )
    .await
}

/// Connects under `slot`, counted in its worker's pool by `owned` from the start (a connection
/// still connecting counts, as in Envoy).
async fn connect_with(
    slot: ConnectionSlot,
    owned: Owned,
    exchange: &Exchange<'_>,
    keepalive: Option<Keepalive>,
) -> Result<Conn, SendError> {
    let stream = dial(exchange, keepalive).await?;
    Ok(Conn {
        stream,
        _slot: slot,
        _owned: owned,
        buf: BytesMut::with_capacity(READ_ROOM),
        out: BytesMut::new(),
        idle_since: nanos_since_epoch(),
        served: 0,
    })
}

/// A connection of its own to the exchange's endpoint, under the cluster's connection limit
/// (none left: [`SendError::Overflow`]), for a TCP proxy to tunnel a client connection
/// through: TCP, the PROXY protocol header when the cluster sends one, then TLS when it
/// originates it. The slot is held as long as the connection is.
pub(crate) async fn open_tunnel(
    exchange: &Exchange<'_>,
    keepalive: Option<Keepalive>,
) -> Result<(Stream, impl Send + Sync), SendError> {
    let slot = exchange.limit.take().ok_or(SendError::Overflow)?;
    let stream = dial(exchange, keepalive).await?;
    Ok((stream, slot))
}

/// Opens a connection to the exchange's endpoint within its connect timeout.
async fn dial(exchange: &Exchange<'_>, keepalive: Option<Keepalive>) -> Result<Stream, SendError> {
    let timeout = || SendError::Connect(io::Error::new(io::ErrorKind::TimedOut, "connect timeout"));
    let connecting = async {
        let tcp = TcpStream::connect(exchange.address)
            .await
            .map_err(SendError::Connect)?;
        let _ = tcp.set_nodelay(true);
        if let Some(keepalive) = &keepalive {
            keepalive.apply(&tcp).map_err(SendError::Connect)?;
        }
        let mut tcp = tcp;
        if let Some(version) = exchange.proxy_protocol {
            tcp.write_all(&crate::proxy_protocol::header(
                version,
                exchange.origin.copied(),
            ))
            .await
            .map_err(SendError::Connect)?;
        }
        let stream = match exchange.tls {
            None => Stream::Plain(tcp),
            Some(tls) => {
                let name = tls.sni.clone().unwrap_or_else(|| {
                    rustls::pki_types::ServerName::IpAddress(exchange.address.ip().into())
                });
                let tls_stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(SendError::Connect)?;
                Stream::Tls(Box::new(tls_stream))
            }
        };
        Ok::<_, SendError>(stream)
    };
    tokio::time::timeout(exchange.connect_timeout, connecting)
        .await
        .map_err(|_| timeout())?
}

/// Whether an idle connection is still open and quiet (no bytes, no EOF pending).
fn still_open(conn: &Conn) -> bool {
    let mut probe = [0u8; 1];
    match &conn.stream {
        Stream::Plain(s) => {
            matches!(s.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        }
        // Probing would eat TLS records: trust the pool's idle timeout.
        Stream::Tls(_) => true,
    }
}

/// Sends `req` (whose URI carries the path; the Host header is as given) to the exchange's
/// endpoint and returns the response. A pooled connection that turns out to be closed is
/// replaced by a fresh one when the request can be sent again.
pub(crate) async fn send(
    pool: &Arc<Pool>,
    exchange: Exchange<'_>,
    req: Request<Body>,
) -> Result<Response<Body>, SendError> {
    let head_request = req.method() == http::Method::HEAD;
    let replayable = req.body().as_bytes().is_some() || req.body().is_end_stream();
    let (mut parts, body) = req.into_parts();
    let full = if body.is_end_stream() {
        Some(Bytes::new())
    } else {
        body.as_bytes().map(Bytes::copy_from_slice)
    };
    let mut body = Some(body);
    let key = exchange.key();
    let mut pooled = pool.take(&key);
    if let Some(conn) = &pooled {
        if !replayable && !still_open(conn) {
            pooled = None;
        }
    }
    let (mut conn, mut reused) = match pooled {
        Some(c) => (c, true),
        // Boxed, as is the reconnect below: opening a connection (TCP, maybe TLS) is rare on
        // a pooled path, and its future, inline, made every request's larger.
        None => Box::pin(acquire(pool, &exchange)).await?,
    };
    loop {
        // Each future is pinned where it is made (here and in the callers): awaited by value,
        // a future is kept twice in its caller's, and the sizes doubled at every level up to
        // the connection's task.
        let exchanged = std::pin::pin!(exchange_on(
            &mut conn,
            &mut parts,
            full.as_ref(),
            &mut body,
            head_request,
            exchange.proper_case,
            pool.options.max_headers,
        ))
        .await;
        match exchanged {
            Ok(head) => {
                conn.served += 1;
                return Ok(finish(pool.clone(), key, conn, head));
            }
            // A kept-alive connection the upstream had closed: try once more on a new one.
            Err(ExchangeError::Stale(_)) if reused && full.is_some() => {
                conn = Box::pin(connect(pool, &exchange)).await?;
                reused = false;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends a protocol upgrade (a websocket) on a connection of its own, through hyper's
/// HTTP/1 connection, which hands the upgraded stream over: for clusters whose connections
/// start with a PROXY protocol header, which hyper's pool cannot write. The connection
/// counts under the cluster's limit until it closes.
pub(crate) async fn send_upgrade(
    pool: &Arc<Pool>,
    exchange: Exchange<'_>,
    mut req: Request<Body>,
) -> Result<Response<Body>, SendError> {
    let reset = |e: hyper::Error| SendError::Reset(io::Error::other(e));
    let Conn {
        stream,
        _slot,
        _owned,
        ..
    } = connect(pool, &exchange).await?;
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Body>(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(reset)?;
    tokio::spawn(async move {
        let _counted = (_slot, _owned);
        let _ = connection.with_upgrades().await;
    });
    // On its own connection a request names its path only.
    if let Some(path) = req.uri().path_and_query().cloned() {
        *req.uri_mut() = http::Uri::from(path);
    }
    let response = sender.send_request(req).await.map_err(reset)?;
    Ok(response.map(Body::from))
}

enum ExchangeError {
    /// Nothing was read: the connection was closed or reset under us.
    Stale(io::Error),
    Other(SendError),
}

impl From<ExchangeError> for SendError {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::Stale(e) => SendError::Reset(e),
            ExchangeError::Other(e) => e,
        }
    }
}

async fn exchange_on(
    conn: &mut Conn,
    req: &mut http::request::Parts,
    full: Option<&Bytes>,
    body: &mut Option<Body>,
    head_request: bool,
    proper_case: bool,
    max_headers: usize,
) -> Result<Head, ExchangeError> {
    let out = &mut conn.out;
    out.clear();
    out.reserve(512 + full.map_or(0, |b| b.len()));
    match full {
        Some(bytes) => {
            // Head and body in one write.
            write_head(out, req, Some(bytes.len() as u64), proper_case);
            out.extend_from_slice(bytes);
            conn.stream
                .write_all(out)
                .await
                .map_err(ExchangeError::Stale)?;
        }
        None => {
            let declared = req
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| crate::head::content_length(v.as_bytes()));
            write_head(out, req, declared, proper_case);
            conn.stream
                .write_all(out)
                .await
                .map_err(ExchangeError::Stale)?;
            if let Some(mut b) = body.take() {
                stream_body(&mut conn.stream, &mut b, declared)
                    .await
                    .map_err(|e| ExchangeError::Other(SendError::Reset(e)))?;
            }
        }
    }
    if conn.out.capacity() > crate::head::OUT_KEPT {
        // A large head or body (a 40 KiB field, a 48 KB body) does not stay with the connection.
        conn.out = BytesMut::new();
    }
    conn.buf.clear();
    loop {
        if !conn.buf.is_empty() {
            // Something was read, so the request will not be sent again: its map is free.
            match parse_head(&mut conn.buf, head_request, &mut req.headers, max_headers) {
                // Interim answers (100 Continue, 103 Early Hints) are not the response.
                Ok(Some(head))
                    if head.response.status().is_informational()
                        && head.response.status() != StatusCode::SWITCHING_PROTOCOLS =>
                {
                    continue
                }
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(ExchangeError::Other(e)),
            }
        }
        let before = conn.buf.len();
        conn.buf.reserve(4096);
        match conn.stream.read_buf(&mut conn.buf).await {
            Ok(0) if before == 0 => {
                return Err(ExchangeError::Stale(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the response",
                )))
            }
            Ok(0) => {
                return Err(ExchangeError::Other(SendError::Reset(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the response head",
                ))))
            }
            Ok(_) => {}
            Err(e) if before == 0 => return Err(ExchangeError::Stale(e)),
            Err(e) => return Err(ExchangeError::Other(SendError::Reset(e))),
        }
    }
}

/// Streams a request body after its head: in chunks, or as the `declared` length's bytes.
/// A body longer or shorter than its declared length (a filter that replaced a streamed body
/// and kept its `content-length`) fails before its extra bytes go, so the upstream cannot take
/// them for a next request; the connection is then closed, not reused.
async fn stream_body(
    stream: &mut Stream,
    body: &mut Body,
    declared: Option<u64>,
) -> io::Result<()> {
    use http_body_util::BodyExt;
    let mut left = declared;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(io::Error::other)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        match left.as_mut() {
            None => {
                stream
                    .write_all(format!("{:x}\r\n", data.len()).as_bytes())
                    .await?;
                stream.write_all(&data).await?;
                stream.write_all(b"\r\n").await?;
            }
            Some(left) => {
                *left = left.checked_sub(data.len() as u64).ok_or_else(|| {
                    io::Error::other("the request body is longer than its content-length")
                })?;
                stream.write_all(&data).await?;
            }
        }
    }
    match left {
        None => stream.write_all(b"0\r\n\r\n").await,
        Some(0) => Ok(()),
        Some(_) => Err(io::Error::other(
            "the request body is shorter than its content-length",
        )),
    }
}

/// Turns a parsed head into the response, with the body in memory when it is all there.
fn finish(pool: Arc<Pool>, key: PoolKey, mut conn: Conn, head: Head) -> Response<Body> {
    let Head {
        response,
        framing,
        keep_alive,
    } = head;
    let (parts, ()) = response.into_parts();
    match framing {
        Framing::Empty => {
            if keep_alive && conn.buf.is_empty() {
                pool.put(key, conn);
            }
            Response::from_parts(parts, Body::empty())
        }
        Framing::Length(n) if conn.buf.len() as u64 >= n => {
            let body = conn.buf.split_to(n as usize).freeze();
            if keep_alive && conn.buf.is_empty() {
                pool.put(key, conn);
            }
            Response::from_parts(parts, Body::full(body))
        }
        _ => {
            let state = match framing {
                Framing::Length(n) => State::Length(n),
                Framing::Chunked => State::ChunkSize,
                _ => State::UntilClose,
            };
            let body = UpstreamBody {
                conn: Some(conn),
                state,
                keep_alive,
                pool,
                key,
                large_reads: false,
                trailers: None,
            };
            Response::from_parts(parts, Body::new(body))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    UntilClose,
    Done,
}

/// A response body streamed from its connection, which goes back to the pool at the end.
struct UpstreamBody {
    conn: Option<Conn>,
    state: State,
    keep_alive: bool,
    pool: Arc<Pool>,
    key: PoolKey,
    /// Whether a read asked for more than [`READ_ROOM`], so the connection's buffer may hold
    /// a large allocation that it should not keep once the body is done.
    large_reads: bool,
    /// The trailers read so far, when the cluster passes them on (boxed: most bodies have
    /// none, and every body is moved into its box when made).
    trailers: Option<Box<HeaderMap>>,
}

impl UpstreamBody {
    /// The body has been read to its end: the connection goes back to the pool if it can
    /// take another request.
    fn release(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            if self.keep_alive && conn.buf.is_empty() {
                if self.large_reads {
                    // Not kept idle: the room a large body was read into.
                    conn.buf = BytesMut::with_capacity(READ_ROOM);
                }
                self.pool.put(self.key.clone(), conn);
            }
        }
    }

    /// Adds one trailer field line (`name: value`) to those read, if the cluster passes
    /// trailers on; fails on a line that is not a field, or past the fields' limit.
    fn add_trailer(&mut self, line: &[u8]) -> Result<(), BoxError> {
        if !self.pool.options.trailers {
            return Ok(());
        }
        let (name, value) = line
            .iter()
            .position(|b| *b == b':')
            .map(|colon| (&line[..colon], &line[colon + 1..]))
            .ok_or("invalid trailer field")?;
        let name = crate::head::field_name(name).map_err(|_| "invalid trailer name")?;
        let value =
            HeaderValue::from_bytes(value.trim_ascii()).map_err(|_| "invalid trailer value")?;
        let trailers = self.trailers.get_or_insert_with(Default::default);
        trailers.append(name, value);
        if trailers.len() > self.pool.options.max_headers {
            return Err(TOO_MANY_HEADERS.into());
        }
        Ok(())
    }
}

/// The room a body read asks for when it does not know how much is coming (chunk sizes, the
/// rest of a chunked body, a body framed by the connection's end); also the buffer a
/// connection starts with.
const READ_ROOM: usize = 8 * 1024;

/// The most room one body read asks for: a body of known length reads up to this much at
/// once, so a 64 KiB answer takes one or two reads instead of eight or more (each a system
/// call, a wake-up and a frame).
const LARGE_READ_ROOM: usize = 64 * 1024;

/// The room to read into when `left` more bytes of the body (or of its chunk) are coming.
fn read_room(left: u64) -> usize {
    usize::try_from(left).map_or(LARGE_READ_ROOM, |n| n.clamp(READ_ROOM, LARGE_READ_ROOM))
}

/// Reads more of the body into the connection's buffer, with `room` to read into.
fn poll_fill(conn: &mut Conn, cx: &mut Context<'_>, room: usize) -> Poll<io::Result<usize>> {
    conn.buf.reserve(room);
    tokio_util::io::poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.buf)
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.state {
                State::Done => {
                    this.release();
                    return Poll::Ready(None);
                }
                State::Length(0) => this.state = State::Done,
                State::Length(n) | State::ChunkData(n) => {
                    if conn.buf.is_empty() {
                        let room = read_room(n);
                        this.large_reads |= room > READ_ROOM;
                        let read = ready!(poll_fill(conn, cx, room))?;
                        if read == 0 {
                            this.conn = None;
                            return Poll::Ready(Some(
                                Err("upstream closed inside the body".into()),
                            ));
                        }
                    }
                    let take = (conn.buf.len() as u64).min(n) as usize;
                    let data = conn.buf.split_to(take).freeze();
                    let left = n - take as u64;
                    this.state = match this.state {
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkDataEnd,
                        _ => State::ChunkData(left),
                    };
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::ChunkSize | State::ChunkDataEnd | State::Trailers => {
                    let Some(end) = find_crlf(&conn.buf) else {
                        if conn.buf.len() > MAX_HEAD {
                            this.conn = None;
                            return Poll::Ready(Some(Err("chunk header too long".into())));
                        }
                        let read = ready!(poll_fill(conn, cx, READ_ROOM))?;
                        if read == 0 {
                            this.conn = None;
                            return Poll::Ready(Some(
                                Err("upstream closed inside the body".into()),
                            ));
                        }
                        continue;
                    };
                    let line = conn.buf.split_to(end + 2);
                    let line = &line[..end];
                    this.state = match this.state {
                        State::ChunkDataEnd if line.is_empty() => State::ChunkSize,
                        State::ChunkDataEnd => {
                            this.conn = None;
                            return Poll::Ready(Some(Err("missing CRLF after a chunk".into())));
                        }
                        State::Trailers if line.is_empty() => match this.trailers.take() {
                            // Given back before the trailers are: the last frame may be the
                            // last the body is polled for.
                            Some(trailers) => {
                                this.release();
                                return Poll::Ready(Some(Ok(Frame::trailers(*trailers))));
                            }
                            None => State::Done,
                        },
                        State::Trailers => {
                            if let Err(e) = this.add_trailer(line) {
                                this.conn = None;
                                return Poll::Ready(Some(Err(e)));
                            }
                            State::Trailers
                        }
                        _ => {
                            let size = line.split(|b| *b == b';').next().unwrap_or(&[]);
                            let size = std::str::from_utf8(size)
                                .ok()
                                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
                            match size {
                                Some(0) => State::Trailers,
                                Some(n) => State::ChunkData(n),
                                None => {
                                    this.conn = None;
                                    return Poll::Ready(Some(Err("invalid chunk size".into())));
                                }
                            }
                        }
                    };
                }
                State::UntilClose => {
                    if conn.buf.is_empty() {
                        let read = ready!(poll_fill(conn, cx, READ_ROOM))?;
                        if read == 0 {
                            this.conn = None;
                            return Poll::Ready(None);
                        }
                    }
                    let data = conn.buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || self.state == State::Length(0) || self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    /// Envoy's proper-case formatter: a letter after anything but a letter or a digit is a
    /// capital, and so are the framing fields the head writes itself.
    #[test]
    fn proper_case_heads_capitalise_as_envoy_does() {
        let mut out = BytesMut::new();
        let (mut parts, ()) = Request::post("/p")
            .header("x-forwarded-for", "1.2.3.4")
            .header("x_under.score9a", "1")
            .header("content-type", "text/plain")
            .body(())
            .unwrap()
            .into_parts();
        parts.headers.remove(header::HOST);
        write_head(&mut out, &parts, Some(3), true);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "POST /p HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\nX_Under.Score9a: 1\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n"
        );
        out.clear();
        write_head(&mut out, &parts, None, false);
        assert!(String::from_utf8_lossy(&out).contains("x-forwarded-for: 1.2.3.4\r\n"));
        assert!(String::from_utf8_lossy(&out).ends_with("transfer-encoding: chunked\r\n\r\n"));
    }

    /// The answer's fields go into the map the request's fields went out in: none of the
    /// request's may stay in it.
    #[test]
    fn a_response_head_reuses_the_request_map_and_keeps_none_of_its_fields() {
        let mut request = HeaderMap::with_capacity(32);
        request.insert(header::HOST, HeaderValue::from_static("upstream.example"));
        request.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer secret"),
        );
        request.append("x-request-id", HeaderValue::from_static("id"));
        request.append(header::SERVER, HeaderValue::from_static("from the request"));
        let capacity = request.capacity();
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n"[..]);
        let head = parse_head(&mut buf, false, &mut request, 100)
            .expect("valid head")
            .expect("complete head");
        let headers = head.response.headers();
        let fields: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect();
        assert_eq!(
            fields,
            [("server", &b"nginx"[..]), ("content-length", b"0")],
            "only the answer's fields"
        );
        assert_eq!(
            headers.capacity(),
            capacity,
            "the request's map, not a new one"
        );
        assert!(request.is_empty(), "the map was taken from the request");
    }

    #[test]
    fn a_transfer_coding_frames_the_answer_over_its_length() {
        // With chunked last the chunks frame the body; with another coding last, the
        // connection's end does. Either way a `Content-Length` beside it is dropped, so the
        // bytes after it are not taken for the next answer on a kept connection.
        for (coding, framing) in [
            ("chunked", Framing::Chunked),
            ("gzip, chunked", Framing::Chunked),
            ("gzip", Framing::Close),
            ("chunked, gzip", Framing::Close),
        ] {
            let raw = format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: {coding}\r\nContent-Length: 0\r\n\r\nrest"
            );
            let head = parse_head(
                &mut BytesMut::from(raw.as_bytes()),
                false,
                &mut HeaderMap::new(),
                100,
            )
            .expect("valid")
            .expect("complete");
            assert_eq!(head.framing, framing, "{coding}");
            assert_eq!(head.keep_alive, framing == Framing::Chunked, "{coding}");
            assert!(
                !head.response.headers().contains_key(header::CONTENT_LENGTH),
                "{coding}"
            );
        }
        // An HTTP/1.0 answer with a transfer coding has faulty framing (RFC 9112 6.1).
        let mut old = BytesMut::from(
            &b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
        );
        assert!(parse_head(&mut old, false, &mut HeaderMap::new(), 100).is_err());
    }

    #[test]
    fn response_heads_parse_into_shared_fields_and_leave_the_body() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\nConnection: Keep-Alive\r\nX-Empty:\r\n\r\nhello"[..],
        );
        let head = parse_head(&mut buf, false, &mut HeaderMap::new(), 100)
            .expect("valid head")
            .expect("complete head");
        assert_eq!(head.response.status(), StatusCode::OK);
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive);
        let headers = head.response.headers();
        assert_eq!(headers["server"], "nginx");
        assert_eq!(headers["x-empty"], "");
        // `Connection` is hop-by-hop and names nothing else: left out once read.
        assert_eq!(headers.len(), 3, "{headers:?}");
        assert_eq!(&buf[..], b"hello", "the body stays in the buffer");

        // `Connection: close` in any case ends the connection after the response.
        let mut close =
            BytesMut::from(&b"HTTP/1.1 204 No Content\r\nConnection: CLOSE\r\n\r\n"[..]);
        let head = parse_head(&mut close, false, &mut HeaderMap::new(), 100)
            .expect("valid")
            .expect("complete");
        assert!(!head.keep_alive);
        assert_eq!(head.framing, Framing::Empty);
        // The connection options are tokens: one that only contains `close` or `keep-alive`
        // is neither.
        for (raw, kept) in [
            (
                &b"HTTP/1.1 204 No Content\r\nConnection: x-closed\r\n\r\n"[..],
                true,
            ),
            (
                b"HTTP/1.1 204 No Content\r\nConnection: keep-alive , Close\r\n\r\n",
                false,
            ),
            (
                b"HTTP/1.0 204 No Content\r\nConnection: x-keep-alive\r\n\r\n",
                false,
            ),
            (
                b"HTTP/1.0 204 No Content\r\nConnection: Keep-Alive\r\n\r\n",
                true,
            ),
        ] {
            let head = parse_head(&mut BytesMut::from(raw), false, &mut HeaderMap::new(), 100)
                .expect("valid")
                .expect("complete");
            assert_eq!(head.keep_alive, kept, "{:?}", String::from_utf8_lossy(raw));
        }

        // Hop-by-hop fields are left out, except `TE` and a `Connection` that names another
        // field: the proxy's stripping removes those (and the named field) or keeps
        // `TE: trailers`. A 101 keeps them all: its `Upgrade` and `Connection` go on.
        let mut hops = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Upgrade\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nTransfer-Encoding: chunked\r\nTrailer: x-t\r\nProxy-Connection: x\r\nTE: trailers\r\nX-Kept: 1\r\n\r\n"[..],
        );
        let head = parse_head(&mut hops, false, &mut HeaderMap::new(), 100)
            .expect("valid")
            .expect("complete");
        assert_eq!(head.framing, Framing::Chunked);
        let names: Vec<&str> = head.response.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["te", "x-kept"]);
        let mut named = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nContent-Length: 0\r\n\r\n"[..],
        );
        let head = parse_head(&mut named, false, &mut HeaderMap::new(), 100)
            .expect("valid")
            .expect("complete");
        assert!(!head.keep_alive);
        let names: Vec<&str> = head.response.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["connection", "x-hop", "content-length"]);
        let mut switching = BytesMut::from(
            &b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"[..],
        );
        let head = parse_head(&mut switching, false, &mut HeaderMap::new(), 100)
            .expect("valid")
            .expect("complete");
        let names: Vec<&str> = head.response.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["connection", "upgrade"]);

        // More fields than are kept on the stack.
        let many: String = (0..40).map(|i| format!("x-f{i}: {i}\r\n")).collect();
        let mut long = BytesMut::from(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes());
        let head = parse_head(&mut long, false, &mut HeaderMap::new(), 100)
            .expect("valid")
            .expect("complete");
        assert_eq!(head.response.headers().len(), 40);
        assert_eq!(head.response.headers()["x-f39"], "39");

        // Incomplete: nothing consumed, read more.
        let start = b"HTTP/1.1 200 OK\r\nServer: ng";
        let mut partial = BytesMut::from(&start[..]);
        assert!(parse_head(&mut partial, false, &mut HeaderMap::new(), 100)
            .expect("valid so far")
            .is_none());
        assert_eq!(&partial[..], start);

        // Two lengths that disagree, or more fields than the parser holds, are errors.
        let mut conflicting = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
        );
        assert!(parse_head(&mut conflicting, false, &mut HeaderMap::new(), 100).is_err());
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=INLINE_HEADERS {
            many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(parse_head(
            &mut BytesMut::from(&many[..]),
            false,
            &mut HeaderMap::new(),
            100
        )
        .is_err());
        // `max_headers_count`: a head at the limit is read, one field more is refused, below
        // and above the fields kept on the stack.
        for limit in [3, 100, 300] {
            for (count, fits) in [(limit, true), (limit + 1, false), (limit + 7, false)] {
                let fields: String = (0..count).map(|i| format!("x-f{i}: {i}\r\n")).collect();
                let raw = format!("HTTP/1.1 200 OK\r\n{fields}\r\n");
                let parsed = parse_head(
                    &mut BytesMut::from(raw.as_bytes()),
                    false,
                    &mut HeaderMap::new(),
                    limit,
                );
                match parsed {
                    Ok(Some(head)) => {
                        assert!(fits, "{count} fields passed a limit of {limit}");
                        assert_eq!(head.response.headers().len(), count);
                    }
                    Err(SendError::Protocol(why)) => {
                        assert!(!fits, "{count} fields refused at a limit of {limit}: {why}");
                        assert_eq!(why, TOO_MANY_HEADERS);
                    }
                    other => panic!("{count} fields, limit {limit}: {:?}", other.err()),
                }
            }
        }
        // A head over `MAX_HEAD` is refused whether or not it arrived in one read.
        let mut huge = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
        huge.resize(huge.len() + MAX_HEAD, b'a');
        huge.extend_from_slice(b"\r\n\r\n");
        assert!(parse_head(
            &mut BytesMut::from(&huge[..]),
            false,
            &mut HeaderMap::new(),
            100
        )
        .is_err());
        assert!(parse_head(
            &mut BytesMut::from(&huge[..100]),
            false,
            &mut HeaderMap::new(),
            100
        )
        .expect("a start is fine")
        .is_none());
    }

    /// A server that answers each request on a connection with the next canned response
    /// (written in pieces), closing the connection after `close_after` answers. Counts
    /// connections.
    async fn server(
        responses: Vec<Vec<&'static [u8]>>,
        close_after: usize,
    ) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            let mut next = 0;
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut served = 0;
                let mut buf = Vec::new();
                while served < close_after && next < responses.len() {
                    let mut chunk = [0u8; 4096];
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        continue;
                    }
                    buf.clear();
                    for piece in &responses[next] {
                        let _ = s.write_all(piece).await;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    next += 1;
                    served += 1;
                }
            }
        });
        (addr, connections)
    }

    fn get(addr: SocketAddr) -> Request<Body> {
        Request::get(format!("http://{addr}/x"))
            .header("host", "example")
            .body(Body::empty())
            .expect("request")
    }

    async fn body_text(r: Response<Body>) -> String {
        let bytes = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn exchange(addr: SocketAddr) -> Exchange<'static> {
        static LIMIT: std::sync::OnceLock<ConnectionLimit> = std::sync::OnceLock::new();
        Exchange {
            address: addr,
            connect_timeout: Duration::from_secs(1),
            tls: None,
            limit: LIMIT.get_or_init(|| ConnectionLimit::new(1024, 1024)),
            proper_case: false,
            proxy_protocol: None,
            origin: None,
        }
    }

    #[tokio::test]
    async fn chunked_bodies_in_pieces_and_interim_answers_are_read_and_the_connection_reused() {
        let (addr, connections) = server(
            vec![
                vec![
                    b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhel",
                    b"lo\r\n6\r\n world\r\n0\r\ntrailer: x\r\n\r\n",
                ],
                vec![
                    b"HTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\nsec",
                    b"o",
                ],
            ],
            10,
        )
        .await;
        let pool = Arc::new(Pool::default());
        let r = send(&pool, exchange(addr), get(addr))
            .await
            .expect("answer");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(body_text(r).await, "hello world");
        let r = send(&pool, exchange(addr), get(addr))
            .await
            .expect("answer");
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(body_text(r).await, "seco");
        assert_eq!(
            connections.load(Ordering::SeqCst),
            1,
            "the connection was reused"
        );
    }

    /// A chunked answer's trailers are dropped by default, as Envoy's codec drops them, and
    /// passed on with the cluster's `enable_trailers`; either way the connection serves the
    /// next request.
    #[tokio::test]
    async fn trailers_pass_only_when_the_cluster_enables_them() {
        for enabled in [false, true] {
            let (addr, connections) = server(
                vec![
                    vec![
                        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n",
                        b"x-checksum: abc\r\ngrpc-status:  0 \r\n\r\n",
                    ],
                    vec![b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext"],
                ],
                10,
            )
            .await;
            let pool = Arc::new(Pool::new(ConnectionOptions {
                trailers: enabled,
                ..ConnectionOptions::default()
            }));
            let r = send(&pool, exchange(addr), get(addr))
                .await
                .expect("answer");
            let collected = r.into_body().collect().await.expect("body");
            let trailers = collected.trailers().cloned();
            assert_eq!(collected.to_bytes(), "ok");
            match trailers {
                Some(t) if enabled => {
                    assert_eq!(t["x-checksum"], "abc");
                    assert_eq!(t["grpc-status"], "0");
                    assert_eq!(t.len(), 2);
                }
                None if !enabled => {}
                other => panic!("enable_trailers {enabled}: trailers {other:?}"),
            }
            let r = send(&pool, exchange(addr), get(addr))
                .await
                .expect("answer");
            assert_eq!(body_text(r).await, "next");
            assert_eq!(connections.load(Ordering::SeqCst), 1, "reused");
        }
        // Trailers are held to `max_headers_count` too.
        let (addr, _) = server(
            vec![vec![
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\na: 1\r\nb: 2\r\n\r\n",
            ]],
            10,
        )
        .await;
        let pool = Arc::new(Pool::new(ConnectionOptions {
            trailers: true,
            max_headers: 1,
            ..ConnectionOptions::default()
        }));
        let r = send(&pool, exchange(addr), get(addr))
            .await
            .expect("the head is within the limit");
        let err = r.into_body().collect().await.expect_err("two trailers");
        assert_eq!(err.to_string(), TOO_MANY_HEADERS);
    }

    /// A cluster that starts connections with a PROXY protocol header pools them by the
    /// client connection they were opened for, and sends upgrades on a connection of their
    /// own that starts with the header too.
    #[tokio::test]
    async fn proxy_protocol_connections_carry_their_origin_and_upgrades_get_one_too() {
        use crate::proxy_protocol::{Origin, Version};
        let headers = Arc::new(std::sync::Mutex::new(Vec::new()));
        let noted = headers.clone();
        let (addr, connections) = counting_server(move |s| {
            let noted = noted.clone();
            async move {
                let mut reader = tokio::io::BufReader::new(s);
                use tokio::io::AsyncBufReadExt;
                let mut line = String::new();
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                noted.lock().unwrap().push(line);
                loop {
                    let mut head = String::new();
                    loop {
                        let mut l = String::new();
                        match reader.read_line(&mut l).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) if l == "\r\n" => break,
                            Ok(_) => head.push_str(&l),
                        }
                    }
                    let s = reader.get_mut();
                    if head.to_ascii_lowercase().contains("upgrade: echo") {
                        let _ = s
                            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
                            .await;
                        let mut buf = [0u8; 4];
                        if s.read_exact(&mut buf).await.is_ok() {
                            let _ = s.write_all(&buf).await;
                        }
                        return;
                    }
                    if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.is_err() {
                        return;
                    }
                }
            }
        })
        .await;
        let pool = Arc::new(Pool::default());
        let origin = |port| Origin {
            source: SocketAddr::from(([192, 0, 2, 1], port)),
            destination: SocketAddr::from(([198, 51, 100, 1], 443)),
        };
        let with = |o: Option<&'static Origin>| Exchange {
            proxy_protocol: Some(Version::V1),
            origin: o,
            ..exchange(addr)
        };
        let origin = |port| -> &'static Origin { Box::leak(Box::new(origin(port))) };
        for o in [
            Some(origin(1000)),
            Some(origin(1000)),
            Some(origin(2000)),
            None,
        ] {
            let r = send(&pool, with(o), get(addr)).await.expect("answer");
            assert_eq!(body_text(r).await, "ok");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3, "one per origin");
        let upgrade = Request::get("http://example/ws")
            .header("host", "example")
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(Body::empty())
            .expect("request");
        let mut r = send_upgrade(&pool, with(Some(origin(3000))), upgrade)
            .await
            .expect("101");
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        let mut upgraded =
            hyper_util::rt::TokioIo::new(hyper::upgrade::on(&mut r).await.expect("upgraded"));
        upgraded.write_all(b"ping").await.expect("write");
        let mut echo = [0u8; 4];
        upgraded.read_exact(&mut echo).await.expect("read");
        assert_eq!(&echo, b"ping");
        assert_eq!(
            *headers.lock().unwrap(),
            [
                "PROXY TCP4 192.0.2.1 198.51.100.1 1000 443\r\n",
                "PROXY TCP4 192.0.2.1 198.51.100.1 2000 443\r\n",
                "PROXY UNKNOWN\r\n",
                "PROXY TCP4 192.0.2.1 198.51.100.1 3000 443\r\n",
            ]
        );
    }

    /// `max_requests_per_connection` closes a connection after that many requests, the
    /// idle timeout keeps a connection idle for longer from being used, and TCP keepalive is
    /// set on the sockets as configured.
    #[tokio::test]
    async fn connections_follow_the_clusters_connection_options() {
        let answer: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let (addr, connections) = server(vec![vec![answer]; 5], 10).await;
        let pool = Arc::new(Pool::new(ConnectionOptions {
            max_requests: Some(2),
            ..ConnectionOptions::default()
        }));
        for _ in 0..5 {
            let r = send(&pool, exchange(addr), get(addr))
                .await
                .expect("answer");
            assert_eq!(body_text(r).await, "ok");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3, "two requests each");

        for (idle_timeout, expected) in [(Some(Duration::from_millis(40)), 2), (None, 1)] {
            let (addr, connections) = server(vec![vec![answer]; 2], 10).await;
            let pool = Arc::new(Pool::new(ConnectionOptions {
                idle_timeout,
                ..ConnectionOptions::default()
            }));
            for _ in 0..2 {
                let r = send(&pool, exchange(addr), get(addr))
                    .await
                    .expect("answer");
                assert_eq!(body_text(r).await, "ok");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(
                connections.load(Ordering::SeqCst),
                expected,
                "idle timeout {idle_timeout:?}"
            );
        }

        let (addr, _) = server(vec![vec![answer]], 10).await;
        let keepalive = Keepalive {
            time: Some(Duration::from_secs(31)),
            interval: Some(Duration::from_secs(7)),
            probes: Some(4),
        };
        let pool = Arc::new(Pool::new(ConnectionOptions {
            keepalive: Some(keepalive),
            ..ConnectionOptions::default()
        }));
        let r = send(&pool, exchange(addr), get(addr))
            .await
            .expect("answer");
        assert_eq!(body_text(r).await, "ok");
        let conn = pool
            .take(&PoolKey {
                address: addr,
                origin: None,
            })
            .expect("the connection is pooled");
        let Stream::Plain(tcp) = &conn.stream else {
            panic!("a plain connection");
        };
        let socket = socket2::SockRef::from(tcp);
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(
            socket.tcp_keepalive_time().expect("time"),
            Duration::from_secs(31)
        );
        assert_eq!(
            socket.tcp_keepalive_interval().expect("interval"),
            Duration::from_secs(7)
        );
        assert_eq!(socket.tcp_keepalive_retries().expect("probes"), 4);
    }

    #[tokio::test]
    async fn a_pooled_connection_the_upstream_closed_is_replaced() {
        // The server closes each connection after one answer without saying so.
        let (addr, connections) = server(
            vec![
                vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"],
                vec![b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nagain"],
            ],
            1,
        )
        .await;
        let pool = Arc::new(Pool::default());
        let r = send(&pool, exchange(addr), get(addr))
            .await
            .expect("answer");
        assert_eq!(body_text(r).await, "ok");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = send(&pool, exchange(addr), get(addr))
            .await
            .expect("answer on a new connection");
        assert_eq!(body_text(r).await, "again");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    /// An answer as the proxy passes it on: status, version, fields once the hop-by-hop ones
    /// are stripped (by name: the order of fields of different names carries no meaning, RFC
    /// 9110 5.3, and removing a field from a header map moves its last one; the values of one
    /// name stay in order), and body.
    #[derive(Debug, PartialEq)]
    struct Passed {
        status: StatusCode,
        version: Version,
        fields: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    }

    async fn passed(response: Response<Body>) -> Option<Passed> {
        let mut response = response;
        // In an answer with a body, a transfer coding wins over Content-Length (RFC 9112
        // 6.3): the proxy's parser drops the length then, hyper keeps it (and ignores it).
        let bodiless = response.status().is_informational()
            || response.status() == StatusCode::NO_CONTENT
            || response.status() == StatusCode::NOT_MODIFIED;
        if !bodiless && response.headers().contains_key(header::TRANSFER_ENCODING) {
            response.headers_mut().remove(header::CONTENT_LENGTH);
        }
        crate::proxy::strip_hop_by_hop_response(&mut response);
        let (parts, body) = response.into_parts();
        let body = body.collect().await.ok()?.to_bytes().to_vec();
        let mut fields: Vec<(String, Vec<u8>)> = parts
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Some(Passed {
            status: parts.status,
            version: parts.version,
            fields,
            body,
        })
    }

    /// An upstream answer put together from parts an upstream may get right or wrong:
    /// statuses with and without bodies, an interim answer first, framing by length, by
    /// chunks or by the connection's end (with lengths that match or not, several of them,
    /// or both framings), hop-by-hop fields and `Connection` naming others, names and values
    /// with stray whitespace, control bytes and obs-text; sometimes cut short.
    fn random_answer(rng: &mut fastrand::Rng) -> Vec<u8> {
        // Each part is a usual one, and now and then one that is not.
        const STATUS_LINES: (&[&str], &[&str]) = (
            &[
                "HTTP/1.1 200 OK",
                "HTTP/1.1 201 Created",
                "HTTP/1.1 404 Not Found",
                "HTTP/1.1 503 ",
                "HTTP/1.1 204 No Content",
                "HTTP/1.1 304 Not Modified",
                "HTTP/1.0 200 OK",
            ],
            &[
                "HTTP/1.1 999 X",
                "HTTP/1.1 20 OK",
                "HTTP/2 200",
                "HTTP/1.1 200",
                "ICY 200 OK",
            ],
        );
        const NAMES: (&[&str], &[&str]) = (
            &[
                "Content-Length",
                "content-length",
                "Transfer-Encoding",
                "Connection",
                "Keep-Alive",
                "Proxy-Connection",
                "Trailer",
                "TE",
                "Server",
                "Date",
                "Content-Type",
                "X-Custom",
                "x-custom",
                "Set-Cookie",
                "X_Under",
            ],
            &["bad name", "", "X:Y", "X-\u{80}"],
        );
        const VALUES: (&[&str], &[&str]) = (
            &[
                "0",
                "5",
                "3",
                "10",
                "05",
                "chunked",
                "gzip, chunked",
                "close",
                "keep-alive",
                "x-custom",
                "keep-alive, X-Custom",
                "",
                "v",
                " padded ",
                "\u{80}\u{ff}",
                "trailers",
            ],
            &[
                "+5",
                "5, 5",
                "5, 6",
                "chunked, gzip",
                "ctl\x01",
                "del\x7f",
                "-1",
            ],
        );
        const BODIES: &[&str] = &[
            "",
            "hello",
            "hel",
            "hello world",
            "5\r\nhello\r\n0\r\n\r\n",
            "3;ext=1\r\nabc\r\n0\r\nx-t: 1\r\n\r\n",
            "5\r\nhel",
            "zz\r\nhello\r\n0\r\n\r\n",
        ];
        use crate::head::generated::pick;
        let mut raw = String::new();
        if rng.u8(..8) == 0 {
            raw.push_str("HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n");
        }
        raw.push_str(pick(rng, STATUS_LINES));
        raw.push_str("\r\n");
        for _ in 0..rng.usize(..6) {
            raw.push_str(pick(rng, NAMES));
            raw.push_str(": ");
            raw.push_str(pick(rng, VALUES));
            raw.push_str("\r\n");
        }
        raw.push_str("\r\n");
        raw.push_str(BODIES[rng.usize(..BODIES.len())]);
        let mut raw = raw.into_bytes();
        if rng.u8(..8) == 0 {
            raw.truncate(rng.usize(..raw.len()));
        }
        raw
    }

    #[tokio::test]
    async fn whatever_the_parser_passes_on_hyper_reads_the_same() {
        // What the proxy's upstream parser takes from an answer (the upstream then closing
        // the connection), hyper's HTTP/1 client takes too, and reads the same: status,
        // version, fields once the hop-by-hop ones are stripped, body. It may refuse more
        // than hyper, never less.
        let mut rng = fastrand::Rng::with_seed(0x9101);
        let (mut passed_on, mut refused) = (0, 0);
        // One server for all the answers (a port per answer would leave other tests, which
        // pick free ports, fewer to pick from): each connection gets the answer of the
        // moment once its request's head is in, then the end.
        let answer = Arc::new(std::sync::Mutex::new(Bytes::new()));
        let current = answer.clone();
        let (addr, _) = counting_server(move |mut s: TcpStream| {
            let current = current.clone();
            async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let raw = current.lock().map(|a| a.clone()).unwrap_or_default();
                let _ = s.write_all(&raw).await;
                let _ = s.shutdown().await;
            }
        })
        .await;
        for _ in 0..1500 {
            let raw = random_answer(&mut rng);
            let shown = String::from_utf8_lossy(&raw).into_owned();
            if let Ok(mut a) = answer.lock() {
                *a = Bytes::from(raw);
            }
            let pool = Arc::new(Pool::default());
            let ours = match send(&pool, exchange(addr), get(addr)).await {
                Ok(response) => passed(response).await,
                Err(_) => None,
            };
            let Some(ours) = ours else {
                refused += 1;
                continue;
            };
            passed_on += 1;
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(connection);
            let theirs = match sender.send_request(get(addr)).await {
                Ok(response) => passed(response.map(Body::from)).await,
                Err(_) => None,
            };
            assert_eq!(theirs.as_ref(), Some(&ours), "{shown:?}");
        }
        assert!(
            passed_on > 500 && refused > 200,
            "passed on {passed_on}, refused {refused}"
        );
    }

    /// A request as it leaves for an upstream, and what hyper's HTTP/1 server made of it:
    /// method, target, fields in order (less the framing ones, which the writer sets from
    /// the body), body.
    #[derive(Debug, PartialEq)]
    struct Arrived {
        method: String,
        target: String,
        fields: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    }

    fn arrived(parts: &http::request::Parts, body: Vec<u8>) -> Arrived {
        Arrived {
            method: parts.method.to_string(),
            target: parts.uri.to_string(),
            fields: parts
                .headers
                .iter()
                .filter(|(name, _)| {
                    **name != header::CONTENT_LENGTH && **name != header::TRANSFER_ENCODING
                })
                .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                .collect(),
            body,
        }
    }

    /// A request put together from what the proxy sends upstream: methods with and without
    /// bodies, targets with queries and escapes, fields of every kind in any order (repeated
    /// ones too), and bodies empty, whole, or streamed in pieces with or without a length.
    fn random_request(rng: &mut fastrand::Rng, addr: SocketAddr) -> (Request<Body>, Arrived) {
        const METHODS: &[&str] = &[
            "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "M-SEARCH",
        ];
        const TARGETS: &[&str] = &["/", "/x", "/a/b?c=d&e", "/%2e/x?q=%20", "/x?"];
        const FIELDS: &[(&str, &str)] = &[
            ("x-request-id", "a1b2"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "http"),
            ("accept", "*/*"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("content-type", "text/plain"),
            ("x-empty", ""),
            ("x-obs", "caf\u{e9}"),
            ("user-agent", "test/1.0"),
        ];
        let method = METHODS[rng.usize(..METHODS.len())];
        let target = TARGETS[rng.usize(..TARGETS.len())];
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{target}"))
            .header("host", "example");
        for _ in 0..rng.usize(..5) {
            let (name, value) = FIELDS[rng.usize(..FIELDS.len())];
            builder = builder.header(name, value);
        }
        let pieces: Vec<&str> = match rng.u8(..4) {
            0 => vec![],
            1 => vec!["hello"],
            _ => vec!["hel", "lo ", "world"],
        };
        let whole: String = pieces.concat();
        let streamed = rng.u8(..2) == 0 && !pieces.is_empty();
        if streamed && rng.bool() {
            builder = builder.header("content-length", whole.len());
        }
        let body = if streamed {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            for piece in pieces {
                let _ = tx.try_send(Ok::<_, std::convert::Infallible>(http_body::Frame::data(
                    Bytes::from(piece),
                )));
            }
            Body::new(http_body_util::StreamBody::new(
                tokio_stream::wrappers::ReceiverStream::new(rx),
            ))
        } else {
            Body::from(whole.clone())
        };
        let req = builder.body(body).expect("request");
        // Upstream, the target is the path and query (origin form).
        let mut seen = parts_of(&req);
        seen.uri = target.parse().expect("target");
        let expected = arrived(&seen, whole.into_bytes());
        (req, expected)
    }

    /// A copy of a request's head.
    fn parts_of(req: &Request<Body>) -> http::request::Parts {
        let mut copy = Request::new(());
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.headers_mut() = req.headers().clone();
        copy.into_parts().0
    }

    #[tokio::test]
    async fn what_the_writer_sends_hyper_reads_as_the_request_that_was_sent() {
        // The request writer's heads and bodies (whole, streamed with a length, chunked)
        // reach hyper's HTTP/1 server as the request they were made from, one after another
        // on kept connections.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let tx = tx.clone();
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes().to_vec());
                            let _ = tx.send(body.map(|b| arrived(&parts, b)));
                            Ok::<_, std::convert::Infallible>(Response::new(Body::from("ok")))
                        }
                    });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(s), service),
                );
            }
        });
        let mut rng = fastrand::Rng::with_seed(0x9103);
        let pool = Arc::new(Pool::default());
        for _ in 0..500 {
            let (req, expected) = random_request(&mut rng, addr);
            let shown = format!("{req:?}");
            let answer = send(&pool, exchange(addr), req).await.expect("answered");
            assert_eq!(body_text(answer).await, "ok", "{shown}");
            let got = rx.recv().await.expect("arrived");
            assert_eq!(got.as_ref().ok(), Some(&expected), "{shown}");
        }
    }

    /// A server on a free port that serves each connection with `serve`, side by side, and
    /// counts connections.
    async fn counting_server<F, S>(serve: F) -> (SocketAddr, Arc<AtomicUsize>)
    where
        F: Fn(TcpStream) -> S + Send + 'static,
        S: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(s));
            }
        });
        (addr, connections)
    }

    /// Each request's head and body go out through the connection's kept buffer, which is let
    /// go after a large one, and each answer's body is read into room as large as what is left
    /// of it (up to `LARGE_READ_ROOM` a read): small, large and small again on one connection,
    /// each arrives whole, both ways.
    #[tokio::test]
    async fn bodies_small_and_larger_than_the_kept_buffer_go_out_whole_on_one_connection() {
        // Answers each request with its body, as received.
        let (addr, connections) = counting_server(|mut s| async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < end + 4 + length {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body: Vec<u8> = buf.drain(..end + 4 + length).skip(end + 4).collect();
                let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\n\r\n");
                if s.write_all(answer.as_bytes()).await.is_err()
                    || s.write_all(&body).await.is_err()
                {
                    return;
                }
            }
        })
        .await;
        let pool = Arc::new(Pool::default());
        for size in [
            100,
            crate::head::OUT_KEPT + 1000,
            3 * crate::head::OUT_KEPT,
            3 * LARGE_READ_ROOM + 7,
            100,
        ] {
            let body: String = (0..size)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let req = Request::post(format!("http://{addr}/echo"))
                .header("host", "example")
                .header("content-length", size)
                .body(Body::full(body.clone()))
                .expect("request");
            let r = send(&pool, exchange(addr), req).await.expect("answer");
            assert!(
                body_text(r).await == body,
                "a {size}-byte body came back changed"
            );
        }
        assert_eq!(
            connections.load(Ordering::SeqCst),
            1,
            "one connection throughout"
        );
    }

    /// A streamed request body that does not match its `content-length` fails, and the
    /// upstream gets none of its extra bytes: they cannot be taken for a next request.
    #[tokio::test]
    async fn a_streamed_body_that_does_not_match_its_length_is_not_sent_past_it() {
        for (declared, pieces) in [("5", ["hello", " world"]), ("20", ["hello", " world"])] {
            let received = Arc::new(std::sync::Mutex::new(Vec::new()));
            let kept = received.clone();
            let (addr, _) = counting_server(move |mut s: TcpStream| {
                let kept = kept.clone();
                async move {
                    let mut chunk = [0u8; 1024];
                    while let Ok(n) = s.read(&mut chunk).await {
                        if n == 0 {
                            break;
                        }
                        if let Ok(mut k) = kept.lock() {
                            k.extend_from_slice(&chunk[..n]);
                        }
                    }
                }
            })
            .await;
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            for piece in pieces {
                tx.send(Ok::<_, std::convert::Infallible>(http_body::Frame::data(
                    Bytes::from(piece),
                )))
                .await
                .expect("queued");
            }
            drop(tx);
            let body = Body::new(http_body_util::StreamBody::new(
                tokio_stream::wrappers::ReceiverStream::new(rx),
            ));
            let req = Request::post(format!("http://{addr}/x"))
                .header("host", "example")
                .header("content-length", declared)
                .body(body)
                .expect("request");
            let pool = Arc::new(Pool::default());
            let sent =
                tokio::time::timeout(Duration::from_secs(5), send(&pool, exchange(addr), req))
                    .await
                    .expect("no wait for an answer that cannot come");
            assert!(sent.is_err(), "content-length {declared}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            let received = received.lock().map(|r| r.clone()).unwrap_or_default();
            let text = String::from_utf8_lossy(&received);
            let (_, body) = text.split_once("\r\n\r\n").expect("the head went");
            assert!(
                body.len() <= declared.parse::<usize>().unwrap_or(0),
                "content-length {declared}: {body:?} went"
            );
        }
    }

    #[tokio::test]
    async fn conflicting_lengths_and_garbage_are_protocol_errors() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc"[..],
            // Signs are not digits (RFC 9110 8.6): a parser that reads `+3` as 3 and one that
            // refuses it would disagree on where this answer ends.
            b"HTTP/1.1 200 OK\r\ncontent-length: +3\r\n\r\nabc",
            b"SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            let (addr, _) = server(vec![vec![bad]], 1).await;
            let pool = Arc::new(Pool::default());
            let err = send(&pool, exchange(addr), get(addr))
                .await
                .expect_err("refused");
            assert!(matches!(err, SendError::Protocol(_)), "{err}");
        }
    }

    #[tokio::test]
    async fn the_connection_limit_refuses_new_connections_until_one_closes() {
        let (addr, _) = server(
            vec![
                vec![b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc"],
                vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"],
            ],
            1,
        )
        .await;
        // No request may wait: over the limit is an overflow at once.
        let limit = ConnectionLimit::new(1, 0);
        let ex = Exchange {
            limit: &limit,
            ..exchange(addr)
        };
        let pool = Arc::new(Pool::default());
        // The first answer's body is still streaming: its connection is open.
        let first = send(&pool, ex, get(addr)).await.expect("answer");
        let err = send(&pool, ex, get(addr))
            .await
            .expect_err("over the limit");
        assert!(matches!(err, SendError::Overflow), "{err}");
        drop(first);
        let r = send(&pool, ex, get(addr))
            .await
            .expect("a slot is free again");
        assert_eq!(body_text(r).await, "ok");
    }

    #[tokio::test]
    async fn a_worker_without_connections_opens_one_at_the_limit_as_envoy_does() {
        // Keep-alive connections served side by side, `ok` to every request.
        let (addr, connections) = counting_server(|mut s| async move {
            let mut buf = [0u8; 4096];
            while s.read(&mut buf).await.unwrap_or(0) > 0 {
                let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                if s.write_all(ok).await.is_err() {
                    return;
                }
            }
        })
        .await;
        let limit = Box::leak(Box::new(ConnectionLimit::new(1, 1)));
        let ex = Exchange {
            limit,
            ..exchange(addr)
        };
        // Worker A's pool keeps the only connection the limit allows, idle.
        let (worker_a, worker_b) = (Arc::new(Pool::default()), Arc::new(Pool::default()));
        let r = send(&worker_a, ex, get(addr)).await.expect("answer");
        assert_eq!(body_text(r).await, "ok");
        // Worker B has none: its request would wait for ever for a connection that only
        // worker A can reuse. It gets one of its own instead (and would overflow with no
        // room among the pending requests).
        let r = tokio::time::timeout(Duration::from_secs(5), send(&worker_b, ex, get(addr)))
            .await
            .expect("not left waiting")
            .expect("answer");
        assert_eq!(body_text(r).await, "ok");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn at_the_connection_limit_requests_wait_for_a_connection_up_to_max_pending() {
        // One connection, two responses; the first one's body ends only when told to.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (finish_first, first_may_end) = tokio::sync::oneshot::channel::<()>();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            let mut first_may_end = Some(first_may_end);
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                if s.read(&mut buf).await.unwrap_or(0) == 0 {
                    continue;
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
                    .await;
                if let Some(wait) = first_may_end.take() {
                    let _ = wait.await;
                }
                let _ = s.write_all(b"0\r\n\r\n").await;
                if s.read(&mut buf).await.unwrap_or(0) == 0 {
                    continue;
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            }
        });
        let limit = Box::leak(Box::new(ConnectionLimit::new(1, 1)));
        let ex = Exchange {
            limit,
            ..exchange(addr)
        };
        let pool = Arc::new(Pool::default());
        let first = send(&pool, ex, get(addr)).await.expect("answer");
        // The second request waits for the only connection...
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { send(&pool, ex, get(addr)).await.map(|r| r.status()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the second request did not wait");
        // ...and a third finds the waiting room full.
        let err = send(&pool, ex, get(addr))
            .await
            .expect_err("over max_pending");
        assert!(matches!(err, SendError::Overflow), "{err}");
        // The first body ends, its connection goes back to the pool, the waiter takes it.
        let _ = finish_first.send(());
        assert_eq!(body_text(first).await, "abc");
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting request is served")
            .expect("task")
            .expect("answer");
        assert_eq!(second, http::StatusCode::OK);
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "served on the same connection"
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let pool = Arc::new(Pool::default());
        let err = send(&pool, exchange(addr), get(addr))
            .await
            .expect_err("no server");
        assert!(err.is_connect(), "{err}");
    }
}

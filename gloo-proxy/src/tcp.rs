//! TCP proxying: the listeners gloo-core makes of a Gateway's `tcpGateway`, one filter chain
//! per TCP host, each an Envoy `envoy.filters.network.tcp_proxy` to a cluster (or weighted
//! clusters, or, after `envoy.filters.network.sni_cluster`, the cluster the client's SNI
//! names); and those of a `hybridGateway`, whose HTTP filter chains (each with its own
//! connection manager) are compiled into HTTP listeners of their own that the chosen chain
//! hands its connections to.
//!
//! A connection is served as Envoy serves it:
//!
//! - with `envoy.filters.listener.tls_inspector`, the client's first bytes are read for a TLS
//!   client hello's server name (a client that does not start with TLS has none); they are
//!   passed on unchanged. A client that sends nothing for `listener_filters_timeout` (15 s)
//!   is closed unless `continue_on_listener_filters_timeout`;
//! - the filter chain is chosen as Envoy's filter chain match chooses it: by server name
//!   (exact, then the longest wildcard, then chains without names), then by the client's
//!   address (`source_prefix_ranges`: the longest prefix, then chains without ranges); no
//!   chain, the connection is closed;
//! - a chain with a TLS transport socket terminates TLS (a passthrough chain does not);
//! - an endpoint of the cluster is picked and connected to (with the cluster's connect
//!   timeout, connection limit, PROXY protocol header and TLS origination), up to
//!   `max_connect_attempts` times (default 1), each attempt picking again; none reached, the
//!   client's connection is closed;
//! - bytes are copied both ways until either side closes (each direction's end is passed on
//!   as a half close) or nothing moves for `idle_timeout` (default 1 hour; zero: never).
//!
//! - with `tunneling_config`, the endpoint is an HTTP proxy: the connection to it starts with
//!   an HTTP/1.1 `CONNECT hostname` (and the configured headers), and a 2xx answer opens the
//!   tunnel the bytes then flow through.
//!
//! - the TCP proxy's access logs get one entry per connection when it ends: no request, status
//!   0, the bytes each way, the whole connection's duration, the upstream host and cluster,
//!   and the flags Envoy sets (`UF`, `UO`, `UH`, `NC`).
//!
//! Refused, naming the field: other network filters, filter chain matches on anything but
//! `server_names` and `source_prefix_ranges`, POST tunnels and command operators in a
//! tunnel's hostname or headers. Not applied, with a warning: `access_log_options` (periodic
//! entries while a connection lasts).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use envoy_types::pb::envoy::config::listener::v3::{filter, FilterChain, Listener};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier, TcpProxy,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::CidrRange;
use crate::proxy::Proxy;

/// Envoy's TCP proxy network filter.
pub const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
/// Envoy's SNI cluster network filter: the cluster is the one the client's SNI names.
pub const SNI_CLUSTER: &str = "envoy.filters.network.sni_cluster";
const TCP_PROXY_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
const DOWNSTREAM_TLS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";
const PROXY_PROTOCOL: &str = "envoy.filters.listener.proxy_protocol";
/// The most bytes read looking for a client hello (a hello is at most a few KiB).
const MAX_HELLO: usize = 16 * 1024;
/// How long a client has to send its client hello when the listener does not say (Envoy's
/// `listener_filters_timeout` default).
const HELLO_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a client that terminates TLS here has for its handshake when the chain does not
/// say (Envoy's `transport_socket_connect_timeout` is unset by default; gloo-proxy's HTTP
/// listeners give 10 s too).
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener whose filter chains are TCP proxies.
#[derive(Debug)]
pub struct TcpProxyListener {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: SocketAddr,
    /// The version of the Envoy resource it was compiled from.
    pub version: String,
    /// A PROXY protocol header starts each connection.
    proxy_protocol: bool,
    /// The client hello is read for its server name (`tls_inspector`).
    inspect_tls: bool,
    /// How long the client has to send it (`listener_filters_timeout`), and whether the
    /// connection then goes on without a server name (`continue_on_listener_filters_timeout`)
    /// rather than being closed, as Envoy closes it by default.
    hello_timeout: Duration,
    continue_on_hello_timeout: bool,
    chains: Vec<TcpChain>,
}

/// Where a chain's connections go.
#[derive(Debug)]
enum Target {
    Cluster(String),
    /// Clusters and their weights, and the weights' sum (above 0).
    Weighted(Vec<(String, u32)>, u64),
    /// A hybrid listener's HTTP filter chain, served as the listener of its own it was
    /// compiled into.
    Http(Arc<crate::config::HttpListener>),
}

#[derive(Debug)]
struct TcpChain {
    server_names: Vec<String>,
    source_ranges: Vec<CidrRange>,
    tls: Option<(Arc<rustls::ServerConfig>, Duration)>,
    /// `sni_cluster`: the client's SNI, when it sent one, names the cluster.
    sni_cluster: bool,
    target: Target,
    idle_timeout: Option<Duration>,
    max_connect_attempts: u32,
    /// `tunneling_config`: the connection to the endpoint is an HTTP/1.1 CONNECT tunnel.
    tunnel: Option<Tunnel>,
    /// The TCP proxy's access logs (an entry per connection, when it ends).
    access_log: Option<Arc<crate::access_log::AccessLogs>>,
}

/// An HTTP/1.1 `CONNECT` tunnel through the endpoint (an HTTP proxy) to `authority`.
#[derive(Debug)]
struct Tunnel {
    /// The request head, written once: `CONNECT authority HTTP/1.1`, `host`, the added headers.
    head: Vec<u8>,
}

impl Tunnel {
    fn compile(
        config: &envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::tcp_proxy::TunnelingConfig,
    ) -> Result<Self, String> {
        use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
        if config.use_post {
            return Err("tunneling_config.use_post: only CONNECT tunnels are supported".into());
        }
        if config.propagate_response_headers {
            tracing::warn!("tunneling_config.propagate_response_headers is not applied");
        }
        let authority = config.hostname.as_str();
        if authority.is_empty() || authority.contains(['%', ' ', '\r', '\n']) {
            return Err(format!(
                "tunneling_config.hostname: {authority:?} is not a plain host[:port] (command operators are not supported)"
            ));
        }
        let mut headers: Vec<(http::HeaderName, http::HeaderValue)> = Vec::new();
        for (i, option) in config.headers_to_add.iter().enumerate() {
            let at = format!("tunneling_config.headers_to_add[{i}]");
            let Some(h) = &option.header else {
                return Err(format!("{at}: no header"));
            };
            if h.value.contains('%') {
                return Err(format!(
                    "{at}: {:?}: command operators are not supported",
                    h.value
                ));
            }
            let name = http::HeaderName::from_bytes(h.key.as_bytes())
                .map_err(|_| format!("{at}: invalid header name {:?}", h.key))?;
            let value = http::HeaderValue::from_str(&h.value)
                .map_err(|_| format!("{at}: invalid header value {:?}", h.value))?;
            #[allow(deprecated)]
            let overwrite = matches!(
                HeaderAppendAction::try_from(option.append_action),
                Ok(HeaderAppendAction::OverwriteIfExistsOrAdd)
            ) || option.append.as_ref().is_some_and(|a| !a.value);
            if overwrite {
                headers.retain(|(n, _)| *n != name);
            }
            headers.push((name, value));
        }
        let mut head =
            format!("CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n").into_bytes();
        for (name, value) in &headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        Ok(Tunnel { head })
    }

    /// Asks the endpoint for the tunnel; a 2xx answer opens it. Returns the bytes that came
    /// after the answer's head (the first bytes through the tunnel).
    async fn open<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
    ) -> std::io::Result<BytesMut> {
        let refused = |why: String| std::io::Error::other(why);
        stream.write_all(&self.head).await?;
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(refused("the proxy closed before answering CONNECT".into()));
            }
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut answer = httparse::Response::new(&mut headers);
            match answer.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let code = answer.code.unwrap_or(0);
                    if !(200..300).contains(&code) {
                        return Err(refused(format!("the proxy answered CONNECT with {code}")));
                    }
                    let _ = buf.split_to(len);
                    return Ok(buf);
                }
                Ok(httparse::Status::Partial) if buf.len() < 16 * 1024 => continue,
                Ok(httparse::Status::Partial) => {
                    return Err(refused("the CONNECT answer's head is too large".into()))
                }
                Err(e) => return Err(refused(format!("bad CONNECT answer: {e}"))),
            }
        }
    }
}

const HCM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/// The HTTP connection manager config of a filter chain that has one.
fn chain_hcm(chain: &FilterChain) -> Option<&envoy_types::pb::google::protobuf::Any> {
    chain.filters.iter().find_map(|f| match &f.config_type {
        Some(filter::ConfigType::TypedConfig(any)) if any.type_url == HCM_TYPE => Some(any),
        _ => None,
    })
}

/// Whether `l` is a hybrid listener (a hybrid Gateway's): filter chains of both kinds, or
/// HTTP chains with connection managers of their own (each matched gateway's routes).
pub(crate) fn is_hybrid_listener(l: &Listener) -> bool {
    let tcp = l
        .filter_chains
        .iter()
        .any(|c| c.filters.last().is_some_and(|f| f.name == TCP_PROXY));
    let mut managers = l.filter_chains.iter().filter_map(chain_hcm);
    let Some(first) = managers.next() else {
        return false;
    };
    tcp || managers.any(|m| m.value != first.value)
}

/// Whether `l` is a TCP proxy listener: every filter chain ends in a TCP proxy.
pub(crate) fn is_tcp_listener(l: &Listener) -> bool {
    !l.filter_chains.is_empty()
        && l.filter_chains
            .iter()
            .all(|c| c.filters.last().is_some_and(|f| f.name == TCP_PROXY))
}

impl TcpProxyListener {
    /// Compiles a listener whose filter chains are TCP proxies.
    pub fn compile(
        l: &Listener,
        version: &str,
        upstreams: &crate::filter::Upstreams,
    ) -> Result<Self, String> {
        let address = crate::config::listener_address(l)?;
        let mut proxy_protocol = false;
        let mut inspect_tls = false;
        for (i, f) in l.listener_filters.iter().enumerate() {
            match f.name.as_str() {
                PROXY_PROTOCOL => proxy_protocol = true,
                TLS_INSPECTOR => inspect_tls = true,
                other => return Err(format!("listener_filters[{i}]: {other:?} is not supported")),
            }
        }
        let chains = l
            .filter_chains
            .iter()
            .enumerate()
            .map(|(i, c)| {
                compile_chain(c, upstreams).map_err(|e| format!("filter_chains[{i}]: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(TcpProxyListener {
            name: l.name.clone(),
            address,
            version: version.to_string(),
            proxy_protocol,
            inspect_tls,
            hello_timeout: match &l.listener_filters_timeout {
                Some(d) => crate::router::action::pb_duration(d),
                None => HELLO_TIMEOUT,
            },
            continue_on_hello_timeout: l.continue_on_listener_filters_timeout,
            chains,
        })
    }

    /// Compiles a TCP proxy listener, or a hybrid one: each HTTP filter chain becomes an
    /// [`embedded`](crate::config::HttpListener::embedded) HTTP listener of its own, named
    /// `<listener>#<chain index>` (see [`http_chains`](Self::http_chains)), its connections
    /// handed to it once the chain is chosen (the PROXY protocol header and the client hello
    /// already read, the hello replayed).
    pub fn compile_with_http(
        l: &Listener,
        version: &str,
        registry: &crate::filter::FilterRegistry,
    ) -> Result<Self, String> {
        let mut tcp_only = l.clone();
        tcp_only.filter_chains.retain(|c| chain_hcm(c).is_none());
        let mut compiled = Self::compile(&tcp_only, version, registry.upstreams())?;
        let mut chains = Vec::with_capacity(l.filter_chains.len());
        let mut tcp_chains = std::mem::take(&mut compiled.chains).into_iter();
        for (i, chain) in l.filter_chains.iter().enumerate() {
            if chain_hcm(chain).is_none() {
                chains.extend(tcp_chains.next());
                continue;
            }
            let at = |e: String| format!("filter_chains[{i}]: {e}");
            let (server_names, source_ranges) = chain_match(chain).map_err(at)?;
            // The chain alone, as a listener: no PROXY protocol (read here already).
            let mut alone = l.clone();
            alone.name = format!("{}#{i}", l.name);
            alone.listener_filters.retain(|f| f.name != PROXY_PROTOCOL);
            alone.filter_chains = vec![chain.clone()];
            let mut http =
                crate::config::compile_listener(&alone, version, registry).map_err(at)?;
            http.embedded = true;
            chains.push(TcpChain {
                server_names,
                source_ranges,
                tls: None,
                sni_cluster: false,
                target: Target::Http(Arc::new(http)),
                idle_timeout: None,
                max_connect_attempts: 1,
                tunnel: None,
                access_log: None,
            });
        }
        compiled.chains = chains;
        Ok(compiled)
    }

    /// The HTTP listeners a hybrid listener's HTTP chains were compiled into.
    pub fn http_chains(&self) -> impl Iterator<Item = Arc<crate::config::HttpListener>> + '_ {
        self.chains.iter().filter_map(|c| match &c.target {
            Target::Http(l) => Some(l.clone()),
            _ => None,
        })
    }

    /// The chain a connection with `sni` from `client` is served by, if any.
    fn chain(&self, sni: Option<&str>, client: std::net::IpAddr) -> Option<&TcpChain> {
        let named = crate::tls::server_name_matches(&self.chains, |c| &c.server_names, sni);
        let longest = named
            .iter()
            .flat_map(|c| c.source_ranges.iter())
            .filter(|r| r.contains(client))
            .map(CidrRange::prefix_len)
            .max();
        match longest {
            Some(len) => named.into_iter().find(|c| {
                c.source_ranges
                    .iter()
                    .any(|r| r.prefix_len() == len && r.contains(client))
            }),
            None => named.into_iter().find(|c| c.source_ranges.is_empty()),
        }
    }
}

fn compile_chain(
    chain: &FilterChain,
    upstreams: &crate::filter::Upstreams,
) -> Result<TcpChain, String> {
    let mut sni_cluster = false;
    let mut proxy = None;
    for (i, f) in chain.filters.iter().enumerate() {
        match f.name.as_str() {
            SNI_CLUSTER => sni_cluster = true,
            TCP_PROXY => {
                let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
                    return Err(format!("filters[{i}]: the TCP proxy has no config"));
                };
                if any.type_url != TCP_PROXY_TYPE {
                    return Err(format!(
                        "filters[{i}]: expected {TCP_PROXY_TYPE}, got {}",
                        any.type_url
                    ));
                }
                proxy = Some(
                    TcpProxy::decode(any.value.as_slice())
                        .map_err(|e| format!("filters[{i}]: cannot decode TcpProxy: {e}"))?,
                );
            }
            other => {
                return Err(format!(
                    "filters[{i}]: network filter {other:?} is not supported"
                ))
            }
        }
    }
    let proxy = proxy.ok_or("no TCP proxy")?;
    let target = match proxy.cluster_specifier {
        Some(ClusterSpecifier::Cluster(c)) => Target::Cluster(c),
        Some(ClusterSpecifier::WeightedClusters(w)) => {
            let clusters: Vec<(String, u32)> =
                w.clusters.into_iter().map(|c| (c.name, c.weight)).collect();
            let total = clusters.iter().map(|(_, w)| u64::from(*w)).sum();
            if total == 0 {
                return Err("weighted_clusters: the weights add up to 0".into());
            }
            Target::Weighted(clusters, total)
        }
        None if sni_cluster => Target::Cluster(String::new()),
        None => return Err("the TCP proxy names no cluster".into()),
    };
    let access_log = crate::access_log::AccessLogs::compile(&proxy.access_log, upstreams)?;
    if proxy.access_log_options.is_some() {
        tracing::warn!("tcp_proxy.access_log_options is not applied: a connection is logged once, when it ends");
    }
    let tunnel = proxy
        .tunneling_config
        .as_ref()
        .map(Tunnel::compile)
        .transpose()?;
    let (server_names, source_ranges) = chain_match(chain)?;
    let tls = match &chain.transport_socket {
        None => None,
        Some(socket) => match &socket.config_type {
            Some(
                envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(
                    any,
                ),
            ) if any.type_url == DOWNSTREAM_TLS_TYPE => {
                let ctx = DownstreamTlsContext::decode(any.value.as_slice())
                    .map_err(|e| format!("transport_socket: {e}"))?;
                let config = crate::tls::server_config(&ctx)
                    .map_err(|e| format!("transport_socket: {e}"))?;
                let timeout = chain
                    .transport_socket_connect_timeout
                    .as_ref()
                    .map(crate::router::action::pb_duration)
                    .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
                Some((config, timeout))
            }
            _ => {
                return Err(format!(
                    "transport socket {:?} is not supported",
                    socket.name
                ))
            }
        },
    };
    let idle_timeout = match &proxy.idle_timeout {
        // Envoy's default: one hour.
        None => Some(Duration::from_secs(3600)),
        Some(d) => Some(crate::router::action::pb_duration(d)).filter(|d| !d.is_zero()),
    };
    Ok(TcpChain {
        server_names,
        source_ranges,
        tls,
        sni_cluster,
        target,
        idle_timeout,
        max_connect_attempts: proxy.max_connect_attempts.map_or(1, |m| m.value).max(1),
        tunnel,
        access_log,
    })
}

/// A filter chain's server names (lower case) and client address ranges: all of its
/// `filter_chain_match` that is supported.
fn chain_match(chain: &FilterChain) -> Result<(Vec<String>, Vec<CidrRange>), String> {
    let Some(m) = &chain.filter_chain_match else {
        return Ok((Vec::new(), Vec::new()));
    };
    let refused = [
        ("destination_port", m.destination_port.is_some()),
        ("prefix_ranges", !m.prefix_ranges.is_empty()),
        (
            "direct_source_prefix_ranges",
            !m.direct_source_prefix_ranges.is_empty(),
        ),
        ("source_type", m.source_type != 0),
        ("source_ports", !m.source_ports.is_empty()),
        ("transport_protocol", !m.transport_protocol.is_empty()),
        ("application_protocols", !m.application_protocols.is_empty()),
        ("address_suffix", !m.address_suffix.is_empty()),
    ];
    if let Some((field, _)) = refused.iter().find(|(_, set)| *set) {
        return Err(format!("filter_chain_match.{field} is not supported"));
    }
    let server_names = m
        .server_names
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let source_ranges = m
        .source_prefix_ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            CidrRange::compile(r)
                .map_err(|e| format!("filter_chain_match.source_prefix_ranges[{i}]: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok((server_names, source_ranges))
}

/// What the client's first bytes said.
enum Hello {
    /// The bytes read, and the client hello's server name (`None`: not TLS, or no name).
    Read(BytesMut, Option<String>),
    /// The client closed before sending anything.
    Closed,
    /// Nothing decisive arrived within the timeout (with what did).
    TimedOut(BytesMut),
}

/// Reads the client's first bytes until they hold a TLS client hello or show it is not one
/// (zero `timeout`: no limit, as Envoy's `listener_filters_timeout` of zero disables it).
async fn read_hello(stream: &mut TcpStream, timeout: Duration) -> Hello {
    let mut buf = BytesMut::with_capacity(2048);
    let mut acceptor = rustls::server::Acceptor::default();
    let mut fed = 0;
    // `Some(None)`: not TLS (or a hello without a name); `None`: closed first.
    let reading = async {
        loop {
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) if buf.is_empty() => return None,
                Ok(0) | Err(_) => return Some(None),
                Ok(_) => {}
            }
            // A TLS connection starts with a handshake record.
            if buf.first() != Some(&0x16) {
                return Some(None);
            }
            let mut fresh = &buf[fed..];
            if acceptor.read_tls(&mut fresh).is_err() {
                return Some(None);
            }
            fed = buf.len() - fresh.len();
            match acceptor.accept() {
                Ok(Some(accepted)) => {
                    return Some(accepted.client_hello().server_name().map(str::to_string))
                }
                Ok(None) if buf.len() < MAX_HELLO => continue,
                _ => return Some(None),
            }
        }
    };
    let outcome = if timeout.is_zero() {
        Ok(reading.await)
    } else {
        tokio::time::timeout(timeout, reading).await
    };
    match outcome {
        Ok(Some(sni)) => Hello::Read(buf, sni),
        Ok(None) => Hello::Closed,
        Err(_) => Hello::TimedOut(buf),
    }
}

/// Serves one client connection of a TCP proxy listener.
pub(crate) async fn serve_connection(
    mut stream: TcpStream,
    mut remote: SocketAddr,
    listener: Arc<TcpProxyListener>,
    proxy: Arc<Proxy>,
) {
    let start = std::time::SystemTime::now();
    let started = std::time::Instant::now();
    let peer = remote;
    // The listener as the config in force has it (the accept loop's may be older: it keeps
    // running across edits that leave the address alone).
    let config = proxy.config();
    let listener = match config
        .tcp_listeners
        .iter()
        .find(|l| l.name == listener.name)
    {
        Some(current) => current.clone(),
        None => listener,
    };
    // The address the client dialled: the listener's own, or for a wildcard bind the
    // interface it arrived on (one `getsockname` then), as the HTTP listeners find it.
    let local = if listener.address.ip().is_unspecified() {
        stream.local_addr().unwrap_or(listener.address)
    } else {
        listener.address
    };
    let local = SocketAddr::new(local.ip().to_canonical(), local.port());
    if listener.proxy_protocol {
        match crate::server::proxy_protocol_source(&mut stream, remote).await {
            Some(source) => remote = source,
            None => return,
        }
    }
    let (hello, sni) = if listener.inspect_tls {
        match read_hello(&mut stream, listener.hello_timeout).await {
            Hello::Read(hello, sni) => (hello, sni),
            Hello::Closed => return,
            Hello::TimedOut(hello) if listener.continue_on_hello_timeout => (hello, None),
            Hello::TimedOut(_) => {
                tracing::debug!(listener = %listener.name, "{remote}: no client hello in time; closed");
                return;
            }
        }
    } else {
        (BytesMut::new(), None)
    };
    let Some(chain) = listener.chain(sni.as_deref(), remote.ip().to_canonical()) else {
        tracing::debug!(listener = %listener.name, "{remote}: no filter chain matches (SNI {sni:?}); closed");
        return;
    };
    if let Target::Http(http) = &chain.target {
        let client = crate::server::Rewind::new(stream, hello.freeze());
        crate::server::serve_accepted(client, remote, local, http.clone(), proxy).await;
        return;
    }
    // From here on the connection is the TCP proxy's, and its access logs record it.
    let mut log = ConnectionLog {
        logs: chain.access_log.clone(),
        start,
        started,
        downstream: crate::proxy::Downstream {
            remote,
            peer,
            local,
            scheme: "tcp",
            client_certificate: None,
        },
        cluster: None,
        upstream_host: None,
        flags: crate::access_log::ResponseFlags::default(),
        received: AtomicU64::new(0),
        sent: AtomicU64::new(0),
    };
    let cluster_name = match (&chain.target, chain.sni_cluster, sni.as_deref()) {
        (_, true, Some(name)) if !name.is_empty() => name,
        (Target::Cluster(name), _, _) => name.as_str(),
        (Target::Weighted(clusters, total), _, _) => {
            crate::router::action::pick_by_weight(clusters.iter().map(|(_, w)| *w), *total)
                .and_then(|i| clusters.get(i))
                .map_or("", |(name, _)| name.as_str())
        }
        (Target::Http(_), _, _) => return,
    };
    let Some(cluster) = config.clusters.get(cluster_name).cloned() else {
        tracing::debug!(listener = %listener.name, "{remote}: cluster {cluster_name:?} not found; closed");
        log.flags |= crate::access_log::ResponseFlags::NO_CLUSTER_FOUND;
        return;
    };
    log.cluster = Some(cluster.name().to_string());
    let origin = crate::proxy_protocol::Origin {
        source: remote,
        destination: local,
    };
    let mut upstream = None;
    let mut tried = false;
    // Each attempt asks the balancer again, as Envoy's TCP proxy does (round robin moves on).
    for _ in 0..chain.max_connect_attempts {
        let Some(endpoint) = cluster.pick(None, None) else {
            break;
        };
        tried = true;
        match cluster.open_tunnel(&endpoint, Some(&origin)).await {
            Ok(opened) => {
                log.upstream_host = Some(endpoint.address);
                upstream = Some((opened, endpoint.start_request()));
                break;
            }
            Err(crate::upstream::h1::SendError::Overflow) => {
                log.flags |= crate::access_log::ResponseFlags::UPSTREAM_OVERFLOW;
                break;
            }
            Err(e) => {
                // Envoy keeps the flag of a failed attempt though a later one succeeds.
                log.flags |= crate::access_log::ResponseFlags::UPSTREAM_CONNECTION_FAILURE;
                cluster.stats.upstream_cx_connect_fail.inc();
                tracing::debug!(cluster = %cluster.name(), "{}: connect failed: {e:?}", endpoint.address);
            }
        }
    }
    let Some(((mut upstream, _slot), _active)) = upstream else {
        if !tried {
            log.flags |= crate::access_log::ResponseFlags::NO_HEALTHY_UPSTREAM;
        }
        return;
    };
    // Through a CONNECT tunnel, the first bytes may have come with the proxy's answer.
    let mut early = BytesMut::new();
    if let Some(tunnel) = &chain.tunnel {
        match tokio::time::timeout(Duration::from_secs(10), tunnel.open(&mut upstream)).await {
            Ok(Ok(rest)) => early = rest,
            Ok(Err(e)) => {
                tracing::debug!(cluster = %cluster.name(), "{remote}: no tunnel: {e}");
                log.flags |= crate::access_log::ResponseFlags::UPSTREAM_CONNECTION_FAILURE;
                return;
            }
            Err(_) => {
                tracing::debug!(cluster = %cluster.name(), "{remote}: no answer to CONNECT in time");
                log.flags |= crate::access_log::ResponseFlags::UPSTREAM_CONNECTION_FAILURE;
                return;
            }
        }
    }
    let upstream = crate::server::Rewind::new(upstream, early.freeze());
    let idle = chain.idle_timeout;
    let client = crate::server::Rewind::new(stream, hello.freeze());
    match &chain.tls {
        None => tunnel(client, upstream, idle, &log.received, &log.sent).await,
        Some((config, handshake_timeout)) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
            match tokio::time::timeout(*handshake_timeout, acceptor.accept(client)).await {
                Ok(Ok(tls)) => tunnel(tls, upstream, idle, &log.received, &log.sent).await,
                Ok(Err(e)) => tracing::debug!("{remote}: TLS handshake failed: {e}"),
                Err(_) => tracing::debug!("{remote}: TLS handshake timed out"),
            }
        }
    }
}

/// What a TCP proxy's access logs record of one connection, written when it is dropped (the
/// connection has ended, however it ended).
struct ConnectionLog {
    logs: Option<Arc<crate::access_log::AccessLogs>>,
    start: std::time::SystemTime,
    started: std::time::Instant,
    downstream: crate::proxy::Downstream,
    cluster: Option<String>,
    upstream_host: Option<SocketAddr>,
    flags: crate::access_log::ResponseFlags,
    /// Bytes from the client, and to it.
    received: AtomicU64,
    sent: AtomicU64,
}

impl Drop for ConnectionLog {
    fn drop(&mut self) {
        let Some(logs) = &self.logs else { return };
        let no_headers = http::HeaderMap::new();
        logs.write(&crate::access_log::Entry {
            start: self.start,
            duration: self.started.elapsed(),
            request_duration: None,
            response_duration: None,
            protocol: None,
            request: None,
            status: 0,
            response_headers: &no_headers,
            response_trailers: None,
            flags: self.flags,
            bytes_received: self.received.load(Ordering::Relaxed),
            bytes_sent: self.sent.load(Ordering::Relaxed),
            upstream_host: self.upstream_host,
            upstream_cluster: self.cluster.as_deref(),
            route_name: None,
            downstream: &self.downstream,
            health_check: false,
        });
    }
}

/// Copies bytes both ways until both directions have ended, or nothing has moved either
/// way for `idle`. One side's end (EOF) is passed on to the other as a half close. Bytes from
/// `a` are counted in `received`, bytes to it in `sent`.
async fn tunnel<A, B>(a: A, b: B, idle: Option<Duration>, received: &AtomicU64, sent: &AtomicU64)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);
    let start = tokio::time::Instant::now();
    // Milliseconds since `start` of the last bytes either way.
    let last = AtomicU64::new(0);
    let both = async {
        let _ = tokio::join!(
            copy_half(&mut a_read, &mut b_write, start, &last, received),
            copy_half(&mut b_read, &mut a_write, start, &last, sent)
        );
    };
    let Some(idle) = idle else {
        both.await;
        return;
    };
    tokio::pin!(both);
    loop {
        let deadline = start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
        tokio::select! {
            () = &mut both => return,
            () = tokio::time::sleep_until(deadline) => {
                let moved = start + Duration::from_millis(last.load(Ordering::Relaxed));
                if moved + idle <= tokio::time::Instant::now() {
                    return;
                }
            }
        }
    }
}

/// Copies `from` to `to` until `from` ends (then shuts `to`'s writing down), noting in `last`
/// when bytes last moved and counting them in `moved`.
async fn copy_half<R, W>(
    from: &mut R,
    to: &mut W,
    start: tokio::time::Instant,
    last: &AtomicU64,
    moved: &AtomicU64,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        let now = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(now, Ordering::Relaxed);
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        moved.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::{
        address, socket_address, Address, CidrRange as PbCidr, SocketAddress,
    };
    use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChainMatch};
    use envoy_types::pb::google::protobuf::{Any, UInt32Value};

    use super::*;

    fn tcp_proxy(cluster: &str) -> Filter {
        Filter {
            name: TCP_PROXY.into(),
            config_type: Some(filter::ConfigType::TypedConfig(Any {
                type_url: TCP_PROXY_TYPE.into(),
                value: TcpProxy {
                    stat_prefix: "tcp".into(),
                    cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
                    ..Default::default()
                }
                .encode_to_vec(),
            })),
        }
    }

    fn chain(cluster: &str, names: &[&str], ranges: &[(&str, u32)]) -> FilterChain {
        FilterChain {
            filter_chain_match: Some(FilterChainMatch {
                server_names: names.iter().map(|n| n.to_string()).collect(),
                source_prefix_ranges: ranges
                    .iter()
                    .map(|(prefix, len)| PbCidr {
                        address_prefix: prefix.to_string(),
                        prefix_len: Some(UInt32Value { value: *len }),
                    })
                    .collect(),
                ..Default::default()
            }),
            filters: vec![tcp_proxy(cluster)],
            ..Default::default()
        }
    }

    fn listener(chains: Vec<FilterChain>) -> Listener {
        Listener {
            name: "tcp".into(),
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: "127.0.0.1".into(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(1)),
                    ..Default::default()
                })),
            }),
            filter_chains: chains,
            ..Default::default()
        }
    }

    fn chosen(l: &TcpProxyListener, sni: Option<&str>, client: &str) -> Option<String> {
        l.chain(sni, client.parse().expect("an address"))
            .map(|c| match &c.target {
                Target::Cluster(name) => name.clone(),
                Target::Weighted(..) => "weighted".into(),
                Target::Http(l) => l.name.clone(),
            })
    }

    #[test]
    fn chains_are_chosen_by_server_name_then_client_address_as_envoy_chooses() {
        let l = TcpProxyListener::compile(
            &listener(vec![
                chain("exact", &["api.example.com"], &[]),
                chain("wild", &["*.example.com"], &[]),
                chain("deeper", &["*.eu.example.com"], &[]),
                chain("office", &[], &[("10.0.0.0", 8)]),
                chain("desk", &[], &[("10.1.0.0", 16)]),
                chain("rest", &[], &[]),
            ]),
            "v1",
            &crate::filter::Upstreams::default(),
        )
        .expect("a TCP listener");
        assert_eq!(
            chosen(&l, Some("API.example.com"), "192.0.2.1").as_deref(),
            Some("exact")
        );
        assert_eq!(
            chosen(&l, Some("www.example.com"), "192.0.2.1").as_deref(),
            Some("wild")
        );
        assert_eq!(
            chosen(&l, Some("a.eu.example.com"), "192.0.2.1").as_deref(),
            Some("deeper")
        );
        // No name matches: the chains without names, by the longest prefix of the client.
        assert_eq!(
            chosen(&l, Some("other.org"), "10.1.2.3").as_deref(),
            Some("desk")
        );
        assert_eq!(chosen(&l, None, "10.2.2.3").as_deref(), Some("office"));
        assert_eq!(chosen(&l, None, "192.0.2.1").as_deref(), Some("rest"));

        let named_only = TcpProxyListener::compile(
            &listener(vec![chain("exact", &["api.example.com"], &[])]),
            "v1",
            &crate::filter::Upstreams::default(),
        )
        .expect("a TCP listener");
        assert_eq!(chosen(&named_only, None, "192.0.2.1"), None);
    }

    #[test]
    fn what_cannot_be_served_is_refused_naming_it() {
        let mut by_port = chain("c", &[], &[]);
        if let Some(m) = by_port.filter_chain_match.as_mut() {
            m.destination_port = Some(UInt32Value { value: 443 });
        }
        let error = TcpProxyListener::compile(&listener(vec![by_port]), "v1", &Default::default())
            .unwrap_err();
        assert_eq!(
            error,
            "filter_chains[0]: filter_chain_match.destination_port is not supported"
        );
        let mut redis = chain("c", &[], &[]);
        redis.filters.insert(
            0,
            Filter {
                name: "envoy.filters.network.redis_proxy".into(),
                config_type: None,
            },
        );
        let error = TcpProxyListener::compile(&listener(vec![redis]), "v1", &Default::default())
            .unwrap_err();
        assert!(
            error.contains("network filter \"envoy.filters.network.redis_proxy\""),
            "{error}"
        );
        assert!(is_tcp_listener(&listener(vec![chain("c", &[], &[])])));
        assert!(!is_tcp_listener(&listener(Vec::new())));
    }

    /// A connected pair: the server's side, and the client's.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let client = TcpStream::connect(address).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (server, client)
    }

    #[tokio::test]
    async fn the_client_hello_gives_its_server_name_and_other_first_bytes_none() {
        // A real client hello, from rustls.
        let (mut server, client) = pair().await;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("api.example.com").expect("a name");
        let connecting = tokio::spawn(async move {
            tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, client)
                .await
        });
        match read_hello(&mut server, Duration::from_secs(5)).await {
            Hello::Read(bytes, sni) => {
                assert_eq!(sni.as_deref(), Some("api.example.com"));
                assert_eq!(bytes.first(), Some(&0x16), "the hello's bytes are kept");
            }
            _ => panic!("a client hello"),
        }
        connecting.abort();

        // Plain bytes: no name, and the bytes kept to be passed on.
        let (mut server, mut client) = pair().await;
        client
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        match read_hello(&mut server, Duration::from_secs(5)).await {
            Hello::Read(bytes, None) => assert!(bytes.starts_with(b"GET /")),
            _ => panic!("plain bytes"),
        }

        // Nothing before the timeout, or a client that closes at once.
        let (mut server, _client) = pair().await;
        assert!(matches!(
            read_hello(&mut server, Duration::from_millis(50)).await,
            Hello::TimedOut(_)
        ));
        let (mut server, client) = pair().await;
        drop(client);
        assert!(matches!(
            read_hello(&mut server, Duration::from_secs(5)).await,
            Hello::Closed
        ));
    }

    #[test]
    fn weighted_clusters_are_picked_by_weight() {
        for _ in 0..50 {
            assert_eq!(
                crate::router::action::pick_by_weight([0, 3].into_iter(), 3),
                Some(1)
            );
        }
        assert_eq!(
            crate::router::action::pick_by_weight([0, 0].into_iter(), 0),
            None
        );
    }
}

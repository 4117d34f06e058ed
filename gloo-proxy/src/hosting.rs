//! What the gRPC services `gloo run` and `gloo control-plane` host in-process (the rate limit
//! service, the ext auth service) share: where they listen ([`Listen`]), and one listener
//! each, bound when asked and retried every second while the address cannot be bound (a port
//! still held by the process this one replaces, say), as the proxy's listeners are.
//!
//! ```
//! use gloo_proxy::hosting::{loopback_address, Listen};
//!
//! // `--ratelimit-server` and `--extauth-server` take `auto` (the default), `off` or an address.
//! assert_eq!("auto".parse::<Listen>(), Ok(Listen::default()));
//! assert_eq!("off".parse::<Listen>(), Ok(Listen::Off));
//! assert_eq!("127.0.0.1:18081".parse(), Ok(Listen::At(([127, 0, 0, 1], 18081).into())));
//! assert!("anywhere".parse::<Listen>().is_err());
//!
//! // `auto` listens where the proxies call the service, when that is this machine: the first
//! // loopback host of the upstream the Settings name.
//! let hosts = vec![("10.0.0.5".to_string(), 8083), ("localhost".to_string(), 8084)];
//! assert_eq!(loopback_address(&hosts), Some(([127, 0, 0, 1], 8084).into()));
//! assert_eq!(loopback_address(&hosts[..1]), None);
//! ```

use std::net::SocketAddr;
use std::str::FromStr;

/// Where a hosted service listens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Listen {
    /// Where the configuration says the proxies call it (each service's docs say how).
    #[default]
    Auto,
    /// Nowhere: the service is not hosted.
    Off,
    /// On this address, from the start.
    At(SocketAddr),
}

impl FromStr for Listen {
    type Err = String;

    /// `off`, `auto`, or an address (`127.0.0.1:18081`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Self::Off),
            "auto" => Ok(Self::Auto),
            addr => addr
                .parse()
                .map(Self::At)
                .map_err(|_| format!("{s:?} is not an address (host:port), `off` or `auto`")),
        }
    }
}

/// The address of the first `(host, port)` on the loopback interface (`127.0.0.1`, `::1`,
/// `localhost`): where a hosted service can listen so that proxies calling those hosts reach
/// it. `None` when no host is local (the service runs elsewhere).
pub fn loopback_address(hosts: &[(String, u32)]) -> Option<SocketAddr> {
    hosts.iter().find_map(|(host, port)| {
        let port = u16::try_from(*port).ok().filter(|p| *p != 0)?;
        let ip = if host.eq_ignore_ascii_case("localhost") {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        } else {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .ok()
                .filter(|ip| ip.is_loopback())?
        };
        Some(SocketAddr::new(ip, port))
    })
}

#[cfg(any(feature = "ratelimit", feature = "extauth-server"))]
pub(crate) use self::host::{serve_grpc, Host};

#[cfg(any(feature = "ratelimit", feature = "extauth-server"))]
mod host {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex, PoisonError};

    use tokio_stream::wrappers::TcpListenerStream;

    /// Starts serving on a bound listener; returns the serving task.
    type Serve = dyn Fn(TcpListenerStream) -> tokio::task::JoinHandle<()> + Send + Sync;

    /// An address that could not be bound.
    #[derive(Debug)]
    struct BindError {
        addr: SocketAddr,
        source: std::io::Error,
    }

    /// One hosted service's listener.
    pub(crate) struct Host {
        /// What is hosted, for logs ("rate limit service").
        name: &'static str,
        serve: Box<Serve>,
        state: Mutex<State>,
    }

    #[derive(Default)]
    struct State {
        /// Where it listens (asked, bound), and the task serving there.
        serving: Option<(SocketAddr, SocketAddr, tokio::task::JoinHandle<()>)>,
        /// The address being retried, and the task that retries it.
        retrying: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    }

    impl Drop for Host {
        fn drop(&mut self) {
            let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
            stop(state);
        }
    }

    fn stop(state: &mut State) {
        if let Some((_, _, task)) = state.serving.take() {
            task.abort();
        }
        if let Some((_, task)) = state.retrying.take() {
            task.abort();
        }
    }

    impl Host {
        /// A host of `name` that serves with `serve` once it listens.
        pub(crate) fn new(
            name: &'static str,
            serve: impl Fn(TcpListenerStream) -> tokio::task::JoinHandle<()> + Send + Sync + 'static,
        ) -> Self {
            Self {
                name,
                serve: Box::new(serve),
                state: Mutex::default(),
            }
        }

        /// Where it listens, once it does.
        pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
            self.lock().serving.as_ref().map(|(_, bound, _)| *bound)
        }

        /// Whether it listens, or tries to, anywhere.
        #[cfg_attr(not(feature = "ratelimit"), allow(dead_code))]
        pub(crate) fn is_wanted(&self) -> bool {
            let state = self.lock();
            state.serving.is_some() || state.retrying.is_some()
        }

        /// Serves on `addr` now, or retries every second in the background until it can (the
        /// error is logged). When it listens (or retries) elsewhere, that stops first.
        pub(crate) fn listen_on(self: &Arc<Self>, addr: SocketAddr) -> Option<SocketAddr> {
            {
                let mut state = self.lock();
                match (&state.serving, &state.retrying) {
                    (Some((asked, bound, _)), _) if *asked == addr => return Some(*bound),
                    (_, Some((asked, _))) if *asked == addr => return None,
                    _ => stop(&mut state),
                }
            }
            match self.serve_on(addr) {
                Ok(local) => return Some(local),
                Err(e) => eprintln!(
                    "{}: cannot listen on {}: {}; retrying every second",
                    self.name, e.addr, e.source
                ),
            }
            let host = Arc::downgrade(self);
            let task = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    let Some(host) = host.upgrade() else {
                        return;
                    };
                    if host.serve_on(addr).is_ok() {
                        host.lock().retrying = None;
                        return;
                    }
                }
            });
            self.lock().retrying = Some((addr, task));
            None
        }

        /// Stops listening (and retrying).
        #[cfg_attr(not(feature = "extauth-server"), allow(dead_code))]
        pub(crate) fn stop(&self) {
            stop(&mut self.lock());
        }

        /// Starts serving on `addr` (once).
        fn serve_on(&self, addr: SocketAddr) -> Result<SocketAddr, BindError> {
            let mut state = self.lock();
            if let Some((_, bound, _)) = &state.serving {
                return Ok(*bound);
            }
            let bind = |source| BindError { addr, source };
            let std_listener = std::net::TcpListener::bind(addr).map_err(bind)?;
            std_listener.set_nonblocking(true).map_err(bind)?;
            let local = std_listener.local_addr().map_err(bind)?;
            let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind)?;
            let task = (self.serve)(TcpListenerStream::new(listener));
            eprintln!("{} listening on {local}", self.name);
            state.serving = Some((addr, local, task));
            Ok(local)
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    /// Serves one tonic service on `incoming` until it fails (logged as `name`).
    pub(crate) async fn serve_grpc<S>(name: &'static str, service: S, incoming: TcpListenerStream)
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        if let Err(e) = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
        {
            eprintln!("{name} stopped: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_options_parse() {
        assert_eq!("off".parse(), Ok(Listen::Off));
        assert_eq!("auto".parse(), Ok(Listen::Auto));
        assert_eq!(
            "127.0.0.1:1".parse(),
            Ok(Listen::At("127.0.0.1:1".parse().expect("addr")))
        );
        assert!("nowhere".parse::<Listen>().is_err());
    }

    #[test]
    fn only_loopback_hosts_give_an_address() {
        let hosts = |h: &[(&str, u32)]| -> Vec<(String, u32)> {
            h.iter().map(|(a, p)| (a.to_string(), *p)).collect()
        };
        assert_eq!(
            loopback_address(&hosts(&[("10.0.0.1", 8083), ("localhost", 8084)])),
            Some("127.0.0.1:8084".parse().expect("addr"))
        );
        assert_eq!(
            loopback_address(&hosts(&[("::1", 9)])),
            Some("[::1]:9".parse().expect("addr"))
        );
        assert_eq!(
            loopback_address(&hosts(&[("127.0.0.2", 9)])),
            Some("127.0.0.2:9".parse().expect("addr"))
        );
        assert_eq!(loopback_address(&hosts(&[("extauth", 8083)])), None);
        assert_eq!(loopback_address(&hosts(&[("127.0.0.1", 70000)])), None);
        assert_eq!(loopback_address(&hosts(&[("127.0.0.1", 0)])), None);
    }
}

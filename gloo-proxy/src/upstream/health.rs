//! Background upkeep of a cluster: active health checks, the end of outlier ejections, and
//! DNS refresh. Each loop holds the cluster weakly and ends when the cluster is replaced.
//!
//! A cluster's first `health_checks` entry is compiled with it; the checks run once the
//! proxy's [`Compiler`](crate::config::Compiler) puts the cluster in force (endpoints are
//! healthy until they fail `unhealthy_threshold` checks in a row).
//!
//! ```
//! use envoy_types::pb::envoy::config::cluster::v3::Cluster as PbCluster;
//! use envoy_types::pb::envoy::config::core::v3::{health_check, HealthCheck};
//! use envoy_types::pb::google::protobuf::{Duration, UInt32Value};
//! use gloo_proxy::stats::Stats;
//! use gloo_proxy::upstream::Cluster;
//!
//! // Gloo's `healthChecks` on an Upstream: `GET /healthz` every 5 s, out after 2 failures.
//! let http = HealthCheck {
//!     timeout: Some(Duration { seconds: 1, nanos: 0 }),
//!     interval: Some(Duration { seconds: 5, nanos: 0 }),
//!     unhealthy_threshold: Some(UInt32Value { value: 2 }),
//!     healthy_threshold: Some(UInt32Value { value: 1 }),
//!     health_checker: Some(health_check::HealthChecker::HttpHealthCheck(
//!         health_check::HttpHealthCheck {
//!             path: "/healthz".into(),
//!             ..Default::default()
//!         },
//!     )),
//!     ..Default::default()
//! };
//! let pb = PbCluster {
//!     name: "petstore".into(),
//!     health_checks: vec![http.clone()],
//!     ..Default::default()
//! };
//! let stats = Stats::default();
//! assert!(Cluster::compile(&pb, "v1", &stats, 1).is_ok());
//!
//! // A check the proxy cannot run refuses the cluster, rather than leaving it unchecked.
//! let custom = HealthCheck {
//!     health_checker: Some(health_check::HealthChecker::CustomHealthCheck(Default::default())),
//!     ..http
//! };
//! let pb = PbCluster {
//!     health_checks: vec![custom],
//!     ..pb
//! };
//! let refused = Cluster::compile(&pb, "v1", &stats, 1).expect_err("an unsupported check");
//! assert_eq!(refused.cluster, "petstore");
//! assert!(refused.message.contains("health checks are supported"), "{refused}");
//! ```

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{health_check, HealthCheck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Cluster, Endpoint};
use crate::router::action::pb_duration;

/// What an active health check sends and expects.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    /// An HTTP GET of `path`, expecting a status in one of `expected` (half-open ranges).
    Http {
        path: String,
        host: String,
        expected: Vec<(u16, u16)>,
    },
    /// A TCP connection, optionally writing `send` and expecting every `receive` payload.
    Tcp {
        send: Vec<u8>,
        receive: Vec<Vec<u8>>,
    },
}

/// A compiled active health check.
#[derive(Debug, Clone)]
pub(crate) struct HealthCheckConfig {
    probe: Probe,
    interval: Duration,
    timeout: Duration,
    unhealthy_threshold: u32,
    healthy_threshold: u32,
}

fn payload(p: &health_check::Payload) -> Vec<u8> {
    match &p.payload {
        Some(health_check::payload::Payload::Text(hex)) => decode_hex(hex),
        Some(health_check::payload::Payload::Binary(b)) => b.clone(),
        None => Vec::new(),
    }
}

fn decode_hex(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex
        .bytes()
        .filter_map(|b| (b as char).to_digit(16).map(|d| d as u8))
        .collect();
    digits
        .chunks(2)
        .map(|c| c[0] << 4 | c.get(1).copied().unwrap_or(0))
        .collect()
}

impl HealthCheckConfig {
    pub(crate) fn compile(hc: &HealthCheck) -> Result<Self, String> {
        let probe = match &hc.health_checker {
            Some(health_check::HealthChecker::HttpHealthCheck(h)) => Probe::Http {
                path: if h.path.is_empty() {
                    "/".into()
                } else {
                    h.path.clone()
                },
                host: h.host.clone(),
                expected: if h.expected_statuses.is_empty() {
                    vec![(200, 201)]
                } else {
                    h.expected_statuses
                        .iter()
                        .map(|r| {
                            (
                                u16::try_from(r.start).unwrap_or(0),
                                u16::try_from(r.end).unwrap_or(0),
                            )
                        })
                        .collect()
                },
            },
            Some(health_check::HealthChecker::TcpHealthCheck(t)) => Probe::Tcp {
                send: t.send.as_ref().map(payload).unwrap_or_default(),
                receive: t.receive.iter().map(payload).collect(),
            },
            Some(health_check::HealthChecker::GrpcHealthCheck(_)) => {
                tracing::info!("gRPC health checks run as TCP connect checks");
                Probe::Tcp {
                    send: Vec::new(),
                    receive: Vec::new(),
                }
            }
            _ => return Err("only HTTP, TCP and gRPC health checks are supported".into()),
        };
        Ok(HealthCheckConfig {
            probe,
            interval: hc
                .interval
                .as_ref()
                .map(pb_duration)
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(10)),
            timeout: hc
                .timeout
                .as_ref()
                .map(pb_duration)
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(1)),
            unhealthy_threshold: hc
                .unhealthy_threshold
                .as_ref()
                .map(|v| v.value)
                .unwrap_or(1)
                .max(1),
            healthy_threshold: hc
                .healthy_threshold
                .as_ref()
                .map(|v| v.value)
                .unwrap_or(1)
                .max(1),
        })
    }
}

async fn probe_once(cluster: &Cluster, endpoint: &Endpoint, probe: &Probe) -> bool {
    match probe {
        Probe::Http {
            path,
            host,
            expected,
        } => {
            let host = if host.is_empty() {
                cluster.name()
            } else {
                host
            };
            let Ok(request) = http::Request::get(format!("{}{path}", endpoint.origin))
                .header(http::header::HOST, host)
                .header(http::header::USER_AGENT, "gloo-health-check")
                .body(crate::body::Body::empty())
            else {
                return false;
            };
            match cluster.send(request, endpoint).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    expected
                        .iter()
                        .any(|(start, end)| status >= *start && status < *end)
                }
                Err(_) => false,
            }
        }
        Probe::Tcp { send, receive } => {
            let Ok(mut stream) = tokio::net::TcpStream::connect(endpoint.address).await else {
                return false;
            };
            if !send.is_empty() && stream.write_all(send).await.is_err() {
                return false;
            }
            let wanted: usize = receive.iter().map(Vec::len).sum();
            if wanted == 0 {
                return true;
            }
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while got.len() < wanted {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            receive
                .iter()
                .all(|r| got.windows(r.len().max(1)).any(|w| w == r.as_slice()))
        }
    }
}

/// Runs the cluster's active health checks until the cluster is dropped.
pub(crate) async fn check_health(cluster: Weak<Cluster>) {
    loop {
        let Some(c) = cluster.upgrade() else { return };
        let Some(config) = c.health_check.clone() else {
            return;
        };
        let mut changed = false;
        for e in c.members().iter() {
            let ok = tokio::time::timeout(config.timeout, probe_once(&c, e, &config.probe))
                .await
                .unwrap_or(false);
            if ok {
                e.hc_failures.store(0, Ordering::Relaxed);
                let successes = e.hc_successes.fetch_add(1, Ordering::Relaxed) + 1;
                if !e.hc_healthy.load(Ordering::Relaxed) && successes >= config.healthy_threshold {
                    e.hc_healthy.store(true, Ordering::Relaxed);
                    tracing::info!(cluster = %c.name(), endpoint = %e.address, "health check passes: healthy");
                    changed = true;
                }
            } else {
                c.stats.health_check_failure.inc();
                e.hc_successes.store(0, Ordering::Relaxed);
                let failures = e.hc_failures.fetch_add(1, Ordering::Relaxed) + 1;
                if e.hc_healthy.load(Ordering::Relaxed) && failures >= config.unhealthy_threshold {
                    e.hc_healthy.store(false, Ordering::Relaxed);
                    tracing::warn!(cluster = %c.name(), endpoint = %e.address, "health check fails: unhealthy");
                    changed = true;
                }
            }
        }
        if changed {
            c.rebuild();
        }
        let interval = config.interval;
        drop(c);
        tokio::time::sleep(interval).await;
    }
}

/// Ends outlier ejections whose time is up, every outlier interval.
pub(crate) async fn end_ejections(cluster: Weak<Cluster>) {
    loop {
        let Some(interval) = cluster
            .upgrade()
            .and_then(|c| c.outlier.as_ref().map(|o| o.interval))
        else {
            return;
        };
        tokio::time::sleep(interval.max(Duration::from_millis(10))).await;
        let Some(c) = cluster.upgrade() else { return };
        c.unject_expired();
    }
}

/// Resolves the cluster's DNS names, at its refresh rate.
pub(crate) async fn refresh_dns(cluster: Weak<Cluster>) {
    loop {
        let Some(c) = cluster.upgrade() else { return };
        c.resolve_dns().await;
        let every = c.dns_refresh();
        drop(c);
        tokio::time::sleep(every).await;
    }
}

/// Starts whatever upkeep a fresh cluster needs (on the current runtime).
pub(crate) fn start(cluster: &Arc<Cluster>) {
    if cluster.health_check.is_some() {
        tokio::spawn(check_health(Arc::downgrade(cluster)));
    }
    if cluster.outlier.is_some() {
        tokio::spawn(end_ejections(Arc::downgrade(cluster)));
    }
    if cluster.needs_dns() {
        tokio::spawn(refresh_dns(Arc::downgrade(cluster)));
    }
}

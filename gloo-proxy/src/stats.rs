//! Counters and latency histograms, rendered for Prometheus by the admin endpoint.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use gloo_proxy::stats::Stats;
//!
//! let stats = Stats::default();
//! stats.downstream.rq_total.inc();
//! // A cluster's stats are created on first use and kept across versions of the cluster.
//! let petstore = stats.cluster("petstore");
//! petstore.upstream_rq_total.inc();
//! petstore.record_status(503);
//! petstore.upstream_rq_time.record(Duration::from_millis(3));
//! assert!(Arc::ptr_eq(&petstore, &stats.cluster("petstore")));
//!
//! // What `/stats/prometheus` serves.
//! let text = stats.to_prometheus();
//! let lines: Vec<&str> = text.lines().collect();
//! assert!(lines.contains(&"gloo_http_downstream_rq_total 1"));
//! assert!(lines.contains(&r#"gloo_cluster_upstream_rq_5xx{cluster_name="petstore"} 1"#));
//! // Latency buckets are cumulative, in milliseconds: 3 ms counts from `le="5"` up.
//! let bucket = r#"gloo_cluster_upstream_rq_time_bucket{cluster_name="petstore""#;
//! assert!(lines.contains(&format!(r#"{bucket},le="1"}} 0"#).as_str()));
//! assert!(lines.contains(&format!(r#"{bucket},le="5"}} 1"#).as_str()));
//! assert!(lines.contains(&format!(r#"{bucket},le="+Inf"}} 1"#).as_str()));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the latency buckets, in milliseconds (Envoy's default bucket set).
const BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 19],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn record(&self, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        let i = BUCKETS_MS.partition_point(|b| *b < ms);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_MS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum_ms = self.sum_us.load(Ordering::Relaxed) as f64 / 1000.0;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum_ms}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Per-cluster statistics (names follow Envoy's `cluster.<name>.*` stats).
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Requests sent upstream (attempts, retries included).
    pub upstream_rq_total: Counter,
    /// Answers by class.
    pub upstream_rq_2xx: Counter,
    /// 3xx answers.
    pub upstream_rq_3xx: Counter,
    /// 4xx answers.
    pub upstream_rq_4xx: Counter,
    /// 5xx answers.
    pub upstream_rq_5xx: Counter,
    /// Connections that could not be made.
    pub upstream_cx_connect_fail: Counter,
    /// Requests that timed out.
    pub upstream_rq_timeout: Counter,
    /// Retries.
    pub upstream_rq_retry: Counter,
    /// Requests refused by the circuit breaker.
    pub upstream_rq_pending_overflow: Counter,
    /// Endpoints ejected by outlier detection.
    pub outlier_detection_ejections_total: Counter,
    /// Failed active health checks.
    pub health_check_failure: Counter,
    /// Endpoints in the cluster.
    pub membership_total: AtomicU64,
    /// Endpoints available (healthy and not ejected).
    pub membership_healthy: AtomicU64,
    /// Upstream response time (to the end of the headers).
    pub upstream_rq_time: Histogram,
}

impl ClusterStats {
    /// Counts an upstream answer by its class.
    pub fn record_status(&self, status: u16) {
        match status {
            200..=299 => self.upstream_rq_2xx.inc(),
            300..=399 => self.upstream_rq_3xx.inc(),
            400..=499 => self.upstream_rq_4xx.inc(),
            500..=599 => self.upstream_rq_5xx.inc(),
            _ => {}
        }
    }
}

/// Downstream (listener side) statistics.
#[derive(Debug, Default)]
pub struct DownstreamStats {
    /// Requests received.
    pub rq_total: Counter,
    /// Responses by class.
    pub rq_2xx: Counter,
    /// 3xx responses.
    pub rq_3xx: Counter,
    /// 4xx responses.
    pub rq_4xx: Counter,
    /// 5xx responses.
    pub rq_5xx: Counter,
    /// Connections accepted.
    pub cx_total: Counter,
    /// Request time, to the end of the response headers.
    pub rq_time: Histogram,
}

/// All statistics of one proxy. Cluster stats survive config changes of their cluster.
#[derive(Debug, Default)]
pub struct Stats {
    clusters: Mutex<BTreeMap<String, Arc<ClusterStats>>>,
    /// Listener-side stats.
    pub downstream: DownstreamStats,
}

impl Stats {
    /// The stats of a cluster (created on first use).
    pub fn cluster(&self, name: &str) -> Arc<ClusterStats> {
        let mut clusters = match self.clusters.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        clusters.entry(name.to_string()).or_default().clone()
    }

    /// Everything in Prometheus' text format.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let d = &self.downstream;
        for (name, help, value) in [
            (
                "gloo_http_downstream_rq_total",
                "Requests received",
                d.rq_total.get(),
            ),
            (
                "gloo_http_downstream_cx_total",
                "Connections accepted",
                d.cx_total.get(),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(out, "# TYPE gloo_http_downstream_rq_xx counter");
        for (class, c) in [
            ("2", &d.rq_2xx),
            ("3", &d.rq_3xx),
            ("4", &d.rq_4xx),
            ("5", &d.rq_5xx),
        ] {
            let _ = writeln!(
                out,
                "gloo_http_downstream_rq_xx{{response_code_class=\"{class}xx\"}} {}",
                c.get()
            );
        }
        // ModSecurity parses rules when a config brings new ones, never per request.
        #[cfg(feature = "waf")]
        {
            let name = "gloo_waf_rule_set_compiles_total";
            let _ = writeln!(
                out,
                "# HELP {name} WAF rule sets parsed by ModSecurity\n# TYPE {name} counter\n{name} {}",
                gloo_filters::waf::WafRules::compiled_total()
            );
            // Evaluation runs at the lowest CPU priority: its backlog is the WAF's saturation.
            let name = "gloo_waf_evaluations_waiting";
            let _ = writeln!(
                out,
                "# HELP {name} WAF evaluations queued and not started\n# TYPE {name} gauge\n{name} {}",
                gloo_filters::waf::evaluations_waiting()
            );
        }
        let _ = writeln!(out, "# TYPE gloo_http_downstream_rq_time histogram");
        d.rq_time
            .render(&mut out, "gloo_http_downstream_rq_time", "listener=\"all\"");
        let clusters = match self.clusters.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        type Field = fn(&ClusterStats) -> u64;
        let counters: [(&str, Field); 11] = [
            ("upstream_rq_total", |s| s.upstream_rq_total.get()),
            ("upstream_rq_2xx", |s| s.upstream_rq_2xx.get()),
            ("upstream_rq_3xx", |s| s.upstream_rq_3xx.get()),
            ("upstream_rq_4xx", |s| s.upstream_rq_4xx.get()),
            ("upstream_rq_5xx", |s| s.upstream_rq_5xx.get()),
            ("upstream_cx_connect_fail", |s| {
                s.upstream_cx_connect_fail.get()
            }),
            ("upstream_rq_timeout", |s| s.upstream_rq_timeout.get()),
            ("upstream_rq_retry", |s| s.upstream_rq_retry.get()),
            ("upstream_rq_pending_overflow", |s| {
                s.upstream_rq_pending_overflow.get()
            }),
            ("outlier_detection_ejections_total", |s| {
                s.outlier_detection_ejections_total.get()
            }),
            ("health_check_failure", |s| s.health_check_failure.get()),
        ];
        for (stat, get) in counters {
            let _ = writeln!(out, "# TYPE gloo_cluster_{stat} counter");
            for (name, s) in &clusters {
                let _ = writeln!(
                    out,
                    "gloo_cluster_{stat}{{cluster_name=\"{}\"}} {}",
                    escape(name),
                    get(s)
                );
            }
        }
        let gauges: [(&str, Field); 2] = [
            ("membership_total", |s| {
                s.membership_total.load(Ordering::Relaxed)
            }),
            ("membership_healthy", |s| {
                s.membership_healthy.load(Ordering::Relaxed)
            }),
        ];
        for (stat, get) in gauges {
            let _ = writeln!(out, "# TYPE gloo_cluster_{stat} gauge");
            for (name, s) in &clusters {
                let _ = writeln!(
                    out,
                    "gloo_cluster_{stat}{{cluster_name=\"{}\"}} {}",
                    escape(name),
                    get(s)
                );
            }
        }
        let _ = writeln!(out, "# TYPE gloo_cluster_upstream_rq_time histogram");
        for (name, s) in &clusters {
            s.upstream_rq_time.render(
                &mut out,
                "gloo_cluster_upstream_rq_time",
                &format!("cluster_name=\"{}\"", escape(name)),
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

//! One translation from scratch of the `translate` bench's workload, for counting allocations
//! with an external heap profiler (the benches link no counting allocator), and a dump of
//! everything a translation produces, for comparing two builds:
//!
//! ```text
//! cargo bench -p gloo-benches --bench translate_once --no-run
//! valgrind --tool=dhat --dhat-out-file=/dev/null <bench binary> 10000        # parse + translate
//! valgrind --tool=dhat --dhat-out-file=/dev/null <bench binary> 10000 parse  # parse only
//! <bench binary> 1000 dump | sha256sum       # the workload's xDS bytes, versions and statuses
//! <bench binary> dump a.yaml b.yaml | sha256sum   # the same for each file on its own
//! <bench binary> 10000 time 15                # median and fastest of 15 translations
//! /usr/bin/time -v <bench binary> 10000       # peak memory ("Maximum resident set size")
//! ```
//!
//! `time` prints µs per route of translations from scratch (a new `Translator` each, as the
//! `translate` bench does) without criterion: by wall clock, and by time on a CPU (Linux's
//! schedstat), which a machine shared with other builds inflates far less, so the 1k/10k ratio
//! can be read there. Profile the same runs with `perf record -e cpu-clock <bench binary> 10000
//! time 30`, or count instructions per route with `valgrind --tool=callgrind`.
//!
//! For allocations, the difference of the two totals ("Total: … bytes in … blocks") divided by
//! the route count is what translation allocates per route.

#[path = "workload.rs"]
mod workload;

use gloo_core::load::{parse_str, Format};
use gloo_core::source::SourceSnapshot;
use gloo_core::translate::{Translation, Translator};

/// Every resource's name, version and wire bytes, then every status, in a stable order.
fn dump(translation: &Translation) {
    use gloo_core::xds::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};
    for (proxy, resources) in &translation.proxies {
        println!("proxy {proxy}");
        for type_url in [LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE] {
            for (name, version, any) in resources.by_type_url(type_url) {
                println!("{type_url} {name} {version} {:?}", any.value);
            }
        }
        for (name, v) in &resources.api_listeners {
            println!("api listener {name} {}", v.version);
        }
    }
    println!("{:#?}", translation.reports);
    println!("{:#?}", translation.rate_limit_server_configs);
}

/// Nanoseconds this thread has spent on a CPU (Linux's `/proc/thread-self/schedstat`), which
/// unlike wall-clock time leaves out the time other processes had the core.
fn on_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("dump") {
        for file in &args[1..] {
            let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file}: {e}"));
            let parsed = parse_str(&text, file.as_str(), Format::Yaml);
            let snapshot = SourceSnapshot {
                resources: parsed.resources,
                errors: parsed.errors,
                generation: 1,
            };
            println!("file {file}");
            dump(&Translator::new().translate(&snapshot));
        }
        return;
    }
    let routes: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let mode = args.get(1).map(String::as_str);
    let snapshot = workload::snapshot("", routes, (routes / 2).max(1));
    if mode == Some("parse") {
        println!("parsed {} resources", snapshot.resources.len());
        return;
    }
    if mode == Some("time") {
        let runs: usize = args
            .get(2)
            .and_then(|a| a.parse().ok())
            .unwrap_or(11)
            .max(1);
        // Wall clock per run; time on a CPU over all runs (schedstat lags by up to a
        // scheduler tick, too coarse for one run of 1,000 routes).
        let mut wall = Vec::with_capacity(runs);
        let start_cpu = on_cpu_ns();
        for _ in 0..runs {
            let start = std::time::Instant::now();
            std::hint::black_box(Translator::new().translate(&snapshot));
            wall.push(start.elapsed().as_secs_f64() * 1e6);
        }
        let cpu = start_cpu
            .zip(on_cpu_ns())
            .map(|(a, b)| b.saturating_sub(a) as f64 / 1e3 / runs as f64);
        wall.sort_by(f64::total_cmp);
        let (median, fastest) = (wall[runs / 2], wall[0]);
        println!(
            "{routes} routes, {runs} runs, wall clock: median {:.2} µs/route ({:.1} ms), fastest {:.2} µs/route ({:.1} ms)",
            median / routes as f64,
            median / 1e3,
            fastest / routes as f64,
            fastest / 1e3,
        );
        if let Some(cpu) = cpu {
            println!(
                "{routes} routes, {runs} runs, on a CPU: mean {:.2} µs/route ({:.1} ms)",
                cpu / routes as f64,
                cpu / 1e3
            );
        }
        return;
    }
    let translation = Translator::new().translate(&snapshot);
    if mode == Some("dump") {
        dump(&translation);
    } else {
        println!(
            "translated {} resources into {} proxies",
            snapshot.resources.len(),
            translation.proxies.len()
        );
    }
}

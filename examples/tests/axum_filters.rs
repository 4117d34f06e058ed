//! The axum example end to end: gloo-filters' rate limit in a plain axum app.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The example process, killed when dropped.
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_rate_limit_layer_limits_each_client_of_an_axum_app() {
    // Port 0: the example prints the address it got.
    let mut child = Command::new(env!("CARGO_BIN_EXE_axum_filters"))
        .arg("127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start axum_filters");
    let stdout = child.stdout.take().expect("stdout");
    let app = App(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the listening line");
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));

    let start = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(support::get(port, "/hello").expect("an answer"));
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    // Three tokens for this client (one refills every 10 s, far longer than this loop).
    assert!(
        start.elapsed() < Duration::from_secs(9),
        "too slow to be exact"
    );
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(answers[0].2, "hello from axum\n");
    let has = |i: usize, header: &str| answers[i].1.iter().any(|h| h == header);
    assert!(has(0, "x-ratelimit-limit: 3"), "{:?}", answers[0].1);
    assert!(has(0, "x-ratelimit-remaining: 2"), "{:?}", answers[0].1);
    assert!(has(2, "x-ratelimit-remaining: 0"), "{:?}", answers[2].1);
    assert!(has(3, "x-ratelimit-reset: 10"), "{:?}", answers[3].1);
    assert!(
        answers[3].1.iter().any(|h| h.starts_with("retry-after: ")),
        "{:?}",
        answers[3].1
    );
    assert_eq!(answers[3].2, "local_rate_limited");
    drop(app);
}

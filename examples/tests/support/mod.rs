//! What the example tests share (with gloo-proxy's end-to-end helpers, which the deployment
//! pattern tests include by `#[path]`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// `GET path` on 127.0.0.1:port: status, lower-cased header lines, body.
pub fn get(port: u16, path: &str) -> std::io::Result<(u16, Vec<String>, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((
        status,
        lines.map(str::to_ascii_lowercase).collect(),
        body.to_string(),
    ))
}

/// Copies the shipped example config directory `examples/<example>` (recursively, YAML files
/// only) into `dest`, replacing each `(from, to)` literally: the tests run the config the README
/// shows on free ports. Panics if some `from` occurs nowhere, so the test and the shipped config
/// cannot drift apart silently.
pub fn copy_example(example: &str, dest: &std::path::Path, replacements: &[(String, String)]) {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(example);
    let mut used = vec![false; replacements.len()];
    copy_dir(&source, dest, replacements, &mut used);
    for ((from, _), used) in replacements.iter().zip(used) {
        assert!(used, "`{from}` occurs nowhere in examples/{example}");
    }
}

fn copy_dir(
    source: &std::path::Path,
    dest: &std::path::Path,
    replacements: &[(String, String)],
    used: &mut [bool],
) {
    std::fs::create_dir_all(dest).expect("create the config directory");
    let entries =
        std::fs::read_dir(source).unwrap_or_else(|e| panic!("read {}: {e}", source.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        let target = dest.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target, replacements, used);
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "cfg")
        {
            let mut text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            for (i, (from, to)) in replacements.iter().enumerate() {
                if text.contains(from.as_str()) {
                    used[i] = true;
                    text = text.replace(from.as_str(), to);
                }
            }
            std::fs::write(&target, text)
                .unwrap_or_else(|e| panic!("write {}: {e}", target.display()));
        }
    }
}

/// The real HAProxy 2.6 binary (`GLOO_TEST_HAPROXY`, exported by `scripts/test.sh`).
pub fn haproxy() -> std::path::PathBuf {
    match std::env::var_os("GLOO_TEST_HAPROXY") {
        Some(path) => std::path::PathBuf::from(path),
        None => panic!(
            "GLOO_TEST_HAPROXY is not set: run the suite with scripts/test.sh, which installs HAProxy and sets it"
        ),
    }
}

/// A port nobody listens on, given to no other test process while this one runs.
// Not every test binary that includes this module starts a server of its own.
#[allow(unused_imports)]
pub use gloo_test_ports::free_port;

/// An HTTP/1.1 keep-alive backend on a free port answering every GET with `body`; returns
/// its port.
pub fn backend(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a backend");
    let port = listener.local_addr().expect("backend address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut stream = stream;
                loop {
                    // A GET: the request ends at the blank line.
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line)? == 0 {
                            return Ok::<_, std::io::Error>(());
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    )?;
                }
            });
        }
    });
    port
}

/// An example process, killed when dropped.
pub struct Gateway(pub std::process::Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

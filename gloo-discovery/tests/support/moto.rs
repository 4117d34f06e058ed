//! A real AWS API mock for the EC2 and Lambda tests: `moto_server` (`GLOO_TEST_MOTO_SERVER`,
//! installed by `scripts/test.sh`) on a free loopback port, killed by PID on drop; driven
//! with boto3 through `scripts/moto_admin.py`. With [`Moto::start`], moto checks the SigV4
//! signature of every call after the bootstrap (`INITIAL_NO_AUTH_ACTION_COUNT`), so a call
//! gloo signs wrongly fails.
//!
//! Also a [`FaultProxy`] in front of it that can answer as a throttled or unreachable AWS.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The IAM user's keys and the role moto's bootstrap created.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Access key ID.
    pub key: String,
    /// Secret access key.
    pub secret: String,
    /// An allow-all role anyone may assume.
    pub role: String,
}

/// A running `moto_server`.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
    /// The bootstrap's keys.
    pub keys: Keys,
}

fn moto_server() -> PathBuf {
    match std::env::var_os("GLOO_TEST_MOTO_SERVER") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "GLOO_TEST_MOTO_SERVER is not set: run the suite with scripts/test.sh, which installs moto (the AWS API mock) and sets it"
        ),
    }
}

fn admin_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/moto_admin.py")
}

use gloo_test_ports::free_port;

impl Moto {
    /// moto checking signatures, bootstrapped with an IAM user (its keys in [`Moto::keys`])
    /// and a role.
    pub fn start() -> Moto {
        Self::bootstrap(Self::spawn(Some(5)))
    }

    /// moto accepting any signature (for what its signature check gets wrong, and its
    /// instance metadata endpoint), bootstrapped the same way.
    pub fn start_open() -> Moto {
        Self::bootstrap(Self::spawn(None))
    }

    fn bootstrap(mut moto: Moto) -> Moto {
        let keys = moto.admin("bootstrap", serde_json::json!({}));
        moto.keys = Keys {
            key: keys["key"].as_str().expect("key").into(),
            secret: keys["secret"].as_str().expect("secret").into(),
            role: keys["role"].as_str().expect("role").into(),
        };
        moto
    }

    fn spawn(no_auth_actions: Option<u32>) -> Moto {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("moto.log");
        let port = free_port();
        let mut command = Command::new(moto_server());
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::from(std::fs::File::create(&log).expect("log file")))
            .stderr(Stdio::from(
                std::fs::File::options()
                    .append(true)
                    .open(&log)
                    .expect("log file"),
            ));
        if let Some(count) = no_auth_actions {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", count.to_string());
        }
        let child = command.spawn().expect("start moto_server");
        let mut moto = Moto {
            child,
            port,
            log,
            _dir: dir,
            keys: Keys {
                key: String::new(),
                secret: String::new(),
                role: String::new(),
            },
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited ({status}): {}", moto.logs());
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen: {}",
                moto.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// moto's log.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `moto_admin.py <command>` (boto3, with this moto's keys unless `args` names
    /// others) and returns its JSON answer. Blocks: call it from a blocking context or
    /// `spawn_blocking`.
    pub fn admin(&self, command: &str, mut args: serde_json::Value) -> serde_json::Value {
        if let Some(map) = args.as_object_mut() {
            if !self.keys.key.is_empty() {
                map.entry("key").or_insert(self.keys.key.clone().into());
                map.entry("secret")
                    .or_insert(self.keys.secret.clone().into());
            }
        }
        let python = moto_server().with_file_name("python");
        let out = Command::new(&python)
            .arg(admin_script())
            .args([self.url(), command.to_string(), args.to_string()])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
        assert!(
            out.status.success(),
            "moto_admin.py {command} {args}: {}\nmoto: {}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        serde_json::from_slice(&out.stdout).expect("moto_admin.py prints JSON")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the [`FaultProxy`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Forward to moto.
    None = 0,
    /// Answer as throttled AWS: EC2's `503 RequestLimitExceeded` document, Lambda's `429
    /// TooManyRequestsException`.
    Throttle = 1,
    /// Close the connection without an answer.
    Down = 2,
}

/// A forwarder in front of moto that injects the faults of a real AWS (a test fake, labelled
/// as such: moto itself never throttles). Counts the requests it faulted.
pub struct FaultProxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    faulted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Forwards to `upstream` (`http://host:port`). Needs a tokio runtime.
    pub async fn start(upstream: String) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mode = Arc::new(AtomicU8::new(Fault::None as u8));
        let faulted = Arc::new(AtomicUsize::new(0));
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let (m, f) = (mode.clone(), faulted.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                if m.load(Ordering::SeqCst) == Fault::Down as u8 {
                    f.fetch_add(1, Ordering::SeqCst);
                    drop(stream);
                    continue;
                }
                let (client, upstream, m, f) =
                    (client.clone(), upstream.clone(), m.clone(), f.clone());
                tokio::spawn(async move {
                    let service = service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let (client, upstream, m, f) =
                                (client.clone(), upstream.clone(), m.clone(), f.clone());
                            async move {
                                let (mut parts, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                if m.load(Ordering::SeqCst) == Fault::Throttle as u8 {
                                    f.fetch_add(1, Ordering::SeqCst);
                                    let lambda = parts.uri.path().starts_with("/2015-03-31/");
                                    let response = if lambda {
                                        hyper::Response::builder()
                                        .status(429)
                                        .header("x-amzn-errortype", "TooManyRequestsException")
                                        .body(Full::new(Bytes::from_static(b"{\"Type\":\"User\",\"message\":\"Rate exceeded\"}")))
                                    } else {
                                        hyper::Response::builder().status(503).body(Full::new(Bytes::from_static(
                                        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>",
                                    )))
                                    };
                                    return Ok::<_, hyper::Error>(response.expect("response"));
                                }
                                let target = format!(
                                    "{upstream}{}",
                                    parts
                                        .uri
                                        .path_and_query()
                                        .map(|p| p.as_str())
                                        .unwrap_or("/")
                                );
                                parts.uri = target.parse().expect("uri");
                                let forwarded = hyper::Request::from_parts(parts, Full::new(body));
                                let response = match client.request(forwarded).await {
                                    Ok(response) => {
                                        let (parts, body) = response.into_parts();
                                        let body = body
                                            .collect()
                                            .await
                                            .map(|b| b.to_bytes())
                                            .unwrap_or_default();
                                        hyper::Response::from_parts(parts, Full::new(body))
                                    }
                                    Err(e) => hyper::Response::builder()
                                        .status(502)
                                        .body(Full::new(Bytes::from(e.to_string())))
                                        .expect("response"),
                                };
                                Ok(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            addr,
            mode,
            faulted,
            task,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the fault.
    pub fn set(&self, fault: Fault) {
        self.mode.store(fault as u8, Ordering::SeqCst);
    }

    /// How many requests were faulted so far.
    pub fn faulted(&self) -> usize {
        self.faulted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

//! The `gloo` command line: argument parsing and dispatch to the subcommands, as a library
//! function so that other packages can build the same command (the examples crate builds it as
//! `gloo-examples-cli` for its tests: cargo gives a package's tests only that package's
//! binaries). `src/bin/gloo.rs` is [`main`] plus the process-wide allocator settings.
//!
//! A binary of your own that is the `gloo` command (`gloo run --config DIR`, `gloo validate
//! DIR`, ...), with the allocator and start-up hook of your choice:
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! fn main() -> ExitCode {
//!     // Runs once logging is set up, before `run`, `proxy` or `control-plane` serve.
//!     fn before_serving() {
//!         tracing::info!("my gateway starting");
//!     }
//!     gloo_proxy::command::main(before_serving)
//! }
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cli::{self, ResourceFormat, StatusFormat};
use crate::ext_auth_server::{ExtAuthListen, ExtAuthServerOptions};
use crate::gateway::ProxyServer;
use crate::rate_limit_server::{RateLimitListen, RateLimitServerOptions};
/// The ext auth service `run` and `control-plane` host (Gloo's ext auth server).
#[derive(clap::Args)]
struct ExtAuthArgs {
    /// Host the ext auth service (Envoy's `Authorization` gRPC service, loaded with the
    /// config's AuthConfigs) on this address; `off` for none. Default (`auto`): where the
    /// Settings' `extauth.extauthzServerRef` points, when that is a static Upstream on
    /// 127.0.0.1 / localhost (it follows the Upstream when it moves).
    #[arg(
        id = "extauth_server",
        long = "extauth-server",
        value_name = "ADDR|off|auto",
        default_value = "auto"
    )]
    listen: ExtAuthListen,
}

impl ExtAuthArgs {
    fn options(self) -> ExtAuthServerOptions {
        ExtAuthServerOptions {
            listen: self.listen,
        }
    }
}

/// The rate limit service `run` and `control-plane` host (Gloo's rate-limit server).
#[derive(clap::Args)]
struct RateLimitArgs {
    /// Host the rate limit service (Envoy's `RateLimitService`, loaded with the config's
    /// descriptors) on this address; `off` for none. Default (`auto`): 127.0.0.1:18081, Gloo's
    /// rate-limit port, once a Settings names a `ratelimitServer` (point its Upstream there).
    #[arg(
        long = "ratelimit-server",
        value_name = "ADDR|off|auto",
        default_value = "auto"
    )]
    listen: RateLimitListen,
    /// Count in this Redis (`redis://host:port[/db]`, or `host:port`) so every rate limit
    /// service and proxy using it shares one budget. Default: the `REDIS_URL` environment
    /// variable (as Gloo's rate-limit server reads it), else in memory.
    #[arg(long, value_name = "URL")]
    redis_url: Option<String>,
}

impl RateLimitArgs {
    fn options(self) -> RateLimitServerOptions {
        RateLimitServerOptions {
            listen: self.listen,
            redis_url: self
                .redis_url
                .or_else(|| std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty())),
        }
    }
}

/// Config sources and discovery beside the Settings in the config directory (see the README's
/// "Discovery and config sources in `gloo run`").
#[derive(clap::Args)]
struct SourceArgs {
    /// Connect to Kubernetes with this kubeconfig (default: `KUBECONFIG`, `~/.kube/config`,
    /// then the in-cluster service account); also turns Kubernetes discovery on.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Discover Kubernetes Services and endpoints even when the Settings name no
    /// `kubernetesConfigSource` (the cluster found as `--kubeconfig` says).
    #[arg(long)]
    kubernetes: bool,
    /// With a `kubernetesConfigSource`: also serve Kubernetes Ingresses, as Gloo's ingress
    /// controller does.
    #[arg(long)]
    ingress: bool,
    /// The Consul agent (`host:port` or `http://host:port`), in place of the Settings'
    /// `consul.httpAddress`. The ACL token is `consul.token`, else `CONSUL_HTTP_TOKEN`.
    #[arg(long, value_name = "ADDR")]
    consul_address: Option<String>,
    /// Run no discovery plugin (as Gloo's Helm value `discovery.enabled: false`); config
    /// sources still run.
    #[arg(long)]
    no_discovery: bool,
}

impl SourceArgs {
    fn options(self) -> crate::sources::SourceOptions {
        crate::sources::SourceOptions {
            kubeconfig: self.kubeconfig,
            kubernetes: self.kubernetes,
            ingress: self.ingress,
            consul_address: self.consul_address,
            no_discovery: self.no_discovery,
            plugins: Vec::new(),
        }
    }
}

#[derive(Parser)]
#[command(name = "gloo", version, about = "A Gloo Edge compatible API gateway")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every resource's status; exit 1 if any is Rejected.
    Validate {
        /// Directory of Gloo YAML/JSON (searched recursively).
        dir: PathBuf,
        /// Output format.
        #[arg(long, short, value_enum, default_value = "text")]
        output: StatusFormat,
    },
    /// Print the Envoy xDS resources exactly as they would be served.
    Translate {
        /// Directory of Gloo YAML/JSON (searched recursively).
        dir: PathBuf,
        /// Only this proxy (a Gateway `proxyNames` entry); default: all, keyed by name.
        #[arg(long)]
        proxy: Option<String>,
        /// Output format.
        #[arg(long, short, value_enum, default_value = "yaml")]
        output: ResourceFormat,
    },
    /// Run the gateway: watch a config directory and serve it with the built-in proxy.
    Run {
        /// Directory of Gloo YAML/JSON (searched recursively, watched for changes).
        #[arg(long)]
        config: PathBuf,
        /// Which proxy (a Gateway `proxyNames` entry) this process serves.
        #[arg(long, default_value = gloo_core::model::gateway::DEFAULT_PROXY_NAME)]
        proxy: String,
        /// Admin endpoint address (`/ready`, `/config_dump`, `/statuses`, `/stats/prometheus`).
        #[arg(long, default_value_t = crate::run::DEFAULT_ADMIN)]
        admin: std::net::SocketAddr,
        /// Also serve the translation over xDS on this address (for Envoy fleets and shards).
        #[arg(long)]
        xds_addr: Option<std::net::SocketAddr>,
        /// Keep every resource's status in this JSON file.
        #[arg(long)]
        status_file: Option<PathBuf>,
        /// Log every request.
        #[arg(long)]
        access_log: bool,
        /// Worker threads (default: one per CPU).
        #[arg(long)]
        workers: Option<usize>,
        #[command(flatten)]
        rate_limit: RateLimitArgs,
        #[command(flatten)]
        ext_auth: ExtAuthArgs,
        #[command(flatten)]
        sources: SourceArgs,
    },
    /// Run a proxy shard that takes its configuration from `gloo control-plane` over delta ADS.
    Proxy {
        /// The control plane's xDS address.
        #[arg(long, default_value = "http://127.0.0.1:9977")]
        xds: String,
        /// This proxy's role, `<namespace>~<proxy name>`.
        #[arg(long, default_value = "gloo-system~gateway-proxy")]
        role: String,
        /// This proxy's node id (default: `<proxy name>-<pid>`).
        #[arg(long)]
        node_id: Option<String>,
        /// Admin endpoint address.
        #[arg(long, default_value_t = crate::run::DEFAULT_ADMIN)]
        admin: std::net::SocketAddr,
        /// Log every request.
        #[arg(long)]
        access_log: bool,
        /// Worker threads (default: one per CPU).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Watch a config directory and serve its translation over xDS (ADS, SotW and delta).
    ControlPlane {
        /// Directory of Gloo YAML/JSON (searched recursively, watched for changes).
        #[arg(long)]
        config: PathBuf,
        /// Address of the xDS gRPC server.
        #[arg(long, default_value = "127.0.0.1:9977")]
        xds_addr: std::net::SocketAddr,
        /// Keep every resource's status, and clients' NACKs, in this JSON file.
        #[arg(long)]
        status_file: Option<PathBuf>,
        #[command(flatten)]
        rate_limit: RateLimitArgs,
        #[command(flatten)]
        ext_auth: ExtAuthArgs,
        #[command(flatten)]
        sources: SourceArgs,
    },
}

/// Parses the process's arguments and runs that `gloo` subcommand. `before_serving` runs
/// once logging is set up, before a long-lived subcommand (`run`, `proxy`, `control-plane`)
/// starts: the binary starts its memory release thread there.
pub fn main(before_serving: fn()) -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Run {
            config,
            proxy,
            admin,
            xds_addr,
            status_file,
            access_log,
            workers,
            rate_limit,
            ext_auth,
            sources,
        } => {
            let options = crate::run::RunOptions {
                config,
                proxy_name: proxy,
                admin: Some(admin),
                xds_addr,
                status_file,
                access_log,
                rate_limit: rate_limit.options(),
                ext_auth: ext_auth.options(),
                sources: sources.options(),
            };
            serve(
                before_serving,
                Some(1),
                crate::run::run(options, proxy_server(workers)),
            )
        }
        Command::Proxy {
            xds,
            role,
            node_id,
            admin,
            access_log,
            workers,
        } => {
            let defaults = crate::run::ShardOptions::new(xds, role);
            let options = crate::run::ShardOptions {
                node_id: node_id.unwrap_or(defaults.node_id),
                admin: Some(admin),
                access_log,
                ..defaults
            };
            serve(
                before_serving,
                Some(1),
                crate::run::shard(options, proxy_server(workers)),
            )
        }
        Command::ControlPlane {
            config,
            xds_addr,
            status_file,
            rate_limit,
            ext_auth,
            sources,
        } => {
            let rate_limit = rate_limit.options();
            let ext_auth = ext_auth.options();
            serve(
                before_serving,
                None,
                crate::control_plane::run(
                    &config,
                    xds_addr,
                    status_file,
                    &rate_limit,
                    &ext_auth,
                    sources.options(),
                ),
            )
        }
        Command::Validate { dir, output } => {
            let mut stdout = std::io::stdout().lock();
            finish(cli::validate(&dir, output, &mut stdout), false)
        }
        Command::Translate { dir, proxy, output } => {
            let mut stdout = std::io::stdout().lock();
            finish(
                cli::translate(&dir, proxy.as_deref(), output, &mut stdout),
                true,
            )
        }
    }
}

/// The proxy with `workers` worker threads (default: one per CPU).
fn proxy_server(workers: Option<usize>) -> ProxyServer {
    match workers {
        Some(n) => ProxyServer::new().workers(n),
        None => ProxyServer::new(),
    }
}

fn finish(result: Result<bool, cli::CliError>, rejections_are_warnings: bool) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) if rejections_are_warnings => {
            eprintln!("warning: some resources were rejected; run `gloo validate` for details");
            ExitCode::SUCCESS
        }
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

/// Runs a long-lived command on a multi-threaded runtime (of `threads` threads, default one
/// per CPU) with logging to stderr. The proxy's workers run their own runtimes: the one here
/// only carries the control plane, the admin endpoint and the xDS client.
fn serve<E: std::fmt::Display>(
    before_serving: fn(),
    threads: Option<usize>,
    task: impl std::future::Future<Output = Result<(), E>>,
) -> ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    before_serving();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

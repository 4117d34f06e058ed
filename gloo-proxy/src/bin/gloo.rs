//! `gloo`: validate and translate a directory of Gloo Edge YAML.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gloo_proxy::cli::{self, ResourceFormat, StatusFormat};

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
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Command::ControlPlane {
        config,
        xds_addr,
        status_file,
    } = &args.command
    {
        return control_plane(config, *xds_addr, status_file.clone());
    }
    let mut stdout = std::io::stdout().lock();
    let result = match &args.command {
        Command::Validate { dir, output } => cli::validate(dir, *output, &mut stdout),
        Command::Translate { dir, proxy, output } => {
            cli::translate(dir, proxy.as_deref(), *output, &mut stdout)
        }
        Command::ControlPlane { .. } => return ExitCode::SUCCESS,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            if matches!(args.command, Command::Translate { .. }) {
                eprintln!("warning: some resources were rejected; run `gloo validate` for details");
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

fn control_plane(
    config: &std::path::Path,
    xds_addr: std::net::SocketAddr,
    status_file: Option<PathBuf>,
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(gloo_proxy::control_plane::run(
        config,
        xds_addr,
        status_file,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

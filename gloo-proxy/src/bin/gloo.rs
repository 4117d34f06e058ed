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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut stdout = std::io::stdout().lock();
    let result = match &args.command {
        Command::Validate { dir, output } => cli::validate(dir, *output, &mut stdout),
        Command::Translate { dir, proxy, output } => {
            cli::translate(dir, proxy.as_deref(), *output, &mut stdout)
        }
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

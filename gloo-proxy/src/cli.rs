//! The `gloo` subcommands as library functions, so they can be embedded and tested.
//!
//! ```
//! use gloo_proxy::cli::{self, CliError, ResourceFormat, StatusFormat};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(
//!     dir.path().join("petstore.yaml"),
//!     r#"
//! apiVersion: gloo.solo.io/v1
//! kind: Upstream
//! metadata: {name: petstore, namespace: gloo-system}
//! spec: {static: {hosts: [{addr: 127.0.0.1, port: 8081}]}}
//! ---
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata: {name: default, namespace: gloo-system}
//! spec:
//!   virtualHost:
//!     domains: ['*']
//!     routes:
//!     - matchers: [{prefix: /petstore}]
//!       routeAction: {single: {upstream: {name: petstore, namespace: gloo-system}}}
//! "#,
//! )?;
//!
//! // `gloo validate DIR`: every resource's status; `true` when none is rejected.
//! let mut out = Vec::new();
//! assert!(cli::validate(dir.path(), StatusFormat::Text, &mut out)?);
//! let report = String::from_utf8(out)?;
//! assert!(report.contains("VirtualService gloo-system.default: Accepted"), "{report}");
//!
//! // `gloo translate DIR --proxy gateway-proxy -o json`: the Envoy resources it serves.
//! let mut out = Vec::new();
//! cli::translate(dir.path(), Some("gateway-proxy"), ResourceFormat::Json, &mut out)?;
//! let resources: serde_json::Value = serde_json::from_slice(&out)?;
//! assert_eq!(resources["clusters"][0]["name"], "petstore_gloo-system");
//!
//! // A proxy no Gateway serves is an error that lists the ones that exist.
//! let unknown = cli::translate(dir.path(), Some("edge"), ResourceFormat::Yaml, &mut Vec::new());
//! let known = match unknown {
//!     Err(CliError::UnknownProxy { known, .. }) => known,
//!     other => panic!("expected an unknown proxy, got {other:?}"),
//! };
//! assert_eq!(known, "gateway-proxy");
//! # Ok(())
//! # }
//! ```

use std::io::Write;
use std::path::Path;

use gloo_core::source::{ConfigSource, DirectorySource};
use gloo_core::translate::Translation;

/// Output formats of `gloo validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    /// One line per resource, reasons indented below.
    Text,
    /// The full report as JSON.
    Json,
}

/// Output formats of `gloo translate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResourceFormat {
    /// YAML (what `envoy --config-yaml` reads).
    Yaml,
    /// JSON.
    Json,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config directory could not be read.
    #[error(transparent)]
    Source(#[from] gloo_core::source::SourceError),
    /// Output could not be written or encoded.
    #[error("cannot write output: {0}")]
    Output(String),
    /// `--proxy` named a proxy no Gateway serves.
    #[error("no proxy named {name:?}; proxies in this config: {known}")]
    UnknownProxy {
        /// The requested name.
        name: String,
        /// The proxies that exist.
        known: String,
    },
}

fn translate_dir(dir: &Path) -> Result<Translation, CliError> {
    let source = DirectorySource::load(dir)?;
    let snapshot = source.subscribe().borrow().clone();
    Ok(crate::control_plane::translator_from_env().translate(&snapshot))
}

/// `gloo validate DIR`: prints every resource's status; returns whether all were accepted
/// (Warnings count as accepted, as in Gloo).
pub fn validate(dir: &Path, format: StatusFormat, out: &mut dyn Write) -> Result<bool, CliError> {
    let translation = translate_dir(dir)?;
    let reports = &translation.reports;
    let text = match format {
        StatusFormat::Text => reports.to_text(),
        StatusFormat::Json => {
            serde_json::to_string_pretty(reports).map_err(|e| CliError::Output(e.to_string()))?
                + "\n"
        }
    };
    out.write_all(text.as_bytes())
        .map_err(|e| CliError::Output(e.to_string()))?;
    Ok(!reports.has_rejections())
}

/// `gloo translate DIR`: prints the xDS resources of one proxy (or all, keyed by proxy name)
/// exactly as they would be served. Returns whether every resource was accepted.
pub fn translate(
    dir: &Path,
    proxy: Option<&str>,
    format: ResourceFormat,
    out: &mut dyn Write,
) -> Result<bool, CliError> {
    let translation = translate_dir(dir)?;
    let value = match proxy {
        Some(name) => {
            let resources =
                translation
                    .proxies
                    .get(name)
                    .ok_or_else(|| CliError::UnknownProxy {
                        name: name.to_string(),
                        known: translation
                            .proxies
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
            resources
                .to_json()
                .map_err(|e| CliError::Output(e.to_string()))?
        }
        None => {
            let mut all = serde_json::Map::new();
            for (name, resources) in &translation.proxies {
                all.insert(
                    name.clone(),
                    resources
                        .to_json()
                        .map_err(|e| CliError::Output(e.to_string()))?,
                );
            }
            serde_json::Value::Object(all)
        }
    };
    let text = match format {
        ResourceFormat::Json => {
            serde_json::to_string_pretty(&value).map_err(|e| CliError::Output(e.to_string()))?
                + "\n"
        }
        ResourceFormat::Yaml => {
            serde_yaml_ng::to_string(&value).map_err(|e| CliError::Output(e.to_string()))?
        }
    };
    out.write_all(text.as_bytes())
        .map_err(|e| CliError::Output(e.to_string()))?;
    Ok(!translation.reports.has_rejections())
}

//! The AWS configuration of the environment: a snapshot of the process's variables (or any
//! set of them, for tests and embedders) and the shared `credentials` / `config` files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Environment variables, snapshotted: providers read this, never the process environment
/// directly, so each can be given its own.
///
/// ```
/// use gloo_filters::aws::Env;
/// let env = Env::from_vars([("AWS_REGION", "eu-west-1")]);
/// assert_eq!(env.get("AWS_REGION").as_deref(), Some("eu-west-1"));
/// assert_eq!(env.region().as_deref(), Some("eu-west-1"));
/// assert_eq!(env.profile_name(), "default");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: Arc<BTreeMap<String, String>>,
}

impl Env {
    /// The process's environment now.
    pub fn from_process() -> Self {
        Env {
            vars: Arc::new(std::env::vars().collect()),
        }
    }

    /// Exactly these variables.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            vars: Arc::new(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// A variable's value; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// The profile to read: `AWS_PROFILE`, else `default`.
    pub fn profile_name(&self) -> String {
        self.get("AWS_PROFILE")
            .unwrap_or_else(|| "default".to_string())
    }

    /// The region the environment names: `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub fn region(&self) -> Option<String> {
        self.get("AWS_REGION")
            .or_else(|| self.get("AWS_DEFAULT_REGION"))
    }

    fn home(&self) -> Option<PathBuf> {
        self.get("HOME")
            .or_else(|| self.get("USERPROFILE"))
            .map(PathBuf::from)
    }

    /// The shared credentials file: `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    pub fn credentials_file(&self) -> Option<PathBuf> {
        self.get("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| self.home().map(|h| h.join(".aws").join("credentials")))
    }

    /// The shared config file: `AWS_CONFIG_FILE`, else `~/.aws/config`.
    pub fn config_file(&self) -> Option<PathBuf> {
        self.get("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| self.home().map(|h| h.join(".aws").join("config")))
    }
}

/// The profiles of the shared files, each a map of (lowercase) keys to values.
#[derive(Debug, Default)]
pub(crate) struct Profiles {
    profiles: BTreeMap<String, BTreeMap<String, String>>,
    files: Vec<PathBuf>,
}

impl Profiles {
    /// Reads both files (a missing file is no profile; an unreadable one is an error naming
    /// it). A key in the credentials file wins over the same key in the config file.
    pub(crate) async fn load(env: &Env) -> Result<Profiles, String> {
        let mut out = Profiles::default();
        for (path, is_config) in [(env.config_file(), true), (env.credentials_file(), false)] {
            let Some(path) = path else { continue };
            let text = match tokio::fs::read_to_string(&path).await {
                Ok(text) => text,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(format!("{}: {err}", path.display())),
            };
            for (name, keys) in parse_ini(&text, is_config) {
                out.profiles.entry(name).or_default().extend(keys);
            }
            out.files.push(path);
        }
        Ok(out)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.profiles.get(name)
    }

    pub(crate) fn describe_files(&self) -> String {
        if self.files.is_empty() {
            "no shared credentials or config file".to_string()
        } else {
            self.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// The sections of an AWS shared file: `[name]` in the credentials file; `[default]` and
/// `[profile name]` in the config file (other sections, such as `[sso-session x]`, skipped).
/// `#` and `;` start comments; indented lines continue a sub-section and are skipped.
fn parse_ini(text: &str, is_config: bool) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut current: Option<usize> = None;
    for raw in text.lines() {
        if raw.starts_with([' ', '\t']) {
            continue;
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            let name = if !is_config {
                Some(section.to_string())
            } else if section == "default" {
                Some("default".to_string())
            } else {
                section
                    .strip_prefix("profile")
                    .filter(|rest| rest.starts_with([' ', '\t']))
                    .map(|rest| rest.trim().to_string())
            };
            current = name.map(|name| match out.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    out.push((name, BTreeMap::new()));
                    out.len() - 1
                }
            });
            continue;
        }
        let (Some(index), Some((key, value))) = (current, line.split_once('=')) else {
            continue;
        };
        let value = value.trim();
        let value = value
            .split_once(" #")
            .or_else(|| value.split_once(" ;"))
            .map(|(v, _)| v.trim())
            .unwrap_or(value);
        if let Some((_, keys)) = out.get_mut(index) {
            keys.insert(key.trim().to_ascii_lowercase(), value.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_shared_file_layouts() {
        let credentials = "[default]\naws_access_key_id = AKID\naws_secret_access_key=SECRET # a comment\n\n[dev]\nAWS_ACCESS_KEY_ID=DEV\n";
        let parsed = parse_ini(credentials, false);
        assert_eq!(parsed[0].0, "default");
        assert_eq!(parsed[0].1["aws_secret_access_key"], "SECRET");
        assert_eq!(parsed[1].1["aws_access_key_id"], "DEV");
        let config = "[default]\nregion = us-east-1\n[profile dev]\nregion=eu-west-1\ns3 =\n  max_concurrent_requests = 20\n[sso-session corp]\nsso_region = x\n[profilex]\nregion=nope\n";
        let parsed = parse_ini(config, true);
        let names: Vec<&str> = parsed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["default", "dev"]);
        assert_eq!(parsed[1].1["region"], "eu-west-1");
        assert!(!parsed[1].1.contains_key("max_concurrent_requests"));
    }

    #[tokio::test]
    async fn the_credentials_file_wins_over_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(&creds, "[dev]\naws_access_key_id = FROM_CREDENTIALS\n").unwrap();
        std::fs::write(
            &config,
            "[profile dev]\naws_access_key_id = FROM_CONFIG\naws_secret_access_key = S\n",
        )
        .unwrap();
        let env = Env::from_vars([
            ("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string()),
            ("AWS_CONFIG_FILE", config.display().to_string()),
        ]);
        let profiles = Profiles::load(&env).await.unwrap();
        let dev = profiles.get("dev").unwrap();
        assert_eq!(dev["aws_access_key_id"], "FROM_CREDENTIALS");
        assert_eq!(dev["aws_secret_access_key"], "S");
    }
}

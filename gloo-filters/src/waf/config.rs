//! The WAF's configuration types: Gloo's `RuleSet` and `AuditLogging` messages
//! (`envoy.config.filter.http.modsecurity.v2`), and the compiled [`WafRules`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::error::ConfigError;
use super::ffi;

/// Debian's OWASP Core Rule Set rules (`modsecurity-crs`), the directory Gloo's `coreRuleSet`
/// includes.
pub const CRS_RULES_DIR: &str = "/usr/share/modsecurity-crs/rules";
/// Debian's CRS setup file (`crs-setup.conf`: anomaly scoring thresholds, paranoia level, ...).
pub const CRS_SETUP_FILE: &str = "/etc/modsecurity/crs/crs-setup.conf";

/// One rule set (Gloo's `RuleSet`): rule files, a directory of `*.conf` files and inline
/// rules, loaded in that order (the inline rules last, so they can override the files).
///
/// ```
/// use gloo_filters::waf::RuleSet;
///
/// let set = RuleSet::rules("SecRuleEngine On").file("/etc/modsecurity/crs/crs-setup.conf");
/// assert_eq!(set.rule_str(), Some("SecRuleEngine On"));
/// assert_eq!(set.files().len(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RuleSet {
    rule_str: Option<String>,
    files: Vec<PathBuf>,
    directory: Option<PathBuf>,
}

impl RuleSet {
    /// An empty rule set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A rule set of inline rules (`rule_str`), ModSecurity's configuration language.
    pub fn rules(text: impl Into<String>) -> Self {
        Self::new().with_rule_str(text)
    }

    /// Sets the inline rules (`rule_str`), loaded after the files and the directory.
    pub fn with_rule_str(mut self, text: impl Into<String>) -> Self {
        self.rule_str = Some(text.into());
        self
    }

    /// Adds a rule file (`files`), loaded in the order added.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push(path.into());
        self
    }

    /// Sets a directory (`directory`) whose `*.conf` files are loaded in name order,
    /// without descending into subdirectories.
    pub fn directory(mut self, path: impl Into<PathBuf>) -> Self {
        self.directory = Some(path.into());
        self
    }

    /// The inline rules.
    pub fn rule_str(&self) -> Option<&str> {
        self.rule_str.as_deref()
    }

    /// The rule files.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The rule directory.
    pub fn dir(&self) -> Option<&Path> {
        self.directory.as_deref()
    }
}

/// When an audit log is made for an exchange (`AuditLogging.AuditLogAction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditLogAction {
    /// Never (the default).
    #[default]
    Never,
    /// When a rule logged a message or intervened (like `SecAuditEngine RelevantOnly`).
    RelevantOnly,
    /// For every exchange.
    Always,
}

/// Compiled rules, shared (behind an `Arc`) by every exchange and every layer built from
/// them: compile once per configuration.
///
/// ```
/// use gloo_filters::waf::{RuleSet, WafRules};
///
/// let rules = WafRules::compile([RuleSet::rules(
///     r#"SecRuleEngine On
///        SecRule REQUEST_HEADERS:User-Agent "scammer" "id:107,phase:1,deny,status:403""#,
/// )])?;
/// # let _ = rules;
///
/// // ModSecurity's own parser finds the errors; the message names the rule set.
/// let err = WafRules::compile([RuleSet::new(), RuleSet::rules("SecRule ARGS")]).unwrap_err();
/// assert_eq!(err.field(), "rule_sets[1].rule_str");
/// # Ok::<(), gloo_filters::waf::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct WafRules {
    pub(crate) set: Arc<ffi::RuleSet>,
}

/// Rule sets compiled by this process so far (see [`WafRules::compiled_total`]).
static COMPILED: AtomicU64 = AtomicU64::new(0);

impl WafRules {
    /// Loads `rule_sets` in order into one ModSecurity rule set. The error names the rule set
    /// and the part of it (`rule_sets[i].files[j]`, `.directory`, `.rule_str`) ModSecurity
    /// refused, with ModSecurity's message (file, line, column).
    pub fn compile(rule_sets: impl IntoIterator<Item = RuleSet>) -> Result<Self, ConfigError> {
        COMPILED.fetch_add(1, Ordering::Relaxed);
        let mut set = ffi::RuleSet::new().map_err(|e| ConfigError::new("rule_sets", e))?;
        for (i, rules) in rule_sets.into_iter().enumerate() {
            load(&mut set, &rules).map_err(|e| e.within(&format!("rule_sets[{i}]")))?;
        }
        Ok(Self { set: Arc::new(set) })
    }

    /// How many times this process has run [`compile`](Self::compile) (refused rules
    /// included): every call parses its rules anew, so a server that compiles once per
    /// configuration sees this move only when its configuration changes, never with its
    /// traffic. gloo-proxy exports it as `gloo_waf_rule_set_compiles_total`.
    ///
    /// ```
    /// use gloo_filters::waf::{RuleSet, WafRules};
    ///
    /// let before = WafRules::compiled_total();
    /// let _rules = WafRules::compile([RuleSet::rules("SecRuleEngine On")])?;
    /// assert!(WafRules::compiled_total() > before);
    /// # Ok::<(), gloo_filters::waf::ConfigError>(())
    /// ```
    pub fn compiled_total() -> u64 {
        COMPILED.load(Ordering::Relaxed)
    }

    /// Whether `self` and `other` are the same compiled rules (not merely equal ones).
    pub fn ptr_eq(&self, other: &WafRules) -> bool {
        Arc::ptr_eq(&self.set, &other.set)
    }

    /// A reference that does not keep the rules alive (for caches of compiled rules).
    pub fn downgrade(&self) -> WeakWafRules {
        WeakWafRules {
            set: Arc::downgrade(&self.set),
        }
    }
}

/// A [`WafRules`] that does not keep the rules alive: [`upgrade`](Self::upgrade) gives them
/// back while something else still holds them.
#[derive(Clone, Debug, Default)]
pub struct WeakWafRules {
    set: Weak<ffi::RuleSet>,
}

impl WeakWafRules {
    /// The rules, if something still holds them.
    pub fn upgrade(&self) -> Option<WafRules> {
        self.set.upgrade().map(|set| WafRules { set })
    }
}

fn load(set: &mut ffi::RuleSet, rules: &RuleSet) -> Result<(), ConfigError> {
    for (j, file) in rules.files.iter().enumerate() {
        set.add_file(file)
            .map_err(|e| ConfigError::new(format!("files[{j}]"), e))?;
    }
    if let Some(dir) = &rules.directory {
        for file in conf_files(dir).map_err(|e| ConfigError::new("directory", e))? {
            set.add_file(&file).map_err(|e| {
                ConfigError::new("directory", format_args!("{}: {e}", file.display()))
            })?;
        }
    }
    if let Some(text) = &rules.rule_str {
        set.add_rules(text)
            .map_err(|e| ConfigError::new("rule_str", e))?;
    }
    Ok(())
}

/// The `*.conf` files directly in `dir`, by name.
fn conf_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "conf") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

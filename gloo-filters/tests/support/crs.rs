//! Debian's OWASP Core Rule Set (`modsecurity-crs`) for the WAF tests: `GLOO_TEST_CRS_SETUP`
//! names its setup file and `GLOO_TEST_CRS_RULES` its rules directory (`scripts/test.sh`
//! installs the packages and sets both).

use gloo_filters::waf::RuleSet;

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: these tests need the OWASP CRS (apt-get install modsecurity-crs). \
             Run scripts/test.sh, or export GLOO_TEST_CRS_SETUP=/etc/modsecurity/crs/crs-setup.conf \
             GLOO_TEST_CRS_RULES=/usr/share/modsecurity-crs/rules"
        ),
    }
}

/// The CRS rules directory.
pub fn rules_dir() -> String {
    env("GLOO_TEST_CRS_RULES")
}

/// The CRS setup file (`crs-setup.conf`).
pub fn setup_file() -> String {
    env("GLOO_TEST_CRS_SETUP")
}

/// Gloo's translation of `ruleSets: [{ruleStr: <user>}]` plus `coreRuleSet:
/// {customSettingsFile: <crs-setup.conf>}`: the user's rules, the CRS settings, the CRS rules.
pub fn rule_sets(user: &str) -> Vec<RuleSet> {
    vec![
        RuleSet::rules(user),
        RuleSet::new().file(setup_file()),
        RuleSet::new().directory(rules_dir()),
    ]
}

//! A validated domain, compiled for lookups, and descriptor matching with envoyproxy/ratelimit's
//! tree semantics (`GetLimit` in `src/config/config_impl.go`) and Gloo's set-style rules.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::config::{Descriptor, RateLimit, RateLimitDomain, Rule, SetDescriptor};
use super::error::InvalidConfig;
use super::request::{DescriptorEntry, RateLimitDescriptor, SET_DESCRIPTOR_VALUE};

/// A limit found for a request descriptor.
#[derive(Debug)]
pub(crate) struct TreeMatch<'a> {
    pub(crate) rule: &'a Rule,
    pub(crate) shadow_mode: bool,
    pub(crate) weight: u32,
    pub(crate) always_apply: bool,
}

/// A set-style rule that applies to a request descriptor, with the counter key suffix built
/// from the rule's keys and the request's values.
#[derive(Debug)]
pub(crate) struct SetMatch<'a> {
    pub(crate) limit: &'a RateLimit,
    pub(crate) shadow_mode: bool,
    pub(crate) key: String,
}

#[derive(Debug, Default)]
struct Node {
    /// Keyed by `key_value` for nodes with a value, by `key` for key-only nodes.
    children: HashMap<String, Node>,
    /// Nodes whose value has a `*`: (pattern split on `*`, composite key), in config order.
    wildcards: Vec<(Vec<String>, String)>,
    rule: Option<Rule>,
    shadow_mode: bool,
    weight: u32,
    always_apply: bool,
}

/// A domain ready for matching.
#[derive(Debug)]
pub(crate) struct CompiledDomain {
    root: Node,
    sets: Vec<SetDescriptor>,
}

impl CompiledDomain {
    /// Validates `domain` the way the rate limit server does before accepting it.
    pub(crate) fn compile(domain: &RateLimitDomain) -> Result<Self, InvalidConfig> {
        if domain.name.is_empty() {
            return Err(InvalidConfig::new("", "domain", "must not be empty"));
        }
        let mut root = Node::default();
        load(&domain.name, "descriptors", &domain.descriptors, &mut root)?;
        for (i, set) in domain.set_descriptors.iter().enumerate() {
            let path = format!("setDescriptors[{i}]");
            check_limit(&domain.name, &format!("{path}.rateLimit"), &set.rate_limit)?;
            for (j, (key, _)) in set.simple_descriptors.iter().enumerate() {
                let here = format!("{path}.simpleDescriptors[{j}]");
                if key.is_empty() {
                    return Err(InvalidConfig::new(
                        &domain.name,
                        here,
                        "key must not be empty",
                    ));
                }
                if set.simple_descriptors[..j].iter().any(|(k, _)| k == key) {
                    return Err(InvalidConfig::new(
                        &domain.name,
                        here,
                        format!("duplicate key {key:?} in the same set descriptor"),
                    ));
                }
            }
        }
        Ok(Self {
            root,
            sets: domain.set_descriptors.clone(),
        })
    }

    /// The tree limit for `descriptor`: envoyproxy/ratelimit's `GetLimit`. Each entry goes one
    /// level down: `key_value` first, then wildcard values in config order, then `key`. The
    /// limit counts only if it is on the node reached by the last entry.
    pub(crate) fn tree_match(&self, descriptor: &RateLimitDescriptor) -> Option<TreeMatch<'_>> {
        let mut node = &self.root;
        let mut found = None;
        let last = descriptor.entries.len().checked_sub(1)?;
        let mut composite = String::new();
        for (i, entry) in descriptor.entries.iter().enumerate() {
            composite.clear();
            let _ = write!(composite, "{}_{}", entry.key, entry.value);
            let next = node
                .children
                .get(&composite)
                .or_else(|| {
                    node.wildcards
                        .iter()
                        .find(|(parts, _)| wildcard_match(parts, &composite))
                        .and_then(|(_, key)| node.children.get(key))
                })
                .or_else(|| node.children.get(&entry.key));
            let Some(next) = next else { break };
            if let Some(rule) = &next.rule {
                if i == last {
                    found = Some(TreeMatch {
                        rule,
                        shadow_mode: next.shadow_mode,
                        weight: next.weight,
                        always_apply: next.always_apply,
                    });
                }
            }
            if next.children.is_empty() {
                break;
            }
            node = next;
        }
        found
    }

    /// The set-style rules for `descriptor` (one marked with [`SET_DESCRIPTOR_VALUE`]): the
    /// first rule whose simple descriptors are all in the descriptor, plus every later one
    /// with `always_apply`.
    pub(crate) fn set_matches(&self, descriptor: &RateLimitDescriptor) -> Vec<SetMatch<'_>> {
        let entries: Vec<&DescriptorEntry> = descriptor
            .entries
            .iter()
            .filter(|e| !(e.key == "generic_key" && e.value == SET_DESCRIPTOR_VALUE))
            .collect();
        let mut matched = Vec::new();
        for (i, rule) in self.sets.iter().enumerate() {
            if !matched.is_empty() && !rule.always_apply {
                continue;
            }
            let Some(key) = set_rule_key(i, rule, &entries) else {
                continue;
            };
            matched.push(SetMatch {
                limit: &rule.rate_limit,
                shadow_mode: rule.shadow_mode,
                key,
            });
        }
        matched
    }
}

/// `set<i>_k1_v1_..._kn_vn_` with the request's values in the rule's key order, or `None` if
/// the rule does not match.
fn set_rule_key(
    index: usize,
    rule: &SetDescriptor,
    entries: &[&DescriptorEntry],
) -> Option<String> {
    let mut key = format!("{SET_DESCRIPTOR_VALUE}.{index}_");
    for (k, v) in &rule.simple_descriptors {
        let entry = entries
            .iter()
            .find(|e| &e.key == k && v.as_ref().is_none_or(|v| v == &e.value))?;
        let _ = write!(key, "{}_{}_", entry.key, entry.value);
    }
    Some(key)
}

fn check_limit(domain: &str, path: &str, limit: &RateLimit) -> Result<(), InvalidConfig> {
    if limit.requests_per_unit() == 0 {
        return Err(InvalidConfig::new(
            domain,
            path,
            "requests_per_unit must be greater than 0",
        ));
    }
    Ok(())
}

fn load(
    domain: &str,
    path: &str,
    descriptors: &[Descriptor],
    parent: &mut Node,
) -> Result<(), InvalidConfig> {
    for (i, d) in descriptors.iter().enumerate() {
        let here = format!("{path}[{i}]");
        if d.key.is_empty() {
            return Err(InvalidConfig::new(
                domain,
                here,
                "descriptor key must not be empty",
            ));
        }
        let composite = match d.value.as_deref() {
            Some(v) if !v.is_empty() => format!("{}_{}", d.key, v),
            _ => d.key.clone(),
        };
        if parent.children.contains_key(&composite) {
            return Err(InvalidConfig::new(
                domain,
                here,
                format!("duplicate descriptor {composite:?} in the same list"),
            ));
        }
        if let Some(Rule::Limit(limit)) = &d.rule {
            check_limit(domain, &format!("{here}.rateLimit"), limit)?;
        }
        let mut node = Node {
            rule: d.rule.clone(),
            shadow_mode: d.shadow_mode,
            weight: d.weight,
            always_apply: d.always_apply,
            ..Node::default()
        };
        load(
            domain,
            &format!("{here}.descriptors"),
            &d.descriptors,
            &mut node,
        )?;
        if d.value.as_deref().is_some_and(|v| v.contains('*')) {
            let parts = composite.split('*').map(str::to_owned).collect();
            parent.wildcards.push((parts, composite.clone()));
        }
        parent.children.insert(composite, node);
    }
    Ok(())
}

/// Whether `value` matches a pattern split on `*` (each `*` matches any run of characters).
fn wildcard_match(parts: &[String], value: &str) -> bool {
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return first == value;
    }
    let fixed: usize = parts.iter().map(String::len).sum();
    if value.len() < fixed || !value.starts_with(first.as_str()) || !value.ends_with(last.as_str())
    {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part.as_str()) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(p: &str) -> Vec<String> {
        p.split('*').map(str::to_owned).collect()
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match(&parts("path_/api/*"), "path_/api/v1"));
        assert!(wildcard_match(&parts("path_/api/*"), "path_/api/"));
        assert!(!wildcard_match(&parts("path_/api/*"), "path_/other"));
        assert!(wildcard_match(&parts("p_a*b*c"), "p_aXXbYYc"));
        assert!(!wildcard_match(&parts("p_a*b*c"), "p_aXXcYYb"));
        // The fixed parts may not overlap.
        assert!(!wildcard_match(&parts("p_ab*ba"), "p_aba"));
    }
}

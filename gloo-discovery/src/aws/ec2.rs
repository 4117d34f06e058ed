//! [`Ec2Discovery`]: the endpoints of Gloo's `awsEc2` upstreams, from EC2
//! `DescribeInstances`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use gloo_core::model::settings::SettingsSpec;
use gloo_core::model::upstream::{AwsEc2UpstreamSpec, TagFilter, UpstreamSpec};
use gloo_core::model::ResourceRef;
use gloo_core::translate::{Endpoint, Endpoints};
use gloo_filters::aws::xml::Element;
use gloo_filters::aws::{AwsClient, AwsError, Env, ProvideCredentials, SharedCredentialsProvider};

use crate::plugin::{Publisher, Upstreams};

use super::credentials::{CredentialKey, RoleUse};
use super::{Groups, Polling};
use crate::plugin::{BoxFuture, Discovery, DiscoveryContext, DiscoveryError};

/// The EC2 API version gloo speaks.
pub const EC2_VERSION: &str = "2016-11-15";
/// Gloo's default port of `awsEc2` endpoints (`DefaultPort`).
pub const DEFAULT_PORT: u32 = 80;

/// One running instance, as `DescribeInstances` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `i-...`.
    pub id: String,
    /// The private IPv4 address, if any.
    pub private_ip: Option<String>,
    /// The public IPv4 address, if any.
    pub public_ip: Option<String>,
    /// Tags, keys lowercased (EC2 tag keys are case-insensitive for Gloo's filters).
    pub tags: BTreeMap<String, String>,
}

impl Instance {
    /// Whether the instance matches every filter, as Gloo's `filterInstancesForUpstream`
    /// decides: `key` needs a tag with that key (case-insensitive), `kvPair` that tag with
    /// exactly that value.
    ///
    /// ```
    /// use gloo_core::model::upstream::{TagFilter, TagKvPair};
    /// use gloo_discovery::aws::Instance;
    /// let instance = Instance {
    ///     id: "i-1".into(),
    ///     private_ip: Some("10.0.0.1".into()),
    ///     public_ip: None,
    ///     tags: [("version".to_string(), "v1".to_string())].into(),
    /// };
    /// let key = TagFilter { key: Some("Version".into()), kv_pair: None };
    /// let pair = |v: &str| TagFilter { key: None, kv_pair: Some(TagKvPair { key: "VERSION".into(), value: v.into() }) };
    /// assert!(instance.matches(&[key.clone(), pair("v1")]));
    /// assert!(!instance.matches(&[key, pair("V1")])); // values are case-sensitive
    /// ```
    pub fn matches(&self, filters: &[TagFilter]) -> bool {
        filters
            .iter()
            .all(|filter| match (&filter.key, &filter.kv_pair) {
                (Some(key), _) => self.tags.contains_key(&key.to_lowercase()),
                (None, Some(pair)) => self.tags.get(&pair.key.to_lowercase()) == Some(&pair.value),
                // An empty filter selects nothing out (Gloo's switch has no case for it).
                (None, None) => true,
            })
    }
}

/// `DescribeInstances` of every running instance the credentials can see in `region`, every
/// page (`NextToken`), `page_size` instances per page (EC2 takes 5 to 1000; `None`: EC2's
/// default). Instances without any IP address are left out (Gloo's `validInstance`).
pub async fn describe_instances(
    client: &AwsClient,
    region: &str,
    credentials: &dyn ProvideCredentials,
    page_size: Option<u32>,
) -> Result<Vec<Instance>, AwsError> {
    let mut instances = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = vec![
            (
                "Filter.1.Name".to_string(),
                "instance-state-name".to_string(),
            ),
            ("Filter.1.Value.1".to_string(), "running".to_string()),
        ];
        if let Some(size) = page_size {
            params.push(("MaxResults".to_string(), size.clamp(5, 1000).to_string()));
        }
        if let Some(token) = &token {
            params.push(("NextToken".to_string(), token.clone()));
        }
        let answer = client
            .query(
                "ec2",
                region,
                EC2_VERSION,
                "DescribeInstances",
                &params,
                Some(credentials),
            )
            .await?;
        instances.extend(parse_instances(&answer));
        token = answer
            .child_text("nextToken")
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return Ok(instances);
        }
    }
}

/// The instances of one `DescribeInstancesResponse` page.
fn parse_instances(answer: &Element) -> Vec<Instance> {
    answer
        .path(&["reservationSet", "item", "instancesSet", "item"])
        .filter_map(|item| {
            let ip = |name: &str| {
                item.child_text(name)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
            };
            let instance = Instance {
                id: item
                    .child_text("instanceId")
                    .unwrap_or_default()
                    .to_string(),
                private_ip: ip("privateIpAddress"),
                public_ip: ip("ipAddress"),
                tags: item
                    .path(&["tagSet", "item"])
                    .filter_map(|tag| {
                        Some((
                            tag.child_text("key")?.to_lowercase(),
                            tag.child_text("value").unwrap_or_default().to_string(),
                        ))
                    })
                    .collect(),
            };
            (instance.private_ip.is_some() || instance.public_ip.is_some()).then_some(instance)
        })
        .collect()
}

/// Gloo's EC2 plugin (`projects/gloo/pkg/plugins/aws/ec2`) as a [`Discovery`] plugin: the
/// endpoints of every `awsEc2` upstream in force.
///
/// Upstreams are grouped by what their calls are signed with (region, `secretRef`,
/// `roleArn`: Gloo's `CredentialSpec`), and each group lists its running instances once per
/// refresh with `DescribeInstances` (every page); each upstream then takes the instances that
/// match all its `filters` (`key`: the tag exists, `kvPair`: the tag has that value; keys
/// case-insensitive), at their private IP (public with `publicIp`, instances without one
/// skipped) and `port` (default 80).
///
/// Credentials are the `secretRef`'s keys (see
/// [`SecretSpec::aws`](gloo_core::model::secret::SecretSpec::aws)) or, without one, the
/// standard chain of the environment ([`gloo_filters::aws::default_provider`]: environment
/// variables, shared profile, web identity / IRSA, container, IMDSv2); with `roleArn`, STS
/// `AssumeRole` with those credentials gives the role's (kept until they near expiry).
///
/// A group whose listing fails (throttled with `RequestLimitExceeded`, AWS unreachable, a
/// missing Secret) keeps its last endpoints, and is asked again after a backoff (1 s,
/// doubling, at most the refresh interval); the other groups update.
///
/// **Deviations from Gloo.** Gloo clamps the refresh interval to at least 30 s; gloo defaults
/// to 30 s ([`from_settings`](Self::from_settings) takes `refreshRate` when longer) and lets
/// the embedder choose any interval. Gloo's endpoints carry the instance ID as an
/// annotation; gloo's endpoints have no annotations.
#[derive(Debug, Clone)]
pub struct Ec2Discovery {
    polling: Polling,
}

super::polling_builders!(Ec2Discovery, "instances");

impl Ec2Discovery {
    /// Instances per `DescribeInstances` page (5 to 1000; EC2's default without).
    pub fn page_size(mut self, size: u32) -> Self {
        self.polling.page_size = Some(size.clamp(5, 1000));
        self
    }
}

impl Discovery for Ec2Discovery {
    fn name(&self) -> &str {
        "ec2"
    }

    fn resolves(&self, upstream: &UpstreamSpec) -> bool {
        upstream.aws_ec2.is_some()
    }

    fn run(
        self: Arc<Self>,
        context: DiscoveryContext,
    ) -> BoxFuture<'static, Result<(), DiscoveryError>> {
        Box::pin(async move {
            let polling = &self.polling;
            let list = |key: CredentialKey, provider: SharedCredentialsProvider| async move {
                describe_instances(
                    &polling.client,
                    &key.region,
                    provider.as_ref(),
                    polling.page_size,
                )
                .await
            };
            let publish =
                |publisher: &Publisher,
                 groups: &Groups<AwsEc2UpstreamSpec>,
                 last: &BTreeMap<CredentialKey, Vec<Instance>>| {
                    let mut endpoints = Endpoints::new();
                    for (key, members) in groups {
                        let Some(instances) = last.get(key) else {
                            continue;
                        };
                        for (reference, spec) in members {
                            let found = upstream_endpoints(reference, spec, instances);
                            if !found.is_empty() {
                                endpoints.insert(reference.clone(), found);
                            }
                        }
                    }
                    publisher.set_endpoints(endpoints);
                };
            polling
                .run(
                    context,
                    RoleUse::AssumeRole,
                    "EC2 instances",
                    group,
                    list,
                    publish,
                )
                .await;
            Ok(())
        })
    }
}

/// The `awsEc2` upstreams by what their calls are signed with.
fn group(tracked: &Upstreams) -> Groups<AwsEc2UpstreamSpec> {
    let mut groups = Groups::new();
    for (reference, upstream) in tracked.iter() {
        let Some(spec) = &upstream.spec.aws_ec2 else {
            continue;
        };
        let key = CredentialKey {
            region: spec.region.clone().unwrap_or_default(),
            secret: spec
                .secret_ref
                .as_ref()
                .map(|s| s.resolved(reference.namespace_or(""))),
            role_arn: spec.role_arn.clone().filter(|r| !r.is_empty()),
        };
        groups
            .entry(key)
            .or_default()
            .push((reference.clone(), spec.clone()));
    }
    groups
}

/// The endpoints of one upstream among `instances` (sorted, for a stable publication).
fn upstream_endpoints(
    reference: &ResourceRef,
    spec: &AwsEc2UpstreamSpec,
    instances: &[Instance],
) -> Vec<Endpoint> {
    let port = match spec.port.filter(|p| *p != 0) {
        None => DEFAULT_PORT,
        Some(port) if port <= 65535 => port,
        Some(port) => {
            tracing::warn!(upstream = %reference, port, "awsEc2.port is not a port; no endpoints");
            return Vec::new();
        }
    };
    let public = spec.public_ip == Some(true);
    let mut out: Vec<Endpoint> = instances
        .iter()
        .filter(|i| i.matches(&spec.filters))
        .filter_map(|instance| {
            let ip = if public {
                instance.public_ip.as_ref()
            } else {
                instance.private_ip.as_ref()
            };
            match ip.filter(|ip| ip.parse::<IpAddr>().is_ok()) {
                Some(ip) => Some(Endpoint::new(ip.clone(), port)),
                None => {
                    tracing::debug!(
                        upstream = %reference,
                        instance = %instance.id,
                        public,
                        "EC2 instance has no such IP address; skipped"
                    );
                    None
                }
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_describe_instances_pages() {
        // Trimmed from the example answer of EC2's DescribeInstances API reference.
        let page = Element::parse(
            r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
    <reservationSet>
        <item>
            <reservationId>r-1234567890abcdef0</reservationId>
            <instancesSet>
                <item>
                    <instanceId>i-1234567890abcdef0</instanceId>
                    <instanceState><code>16</code><name>running</name></instanceState>
                    <privateIpAddress>10.0.0.157</privateIpAddress>
                    <ipAddress>54.194.252.215</ipAddress>
                    <tagSet>
                        <item><key>Name</key><value>my-instance</value></item>
                        <item><key>Empty</key><value/></item>
                    </tagSet>
                </item>
                <item><instanceId>i-noip</instanceId></item>
            </instancesSet>
        </item>
    </reservationSet>
    <nextToken>abc</nextToken>
</DescribeInstancesResponse>"#,
        )
        .unwrap();
        let instances = parse_instances(&page);
        assert_eq!(instances.len(), 1, "an instance without an IP is left out");
        let i = &instances[0];
        assert_eq!(i.id, "i-1234567890abcdef0");
        assert_eq!(i.private_ip.as_deref(), Some("10.0.0.157"));
        assert_eq!(i.public_ip.as_deref(), Some("54.194.252.215"));
        assert_eq!(i.tags["name"], "my-instance");
        assert_eq!(i.tags["empty"], "");
        assert_eq!(page.child_text("nextToken"), Some("abc"));
    }

    #[test]
    fn endpoints_take_the_chosen_ip_and_port() {
        let instances = vec![
            Instance {
                id: "i-1".into(),
                private_ip: Some("10.0.0.2".into()),
                public_ip: None,
                tags: BTreeMap::new(),
            },
            Instance {
                id: "i-2".into(),
                private_ip: Some("10.0.0.1".into()),
                public_ip: Some("54.0.0.1".into()),
                tags: BTreeMap::new(),
            },
        ];
        let r = ResourceRef::new("ns", "u");
        let mut spec = AwsEc2UpstreamSpec::default();
        let private = upstream_endpoints(&r, &spec, &instances);
        assert_eq!(
            private,
            [Endpoint::new("10.0.0.1", 80), Endpoint::new("10.0.0.2", 80)]
        );
        spec.public_ip = Some(true);
        spec.port = Some(8080);
        assert_eq!(
            upstream_endpoints(&r, &spec, &instances),
            [Endpoint::new("54.0.0.1", 8080)]
        );
        spec.port = Some(70_000);
        assert!(upstream_endpoints(&r, &spec, &instances).is_empty());
    }
}

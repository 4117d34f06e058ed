//! AWS (features `ec2` and `lambda`): Gloo's EC2 endpoint discovery and its Lambda function
//! discovery, over gloo-filters' AWS client (hand-written SigV4, the standard credential
//! chain, STS; no AWS SDK).
//!
//! - [`Ec2Discovery`] (feature `ec2`) finds the endpoints of `awsEc2` upstreams: the running
//!   instances that match all the upstream's tag filters, from `DescribeInstances`.
//! - [`LambdaDiscovery`] (feature `lambda`) fills the `lambdaFunctions` of `aws` upstreams
//!   from `ListFunctions`, as Gloo's function discovery does; routes then reach the functions
//!   with a `destinationSpec.aws`, which gloo-core translates to envoy-gloo's Lambda filter.
//!
//! Both poll (AWS has no watch API): every 30 s by default, sooner after a change to the
//! upstreams they serve. A failed call (throttling, AWS unreachable) keeps what was found
//! last and is retried with a backoff.
//!
//! ```no_run
//! use std::sync::Arc;
//! use gloo_core::source::DirectorySource;
//! use gloo_discovery::aws::{Ec2Discovery, LambdaDiscovery};
//! use gloo_discovery::DiscoveryRunner;
//! use gloo_filters::aws::AwsClient;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = AwsClient::new()?;
//! let running = DiscoveryRunner::new()
//!     .plugin(Ec2Discovery::new(client.clone()))
//!     .plugin(LambdaDiscovery::new(client))
//!     .start(Arc::new(DirectorySource::watch("./gloo-config")?));
//! // `running` is a ConfigSource whose aws upstreams carry the discovered functions; feed
//! // `running.endpoints()` (the EC2 instances) to Translator::update_endpoints.
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use gloo_core::model::settings::SettingsSpec;
use gloo_core::model::ResourceRef;
use gloo_filters::aws::{AwsClient, AwsError, Env, SharedCredentialsProvider};

use crate::plugin::{DiscoveryContext, Publisher, Upstreams};
use credentials::{CredentialKey, CredentialSources, RoleUse};

mod credentials;
#[cfg(feature = "ec2")]
mod ec2;
#[cfg(feature = "lambda")]
mod lambda;

#[cfg(feature = "ec2")]
pub use ec2::{describe_instances, Ec2Discovery, Instance, DEFAULT_PORT, EC2_VERSION};
#[cfg(feature = "lambda")]
pub use lambda::{list_functions, LambdaDiscovery, LambdaFunction, FDS_LABEL};

/// Gloo's minimum refresh interval of AWS discovery, and gloo's default.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);

/// Upstreams by what their calls are signed with, each with what the plugin needs of it.
pub(crate) type Groups<M> = BTreeMap<CredentialKey, Vec<(ResourceRef, M)>>;

/// How an AWS plugin polls: the client, the environment its default credentials come from,
/// the refresh interval and the page size of its listings.
#[derive(Debug, Clone)]
pub(crate) struct Polling {
    pub(crate) client: AwsClient,
    pub(crate) env: Env,
    pub(crate) refresh: Duration,
    pub(crate) page_size: Option<u32>,
}

impl Polling {
    /// Through `client`, the process's environment, every 30 s.
    pub(crate) fn new(client: AwsClient) -> Self {
        Polling {
            client,
            env: Env::from_process(),
            refresh: DEFAULT_REFRESH,
            page_size: None,
        }
    }

    /// Settings' `refreshRate` when it is longer than 30 s.
    pub(crate) fn refresh_of(settings: &SettingsSpec) -> Duration {
        settings
            .refresh_rate
            .as_ref()
            .map(|r| r.as_std())
            .unwrap_or_default()
            .max(DEFAULT_REFRESH)
    }

    /// Lists every group (`list`, with the group's credentials) once per refresh interval,
    /// sooner when the groups change, until the runner stops; after each round `publish` gets
    /// the groups and each group's last listing. A group whose listing fails keeps its last
    /// one (logged, naming `what` and its upstreams), and the round after comes after a
    /// backoff.
    pub(crate) async fn run<M, T, Fut>(
        &self,
        mut context: DiscoveryContext,
        role_use: RoleUse,
        what: &'static str,
        group: impl Fn(&Upstreams) -> Groups<M>,
        list: impl Fn(CredentialKey, SharedCredentialsProvider) -> Fut,
        mut publish: impl FnMut(&Publisher, &Groups<M>, &BTreeMap<CredentialKey, T>),
    ) where
        M: PartialEq,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let sources = CredentialSources::new(self.client.clone(), self.env.clone(), role_use);
        let mut last: BTreeMap<CredentialKey, T> = BTreeMap::new();
        let mut failures = 0u32;
        loop {
            let tracked = context.upstreams.borrow_and_update().clone();
            let config = context.config.borrow().clone();
            let groups = group(&tracked);
            let mut failed = false;
            for (key, members) in &groups {
                let listed = match sources.provider(key, &config) {
                    Err(err) => Err(err),
                    Ok(provider) => list(key.clone(), provider).await.map_err(|e| e.to_string()),
                };
                match listed {
                    Ok(found) => {
                        last.insert(key.clone(), found);
                    }
                    Err(err) => {
                        failed = true;
                        let upstreams: Vec<String> =
                            members.iter().map(|(r, _)| r.to_string()).collect();
                        tracing::warn!(
                            region = %key.region,
                            ?upstreams,
                            error = %err,
                            "{what} not listed; the upstreams keep what was found last"
                        );
                    }
                }
            }
            last.retain(|key, _| groups.contains_key(key));
            publish(&context.publisher, &groups, &last);
            let delay = if failed {
                failures = failures.saturating_add(1);
                backoff(failures, self.refresh)
            } else {
                failures = 0;
                self.refresh
            };
            if let Poll::Stop = wait(&mut context, delay, &group).await {
                return;
            }
        }
    }
}

/// The builder methods both AWS plugins share (`$what`: what they list), on a type with a
/// `polling: Polling` field.
macro_rules! polling_builders {
    ($plugin:ident, $what:literal) => {
        impl $plugin {
            /// Discovery through `client`, credentials (and the default region) from the
            /// process's environment, every 30 s.
            pub fn new(client: AwsClient) -> Self {
                $plugin {
                    polling: Polling::new(client),
                }
            }

            /// With Gloo's Settings: `refreshRate` when it is longer than 30 s.
            pub fn from_settings(client: AwsClient, settings: &SettingsSpec) -> Self {
                Self::new(client).refresh_interval(Polling::refresh_of(settings))
            }

            /// The environment the default credential chain (and the default region) are
            /// read from, instead of the process's.
            pub fn env(mut self, env: Env) -> Self {
                self.polling.env = env;
                self
            }

            #[doc = concat!("How often ", $what, " are listed again (at least 10 ms).")]
            pub fn refresh_interval(mut self, refresh: Duration) -> Self {
                self.polling.refresh = refresh.max(Duration::from_millis(10));
                self
            }
        }
    };
}
pub(crate) use polling_builders;

/// What a plugin does after waiting.
pub(crate) enum Poll {
    /// Poll AWS again.
    Again,
    /// The runner stopped.
    Stop,
}

/// The delay before retrying after `failures` failed polls in a row: 1 s, doubling, at most
/// `refresh`.
pub(crate) fn backoff(failures: u32, refresh: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exponent).min(refresh)
}

/// Waits `delay`, or less if the upstreams change in a way `signature` sees (a change that
/// leaves it equal, such as the functions a plugin put into them, does not cut the wait).
pub(crate) async fn wait<S: PartialEq>(
    context: &mut DiscoveryContext,
    delay: Duration,
    signature: impl Fn(&Upstreams) -> S,
) -> Poll {
    let deadline = tokio::time::Instant::now() + delay;
    let current = signature(&context.upstreams.borrow());
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Poll::Again,
            changed = context.upstreams.changed() => {
                if changed.is_err() {
                    return Poll::Stop;
                }
                if signature(&context.upstreams.borrow()) != current {
                    return Poll::Again;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_refresh_interval() {
        let refresh = Duration::from_secs(30);
        let delays: Vec<u64> = (1..=7).map(|n| backoff(n, refresh).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(
            backoff(1, Duration::from_millis(200)),
            Duration::from_millis(200)
        );
        assert_eq!(backoff(u32::MAX, refresh), refresh);
    }
}

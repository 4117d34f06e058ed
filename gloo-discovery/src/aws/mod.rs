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

use std::time::Duration;

use crate::plugin::{DiscoveryContext, Upstreams};

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

//! The tonic implementation of `envoy.service.ratelimit.v3.RateLimitService`.

use std::fmt;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    self, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{
    RateLimitRequest as PbRequest, RateLimitResponse as PbResponse,
};
use tonic::{Request, Response, Status};

use super::convert::{from_proto, to_proto};
use crate::ratelimit::global::{CounterStore, LimitError, RateLimiter};
use crate::ratelimit::redis::RedisStore;

/// `envoy.service.ratelimit.v3.RateLimitService` over a [`RateLimiter`]; see the
/// [module docs](super). Cheap to clone (the limiter is a handle).
pub struct RateLimitService<S = RedisStore> {
    limiter: RateLimiter<S>,
}

impl<S: CounterStore> RateLimitService<S> {
    /// Serves `limiter`'s domains.
    pub fn new(limiter: RateLimiter<S>) -> Self {
        Self { limiter }
    }

    /// The limiter, e.g. to [`set_domain`](RateLimiter::set_domain) on a config update.
    pub fn limiter(&self) -> &RateLimiter<S> {
        &self.limiter
    }

    /// The tonic server to add to a `tonic::transport::Server`.
    pub fn into_server(self) -> RateLimitServiceServer<Self> {
        RateLimitServiceServer::new(self)
    }

    /// Answers one `ShouldRateLimit` request (what the gRPC method does, without gRPC).
    pub async fn check(&self, request: PbRequest) -> Result<PbResponse, Status> {
        let request = from_proto(request)?;
        match self.limiter.should_rate_limit(&request).await {
            Ok(response) => Ok(to_proto(&response)),
            Err(LimitError::InvalidRequest(why)) => Err(Status::invalid_argument(why)),
            // Envoy then applies its `failure_mode_deny`, as with envoyproxy/ratelimit.
            Err(LimitError::Store(e)) => Err(Status::unavailable(e.to_string())),
        }
    }
}

#[tonic::async_trait]
impl<S: CounterStore> rate_limit_service_server::RateLimitService for RateLimitService<S> {
    async fn should_rate_limit(
        &self,
        request: Request<PbRequest>,
    ) -> Result<Response<PbResponse>, Status> {
        self.check(request.into_inner()).await.map(Response::new)
    }
}

impl<S> Clone for RateLimitService<S> {
    fn clone(&self) -> Self {
        Self {
            limiter: self.limiter.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for RateLimitService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitService")
            .field("limiter", &self.limiter)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::future::{ready, Ready};

    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::{
        Entry, RateLimitOverride,
    };
    use envoy_types::pb::google::protobuf::UInt64Value;
    use tonic::Code as GrpcCode;

    use envoy_types::pb::envoy::extensions::common::ratelimit::v3 as common;
    use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
        self, rate_limit, DescriptorStatus as PbStatus,
    };
    use envoy_types::pb::google::protobuf::Duration as PbDuration;

    use super::*;
    use crate::ratelimit::global::{
        CounterStore, Descriptor, Increment, MemoryStore, RateLimit, RateLimitDomain, StoreError,
        Unit,
    };

    fn descriptor(entries: &[(&str, &str)]) -> common::RateLimitDescriptor {
        common::RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(k, v)| Entry {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn request(descriptors: Vec<common::RateLimitDescriptor>) -> PbRequest {
        PbRequest {
            domain: "edge".into(),
            descriptors,
            hits_addend: 0,
        }
    }

    fn service() -> RateLimitService<MemoryStore> {
        let limiter = RateLimiter::new(MemoryStore::new())
            .clock(|| 7_200 + 30)
            .domain(
                RateLimitDomain::new("edge")
                    .descriptor(
                        Descriptor::new("user")
                            .rate_limit(RateLimit::new(10, Unit::Hour).name("per-user")),
                    )
                    .descriptor(Descriptor::new("internal").unlimited()),
            )
            .expect("valid");
        RateLimitService::new(limiter)
    }

    #[tokio::test]
    async fn statuses_are_envoys_messages() {
        let svc = service();
        let mut user = descriptor(&[("user", "alice")]);
        user.hits_addend = Some(UInt64Value { value: 4 });
        let res = svc
            .check(request(vec![
                user,
                descriptor(&[("internal", "x")]),
                descriptor(&[("other", "x")]),
            ]))
            .await
            .expect("answer");
        assert_eq!(res.overall_code, rate_limit_response::Code::Ok as i32);
        assert_eq!(
            res.statuses[0],
            PbStatus {
                code: rate_limit_response::Code::Ok as i32,
                current_limit: Some(rate_limit_response::RateLimit {
                    name: "per-user".into(),
                    requests_per_unit: 10,
                    unit: rate_limit::Unit::Hour as i32,
                }),
                limit_remaining: 6,
                duration_until_reset: Some(PbDuration {
                    seconds: 3_600 - 30,
                    nanos: 0
                }),
                ..Default::default()
            }
        );
        assert_eq!(res.statuses[1].limit_remaining, u32::MAX);
        assert_eq!(res.statuses[1].current_limit, None);
        assert_eq!(
            res.statuses[2],
            PbStatus {
                code: rate_limit_response::Code::Ok as i32,
                ..Default::default()
            }
        );

        // Envoy's limit override: 1 per second for this descriptor.
        let mut overridden = descriptor(&[("user", "bob")]);
        overridden.limit = Some(RateLimitOverride {
            requests_per_unit: 1,
            unit: rate_limit::Unit::Second as i32,
        });
        svc.check(request(vec![overridden.clone()]))
            .await
            .expect("answer");
        let res = svc.check(request(vec![overridden])).await.expect("answer");
        assert_eq!(
            res.overall_code,
            rate_limit_response::Code::OverLimit as i32
        );
        assert_eq!(
            res.statuses[0].code,
            rate_limit_response::Code::OverLimit as i32
        );
    }

    #[tokio::test]
    async fn bad_requests_and_store_failures_are_grpc_errors() {
        let svc = service();
        let err = svc.check(request(vec![])).await.unwrap_err();
        assert_eq!(err.code(), GrpcCode::InvalidArgument);
        let mut bad_unit = descriptor(&[("user", "x")]);
        bad_unit.limit = Some(RateLimitOverride {
            requests_per_unit: 1,
            unit: 42,
        });
        let err = svc.check(request(vec![bad_unit])).await.unwrap_err();
        assert_eq!(err.code(), GrpcCode::InvalidArgument);
        assert!(err.message().contains("descriptors[0].limit.unit"), "{err}");

        #[derive(Clone, Debug)]
        struct Down;
        impl CounterStore for Down {
            type Future = Ready<Result<Vec<u64>, StoreError>>;
            fn increment(&self, _now: u64, _increments: Vec<Increment>) -> Self::Future {
                ready(Err(StoreError::backend("connection refused")))
            }
        }
        let limiter = RateLimiter::new(Down)
            .domain(
                RateLimitDomain::new("edge")
                    .descriptor(Descriptor::new("user").rate_limit(RateLimit::new(1, Unit::Hour))),
            )
            .expect("valid");
        let err = RateLimitService::new(limiter)
            .check(request(vec![descriptor(&[("user", "x")])]))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            GrpcCode::Unavailable,
            "Envoy then applies failure_mode_deny"
        );
    }
}

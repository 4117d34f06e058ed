//! Behaviour tests of the global limiter and its middleware.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, Service, ServiceExt};

use super::*;
use crate::ratelimit::RateLimited;

type Body = Full<Bytes>;

/// A clock the test moves by hand (Unix seconds).
#[derive(Clone)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn at(now: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now)))
    }
    fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }
    fn limiter(&self, domain: RateLimitDomain) -> RateLimiter {
        let clock = self.0.clone();
        RateLimiter::new(MemoryStore::new())
            .clock(move || clock.load(Ordering::SeqCst))
            .domain(domain)
            .expect("valid test domain")
    }
}

fn desc(entries: &[(&str, &str)]) -> RateLimitDescriptor {
    entries
        .iter()
        .fold(RateLimitDescriptor::new(), |d, (k, v)| d.entry(*k, *v))
}

fn req(domain: &str, descriptors: Vec<RateLimitDescriptor>) -> RateLimitRequest {
    RateLimitRequest::new(domain).descriptors(descriptors)
}

async fn ask(limiter: &RateLimiter, request: &RateLimitRequest) -> RateLimitResponse {
    limiter
        .should_rate_limit(request)
        .await
        .expect("memory store never fails")
}

/// The limit that applied to a single-descriptor request, or `None`.
async fn limit_of(limiter: &RateLimiter, d: RateLimitDescriptor) -> Option<u32> {
    let res = ask(limiter, &req("d", vec![d])).await;
    res.statuses[0]
        .current_limit
        .as_ref()
        .map(RateLimit::requests_per_unit)
}

fn limit(n: u32) -> RateLimit {
    RateLimit::new(n, Unit::Minute)
}

#[tokio::test]
async fn tree_matching_follows_envoyproxy_ratelimit() {
    let clock = TestClock::at(1_000_000);
    let limiter = clock.limiter(
        RateLimitDomain::new("d")
            // key only: every value, each counted apart
            .descriptor(Descriptor::new("user").rate_limit(limit(10)))
            // exact value wins over key only
            .descriptor(
                Descriptor::new("user")
                    .value("admin")
                    .rate_limit(limit(100)),
            )
            // wildcard value, between exact and key only
            .descriptor(Descriptor::new("path").value("/api/*").rate_limit(limit(7)))
            .descriptor(Descriptor::new("path").rate_limit(limit(3)))
            // nested: the limit of the node reached by the last entry
            .descriptor(
                Descriptor::new("tenant")
                    .rate_limit(limit(50))
                    .descriptor(Descriptor::new("plan").value("BASIC").rate_limit(limit(5)))
                    .descriptor(Descriptor::new("plan").rate_limit(limit(20))),
            )
            .descriptor(
                Descriptor::new("region")
                    .descriptor(Descriptor::new("zone").value("a").rate_limit(limit(2))),
            ),
    );

    assert_eq!(
        limit_of(&limiter, desc(&[("user", "alice")])).await,
        Some(10)
    );
    assert_eq!(
        limit_of(&limiter, desc(&[("user", "admin")])).await,
        Some(100)
    );
    assert_eq!(
        limit_of(&limiter, desc(&[("path", "/api/v1")])).await,
        Some(7)
    );
    assert_eq!(
        limit_of(&limiter, desc(&[("path", "/other")])).await,
        Some(3)
    );
    assert_eq!(
        limit_of(&limiter, desc(&[("tenant", "t1")])).await,
        Some(50)
    );
    assert_eq!(
        limit_of(&limiter, desc(&[("tenant", "t1"), ("plan", "BASIC")])).await,
        Some(5)
    );
    assert_eq!(
        limit_of(&limiter, desc(&[("tenant", "t1"), ("plan", "PLUS")])).await,
        Some(20)
    );
    // A node without a limit, and paths that leave the tree, get none.
    assert_eq!(limit_of(&limiter, desc(&[("region", "eu")])).await, None);
    assert_eq!(
        limit_of(&limiter, desc(&[("region", "eu"), ("zone", "b")])).await,
        None
    );
    assert_eq!(
        limit_of(&limiter, desc(&[("region", "eu"), ("zone", "a")])).await,
        Some(2)
    );
    // A limit on a leaf does not apply to a longer descriptor ...
    assert_eq!(
        limit_of(&limiter, desc(&[("user", "alice"), ("extra", "x")])).await,
        None
    );
    // ... nor to a different first key, nor to the wrong order.
    assert_eq!(limit_of(&limiter, desc(&[("plan", "BASIC")])).await, None);
    assert_eq!(
        limit_of(&limiter, desc(&[("plan", "BASIC"), ("tenant", "t1")])).await,
        None
    );
}

#[tokio::test]
async fn key_only_descriptors_count_each_value_apart() {
    let clock = TestClock::at(0);
    let limiter = clock.limiter(
        RateLimitDomain::new("d").descriptor(Descriptor::new("user").rate_limit(limit(2))),
    );
    for _ in 0..2 {
        assert!(!ask(&limiter, &req("d", vec![desc(&[("user", "alice")])]))
            .await
            .is_over_limit());
    }
    assert!(ask(&limiter, &req("d", vec![desc(&[("user", "alice")])]))
        .await
        .is_over_limit());
    // Bob has his own counter.
    let bob = ask(&limiter, &req("d", vec![desc(&[("user", "bob")])])).await;
    assert!(!bob.is_over_limit());
    assert_eq!(bob.statuses[0].limit_remaining, 1);
}

#[tokio::test]
async fn statuses_are_filled_as_envoyproxy_ratelimit_does() {
    let clock = TestClock::at(3_600 * 10 + 1_234); // 1,234 s into an hour window
    let limiter = clock.limiter(
        RateLimitDomain::new("d")
            .descriptor(
                Descriptor::new("a").rate_limit(RateLimit::new(2, Unit::Hour).name("per-a")),
            )
            .descriptor(Descriptor::new("free").unlimited()),
    );
    let request = req(
        "d",
        vec![
            desc(&[("a", "1")]),
            desc(&[("free", "x")]),
            desc(&[("none", "x")]),
        ],
    );
    let first = ask(&limiter, &request).await;
    assert_eq!(first.overall_code, Code::Ok);
    assert_eq!(
        first.statuses[0],
        DescriptorStatus {
            code: Code::Ok,
            current_limit: Some(RateLimit::new(2, Unit::Hour).name("per-a")),
            limit_remaining: 1,
            duration_until_reset: Some(Duration::from_secs(3_600 - 1_234)),
        }
    );
    // Unlimited: OK, u32::MAX remaining, no limit; no match: OK, nothing.
    assert_eq!(first.statuses[1].limit_remaining, u32::MAX);
    assert_eq!(first.statuses[1].current_limit, None);
    assert_eq!(first.statuses[2].limit_remaining, 0);
    assert_eq!(first.statuses[2].current_limit, None);
    assert_eq!(first.statuses[2].duration_until_reset, None);

    ask(&limiter, &request).await;
    let third = ask(&limiter, &request).await;
    assert_eq!(third.overall_code, Code::OverLimit);
    assert_eq!(third.statuses[0].code, Code::OverLimit);
    assert_eq!(third.statuses[0].limit_remaining, 0);
    assert_eq!(third.statuses[1].code, Code::Ok, "unlimited is never over");
    // Only the limited descriptor is counted: one counter in the store.
    assert_eq!(limiter.store().len(), 1);
}

#[tokio::test]
async fn fixed_windows_reset_at_multiples_of_the_unit() {
    let clock = TestClock::at(120); // start of a minute
    let limiter = clock
        .limiter(RateLimitDomain::new("d").descriptor(Descriptor::new("k").rate_limit(limit(1))));
    let r = req("d", vec![desc(&[("k", "v")])]);
    assert!(!ask(&limiter, &r).await.is_over_limit());
    clock.set(179); // same window
    let over = ask(&limiter, &r).await;
    assert!(over.is_over_limit());
    assert_eq!(
        over.statuses[0].duration_until_reset,
        Some(Duration::from_secs(1))
    );
    clock.set(180); // next window: a fresh counter, whatever happened just before
    let fresh = ask(&limiter, &r).await;
    assert!(!fresh.is_over_limit());
    assert_eq!(
        fresh.statuses[0].duration_until_reset,
        Some(Duration::from_secs(60))
    );
}

#[tokio::test]
async fn hits_addend_counts_several_and_zero_only_checks() {
    let clock = TestClock::at(0);
    let limiter = clock
        .limiter(RateLimitDomain::new("d").descriptor(Descriptor::new("k").rate_limit(limit(10))));
    let d = || desc(&[("k", "v")]);
    let r = ask(&limiter, &req("d", vec![d()]).hits_addend(4)).await;
    assert_eq!(r.statuses[0].limit_remaining, 6);
    // Per-descriptor hits override the request's.
    let r = ask(&limiter, &req("d", vec![d().hits_addend(5)]).hits_addend(4)).await;
    assert_eq!(r.statuses[0].limit_remaining, 1);
    // Zero checks without counting.
    let r = ask(&limiter, &req("d", vec![d().hits_addend(0)])).await;
    assert_eq!(r.statuses[0].limit_remaining, 1);
    assert!(!r.is_over_limit());
    // 2 more hits take it past 10: over, and the remaining is 0.
    let r = ask(&limiter, &req("d", vec![d()]).hits_addend(2)).await;
    assert!(r.is_over_limit());
    assert_eq!(r.statuses[0].limit_remaining, 0);
    // A request hits_addend of 0 counts as 1.
    let r = ask(
        &limiter,
        &req("d", vec![desc(&[("k", "w")])]).hits_addend(0),
    )
    .await;
    assert_eq!(r.statuses[0].limit_remaining, 9);
}

#[tokio::test]
async fn shadow_mode_counts_but_never_refuses() {
    let clock = TestClock::at(0);
    let limiter = clock.limiter(
        RateLimitDomain::new("d")
            .descriptor(
                Descriptor::new("shadow")
                    .rate_limit(limit(1))
                    .shadow_mode(true),
            )
            .descriptor(Descriptor::new("real").rate_limit(limit(1))),
    );
    let shadow = || req("d", vec![desc(&[("shadow", "x")])]);
    ask(&limiter, &shadow()).await;
    let second = ask(&limiter, &shadow()).await;
    assert_eq!(second.overall_code, Code::Ok);
    assert_eq!(second.statuses[0].code, Code::Ok);
    assert_eq!(second.statuses[0].limit_remaining, 0, "still counted");

    // A shadowed descriptor does not hide a real one in the same request.
    let both = || req("d", vec![desc(&[("shadow", "x")]), desc(&[("real", "x")])]);
    ask(&limiter, &both()).await;
    assert!(ask(&limiter, &both()).await.is_over_limit());

    // Global shadow mode: statuses still say over, the overall code never does.
    let limiter = TestClock::at(0)
        .limiter(RateLimitDomain::new("d").descriptor(Descriptor::new("real").rate_limit(limit(1))))
        .shadow_mode(true);
    let real = || req("d", vec![desc(&[("real", "x")])]);
    ask(&limiter, &real()).await;
    let r = ask(&limiter, &real()).await;
    assert_eq!(r.overall_code, Code::Ok);
    assert_eq!(r.statuses[0].code, Code::OverLimit);
}

#[tokio::test]
async fn weights_keep_only_the_highest_priority_rules_and_always_apply() {
    let clock = TestClock::at(0);
    let limiter = clock.limiter(
        RateLimitDomain::new("d")
            .descriptor(
                Descriptor::new("type")
                    .value("Messenger")
                    .rate_limit(limit(1)),
            )
            .descriptor(
                Descriptor::new("type")
                    .value("Whatsapp")
                    .rate_limit(limit(1))
                    .descriptor(
                        Descriptor::new("number")
                            .value("411")
                            .rate_limit(limit(100))
                            .weight(1),
                    ),
            )
            .descriptor(
                Descriptor::new("ip")
                    .rate_limit(limit(3))
                    .always_apply(true),
            ),
    );
    // The Whatsapp/411 rule (weight 1) shadows the Whatsapp rule (weight 0): no 1/min limit.
    let r = || {
        req(
            "d",
            vec![
                desc(&[("type", "Whatsapp")]),
                desc(&[("type", "Whatsapp"), ("number", "411")]),
                desc(&[("ip", "1.2.3.4")]),
            ],
        )
    };
    let first = ask(&limiter, &r()).await;
    assert_eq!(
        first.statuses[0].current_limit, None,
        "lower weight: not considered"
    );
    assert_eq!(first.statuses[1].limit_remaining, 99);
    assert_eq!(
        first.statuses[2].limit_remaining, 2,
        "always_apply counts regardless"
    );
    let second = ask(&limiter, &r()).await;
    assert!(
        !second.is_over_limit(),
        "the 1/min rule is ignored, not counted"
    );
    ask(&limiter, &r()).await;
    let fourth = ask(&limiter, &r()).await;
    assert!(
        fourth.is_over_limit(),
        "the always-apply 3/min rule refuses"
    );
    assert_eq!(fourth.statuses[2].code, Code::OverLimit);

    // Without the weighted descriptor the weight-0 rule applies.
    let alone = ask(&limiter, &req("d", vec![desc(&[("type", "Whatsapp")])])).await;
    assert_eq!(alone.statuses[0].limit_remaining, 0);
}

fn set(entries: &[(&str, &str)]) -> RateLimitDescriptor {
    entries.iter().fold(
        RateLimitDescriptor::new().entry("generic_key", SET_DESCRIPTOR_VALUE),
        |d, (k, v)| d.entry(*k, *v),
    )
}

#[tokio::test]
async fn set_style_rules_match_in_any_order_first_rule_wins() {
    let clock = TestClock::at(0);
    let limiter = clock.limiter(
        RateLimitDomain::new("d")
            .set_descriptor(
                SetDescriptor::new(limit(5))
                    .simple_descriptor("type", Some("a"))
                    .simple_descriptor("number", Some("1")),
            )
            .set_descriptor(SetDescriptor::new(limit(10)).simple_descriptor("type", Some("a")))
            .set_descriptor(SetDescriptor::new(limit(1000))),
    );
    // Order does not matter; other entries (color) are ignored.
    let r1 = ask(
        &limiter,
        &req(
            "d",
            vec![set(&[("number", "1"), ("color", "red"), ("type", "a")])],
        ),
    )
    .await;
    assert_eq!(
        r1.statuses[0]
            .current_limit
            .as_ref()
            .map(RateLimit::requests_per_unit),
        Some(5)
    );
    // A subset match picks the second rule.
    let r2 = ask(
        &limiter,
        &req("d", vec![set(&[("type", "a"), ("number", "2")])]),
    )
    .await;
    assert_eq!(
        r2.statuses[0]
            .current_limit
            .as_ref()
            .map(RateLimit::requests_per_unit),
        Some(10)
    );
    // The rule without simple descriptors matches anything set-style.
    let r3 = ask(&limiter, &req("d", vec![set(&[("type", "b")])])).await;
    assert_eq!(
        r3.statuses[0]
            .current_limit
            .as_ref()
            .map(RateLimit::requests_per_unit),
        Some(1000)
    );
    // Tree-style descriptors never match set rules.
    let r4 = ask(&limiter, &req("d", vec![desc(&[("type", "a")])])).await;
    assert_eq!(r4.statuses[0].current_limit, None);
    // Set-style and order-insensitive counting: both orders share one counter.
    let r5 = ask(
        &limiter,
        &req("d", vec![set(&[("type", "a"), ("number", "1")])]),
    )
    .await;
    assert_eq!(r5.statuses[0].limit_remaining, 3);
}

#[tokio::test]
async fn set_style_always_apply_rules_are_counted_too() {
    let clock = TestClock::at(0);
    let limiter = clock.limiter(
        RateLimitDomain::new("d")
            .set_descriptor(
                SetDescriptor::new(limit(10)).simple_descriptor("account", None::<&str>),
            )
            .set_descriptor(SetDescriptor::new(limit(20)).simple_descriptor("plan", Some("BASIC")))
            .set_descriptor(
                SetDescriptor::new(limit(2))
                    .simple_descriptor("plan", Some("BASIC"))
                    .always_apply(true),
            ),
    );
    let r = || req("d", vec![set(&[("plan", "BASIC"), ("account", "42")])]);
    // Rule 1 (first match, 10/min) and rule 3 (always apply, 2/min) apply; rule 2 does not.
    let first = ask(&limiter, &r()).await;
    assert_eq!(
        first.statuses[0]
            .current_limit
            .as_ref()
            .map(RateLimit::requests_per_unit),
        Some(2),
        "the status reports the rule closest to its limit"
    );
    assert_eq!(first.statuses[0].limit_remaining, 1);
    assert_eq!(limiter.store().len(), 2, "two rules counted");
    ask(&limiter, &r()).await;
    assert!(
        ask(&limiter, &r()).await.is_over_limit(),
        "the always-apply rule refuses"
    );
    // Each account value is its own counter for rule 1; rule 3 keys on plan only.
    let other = ask(
        &limiter,
        &req("d", vec![set(&[("plan", "BASIC"), ("account", "7")])]),
    )
    .await;
    assert!(
        other.is_over_limit(),
        "rule 3's counter is per plan, shared by accounts"
    );
}

#[tokio::test]
async fn limit_override_and_unknown_domains() {
    let clock = TestClock::at(0);
    let limiter = clock
        .limiter(RateLimitDomain::new("d").descriptor(Descriptor::new("k").rate_limit(limit(100))));
    let over = desc(&[("k", "v")]).limit_override(RateLimit::new(1, Unit::Second));
    ask(&limiter, &req("d", vec![over.clone()])).await;
    let r = ask(&limiter, &req("d", vec![over])).await;
    assert!(r.is_over_limit());
    assert_eq!(
        r.statuses[0].current_limit,
        Some(RateLimit::new(1, Unit::Second))
    );

    let unknown = ask(&limiter, &req("nope", vec![desc(&[("k", "v")])])).await;
    assert!(!unknown.is_over_limit());
    assert_eq!(unknown.statuses, vec![DescriptorStatus::no_limit()]);

    let err = limiter
        .should_rate_limit(&req("d", vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, LimitError::InvalidRequest(_)), "{err}");
    let err = limiter
        .should_rate_limit(&req("", vec![desc(&[("k", "v")])]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("domain"), "{err}");
}

#[test]
fn invalid_domains_name_the_offending_descriptor() {
    let limiter = RateLimiter::new(MemoryStore::new());
    let err = limiter
        .set_domain(
            RateLimitDomain::new("edge").descriptor(
                Descriptor::new("plan")
                    .descriptor(Descriptor::new("tier").value("gold"))
                    .descriptor(Descriptor::new("tier").value("gold")),
            ),
        )
        .unwrap_err();
    assert_eq!(err.domain(), "edge");
    assert_eq!(err.path(), "descriptors[0].descriptors[1]");
    assert!(
        err.to_string()
            .contains("duplicate descriptor \"tier_gold\""),
        "{err}"
    );

    let err = limiter
        .set_domain(RateLimitDomain::new("edge").descriptor(Descriptor::new("")))
        .unwrap_err();
    assert_eq!(err.path(), "descriptors[0]");

    let err = limiter
        .set_domain(
            RateLimitDomain::new("edge")
                .descriptor(Descriptor::new("k").rate_limit(RateLimit::new(0, Unit::Second))),
        )
        .unwrap_err();
    assert_eq!(err.path(), "descriptors[0].rateLimit");

    let err = limiter
        .set_domain(
            RateLimitDomain::new("edge").set_descriptor(
                SetDescriptor::new(limit(1))
                    .simple_descriptor("a", None::<&str>)
                    .simple_descriptor("a", Some("x")),
            ),
        )
        .unwrap_err();
    assert_eq!(err.path(), "setDescriptors[0].simpleDescriptors[1]");

    assert!(limiter.set_domain(RateLimitDomain::new("")).is_err());
}

#[tokio::test]
async fn domains_can_be_replaced_at_run_time() {
    let limiter = TestClock::at(0)
        .limiter(RateLimitDomain::new("d").descriptor(Descriptor::new("k").rate_limit(limit(1))));
    let r = || req("d", vec![desc(&[("k", "v")])]);
    ask(&limiter, &r()).await;
    assert!(ask(&limiter, &r()).await.is_over_limit());
    limiter
        .set_domain(RateLimitDomain::new("d").descriptor(Descriptor::new("k").rate_limit(limit(5))))
        .expect("valid");
    // Same counter key, bigger limit.
    assert!(!ask(&limiter, &r()).await.is_over_limit());
    // A bad update changes nothing.
    assert!(limiter
        .set_domain(RateLimitDomain::new("d").descriptor(Descriptor::new("")))
        .is_err());
    assert_eq!(ask(&limiter, &r()).await.statuses[0].limit_remaining, 1);
}

// ---------------------------------------------------------------------------------------------
// The middleware
// ---------------------------------------------------------------------------------------------

fn counting(
    calls: Arc<AtomicUsize>,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone
{
    service_fn(move |_req: Request<Body>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello")))) }
    })
}

fn from(ip: [u8; 4], user: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder();
    if let Some(user) = user {
        builder = builder.header("x-user", user);
    }
    let mut req = builder.body(Body::default()).expect("request");
    req.extensions_mut().insert(SocketAddr::from((ip, 40_000)));
    req
}

fn header(res: &Response<Body>, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_owned()
}

#[tokio::test]
async fn refusals_are_envoys_ratelimit_filter_replies() {
    let calls = Arc::new(AtomicUsize::new(0));
    let clock = TestClock::at(600 + 15); // 15 s into a minute, 15 s into an hour ... of 600
    let limiter = clock.limiter(
        RateLimitDomain::new("edge")
            .descriptor(
                Descriptor::new("remote_address").rate_limit(RateLimit::new(2, Unit::Minute)),
            )
            .descriptor(
                Descriptor::new("user").rate_limit(RateLimit::new(10, Unit::Hour).name("per-user")),
            ),
    );
    let policy = RateLimitPolicy::new()
        .rate_limit(RateLimitActions::new().remote_address())
        .rate_limit(RateLimitActions::new().request_header("x-user", "user"));
    let svc = GlobalRateLimitLayer::new(limiter, "edge", policy)
        .x_ratelimit_headers(true)
        .retry_after(true)
        .layer(counting(calls.clone()));

    let ok = svc
        .clone()
        .oneshot(from([192, 0, 2, 1], Some("alice")))
        .await
        .expect("infallible");
    assert_eq!(ok.status(), StatusCode::OK);
    // Remaining: 1 (address) vs 9 (user): the address status wins; the quota policy lists
    // both, in descriptor order, with Envoy's `w=` and the limit's name.
    assert_eq!(
        header(&ok, "x-ratelimit-limit"),
        "2, 2;w=60, 10;w=3600;name=\"per-user\""
    );
    assert_eq!(header(&ok, "x-ratelimit-remaining"), "1");
    assert_eq!(header(&ok, "x-ratelimit-reset"), "45");
    assert!(ok.headers().get("x-envoy-ratelimited").is_none());
    assert!(ok.extensions().get::<RateLimited>().is_none());

    svc.clone()
        .oneshot(from([192, 0, 2, 1], Some("alice")))
        .await
        .expect("infallible");
    let limited = svc
        .clone()
        .oneshot(from([192, 0, 2, 1], Some("alice")))
        .await
        .expect("infallible");
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "x-envoy-ratelimited"), "true");
    assert_eq!(header(&limited, "x-ratelimit-remaining"), "0");
    assert_eq!(header(&limited, "retry-after"), "45");
    assert!(limited.headers().get("content-type").is_none());
    assert!(limited.extensions().get::<RateLimited>().is_some());
    let body = limited
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert!(body.is_empty(), "Envoy's 429 has an empty body");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the refused request never reached the service"
    );

    // Another address is counted apart; without x-user only one descriptor is built.
    let other = svc
        .clone()
        .oneshot(from([192, 0, 2, 2], None))
        .await
        .expect("infallible");
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(header(&other, "x-ratelimit-limit"), "2, 2;w=60");
}

#[tokio::test]
async fn no_descriptor_means_no_call_to_the_limiter() {
    let calls = Arc::new(AtomicUsize::new(0));
    let limiter = TestClock::at(0).limiter(
        RateLimitDomain::new("edge").descriptor(Descriptor::new("user").rate_limit(limit(1))),
    );
    let svc = GlobalRateLimitLayer::new(
        limiter.clone(),
        "edge",
        RateLimitPolicy::new().rate_limit(RateLimitActions::new().request_header("x-user", "user")),
    )
    .x_ratelimit_headers(true)
    .layer(counting(calls.clone()));
    for _ in 0..3 {
        let res = svc
            .clone()
            .oneshot(from([192, 0, 2, 1], None))
            .await
            .expect("infallible");
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get("x-ratelimit-limit").is_none());
    }
    assert!(limiter.store().is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// A store that always fails.
#[derive(Clone, Debug)]
struct Broken;

impl CounterStore for Broken {
    type Future = Ready<Result<Vec<u64>, StoreError>>;
    fn increment(&self, _now: u64, _increments: Vec<Increment>) -> Self::Future {
        ready(Err(StoreError::backend("connection refused")))
    }
}

#[tokio::test]
async fn store_failures_follow_failure_mode_deny() {
    let calls = Arc::new(AtomicUsize::new(0));
    let limiter = RateLimiter::new(Broken)
        .domain(
            RateLimitDomain::new("edge")
                .descriptor(Descriptor::new("remote_address").rate_limit(limit(1))),
        )
        .expect("valid");
    let policy = RateLimitPolicy::new().rate_limit(RateLimitActions::new().remote_address());

    // Fail open (the default): passes, without headers.
    let open = GlobalRateLimitLayer::new(limiter.clone(), "edge", policy.clone())
        .x_ratelimit_headers(true)
        .layer(counting(calls.clone()));
    for _ in 0..3 {
        let res = open
            .clone()
            .oneshot(from([192, 0, 2, 1], None))
            .await
            .expect("infallible");
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get("x-ratelimit-limit").is_none());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Fail closed: Envoy's 500 with an empty body; the service is not called.
    let closed = GlobalRateLimitLayer::new(limiter, "edge", policy)
        .failure_mode_deny(true)
        .layer(counting(calls.clone()));
    let res = closed
        .oneshot(from([192, 0, 2, 1], None))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.extensions().get::<RateLimited>().is_none());
    assert!(res.extensions().get::<LimiterFailed>().is_some());
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert!(body.is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn header_value_match_and_set_style_actions() {
    let head_req = |headers: &[(&str, &str)]| {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request")
    };
    let policy = RateLimitPolicy::new()
        .rate_limit(RateLimitActions::new().header_value_match(
            "get",
            true,
            [
                HeaderMatch::exact("x-method", "GET"),
                HeaderMatch::present("x-id", true),
            ],
        ))
        .rate_limit(RateLimitActions::new().header_value_match(
            "not-get",
            false,
            [HeaderMatch::exact("x-method", "GET")],
        ))
        .rate_limit(
            RateLimitActions::set_style()
                .request_header("x-type", "type")
                .request_header("x-number", "number"),
        );
    let ds = policy.extract(&head_req(&[
        ("x-method", "GET"),
        ("x-id", "1"),
        ("x-number", "5"),
    ]));
    assert_eq!(ds.len(), 2);
    assert_eq!(
        ds[0],
        RateLimitDescriptor::new().entry("header_match", "get")
    );
    // Set-style: the marker first, a missing header only drops its entry.
    assert_eq!(ds[1], set(&[("number", "5")]));
    assert!(ds[1].is_set_style());

    let ds = policy.extract(&head_req(&[("x-method", "POST")]));
    assert_eq!(
        ds[0],
        RateLimitDescriptor::new().entry("header_match", "not-get")
    );
    // A missing header drops an ordered descriptor entirely.
    let ordered = RateLimitPolicy::new().rate_limit(
        RateLimitActions::new()
            .generic_key("api")
            .request_header("x-user", "user"),
    );
    assert!(ordered.extract(&head_req(&[])).is_empty());
    let skip = RateLimitPolicy::new().rate_limit(
        RateLimitActions::new()
            .generic_key("api")
            .request_header_skip_if_absent("x-user", "user"),
    );
    assert_eq!(
        skip.extract(&head_req(&[])),
        vec![RateLimitDescriptor::new().entry("generic_key", "api")]
    );
}

#[tokio::test]
async fn basic_limits_count_users_and_anonymous_addresses_apart() {
    let basic = BasicRateLimit::new("default.petstore")
        .authorized_limits(RateLimit::new(3, Unit::Minute))
        .anonymous_limits(RateLimit::new(1, Unit::Minute));
    let limiter = TestClock::at(0).limiter(
        RateLimitDomain::new("ingress")
            .descriptors(basic.descriptors())
            .descriptors(
                BasicRateLimit::new("other")
                    .anonymous_limits(RateLimit::new(1, Unit::Minute))
                    .descriptors(),
            ),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = GlobalRateLimitLayer::new(limiter.clone(), "ingress", basic.policy())
        .layer(counting(calls.clone()));
    let user = |ip: [u8; 4], id: Option<&str>| {
        let mut req = from(ip, None);
        if let Some(id) = id {
            req.headers_mut()
                .insert(DEFAULT_USER_ID_HEADER, id.parse().expect("header value"));
        }
        req
    };
    let status = |svc: &_, req| {
        let svc: &GlobalRateLimit<_, RateLimitPolicy> = svc;
        let fut = svc.clone().oneshot(req);
        async move { fut.await.expect("infallible").status() }
    };

    // Anonymous: 1 per address.
    assert_eq!(
        status(&svc, user([192, 0, 2, 1], None)).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&svc, user([192, 0, 2, 1], None)).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&svc, user([192, 0, 2, 2], None)).await,
        StatusCode::OK
    );
    // Authenticated from the same (exhausted) address: 3 per user id.
    for _ in 0..3 {
        assert_eq!(
            status(&svc, user([192, 0, 2, 1], Some("alice"))).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        status(&svc, user([192, 0, 2, 1], Some("alice"))).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&svc, user([192, 0, 2, 1], Some("bob"))).await,
        StatusCode::OK
    );

    // Another virtual host's basic limits are counted apart.
    let other = GlobalRateLimitLayer::new(
        limiter,
        "ingress",
        BasicRateLimit::new("other")
            .anonymous_limits(RateLimit::new(1, Unit::Minute))
            .policy(),
    )
    .layer(counting(calls));
    assert_eq!(
        status(&other, user([192, 0, 2, 1], None)).await,
        StatusCode::OK
    );
}

/// A limiter with one descriptor `user` of 1 per minute, and a service counting calls.
fn one_per_user() -> RateLimiter {
    TestClock::at(60 + 10).limiter(
        RateLimitDomain::new("edge").descriptor(Descriptor::new("user").rate_limit(limit(1))),
    )
}

fn by_user() -> RateLimitPolicy {
    RateLimitPolicy::new().rate_limit(RateLimitActions::new().request_header("x-user", "user"))
}

#[tokio::test]
async fn request_type_picks_internal_or_external_requests_as_envoy_does() {
    let calls = Arc::new(AtomicUsize::new(0));
    let internal = |user: &str| {
        let mut req = from([192, 0, 2, 1], Some(user));
        req.headers_mut()
            .insert("x-envoy-internal", http::HeaderValue::from_static("true"));
        req
    };
    let status = |svc: &GlobalRateLimit<_, RateLimitPolicy>, req| {
        let svc = svc.clone();
        async move { svc.oneshot(req).await.expect("infallible").status() }
    };

    // `external`: internal requests are never counted.
    let external = GlobalRateLimitLayer::new(one_per_user(), "edge", by_user())
        .request_type(RequestType::External)
        .layer(counting(calls.clone()));
    for _ in 0..3 {
        assert_eq!(status(&external, internal("alice")).await, StatusCode::OK);
    }
    assert_eq!(
        status(&external, from([192, 0, 2, 1], Some("alice"))).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&external, from([192, 0, 2, 1], Some("alice"))).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // `internal`: only `x-envoy-internal: true` counts (any other value is external).
    let only_internal = GlobalRateLimitLayer::new(one_per_user(), "edge", by_user())
        .request_type(RequestType::Internal)
        .layer(counting(calls.clone()));
    let mut not_true = from([192, 0, 2, 1], Some("bob"));
    not_true
        .headers_mut()
        .insert("x-envoy-internal", http::HeaderValue::from_static("yes"));
    assert_eq!(status(&only_internal, not_true).await, StatusCode::OK);
    assert_eq!(
        status(&only_internal, from([192, 0, 2, 1], Some("bob"))).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&only_internal, internal("bob")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&only_internal, internal("bob")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(RequestType::from_envoy("both"), Some(RequestType::Both));
    assert_eq!(
        RequestType::from_envoy("external"),
        Some(RequestType::External)
    );
    assert_eq!(RequestType::from_envoy("Both"), None);
}

#[tokio::test]
async fn statuses_and_enforcement_follow_envoys_options() {
    let calls = Arc::new(AtomicUsize::new(0));
    // `rate_limited_status`: 503 is used; below 400 Envoy (and this layer) use 429.
    let custom = GlobalRateLimitLayer::new(one_per_user(), "edge", by_user())
        .rate_limited_status(StatusCode::SERVICE_UNAVAILABLE)
        .layer(counting(calls.clone()));
    custom
        .clone()
        .oneshot(from([192, 0, 2, 1], Some("a")))
        .await
        .expect("infallible");
    let refused = custom
        .oneshot(from([192, 0, 2, 1], Some("a")))
        .await
        .expect("infallible");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&refused, "x-envoy-ratelimited"), "true");
    let low = GlobalRateLimitLayer::new(one_per_user(), "edge", by_user())
        .rate_limited_status(StatusCode::OK)
        .layer(counting(calls.clone()));
    low.clone()
        .oneshot(from([192, 0, 2, 1], Some("a")))
        .await
        .expect("infallible");
    let refused = low
        .oneshot(from([192, 0, 2, 1], Some("a")))
        .await
        .expect("infallible");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);

    // Not enforced: the over-limit request passes, marked, with the headers.
    let before = calls.load(Ordering::SeqCst);
    let shadow = GlobalRateLimitLayer::new(one_per_user(), "edge", by_user())
        .enforce(false)
        .x_ratelimit_headers(true)
        .layer(counting(calls.clone()));
    let first = shadow
        .clone()
        .oneshot(from([192, 0, 2, 1], Some("a")))
        .await
        .expect("infallible");
    assert!(first.headers().get("x-envoy-ratelimited").is_none());
    let over = shadow
        .oneshot(from([192, 0, 2, 1], Some("a")))
        .await
        .expect("infallible");
    assert_eq!(over.status(), StatusCode::OK);
    assert_eq!(header(&over, "x-envoy-ratelimited"), "true");
    assert_eq!(header(&over, "x-ratelimit-remaining"), "0");
    assert_eq!(calls.load(Ordering::SeqCst), before + 2);

    // `status_on_error` when failing closed.
    let broken = RateLimiter::new(Broken)
        .domain(
            RateLimitDomain::new("edge").descriptor(Descriptor::new("user").rate_limit(limit(1))),
        )
        .expect("valid");
    let closed = GlobalRateLimitLayer::new(broken, "edge", by_user())
        .failure_mode_deny(true)
        .status_on_error(StatusCode::SERVICE_UNAVAILABLE)
        .layer(counting(calls.clone()));
    let res = closed
        .oneshot(from([192, 0, 2, 1], Some("a")))
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// A decider that answers from a fixed script and records what it was asked.
#[derive(Clone, Default)]
struct Scripted {
    asked: Arc<std::sync::Mutex<Vec<RateLimitRequest>>>,
    over: bool,
}

impl RateLimitCheck for Scripted {
    type Error = &'static str;
    type Future = Ready<Result<RateLimitResponse, &'static str>>;
    fn check(&self, request: RateLimitRequest) -> Self::Future {
        let n = request.get_descriptors().len();
        self.asked.lock().expect("lock").push(request);
        let code = if self.over { Code::OverLimit } else { Code::Ok };
        let status = DescriptorStatus {
            code,
            current_limit: Some(RateLimit::new(7, Unit::Second)),
            limit_remaining: 0,
            duration_until_reset: Some(Duration::from_secs(1)),
        };
        ready(Ok(RateLimitResponse {
            overall_code: code,
            statuses: vec![status; n],
        }))
    }
}

#[tokio::test]
async fn any_decider_can_answer_and_sees_domain_descriptors_and_hits() {
    let calls = Arc::new(AtomicUsize::new(0));
    let decider = Scripted {
        over: true,
        ..Default::default()
    };
    let policy = RateLimitPolicy::new()
        .rate_limit(
            RateLimitActions::new()
                .entry_fn("destination_cluster", |head| {
                    head.headers()
                        .get("x-cluster")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                })
                .hits_addend(3),
        )
        .rate_limit(RateLimitActions::new().remote_address());
    let svc = GlobalRateLimitLayer::new(decider.clone(), "crd", policy)
        .x_ratelimit_headers(true)
        .layer(counting(calls.clone()));
    let mut req = from([192, 0, 2, 9], None);
    req.headers_mut()
        .insert("x-cluster", http::HeaderValue::from_static("petstore"));
    let res = svc.clone().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "x-ratelimit-limit"), "7, 7;w=1, 7;w=1");
    // No `x-cluster`: the custom entry drops its descriptor, the other remains.
    svc.oneshot(from([192, 0, 2, 9], None))
        .await
        .expect("infallible");
    let asked = decider.asked.lock().expect("lock").clone();
    assert_eq!(
        asked,
        vec![
            RateLimitRequest::new("crd")
                .descriptor(
                    RateLimitDescriptor::new()
                        .entry("destination_cluster", "petstore")
                        .hits_addend(3)
                )
                .descriptor(desc(&[("remote_address", "192.0.2.9")])),
            RateLimitRequest::new("crd").descriptor(desc(&[("remote_address", "192.0.2.9")])),
        ]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn metadata_actions_follow_envoys_metadata_action() {
    use crate::metadata::DynamicMetadata;
    let key = || MetadataAction::new("org", "ns").path(["principal", "org"]);
    let extract = |action: MetadataAction, metadata: Option<DynamicMetadata>| {
        let policy = RateLimitPolicy::new()
            .rate_limit(RateLimitActions::new().generic_key("api").metadata(action));
        let mut request = Request::get("/").body(()).expect("request");
        if let Some(m) = metadata {
            request.extensions_mut().insert(m);
        }
        policy.extract(&request).first().map(|d| {
            d.entries()
                .iter()
                .map(|e| format!("{}={}", e.key, e.value))
                .collect::<Vec<_>>()
        })
    };
    let with = |value: serde_json::Value| {
        let mut m = DynamicMetadata::default();
        m.set("ns", "principal", serde_json::json!({ "org": value }));
        Some(m)
    };
    let api = "generic_key=api".to_string();
    // A string value is the entry.
    assert_eq!(
        extract(key(), with("acme".into())),
        Some(vec![api.clone(), "org=acme".into()])
    );
    // Absent, empty or not a string: no descriptor...
    assert_eq!(extract(key(), None), None);
    assert_eq!(extract(key(), with("".into())), None);
    assert_eq!(extract(key(), with(7.into())), None);
    // ...unless a default value stands in, or only the entry is skipped.
    assert_eq!(
        extract(key().default_value("none"), with(7.into())),
        Some(vec![api.clone(), "org=none".into()])
    );
    assert_eq!(extract(key().skip_if_absent(true), None), Some(vec![api]));
}

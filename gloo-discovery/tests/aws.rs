//! EC2 and Lambda discovery against moto, a real AWS API mock (`support/moto.rs`): instances
//! and functions are created with boto3, gloo discovers them through its own SigV4-signed
//! calls, and moto checks every signature.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gloo_core::model::upstream::LambdaFunctionSpec;
use gloo_core::model::{Resource, ResourceRef};
use gloo_core::source::{ConfigSource, MemorySource, SourceSnapshot};
use gloo_core::translate::{Endpoint, Endpoints};
use gloo_discovery::aws::{Ec2Discovery, LambdaDiscovery};
use gloo_discovery::{DiscoveryRunner, RunningDiscovery};
use gloo_filters::aws::{
    AwsClient, Endpoints as AwsEndpoints, Env, HyperTransport, ImdsProvider, ProvideCredentials,
};
use serde_json::json;
use support::moto::{Fault, FaultProxy, Moto};
use support::wait_for;

/// An AWS client whose every service is `url`.
fn client(url: &str) -> AwsClient {
    let transport = HyperTransport::new().expect("transport");
    AwsClient::with_transport(Arc::new(transport))
        .endpoints(AwsEndpoints::new().all(url.parse().expect("url")))
}

/// No credentials in the environment, no instance metadata: only what a test gives.
fn empty_env() -> Env {
    Env::from_vars([
        ("HOME", "/nonexistent"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ])
}

/// Runs `command` on moto off the runtime's threads.
async fn admin(
    moto: &Arc<Moto>,
    command: &'static str,
    args: serde_json::Value,
) -> serde_json::Value {
    let moto = moto.clone();
    tokio::task::spawn_blocking(move || moto.admin(command, args))
        .await
        .expect("admin task")
}

/// `RunInstances` of `count` instances tagged `tags`: their (private, public) IPs.
async fn run(
    moto: &Arc<Moto>,
    count: u32,
    tags: serde_json::Value,
) -> Vec<(String, String, String)> {
    let out = admin(moto, "run", json!({"count": count, "tags": tags})).await;
    out.as_array()
        .expect("instances")
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["private"].as_str().unwrap().to_string(),
                i["public"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn secret_yaml(moto: &Moto, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: gloo-system}}\nstringData:\n  aws_access_key_id: {}\n  aws_secret_access_key: {}\n",
        moto.keys.key, moto.keys.secret
    )
}

fn ec2_upstream(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  awsEc2: {spec}\n"
    )
}

fn start_ec2(client: AwsClient, env: Env, config: Arc<MemorySource>) -> RunningDiscovery {
    DiscoveryRunner::new()
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .plugin(
            Ec2Discovery::new(client)
                .env(env)
                .refresh_interval(Duration::from_millis(200))
                .page_size(5),
        )
        .start(config)
}

fn up(name: &str) -> ResourceRef {
    ResourceRef::new("gloo-system", name)
}

fn endpoints(ips: &[&str], port: u32) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = ips.iter().map(|ip| Endpoint::new(*ip, port)).collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_instances_matching_all_filters_become_endpoints() {
    let moto = Arc::new(Moto::start());
    let a = run(&moto, 1, json!({"gloo-id": "abc", "Version": "v1"})).await;
    let b = run(&moto, 1, json!({"gloo-id": "abc", "version": "v2"})).await;
    // More instances than a DescribeInstances page (5): the listing must follow NextToken.
    let others = run(&moto, 6, json!({"other": "x"})).await;
    let config = Arc::new(MemorySource::new("config"));
    config.set_yaml(&[
        secret_yaml(&moto, "aws"),
        ec2_upstream("by-key", "{region: us-east-1, secretRef: {name: aws, namespace: gloo-system}, filters: [{key: GLOO-ID}]}"),
        ec2_upstream("by-pair", "{region: us-east-1, secretRef: {name: aws, namespace: gloo-system}, filters: [{kvPair: {key: version, value: v1}}]}"),
        ec2_upstream("both", "{region: us-east-1, secretRef: {name: aws, namespace: gloo-system}, port: 8080, filters: [{key: gloo-id}, {kvPair: {key: VERSION, value: v2}}]}"),
        ec2_upstream("public", "{region: us-east-1, secretRef: {name: aws, namespace: gloo-system}, publicIp: true, filters: [{kvPair: {key: version, value: v1}}]}"),
        ec2_upstream("case-sensitive-value", "{region: us-east-1, secretRef: {name: aws, namespace: gloo-system}, filters: [{kvPair: {key: version, value: V1}}]}"),
        ec2_upstream("everything", "{region: us-east-1, secretRef: {name: aws, namespace: gloo-system}}"),
    ].join("---\n"));
    let running = start_ec2(client(&moto.url()), empty_env(), config);
    let mut found = running.endpoints();
    let expected: Endpoints = [
        (up("by-key"), endpoints(&[&a[0].1, &b[0].1], 80)),
        (up("by-pair"), endpoints(&[&a[0].1], 80)),
        (up("both"), endpoints(&[&b[0].1], 8080)),
        (up("public"), endpoints(&[&a[0].2], 80)),
        (
            up("everything"),
            endpoints(
                &[a[0].1.as_str(), b[0].1.as_str()]
                    .into_iter()
                    .chain(others.iter().map(|o| o.1.as_str()))
                    .collect::<Vec<_>>(),
                80,
            ),
        ),
    ]
    .into_iter()
    .collect();
    let got = wait_for(&mut found, "the instances of every upstream", |e| {
        **e == expected
    })
    .await;
    assert!(
        !got.contains_key(&up("case-sensitive-value")),
        "tag values are case-sensitive"
    );

    // Stopping an instance removes it from every upstream.
    admin(&moto, "stop", json!({"ids": [a[0].0]})).await;
    wait_for(&mut found, "the stopped instance to go", |e| {
        e.get(&up("by-key")) == Some(&endpoints(&[&b[0].1], 80))
            && !e.contains_key(&up("by-pair"))
            && !e.contains_key(&up("public"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_the_environment_a_profile_or_an_assumed_role_and_bad_ones_find_nothing(
) {
    let moto = Arc::new(Moto::start());
    let a = run(&moto, 1, json!({"team": "a"})).await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n[gloo]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            moto.keys.key, moto.keys.secret
        ),
    )
    .unwrap();
    let env_keys = Env::from_vars([
        ("HOME", "/nonexistent".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ACCESS_KEY_ID", moto.keys.key.clone()),
        ("AWS_SECRET_ACCESS_KEY", moto.keys.secret.clone()),
    ]);
    let profile = Env::from_vars([
        ("HOME", "/nonexistent".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials.display().to_string(),
        ),
        ("AWS_PROFILE", "gloo".into()),
    ]);
    let wrong_secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: wrong, namespace: gloo-system}}\nstringData:\n  aws_access_key_id: {}\n  aws_secret_access_key: not-the-secret\n",
        moto.keys.key
    );
    let upstreams = [
        wrong_secret,
        ec2_upstream("default-chain", "{region: us-east-1, filters: [{key: team}]}"),
        ec2_upstream(
            "assumed",
            &format!("{{region: us-east-1, roleArn: \"{}\", filters: [{{key: team}}]}}", moto.keys.role),
        ),
        ec2_upstream("wrong", "{region: us-east-1, secretRef: {name: wrong, namespace: gloo-system}, filters: [{key: team}]}"),
    ]
    .join("---\n");
    let expected = endpoints(&[&a[0].1], 80);
    for (what, env) in [("environment", env_keys), ("profile", profile)] {
        let config = Arc::new(MemorySource::new("config"));
        config.set_yaml(&upstreams);
        let running = start_ec2(client(&moto.url()), env, config);
        let mut found = running.endpoints();
        let got = wait_for(&mut found, what, |e| {
            e.get(&up("default-chain")) == Some(&expected)
                && e.get(&up("assumed")) == Some(&expected)
        })
        .await;
        // A Secret with the wrong secret key: moto refuses the signature (AuthFailure).
        assert!(
            !got.contains_key(&up("wrong")),
            "{what}: a bad signature finds nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_an_unreachable_api_keep_the_last_endpoints() {
    let moto = Arc::new(Moto::start());
    let a = run(&moto, 2, json!({"app": "web"})).await;
    let proxy = FaultProxy::start(moto.url()).await;
    let config = Arc::new(MemorySource::new("config"));
    config.set_yaml(&[
        secret_yaml(&moto, "aws"),
        ec2_upstream("web", "{region: us-east-1, secretRef: {name: aws, namespace: gloo-system}, filters: [{key: app}]}"),
    ].join("---\n"));
    let running = start_ec2(client(&proxy.url()), empty_env(), config);
    let mut found = running.endpoints();
    // The instances running now: (id, private IP).
    let mut live: Vec<(String, String)> = a.iter().map(|i| (i.0.clone(), i.1.clone())).collect();
    let ips = |live: &[(String, String)]| {
        endpoints(&live.iter().map(|i| i.1.as_str()).collect::<Vec<_>>(), 80)
    };
    let both = ips(&live);
    wait_for(&mut found, "both instances", |e| {
        e.get(&up("web")) == Some(&both)
    })
    .await;
    for fault in [Fault::Throttle, Fault::Down] {
        let before_fault = ips(&live);
        proxy.set(fault);
        let stopped = live.remove(0);
        admin(&moto, "stop", json!({"ids": [stopped.0]})).await;
        // Listings fail (at least two, so the retry ran too), and what was found stays.
        let before = proxy.faulted();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while proxy.faulted() < before + 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{fault:?}: no listing was attempted"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            found.borrow().get(&up("web")),
            Some(&before_fault),
            "{fault:?}: endpoints kept"
        );
        // AWS comes back: the stopped instance goes.
        proxy.set(Fault::None);
        let after = ips(&live);
        wait_for(&mut found, "the stopped instance to go", |e| {
            e.get(&up("web")) == Some(&after)
        })
        .await;
        // Two instances again for the next round.
        let again = run(&moto, 1, json!({"app": "web"})).await;
        live.push((again[0].0.clone(), again[0].1.clone()));
        let next = ips(&live);
        wait_for(&mut found, "the new instance", |e| {
            e.get(&up("web")) == Some(&next)
        })
        .await;
    }
}

fn aws_upstream(name: &str, labels: &str, functions: &str) -> String {
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system{labels}}}\nspec:\n  aws: {{region: us-east-1, secretRef: {{name: aws, namespace: gloo-system}}{functions}}}\n"
    )
}

fn lambda_functions(snapshot: &SourceSnapshot, name: &str) -> Option<Vec<LambdaFunctionSpec>> {
    snapshot.resources.iter().find_map(|r| match &r.resource {
        Resource::Upstream(u) if u.metadata.name == name => {
            Some(u.spec.aws.as_ref()?.lambda_functions.clone())
        }
        _ => None,
    })
}

fn function(logical: &str, name: &str, qualifier: &str) -> LambdaFunctionSpec {
    LambdaFunctionSpec {
        logical_name: Some(logical.into()),
        lambda_function_name: Some(name.into()),
        qualifier: Some(qualifier.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_functions_fill_the_aws_upstreams_in_force() {
    // moto's signature check fails every signed `GET` of its Lambda API, boto3's own
    // `ListFunctions` included (it hashes the query as if it were a form body), so this moto
    // does not check signatures; the EC2 tests and the SigV4 test suite prove the signer, and
    // gloo-proxy's Lambda test has moto check signed `POST` invocations.
    let moto = Arc::new(Moto::start_open());
    admin(&moto, "function", json!({"name": "echo", "publish": true})).await;
    admin(&moto, "function", json!({"name": "upper"})).await;
    let config = Arc::new(MemorySource::new("config"));
    let own =
        ", lambdaFunctions: [{logicalName: mine, lambdaFunctionName: mine, qualifier: $LATEST}]";
    config.set_yaml(
        &[
            secret_yaml(&moto, "aws"),
            aws_upstream("lambda", "", own),
            aws_upstream(
                "kept",
                ", labels: {discovery.solo.io/function_discovery: disabled}",
                own,
            ),
        ]
        .join("---\n"),
    );
    let running = DiscoveryRunner::new()
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .plugin(
            LambdaDiscovery::new(client(&moto.url()))
                .env(empty_env())
                .refresh_interval(Duration::from_millis(200))
                .page_size(1),
        )
        .start(config.clone());
    let mut source = running.subscribe();
    // Gloo's FDS naming, sorted by logical name; every page (one function per page) read.
    let expected = vec![
        function("echo", "echo", "$LATEST"),
        function("echo:1", "echo", "1"),
        function("upper", "upper", "$LATEST"),
    ];
    let got = wait_for(&mut source, "the discovered functions", |s| {
        lambda_functions(s, "lambda") == Some(expected.clone())
    })
    .await;
    // The upstream labelled `disabled` keeps its own list; it is still the user's upstream
    // (its origin is the config source).
    assert_eq!(
        lambda_functions(&got, "kept"),
        Some(vec![function("mine", "mine", "$LATEST")])
    );
    let origins: BTreeMap<String, String> = got
        .resources
        .iter()
        .map(|r| {
            (
                r.resource.metadata().name.clone(),
                r.origin.file.to_string(),
            )
        })
        .collect();
    assert_eq!(origins["lambda"], "config");

    // A new function appears.
    admin(&moto, "function", json!({"name": "again"})).await;
    wait_for(&mut source, "the new function", |s| {
        lambda_functions(s, "lambda")
            .is_some_and(|f| f.len() == 4 && f[0].logical_name.as_deref() == Some("again"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_metadata_gives_role_credentials_with_an_imdsv2_token() {
    // moto serves EC2's instance metadata endpoints (token, role, credentials).
    let moto = Moto::start_open();
    let env = Env::from_vars([("AWS_EC2_METADATA_SERVICE_ENDPOINT", moto.url())]);
    let provider = ImdsProvider::new(&env, Arc::new(HyperTransport::new().unwrap()));
    let credentials = provider.credentials().await.expect("instance credentials");
    assert!(!credentials.access_key_id().is_empty());
    assert!(credentials.session_token().is_some());
    assert!(credentials.expires().is_some());
    assert!(
        moto.logs().contains("PUT /latest/api/token"),
        "an IMDSv2 session token was asked for: {}",
        moto.logs()
    );
}

//! The runner: discovered upstreams join the config, plugins see only the upstreams they
//! resolve, endpoints merge, and a failing plugin is restarted without losing what it found.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gloo_core::model::upstream::LambdaFunctionSpec;
use gloo_core::model::upstream::UpstreamSpec;
use gloo_core::model::{ObjectMeta, Resource, ResourceRef};
use gloo_core::source::{ConfigSource, MemorySource, SourceSnapshot};
use gloo_core::translate::{Endpoint, EndpointChanges, Endpoints};
use gloo_discovery::{
    BoxFuture, Discovery, DiscoveryContext, DiscoveryError, DiscoveryRunner, EndpointUpdates,
    Functions, Upstream,
};
use support::scripted::Scripted;
use support::wait_for;
use tokio::sync::watch;

mod support;

fn upstream(namespace: &str, name: &str, yaml_spec: &str) -> Upstream {
    let spec: UpstreamSpec = parse_spec(yaml_spec);
    Upstream::new(
        ObjectMeta {
            name: name.into(),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        spec,
    )
}

fn parse_spec(yaml: &str) -> UpstreamSpec {
    let source = MemorySource::new("spec");
    source.set_yaml(&format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: x}}\nspec: {yaml}\n"
    ));
    let snapshot = source.subscribe().borrow().clone();
    match &snapshot.resources[0].resource {
        Resource::Upstream(u) => u.spec.clone(),
        other => panic!("not an upstream: {other:?}"),
    }
}

fn upstream_names(snapshot: &SourceSnapshot) -> Vec<(String, String)> {
    let mut names: Vec<_> = snapshot
        .resources
        .iter()
        .filter(|r| matches!(r.resource, Resource::Upstream(_)))
        .map(|r| {
            (
                r.resource.metadata().name.clone(),
                r.origin.file.to_string(),
            )
        })
        .collect();
    names.sort();
    names
}

/// Discovers two upstreams (`apps.a`, `apps.b`) and resolves every `kube` upstream to one
/// endpoint whose port is the upstream's service port; records what it was asked to resolve.
struct Kubeish {
    asked: watch::Sender<Vec<String>>,
}

impl Discovery for Kubeish {
    fn name(&self) -> &str {
        "kubeish"
    }

    fn resolves(&self, upstream: &UpstreamSpec) -> bool {
        upstream.kube.is_some()
    }

    fn run(
        self: Arc<Self>,
        mut context: DiscoveryContext,
    ) -> BoxFuture<'static, Result<(), DiscoveryError>> {
        Box::pin(async move {
            context.publisher.set_upstreams([
                upstream(
                    "apps",
                    "a",
                    "{kube: {serviceName: a, serviceNamespace: apps, servicePort: 80}}",
                ),
                upstream(
                    "apps",
                    "b",
                    "{kube: {serviceName: b, serviceNamespace: apps, servicePort: 81}}",
                ),
            ]);
            loop {
                let upstreams = context.upstreams.borrow_and_update().clone();
                self.asked
                    .send_replace(upstreams.keys().map(|r| r.to_string()).collect());
                let endpoints: Endpoints = upstreams
                    .iter()
                    .map(|(r, u)| {
                        let port = u
                            .spec
                            .kube
                            .as_ref()
                            .and_then(|k| k.service_port)
                            .unwrap_or(0);
                        (r.clone(), vec![Endpoint::new("10.1.0.1", port)])
                    })
                    .collect();
                context.publisher.set_endpoints(endpoints);
                if context.upstreams.changed().await.is_err() {
                    return Ok(());
                }
            }
        })
    }
}

#[tokio::test]
async fn discovered_upstreams_join_the_config_and_written_ones_win() {
    let config = Arc::new(MemorySource::new("dir"));
    config.set_yaml(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: b, namespace: apps}\nspec: {kube: {serviceName: b, serviceNamespace: apps, servicePort: 9090}}\n---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: s, namespace: apps}\nspec: {static: {hosts: [{addr: 127.0.0.1, port: 1}]}}\n",
    );
    let (asked, mut asked_rx) = watch::channel(Vec::new());
    let running = DiscoveryRunner::new()
        .plugin(Kubeish { asked })
        .start(config.clone());
    let mut source = running.subscribe();
    let merged = wait_for(&mut source, "discovered upstream a", |s| {
        upstream_names(s).len() == 3
    })
    .await;
    // `b` is the user's (origin `dir`), `a` discovered; the static upstream is untouched.
    assert_eq!(
        upstream_names(&merged),
        [
            ("a".to_string(), "discovery:kubeish".to_string()),
            ("b".to_string(), "dir".to_string()),
            ("s".to_string(), "dir".to_string()),
        ]
    );
    // The plugin resolves the kube upstreams in force (the user's `b` with its own port), not
    // the static one.
    wait_for(&mut asked_rx, "asked for a and b", |a| {
        *a == ["apps.a".to_string(), "apps.b".to_string()]
    })
    .await;
    let mut endpoints = running.endpoints();
    let found = wait_for(&mut endpoints, "endpoints of a and b", |e| e.len() == 2).await;
    assert_eq!(found[&ResourceRef::new("apps", "b")][0].port, 9090);
    assert_eq!(found[&ResourceRef::new("apps", "a")][0].port, 80);

    // The user deletes their `b`: the discovered one takes its place and is resolved with its
    // own port.
    config.set_yaml("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: s, namespace: apps}\nspec: {static: {hosts: [{addr: 127.0.0.1, port: 1}]}}\n");
    let merged = wait_for(&mut source, "discovered b", |s| {
        upstream_names(s).contains(&("b".to_string(), "discovery:kubeish".to_string()))
    })
    .await;
    assert_eq!(upstream_names(&merged).len(), 3);
    let found = wait_for(&mut endpoints, "b on its discovered port", |e| {
        e.get(&ResourceRef::new("apps", "b"))
            .is_some_and(|b| b[0].port == 81)
    })
    .await;
    assert_eq!(found.len(), 2);
}

/// Publishes one endpoint, then fails every run after the first; counts its runs.
struct Flaky {
    runs: Arc<AtomicUsize>,
}

impl Discovery for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }

    fn run(
        self: Arc<Self>,
        context: DiscoveryContext,
    ) -> BoxFuture<'static, Result<(), DiscoveryError>> {
        Box::pin(async move {
            let run = self.runs.fetch_add(1, Ordering::SeqCst);
            if run == 0 {
                context.publisher.set_upstream_endpoints(
                    ResourceRef::new("apps", "ext"),
                    vec![Endpoint::new("192.0.2.1", 443)],
                );
            }
            Err(DiscoveryError::new(format!("run {run}: agent unreachable")))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_plugin_is_restarted_with_backoff_and_keeps_what_it_found() {
    let runs = Arc::new(AtomicUsize::new(0));
    let running = DiscoveryRunner::new()
        .backoff(Duration::from_secs(1), Duration::from_secs(4))
        .plugin(Flaky { runs: runs.clone() })
        .start(Arc::new(MemorySource::new("dir")));
    // Paused time: runs start at 0, 1, 3, 7 and 11 s (backoff 1, 2, 4, then capped at 4).
    tokio::time::sleep(Duration::from_millis(11_500)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 5);
    let endpoints = running.endpoints().borrow().clone();
    assert_eq!(
        endpoints[&ResourceRef::new("apps", "ext")],
        [Endpoint::new("192.0.2.1", 443)]
    );
    drop(running);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        5,
        "dropping the runner stops the plugin"
    );
}

/// Publishes one Lambda function for every upstream it is handed, until told to clear.
struct Fds {
    clear: watch::Receiver<bool>,
}

impl Discovery for Fds {
    fn name(&self) -> &str {
        "fds"
    }

    fn resolves(&self, _upstream: &UpstreamSpec) -> bool {
        true
    }

    fn run(
        self: Arc<Self>,
        mut context: DiscoveryContext,
    ) -> BoxFuture<'static, Result<(), DiscoveryError>> {
        Box::pin(async move {
            let mut clear = self.clear.clone();
            loop {
                let upstreams = context.upstreams.borrow_and_update().clone();
                let functions = if *clear.borrow_and_update() {
                    Default::default()
                } else {
                    upstreams
                        .keys()
                        .map(|r| {
                            let found = LambdaFunctionSpec {
                                logical_name: Some("found".into()),
                                lambda_function_name: Some("found".into()),
                                qualifier: Some("$LATEST".into()),
                            };
                            (r.clone(), Functions::Lambda(vec![found]))
                        })
                        .collect()
                };
                context.publisher.set_functions(functions);
                tokio::select! {
                    changed = context.upstreams.changed() => if changed.is_err() { return Ok(()) },
                    changed = clear.changed() => if changed.is_err() { return Ok(()) },
                }
            }
        })
    }
}

fn lambda_names(snapshot: &SourceSnapshot, name: &str) -> Option<Vec<String>> {
    snapshot.resources.iter().find_map(|r| match &r.resource {
        Resource::Upstream(u) if u.metadata.name == name => Some(
            u.spec
                .aws
                .as_ref()?
                .lambda_functions
                .iter()
                .filter_map(|f| f.logical_name.clone())
                .collect(),
        ),
        _ => None,
    })
}

#[tokio::test]
async fn discovered_functions_replace_an_aws_upstreams_own_list_until_withdrawn() {
    let config = Arc::new(MemorySource::new("dir"));
    config.set_yaml(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: fn, namespace: apps}\nspec: {aws: {region: us-east-1, lambdaFunctions: [{logicalName: mine, lambdaFunctionName: mine}]}}\n---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: s, namespace: apps}\nspec: {static: {hosts: [{addr: 127.0.0.1, port: 1}]}}\n",
    );
    let (clear, clear_rx) = watch::channel(false);
    let running = DiscoveryRunner::new()
        .plugin(Fds { clear: clear_rx })
        .start(config.clone());
    let mut source = running.subscribe();
    let merged = wait_for(&mut source, "the discovered function", |s| {
        lambda_names(s, "fn") == Some(vec!["found".to_string()])
    })
    .await;
    // Still the user's upstream (its origin), and a non-aws upstream is left alone.
    assert_eq!(
        upstream_names(&merged),
        [
            ("fn".to_string(), "dir".to_string()),
            ("s".to_string(), "dir".to_string())
        ]
    );
    let static_spec = merged.resources.iter().find_map(|r| match &r.resource {
        Resource::Upstream(u) if u.metadata.name == "s" => Some(u.spec.clone()),
        _ => None,
    });
    assert!(static_spec.is_some_and(|s| s.aws.is_none()));
    // Withdrawn: the upstream's own list is back.
    clear.send_replace(true);
    wait_for(&mut source, "the user's own list", |s| {
        lambda_names(s, "fn") == Some(vec!["mine".to_string()])
    })
    .await;
}

async fn next_changes(updates: &mut EndpointUpdates) -> EndpointChanges {
    tokio::time::timeout(Duration::from_secs(30), updates.changed())
        .await
        .expect("an endpoint change within 30 s")
        .expect("the runner is running")
}

#[tokio::test]
async fn endpoint_updates_carry_only_the_changed_upstreams_shared_not_copied() {
    let (tx_a, mut rx_a) = watch::channel(None);
    let (tx_b, mut rx_b) = watch::channel(None);
    let running = DiscoveryRunner::new()
        .plugin(Scripted {
            name: "a",
            publisher: tx_a,
        })
        .plugin(Scripted {
            name: "b",
            publisher: tx_b,
        })
        .start(Arc::new(MemorySource::new("dir")));
    let a = wait_for(&mut rx_a, "plugin a", Option::is_some)
        .await
        .expect("publisher a");
    let b = wait_for(&mut rx_b, "plugin b", Option::is_some)
        .await
        .expect("publisher b");
    let r = |i: usize| ResourceRef::new("apps", format!("svc-{i}"));
    let at = |ip: &str| vec![Endpoint::new(ip, 80)];
    let mut updates = running.endpoint_updates();
    assert!(updates.take().is_empty());

    let mut all: Endpoints = (0..100)
        .map(|i| (r(i), at(&format!("10.0.0.{i}"))))
        .collect();
    a.set_endpoints(all.clone());
    let first = next_changes(&mut updates).await;
    assert_eq!(first.updated.len(), 100);
    assert!(first.removed.is_empty());

    // A full replacement that changes one upstream hands over that upstream only.
    all.insert(r(7), at("10.9.9.9"));
    a.set_endpoints(all.clone());
    let second = next_changes(&mut updates).await;
    assert_eq!(second.updated.keys().collect::<Vec<_>>(), [&r(7)]);
    assert_eq!(&second.updated[&r(7)][..], at("10.9.9.9"));
    assert!(second.removed.is_empty());

    // Publishing the same again hands over nothing.
    a.set_endpoints(all.clone());
    a.set_upstream_endpoints(r(7), at("10.9.9.9"));
    assert!(updates.take().is_empty());

    // The lists are shared: a new subscriber (given everything) holds the very same one.
    let mut other = running.endpoint_updates();
    let everything = other.take();
    assert_eq!(everything.updated.len(), 100);
    assert!(Arc::ptr_eq(
        &everything.updated[&r(7)],
        &second.updated[&r(7)]
    ));

    // Two plugins resolving one upstream: both lists. Changes accumulate until taken.
    b.update_endpoints([(r(3), at("10.8.8.8")), (r(200), at("10.7.7.7"))]);
    a.update_endpoints([(r(3), Vec::new())]);
    b.set_upstream_endpoints(r(200), Vec::new());
    let third = next_changes(&mut updates).await;
    assert_eq!(third.updated.keys().collect::<Vec<_>>(), [&r(3)]);
    assert_eq!(&third.updated[&r(3)][..], at("10.8.8.8"));
    // r(200) came and went before it was taken: reported as removed.
    assert_eq!(third.removed.iter().collect::<Vec<_>>(), [&r(200)]);
    b.update_endpoints([(r(4), at("10.8.8.4"))]);
    let fourth = next_changes(&mut updates).await;
    let mut both = at("10.0.0.4");
    both.extend(at("10.8.8.4"));
    assert_eq!(&fourth.updated[&r(4)][..], both);

    // The one-map view agrees.
    let full = running.endpoints().borrow().clone();
    assert_eq!(full.len(), 100);
    assert_eq!(full[&r(3)], at("10.8.8.8"));
    assert_eq!(full[&r(4)], both);

    // Once the runner and every publisher are gone, the updates end.
    drop((a, b, rx_a, rx_b, running, other));
    let end = tokio::time::timeout(Duration::from_secs(30), updates.changed()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
}

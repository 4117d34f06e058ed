//! The endpoint fast path of `gloo run` / `gloo control-plane` (issue 6): a discovered
//! endpoint change reaches the proxy as a new ClusterLoadAssignment of the changed upstream
//! only. The control plane is the one the binaries run ([`ControlPlane::serve`] over
//! [`Sources`] with a discovery plugin), here with a scripted plugin the test publishes
//! through, and the proxy is gloo-proxy in this process, fed from the snapshot cache as
//! `gloo run` feeds it.

mod support;

#[path = "../../gloo-discovery/tests/support/scripted.rs"]
mod scripted;

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use gloo_core::model::ResourceRef;
use gloo_core::translate::Endpoint;
use gloo_core::xds::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};
use gloo_discovery::Discovery;
use gloo_proxy::control_plane::ControlPlane;
use gloo_proxy::gateway::{feed_from_cache, ProxyServer};
use gloo_proxy::sources::Sources;
use gloo_xds::Snapshot;
use prost::Message;
use scripted::Scripted;
use support::{free_port, gateway_yaml, http_get, poll, Backend};
use tokio::sync::watch;

const ROLE: &str = "gloo-system~gateway-proxy";

fn config(listen: u16) -> String {
    let upstream = |name: &str| {
        format!("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec: {{kube: {{serviceName: {name}, serviceNamespace: default, servicePort: 80}}}}\n---\n")
    };
    format!(
        "{}---\n{}{}apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: vs, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{{prefix: /one}}]\n      routeAction: {{single: {{upstream: {{name: one}}}}}}\n    - matchers: [{{prefix: /two}}]\n      routeAction: {{single: {{upstream: {{name: two}}}}}}\n",
        gateway_yaml(listen),
        upstream("one"),
        upstream("two"),
    )
}

/// The ports of a cluster's assignment in `snapshot`, if it has one.
fn ports(snapshot: &Snapshot, cluster: &str) -> Option<Vec<u32>> {
    use envoy_types::pb::envoy::config::core::v3::{address, socket_address};
    use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
    let body = &snapshot.resources.get(ENDPOINT_TYPE)?.get(cluster)?.body;
    let assignment = ClusterLoadAssignment::decode(body.value.as_slice()).ok()?;
    let ports = assignment
        .endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .filter_map(|e| match &e.host_identifier {
            Some(HostIdentifier::Endpoint(e)) => match e.address.as_ref()?.address.as_ref()? {
                address::Address::SocketAddress(s) => match s.port_specifier {
                    Some(socket_address::PortSpecifier::PortValue(p)) => Some(p),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .collect();
    Some(ports)
}

async fn wait_for_snapshot(
    snapshots: &mut watch::Receiver<Arc<Snapshot>>,
    what: &str,
    ok: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let current = snapshots.borrow_and_update().clone();
        if ok(&current) {
            return current;
        }
        tokio::select! {
            changed = snapshots.changed() => assert!(changed.is_ok(), "cache closed waiting for {what}"),
            _ = tokio::time::sleep_until(deadline) => panic!("timed out waiting for {what}: {current:?}"),
        }
    }
}

/// Waits until `path` through the proxy is answered by backend `name`.
async fn wait_for_backend(listen: u16, path: &'static str, name: &'static str) {
    tokio::task::spawn_blocking(move || {
        poll(&format!("{path} answered by {name}"), || {
            let response = http_get(listen, path).map_err(|e| e.to_string())?;
            if response.status == 200 && response.body == name {
                Ok(())
            } else {
                Err(format!("{} {:?}", response.status, response.body))
            }
        })
    })
    .await
    .expect("poll")
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_change_gives_only_its_assignment_a_new_version_and_moves_traffic() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let c = Backend::start("c");
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = free_port();
    std::fs::write(dir.path().join("gloo.yaml"), config(listen)).expect("write config");
    let (tx, mut rx) = watch::channel(None);
    let plugin: Arc<dyn Discovery> = Arc::new(Scripted {
        name: "scripted",
        publisher: tx,
    });
    let sources = Sources::directory(dir.path(), vec![plugin]).expect("sources");
    let control_plane = ControlPlane::serve(sources, None);
    let publisher = rx
        .wait_for(Option::is_some)
        .await
        .expect("the plugin runs")
        .clone()
        .expect("publisher");
    let one = ResourceRef::new("gloo-system", "one");
    let two = ResourceRef::new("gloo-system", "two");
    publisher.set_endpoints(
        [
            (
                one.clone(),
                vec![Endpoint::new("127.0.0.1", u32::from(a.port))],
            ),
            (
                two.clone(),
                vec![Endpoint::new("127.0.0.1", u32::from(c.port))],
            ),
        ]
        .into_iter()
        .collect(),
    );
    let mut snapshots = control_plane.cache().subscribe(ROLE);
    let before = wait_for_snapshot(&mut snapshots, "both assignments", |s| {
        ports(s, "one_gloo-system") == Some(vec![u32::from(a.port)])
            && ports(s, "two_gloo-system") == Some(vec![u32::from(c.port)])
    })
    .await;
    // The proxy on its own thread and runtime, as `gloo run` runs it beside the control plane.
    let feed = feed_from_cache(control_plane.cache().clone(), ROLE);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        if let Err(err) = runtime.block_on(ProxyServer::new().workers(1).run(feed)) {
            panic!("proxy: {err}");
        }
    });
    wait_for_backend(listen, "/one", "a").await;
    wait_for_backend(listen, "/two", "c").await;

    publisher.set_upstream_endpoints(
        one.clone(),
        vec![Endpoint::new("127.0.0.1", u32::from(b.port))],
    );
    let after = wait_for_snapshot(&mut snapshots, "one's new endpoint", |s| {
        ports(s, "one_gloo-system") == Some(vec![u32::from(b.port)])
    })
    .await;
    // Listeners, routes and clusters are the very maps served before (so no xDS client is
    // sent any of them again); of the assignments only `one`'s has a new version.
    for unchanged in [LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE] {
        assert!(
            Arc::ptr_eq(&before.resources[unchanged], &after.resources[unchanged]),
            "{unchanged} was rebuilt"
        );
    }
    let (old, new) = (
        &before.resources[ENDPOINT_TYPE],
        &after.resources[ENDPOINT_TYPE],
    );
    assert_eq!(
        old.keys().collect::<Vec<_>>(),
        new.keys().collect::<Vec<_>>()
    );
    assert_ne!(
        old["one_gloo-system"].version,
        new["one_gloo-system"].version
    );
    assert_eq!(
        old["two_gloo-system"].version,
        new["two_gloo-system"].version
    );
    assert!(Arc::ptr_eq(
        &old["two_gloo-system"].body,
        &new["two_gloo-system"].body
    ));

    // The proxy follows: `/one` moves to b, `/two` stays on c.
    wait_for_backend(listen, "/one", "b").await;
    wait_for_backend(listen, "/two", "c").await;

    // Removing `two`'s endpoints is an endpoint change too: only its assignment changes.
    publisher.set_upstream_endpoints(two.clone(), Vec::new());
    let removed = wait_for_snapshot(&mut snapshots, "two without endpoints", |s| {
        ports(s, "two_gloo-system") == Some(Vec::new())
    })
    .await;
    for unchanged in [LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE] {
        assert!(Arc::ptr_eq(
            &before.resources[unchanged],
            &removed.resources[unchanged]
        ));
    }
    assert_eq!(
        new["one_gloo-system"].version,
        removed.resources[ENDPOINT_TYPE]["one_gloo-system"].version
    );
    wait_for_backend(listen, "/one", "b").await;
    let status = tokio::task::spawn_blocking(move || {
        poll("/two unavailable", || {
            let response = http_get(listen, "/two").map_err(|e| e.to_string())?;
            (response.status == 503)
                .then_some(())
                .ok_or(format!("{} {:?}", response.status, response.body))
        })
    })
    .await
    .expect("poll");
    assert_eq!(status, Ok(()));
}

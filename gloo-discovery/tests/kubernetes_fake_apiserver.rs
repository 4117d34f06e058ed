//! The fake API server's wire format, checked with real clients: kube-rs, kubectl
//! (`GLOO_TEST_KUBECTL`) and the Python `kubernetes` client (`GLOO_TEST_PYTHON`).
#![cfg(feature = "kubernetes")]

mod support;

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use gloo_discovery::kubernetes::k8s_openapi::api::core::v1::Service;
use gloo_discovery::kubernetes::kube::api::{Api, ListParams, WatchEvent, WatchParams};
use gloo_discovery::kubernetes::kube::runtime::watcher;
use serde_json::{json, Value};
use support::fake_apiserver::FakeApiServer;
use support::required_env;
use tokio::io::{AsyncBufReadExt, BufReader};

fn service(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"ports": [{"name": "http", "port": 80}]}
    })
}

#[tokio::test]
async fn kube_rs_lists_pages_selects_and_watches() {
    let fake = FakeApiServer::start().await;
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        fake.apply(service(name, json!({"tier": tier})));
    }
    let api: Api<Service> = Api::namespaced(fake.client(), "default");
    // Pages of one, a consistent snapshot: a write between pages is not seen.
    let first = api.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(first.items.len(), 1);
    let token = first.metadata.continue_.clone().expect("a continue token");
    fake.apply(service("d", json!({"tier": "web"})));
    let second = api
        .list(&ListParams::default().limit(5).continue_token(&token))
        .await
        .unwrap();
    let names: Vec<_> = second
        .items
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );

    // After compaction the token is too old: 410 Gone, reason Expired, so the client lists anew.
    fake.compact();
    match api
        .list(&ListParams::default().limit(5).continue_token(&token))
        .await
    {
        Err(gloo_discovery::kubernetes::kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
        }
        other => panic!("expected 410 Gone, got {other:?}"),
    }

    let web = api
        .list(&ListParams::default().labels("tier=web"))
        .await
        .unwrap();
    assert_eq!(web.items.len(), 3);
    let not_web = api
        .list(&ListParams::default().labels("tier notin (web)"))
        .await
        .unwrap();
    assert_eq!(not_web.items.len(), 1);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=c"))
        .await
        .unwrap();
    assert_eq!(by_name.items[0].metadata.name.as_deref(), Some("c"));

    // A raw watch from the list's version sees what changes after it; an object leaving the
    // label selector arrives as DELETED.
    let rv = web.metadata.resource_version.clone().unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("tier=web").timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    fake.apply(service("a", json!({"tier": "db"})));
    fake.apply(service("e", json!({"tier": "web"})));
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match stream.next().await {
            Some(Ok(WatchEvent::Deleted(s))) => {
                seen.push(format!("DELETED {}", s.metadata.name.unwrap()))
            }
            Some(Ok(WatchEvent::Added(s))) => {
                seen.push(format!("ADDED {}", s.metadata.name.unwrap()))
            }
            Some(Ok(WatchEvent::Bookmark(_))) => {}
            other => panic!("unexpected watch item {other:?}"),
        }
    }
    assert_eq!(seen, ["DELETED a", "ADDED e"]);
}

#[tokio::test]
async fn kube_rs_watcher_relists_after_410_gone_and_loses_nothing() {
    let fake = FakeApiServer::start().await;
    fake.apply(service("a", json!({})));
    let api: Api<Service> = Api::namespaced(fake.client(), "default");
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    assert!(matches!(next(&mut events).await, Ok(watcher::Event::Init)));
    assert!(matches!(
        next(&mut events).await,
        Ok(watcher::Event::InitApply(_))
    ));
    assert!(matches!(
        next(&mut events).await,
        Ok(watcher::Event::InitDone)
    ));
    // While the watch is cut: one object goes, one comes, and the history is compacted, so
    // resuming from the old version is 410 Gone and the watcher lists again.
    fake.break_watches();
    assert!(fake.delete("v1", "Service", "default", "a"));
    fake.apply(service("b", json!({})));
    fake.compact();
    let mut gone = false;
    loop {
        match next(&mut events).await {
            Err(watcher::Error::WatchError(status)) => {
                assert_eq!(status.code, 410);
                assert_eq!(status.reason, "Expired");
                gone = true;
            }
            Ok(watcher::Event::Init) => break,
            other => panic!("expected 410 then a re-list, got {other:?}"),
        }
    }
    assert!(gone, "the watcher saw the 410");
    match next(&mut events).await {
        Ok(watcher::Event::InitApply(s)) => assert_eq!(s.metadata.name.as_deref(), Some("b")),
        other => panic!("expected b re-listed, got {other:?}"),
    }
    assert!(matches!(
        next(&mut events).await,
        Ok(watcher::Event::InitDone)
    ));
    // kube-rs asked for bookmarks and a server-side timeout.
    let watches: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains("watch=true"))
        .collect();
    assert!(
        watches
            .iter()
            .all(|w| w.contains("allowWatchBookmarks=true") && w.contains("timeoutSeconds=")),
        "{watches:?}"
    );
}

type Events =
    futures_util::stream::BoxStream<'static, Result<watcher::Event<Service>, watcher::Error>>;

async fn next(events: &mut Events) -> Result<watcher::Event<Service>, watcher::Error> {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("a watcher event in time")
        .expect("the watcher stream goes on")
}

async fn kubectl(args: &[&str]) -> (bool, String, String) {
    let kubectl = required_env("GLOO_TEST_KUBECTL");
    let out = tokio::process::Command::new(kubectl)
        .args(args)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .await
        .expect("run kubectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn kubectl_lists_gets_and_watches_through_the_fake() {
    let fake = FakeApiServer::start().await;
    fake.apply(service("a", json!({"tier": "web"})));
    fake.apply(json!({
        "apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
        "metadata": {"name": "u", "namespace": "gloo-system"},
        "spec": {"static": {"hosts": [{"addr": "1.2.3.4", "port": 80}]}}
    }));
    let server = fake.url();

    let (ok, out, err) = kubectl(&[
        "--server",
        &server,
        "get",
        "--raw",
        "/api/v1/namespaces/default/services",
    ])
    .await;
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["kind"], "ServiceList");
    assert_eq!(list["items"][0]["metadata"]["name"], "a");

    // Discovery of a custom resource group, then a typed get.
    let (ok, out, err) = kubectl(&[
        "--server",
        &server,
        "get",
        "upstreams.gloo.solo.io",
        "-n",
        "gloo-system",
        "-o",
        "json",
    ])
    .await;
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        list["items"][0]["spec"]["static"]["hosts"][0]["addr"],
        "1.2.3.4"
    );
    let (ok, out, err) = kubectl(&[
        "--server", &server, "get", "services", "-n", "default", "-l", "tier=web", "-o", "name",
    ])
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "service/a");

    // A too-old version over the raw watch: the Status event kubectl prints.
    fake.apply(service("b", json!({})));
    fake.compact();
    let (ok, out, err) = kubectl(&[
        "--server",
        &server,
        "get",
        "--raw",
        "/api/v1/namespaces/default/services?watch=true&resourceVersion=1&timeoutSeconds=2",
    ])
    .await;
    assert!(ok, "{err}");
    let event: Value = serde_json::from_str(out.lines().next().unwrap_or_default()).unwrap();
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");

    // `kubectl get -w`: list, then watch from the list's version; an edit arrives.
    let watches = || {
        fake.requests()
            .iter()
            .filter(|r| r.contains("/services?") && r.contains("watch=true"))
            .count()
    };
    let watches_before = watches();
    let kubectl_bin = required_env("GLOO_TEST_KUBECTL");
    let mut child = tokio::process::Command::new(kubectl_bin)
        .args([
            "--server",
            &server,
            "get",
            "services",
            "-n",
            "default",
            "-w",
            "--output-watch-events",
            "-o",
            "json",
        ])
        .env("KUBECONFIG", "/dev/null")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start kubectl get -w");

    let stdout = child.stdout.take().expect("stdout");
    let reader = tokio::spawn(async move {
        // One event per line: `{"type":"ADDED","object":{...}}`.
        let mut lines = BufReader::new(stdout).lines();
        let mut events = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            let done = event["type"] == "MODIFIED";
            events.push(event);
            if done {
                break;
            }
        }
        events
    });
    // Wait until kubectl is watching (its watch request reached the fake).
    for _ in 0..200 {
        if watches() > watches_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.apply(service("a", json!({"tier": "changed"})));
    let events = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("kubectl printed the change")
        .unwrap();
    let _ = child.kill().await;
    let kinds: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("ADDED".into(), "a".into()),
            ("ADDED".into(), "b".into()),
            ("MODIFIED".into(), "a".to_string())
        ]
    );
    assert_eq!(events[2]["object"]["metadata"]["labels"]["tier"], "changed");
}

#[tokio::test]
async fn the_python_client_lists_and_watches_through_the_fake() {
    let python = required_env("GLOO_TEST_PYTHON");
    let fake = FakeApiServer::start().await;
    fake.apply(service("a", json!({})));
    let script = r#"
import json, sys, threading, urllib.request
from kubernetes import client, watch
conf = client.Configuration()
conf.host = sys.argv[1]
api = client.CoreV1Api(client.ApiClient(conf))
services = api.list_namespaced_service("default")
print(json.dumps({"list": [s.metadata.name for s in services.items], "rv": services.metadata.resource_version}), flush=True)
sys.stdin.readline()  # the test changes things now
events = []
for event in watch.Watch().stream(api.list_namespaced_service, "default", resource_version=services.metadata.resource_version, timeout_seconds=2):
    events.append([event["type"], event["object"].metadata.name])
print(json.dumps({"events": events}), flush=True)
"#;
    let mut child = tokio::process::Command::new(python)
        .args(["-c", script, &fake.url()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start python");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("python listed in time")
        .unwrap()
        .unwrap_or_default();
    let listed: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
    assert_eq!(listed["list"], json!(["a"]));
    fake.apply(service("b", json!({})));
    fake.apply(service("a", json!({"x": "y"})));
    assert!(fake.delete("v1", "Service", "default", "b"));
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("python watched in time")
        .unwrap()
        .unwrap_or_default();
    let watched: Value =
        serde_json::from_str(&second).unwrap_or_else(|e| panic!("{e}: {second:?}"));
    assert_eq!(
        watched["events"],
        json!([["ADDED", "b"], ["MODIFIED", "a"], ["DELETED", "b"]])
    );
    let status = child.wait().await.unwrap();
    assert!(status.success());
}

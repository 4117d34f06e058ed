//! The `gloo` binary end to end: exit codes and output of `validate` and `translate`.

use std::path::Path;
use std::process::Command;

fn gloo(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gloo"))
        .args(args)
        .output()
        .expect("run gloo");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn quickstart() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/quickstart")
        .display()
        .to_string()
}

#[test]
fn validate_accepts_the_quickstart() {
    let (code, out, _) = gloo(&["validate", &quickstart()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("VirtualService gloo-system.default: Accepted"),
        "{out}"
    );
    assert!(
        out.contains("Upstream gloo-system.petstore: Accepted"),
        "{out}"
    );
}

#[test]
fn validate_exits_1_and_names_the_problem_when_a_resource_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vs.yaml"),
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: bad}\nspec:\n  virtualHost:\n    routes:\n    - matchers: [{regex: '('}]\n      directResponseAction: {status: 200}\n",
    )
    .unwrap();
    let (code, out, _) = gloo(&[
        "validate",
        &dir.path().display().to_string(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 1, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json output");
    let status = &json["resources"]["VirtualService gloo-system.bad"];
    assert_eq!(status["state"], "Rejected");
    let error = status["errors"][0].as_str().unwrap();
    assert!(
        error.starts_with("spec.virtualHost.routes[0].matchers[0].regex: invalid regex \"(\""),
        "{error}"
    );
}

#[test]
fn validate_reports_unparseable_files_with_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: x\n  colour: red\n",
    )
    .unwrap();
    let (code, out, _) = gloo(&["validate", &dir.path().display().to_string()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("broken.yaml:5:3: metadata: unknown field `colour`"),
        "{out}"
    );
}

#[test]
fn translate_prints_the_proxy_resources_as_yaml_and_json() {
    let (code, out, err) = gloo(&["translate", &quickstart(), "--proxy", "gateway-proxy"]);
    assert_eq!(code, 0, "{err}");
    let yaml: serde_json::Value = serde_yaml_ng::from_str(&out).expect("yaml output");
    assert_eq!(yaml["listeners"][0]["name"], "listener-::-8080");
    assert_eq!(yaml["clusters"][0]["name"], "petstore_gloo-system");
    let route = &yaml["routes"][0]["virtualHosts"][0]["routes"][1];
    assert_eq!(route["match"]["prefix"], "/petstore");
    assert_eq!(route["route"]["prefixRewrite"], "/");
    assert_eq!(route["route"]["retryPolicy"]["numRetries"], 2);

    let (code, out, _) = gloo(&["translate", &quickstart(), "--output", "json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json output");
    assert_eq!(
        json["gateway-proxy"]["endpoints"][0]["clusterName"],
        "petstore_gloo-system"
    );
}

#[test]
fn translate_rejects_an_unknown_proxy_name() {
    let (code, _, err) = gloo(&["translate", &quickstart(), "--proxy", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no proxy named \"nope\"; proxies in this config: gateway-proxy"),
        "{err}"
    );
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let (code, _, err) = gloo(&["validate", "/nonexistent/gloo-config"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read config directory /nonexistent/gloo-config"),
        "{err}"
    );
}

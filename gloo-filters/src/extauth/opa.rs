//! Gloo's built-in OPA step (`opaAuth`), feature `extauth-opa`: Rego modules and a query,
//! evaluated in process by Microsoft's [regorus](https://github.com/microsoft/regorus)
//! interpreter.
//!
//! The input is Gloo's:
//!
//! * `input.check_request`: Envoy's `CheckRequest` for the request, in the field names of
//!   Gloo's documented trace (Go struct JSON): `attributes.source.address.Address.SocketAddress`
//!   (`address`, `PortSpecifier.PortValue`), `attributes.request.http` as below;
//! * `input.http_request`: Envoy's `AttributeContext.HttpRequest`: `id`, `method`, `path`
//!   (with the query), `host`, `scheme`, `protocol`, `headers` (lowercase names, repeated values
//!   joined by `,`, the pseudo-headers `:authority`, `:method`, `:path`, `:scheme` included),
//!   `body` and `size` when the body was buffered;
//! * `input.state`: `null`.
//!
//! The query's first result decides: `true`, or an array whose first element is `true`,
//! allows; anything else (`false`, undefined, an evaluation error) answers a bare `403`.
//! Modules that do not parse are config errors naming the module; a query that does not parse
//! denies every request (with a warning), as it is only parsed when evaluated.
//!
//! # Differences from Gloo
//!
//! * Modules are parsed as OPA v0 Rego (`allow { ... }`), as Gloo's OPA did; a module with
//!   `import rego.v1` uses v1 syntax. Built-ins are regorus' (its core set plus `regex`,
//!   `base64`, `base64url`) and OPA v0's deprecated `any` and `all`: policies calling others
//!   (`io.jwt.*`, `http.send`, ...) fail to evaluate and deny.
//! * `input.state` is always `null` (steps here share no state), `context_extensions` and
//!   `metadata_context` are absent from `check_request`, and `destination` is unknown.
//! * `fastInputConversion` and `returnDecisionReason` are accepted and change nothing (no
//!   dynamic metadata is emitted).
//! * Evaluation runs on the calling task; a query that loops for long holds it.

use std::fmt;

use http::StatusCode;
use regorus::{Engine, Value};
use serde_json::{json, Map};

use super::config;
use super::envoy_check::envoy_check_request;
use super::error::ConfigError;
use super::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};

/// Gloo's `opaAuth` step; see the [module docs](self). Built from the config by
/// [`AuthConfig::from_config`](super::AuthConfig::from_config).
///
/// ```
/// use gloo_filters::extauth::config::ExtAuthConfig;
/// use gloo_filters::extauth::{AuthConfig, CheckRequest, Decision};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = AuthConfig::from_config(&ExtAuthConfig::from_json(r#"{
///     "authConfigRefName": "gloo-system.opa",
///     "configs": [{"opaAuth": {
///         "modules": {"policy.rego": "package test\n\ndefault allow = false\nallow { input.http_request.method == \"GET\" }"},
///         "query": "data.test.allow == true"
///     }}]
/// }"#)?)?;
/// assert!(matches!(config.check(&CheckRequest::default()).await, Decision::Allow(_)));
/// let post = CheckRequest { method: http::Method::POST, ..CheckRequest::default() };
/// assert!(matches!(config.check(&post).await, Decision::Deny(_)));
/// # Ok(())
/// # }
/// ```
pub struct OpaAuth {
    engine: Engine,
    query: String,
}

impl fmt::Debug for OpaAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpaAuth")
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl OpaAuth {
    pub(crate) fn from_config(at: &str, config: &config::OpaAuth) -> Result<Self, ConfigError> {
        if config.query.trim().is_empty() {
            return Err(ConfigError::new(format!("{at}.query"), "required"));
        }
        let mut engine = Engine::new();
        engine.set_rego_v0(true);
        // OPA v0's deprecated `any` and `all` (Gloo's guide policy calls `any`); regorus has
        // neither.
        for (name, extension) in [
            (
                "any",
                deprecated_any as fn(Vec<Value>) -> anyhow::Result<Value>,
            ),
            ("all", deprecated_all),
        ] {
            engine
                .add_extension(name.to_owned(), 1, Box::new(extension))
                .map_err(|e| ConfigError::new(at, format!("registering `{name}`: {e}")))?;
        }
        for (name, source) in &config.modules {
            engine
                .add_policy(name.clone(), source.clone())
                .map_err(|e| ConfigError::new(format!("{at}.modules[{name:?}]"), e.to_string()))?;
        }
        Ok(Self {
            engine,
            query: config.query.clone(),
        })
    }

    fn decide(&self, input: &serde_json::Value) -> Result<bool, String> {
        let mut engine = self.engine.clone();
        engine
            .set_input_json(&input.to_string())
            .map_err(|e| e.to_string())?;
        let results = engine
            .eval_query(self.query.clone(), false)
            .map_err(|e| e.to_string())?;
        let Some(value) = results
            .result
            .first()
            .and_then(|r| r.expressions.first())
            .map(|e| &e.value)
        else {
            return Ok(false);
        };
        Ok(match value {
            Value::Bool(b) => *b,
            Value::Array(items) => matches!(items.first(), Some(Value::Bool(true))),
            _ => false,
        })
    }
}

/// The elements of an array or set argument.
fn elements(name: &str, args: &[Value]) -> anyhow::Result<Vec<Value>> {
    match args.first() {
        Some(Value::Array(items)) => Ok(items.iter().cloned().collect()),
        Some(Value::Set(items)) => Ok(items.iter().cloned().collect()),
        _ => anyhow::bail!("{name}: operand 1 must be an array or a set"),
    }
}

/// OPA v0's `any(collection)`: whether some element is `true`.
fn deprecated_any(args: Vec<Value>) -> anyhow::Result<Value> {
    Ok(Value::Bool(
        elements("any", &args)?.contains(&Value::Bool(true)),
    ))
}

/// OPA v0's `all(collection)`: whether every element is `true` (so `true` when empty).
fn deprecated_all(args: Vec<Value>) -> anyhow::Result<Value> {
    Ok(Value::Bool(
        elements("all", &args)?
            .iter()
            .all(|v| *v == Value::Bool(true)),
    ))
}

/// Gloo's OPA input for `request`.
fn input(request: &CheckRequest) -> serde_json::Value {
    let check = envoy_check_request(request, None);
    let http = check
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref());
    let mut http_request = Map::new();
    if let Some(http) = http {
        http_request.insert("id".into(), json!(http.id));
        http_request.insert("method".into(), json!(http.method));
        http_request.insert("headers".into(), json!(http.headers));
        http_request.insert("path".into(), json!(http.path));
        http_request.insert("host".into(), json!(http.host));
        http_request.insert("scheme".into(), json!(http.scheme));
        http_request.insert("protocol".into(), json!(http.protocol));
        if !request.body.is_empty() {
            http_request.insert("body".into(), json!(http.body));
            http_request.insert("size".into(), json!(http.size));
        }
    }
    let mut attributes = Map::new();
    if let Some(peer) = request.peer {
        attributes.insert(
            "source".into(),
            json!({"address": {"Address": {"SocketAddress": {
                "address": peer.ip().to_string(),
                "PortSpecifier": {"PortValue": peer.port()}
            }}}}),
        );
    }
    attributes.insert(
        "request".into(),
        json!({"http": serde_json::Value::Object(http_request.clone())}),
    );
    json!({
        "check_request": {"attributes": attributes},
        "http_request": http_request,
        "state": null,
    })
}

impl Authorize for OpaAuth {
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        let decision = match self.decide(&input(request)) {
            Ok(true) => Decision::Allow(Allowed::default()),
            Ok(false) => Decision::Deny(Denied::status(StatusCode::FORBIDDEN)),
            Err(error) => {
                tracing::warn!(query = %self.query, %error, "OPA query failed");
                Decision::Deny(Denied::status(StatusCode::FORBIDDEN))
            }
        };
        Box::pin(std::future::ready(decision))
    }
}

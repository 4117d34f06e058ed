//! AuthConfigs as Gloo's control plane hands them to its ext auth server: the proto3 JSON of
//! `enterprise.gloo.solo.io.ExtAuthConfig` (`extauth-internal.proto`), with every Secret
//! resolved, and the AuthConfig statuses that go with it.
//!
//! Sources: Gloo Enterprise's `projects/gloo/pkg/syncer/extauth/{translate,validate,
//! xds_snapshot_producer}.go` (last public version) and Gloo's Kubernetes secret converters
//! (`projects/gloo/pkg/api/converters/kube`):
//!
//! * **The config.** `authConfigRefName` (`<namespace>.<name>`), `booleanExpr`,
//!   `failOnRedirect`, and `configs`, each with its `name` and one auth type, stably sorted by
//!   name (unnamed ones first), as Gloo sorts them.
//! * **Basic auth.** `apr` alone is passed as `basicAuth`; `encryption` with `userList`
//!   becomes `basicAuthInternal` (`realm`, `encryption`, `userList`).
//! * **API keys** (`apiKeyAuth`, Kubernetes storage): the Secrets named by `apiKeySecretRefs`
//!   and those whose labels match `labelSelector` (in any namespace; the
//!   `k8sSecretApikeyStorage` fields win over the deprecated top-level ones) become
//!   `validApiKeys`: each Secret of type `extauth.solo.io/apikey` maps its `api-key` value to
//!   `{username: <Secret name>, metadata: <its other data keys>}`. `headersFromMetadata` and
//!   `headersFromMetadataEntry` merge into `headersFromKeyMetadata` (header → metadata key).
//!   Aerospike storage is passed on as it is.
//! * **OAuth2.** `oidcAuthorizationCode` becomes `oauth2.oidcAuthorizationCode` with the client
//!   secret read from its Secret (`client-secret`, Gloo's `extauth.solo.io/oauth` secret; none
//!   with `disableClientSecret`), a private key JWT's signing key (`validFor` default 5s),
//!   the session as `session` or, with a `cipherConfig`, as `userSession` carrying the 32-byte
//!   key of its `gloo.solo.io.EncryptionKeySecret` (`key`), `sessionIdHeaderName` from Redis'
//!   `headerName` when set, and the Entra ID client secret. `accessTokenValidation` becomes
//!   `oauth2.accessTokenValidationConfig` (the introspection client secret resolved), the plain
//!   `oauth2` flow `oauth2.oauth2Config`, the deprecated `oauth` `oauth`.
//! * **Others.** `jwt` is `{}`; `pluginAuth`, `passThroughAuth` without `tlsConfig`,
//!   `opaServerAuth`, `portalAuth` and LDAP without `groupLookupSettings` are passed on as they
//!   are. `passThroughAuth` with a `tlsConfig` becomes `passthroughInternal`: the step with
//!   its `tlsConfig` masked, and `tlsConfigData` with the `tls.crt`, `tls.key` and `ca.crt` of
//!   the Secret `secretRef` names (base64-encoded PEM: `certPem`, `keyPem`, `rootCaPem`) and
//!   the `sslParams`. LDAP with `groupLookupSettings` becomes
//!   `ldapInternal` with the service account of its `extauth.solo.io/accountcredentials`
//!   Secret (`username`, `password`); `hmacAuth` becomes a `secretList` of those credentials.
//!
//! **Statuses.** An AuthConfig is Rejected, and left out of [`ext_auth_configs`], for what
//! Gloo's `CheckIfInvalidAuthConfig` refuses (no configs, a config without its required
//! fields) and for what its translation cannot resolve (a missing Secret, a Secret of the
//! wrong type, an API key Secret without its key or a required metadata entry, a cipher key
//! that is not 32 bytes). A label selector matching no Secret is a Warning (Gloo logs it).
//! `booleanExpr` is checked by the server, as in Gloo.
//!
//! * **OPA.** `opaAuth` becomes `opaAuth` with its `query`, `options` and `modules`: every
//!   `data` entry of every ConfigMap (or Gloo Artifact) `modules` names, keyed by its key (the
//!   module's file name), as Gloo's `translateOpaConfig` merges them. A missing ConfigMap, a
//!   reference without a namespace (Gloo finds nothing in the namespace `""`) and a module
//!   name two ConfigMaps hold (Gloo's "is a duplicate module") reject the AuthConfig.
//!
//! Deviations: API key `hmac` / `digest` / `match` (newer than the config format above) are
//! refused rather than dropped; a client secret Secret without `client-secret` is an error
//! (Gloo passes an empty secret on). gloo-core does not compile the OPA modules (Gloo's
//! control plane does, to reject bad Rego): the ext auth server refuses a config whose Rego
//! does not compile and keeps serving its last good version.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::model::extauth::{
    AccessTokenValidation, AccessTokenValidationTypeRef, ApiKeyAuth, AuthConfigRef, AuthConfigSpec,
    Azure, BasicAuth, IntrospectionValidation, OAuth, OAuth2TypeRef, OidcAuthorizationCode,
    PlainOAuth2, UserSession,
};
use crate::model::secret::SecretSpec;
use crate::model::{Kind, ResourceRef};
use crate::snapshot::ConfigSnapshot;
use crate::status::{Reports, ResourceKey};

/// The Secret type of an API key (Gloo's `APIKeySecretType`).
const API_KEY_SECRET_TYPE: &str = "extauth.solo.io/apikey";
/// The data key of an API key (Gloo's `APIKeyDataKey`).
const API_KEY_DATA_KEY: &str = "api-key";
/// The data key of an OAuth client secret (Gloo's `ClientSecretDataKey`).
const CLIENT_SECRET_DATA_KEY: &str = "client-secret";
/// The data key of an encryption key (Gloo's `EncryptionDataKey`).
const ENCRYPTION_DATA_KEY: &str = "key";
/// The Secret type of service account credentials (Gloo's `AccountCredentialsSecretType`).
const CREDENTIALS_SECRET_TYPE: &str = "extauth.solo.io/accountcredentials";
/// A cipher key's length (Gloo's `encryptionKeyLength`).
const ENCRYPTION_KEY_LENGTH: usize = 32;

/// One AuthConfig, translated.
struct Translated {
    errors: Vec<String>,
    warnings: Vec<String>,
    config: Value,
}

/// The config Gloo's ext auth server loads for every AuthConfig that is valid, keyed by
/// `<namespace>.<name>` (the `config_id` requests carry in their context extensions), as
/// proto3 JSON of Gloo's `ExtAuthConfig`, with Secrets resolved. A Rejected AuthConfig (see
/// its status) is left out, so requests that name it are refused by the server.
///
/// ```
/// use gloo_core::source::{ConfigSource, MemorySource};
/// use gloo_core::snapshot::ConfigSnapshot;
/// use gloo_core::status::Reports;
///
/// let source = MemorySource::new("example");
/// source.set_yaml(r#"
/// apiVersion: enterprise.gloo.solo.io/v1
/// kind: AuthConfig
/// metadata: {name: basic-auth, namespace: gloo-system}
/// spec:
///   configs:
///   - basicAuth:
///       apr:
///         users:
///           user: {salt: TYiryv0/, hashedPassword: 8BvzLUO9IfGPGGsPnAgSu1}
/// "#);
/// let snapshot = ConfigSnapshot::from_source(&source.subscribe().borrow(), &mut Reports::default());
/// let configs = gloo_core::translate::ext_auth_configs(&snapshot);
/// let config = &configs["gloo-system.basic-auth"];
/// assert_eq!(config["authConfigRefName"], "gloo-system.basic-auth");
/// assert_eq!(config["configs"][0]["basicAuth"]["apr"]["users"]["user"]["salt"], "TYiryv0/");
/// ```
pub fn ext_auth_configs(snapshot: &ConfigSnapshot) -> BTreeMap<String, Value> {
    snapshot
        .auth_configs
        .iter()
        .filter_map(|(reference, entry)| {
            let translated = translate(snapshot, reference, &entry.object.spec);
            translated
                .errors
                .is_empty()
                .then(|| (key(reference), translated.config))
        })
        .collect()
}

/// What Gloo's ext auth server loads for one configuration, as a translator hands it on
/// ([`Translation::ext_auth_server`](super::Translation::ext_auth_server)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtAuthServerConfig {
    /// Per `<namespace>.<name>`, the config of each AuthConfig (see [`ext_auth_configs`]); a
    /// Rejected AuthConfig contributes its last good version, so a bad edit never locks out
    /// the routes that use it. An AuthConfig no longer in the configuration is dropped.
    pub configs: BTreeMap<String, Value>,
    /// The Settings' ext auth server (`extauth.extauthzServerRef` of the first Settings with
    /// `extauth`), when it is called over gRPC (no `httpService`).
    pub grpc_server: Option<ResourceRef>,
    /// The `static` hosts (address, port) of that upstream, in order; empty for any other
    /// kind of upstream or a missing one.
    pub grpc_server_static_hosts: Vec<(String, u32)>,
    /// The header the server puts the user id in (Settings `extauth.userIdHeader`, else
    /// [`DEFAULT_USER_ID_HEADER`](super::DEFAULT_USER_ID_HEADER)).
    pub user_id_header: String,
}

/// The AuthConfigs of a run of snapshots, with the last good version of each Rejected one. A
/// translator keeps one.
#[derive(Debug, Default)]
pub(crate) struct LastGoodAuthConfigs {
    configs: BTreeMap<String, Value>,
}

impl LastGoodAuthConfigs {
    /// The server config of `snapshot`, remembering its good AuthConfigs.
    pub(crate) fn update(&mut self, snapshot: &ConfigSnapshot) -> ExtAuthServerConfig {
        let mut configs = BTreeMap::new();
        for (reference, entry) in &snapshot.auth_configs {
            let id = key(reference);
            let translated = translate(snapshot, reference, &entry.object.spec);
            let good = if translated.errors.is_empty() {
                Some(translated.config)
            } else {
                self.configs.remove(&id)
            };
            if let Some(good) = good {
                configs.insert(id, good);
            }
        }
        self.configs = configs.clone();
        let settings = super::extauth::global_settings(snapshot);
        let grpc_server = settings
            .filter(|s| s.http_service.is_none())
            .and_then(|s| s.extauthz_server_ref.clone());
        let grpc_server_static_hosts = grpc_server
            .as_ref()
            .and_then(|r| snapshot.upstreams.get(r))
            .and_then(|e| e.object.spec.r#static.as_ref())
            .map(|s| s.hosts.iter().map(|h| (h.addr.clone(), h.port)).collect())
            .unwrap_or_default();
        ExtAuthServerConfig {
            configs,
            grpc_server,
            grpc_server_static_hosts,
            user_id_header: super::extauth::user_id_header(settings),
        }
    }
}

/// Reports every AuthConfig's problems on its status.
pub(crate) fn report(snapshot: &ConfigSnapshot, reports: &mut Reports) {
    for (reference, entry) in &snapshot.auth_configs {
        let key = ResourceKey::new(Kind::AuthConfig, reference.clone());
        let translated = translate(snapshot, reference, &entry.object.spec);
        for error in translated.errors {
            reports.error(&key, error);
        }
        for warning in translated.warnings {
            reports.warn(&key, warning);
        }
    }
}

/// `<namespace>.<name>`.
fn key(reference: &ResourceRef) -> String {
    format!(
        "{}.{}",
        reference.namespace.as_deref().unwrap_or_default(),
        reference.name
    )
}

/// Inserts `value` under `key` unless it is a proto3 default (null, `""`, `false`, `0`, empty
/// list or object), as proto3 JSON omits them.
fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    let default = match &value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if !default {
        map.insert(key.to_string(), value);
    }
}

/// A model value as JSON (its serde form is Gloo's JSON).
fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// [`put`] for several fields.
fn put_all<const N: usize>(map: &mut Map<String, Value>, fields: [(&str, Value); N]) {
    for (key, value) in fields {
        put(map, key, value);
    }
}

/// The fields the OIDC and the plain OAuth2 flows share, named alike in both.
macro_rules! oauth_fields {
    ($c:expr) => {{
        let c = $c;
        [
            ("clientId", to_json(&c.client_id)),
            (
                "authEndpointQueryParams",
                to_json(&c.auth_endpoint_query_params),
            ),
            (
                "tokenEndpointQueryParams",
                to_json(&c.token_endpoint_query_params),
            ),
            ("appUrl", to_json(&c.app_url)),
            ("callbackPath", to_json(&c.callback_path)),
            ("afterLogoutUrl", to_json(&c.after_logout_url)),
            ("logoutPath", to_json(&c.logout_path)),
            ("scopes", to_json(&c.scopes)),
        ]
    }};
}

/// Collects the problems of one AuthConfig while it is translated.
struct Problems {
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Problems {
    fn error(&mut self, message: String) {
        self.errors.push(message);
    }
}

/// The Secret `reference` names. A reference needs its namespace (Gloo finds nothing in the
/// namespace `""`).
fn secret<'s>(
    snapshot: &'s ConfigSnapshot,
    reference: &ResourceRef,
) -> Result<(ResourceRef, &'s SecretSpec), String> {
    let reference = reference.with_required_namespace("Secret")?;
    snapshot
        .secrets
        .get(&reference)
        .map(|e| (reference.clone(), &e.object.spec))
        .ok_or_else(|| format!("Secret {reference} not found"))
}

/// The text value of `data_key` in the Secret `reference` names.
fn secret_value(
    snapshot: &ConfigSnapshot,
    reference: &ResourceRef,
    data_key: &str,
    what: &str,
) -> Result<String, String> {
    let (found, spec) = secret(snapshot, reference)?;
    match spec.get(data_key) {
        Ok(Some(value)) => {
            String::from_utf8(value).map_err(|_| format!("Secret {found}: {data_key} is not text"))
        }
        Ok(None) => Err(format!("Secret {found} has no {data_key} ({what})")),
        Err(e) => Err(format!("Secret {found}: {e}")),
    }
}

/// Puts the client secret `reference` names under `clientSecret`, unless `disabled`; a
/// missing reference (when not disabled) or Secret is a problem at `path`.
fn put_client_secret(
    snapshot: &ConfigSnapshot,
    disabled: bool,
    reference: Option<&ResourceRef>,
    path: &str,
    problems: &mut Problems,
    out: &mut Map<String, Value>,
) {
    if disabled {
        return;
    }
    match reference {
        Some(r) => match client_secret(snapshot, r) {
            Ok(s) => put(out, "clientSecret", json!(s)),
            Err(e) => problems.error(format!("{path}: {e}")),
        },
        None => problems.error(format!("{path}: required unless disableClientSecret")),
    }
}

/// An OAuth client secret (`client-secret` of an `extauth.solo.io/oauth` Secret).
fn client_secret(snapshot: &ConfigSnapshot, reference: &ResourceRef) -> Result<String, String> {
    secret_value(
        snapshot,
        reference,
        CLIENT_SECRET_DATA_KEY,
        "an extauth.solo.io/oauth secret holds the client secret there",
    )
}

fn translate(
    snapshot: &ConfigSnapshot,
    reference: &ResourceRef,
    spec: &AuthConfigSpec,
) -> Translated {
    let mut problems = Problems {
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    if spec.configs.is_empty() {
        problems.error("spec.configs: at least one auth config is required".to_string());
    }
    let mut configs: Vec<(String, Value)> = Vec::new();
    for (i, config) in spec.configs.iter().enumerate() {
        let path = format!("spec.configs[{i}]");
        let auth = match config.auth_config() {
            Err(e) => {
                problems.error(format!("{path}: {e}"));
                continue;
            }
            Ok(None) => {
                problems.error(format!("{path}: no auth type is set"));
                continue;
            }
            Ok(Some(auth)) => auth,
        };
        let mut out = Map::new();
        if let Some(name) = &config.name {
            out.insert("name".into(), Value::String(name.clone()));
        }
        let translated = match auth {
            AuthConfigRef::BasicAuth(b) => {
                basic_auth(b, &format!("{path}.basicAuth"), &mut problems)
            }
            AuthConfigRef::OAuth(o) => oauth(snapshot, o, &format!("{path}.oauth"), &mut problems),
            AuthConfigRef::OAuth2(o) => {
                let path = format!("{path}.oauth2");
                match o.oauth_type() {
                    Err(e) => {
                        problems.error(format!("{path}: {e}"));
                        None
                    }
                    Ok(None) => {
                        problems.error(format!(
                            "{path}: set one of oidcAuthorizationCode, accessTokenValidation, oauth2"
                        ));
                        None
                    }
                    Ok(Some(OAuth2TypeRef::OidcAuthorizationCode(oidc))) => {
                        oidc_authorization_code(
                            snapshot,
                            oidc,
                            &format!("{path}.oidcAuthorizationCode"),
                            &mut problems,
                        )
                        .map(|c| ("oauth2", json!({"oidcAuthorizationCode": c})))
                    }
                    Ok(Some(OAuth2TypeRef::AccessTokenValidation(atv))) => access_token_validation(
                        snapshot,
                        atv,
                        &format!("{path}.accessTokenValidation"),
                        &mut problems,
                    )
                    .map(|c| ("oauth2", json!({"accessTokenValidationConfig": c}))),
                    Ok(Some(OAuth2TypeRef::PlainOAuth2(plain))) => {
                        plain_oauth2(snapshot, plain, &format!("{path}.oauth2"), &mut problems)
                            .map(|c| ("oauth2", json!({"oauth2Config": c})))
                    }
                }
            }
            AuthConfigRef::ApiKeyAuth(a) => {
                api_key_auth(snapshot, a, &format!("{path}.apiKeyAuth"), &mut problems)
                    .map(|c| ("apiKeyAuth", c))
            }
            AuthConfigRef::PluginAuth(p) => {
                if p.get("config").is_none_or(Value::is_null) {
                    problems.error(format!("{path}.pluginAuth.config: required"));
                }
                Some(("pluginAuth", p.clone()))
            }
            AuthConfigRef::OpaAuth(o) => {
                opa_auth(snapshot, o, &format!("{path}.opaAuth"), &mut problems)
            }
            AuthConfigRef::Ldap(l) => ldap(snapshot, l, &format!("{path}.ldap"), &mut problems),
            AuthConfigRef::Jwt => Some(("jwt", json!({}))),
            AuthConfigRef::PassThroughAuth(p) => pass_through(
                snapshot,
                p,
                &format!("{path}.passThroughAuth"),
                &mut problems,
            ),
            AuthConfigRef::HmacAuth(h) => {
                hmac(snapshot, h, &format!("{path}.hmacAuth"), &mut problems)
            }
            AuthConfigRef::OpaServerAuth(o) => Some(("opaServerAuth", o.clone())),
            AuthConfigRef::PortalAuth(p) => Some(("portalAuth", p.clone())),
        };
        if let Some((field, value)) = translated {
            out.insert(field.into(), value);
            configs.push((config.name.clone().unwrap_or_default(), Value::Object(out)));
        }
    }
    // Gloo sorts the configs by name (stably, unnamed first) so each run hashes alike.
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Map::new();
    out.insert("authConfigRefName".into(), Value::String(key(reference)));
    put(
        &mut out,
        "configs",
        Value::Array(configs.into_iter().map(|(_, c)| c).collect()),
    );
    if let Some(expr) = &spec.boolean_expr {
        out.insert("booleanExpr".into(), Value::String(expr.clone()));
    }
    put(
        &mut out,
        "failOnRedirect",
        Value::Bool(spec.fail_on_redirect.unwrap_or(false)),
    );
    Translated {
        errors: problems.errors,
        warnings: problems.warnings,
        config: Value::Object(out),
    }
}

// ----- basic auth ---------------------------------------------------------------------------

fn basic_auth(b: &BasicAuth, path: &str, problems: &mut Problems) -> Option<(&'static str, Value)> {
    let extended = b.encryption.is_some() || b.user_list.is_some();
    if b.apr.is_some() {
        if extended {
            problems.error(format!(
                "{path}: cannot use both apr and encryption/userList"
            ));
            return None;
        }
        return Some(("basicAuth", to_json(b)));
    }
    if !extended {
        problems.error(format!("{path}: set apr, or encryption and userList"));
        return None;
    }
    let Some(encryption) = &b.encryption else {
        problems.error(format!("{path}.encryption: required with userList"));
        return None;
    };
    let Some(users) = &b.user_list else {
        problems.error(format!("{path}.userList: required with encryption"));
        return None;
    };
    let algorithm = match (&encryption.apr, &encryption.sha1) {
        (Some(_), None) => json!({"apr": {}}),
        (None, Some(_)) => json!({"sha1": {}}),
        _ => {
            problems.error(format!("{path}.encryption: set exactly one of apr, sha1"));
            return None;
        }
    };
    let mut out = Map::new();
    put(
        &mut out,
        "realm",
        json!(b.realm.clone().unwrap_or_default()),
    );
    out.insert("encryption".into(), algorithm);
    out.insert("userList".into(), json!({"users": to_json(&users.users)}));
    Some(("basicAuthInternal", Value::Object(out)))
}

// ----- OAuth --------------------------------------------------------------------------------

fn oauth(
    snapshot: &ConfigSnapshot,
    o: &OAuth,
    path: &str,
    problems: &mut Problems,
) -> Option<(&'static str, Value)> {
    if o.app_url.as_deref().unwrap_or_default().is_empty() {
        problems.error(format!("{path}.appUrl: required"));
    }
    let secret = match &o.client_secret_ref {
        Some(r) => match client_secret(snapshot, r) {
            Ok(s) => s,
            Err(e) => {
                problems.error(format!("{path}.clientSecretRef: {e}"));
                return None;
            }
        },
        None => {
            problems.error(format!("{path}.clientSecretRef: required"));
            return None;
        }
    };
    let mut out = Map::new();
    put_all(
        &mut out,
        [
            ("clientId", to_json(&o.client_id)),
            ("clientSecret", json!(secret)),
            ("issuerUrl", to_json(&o.issuer_url)),
            (
                "authEndpointQueryParams",
                to_json(&o.auth_endpoint_query_params),
            ),
            ("appUrl", to_json(&o.app_url)),
            ("callbackPath", to_json(&o.callback_path)),
            ("scopes", to_json(&o.scopes)),
        ],
    );
    Some(("oauth", Value::Object(out)))
}

/// Gloo's `translateUserSession`: without a `cipherConfig` the session goes on as the
/// deprecated `session`; with one, as `userSession` carrying the key.
fn session(
    snapshot: &ConfigSnapshot,
    session: Option<&UserSession>,
    path: &str,
    problems: &mut Problems,
    out: &mut Map<String, Value>,
) {
    let Some(session) = session else { return };
    if session.cookie.is_some() && session.redis.is_some() {
        problems.error(format!("{path}: set at most one of cookie, redis"));
        return;
    }
    let mut plain = session.clone();
    let cipher = plain.cipher_config.take();
    let Some(key_ref) = cipher.and_then(|c| c.key_ref) else {
        out.insert("session".into(), to_json(&plain));
        return;
    };
    let key = match secret_value(
        snapshot,
        &key_ref,
        ENCRYPTION_DATA_KEY,
        "a gloo.solo.io.EncryptionKeySecret holds the key there",
    ) {
        Ok(key) => key,
        Err(e) => {
            problems.error(format!("{path}.cipherConfig.keyRef: {e}"));
            return;
        }
    };
    if key.len() != ENCRYPTION_KEY_LENGTH {
        problems.error(format!(
            "{path}.cipherConfig.keyRef: the encryption key needs to be {ENCRYPTION_KEY_LENGTH} characters in length"
        ));
        return;
    }
    let mut user_session = match to_json(&plain) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    user_session.insert("cipherConfig".into(), json!({ "key": key }));
    out.insert("userSession".into(), Value::Object(user_session));
}

/// The `default` / `azure` provider, with Entra ID's client secret resolved.
fn provider(
    snapshot: &ConfigSnapshot,
    default: bool,
    azure: Option<&Azure>,
    path: &str,
    problems: &mut Problems,
    out: &mut Map<String, Value>,
) {
    if default && azure.is_some() {
        problems.error(format!("{path}: set at most one of default, azure"));
        return;
    }
    if default {
        out.insert("default".into(), json!({}));
    }
    let Some(azure) = azure else { return };
    let mut a = Map::new();
    put(
        &mut a,
        "clientId",
        json!(azure.client_id.clone().unwrap_or_default()),
    );
    put(
        &mut a,
        "tenantId",
        json!(azure.tenant_id.clone().unwrap_or_default()),
    );
    if let Some(r) = &azure.client_secret {
        match client_secret(snapshot, r) {
            Ok(s) => put(&mut a, "clientSecret", json!(s)),
            Err(e) => problems.error(format!("{path}.azure.clientSecret: {e}")),
        }
    }
    put(
        &mut a,
        "claimsCachingOptions",
        to_json(&azure.claims_caching_options),
    );
    out.insert("azure".into(), Value::Object(a));
}

fn oidc_authorization_code(
    snapshot: &ConfigSnapshot,
    c: &OidcAuthorizationCode,
    path: &str,
    problems: &mut Problems,
) -> Option<Value> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    for (field, value) in [
        ("appUrl", &c.app_url),
        ("clientId", &c.client_id),
        ("issuerUrl", &c.issuer_url),
        ("callbackPath", &c.callback_path),
    ] {
        if text(value).is_empty() {
            problems.error(format!(
                "{path}.{field}: required (oidc: all of issuerUrl, clientId, clientSecretRef, appUrl, callbackPath must be provided)"
            ));
        }
    }
    let mut out = Map::new();
    let deprecated_set = c.client_secret_ref.is_some() || c.disable_client_secret.is_some();
    match &c.client_authentication {
        Some(auth) => {
            if deprecated_set {
                problems.error(format!(
                    "{path}.clientAuthentication: can not define both clientAuthentication and deprecated fields clientSecretRef/disableClientSecret"
                ));
            }
            match (&auth.client_secret, &auth.private_key_jwt) {
                (Some(secret), None) => put_client_secret(
                    snapshot,
                    secret.disable_client_secret.unwrap_or(false),
                    secret.client_secret_ref.as_ref(),
                    &format!("{path}.clientAuthentication.clientSecret.clientSecretRef"),
                    problems,
                    &mut out,
                ),
                (None, Some(jwt)) => match &jwt.signing_key_ref {
                    Some(r) => match client_secret(snapshot, r) {
                        Ok(key) => {
                            let valid_for =
                                jwt.valid_for.as_ref().map_or_else(|| json!("5s"), to_json);
                            out.insert(
                                "pkJwtClientAuthenticationConfig".into(),
                                json!({"signingKey": key, "validFor": valid_for}),
                            );
                        }
                        Err(e) => problems.error(format!(
                            "{path}.clientAuthentication.privateKeyJwt.signingKeyRef: {e}"
                        )),
                    },
                    None => problems.error(format!(
                        "{path}.clientAuthentication.privateKeyJwt.signingKeyRef: required"
                    )),
                },
                _ => problems.error(format!(
                    "{path}.clientAuthentication: set exactly one of clientSecret, privateKeyJwt"
                )),
            }
        }
        None => put_client_secret(
            snapshot,
            c.disable_client_secret.unwrap_or(false),
            c.client_secret_ref.as_ref(),
            &format!("{path}.clientSecretRef"),
            problems,
            &mut out,
        ),
    }
    // The Redis session's header name wins over the deprecated field.
    let session_id_header = c
        .session
        .as_ref()
        .and_then(|s| s.redis.as_ref())
        .and_then(|r| r.header_name.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| c.session_id_header_name.clone());
    put_all(&mut out, oauth_fields!(c));
    put_all(
        &mut out,
        [
            ("issuerUrl", to_json(&c.issuer_url)),
            ("sessionIdHeaderName", to_json(&session_id_header)),
            ("headers", to_json(&c.headers)),
            ("discoveryOverride", to_json(&c.discovery_override)),
            ("discoveryPollInterval", to_json(&c.discovery_poll_interval)),
            (
                "jwksCacheRefreshPolicy",
                to_json(&c.jwks_cache_refresh_policy),
            ),
            (
                "parseCallbackPathAsRegex",
                to_json(&c.parse_callback_path_as_regex),
            ),
            ("autoMapFromMetadata", to_json(&c.auto_map_from_metadata)),
            ("endSessionProperties", to_json(&c.end_session_properties)),
            ("accessToken", to_json(&c.access_token)),
            ("identityToken", to_json(&c.identity_token)),
            ("frontChannelLogout", to_json(&c.front_channel_logout)),
            (
                "dynamicMetadataFromClaims",
                to_json(&c.dynamic_metadata_from_claims),
            ),
        ],
    );
    session(
        snapshot,
        c.session.as_ref(),
        &format!("{path}.session"),
        problems,
        &mut out,
    );
    provider(
        snapshot,
        c.default.is_some(),
        c.azure.as_ref(),
        path,
        problems,
        &mut out,
    );
    Some(Value::Object(out))
}

fn plain_oauth2(
    snapshot: &ConfigSnapshot,
    c: &PlainOAuth2,
    path: &str,
    problems: &mut Problems,
) -> Option<Value> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    for (field, value) in [
        ("appUrl", &c.app_url),
        ("clientId", &c.client_id),
        ("authEndpoint", &c.auth_endpoint),
        ("tokenEndpoint", &c.token_endpoint),
        ("callbackPath", &c.callback_path),
    ] {
        if text(value).is_empty() {
            problems.error(format!("{path}.{field}: required"));
        }
    }
    let mut out = Map::new();
    put_client_secret(
        snapshot,
        c.disable_client_secret.unwrap_or(false),
        c.client_secret_ref.as_ref(),
        &format!("{path}.clientSecretRef"),
        problems,
        &mut out,
    );
    put_all(&mut out, oauth_fields!(c));
    put_all(
        &mut out,
        [
            ("tokenEndpoint", to_json(&c.token_endpoint)),
            ("authEndpoint", to_json(&c.auth_endpoint)),
            ("revocationEndpoint", to_json(&c.revocation_endpoint)),
        ],
    );
    session(
        snapshot,
        c.session.as_ref(),
        &format!("{path}.session"),
        problems,
        &mut out,
    );
    Some(Value::Object(out))
}

fn introspection(
    snapshot: &ConfigSnapshot,
    i: &IntrospectionValidation,
    path: &str,
    problems: &mut Problems,
) -> Value {
    let url = i.introspection_url.clone().unwrap_or_default();
    check_url(&url, &format!("{path}.introspectionUrl"), problems);
    let client_id = i.client_id.clone().unwrap_or_default();
    let disabled = i.disable_client_secret.unwrap_or(false);
    if (!client_id.is_empty() && i.client_secret_ref.is_none() && !disabled)
        || (i.client_secret_ref.is_some() && client_id.is_empty())
    {
        problems.error(format!(
            "{path}: clientId and clientSecretRef must be given together (or clientId with disableClientSecret)"
        ));
    }
    let mut out = Map::new();
    put(&mut out, "introspectionUrl", json!(url));
    put(&mut out, "clientId", json!(client_id));
    if let Some(r) = &i.client_secret_ref {
        match client_secret(snapshot, r) {
            Ok(s) => put(&mut out, "clientSecret", json!(s)),
            Err(e) => problems.error(format!("{path}.clientSecretRef: {e}")),
        }
    }
    put(
        &mut out,
        "userIdAttributeName",
        json!(i.user_id_attribute_name.clone().unwrap_or_default()),
    );
    Value::Object(out)
}

/// Gloo's introspection URL checks: not empty, and parseable.
fn check_url(url: &str, path: &str, problems: &mut Problems) {
    if url.is_empty() {
        problems.error(format!("{path}: introspection URL cannot be empty"));
    } else if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        problems.error(format!("{path}: introspection URL {url:?} is invalid"));
    }
}

fn access_token_validation(
    snapshot: &ConfigSnapshot,
    atv: &AccessTokenValidation,
    path: &str,
    problems: &mut Problems,
) -> Option<Value> {
    let mut out = Map::new();
    match atv.validation_type() {
        Err(e) => problems.error(format!("{path}: {e}")),
        Ok(None) => {}
        Ok(Some(AccessTokenValidationTypeRef::IntrospectionUrl(url))) => {
            check_url(url, &format!("{path}.introspectionUrl"), problems);
            put(&mut out, "introspectionUrl", json!(url));
        }
        Ok(Some(AccessTokenValidationTypeRef::Introspection(i))) => {
            let value = introspection(snapshot, i, &format!("{path}.introspection"), problems);
            out.insert("introspection".into(), value);
        }
        Ok(Some(AccessTokenValidationTypeRef::Jwt(jwt))) => {
            let mut j = Map::new();
            match (&jwt.remote_jwks, &jwt.local_jwks) {
                (Some(remote), None) => {
                    let url = remote.url.clone().unwrap_or_default();
                    if url.is_empty() {
                        problems.error(format!(
                            "{path}.jwt.remoteJwks.url: remote JWKS URL cannot be empty"
                        ));
                    }
                    let mut r = Map::new();
                    put(&mut r, "url", json!(url));
                    put(&mut r, "refreshInterval", to_json(&remote.refresh_interval));
                    j.insert("remoteJwks".into(), Value::Object(r));
                }
                (None, Some(local)) => {
                    let inline = local.inline_string.clone().unwrap_or_default();
                    if inline.is_empty() {
                        problems.error(format!(
                            "{path}.jwt.localJwks.inlineString: must provide inline JWKS string"
                        ));
                    }
                    j.insert("localJwks".into(), json!({ "inlineString": inline }));
                }
                (Some(_), Some(_)) => problems.error(format!(
                    "{path}.jwt: set at most one of remoteJwks, localJwks"
                )),
                (None, None) => {}
            }
            put(
                &mut j,
                "issuer",
                json!(jwt.issuer.clone().unwrap_or_default()),
            );
            put(&mut j, "audiences", to_json(&jwt.audiences));
            out.insert("jwt".into(), Value::Object(j));
        }
    }
    put(
        &mut out,
        "userinfoUrl",
        json!(atv.userinfo_url.clone().unwrap_or_default()),
    );
    put(&mut out, "cacheTimeout", to_json(&atv.cache_timeout));
    if let Some(scopes) = &atv.required_scopes {
        out.insert("requiredScopes".into(), json!({ "scope": scopes.scope }));
    }
    put(
        &mut out,
        "dynamicMetadataFromClaims",
        to_json(&atv.dynamic_metadata_from_claims),
    );
    put(&mut out, "claimsToHeaders", to_json(&atv.claims_to_headers));
    provider(
        snapshot,
        atv.default.is_some(),
        atv.azure.as_ref(),
        path,
        problems,
        &mut out,
    );
    Some(Value::Object(out))
}

// ----- API keys -----------------------------------------------------------------------------

/// Whether `labels` carries every `selector` label with its value.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn api_key_auth(
    snapshot: &ConfigSnapshot,
    a: &ApiKeyAuth,
    path: &str,
    problems: &mut Problems,
) -> Option<Value> {
    for (field, set) in [
        ("hmac", a.hmac.is_some()),
        ("digest", a.digest.is_some()),
        ("match", a.r#match.is_some()),
    ] {
        if set {
            problems.error(format!(
                "{path}.{field}: not supported yet, so it is rejected rather than compared in plain text"
            ));
        }
    }
    let mut out = Map::new();
    put(
        &mut out,
        "headerName",
        json!(a.header_name.clone().unwrap_or_default()),
    );
    let mut headers_from_metadata: BTreeMap<String, String> = BTreeMap::new();
    let mut required: Vec<String> = Vec::new();
    for (header, entry) in a
        .headers_from_metadata
        .iter()
        .chain(&a.headers_from_metadata_entry)
    {
        let name = entry.name.clone().unwrap_or_default();
        if entry.required == Some(true) && !required.contains(&name) {
            required.push(name.clone());
        }
        headers_from_metadata.insert(header.clone(), name);
    }
    put(
        &mut out,
        "headersFromKeyMetadata",
        to_json(&headers_from_metadata),
    );
    put(
        &mut out,
        "skipMetadataValidation",
        json!(a.skip_metadata_validation.unwrap_or(false)),
    );
    if let Some(aerospike) = &a.aerospike_apikey_storage {
        let mut storage = aerospike.clone();
        let empty = storage
            .get("labelSelector")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty());
        if empty && !a.label_selector.is_empty() {
            if let Value::Object(m) = &mut storage {
                m.insert("labelSelector".into(), to_json(&a.label_selector));
            }
        }
        out.insert("aerospikeApikeyStorage".into(), storage);
        return Some(Value::Object(out));
    }
    let storage = a.k8s_secret_apikey_storage.as_ref();
    let mut refs = &a.api_key_secret_refs;
    if let Some(s) = storage.filter(|s| !s.api_key_secret_refs.is_empty()) {
        if !a.api_key_secret_refs.is_empty() {
            problems.warnings.push(format!(
                "{path}: apiKeySecretRefs is set in both a deprecated API and its replacement API; the deprecated value is ignored"
            ));
        }
        refs = &s.api_key_secret_refs;
    }
    let mut selector = &a.label_selector;
    if let Some(s) = storage.filter(|s| !s.label_selector.is_empty()) {
        if !a.label_selector.is_empty() {
            problems.warnings.push(format!(
                "{path}: labelSelector is set in both a deprecated API and its replacement API; the deprecated value is ignored"
            ));
        }
        selector = &s.label_selector;
    }
    if refs.is_empty() && selector.is_empty() {
        problems.error(format!(
            "{path}: set labelSelector or apiKeySecretRefs (in k8sSecretApikeyStorage) to name the API key Secrets"
        ));
        return None;
    }
    let mut secrets: Vec<(ResourceRef, &SecretSpec)> = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        match secret(snapshot, r) {
            Ok(found) => secrets.push(found),
            Err(e) => problems.error(format!("{path}.apiKeySecretRefs[{i}]: {e}")),
        }
    }
    if !selector.is_empty() {
        let matched: Vec<(ResourceRef, &SecretSpec)> = snapshot
            .secrets
            .iter()
            .filter(|(_, e)| selects(selector, &e.object.metadata.labels))
            .map(|(r, e)| (r.clone(), &e.object.spec))
            .collect();
        if matched.is_empty() {
            problems.warnings.push(format!(
                "{path}.labelSelector: no matching apikey secrets for the provided label selector {selector:?}"
            ));
        }
        secrets.extend(matched);
    }
    let mut valid: Map<String, Value> = Map::new();
    for (reference, spec) in secrets {
        let api_key = match spec.get(API_KEY_DATA_KEY) {
            Ok(Some(key)) if spec.type_.as_deref() == Some(API_KEY_SECRET_TYPE) => key,
            Ok(_) => {
                problems.error(format!(
                    "{path}: secret [{reference}] is not an API key secret (type {API_KEY_SECRET_TYPE} with data key {API_KEY_DATA_KEY})"
                ));
                continue;
            }
            Err(e) => {
                problems.error(format!("{path}: secret [{reference}]: {e}"));
                continue;
            }
        };
        if api_key.is_empty() {
            problems.error(format!(
                "{path}: no API key found on API key secret [{reference}]"
            ));
            continue;
        }
        let mut metadata: BTreeMap<String, String> = BTreeMap::new();
        let mut keys: Vec<&String> = spec.data.keys().chain(spec.string_data.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys.into_iter().filter(|k| *k != API_KEY_DATA_KEY) {
            match spec.get(k) {
                Ok(Some(v)) => {
                    metadata.insert(k.clone(), String::from_utf8_lossy(&v).into_owned());
                }
                Ok(None) => {}
                Err(e) => problems.error(format!("{path}: secret [{reference}]: {e}")),
            }
        }
        for key in &required {
            if !metadata.contains_key(key) {
                problems.error(format!(
                    "{path}: API key secret [{reference}] does not contain the required [{key}] metadata entry"
                ));
            }
        }
        let mut entry = Map::new();
        entry.insert("username".into(), Value::String(reference.name.clone()));
        put(&mut entry, "metadata", to_json(&metadata));
        valid.insert(
            String::from_utf8_lossy(&api_key).into_owned(),
            Value::Object(entry),
        );
    }
    put(&mut out, "validApiKeys", Value::Object(valid));
    Some(Value::Object(out))
}

// ----- OPA, LDAP, pass-through, HMAC --------------------------------------------------------

/// Gloo's `translateOpaConfig`: the `modules` (ConfigMaps or Artifacts) merged into one map of
/// file name to Rego source, each entry of each one a module; a missing one, or a module name
/// two of them hold, is an error naming the reference.
fn opa_auth(
    snapshot: &ConfigSnapshot,
    o: &Value,
    path: &str,
    problems: &mut Problems,
) -> Option<(&'static str, Value)> {
    let query = o.get("query").and_then(Value::as_str).unwrap_or_default();
    if query.trim().is_empty() {
        problems.error(format!("{path}.query: no query provided"));
    }
    let refs = match o.get("modules") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(refs)) => refs.iter().collect(),
        Some(_) => {
            problems.error(format!("{path}.modules: must be a list of references"));
            return None;
        }
    };
    let mut modules = Map::new();
    // Which reference each module came from, for the duplicate error.
    let mut from: BTreeMap<String, ResourceRef> = BTreeMap::new();
    let mut ok = true;
    for (j, value) in refs.into_iter().enumerate() {
        let at = format!("{path}.modules[{j}]");
        let Some(reference) = json_ref(value) else {
            problems.error(format!("{at}: not a reference ({{name, namespace}})"));
            ok = false;
            continue;
        };
        let (found, artifact) = match snapshot.artifact(&reference) {
            Ok(found) => found,
            Err(e) => {
                problems.error(format!("{at}: {e}"));
                ok = false;
                continue;
            }
        };
        for (name, source) in &artifact.data {
            if let Some(first) = from.get(name) {
                // Gloo: "<name> is a duplicate module".
                problems.error(format!(
                    "{at}: {name} is a duplicate module (ConfigMap {found} and ConfigMap {first} both hold it)"
                ));
                ok = false;
                continue;
            }
            from.insert(name.clone(), found.clone());
            modules.insert(name.clone(), Value::String(source.clone()));
        }
    }
    if !ok {
        return None;
    }
    let mut out = Map::new();
    put(&mut out, "modules", Value::Object(modules));
    put(&mut out, "query", json!(query));
    put(
        &mut out,
        "options",
        o.get("options").cloned().unwrap_or(Value::Null),
    );
    Some(("opaAuth", Value::Object(out)))
}

/// Service account credentials (`username`, `password`) from an
/// `extauth.solo.io/accountcredentials` Secret.
fn credentials(
    snapshot: &ConfigSnapshot,
    reference: &ResourceRef,
) -> Result<(String, String), String> {
    let (found, spec) = secret(snapshot, reference)?;
    if spec.type_.as_deref() != Some(CREDENTIALS_SECRET_TYPE) {
        return Err(format!(
            "secret [{found}] is not an Account Credentials secret (type {CREDENTIALS_SECRET_TYPE})"
        ));
    }
    let text = |key: &str| -> Result<String, String> {
        match spec.get(key) {
            Ok(Some(v)) => Ok(String::from_utf8_lossy(&v).into_owned()),
            Ok(None) => Err(format!("Secret {found} has no {key}")),
            Err(e) => Err(format!("Secret {found}: {e}")),
        }
    };
    Ok((text("username")?, text("password")?))
}

/// A reference written as JSON (`{name, namespace}`).
fn json_ref(value: &Value) -> Option<ResourceRef> {
    serde_json::from_value(value.clone()).ok()
}

fn ldap(
    snapshot: &ConfigSnapshot,
    l: &Value,
    path: &str,
    problems: &mut Problems,
) -> Option<(&'static str, Value)> {
    if l.get("address")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        problems.error(format!("{path}.address: required"));
    }
    let Some(lookup) = l.get("groupLookupSettings").filter(|v| !v.is_null()) else {
        return Some(("ldap", l.clone()));
    };
    let check = lookup
        .get("checkGroupsWithServiceAccount")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut settings = Map::new();
    put(&mut settings, "checkGroupsWithServiceAccount", json!(check));
    match lookup.get("credentialsSecretRef").and_then(json_ref) {
        Some(r) => match credentials(snapshot, &r) {
            Ok((username, password)) => {
                put(&mut settings, "username", json!(username));
                put(&mut settings, "password", json!(password));
            }
            Err(e) => problems.error(format!(
                "{path}.groupLookupSettings.credentialsSecretRef: {e}"
            )),
        },
        None if check => problems.error(format!(
            "{path}.groupLookupSettings.credentialsSecretRef: Authenticating with service account configured without account credentials"
        )),
        None => {}
    }
    let mut out = Map::new();
    for field in [
        "address",
        "userDnTemplate",
        "membershipAttributeName",
        "allowedGroups",
        "pool",
        "searchFilter",
        "disableGroupChecking",
    ] {
        put(
            &mut out,
            field,
            l.get(field).cloned().unwrap_or(Value::Null),
        );
    }
    out.insert("groupLookupSettings".into(), Value::Object(settings));
    Some(("ldapInternal", Value::Object(out)))
}

fn pass_through(
    snapshot: &ConfigSnapshot,
    p: &Value,
    path: &str,
    problems: &mut Problems,
) -> Option<(&'static str, Value)> {
    match (p.get("grpc"), p.get("http")) {
        (Some(grpc), None) => {
            if grpc
                .get("address")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .is_empty()
            {
                problems.error(format!("{path}.grpc.address: required"));
            }
        }
        (None, Some(http)) => {
            if http
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .is_empty()
            {
                problems.error(format!("{path}.http.url: required"));
            }
            let list = |field: &str| -> Vec<String> {
                http.get("response")
                    .and_then(|r| r.get(field))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let overwrite = list("allowedUpstreamHeadersToOverwrite");
            let both: Vec<String> = list("allowedUpstreamHeaders")
                .into_iter()
                .filter(|h| overwrite.contains(h))
                .collect();
            if !both.is_empty() {
                problems.error(format!(
                    "{path}.http.response: The following headers are configured for both append and overwrite in the upstream: {}",
                    both.join(", ")
                ));
            }
        }
        _ => problems.error(format!("{path}: set exactly one of grpc, http")),
    }
    // A `tlsConfig` becomes `passthroughInternal`: the step with its `tlsConfig` masked, and
    // the TLS Secret's PEM (base64-encoded) with the `sslParams` as `tlsConfigData`.
    let protocol = if p.get("grpc").is_some() {
        "grpc"
    } else {
        "http"
    };
    let Some(tls) = p
        .get(protocol)
        .and_then(|c| c.get("tlsConfig"))
        .filter(|v| !v.is_null())
    else {
        return Some(("passThroughAuth", p.clone()));
    };
    let mut data = Map::new();
    if let Some(reference) = tls.get("secretRef").filter(|v| !v.is_null()) {
        let at = format!("{path}.{protocol}.tlsConfig.secretRef");
        match json_ref(reference)
            .ok_or_else(|| "not a reference".to_string())
            .and_then(|r| tls_secret_pem(snapshot, &r))
        {
            Ok(pem) => {
                for (field, value) in pem {
                    put(&mut data, field, json!(value));
                }
            }
            Err(e) => problems.error(format!("{at}: {e}")),
        }
    }
    put(
        &mut data,
        "sslParams",
        tls.get("sslParams").cloned().unwrap_or(Value::Null),
    );
    let mut masked = p.clone();
    if let Some(Value::Object(step)) = masked.get_mut(protocol) {
        step.remove("tlsConfig");
    }
    Some((
        "passthroughInternal",
        json!({"passThroughAuth": masked, "tlsConfigData": data}),
    ))
}

/// A Kubernetes TLS Secret's `tls.crt`, `tls.key` and `ca.crt` as `tlsConfigData`'s
/// `certPem`, `keyPem` and `rootCaPem` (base64 of the PEM, as Gloo sends them).
fn tls_secret_pem(
    snapshot: &ConfigSnapshot,
    reference: &ResourceRef,
) -> Result<Vec<(&'static str, String)>, String> {
    use base64::Engine;
    // The namespace rule of every extauth Secret, then the TLS material's.
    let (found, _) = secret(snapshot, reference)?;
    let tls = snapshot.tls_secret(&found, "")?;
    let encode =
        |pem: Option<Vec<u8>>| pem.map(|p| base64::engine::general_purpose::STANDARD.encode(p));
    let pem: Vec<(&'static str, String)> = [
        ("certPem", encode(tls.cert_chain)),
        ("keyPem", encode(tls.private_key)),
        ("rootCaPem", encode(tls.root_ca)),
    ]
    .into_iter()
    .filter_map(|(field, value)| value.map(|v| (field, v)))
    .collect();
    Ok(pem)
}

fn hmac(
    snapshot: &ConfigSnapshot,
    h: &Value,
    path: &str,
    problems: &mut Problems,
) -> Option<(&'static str, Value)> {
    let refs: Vec<&Value> = h
        .get("secretRefs")
        .and_then(|s| s.get("secretRefs"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if refs.is_empty() {
        problems.error(format!("{path}.secretRefs.secretRefs: no secrets provided"));
        return None;
    }
    let mut passwords = Map::new();
    for (i, value) in refs.into_iter().enumerate() {
        let at = format!("{path}.secretRefs.secretRefs[{i}]");
        match json_ref(value)
            .ok_or_else(|| "not a reference".to_string())
            .and_then(|r| credentials(snapshot, &r))
        {
            Ok((user, password)) => {
                passwords.insert(user, Value::String(password));
            }
            // Gloo serves the users it can read, with a warning.
            Err(e) => problems.warnings.push(format!("{at}: {e}")),
        }
    }
    if passwords.is_empty() {
        problems.error(format!("{path}: No valid users found"));
        return None;
    }
    Some((
        "hmacAuth",
        json!({
            "secretList": {"secretList": passwords},
            "parametersInHeaders": {},
        }),
    ))
}

//! Canonical content hashes of Envoy messages.
//!
//! prost encodes map fields in `HashMap` order, so the same message can encode to different
//! bytes. The hash here walks the message through its descriptor instead: fields in number
//! order, map entries sorted by key, `Any` payloads decoded and walked as well, so equal content
//! always gives an equal version.

use prost_reflect::{DynamicMessage, MapKey, Value};
use xxhash_rust::xxh3::Xxh3;

use super::json::{descriptor_pool, dynamic};
use super::EnvoyMessage;

/// The content version of `message`: a 64-bit hash of its canonical form, as 16 hex digits.
///
/// ```
/// use envoy_types::pb::envoy::config::cluster::v3::Cluster;
/// let a = Cluster { name: "a".into(), ..Default::default() };
/// let v = gloo_core::xds::content_version(&a);
/// assert_eq!(v.len(), 16);
/// assert_eq!(v, gloo_core::xds::content_version(&a.clone()));
/// ```
pub fn content_version<M: EnvoyMessage>(message: &M) -> String {
    let mut hasher = Xxh3::new();
    if message.encoding_is_canonical() {
        // The common case: the encoding itself is canonical, hash it in one pass.
        hasher.update(M::FULL_NAME.as_bytes());
        hasher.update(&message.encode_to_vec());
        return format!("{:016x}", hasher.digest());
    }
    match dynamic(message) {
        Ok(dynamic) => hash_message(&dynamic, &mut hasher),
        // Not in the pool (never for the types gloo emits): fall back to the encoded bytes.
        Err(_) => hasher.update(&message.encode_to_vec()),
    }
    format!("{:016x}", hasher.digest())
}

/// A message's encoding and its [`content_version`], encoding it once when the encoding is
/// canonical.
pub(crate) fn encode_with_version<M: EnvoyMessage>(message: &M) -> (Vec<u8>, String) {
    let encoded = message.encode_to_vec();
    if message.encoding_is_canonical() {
        let mut hasher = Xxh3::new();
        hasher.update(M::FULL_NAME.as_bytes());
        hasher.update(&encoded);
        return (encoded, format!("{:016x}", hasher.digest()));
    }
    (encoded, content_version(message))
}

fn hash_message(message: &DynamicMessage, hasher: &mut Xxh3) {
    if prost_reflect::ReflectMessage::descriptor(message).full_name() == "google.protobuf.Any" {
        if let Some(any) = decode_any(message) {
            // The payload's type is part of its content.
            hasher.update(
                prost_reflect::ReflectMessage::descriptor(&any)
                    .full_name()
                    .as_bytes(),
            );
            hash_message(&any, hasher);
            return;
        }
    }
    for (field, value) in message.fields() {
        hasher.update(&field.number().to_le_bytes());
        hash_value(value, hasher);
    }
    hasher.update(b"}");
}

fn decode_any(message: &DynamicMessage) -> Option<DynamicMessage> {
    let type_url = message.get_field_by_name("type_url")?;
    let value = message.get_field_by_name("value")?;
    let name = type_url.as_str()?.rsplit('/').next()?;
    let descriptor = descriptor_pool().get_message_by_name(name)?;
    DynamicMessage::decode(descriptor, value.as_bytes()?.clone()).ok()
}

fn hash_value(value: &Value, hasher: &mut Xxh3) {
    match value {
        Value::Bool(b) => hasher.update(&[*b as u8]),
        Value::I32(v) => hasher.update(&v.to_le_bytes()),
        Value::I64(v) => hasher.update(&v.to_le_bytes()),
        Value::U32(v) => hasher.update(&v.to_le_bytes()),
        Value::U64(v) => hasher.update(&v.to_le_bytes()),
        Value::F32(v) => hasher.update(&v.to_bits().to_le_bytes()),
        Value::F64(v) => hasher.update(&v.to_bits().to_le_bytes()),
        Value::String(s) => {
            hasher.update(&(s.len() as u64).to_le_bytes());
            hasher.update(s.as_bytes());
        }
        Value::Bytes(b) => {
            hasher.update(&(b.len() as u64).to_le_bytes());
            hasher.update(b);
        }
        Value::EnumNumber(n) => hasher.update(&n.to_le_bytes()),
        Value::Message(m) => {
            hasher.update(b"{");
            hash_message(m, hasher);
        }
        Value::List(items) => {
            hasher.update(&(items.len() as u64).to_le_bytes());
            for item in items {
                hash_value(item, hasher);
            }
        }
        Value::Map(map) => {
            let mut entries: Vec<(&MapKey, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            hasher.update(&(entries.len() as u64).to_le_bytes());
            for (key, value) in entries {
                hash_map_key(key, hasher);
                hash_value(value, hasher);
            }
        }
    }
}

fn hash_map_key(key: &MapKey, hasher: &mut Xxh3) {
    match key {
        MapKey::Bool(b) => hasher.update(&[*b as u8]),
        MapKey::I32(v) => hasher.update(&v.to_le_bytes()),
        MapKey::I64(v) => hasher.update(&v.to_le_bytes()),
        MapKey::U32(v) => hasher.update(&v.to_le_bytes()),
        MapKey::U64(v) => hasher.update(&v.to_le_bytes()),
        MapKey::String(s) => {
            hasher.update(&(s.len() as u64).to_le_bytes());
            hasher.update(s.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xds::pack;
    use crate::xds::EnvoyMessage;
    use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, VirtualHost};
    use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
    use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;

    fn route_config(names: &[&str]) -> RouteConfiguration {
        let mut vh = VirtualHost {
            name: "vh".into(),
            domains: vec!["*".into()],
            routes: vec![Route::default()],
            ..Default::default()
        };
        for name in names {
            let any = if *name == "cors" {
                pack(&CorsPolicy::default())
            } else {
                pack(&HttpFault::default())
            };
            vh.typed_per_filter_config.insert(name.to_string(), any);
        }
        RouteConfiguration {
            name: "rc".into(),
            virtual_hosts: vec![vh],
            ..Default::default()
        }
    }

    #[test]
    fn equal_content_has_equal_version_whatever_the_map_order() {
        // Many maps built independently: their HashMap iteration orders differ, the hash must not.
        let first = content_version(&route_config(&["cors", "fault", "a", "b", "c"]));
        for _ in 0..20 {
            assert_eq!(
                first,
                content_version(&route_config(&["c", "b", "a", "fault", "cors"]))
            );
        }
    }

    #[test]
    fn any_change_changes_the_version() {
        let base = content_version(&route_config(&["cors"]));
        assert_ne!(base, content_version(&route_config(&["fault"])));
        assert_ne!(base, content_version(&route_config(&["cors", "fault"])));
        let mut renamed = route_config(&["cors"]);
        renamed.name = "other".into();
        assert_ne!(base, content_version(&renamed));
    }

    #[test]
    fn virtual_hosts_hash_the_same_through_either_path() {
        let vh = |names: &[&str]| route_config(names).virtual_hosts[0].clone();
        // One per-filter entry: the encoding is canonical and hashed directly.
        assert!(vh(&["cors"]).encoding_is_canonical());
        assert_eq!(
            content_version(&vh(&["cors"])),
            content_version(&vh(&["cors"]))
        );
        assert_ne!(
            content_version(&vh(&["cors"])),
            content_version(&vh(&["fault"]))
        );
        // Several: the canonical walk, whatever the map order.
        assert!(!vh(&["cors", "fault"]).encoding_is_canonical());
        let first = content_version(&vh(&["cors", "fault", "a", "b"]));
        for _ in 0..20 {
            assert_eq!(first, content_version(&vh(&["b", "a", "fault", "cors"])));
        }
    }

    #[test]
    fn routes_with_multi_field_metadata_keep_their_version() {
        use envoy_types::pb::envoy::config::core::v3::Metadata;
        use envoy_types::pb::envoy::config::route::v3::Route;
        use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
        // One filter's metadata (Gloo's `envoyMetadata`, subset criteria) is a `Struct`: a
        // map too, whose fields prost encodes in `HashMap` order.
        let vh = |keys: &[&str]| {
            let fields = keys
                .iter()
                .map(|k| {
                    let value = Value {
                        kind: Some(Kind::StringValue(format!("{k}-value"))),
                    };
                    (k.to_string(), value)
                })
                .collect();
            let mut vh = route_config(&["cors"]).virtual_hosts[0].clone();
            vh.routes = vec![Route {
                metadata: Some(Metadata {
                    filter_metadata: [("io.example".to_string(), Struct { fields })].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }];
            vh
        };
        assert!(vh(&["team"]).encoding_is_canonical());
        assert!(!vh(&["team", "tier"]).encoding_is_canonical());
        let first = content_version(&vh(&["a", "b", "c", "d", "e"]));
        for _ in 0..20 {
            assert_eq!(first, content_version(&vh(&["e", "d", "c", "b", "a"])));
        }
    }

    #[test]
    fn virtual_hosts_with_ext_auth_context_extensions_keep_their_version() {
        use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{
            ext_authz_per_route, CheckSettings, ExtAuthzPerRoute,
        };
        // One per-filter entry, but ext auth's context extensions are a map: three entries in
        // `HashMap` order.
        let vh = |keys: &[&str]| {
            let per_route = ExtAuthzPerRoute {
                r#override: Some(ext_authz_per_route::Override::CheckSettings(
                    CheckSettings {
                        context_extensions: keys
                            .iter()
                            .map(|k| (k.to_string(), format!("{k}-value")))
                            .collect(),
                        ..Default::default()
                    },
                )),
            };
            let mut vh = route_config(&[]).virtual_hosts[0].clone();
            vh.typed_per_filter_config = [(
                "envoy.filters.http.ext_authz".to_string(),
                crate::xds::pack(&per_route),
            )]
            .into();
            vh
        };
        assert!(!vh(&["config_id"]).encoding_is_canonical());
        let first = content_version(&vh(&["config_id", "source_type", "source_name"]));
        for _ in 0..20 {
            assert_eq!(
                first,
                content_version(&vh(&["source_name", "source_type", "config_id"]))
            );
        }
    }

    #[test]
    fn listeners_with_several_jwt_providers_keep_their_version() {
        use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
        use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
            JwtAuthentication, JwtProvider,
        };
        use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
            http_connection_manager, http_filter, HttpConnectionManager, HttpFilter,
        };
        let listener = |names: &[&str]| {
            let mut jwt = JwtAuthentication::default();
            for name in names {
                let provider = JwtProvider {
                    issuer: format!("https://{name}.example"),
                    ..Default::default()
                };
                jwt.providers.insert(name.to_string(), provider);
            }
            let hcm = HttpConnectionManager {
                codec_type: http_connection_manager::CodecType::Auto as i32,
                http_filters: vec![HttpFilter {
                    name: "envoy.filters.http.jwt_authn".into(),
                    config_type: Some(http_filter::ConfigType::TypedConfig(pack(&jwt))),
                    ..Default::default()
                }],
                ..Default::default()
            };
            Listener {
                name: "l".into(),
                filter_chains: vec![FilterChain {
                    filters: vec![Filter {
                        name: "envoy.filters.network.http_connection_manager".into(),
                        config_type: Some(filter::ConfigType::TypedConfig(pack(&hcm))),
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }
        };
        // A listener embedding the JWT filter is walked canonically, so independently built
        // provider maps give one version.
        assert!(!listener(&["a", "b"]).encoding_is_canonical());
        let first = content_version(&listener(&["a", "b", "c", "d", "e"]));
        for _ in 0..20 {
            assert_eq!(
                first,
                content_version(&listener(&["e", "d", "c", "b", "a"]))
            );
        }
    }
}

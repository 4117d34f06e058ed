//! JSON values as protobuf `google.protobuf.Value`s, for the gRPC services and clients that
//! hand JSON (dynamic metadata, passthrough config) to Envoy's protos.

use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::{ListValue, Struct, Value};

/// A JSON value as a protobuf `Value` (as Envoy's `MessageUtil` converts JSON).
pub(crate) fn pb_value(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    let kind = match json {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(pb_value).collect(),
        }),
        J::Object(map) => Kind::StructValue(pb_struct(map)),
    };
    Value { kind: Some(kind) }
}

/// A JSON object as a protobuf `Struct`.
pub(crate) fn pb_struct(map: &serde_json::Map<String, serde_json::Value>) -> Struct {
    Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), pb_value(v))).collect(),
    }
}

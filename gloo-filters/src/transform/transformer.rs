//! Compiled transformations: envoy-gloo's `InjaTransformer` and `BodyHeaderTransformer`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};

use super::config::{
    BodyTransformation, HeaderBodyTransform, RequestBodyParse, Transformation,
    TransformationTemplate,
};
use super::error::{ConfigError, TransformError};
use super::extraction::Extractor;
use super::head::{Head, Kind, Name};
use super::metadata::DynamicMetadata;
use super::template::{Engine, RenderData};

/// envoy-gloo's filter name, the default dynamic metadata namespace.
pub(crate) const FILTER_NAMESPACE: &str = "io.solo.transformation";

/// A validated [`Transformation`].
#[derive(Debug)]
pub(crate) enum Transformer {
    Template(Box<TemplateTransformer>),
    HeaderBody(HeaderBodyTransform),
}

/// What a transformation did besides changing the head.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The new body, if the body was replaced.
    pub(crate) body: Option<Bytes>,
    /// Dynamic metadata to publish.
    pub(crate) metadata: DynamicMetadata,
}

impl Transformer {
    pub(crate) fn compile(t: &Transformation) -> Result<Self, ConfigError> {
        match t {
            Transformation::Template(t) => Ok(Self::Template(Box::new(
                TemplateTransformer::compile(t).map_err(|e| e.within("transformation_template"))?,
            ))),
            Transformation::HeaderBody(h) => Ok(Self::HeaderBody(*h)),
        }
    }

    /// Whether the body must be buffered before transforming: it is read (body template or
    /// extractor, `body()`, JSON parsing) or replaced. Otherwise headers are transformed at
    /// once and the body streams through untouched.
    pub(crate) fn needs_body(&self) -> bool {
        match self {
            Self::Template(t) => t.needs_body,
            Self::HeaderBody(_) => true,
        }
    }

    /// `passthrough: {}`.
    pub(crate) fn passthrough(&self) -> bool {
        matches!(self, Self::Template(t) if matches!(t.body, CompiledBody::Passthrough))
    }

    /// Transforms `head` (and `body`, which is empty unless the body was buffered).
    /// `request_head` is the request's head when a response is transformed.
    pub(crate) fn transform(
        &self,
        head: &mut Head,
        body: &Bytes,
        request_head: Option<Arc<Head>>,
    ) -> Result<Outcome, TransformError> {
        match self {
            Self::Template(t) => t.transform(head, body, request_head),
            Self::HeaderBody(h) => Ok(header_body(*h, head, body)),
        }
    }
}

#[derive(Debug)]
enum CompiledBody {
    Unchanged,
    Template(String),
    Passthrough,
    MergeExtractors,
    MergeJsonKeys(Vec<(String, bool, String)>),
}

#[derive(Debug)]
struct MetadataTemplate {
    namespace: String,
    key: String,
    template: String,
    json: bool,
}

/// A validated [`TransformationTemplate`].
#[derive(Debug)]
pub(crate) struct TemplateTransformer {
    engine: Engine,
    advanced: bool,
    extractors: Vec<(String, Extractor)>,
    headers: Vec<(Name, String)>,
    headers_to_append: Vec<(Name, String)>,
    headers_to_remove: Vec<HeaderName>,
    body: CompiledBody,
    parse_json: bool,
    ignore_error_on_parse: bool,
    dynamic_metadata: Vec<MetadataTemplate>,
    needs_body: bool,
}

impl TemplateTransformer {
    fn compile(t: &TransformationTemplate) -> Result<Self, ConfigError> {
        let mut engine = Engine::new(t.advanced_templates, t.escape_characters);
        let mut add = |field: String, source: &str| -> Result<String, ConfigError> {
            engine
                .add(&field, source)
                .map_err(|m| ConfigError::new(field.clone(), m))?;
            Ok(field)
        };

        let mut seen = HashMap::new();
        let mut extractors = Vec::with_capacity(t.extractors.len());
        for (name, e) in &t.extractors {
            let field = format!("extractors[{name:?}]");
            if seen.insert(name.as_str(), ()).is_some() {
                return Err(ConfigError::new(field, "duplicate extractor name"));
            }
            let compiled = Extractor::compile(e).map_err(|err| err.within(&field))?;
            extractors.push((name.clone(), compiled));
        }

        let mut headers = Vec::with_capacity(t.headers.len());
        for (name, template) in &t.headers {
            let field = format!("headers[{name:?}]");
            let parsed = Name::parse(name).map_err(|m| ConfigError::new(field.clone(), m))?;
            headers.push((parsed, add(format!("{field}.text"), template)?));
        }
        let mut headers_to_append = Vec::with_capacity(t.headers_to_append.len());
        for (i, (name, template)) in t.headers_to_append.iter().enumerate() {
            let field = format!("headers_to_append[{i}]");
            let parsed =
                Name::parse(name).map_err(|m| ConfigError::new(format!("{field}.key"), m))?;
            headers_to_append.push((parsed, add(format!("{field}.value.text"), template)?));
        }
        let mut headers_to_remove = Vec::with_capacity(t.headers_to_remove.len());
        for (i, name) in t.headers_to_remove.iter().enumerate() {
            let field = format!("headers_to_remove[{i}]");
            match Name::parse(name).map_err(|m| ConfigError::new(field.clone(), m))? {
                Name::Header(h) => headers_to_remove.push(h),
                Name::Pseudo(_) => {
                    return Err(ConfigError::new(field, "pseudo-headers cannot be removed"))
                }
            }
        }

        let body = match &t.body {
            BodyTransformation::Unchanged => CompiledBody::Unchanged,
            BodyTransformation::Passthrough => CompiledBody::Passthrough,
            BodyTransformation::MergeExtractorsToBody => CompiledBody::MergeExtractors,
            BodyTransformation::Body(template) => {
                CompiledBody::Template(add("body.text".to_owned(), template)?)
            }
            BodyTransformation::MergeJsonKeys(keys) => {
                if t.parse_body_behavior != RequestBodyParse::ParseAsJson {
                    return Err(ConfigError::new(
                        "merge_json_keys",
                        "requires parse_body_behavior ParseAsJson",
                    ));
                }
                if t.advanced_templates {
                    return Err(ConfigError::new(
                        "merge_json_keys",
                        "is not supported with advanced templates",
                    ));
                }
                let mut compiled = Vec::with_capacity(keys.len());
                for k in keys {
                    let field = format!("merge_json_keys.json_keys[{:?}]", k.key);
                    if k.key.contains('.') {
                        return Err(ConfigError::new(field, "key names must not contain '.'"));
                    }
                    let name = add(format!("{field}.tmpl.text"), &k.template)?;
                    compiled.push((k.key.clone(), k.override_empty, name));
                }
                CompiledBody::MergeJsonKeys(compiled)
            }
        };

        let mut dynamic_metadata = Vec::with_capacity(t.dynamic_metadata_values.len());
        for (i, m) in t.dynamic_metadata_values.iter().enumerate() {
            let field = format!("dynamic_metadata_values[{i}]");
            if m.key.is_empty() {
                return Err(ConfigError::new(
                    format!("{field}.key"),
                    "must not be empty",
                ));
            }
            dynamic_metadata.push(MetadataTemplate {
                namespace: m
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| FILTER_NAMESPACE.to_owned()),
                key: m.key.clone(),
                template: add(format!("{field}.value.text"), &m.template)?,
                json: m.json_to_proto,
            });
        }

        let parse_json = t.parse_body_behavior == RequestBodyParse::ParseAsJson;
        let passthrough = matches!(body, CompiledBody::Passthrough);
        let templates_read_body = headers
            .iter()
            .chain(&headers_to_append)
            .map(|(_, name)| name)
            .chain(dynamic_metadata.iter().map(|m| &m.template))
            .any(|name| engine.uses_body(name));
        let needs_body = !passthrough
            && (parse_json
                || templates_read_body
                || !matches!(body, CompiledBody::Unchanged)
                || extractors.iter().any(|(_, e)| e.reads_body()));

        Ok(Self {
            engine,
            advanced: t.advanced_templates,
            extractors,
            headers,
            headers_to_append,
            headers_to_remove,
            body,
            parse_json,
            ignore_error_on_parse: t.ignore_error_on_parse,
            dynamic_metadata,
            needs_body,
        })
    }

    fn transform(
        &self,
        head: &mut Head,
        body: &Bytes,
        request_head: Option<Arc<Head>>,
    ) -> Result<Outcome, TransformError> {
        let text: Arc<str> = String::from_utf8_lossy(body).into();
        let mut context = serde_json::Value::Null;
        if self.parse_json && !body.is_empty() {
            match serde_json::from_slice(body) {
                Ok(json) => context = json,
                Err(_) if self.ignore_error_on_parse => {}
                Err(e) => {
                    return Err(TransformError::new(format_args!(
                        "body is not valid JSON: {e}"
                    )))
                }
            }
        }

        let mut extractions = HashMap::new();
        for (name, extractor) in &self.extractors {
            let value = extractor.extract(head, &text);
            if self.advanced {
                extractions.insert(name.clone(), value);
            } else {
                merge_at_path(&mut context, name, value)?;
            }
        }

        // Render with the head moved into the render data, so that each header template sees
        // the changes of the ones before it, as in envoy-gloo.
        let placeholder = Head::response(StatusCode::OK, HeaderMap::new());
        let data = Arc::new(RenderData::new(
            std::mem::replace(head, placeholder),
            request_head,
            text,
            context,
            extractions,
        ));
        let result = self.render(&data);
        *head = std::mem::replace(
            &mut *data.head(),
            Head::response(StatusCode::OK, HeaderMap::new()),
        );
        result
    }

    fn render(&self, data: &Arc<RenderData>) -> Result<Outcome, TransformError> {
        let render = |name: &str| self.engine.render(name, data);
        let mut outcome = Outcome::default();

        // The new body is rendered first, but replaces the old one last: headers and metadata
        // see the original body.
        let new_body = match &self.body {
            CompiledBody::Template(name) => Some(render(name)?),
            CompiledBody::MergeExtractors => Some(data.context.to_string()),
            CompiledBody::MergeJsonKeys(keys) => {
                let mut json = data.context.clone();
                for (key, override_empty, name) in keys {
                    let rendered = render(name)?;
                    if rendered.is_empty() && !override_empty {
                        continue;
                    }
                    let value: serde_json::Value =
                        serde_json::from_str(&rendered).map_err(|e| {
                            TransformError::new(format_args!(
                                "{name} rendered {rendered:?}, which is not JSON: {e}"
                            ))
                        })?;
                    set_key(&mut json, key, value)?;
                }
                Some(json.to_string())
            }
            CompiledBody::Unchanged | CompiledBody::Passthrough => None,
        };

        for m in &self.dynamic_metadata {
            let rendered = render(&m.template)?;
            if rendered.is_empty() {
                continue;
            }
            let value = if m.json {
                let parsed = serde_json::from_str(&rendered).ok();
                parsed.unwrap_or(serde_json::Value::String(rendered))
            } else {
                serde_json::Value::String(rendered)
            };
            outcome.metadata.set(&m.namespace, &m.key, value);
        }

        for (header, name) in &self.headers {
            let rendered = render(name)?;
            data.head().set(header, &rendered)?;
        }
        for header in &self.headers_to_remove {
            data.head().remove(header);
        }
        for (header, name) in &self.headers_to_append {
            let rendered = render(name)?;
            data.head().append(header, &rendered)?;
        }

        outcome.body = new_body.map(Bytes::from);
        Ok(outcome)
    }
}

/// Sets `name` (dots nest) in the JSON context, as envoy-gloo's extractors do without advanced
/// templates: objects are created on the way; a value that is neither an object nor null on
/// the way is an error (nlohmann's `operator[]` throws).
fn merge_at_path(
    context: &mut serde_json::Value,
    name: &str,
    value: String,
) -> Result<(), TransformError> {
    let mut current = context;
    let mut parts = name.split('.').peekable();
    while let Some(part) = parts.next() {
        if current.is_null() {
            *current = serde_json::Value::Object(serde_json::Map::new());
        }
        let serde_json::Value::Object(map) = current else {
            return Err(TransformError::new(format_args!(
                "cannot set extraction {name:?}: the JSON body is not an object there"
            )));
        };
        if parts.peek().is_none() {
            map.insert(part.to_owned(), serde_json::Value::String(value));
            return Ok(());
        }
        current = map
            .entry(part.to_owned())
            .or_insert(serde_json::Value::Null);
    }
    Ok(())
}

fn set_key(
    json: &mut serde_json::Value,
    key: &str,
    value: serde_json::Value,
) -> Result<(), TransformError> {
    if json.is_null() {
        *json = serde_json::Value::Object(serde_json::Map::new());
    }
    match json {
        serde_json::Value::Object(map) => {
            map.insert(key.to_owned(), value);
            Ok(())
        }
        _ => Err(TransformError::new(format_args!(
            "cannot merge key {key:?}: the JSON body is not an object"
        ))),
    }
}

/// envoy-gloo's `BodyHeaderTransformer`.
fn header_body(h: HeaderBodyTransform, head: &mut Head, body: &Bytes) -> Outcome {
    let mut json = serde_json::Map::new();
    if !body.is_empty() {
        json.insert(
            "body".to_owned(),
            String::from_utf8_lossy(body).into_owned().into(),
        );
    }
    let mut headers = BTreeMap::<String, String>::new();
    let mut multi = BTreeMap::<String, Vec<String>>::new();
    for (name, value) in head.entries() {
        if let Some(previous) = headers.insert(name.clone(), value.clone()) {
            if h.add_request_metadata && !previous.is_empty() {
                let values = multi.entry(name).or_default();
                if values.is_empty() {
                    values.push(previous);
                }
                values.push(value);
            }
        }
    }
    json.insert("headers".to_owned(), to_json(&headers));
    if let (true, Kind::Request { method, uri }) = (h.add_request_metadata, &head.kind) {
        json.insert("multiValueHeaders".to_owned(), to_json(&multi));
        let query = uri.query().unwrap_or("");
        json.insert("queryString".to_owned(), query.into());
        json.insert("httpMethod".to_owned(), method.as_str().into());
        json.insert("path".to_owned(), uri.path().into());
        let mut params = BTreeMap::<String, String>::new();
        let mut multi_params = BTreeMap::<String, Vec<String>>::new();
        for (name, value) in parse_query(query) {
            match params.get(&name) {
                Some(existing) if !existing.is_empty() => {
                    let values = multi_params.entry(name.clone()).or_default();
                    if values.is_empty() {
                        values.push(existing.clone());
                    }
                    values.push(value.clone());
                }
                _ => {}
            }
            params.insert(name, value);
        }
        json.insert("queryStringParameters".to_owned(), to_json(&params));
        json.insert(
            "multiValueQueryStringParameters".to_owned(),
            to_json(&multi_params),
        );
    }
    head.headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Outcome {
        body: Some(Bytes::from(serde_json::Value::Object(json).to_string())),
        metadata: DynamicMetadata::default(),
    }
}

fn to_json<V: Clone + Into<serde_json::Value>>(map: &BTreeMap<String, V>) -> serde_json::Value {
    serde_json::Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect(),
    )
}

/// envoy-gloo's `parse_parameters`: `&`-separated, `=` splits name and value, both
/// percent-decoded (`+` stays `+`); a parameter without `=` has an empty value and is not
/// decoded.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

/// Envoy's `PercentEncoding::decode`: `%XX` becomes the byte, anything else is kept.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        assert_eq!(
            parse_query("a=1&b=x%20y&a=2&flag&c=1+2"),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "x y".to_owned()),
                ("a".to_owned(), "2".to_owned()),
                ("flag".to_owned(), String::new()),
                ("c".to_owned(), "1+2".to_owned()),
            ]
        );
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn extractions_nest_on_dots() {
        let mut ctx = serde_json::json!({"a": 1});
        merge_at_path(&mut ctx, "host.name", "h".into()).unwrap();
        merge_at_path(&mut ctx, "path", "/p".into()).unwrap();
        assert_eq!(
            ctx,
            serde_json::json!({"a": 1, "host": {"name": "h"}, "path": "/p"})
        );
        let mut array = serde_json::json!([1]);
        assert!(merge_at_path(&mut array, "x", "y".into()).is_err());
    }
}

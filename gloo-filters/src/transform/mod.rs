//! Gloo's request and response transformations (`options.transformations` /
//! `options.stagedTransformations`) as a tower middleware: solo-io/envoy-gloo's
//! `io.solo.transformation` filter, with Inja-compatible templates rendered by minijinja.
//! Enabled by the `transform` cargo feature.
//!
//! The config types ([`Transformations`], [`RequestMatch`], [`ResponseMatch`],
//! [`TransformationTemplate`], [`Extraction`], [`HeaderBodyTransform`], ...) map 1:1 onto
//! envoy-gloo's `transformation_filter.proto`. [`TransformationLayer::new`] compiles them and
//! rejects what envoy-gloo or Gloo rejects (bad regexes, template syntax errors, a subgroup
//! beyond the regex's groups, invalid header names, replacement text in the wrong mode), with a
//! [`ConfigError`] naming the field:
//! `request_transforms[0].request_transformation.transformation_template.headers["x-foo"].text:
//! template error at line 1: syntax error: unexpected end of input, expected expression`.
//!
//! # Which transformation runs
//!
//! A request gets the request transformation of the first [`RequestMatch`] whose
//! [`RouteMatch`] matches (rules transforming nothing are skipped). Its response gets that
//! rule's response transformation; only if the rule has none (or no rule matched) are the
//! [`ResponseMatch`]es tried, first match wins, on the response headers (`:status` included)
//! and the [`ResponseCodeDetails`] extension.
//!
//! # What a template transformation does, in order (envoy-gloo's `InjaTransformer::transform`)
//!
//! 1. Unless `DontParse`, a non-empty body is parsed as JSON; its fields are the template
//!    context (`{{ user.name }}`). A body that is not JSON answers `400` unless
//!    `ignore_error_on_parse`. A context that is not an object (an array body) renders with no
//!    variables; `context()` still returns it.
//! 2. Extractors run in order. Without advanced templates each value is set in the context
//!    under its name (dots nest: `host.name`); with them it is read with `extraction("name")`
//!    (which is always empty without advanced templates, as in envoy-gloo).
//! 3. The body template (or `merge_extractors_to_body` / `merge_json_keys`) is rendered.
//! 4. `dynamic_metadata_values` render into the [`DynamicMetadata`] extension (skipped when
//!    empty).
//! 5. `headers` render in order, each replacing the header's values (an empty result removes
//!    it); later templates see earlier results. Then `headers_to_remove`, then
//!    `headers_to_append` (empty results skipped). `:path`, `:method`, `:authority`,
//!    `:scheme` and `:status` can be set like headers.
//! 6. The new body replaces the old one and `content-length` is set to its length. If the body
//!    ends up empty and the transformation is not `passthrough`, `content-type` is removed.
//!
//! A [`HeaderBodyTransform`] replaces the body with `{"headers": {...}, "body": "..."}` (plus
//! the AWS API Gateway fields with `add_request_metadata`) and sets
//! `content-type: application/json`.
//!
//! # Buffering
//!
//! The body is buffered only when the transformation needs it: a body template,
//! `merge_extractors_to_body` / `merge_json_keys`, a body extractor, JSON parsing
//! (`ParseAsJson`, the default), a template calling `body()`, or a [`HeaderBodyTransform`].
//! Otherwise (`passthrough`, or `DontParse` with templates that read only headers) the headers
//! are transformed at once and the body streams through untouched ([`TransformBody`] is
//! then the original body). envoy-gloo buffers every non-passthrough body; the result is the
//! same, except that such bodies are no longer subject to the buffer limit.
//!
//! Buffering stops at [`max_body_bytes`](TransformationLayer::max_body_bytes) (default 1 MiB,
//! Envoy's connection buffer limit): a larger request is answered `413` with the body
//! `payload too large`; a larger response becomes `413 payload too large`, keeping its other
//! headers, as envoy-gloo's `responseError` does.
//!
//! # Errors at request time
//!
//! Nothing panics. A request whose transformation fails (body not JSON, a template error such
//! as an undefined variable, an invalid header value) is answered `400` with the body
//! `bad request: <what failed>`, `content-type: text/plain` and the [`TransformationFailed`]
//! marker, without calling the inner service. A failed response transformation turns the
//! response into `400 bad request: <what failed>`. A request body that fails while it is
//! buffered is answered `400`; a response body that fails is returned as a failing body.
//!
//! # Template language
//!
//! Gloo's templates are Inja 3.4 (solo-io's fork). They are rewritten to minijinja
//! (see below) and rendered with strict undefined handling: like Inja, using a variable that
//! does not exist is an error. Output follows Inja's `print_data`: strings as they are (JSON
//! escaped without quotes with `escape_characters`), numbers, nothing for `null`, JSON for
//! arrays, objects and booleans.
//!
//! Inja syntax that works: `{{ expr }}`, `{% if %}` / `{% else if %}` / `{% else %}`,
//! `{% for x in xs %}` with `loop.index` (0-based), `loop.index1`, `loop.is_first`,
//! `loop.is_last`, `{% for k, v in obj %}`, `{% set x = ... %}`, `{# comments #}`,
//! `{% raw %}`, whitespace control (`{{-`, `-%}`), identifiers with dashes
//! (`{{ my-extractor }}`), JSON pointers with advanced templates (`{{ time/start }}`), and
//! Jinja filters besides (`{{ name | upper }}`).
//!
//! Functions, named as in Gloo's docs:
//!
//! | function | result |
//! |---|---|
//! | `header(name)` | first value of a header of the message being transformed, `""` if absent |
//! | `request_header(name)` | the same of the request (in a response transformation: the request as transformed) |
//! | `extraction(name)` | an extraction (advanced templates only) |
//! | `body()` | the body as text |
//! | `context()` | the whole JSON context (e.g. to loop over an array body) |
//! | `env(name)` | an environment variable as it was when the layer was built, `""` if unset |
//! | `base64_encode(s)`, `base64_decode(s)` | standard base64 (decoding invalid input gives `""`) |
//! | `base64url_encode(s)`, `base64url_decode(s)` | URL-safe base64 without padding |
//! | `substring(s, start[, len])` | bytes `start..start+len`; `""` if `start` is outside `s`; to the end if `len` ≤ 0 or too long |
//! | `replace_with_random(s, pattern)` | `s` with every `pattern` replaced by a random 22-character string (128 bits, base64), drawn once per pattern and transformation template and kept for the layer's lifetime, as envoy-gloo keeps it per transformer |
//! | `raw_string(s)` | `s` JSON-escaped without the quotes, to embed in JSON |
//! | `trim(s)`, `word_count(v)` | envoy-gloo's extras |
//!
//! and Inja's: `at`, `default`, `divisibleBy`, `even`, `odd`, `exists("a.b")`,
//! `existsIn(obj, "k")`, `first`, `last`, `float`, `int`, `isArray`, `isBoolean`, `isFloat`,
//! `isInteger`, `isNumber`, `isObject`, `isString`, `length`, `lower`, `upper`, `max`, `min`,
//! `range`, `round`, `sort`, `join`.
//!
//! Not supported: envoy-gloo's metadata functions (`cluster_metadata`, `dynamic_metadata`,
//! `host_metadata`) and `data_source`, Inja's `loop.parent`, `include`/`extends`. A call of an
//! unknown function is an error when rendering, not when compiling.
//!
//! Proto fields not modelled: `data_sources` / `data_source_max_size`, `string_delimiter` (for
//! the metadata functions), `span_transformer` (no tracing span here),
//! `log_request_response_info`, `on_stream_completion_transformation`, the `transformer_config`
//! and `ai_transformation` transformation types, and the filter-level `stage`, xDS `matcher`
//! tree and `auto_websocket_passthrough` (one layer is one stage; stack layers for several).
//!
//! # Extensions
//!
//! The transformed request carries [`DynamicMetadata`] and, for rules with
//! `clear_route_cache`, [`ClearRouteCache`]; answers of the layer carry
//! [`TransformationFailed`].
//!
//! # Example
//!
//! The extract-query-parameters example of Gloo's docs
//! (`guides/traffic_management/request_processing/transformations/extract_query_params`) plus
//! a JSON body template:
//!
//! ```
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use gloo_filters::transform::{
//!     Extraction, RequestMatch, TransformBody, TransformationLayer, TransformationTemplate,
//!     Transformations,
//! };
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let template = TransformationTemplate::new()
//!     .extractor("foo", Extraction::header(":path", "(.*foo=([^&]*).*)").subgroup(2))
//!     .header("foo", "{{ foo }}")
//!     .header("x-user", "{{ upper(user.name) }}")
//!     .body("{\"greeting\": \"hello {{ user.name }}\"}");
//! let layer = TransformationLayer::new(
//!     Transformations::new().request_transform(RequestMatch::new().request_transformation(template)),
//! )?;
//!
//! // The upstream echoes the headers it got and the body.
//! let svc = layer.layer(service_fn(|req: Request<TransformBody<Full<Bytes>>>| async move {
//!     let foo = req.headers()["foo"].clone();
//!     let user = req.headers()["x-user"].clone();
//!     let body = req.into_body().collect().await?.to_bytes();
//!     let mut response = Response::new(Full::new(body));
//!     response.headers_mut().insert("foo", foo);
//!     response.headers_mut().insert("x-user", user);
//!     Ok::<_, Infallible>(response)
//! }));
//!
//! let request = Request::post("/get?foo=bar&x=1")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from_static(br#"{"user": {"name": "ada"}}"#)))?;
//! let response = svc.oneshot(request).await?;
//! assert_eq!(response.headers()["foo"], "bar");
//! assert_eq!(response.headers()["x-user"], "ADA");
//! let body = response.into_body().collect().await?.to_bytes();
//! assert_eq!(body, r#"{"greeting": "hello ada"}"#);
//! # Ok(())
//! # }
//! ```

mod body;
mod config;
mod error;
mod extraction;
mod future;
mod head;
mod inja;
mod layer;
mod matcher;
mod metadata;
mod service;
mod template;
mod transformer;

pub use self::body::TransformBody;
pub use self::config::{
    BodyTransformation, DynamicMetadataValue, Extraction, ExtractionMode, HeaderBodyTransform,
    HeaderMatcher, MergeJsonKey, RequestBodyParse, RequestMatch, ResponseMatch, ResponseMatcher,
    RouteMatch, StringMatcher, Transformation, TransformationTemplate, Transformations,
};
pub use self::error::ConfigError;
pub use self::future::ResponseFuture;
pub use self::layer::TransformationLayer;
pub use self::metadata::{
    ClearRouteCache, DynamicMetadata, ResponseCodeDetails, TransformationFailed,
};
pub use self::service::Transform;
// The layer's steps, run by the ext_proc server without a tower service.
#[cfg(feature = "extproc-transform")]
pub(crate) use self::layer::ResponseChoice;
#[cfg(feature = "extproc-transform")]
pub(crate) use self::service::{response_error, Ctx, ReqBody, ResponseStep, PAYLOAD_TOO_LARGE};

#[cfg(test)]
mod tests;

//! The template engine of one [`TransformationTemplate`](super::TransformationTemplate):
//! minijinja set up to render Inja the way envoy-gloo's `TransformerInstance` does.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use minijinja::value::{Object, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};

use super::error::TransformError;
use super::head::Head;
use super::inja;

/// The variable under which the per-render data hides in the root context.
const DATA: &str = "__gloo_transform";

/// What one render (one request or response transformation) sees.
#[derive(Debug)]
pub(crate) struct RenderData {
    /// The head being transformed; header templates see the changes of earlier ones.
    pub(crate) head: Mutex<Head>,
    /// The request head, for `request_header()` in response transformations.
    pub(crate) request_head: Option<Arc<Head>>,
    /// `body()`.
    pub(crate) body: Arc<str>,
    /// The JSON context: the parsed body, plus the extractions unless advanced templates.
    pub(crate) context: serde_json::Value,
    /// The extractions, for `extraction()` (advanced templates only, as in envoy-gloo).
    pub(crate) extractions: HashMap<String, String>,
    /// Top-level context fields already converted to template values (`None`: `context()`),
    /// so that a loop reading a large field converts it once.
    converted: Mutex<HashMap<Option<String>, Value>>,
}

impl RenderData {
    pub(crate) fn new(
        head: Head,
        request_head: Option<Arc<Head>>,
        body: Arc<str>,
        context: serde_json::Value,
        extractions: HashMap<String, String>,
    ) -> Self {
        Self {
            head: Mutex::new(head),
            request_head,
            body,
            context,
            extractions,
            converted: Mutex::default(),
        }
    }

    pub(crate) fn head(&self) -> MutexGuard<'_, Head> {
        // A render never panics while holding the lock; recover the data if one did.
        self.head.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A top-level field of the context (`Some(key)`), or all of it (`None`), as a value.
    fn context_value(&self, key: Option<&str>) -> Option<Value> {
        let mut converted = self.converted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = converted.get(&key.map(str::to_owned)) {
            return Some(value.clone());
        }
        let json = match (key, &self.context) {
            (None, json) => json,
            (Some(key), serde_json::Value::Object(map)) => map.get(key)?,
            (Some(_), _) => return None,
        };
        let value = json_to_value(json);
        converted.insert(key.map(str::to_owned), value.clone());
        Some(value)
    }
}

/// The root context: the JSON body's fields, plus the render data for the functions.
#[derive(Debug)]
struct Root(Arc<RenderData>);

impl Object for Root {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        if key == DATA {
            return Some(Value::from_dyn_object(self.0.clone()));
        }
        self.0.context_value(Some(key))
    }
}

impl Object for RenderData {}

fn data(state: &State<'_, '_>) -> Result<Arc<RenderData>, Error> {
    state
        .lookup(DATA)
        .and_then(|v| v.downcast_object::<RenderData>())
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "no request to transform"))
}

/// Config-time state shared by the functions of one engine.
#[derive(Debug, Default)]
struct Shared {
    /// `env()`: the process environment when the transformation was built.
    environ: HashMap<String, String>,
    /// `replace_with_random()`: one random string per pattern for the engine's lifetime.
    randoms: Mutex<HashMap<String, String>>,
}

/// The compiled templates of one transformation template.
pub(crate) struct Engine {
    env: Environment<'static>,
    pointer: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("templates", &self.env.templates().count())
            .field("pointer", &self.pointer)
            .finish()
    }
}

impl Engine {
    /// `pointer`: advanced templates (JSON pointer notation); `escape`: escape_characters.
    pub(crate) fn new(pointer: bool, escape: bool) -> Self {
        // `new`, not `empty`: Jinja's filters and tests (`| upper`, `| items`) are wanted.
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Error messages stay one line; the span still names the failing expression.
        env.set_debug(false);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_formatter(move |out, _state, value| {
            out.write_str(&print(value, escape)?)
                .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
        });
        let shared = Arc::new(Shared {
            environ: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            randoms: Mutex::default(),
        });
        register_builtins(&mut env, pointer);
        register_gloo(&mut env, shared);
        Self { env, pointer }
    }

    /// Compiles a template under `name` (its field path). The error says where, e.g.
    /// `template error at line 1: unexpected end of input`.
    pub(crate) fn add(&mut self, name: &str, source: &str) -> Result<(), String> {
        let rewritten = inja::rewrite(source);
        self.env
            .add_template_owned(name.to_owned(), rewritten)
            .map_err(|e| describe("template error", &e, None))
    }

    /// Whether template `name` calls `body()` (function names count as undeclared variables).
    pub(crate) fn uses_body(&self, name: &str) -> bool {
        self.env
            .get_template(name)
            .is_ok_and(|t| t.undeclared_variables(false).contains("__body"))
    }

    /// Renders template `name`; the error names it.
    pub(crate) fn render(
        &self,
        name: &str,
        data: &Arc<RenderData>,
    ) -> Result<String, TransformError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| TransformError::new(format_args!("{name}: {e}")))?;
        template
            .render(Value::from_object(Root(data.clone())))
            .map_err(|e| {
                TransformError::new(format_args!(
                    "{name}: {}",
                    describe("render error", &e, Some(template.source()))
                ))
            })
    }
}

/// `"{what} at line N: detail"`, naming the undefined expression when there is one.
fn describe(what: &str, e: &Error, source: Option<&str>) -> String {
    let mut msg = String::from(what);
    if let Some(line) = e.line() {
        let _ = write!(msg, " at line {line}");
    }
    let _ = write!(msg, ": {}", e.kind());
    if let Some(detail) = e.detail() {
        let _ = write!(msg, ": {detail}");
    }
    if e.kind() == ErrorKind::UndefinedError && e.detail().is_none() {
        if let Some(snippet) = e
            .range()
            .and_then(|r| source.and_then(|s| s.get(r)))
            .filter(|s| !s.is_empty())
        {
            let _ = write!(msg, " ({snippet})");
        }
    }
    msg
}

/// Inja's `print_data`: strings as they are (JSON-escaped without quotes with
/// escape_characters), integers, nothing for null, JSON for everything else.
fn print(value: &Value, escape: bool) -> Result<String, Error> {
    match value.kind() {
        ValueKind::Undefined => Err(Error::from(ErrorKind::UndefinedError)),
        ValueKind::None => Ok(String::new()),
        ValueKind::String if escape => Ok(escape_json(value.as_str().unwrap_or_default())),
        ValueKind::String => Ok(value.as_str().unwrap_or_default().to_owned()),
        _ => Ok(value_to_json(value)?.to_string()),
    }
}

/// A string JSON-escaped, without the surrounding quotes (nlohmann `dump()` minus quotes).
pub(crate) fn escape_json(s: &str) -> String {
    let quoted = serde_json::Value::from(s).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .map_or(quoted.clone(), str::to_owned)
}

/// A JSON value as a template value (maps sorted by key, like nlohmann's `std::map`).
pub(crate) fn json_to_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(json_to_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// A template value as JSON.
pub(crate) fn value_to_json(value: &Value) -> Result<serde_json::Value, Error> {
    Ok(match value.kind() {
        ValueKind::Undefined => return Err(Error::from(ErrorKind::UndefinedError)),
        ValueKind::None => serde_json::Value::Null,
        ValueKind::Bool => serde_json::Value::Bool(value.is_true()),
        ValueKind::Number => {
            if let Some(i) = value.as_i64() {
                serde_json::Value::from(i)
            } else if let Ok(u) = u64::try_from(value.clone()) {
                serde_json::Value::from(u)
            } else {
                let f = f64::try_from(value.clone()).unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)
            }
        }
        ValueKind::String => serde_json::Value::from(value.as_str().unwrap_or_default()),
        ValueKind::Bytes => serde_json::Value::from(String::from_utf8_lossy(
            value.as_bytes().unwrap_or_default(),
        )),
        ValueKind::Map => {
            let mut map = serde_json::Map::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                let key = key.as_str().map_or_else(|| key.to_string(), str::to_owned);
                map.insert(key, value_to_json(&item)?);
            }
            serde_json::Value::Object(map)
        }
        ValueKind::Seq | ValueKind::Iterable => serde_json::Value::Array(
            value
                .try_iter()?
                .map(|v| value_to_json(&v))
                .collect::<Result<_, _>>()?,
        ),
        _ => serde_json::Value::from(value.to_string()),
    })
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn string_arg<'a>(value: &'a Value, function: &str) -> Result<&'a str, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    value.as_str().ok_or_else(|| {
        invalid(format!(
            "{function}: argument must be a string, got {}",
            value.kind()
        ))
    })
}

/// The path segments of an Inja identifier: dots and slashes (dot notation) or slashes
/// (pointer notation) separate them; `~1` / `~0` are JSON pointer escapes.
fn segments(name: &str, pointer: bool) -> Vec<String> {
    let parts: Vec<&str> = if pointer {
        name.trim_start_matches('/').split('/').collect()
    } else {
        name.split(['.', '/']).collect()
    };
    parts
        .into_iter()
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn child(value: &Value, segment: &str) -> Option<Value> {
    let item = match value.kind() {
        ValueKind::Seq => segment
            .parse::<usize>()
            .ok()
            .and_then(|i| value.get_item_by_index(i).ok()),
        _ => value.get_item(&Value::from(segment)).ok(),
    };
    item.filter(|v| !v.is_undefined())
}

/// Inja's data lookup of `name`, or `None` when it does not exist.
fn lookup(state: &State<'_, '_>, name: &str, pointer: bool) -> Option<Value> {
    let segments = segments(name, pointer);
    let (first, rest) = segments.split_first()?;
    let mut value = state.lookup(first).filter(|v| !v.is_undefined())?;
    for segment in rest {
        value = child(&value, segment)?;
    }
    Some(value)
}

fn register_builtins(env: &mut Environment<'static>, pointer: bool) {
    env.add_function("__var", move |state: &State<'_, '_>, name: &str| {
        lookup(state, name, pointer).ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedError,
                format!("variable '{name}' not found"),
            )
        })
    });
    env.add_function("__opt", move |state: &State<'_, '_>, name: &str| {
        lookup(state, name, pointer).unwrap_or(Value::UNDEFINED)
    });
    env.add_function("__exists", move |state: &State<'_, '_>, name: &str| {
        lookup(state, name, pointer).is_some()
    });
    env.add_function("__existsIn", move |obj: Value, name: &str| {
        let segments = segments(name, pointer);
        let mut value = Some(obj);
        for segment in &segments {
            value = value.and_then(|v| child(&v, segment));
        }
        value.is_some()
    });
    env.add_function("__at", |obj: Value, key: Value| -> Result<Value, Error> {
        let item = match (obj.kind(), key.as_i64()) {
            (ValueKind::Seq, Some(i)) => usize::try_from(i)
                .ok()
                .and_then(|i| obj.get_item_by_index(i).ok()),
            _ => obj.get_item(&key).ok(),
        };
        item.filter(|v| !v.is_undefined())
            .ok_or_else(|| invalid(format!("at: no element {key}")))
    });
    env.add_function("__default", |value: Value, fallback: Value| {
        if value.is_undefined() {
            fallback
        } else {
            value
        }
    });
    env.add_function("__divisibleBy", |a: i64, b: i64| {
        a.checked_rem(b) == Some(0)
    });
    env.add_function("__even", |a: i64| a % 2 == 0);
    env.add_function("__odd", |a: i64| a % 2 != 0);
    env.add_function("__first", |list: Value| -> Result<Value, Error> {
        list.try_iter()?
            .next()
            .ok_or_else(|| invalid("first: empty list"))
    });
    env.add_function("__last", |list: Value| -> Result<Value, Error> {
        list.try_iter()?
            .last()
            .ok_or_else(|| invalid("last: empty list"))
    });
    env.add_function("__float", |v: Value| -> Result<Value, Error> {
        let f = match v.as_str() {
            Some(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|e| invalid(format!("float: {s:?}: {e}")))?,
            None => f64::try_from(v)?,
        };
        Ok(Value::from(f))
    });
    env.add_function("__int", |v: Value| -> Result<Value, Error> {
        let i = match v.as_str() {
            Some(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|e| invalid(format!("int: {s:?}: {e}")))?,
            None => i64::try_from(v)?,
        };
        Ok(Value::from(i))
    });
    env.add_function("__isArray", |v: Value| v.kind() == ValueKind::Seq);
    env.add_function("__isBoolean", |v: Value| v.kind() == ValueKind::Bool);
    env.add_function("__isFloat", |v: Value| {
        v.kind() == ValueKind::Number && !v.is_integer()
    });
    env.add_function("__isInteger", |v: Value| v.is_integer());
    env.add_function("__isNumber", |v: Value| v.kind() == ValueKind::Number);
    env.add_function("__isObject", |v: Value| v.kind() == ValueKind::Map);
    env.add_function("__isString", |v: Value| v.kind() == ValueKind::String);
    env.add_function("__length", |v: Value| -> Result<usize, Error> {
        match v.as_str() {
            // nlohmann's `std::string::length()`: bytes.
            Some(s) => Ok(s.len()),
            None => v
                .len()
                .ok_or_else(|| invalid(format!("length: {} has no length", v.kind()))),
        }
    });
    env.add_function("__lower", |s: Value| -> Result<String, Error> {
        Ok(string_arg(&s, "lower")?.to_lowercase())
    });
    env.add_function("__upper", |s: Value| -> Result<String, Error> {
        Ok(string_arg(&s, "upper")?.to_uppercase())
    });
    env.add_function("__max", |list: Value| -> Result<Value, Error> {
        extreme(&list, std::cmp::Ordering::Greater)
    });
    env.add_function("__min", |list: Value| -> Result<Value, Error> {
        extreme(&list, std::cmp::Ordering::Less)
    });
    // The count may come from the request: bounded like minijinja's own `range`.
    env.add_function("__range", |n: i64| -> Result<Vec<i64>, Error> {
        if n > MAX_RANGE {
            return Err(invalid(format!(
                "range: {n} is more than {MAX_RANGE} items"
            )));
        }
        Ok((0..n.max(0)).collect())
    });
    env.add_function("__round", |v: f64, precision: i32| -> Value {
        let factor = 10f64.powi(precision);
        let rounded = (v * factor).round() / factor;
        if precision == 0 {
            // Inja returns an integer when rounding to 0 places.
            Value::from(rounded as i64)
        } else {
            Value::from(rounded)
        }
    });
    env.add_function("__sort", |list: Value| -> Result<Value, Error> {
        let mut items: Vec<Value> = list.try_iter()?.collect();
        items.sort();
        Ok(Value::from(items))
    });
    env.add_function(
        "__join",
        |list: Value, sep: &str| -> Result<String, Error> {
            let mut out = String::new();
            for (i, item) in list.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                match item.as_str() {
                    Some(s) => out.push_str(s),
                    None => out.push_str(&value_to_json(&item)?.to_string()),
                }
            }
            Ok(out)
        },
    );
}

/// The most items `range(n)` makes.
const MAX_RANGE: i64 = 100_000;

fn extreme(list: &Value, want: std::cmp::Ordering) -> Result<Value, Error> {
    let mut best: Option<Value> = None;
    for item in list.try_iter()? {
        best = match best {
            Some(b) if item.cmp(&b) != want => Some(b),
            _ => Some(item),
        };
    }
    best.ok_or_else(|| invalid("empty list"))
}

fn register_gloo(env: &mut Environment<'static>, shared: Arc<Shared>) {
    // header(name): the first value of a header of the message being transformed, or "".
    env.add_function(
        "__header",
        |state: &State<'_, '_>, name: Value| -> Result<String, Error> {
            let name = string_arg(&name, "header")?;
            Ok(data(state)?.head().get_str(name).unwrap_or_default())
        },
    );
    // request_header(name): the same of the request (in a request transformation: the
    // request being transformed).
    env.add_function(
        "__request_header",
        |state: &State<'_, '_>, name: Value| -> Result<String, Error> {
            let name = string_arg(&name, "request_header")?;
            let data = data(state)?;
            Ok(match &data.request_head {
                Some(head) => head.get_str(name),
                None if data.head().is_request() => data.head().get_str(name),
                None => None,
            }
            .unwrap_or_default())
        },
    );
    // extraction(name): filled with advanced templates only, as in envoy-gloo.
    env.add_function(
        "__extraction",
        |state: &State<'_, '_>, name: Value| -> Result<String, Error> {
            let name = string_arg(&name, "extraction")?;
            Ok(data(state)?
                .extractions
                .get(name)
                .cloned()
                .unwrap_or_default())
        },
    );
    env.add_function("__trim", |s: Value| -> Result<String, Error> {
        Ok(string_arg(&s, "trim")?
            .trim_matches(|c: char| c.is_ascii_whitespace())
            .to_owned())
    });
    env.add_function(
        "__context",
        |state: &State<'_, '_>| -> Result<Value, Error> {
            Ok(data(state)?.context_value(None).unwrap_or_default())
        },
    );
    env.add_function("__body", |state: &State<'_, '_>| -> Result<Value, Error> {
        Ok(Value::from(data(state)?.body.clone()))
    });
    let env_shared = shared.clone();
    env.add_function("__env", move |name: Value| -> Result<String, Error> {
        let name = string_arg(&name, "env")?;
        Ok(env_shared.environ.get(name).cloned().unwrap_or_default())
    });
    env.add_function("__base64_encode", |s: Value| -> Result<String, Error> {
        Ok(base64::engine::general_purpose::STANDARD.encode(string_arg(&s, "base64_encode")?))
    });
    env.add_function("__base64url_encode", |s: Value| -> Result<String, Error> {
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(string_arg(&s, "base64url_encode")?))
    });
    // Envoy's Base64::decode gives "" for input that is not base64.
    env.add_function("__base64_decode", |s: Value| -> Result<String, Error> {
        let input = string_arg(&s, "base64_decode")?;
        Ok(base64::engine::general_purpose::STANDARD
            .decode(input)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    });
    env.add_function("__base64url_decode", |s: Value| -> Result<String, Error> {
        let input = string_arg(&s, "base64url_decode")?;
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        Ok(engine
            .decode(input)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    });
    env.add_function("__substring", substring);
    env.add_function(
        "__replace_with_random",
        move |s: Value, pattern: Value| -> Result<String, Error> {
            let s = string_arg(&s, "replace_with_random")?;
            let pattern = string_arg(&pattern, "replace_with_random")?;
            if pattern.is_empty() {
                return Ok(s.to_owned());
            }
            let mut randoms = shared.randoms.lock().unwrap_or_else(|e| e.into_inner());
            let random = randoms
                .entry(pattern.to_owned())
                .or_insert_with(random_string);
            Ok(s.replace(pattern, random))
        },
    );
    env.add_function("__raw_string", |v: Value| -> Result<String, Error> {
        Ok(escape_json(string_arg(&v, "raw_string")?))
    });
    env.add_function("__word_count", |v: Value| -> Result<i64, Error> {
        Ok(json_word_count(&value_to_json(&v)?))
    });
}

/// envoy-gloo's `substring(s, start[, len])`: "" for a start outside the string or a
/// non-integer argument; the rest of the string for a length ≤ 0 or past the end. Positions are
/// bytes; a cut inside a UTF-8 character is widened to the character boundary.
fn substring(s: Value, start: Value, len: Option<Value>) -> Result<String, Error> {
    let s = string_arg(&s, "substring")?;
    let Some(start) = start.is_integer().then(|| start.as_i64()).flatten() else {
        return Ok(String::new());
    };
    let len = match len {
        None => -1,
        Some(l) => match l.is_integer().then(|| l.as_i64()).flatten() {
            Some(l) => l,
            None => return Ok(String::new()),
        },
    };
    let total = i64::try_from(s.len()).unwrap_or(i64::MAX);
    if start < 0 || start >= total {
        return Ok(String::new());
    }
    let end = if len <= 0 || start.saturating_add(len) > total {
        total
    } else {
        start + len
    };
    let (start, end) = (
        usize::try_from(start).unwrap_or(0),
        usize::try_from(end).unwrap_or(s.len()),
    );
    let floor = |mut i: usize| {
        while i > 0 && !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let ceil = |mut i: usize| {
        while i < s.len() && !s.is_char_boundary(i) {
            i += 1;
        }
        i
    };
    Ok(s.get(floor(start)..ceil(end))
        .unwrap_or_default()
        .to_owned())
}

/// 128 random bits, base64 without padding (envoy-gloo's `random_for_pattern`).
fn random_string() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&fastrand::u64(..).to_le_bytes());
    bytes[8..].copy_from_slice(&fastrand::u64(..).to_le_bytes());
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// envoy-gloo's `word_count`: words of strings, keys and values of objects, elements of
/// arrays; numbers and booleans count 1.
fn json_word_count(v: &serde_json::Value) -> i64 {
    match v {
        serde_json::Value::String(s) => word_count(s),
        serde_json::Value::Array(items) => items.iter().map(json_word_count).sum(),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| word_count(k) + json_word_count(v))
            .sum(),
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => 1,
        serde_json::Value::Null => 0,
    }
}

fn word_count(s: &str) -> i64 {
    i64::try_from(s.split_ascii_whitespace().count()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_bounds() {
        let s = || Value::from("hello world");
        let sub = |start: i64, len: Option<i64>| {
            substring(s(), Value::from(start), len.map(Value::from)).unwrap_or_default()
        };
        assert_eq!(sub(0, Some(5)), "hello");
        assert_eq!(sub(6, None), "world");
        assert_eq!(sub(6, Some(0)), "world");
        assert_eq!(sub(6, Some(100)), "world");
        assert_eq!(sub(-1, Some(2)), "");
        assert_eq!(sub(11, None), "");
        assert_eq!(
            substring(s(), Value::from("1"), None).unwrap_or_default(),
            ""
        );
    }

    #[test]
    fn word_counts() {
        assert_eq!(word_count("  two words "), 2);
        assert_eq!(
            json_word_count(&serde_json::json!({"a b": ["c", 1, true], "d": "e f"})),
            2 + 1 + 1 + 1 + 1 + 2
        );
    }
}

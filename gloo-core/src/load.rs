//! Reading Gloo resources from YAML and JSON text, with errors that name the file, line and
//! column of the problem.
//!
//! A YAML file may hold many documents separated by `---`; a JSON file holds one resource or a
//! Kubernetes `List`. Each document must carry `apiVersion` and `kind`; unknown kinds, a wrong
//! `apiVersion` for a kind, unknown fields and wrongly typed values are all errors.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::model::{Kind, Resource};

/// Where a resource (or an error) came from: a file (or other origin name) and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// The file path, or a name such as `memory` for resources that came from code.
    pub file: Arc<str>,
    /// 1-based line where the resource's document starts.
    pub line: usize,
}

impl Origin {
    /// An origin at `line` of `file`.
    pub fn new(file: impl Into<Arc<str>>, line: usize) -> Self {
        Origin {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A parsed resource and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedResource {
    /// The resource.
    pub resource: Resource,
    /// Its file and the line its document starts at.
    pub origin: Origin,
}

/// Why a document could not be read. The [`Display`](fmt::Display) form is
/// `file:line:column: message`, the way compilers report errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct LoadError {
    /// The file (or origin name).
    pub file: Arc<str>,
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column of the problem (1 when unknown).
    pub column: usize,
    /// What is wrong, with the field path when there is one (`spec.virtualHost.routes[0]: ...`).
    pub message: String,
}

/// The result of reading one file: the resources that parsed, and an error for each
/// document that did not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileContents {
    /// Resources in document order.
    pub resources: Vec<LoadedResource>,
    /// One error per rejected document.
    pub errors: Vec<LoadError>,
}

impl FileContents {
    /// True when every document parsed.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Which syntax a text is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML, possibly several `---`-separated documents.
    Yaml,
    /// JSON: one resource, or a `List` of them.
    Json,
}

impl Format {
    /// The format a file's extension implies (`.yaml`, `.yml`, `.json`), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Reads a file of Gloo resources; the format follows the extension (YAML unless `.json`).
pub fn load_file(path: &Path) -> FileContents {
    let name: Arc<str> = path.display().to_string().into();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let format = Format::from_path(path).unwrap_or(Format::Yaml);
            parse_str(&text, name, format)
        }
        Err(err) => FileContents {
            resources: Vec::new(),
            errors: vec![LoadError {
                file: name,
                line: 1,
                column: 1,
                message: format!("cannot read file: {err}"),
            }],
        },
    }
}

/// Parses every resource in `text`. `file` names the origin in errors and statuses.
///
/// ```
/// use gloo_core::load::{parse_str, Format};
/// let text = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: a}\nspec: {}\n---\nkind: Nope\n";
/// let parsed = parse_str(text, "example.yaml", Format::Yaml);
/// assert_eq!(parsed.resources.len(), 1);
/// assert_eq!(parsed.errors[0].to_string().split(": ").next(), Some("example.yaml:6:1"));
/// ```
pub fn parse_str(text: &str, file: impl Into<Arc<str>>, format: Format) -> FileContents {
    let file = file.into();
    match format {
        Format::Yaml => parse_yaml(text, &file),
        Format::Json => parse_json(text, &file),
    }
}

/// Just enough of a document to know which type to read it as.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

/// Splits YAML text into documents, returning each with the 1-based line it starts on.
fn yaml_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        let is_marker = trimmed == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        let is_end = trimmed == "...";
        if is_marker || is_end {
            docs.push((start, std::mem::take(&mut current)));
            start = index + 2;
            if is_marker {
                // Content after `--- ` on the same line belongs to the new document.
                let rest = line[3..].trim();
                if !rest.is_empty() && !rest.starts_with('#') {
                    start = index + 1;
                    current.push_str(&" ".repeat(4));
                    current.push_str(rest);
                    current.push('\n');
                }
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs.retain(|(_, doc)| {
        doc.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
    });
    docs
}

/// Turns a YAML error into a [`LoadError`] with lines counted from the start of the file.
fn yaml_error(err: &serde_yaml_ng::Error, file: &Arc<str>, first_line: usize) -> LoadError {
    let (line, column) = match err.location() {
        Some(loc) => (first_line + loc.line().saturating_sub(1), loc.column()),
        None => (first_line, 1),
    };
    LoadError {
        file: file.clone(),
        line,
        column: column.max(1),
        message: strip_yaml_position(&err.to_string()),
    }
}

/// serde_yaml appends ` at line L column C` (positions within the document); we report
/// file-relative positions ourselves.
fn strip_yaml_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) if message[at..].contains(" column ") => message[..at].to_string(),
        _ => message.to_string(),
    }
}

fn resolve_kind(
    meta: &TypeMeta,
    file: &Arc<str>,
    line: usize,
    item: Option<usize>,
) -> Result<Kind, LoadError> {
    let error = |message: String| LoadError {
        file: file.clone(),
        line,
        column: 1,
        message: match item {
            Some(i) => format!("items[{i}]: {message}"),
            None => message,
        },
    };
    let kind_name = meta
        .kind
        .as_deref()
        .ok_or_else(|| error("missing field `kind`".to_string()))?;
    let api_version = meta
        .api_version
        .as_deref()
        .ok_or_else(|| error("missing field `apiVersion`".to_string()))?;
    let kind = Kind::from_name(kind_name).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        error(format!(
            "unknown kind `{kind_name}` (apiVersion `{api_version}`); gloo reads {}",
            known.join(", ")
        ))
    })?;
    if api_version != kind.api_version() {
        return Err(error(format!(
            "kind `{kind_name}` has apiVersion `{}`, not `{api_version}`",
            kind.api_version()
        )));
    }
    Ok(kind)
}

fn parse_yaml(text: &str, file: &Arc<str>) -> FileContents {
    let mut out = FileContents::default();
    for (first_line, doc) in yaml_documents(text) {
        let meta: TypeMeta = match serde_yaml_ng::from_str(&doc) {
            Ok(meta) => meta,
            Err(err) => {
                out.errors.push(yaml_error(&err, file, first_line));
                continue;
            }
        };
        if meta.kind.as_deref() == Some("List") {
            parse_yaml_list(&doc, file, first_line, &mut out);
            continue;
        }
        let kind = match resolve_kind(&meta, file, first_line, None) {
            Ok(kind) => kind,
            Err(err) => {
                out.errors.push(err);
                continue;
            }
        };
        let deserializer = serde_yaml_ng::Deserializer::from_str(&doc);
        match Resource::deserialize_envelope(kind, deserializer) {
            Ok(resource) => out.resources.push(LoadedResource {
                resource,
                origin: Origin::new(file.clone(), first_line),
            }),
            Err(err) => out.errors.push(yaml_error(&err, file, first_line)),
        }
    }
    out
}

/// A Kubernetes `List` (`kubectl get -o yaml` output): each item is read on its own.
fn parse_yaml_list(doc: &str, file: &Arc<str>, first_line: usize, out: &mut FileContents) {
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        items: Vec<serde_yaml_ng::Value>,
    }
    let list: List = match serde_yaml_ng::from_str(doc) {
        Ok(list) => list,
        Err(err) => {
            out.errors.push(yaml_error(&err, file, first_line));
            return;
        }
    };
    for (index, item) in list.items.into_iter().enumerate() {
        let prefix_error = |err: serde_yaml_ng::Error| {
            let mut e = yaml_error(&err, file, first_line);
            e.message = format!("items[{index}]: {}", e.message);
            e
        };
        let meta: TypeMeta = match serde_yaml_ng::from_value(item.clone()) {
            Ok(meta) => meta,
            Err(err) => {
                out.errors.push(prefix_error(err));
                continue;
            }
        };
        let kind = match resolve_kind(&meta, file, first_line, Some(index)) {
            Ok(kind) => kind,
            Err(err) => {
                out.errors.push(err);
                continue;
            }
        };
        match Resource::deserialize_envelope(kind, item) {
            Ok(resource) => out.resources.push(LoadedResource {
                resource,
                origin: Origin::new(file.clone(), first_line),
            }),
            Err(err) => out.errors.push(prefix_error(err)),
        }
    }
}

fn json_error(err: &serde_json::Error, file: &Arc<str>, path: Option<String>) -> LoadError {
    let mut message = err.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    if let Some(path) = path.filter(|p| p != ".") {
        message = format!("{path}: {message}");
    }
    LoadError {
        file: file.clone(),
        line: err.line().max(1),
        column: err.column().max(1),
        message,
    }
}

fn parse_json(text: &str, file: &Arc<str>) -> FileContents {
    let mut out = FileContents::default();
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            out.errors.push(json_error(&err, file, None));
            return out;
        }
    };
    let meta: TypeMeta = match serde_json::from_value(value.clone()) {
        Ok(meta) => meta,
        Err(err) => {
            out.errors.push(json_error(&err, file, None));
            return out;
        }
    };
    if meta.kind.as_deref() == Some("List") {
        // Re-serialise to YAML and reuse the list reader: items are reported by index.
        match serde_yaml_ng::to_string(&value) {
            Ok(yaml) => parse_yaml_list(&yaml, file, 1, &mut out),
            Err(err) => out.errors.push(yaml_error(&err, file, 1)),
        }
        return out;
    }
    let kind = match resolve_kind(&meta, file, 1, None) {
        Ok(kind) => kind,
        Err(err) => {
            out.errors.push(err);
            return out;
        }
    };
    // Parse the text again (not the Value) so errors keep their line and column.
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(&mut deserializer, &mut track);
    match Resource::deserialize_envelope(kind, tracked) {
        Ok(resource) => out.resources.push(LoadedResource {
            resource,
            origin: Origin::new(file.clone(), 1),
        }),
        Err(err) => {
            let path = track.path().to_string();
            out.errors.push(json_error(&err, file, Some(path)));
        }
    }
    out
}

/// Lists the config files (`*.yaml`, `*.yml`, `*.json`) below `dir`, sorted, skipping hidden
/// files and folders (editors' swap files, `.git`).
pub fn config_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if hidden {
                continue;
            }
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                stack.push(path);
            } else if Format::from_path(&path).is_some() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_UPSTREAMS: &str = "\
# leading comment
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: one
spec: {}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: two
  namespace: apps
spec: {}
";

    #[test]
    fn reads_multi_document_yaml_with_origins_and_default_namespace() {
        let parsed = parse_str(TWO_UPSTREAMS, "ups.yaml", Format::Yaml);
        assert!(parsed.is_ok(), "{:?}", parsed.errors);
        assert_eq!(parsed.resources.len(), 2);
        assert_eq!(parsed.resources[0].origin, Origin::new("ups.yaml", 1));
        assert_eq!(parsed.resources[1].origin, Origin::new("ups.yaml", 8));
        assert_eq!(
            parsed.resources[0].resource.metadata().namespace(),
            "gloo-system"
        );
        assert_eq!(parsed.resources[1].resource.metadata().namespace(), "apps");
    }

    #[test]
    fn unknown_field_names_field_file_and_line() {
        let text = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: a\n  nmespace: x\nspec: {}\n";
        let parsed = parse_str(text, "bad.yaml", Format::Yaml);
        assert_eq!(parsed.errors.len(), 1);
        let err = parsed.errors[0].to_string();
        assert!(
            err.starts_with("bad.yaml:5:3: metadata: unknown field `nmespace`"),
            "{err}"
        );
    }

    #[test]
    fn errors_in_a_later_document_count_lines_from_file_start() {
        let text = format!("{TWO_UPSTREAMS}---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: three\n  labels: [1, 2]\n");
        let parsed = parse_str(&text, "f.yaml", Format::Yaml);
        assert_eq!(parsed.resources.len(), 2);
        let err = &parsed.errors[0];
        assert_eq!((err.line, err.column), (19, 11), "{err}");
        assert!(
            err.message
                .starts_with("metadata.labels: invalid type: sequence"),
            "{err}"
        );
    }

    #[test]
    fn unknown_kind_and_wrong_api_version_are_errors() {
        let text = "apiVersion: v1\nkind: Deployment\n---\napiVersion: gloo.solo.io/v1\nkind: VirtualService\n---\nkind: Upstream\n";
        let parsed = parse_str(text, "k.yaml", Format::Yaml);
        let messages: Vec<String> = parsed.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(
            messages[0].starts_with("k.yaml:1:1: unknown kind `Deployment`"),
            "{messages:?}"
        );
        assert_eq!(
            messages[1],
            "k.yaml:4:1: kind `VirtualService` has apiVersion `gateway.solo.io/v1`, not `gloo.solo.io/v1`"
        );
        assert_eq!(messages[2], "k.yaml:7:1: missing field `apiVersion`");
    }

    #[test]
    fn malformed_yaml_is_an_error_not_a_panic() {
        for text in [
            "a: [1, 2",
            "key: value\n  - item",
            "\t- x",
            ": :",
            "apiVersion: {",
            "!!binary x",
            "[]",
            "42",
        ] {
            let parsed = parse_str(text, "m.yaml", Format::Yaml);
            assert_eq!(parsed.errors.len(), 1, "{text:?} gave {:?}", parsed);
            assert!(parsed.resources.is_empty());
        }
    }

    #[test]
    fn json_resource_and_json_errors_carry_position_and_path() {
        let ok = r#"{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"j"},"spec":{}}"#;
        let parsed = parse_str(ok, "u.json", Format::Json);
        assert!(parsed.is_ok(), "{:?}", parsed.errors);
        let bad = "{\n  \"apiVersion\": \"gloo.solo.io/v1\",\n  \"kind\": \"Upstream\",\n  \"metadata\": {\"name\": \"j\", \"labelz\": {}}\n}";
        let parsed = parse_str(bad, "u.json", Format::Json);
        let err = &parsed.errors[0];
        assert_eq!(err.line, 4, "{err}");
        assert!(err.message.contains("unknown field `labelz`"), "{err}");
        assert!(err.message.starts_with("metadata"), "{err}");
    }

    #[test]
    fn kubernetes_lists_are_read_item_by_item() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: gloo.solo.io/v1\n  kind: Upstream\n  metadata: {name: a}\n- apiVersion: gloo.solo.io/v1\n  kind: Nope\n";
        let parsed = parse_str(text, "l.yaml", Format::Yaml);
        assert_eq!(parsed.resources.len(), 1);
        assert!(
            parsed.errors[0]
                .message
                .starts_with("items[1]: unknown kind `Nope`"),
            "{:?}",
            parsed.errors
        );
    }

    #[test]
    fn status_from_kubectl_output_is_accepted() {
        let text = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: a, uid: x, resourceVersion: '5'}\nspec: {}\nstatus:\n  statuses: {gloo-system: {state: Accepted}}\n";
        let parsed = parse_str(text, "s.yaml", Format::Yaml);
        assert!(parsed.is_ok(), "{:?}", parsed.errors);
    }
}

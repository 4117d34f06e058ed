//! Inja → minijinja: the source rewrite that gives Inja's meaning to the Inja-only syntax Gloo
//! templates use, before minijinja parses them.
//!
//! * Data identifiers become `__var("name")`: Inja identifiers may contain `.`, `/` and `-`
//!   (`{{ my-extractor }}`, `{{ time/start }}` with advanced templates) and are looked up as a
//!   whole with Inja's dot / JSON-pointer rules, failing with Inja's "variable 'name' not
//!   found". Where a missing value is allowed (the first argument of `default(...)`, before a
//!   filter or `is`), they become `__opt("name")`, which gives undefined instead.
//! * Calls of Inja's and Gloo's functions become calls of `__name(...)`, so a JSON body field
//!   of the same name (`{{ body }}` next to `{{ body() }}`) never shadows the function.
//! * `loop.index` (0-based in Inja) → `loop.index0`, `loop.index1` → `loop.index`,
//!   `loop.is_first` / `loop.is_last` → `loop.first` / `loop.last`.
//! * `null` → `none`; `{% else if c %}` → `{% elif c %}`;
//!   `{% for k, v in obj %}` → `{% for k, v in (obj)|items %}`.
//!
//! Text outside tags, comments, string literals and `{% raw %}` blocks are copied unchanged,
//! and no newline is added or removed, so line numbers in errors are those of the original.

use std::sync::OnceLock;

use regex::Regex;

/// Functions of Inja 3.4 and of envoy-gloo's transformer, registered as `__<name>`.
pub(crate) const FUNCTIONS: &[&str] = &[
    // Inja built-ins.
    "at",
    "default",
    "divisibleBy",
    "even",
    "exists",
    "existsIn",
    "first",
    "float",
    "int",
    "isArray",
    "isBoolean",
    "isFloat",
    "isInteger",
    "isNumber",
    "isObject",
    "isString",
    "last",
    "length",
    "lower",
    "max",
    "min",
    "odd",
    "range",
    "round",
    "sort",
    "upper",
    "join",
    // envoy-gloo's callbacks.
    "header",
    "request_header",
    "extraction",
    "trim",
    "context",
    "body",
    "env",
    "base64_encode",
    "base64url_encode",
    "base64_decode",
    "base64url_decode",
    "substring",
    "replace_with_random",
    "raw_string",
    "word_count",
];

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "else",
    "elif",
    "endif",
    "for",
    "endfor",
    "set",
    "endset",
    "raw",
    "endraw",
    "include",
    "extends",
    "block",
    "endblock",
    "true",
    "false",
    "True",
    "False",
    "none",
    "None",
    "with",
    "endwith",
    "macro",
    "endmacro",
    "call",
    "endcall",
    "filter",
    "endfilter",
    "recursive",
    "as",
    "import",
    "from",
];

/// Rewrites an Inja template for minijinja (see the module docs).
pub(crate) fn rewrite(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 32);
    let mut rest = src;
    loop {
        let Some(pos) = find_open(rest) else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..pos]);
        let open = &rest[pos..pos + 2];
        let after = &rest[pos + 2..];
        if open == "{#" {
            match after.find("#}") {
                Some(end) => {
                    out.push_str(&rest[pos..pos + 2 + end + 2]);
                    rest = &after[end + 2..];
                    continue;
                }
                None => {
                    out.push_str(&rest[pos..]);
                    break;
                }
            }
        }
        let statement = open == "{%";
        let close = if statement { "%}" } else { "}}" };
        out.push_str(open);
        let Some(end) = find_close(after, close) else {
            // Unterminated: leave it to the parser to report.
            out.push_str(after);
            break;
        };
        let code = &after[..end];
        let mut rewritten = rewrite_code(code);
        if statement {
            rewritten = rewrite_statement(&rewritten);
        }
        out.push_str(&rewritten);
        out.push_str(close);
        rest = &after[end + 2..];
        if statement
            && code.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()) == "raw"
        {
            // Copy a raw block verbatim up to its `{% endraw %}`.
            match endraw().and_then(|re| re.find(rest)) {
                Some(m) => {
                    out.push_str(&rest[..m.end()]);
                    rest = &rest[m.end()..];
                }
                None => {
                    out.push_str(rest);
                    break;
                }
            }
        }
    }
    out
}

/// A constant regex, compiled once (`None` only if the pattern were invalid).
fn constant(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

fn endraw() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    constant(&RE, r"\{%[-+]?\s*endraw\s*[-+]?%\}")
}

fn find_open(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    (0..bytes.len().saturating_sub(1))
        .find(|&i| bytes[i] == b'{' && matches!(bytes[i + 1], b'{' | b'%' | b'#'))
}

/// The index of `close` in `code`, skipping string literals.
fn find_close(code: &str, close: &str) -> Option<usize> {
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'"' | b'\'') => i = skip_string(bytes, i, q),
            _ if code[i..].starts_with(close) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The index after the string literal starting at `start` (quote `q`).
fn skip_string(bytes: &[u8], start: usize, q: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == q => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn is_id_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'_' | b'-')
}

/// Where an identifier stands, from the tokens around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A filter (`| name`) or test (`is name`) name, or a `for` / `set` target.
    Name,
    /// A function call.
    Call,
    /// Data that must exist (Inja: "variable 'x' not found").
    Data,
    /// Data that may be missing: the first argument of `default(...)`, or followed by `is` or
    /// a filter, which decide themselves.
    Optional,
}

fn rewrite_code(code: &str) -> String {
    let bytes = code.as_bytes();
    let mut out = String::with_capacity(code.len() + 16);
    // The previous significant token, to find filter and test names and loop/set targets.
    let mut prev = "";
    let mut in_for_targets = false;
    let mut default_arg = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let after_default_paren = std::mem::take(&mut default_arg);
        if b == b'"' || b == b'\'' {
            let end = skip_string(bytes, i, b);
            out.push_str(&code[i..end]);
            prev = "literal";
            i = end;
        } else if b.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            out.push_str(&code[start..i]);
            prev = "literal";
        } else if is_id_start(b) {
            let start = i;
            while i < bytes.len() && is_id_char(bytes[i]) {
                i += 1;
            }
            let mut id = &code[start..i];
            // `{{ foo-}}`: the dash is whitespace control, not part of the name.
            while id.len() > 1 && id.ends_with('-') && code[start + id.len()..].trim().is_empty() {
                id = &id[..id.len() - 1];
            }
            i = start + id.len();
            let next = code[i..].trim_start();
            let role = if prev == "|" || prev == "is" || prev == "set" || in_for_targets {
                Role::Name
            } else if next.starts_with('(') {
                Role::Call
            } else if after_default_paren
                || next.starts_with('|')
                || next.starts_with("is ")
                || next.starts_with("is\t")
            {
                Role::Optional
            } else {
                Role::Data
            };
            out.push_str(&rewrite_id(id, role));
            match id {
                "for" => in_for_targets = true,
                "in" => in_for_targets = false,
                _ => {}
            }
            if role == Role::Call && id == "default" {
                // The `(` comes next; the argument after it may be missing.
                let paren = i + (code[i..].len() - next.len());
                out.push_str(&code[i..=paren]);
                i = paren + 1;
                default_arg = true;
            }
            prev = if KEYWORDS.contains(&id) { id } else { "id" };
        } else {
            let c = code[i..].chars().next().unwrap_or(' ');
            out.push(c);
            prev = match c {
                '|' => "|",
                ',' => ",",
                _ => "op",
            };
            i += c.len_utf8();
        }
    }
    out
}

fn rewrite_id(id: &str, role: Role) -> String {
    match role {
        Role::Name => return id.to_owned(),
        Role::Call if FUNCTIONS.contains(&id) => return format!("__{id}"),
        Role::Call => return id.to_owned(),
        Role::Data | Role::Optional => {}
    }
    if id == "null" {
        return "none".to_owned();
    }
    if KEYWORDS.contains(&id) || id == "loop" {
        return id.to_owned();
    }
    if let Some(field) = id.strip_prefix("loop.") {
        let mapped = match field {
            "index" => "index0",
            "index1" => "index",
            "is_first" => "first",
            "is_last" => "last",
            other => other,
        };
        return format!("loop.{mapped}");
    }
    if role == Role::Optional {
        format!("__opt({id:?})")
    } else {
        format!("__var({id:?})")
    }
}

fn rewrite_statement(code: &str) -> String {
    static ELSE_IF: OnceLock<Option<Regex>> = OnceLock::new();
    static FOR_KV: OnceLock<Option<Regex>> = OnceLock::new();
    if let Some(re) = constant(&ELSE_IF, r"^([-+]?\s*)else\s+if\b") {
        if re.is_match(code) {
            return re.replace(code, "${1}elif").into_owned();
        }
    }
    let for_kv = constant(
        &FOR_KV,
        r"(?s)^([-+]?\s*for\s+\w+\s*,\s*\w+\s+in\s+)(.*?)(\s*[-+]?\s*)$",
    );
    if let Some(c) = for_kv.and_then(|re| re.captures(code)) {
        let group = |i| c.get(i).map_or("", |m| m.as_str());
        return format!("{}({})|items{}", group(1), group(2), group(3));
    }
    code.to_owned()
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn rewrites_inja_only_syntax() {
        assert_eq!(rewrite("{{ header(\"x-a\") }}"), "{{ __header(\"x-a\") }}");
        assert_eq!(
            rewrite("{{ my-extractor }}"),
            "{{ __var(\"my-extractor\") }}"
        );
        assert_eq!(rewrite("{{ a.b.0 }}"), "{{ __var(\"a.b.0\") }}");
        assert_eq!(rewrite("{{ time/start }}"), "{{ __var(\"time/start\") }}");
        assert_eq!(
            rewrite("{% for x in xs %}{{ loop.index }}{{ loop.index1 }}{{ x.y }}{% endfor %}"),
            "{% for x in __var(\"xs\") %}{{ loop.index0 }}{{ loop.index }}{{ __var(\"x.y\") }}{% endfor %}"
        );
        assert_eq!(
            rewrite("{% if a == null %}1{% else if b %}2{% endif %}"),
            "{% if __var(\"a\") == none %}1{% elif __var(\"b\") %}2{% endif %}"
        );
        assert_eq!(
            rewrite("{%- for k, v in obj -%}{{ k }}{% endfor %}"),
            "{%- for k, v in (__var(\"obj\"))|items -%}{{ __var(\"k\") }}{% endfor %}"
        );
        assert_eq!(
            rewrite("{{ default(data.error.message, \"\") }}{% set x = 1 %}"),
            "{{ __default(__opt(\"data.error.message\"), \"\") }}{% set x = 1 %}"
        );
        // Filters, tests, strings, text, comments and raw blocks are left alone.
        assert_eq!(
            rewrite("a-b {{ x | upper }}{{ \"my-x\" }}{# c-d #}{{ y is defined }}"),
            "a-b {{ __opt(\"x\") | upper }}{{ \"my-x\" }}{# c-d #}{{ __opt(\"y\") is defined }}"
        );
        assert_eq!(
            rewrite("{% raw %}{{ a-b }}{% endraw %}{{ c-d -}}"),
            "{% raw %}{{ a-b }}{% endraw %}{{ __var(\"c-d\") -}}"
        );
        assert_eq!(rewrite("{{ foo-}}"), "{{ __var(\"foo\")-}}");
    }
}

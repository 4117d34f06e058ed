//! Envoy's substitution format strings (`SubstitutionFormatString`): text with `%COMMAND%`
//! operators, or a JSON object whose string values hold them.
//!
//! ```
//! use gloo_proxy::access_log::format::Format;
//!
//! let format = Format::text("%REQ(:METHOD)% %RESPONSE_CODE% %BYTES_SENT%\n").unwrap();
//! assert!(Format::text("%NO_SUCH_THING%").is_err());
//! # let _ = format;
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;

use super::Entry;

/// A compiled format: how one request's entry is written.
#[derive(Debug, Clone)]
pub struct Format {
    shape: Shape,
}

#[derive(Debug, Clone)]
enum Shape {
    Text(Template),
    Json(JsonTemplate),
}

/// A string with operators in it.
#[derive(Debug, Clone, PartialEq)]
struct Template(Vec<Piece>);

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Command(Command, Option<usize>),
}

#[derive(Debug, Clone)]
enum JsonTemplate {
    /// A string value: typed when it is exactly one operator (`"%BYTES_SENT%"` is a number).
    Template(Template),
    /// Written as it is (numbers, booleans, null).
    Constant(Json),
    Object(Vec<(String, JsonTemplate)>),
    List(Vec<JsonTemplate>),
}

/// Envoy's command operators that gloo-proxy writes.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    StartTime(Vec<TimePiece>),
    Request {
        name: String,
        alternative: Option<String>,
        without_query: bool,
    },
    Response {
        name: String,
        alternative: Option<String>,
    },
    Trailer {
        name: String,
        alternative: Option<String>,
    },
    Protocol,
    ResponseCode,
    ResponseFlags,
    BytesReceived,
    BytesSent,
    Duration,
    RequestDuration,
    ResponseDuration,
    ResponseTxDuration,
    UpstreamHost,
    UpstreamHostWithoutPort,
    UpstreamPort,
    UpstreamCluster,
    DownstreamRemoteAddress,
    DownstreamRemoteAddressWithoutPort,
    DownstreamRemotePort,
    DownstreamDirectRemoteAddress,
    DownstreamDirectRemoteAddressWithoutPort,
    DownstreamDirectRemotePort,
    DownstreamLocalAddress,
    DownstreamLocalAddressWithoutPort,
    DownstreamLocalPort,
    RouteName,
    Hostname,
}

/// Envoy's default format, used when an access log names none.
pub const DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

impl Format {
    /// A text format (Envoy's `text_format_source` / `text_format`): operators substituted,
    /// everything else written as it is (`%%` is one `%`). No newline is added.
    pub fn text(format: &str) -> Result<Format, String> {
        Ok(Format {
            shape: Shape::Text(Template::parse(format)?),
        })
    }

    /// Envoy's default format.
    pub fn default_format() -> Format {
        match Format::text(DEFAULT_FORMAT) {
            Ok(f) => f,
            // The constant parses (a unit test says so).
            Err(_) => Format {
                shape: Shape::Text(Template(Vec::new())),
            },
        }
    }

    /// A JSON format (Envoy's `json_format`): each string value may hold operators; a value
    /// that is exactly one operator keeps its type (a number, or `null` when absent). One
    /// object per line.
    pub fn json(format: &serde_json::Map<String, Json>) -> Result<Format, String> {
        Ok(Format {
            shape: Shape::Json(JsonTemplate::object(format)?),
        })
    }

    /// Whether the format is text with no operator in it (its text is then
    /// [`literal`](Self::literal)).
    pub fn is_literal(&self) -> bool {
        matches!(&self.shape, Shape::Text(t) if t.0.iter().all(|p| matches!(p, Piece::Literal(_))))
    }

    /// The text of a format without operators (`%%` read as `%`); `None` if it has some.
    pub fn literal(&self) -> Option<String> {
        let Shape::Text(t) = &self.shape else {
            return None;
        };
        let mut out = String::new();
        for piece in &t.0 {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Command(..) => return None,
            }
        }
        Some(out)
    }

    /// Whether an operator reads the request's headers (`%REQ(...)%`).
    pub fn reads_request_headers(&self) -> bool {
        fn template(t: &Template) -> bool {
            t.0.iter()
                .any(|p| matches!(p, Piece::Command(Command::Request { .. }, _)))
        }
        fn json(j: &JsonTemplate) -> bool {
            match j {
                JsonTemplate::Template(t) => template(t),
                JsonTemplate::Constant(_) => false,
                JsonTemplate::Object(fields) => fields.iter().any(|(_, v)| json(v)),
                JsonTemplate::List(items) => items.iter().any(json),
            }
        }
        match &self.shape {
            Shape::Text(t) => template(t),
            Shape::Json(j) => json(j),
        }
    }

    /// A header value for `entry`, as Envoy substitutes operators in the values of headers it
    /// adds: an absent value is empty (not the access log's `-`).
    pub fn render_value(&self, entry: &Entry<'_>) -> String {
        match &self.shape {
            Shape::Text(t) => t.render_with(entry, ""),
            Shape::Json(j) => j.render(entry).to_string(),
        }
    }

    /// The line for `entry`.
    pub fn render(&self, entry: &Entry<'_>) -> String {
        match &self.shape {
            Shape::Text(t) => t.render_text(entry),
            Shape::Json(j) => {
                let mut line = j.render(entry).to_string();
                line.push('\n');
                line
            }
        }
    }
}

impl JsonTemplate {
    fn object(map: &serde_json::Map<String, Json>) -> Result<JsonTemplate, String> {
        let mut fields = Vec::with_capacity(map.len());
        for (key, value) in map {
            let value = JsonTemplate::value(value).map_err(|e| format!("{key}: {e}"))?;
            fields.push((key.clone(), value));
        }
        Ok(JsonTemplate::Object(fields))
    }

    fn value(value: &Json) -> Result<JsonTemplate, String> {
        Ok(match value {
            Json::String(s) => JsonTemplate::Template(Template::parse(s)?),
            Json::Object(map) => JsonTemplate::object(map)?,
            Json::Array(items) => JsonTemplate::List(
                items
                    .iter()
                    .map(JsonTemplate::value)
                    .collect::<Result<_, _>>()?,
            ),
            other => JsonTemplate::Constant(other.clone()),
        })
    }

    fn render(&self, entry: &Entry<'_>) -> Json {
        match self {
            JsonTemplate::Constant(v) => v.clone(),
            JsonTemplate::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.render(entry)))
                    .collect(),
            ),
            JsonTemplate::List(items) => {
                Json::Array(items.iter().map(|v| v.render(entry)).collect())
            }
            JsonTemplate::Template(t) => match t.0.as_slice() {
                [Piece::Command(command, max)] => match command.value(entry) {
                    Value::Absent => Json::Null,
                    Value::Number(n) => Json::from(n),
                    Value::Text(s) => Json::String(truncated(s, *max).into_owned()),
                },
                _ => Json::String(t.render_text(entry)),
            },
        }
    }
}

/// A value an operator produces.
enum Value<'a> {
    Absent,
    Number(u64),
    Text(Cow<'a, str>),
}

fn truncated(s: Cow<'_, str>, max: Option<usize>) -> Cow<'_, str> {
    match max {
        Some(max) if s.len() > max => {
            let mut end = max;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Cow::Owned(s[..end].to_string())
        }
        _ => s,
    }
}

impl Template {
    fn parse(format: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let bytes = format.as_bytes();
        let mut pos = 0;
        while pos < format.len() {
            let Some(offset) = format[pos..].find('%') else {
                literal.push_str(&format[pos..]);
                break;
            };
            literal.push_str(&format[pos..pos + offset]);
            pos += offset;
            if bytes.get(pos + 1) == Some(&b'%') {
                literal.push('%');
                pos += 2;
                continue;
            }
            let (command, max, end) = parse_command(format, pos)?;
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Command(command, max));
            pos = end;
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template(pieces))
    }

    fn render_text(&self, entry: &Entry<'_>) -> String {
        self.render_with(entry, "-")
    }

    /// Renders with `absent` for values that are absent or empty.
    fn render_with(&self, entry: &Entry<'_>, absent: &str) -> String {
        let mut out = String::with_capacity(128);
        for piece in &self.0 {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Command(command, max) => match command.value(entry) {
                    Value::Absent => out.push_str(absent),
                    Value::Number(n) => {
                        let _ = write!(out, "{n}");
                    }
                    Value::Text(s) if s.is_empty() => out.push_str(absent),
                    Value::Text(s) => out.push_str(&truncated(s, *max)),
                },
            }
        }
        out
    }
}

/// Parses the operator starting at `start` (a `%`): Envoy's
/// `%COMMAND(ARGUMENT):LENGTH%`. Returns it with the position after its closing `%`.
fn parse_command(format: &str, start: usize) -> Result<(Command, Option<usize>, usize), String> {
    let invalid = || format!("couldn't find a valid command at position {start} of {format:?}");
    let rest = &format[start + 1..];
    let name_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        .count();
    if name_len == 0 {
        return Err(invalid());
    }
    let name = &rest[..name_len];
    let mut at = name_len;
    let mut argument = None;
    if rest[at..].starts_with('(') {
        let close = rest[at..].find(')').ok_or_else(invalid)?;
        argument = Some(&rest[at + 1..at + close]);
        at += close + 1;
    }
    let mut max = None;
    if let Some(after) = rest[at..].strip_prefix(':') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        max = Some(after[..digits].parse::<usize>().map_err(|_| invalid())?);
        at += 1 + digits;
    }
    if !rest[at..].starts_with('%') {
        return Err(invalid());
    }
    let end = start + 1 + at + 1;
    let no_argument = |command: Command| match argument {
        None => Ok(command),
        Some(_) => Err(format!("%{name}% takes no argument")),
    };
    let headers = |what: &str| -> Result<(String, Option<String>), String> {
        let argument = argument
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("%{what}(...)% needs a header name"))?;
        let (main, alternative) = match argument.split_once('?') {
            Some((m, a)) => (m, Some(a)),
            None => (argument, None),
        };
        if main.is_empty() || alternative.is_some_and(|a| a.is_empty() || a.contains('?')) {
            return Err(format!(
                "%{what}({argument})%: expected HEADER or HEADER?ALTERNATIVE"
            ));
        }
        Ok((
            main.to_ascii_lowercase(),
            alternative.map(str::to_ascii_lowercase),
        ))
    };
    let command = match name {
        "START_TIME" => Command::StartTime(parse_time_format(
            argument
                .filter(|a| !a.is_empty())
                .unwrap_or("%Y-%m-%dT%H:%M:%E3SZ"),
        )?),
        "REQ" | "REQ_WITHOUT_QUERY" => {
            let (name, alternative) = headers(name)?;
            Command::Request {
                name,
                alternative,
                without_query: name_len == "REQ_WITHOUT_QUERY".len(),
            }
        }
        "RESP" => {
            let (name, alternative) = headers(name)?;
            Command::Response { name, alternative }
        }
        "TRAILER" => {
            let (name, alternative) = headers(name)?;
            Command::Trailer { name, alternative }
        }
        "PROTOCOL" => no_argument(Command::Protocol)?,
        "RESPONSE_CODE" => no_argument(Command::ResponseCode)?,
        "RESPONSE_FLAGS" => no_argument(Command::ResponseFlags)?,
        "BYTES_RECEIVED" => no_argument(Command::BytesReceived)?,
        "BYTES_SENT" => no_argument(Command::BytesSent)?,
        "DURATION" => no_argument(Command::Duration)?,
        "REQUEST_DURATION" => no_argument(Command::RequestDuration)?,
        "RESPONSE_DURATION" => no_argument(Command::ResponseDuration)?,
        "RESPONSE_TX_DURATION" => no_argument(Command::ResponseTxDuration)?,
        "UPSTREAM_HOST" | "UPSTREAM_REMOTE_ADDRESS" => no_argument(Command::UpstreamHost)?,
        "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => no_argument(Command::UpstreamHostWithoutPort)?,
        "UPSTREAM_REMOTE_PORT" => no_argument(Command::UpstreamPort)?,
        "UPSTREAM_CLUSTER" => no_argument(Command::UpstreamCluster)?,
        "DOWNSTREAM_REMOTE_ADDRESS" => no_argument(Command::DownstreamRemoteAddress)?,
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => {
            no_argument(Command::DownstreamRemoteAddressWithoutPort)?
        }
        "DOWNSTREAM_REMOTE_PORT" => no_argument(Command::DownstreamRemotePort)?,
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS" => no_argument(Command::DownstreamDirectRemoteAddress)?,
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT" => {
            no_argument(Command::DownstreamDirectRemoteAddressWithoutPort)?
        }
        "DOWNSTREAM_DIRECT_REMOTE_PORT" => no_argument(Command::DownstreamDirectRemotePort)?,
        "DOWNSTREAM_LOCAL_ADDRESS" => no_argument(Command::DownstreamLocalAddress)?,
        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => {
            no_argument(Command::DownstreamLocalAddressWithoutPort)?
        }
        "DOWNSTREAM_LOCAL_PORT" => no_argument(Command::DownstreamLocalPort)?,
        "ROUTE_NAME" => no_argument(Command::RouteName)?,
        "HOSTNAME" => no_argument(Command::Hostname)?,
        other => {
            return Err(format!(
                "%{other}% is not a command operator gloo-proxy supports"
            ))
        }
    };
    Ok((command, max, end))
}

/// Milliseconds, as Envoy writes durations.
fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

impl Command {
    fn value<'a>(&self, e: &'a Entry<'a>) -> Value<'a> {
        let text = |s: String| Value::Text(Cow::Owned(s));
        match self {
            Command::StartTime(pieces) => text(format_time(e.start, pieces)),
            Command::Request {
                name,
                alternative,
                without_query,
            } => {
                let Some(request) = &e.request else {
                    return Value::Absent;
                };
                let found = request
                    .header(name)
                    .or_else(|| alternative.as_deref().and_then(|a| request.header(a)))
                    .filter(|v| !v.is_empty());
                match found {
                    Some(v) if *without_query => match v {
                        Cow::Borrowed(s) => {
                            Value::Text(Cow::Borrowed(crate::router::matcher::strip_query(s)))
                        }
                        Cow::Owned(s) => text(crate::router::matcher::strip_query(&s).to_string()),
                    },
                    Some(v) => Value::Text(v),
                    None => Value::Absent,
                }
            }
            Command::Response { name, alternative } => {
                let get = |n: &str| -> Option<Cow<'a, str>> {
                    if n == ":status" {
                        return Some(Cow::Owned(e.status.to_string()));
                    }
                    e.response_headers
                        .get(n)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()))
                };
                match get(name).or_else(|| alternative.as_deref().and_then(get)) {
                    Some(v) => Value::Text(v),
                    None => Value::Absent,
                }
            }
            Command::Trailer { name, alternative } => {
                let get = |n: &str| -> Option<Cow<'a, str>> {
                    e.response_trailers?
                        .get(n)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()))
                };
                match get(name).or_else(|| alternative.as_deref().and_then(get)) {
                    Some(v) => Value::Text(v),
                    None => Value::Absent,
                }
            }
            Command::Protocol => Value::Text(Cow::Borrowed(match e.protocol {
                Some(http::Version::HTTP_09) => "HTTP/0.9",
                Some(http::Version::HTTP_10) => "HTTP/1.0",
                Some(http::Version::HTTP_11) => "HTTP/1.1",
                Some(http::Version::HTTP_2) => "HTTP/2",
                Some(http::Version::HTTP_3) => "HTTP/3",
                _ => return Value::Absent,
            })),
            Command::ResponseCode => Value::Number(u64::from(e.status)),
            Command::ResponseFlags => Value::Text(Cow::Owned(e.flags.to_string())),
            Command::BytesReceived => Value::Number(e.bytes_received),
            Command::BytesSent => Value::Number(e.bytes_sent),
            Command::Duration => Value::Number(millis(e.duration)),
            Command::RequestDuration => match e.request_duration {
                Some(d) => Value::Number(millis(d)),
                None => Value::Absent,
            },
            Command::ResponseDuration => match e.response_duration {
                Some(d) => Value::Number(millis(d)),
                None => Value::Absent,
            },
            Command::ResponseTxDuration => match e.response_duration {
                Some(d) => Value::Number(millis(e.duration.saturating_sub(d))),
                None => Value::Absent,
            },
            Command::UpstreamHost => match e.upstream_host {
                Some(a) => text(a.to_string()),
                None => Value::Absent,
            },
            Command::UpstreamHostWithoutPort => match e.upstream_host {
                Some(a) => text(a.ip().to_string()),
                None => Value::Absent,
            },
            Command::UpstreamPort => match e.upstream_host {
                Some(a) => Value::Number(u64::from(a.port())),
                None => Value::Absent,
            },
            Command::UpstreamCluster => match e.upstream_cluster {
                Some(c) => Value::Text(Cow::Borrowed(c)),
                None => Value::Absent,
            },
            Command::DownstreamRemoteAddress => text(e.downstream.remote.to_string()),
            Command::DownstreamRemoteAddressWithoutPort => {
                text(e.downstream.remote.ip().to_string())
            }
            Command::DownstreamRemotePort => Value::Number(u64::from(e.downstream.remote.port())),
            Command::DownstreamDirectRemoteAddress => text(e.downstream.peer.to_string()),
            Command::DownstreamDirectRemoteAddressWithoutPort => {
                text(e.downstream.peer.ip().to_string())
            }
            Command::DownstreamDirectRemotePort => {
                Value::Number(u64::from(e.downstream.peer.port()))
            }
            Command::DownstreamLocalAddress => text(e.downstream.local.to_string()),
            Command::DownstreamLocalAddressWithoutPort => text(e.downstream.local.ip().to_string()),
            Command::DownstreamLocalPort => Value::Number(u64::from(e.downstream.local.port())),
            Command::RouteName => match e.route_name {
                Some(r) if !r.is_empty() => Value::Text(Cow::Borrowed(r)),
                _ => Value::Absent,
            },
            Command::Hostname => Value::Text(Cow::Borrowed(hostname())),
        }
    }
}

fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

// ---------------------------------------------------------------------------------------------
// START_TIME

/// One part of a `START_TIME` format.
#[derive(Debug, Clone, PartialEq)]
enum TimePiece {
    Literal(String),
    Year,
    Year2,
    Month,
    Day,
    DaySpacePadded,
    DayOfYear,
    Hour,
    Minute,
    Second,
    /// Seconds with this many fractional digits (Envoy's `%E3S`).
    SecondsWithFraction(u8),
    /// This many fractional digits of the second (Envoy's `%3f`; `%f` is 9).
    Fraction(u8),
    EpochSeconds,
    WeekdayShort,
    MonthShort,
    /// `%z`: `+0000` (times are UTC).
    Offset,
    /// `%Z`: `UTC`.
    Zone,
}

fn parse_time_format(format: &str) -> Result<Vec<TimePiece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = format.chars().peekable();
    let unsupported =
        |spec: &str| format!("START_TIME format {format:?}: %{spec} is not supported");
    while let Some(c) = chars.next() {
        if c != '%' {
            literal.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            return Err(format!("START_TIME format {format:?} ends with %"));
        };
        let piece = match spec {
            '%' => {
                literal.push('%');
                continue;
            }
            'Y' => TimePiece::Year,
            'y' => TimePiece::Year2,
            'm' => TimePiece::Month,
            'd' => TimePiece::Day,
            'e' => TimePiece::DaySpacePadded,
            'j' => TimePiece::DayOfYear,
            'H' => TimePiece::Hour,
            'M' => TimePiece::Minute,
            'S' => TimePiece::Second,
            's' => TimePiece::EpochSeconds,
            'a' => TimePiece::WeekdayShort,
            'b' => TimePiece::MonthShort,
            'z' => TimePiece::Offset,
            'Z' => TimePiece::Zone,
            'f' => TimePiece::Fraction(9),
            'F' => {
                literal_flush(&mut literal, &mut pieces);
                pieces.extend([
                    TimePiece::Year,
                    TimePiece::Literal("-".into()),
                    TimePiece::Month,
                    TimePiece::Literal("-".into()),
                    TimePiece::Day,
                ]);
                continue;
            }
            'T' => {
                literal_flush(&mut literal, &mut pieces);
                pieces.extend([
                    TimePiece::Hour,
                    TimePiece::Literal(":".into()),
                    TimePiece::Minute,
                    TimePiece::Literal(":".into()),
                    TimePiece::Second,
                ]);
                continue;
            }
            'E' => {
                let digits = chars.next().and_then(|d| d.to_digit(10));
                match (digits, chars.next()) {
                    (Some(n @ 1..=9), Some('S')) => TimePiece::SecondsWithFraction(n as u8),
                    _ => return Err(unsupported("E")),
                }
            }
            d @ '1'..='9' => match chars.next() {
                Some('f') => TimePiece::Fraction(d as u8 - b'0'),
                _ => return Err(unsupported(&d.to_string())),
            },
            other => return Err(unsupported(&other.to_string())),
        };
        literal_flush(&mut literal, &mut pieces);
        pieces.push(piece);
    }
    literal_flush(&mut literal, &mut pieces);
    Ok(pieces)
}

fn literal_flush(literal: &mut String, pieces: &mut Vec<TimePiece>) {
    if !literal.is_empty() {
        pieces.push(TimePiece::Literal(std::mem::take(literal)));
    }
}

/// The civil date (UTC) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn format_time(at: SystemTime, pieces: &[TimePiece]) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let nanos = since.subsec_nanos();
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    let fraction = |digits: u8| {
        let digits = u32::from(digits.clamp(1, 9));
        format!(
            "{:0width$}",
            nanos / 10u32.pow(9 - digits),
            width = digits as usize
        )
    };
    let mut out = String::with_capacity(32);
    for piece in pieces {
        let _ = match piece {
            TimePiece::Literal(s) => {
                out.push_str(s);
                Ok(())
            }
            TimePiece::Year => write!(out, "{year:04}"),
            TimePiece::Year2 => write!(out, "{:02}", year.rem_euclid(100)),
            TimePiece::Month => write!(out, "{month:02}"),
            TimePiece::Day => write!(out, "{day:02}"),
            TimePiece::DaySpacePadded => write!(out, "{day:2}"),
            TimePiece::DayOfYear => {
                write!(out, "{:03}", days - days_from_civil(year) + 1)
            }
            TimePiece::Hour => write!(out, "{hour:02}"),
            TimePiece::Minute => write!(out, "{minute:02}"),
            TimePiece::Second => write!(out, "{second:02}"),
            TimePiece::SecondsWithFraction(d) => write!(out, "{second:02}.{}", fraction(*d)),
            TimePiece::Fraction(d) => write!(out, "{}", fraction(*d)),
            TimePiece::EpochSeconds => write!(out, "{secs}"),
            TimePiece::WeekdayShort => {
                write!(out, "{}", WEEKDAYS[days.rem_euclid(7) as usize])
            }
            TimePiece::MonthShort => write!(out, "{}", MONTHS[(month - 1) as usize % 12]),
            TimePiece::Offset => write!(out, "+0000"),
            TimePiece::Zone => write!(out, "UTC"),
        };
    }
    out
}

/// Days since 1970-01-01 of January 1st of `year`.
fn days_from_civil(year: i64) -> i64 {
    let y = year - 1; // January: counted in the previous March-based year
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = 306; // March 1st to January 1st
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn start_time_formats_as_envoy_does() {
        // 2026-12-05T06:40:01.123456789Z, a Saturday, day 339.
        let t = at(1_796_452_801, 123_456_789);
        let f = |spec: &str| format_time(t, &parse_time_format(spec).unwrap());
        assert_eq!(f("%Y-%m-%dT%H:%M:%E3SZ"), "2026-12-05T06:40:01.123Z");
        assert_eq!(f("%F %T"), "2026-12-05 06:40:01");
        assert_eq!(f("%s.%3f|%f|%6f"), "1796452801.123|123456789|123456");
        assert_eq!(
            f("%a %b %e %y %j %z %Z %%"),
            "Sat Dec  5 26 339 +0000 UTC %"
        );
        assert_eq!(f("%E6S"), "01.123456");
        // Leap day and the turn of a year.
        let leap = at(1_709_164_800, 0); // 2024-02-29T00:00:00Z
        assert_eq!(
            format_time(leap, &parse_time_format("%F %j").unwrap()),
            "2024-02-29 060"
        );
        let new_year = at(1_735_689_599, 999_000_000); // 2024-12-31T23:59:59.999Z
        assert_eq!(
            format_time(new_year, &parse_time_format("%F %T.%3f %j").unwrap()),
            "2024-12-31 23:59:59.999 366"
        );
        assert!(parse_time_format("%Q").is_err());
        assert!(parse_time_format("%E0S").is_err());
        assert!(parse_time_format("trailing %").is_err());
    }

    #[test]
    fn operators_parse_with_their_arguments_and_lengths() {
        let t = Template::parse("a %REQ(X-Foo?:PATH):10% b %% %RESPONSE_CODE%\n").unwrap();
        assert_eq!(
            t.0,
            vec![
                Piece::Literal("a ".into()),
                Piece::Command(
                    Command::Request {
                        name: "x-foo".into(),
                        alternative: Some(":path".into()),
                        without_query: false
                    },
                    Some(10)
                ),
                Piece::Literal(" b % ".into()),
                Piece::Command(Command::ResponseCode, None),
                Piece::Literal("\n".into()),
            ]
        );
        for bad in [
            "%",
            "100%",
            "%lower%",
            "%REQ%",
            "%REQ()%",
            "%REQ(a?b?c)%",
            "%RESPONSE_CODE(x)%",
            "%REQ(x):%",
            "%REQ(x",
            "%TRAILER()%",
            "%DYNAMIC_METADATA(a)%",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(Format::text(DEFAULT_FORMAT).is_ok());
    }

    fn entry_with<'a>(
        request_headers: &'a http::HeaderMap,
        response_headers: &'a http::HeaderMap,
        downstream: &'a crate::proxy::Downstream,
    ) -> Entry<'a> {
        Entry {
            start: at(1_796_452_801, 5_000_000),
            duration: Duration::from_millis(42),
            request_duration: Some(Duration::from_millis(3)),
            response_duration: Some(Duration::from_millis(40)),
            protocol: Some(http::Version::HTTP_11),
            request: Some(crate::router::matcher::RequestView {
                method: "POST",
                authority: "example.com",
                path: "/api/items?page=2",
                scheme: "http",
                headers: request_headers,
            }),
            status: 503,
            response_headers,
            response_trailers: None,
            flags: super::super::ResponseFlags::NO_HEALTHY_UPSTREAM,
            bytes_received: 12,
            bytes_sent: 19,
            upstream_host: None,
            upstream_cluster: Some("backend_default"),
            route_name: None,
            downstream,
            health_check: false,
        }
    }

    #[test]
    fn entries_are_written_as_text_and_typed_json() {
        let mut request_headers = http::HeaderMap::new();
        request_headers.insert("user-agent", http::HeaderValue::from_static("curl/8.0"));
        let mut response_headers = http::HeaderMap::new();
        response_headers.insert("x-backend", http::HeaderValue::from_static("alpha"));
        let downstream = crate::proxy::Downstream {
            remote: "10.0.0.1:5555".parse().unwrap(),
            peer: "127.0.0.1:4444".parse().unwrap(),
            local: "127.0.0.1:8080".parse().unwrap(),
            scheme: "http",
            client_certificate: None,
        };
        let e = entry_with(&request_headers, &response_headers, &downstream);
        let text = Format::text(
            "[%START_TIME%] %REQ(:METHOD)% %REQ_WITHOUT_QUERY(:PATH)% %REQ(USER-AGENT):4% \
             %REQ(X-MISSING?USER-AGENT)% %REQ(X-MISSING)% %PROTOCOL% %RESPONSE_CODE% \
             %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESPONSE_TX_DURATION% \
             %RESP(X-BACKEND)% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% \
             %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS% \
             %DOWNSTREAM_LOCAL_PORT% %TRAILER(GRPC-STATUS)% 100%%\n",
        )
        .unwrap();
        assert_eq!(
            text.render(&e),
            "[2026-12-05T06:40:01.005Z] POST /api/items curl curl/8.0 - HTTP/1.1 503 UH 12 19 42 2 \
             alpha - backend_default 10.0.0.1 127.0.0.1:4444 8080 - 100%\n"
        );
        let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"code": "%RESPONSE_CODE%", "sent": "%BYTES_SENT%", "host": "%UPSTREAM_HOST%",
                "line": "%REQ(:METHOD)% %UPSTREAM_HOST%", "flags": "%RESPONSE_FLAGS%",
                "nested": {"agent": "%REQ(USER-AGENT)%", "list": ["%PROTOCOL%", 7]},
                "constant": true}"#,
        )
        .unwrap();
        let line = Format::json(&json).unwrap().render(&e);
        assert!(line.ends_with('\n'));
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "code": 503, "sent": 19, "host": null, "line": "POST -", "flags": "UH",
                "nested": {"agent": "curl/8.0", "list": ["HTTP/1.1", 7]},
                "constant": true,
            })
        );
        let bad: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"outer": {"inner": "%NOPE%"}}"#).unwrap();
        let error = Format::json(&bad).unwrap_err();
        assert!(error.contains("outer: inner: %NOPE%"), "{error}");
    }
}

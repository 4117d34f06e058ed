//! Audit logs: what an exchange was and which rules matched, as a JSON document shaped like
//! ModSecurity's JSON audit log (`SecAuditLogFormat JSON`).
//!
//! libmodsecurity's C API does not hand out its own audit log, so this one is assembled from
//! what the exchange saw (connection, request line and headers, response status and headers)
//! and the text of each rule message (ModSecurity's log callback), whose `[id "..."]`,
//! `[msg "..."]`, ... fields become each message's `details`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::exchange::{Connection, Intervention};
use super::ffi;

/// An exchange's audit log: a JSON document shaped like ModSecurity's JSON audit log, in the
/// answer's extensions (Gloo puts it in the access log's filter state or dynamic metadata).
///
/// ```json
/// {"transaction": {"client_ip": "127.0.0.1", "client_port": 40000, "host_ip": "127.0.0.1",
///   "host_port": 8080, "time_stamp": "Wed May  6 20:22:18 2020", "unique_id": "...",
///   "request": {"method": "GET", "http_version": 1.1, "uri": "/?id=1' or '1'='1",
///               "headers": {"host": "example.com"}},
///   "response": {"http_code": 403, "headers": {}},
///   "producer": {"modsecurity": "ModSecurity v3.0.9 (Linux)", "connector": "gloo-filters v0.1.0"},
///   "messages": [{"message": "SQL Injection Attack Detected via libinjection",
///                 "details": {"ruleId": "942100", "match": "detected SQLi using libinjection.",
///                             "file": "...", "lineNumber": "46", "data": "...",
///                             "severity": "2", "tags": ["..."], ...}}]}}
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditLog {
    json: String,
}

impl AuditLog {
    /// The JSON document.
    pub fn as_str(&self) -> &str {
        &self.json
    }

    /// The rule ids of its messages, in order (e.g. `942100`, then `949110`).
    pub fn rule_ids(&self) -> Vec<String> {
        serde_json::from_str::<Value>(&self.json)
            .ok()
            .and_then(|v| {
                Some(
                    v["transaction"]["messages"]
                        .as_array()?
                        .iter()
                        .filter_map(|m| m["details"]["ruleId"].as_str().map(str::to_owned))
                        .collect(),
                )
            })
            .unwrap_or_default()
    }
}

impl std::fmt::Display for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.json)
    }
}

/// What an exchange saw, kept for its audit log.
#[derive(Debug, Default)]
pub(crate) struct AuditRecord {
    connection: Option<Connection>,
    method: String,
    uri: String,
    version: String,
    request_headers: Map<String, Value>,
    response_headers: Map<String, Value>,
}

fn add_header(headers: &mut Map<String, Value>, name: &[u8], value: &[u8]) {
    let name = String::from_utf8_lossy(name).into_owned();
    let value = String::from_utf8_lossy(value);
    match headers.get_mut(&name) {
        // Repeated headers are joined, as a proxy folds them.
        Some(Value::String(existing)) => {
            existing.push_str(", ");
            existing.push_str(&value);
        }
        _ => {
            headers.insert(name, Value::String(value.into_owned()));
        }
    }
}

impl AuditRecord {
    pub(crate) fn request(
        &mut self,
        connection: Connection,
        method: &str,
        uri: &str,
        version: &str,
    ) {
        self.connection = Some(connection);
        self.method = method.to_owned();
        self.uri = uri.to_owned();
        self.version = version.to_owned();
    }

    pub(crate) fn request_header(&mut self, name: &[u8], value: &[u8]) {
        add_header(&mut self.request_headers, name, value);
    }

    pub(crate) fn response_header(&mut self, name: &[u8], value: &[u8]) {
        add_header(&mut self.response_headers, name, value);
    }

    /// The audit log of an exchange answered with `status`, whose rules logged `messages`
    /// (and, if one did, intervened with `intervention`).
    pub(crate) fn finish(
        self,
        status: u16,
        messages: Vec<String>,
        intervention: Option<&Intervention>,
    ) -> AuditLog {
        let mut parsed: Vec<Message> = messages.iter().map(|m| Message::parse(m)).collect();
        // The disruptive rule's message comes with the intervention, not the log callback.
        if let Some(log) = intervention.and_then(Intervention::log) {
            parsed.push(Message::parse(log));
        }
        let unique_id = parsed
            .iter()
            .find_map(|m| m.field("unique_id").map(str::to_owned))
            .unwrap_or_else(local_unique_id);
        let unknown = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        let (client, server) = self
            .connection
            .map_or((unknown, unknown), |c| (c.client, c.server));
        let http_version = self
            .version
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(self.version.clone()));
        let doc = json!({
            "transaction": {
                "client_ip": client.ip().to_string(),
                "client_port": client.port(),
                "host_ip": server.ip().to_string(),
                "host_port": server.port(),
                "time_stamp": ctime(SystemTime::now()),
                "unique_id": unique_id,
                "request": {
                    "method": self.method,
                    "http_version": http_version,
                    "uri": self.uri,
                    "headers": self.request_headers,
                },
                "response": {
                    "http_code": status,
                    "headers": self.response_headers,
                },
                "producer": {
                    "modsecurity": ffi::version(),
                    "connector": concat!("gloo-filters v", env!("CARGO_PKG_VERSION")),
                },
                "messages": parsed.iter().map(Message::to_json).collect::<Vec<_>>(),
            }
        });
        AuditLog {
            json: doc.to_string(),
        }
    }
}

/// One rule message, split into ModSecurity's `[name "value"]` fields.
struct Message<'a> {
    /// The text before the fields (`Matched "Operator ..."`), without the `ModSecurity: ...`
    /// prefix.
    text: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Message<'a> {
    fn parse(line: &'a str) -> Self {
        // `[client 1.2.3.4] ModSecurity: Warning. <match> [file "..."] [line "..."] ...`
        let mut rest = line.trim();
        if rest.starts_with("[client ") {
            rest = rest.split_once("] ").map_or(rest, |(_, r)| r);
        }
        if let Some(r) = rest.strip_prefix("ModSecurity: ") {
            rest = r.split_once(". ").map_or(r, |(_, r)| r);
        }
        let start = rest.find(" [").unwrap_or(rest.len());
        let text = rest[..start].trim();
        let mut fields = Vec::new();
        let mut tail = &rest[start..];
        while let Some(open) = tail.find(" [") {
            let after = &tail[open + 2..];
            let Some((name, value_and_rest)) = after.split_once(" \"") else {
                break;
            };
            if name.is_empty() || name.contains(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
                break;
            }
            // The value ends at the `"]` that closes the field (before the next field or the
            // end of the line).
            let end = value_and_rest
                .match_indices("\"]")
                .map(|(i, _)| i)
                .find(|&i| {
                    let next = &value_and_rest[i + 2..];
                    next.is_empty() || next.starts_with(" [")
                });
            let Some(end) = end else {
                break;
            };
            fields.push((name, &value_and_rest[..end]));
            tail = &value_and_rest[end + 2..];
        }
        Self { text, fields }
    }

    fn field(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn to_json(&self) -> Value {
        let f = |name| self.field(name).unwrap_or_default();
        let tags: Vec<&str> = self
            .fields
            .iter()
            .filter(|(n, _)| *n == "tag")
            .map(|(_, v)| *v)
            .collect();
        json!({
            "message": f("msg"),
            "details": {
                "match": self.text,
                "reference": f("ref"),
                "ruleId": f("id"),
                "file": f("file"),
                "lineNumber": f("line"),
                "data": f("data"),
                "severity": f("severity"),
                "ver": f("ver"),
                "rev": f("rev"),
                "tags": tags,
                "maturity": f("maturity"),
                "accuracy": f("accuracy"),
            }
        })
    }
}

/// An id for an exchange no rule message named (ModSecurity's style: seconds, a dot, a
/// counter).
fn local_unique_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs}.{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `time` in C's `ctime` format, in UTC: `Wed May  6 20:22:18 2020`.
fn ctime(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // 1970-01-01 was a Thursday.
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = DAYS[(days % 7) as usize];
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let month = MONTHS[(month - 1).clamp(0, 11) as usize];
    format!("{weekday} {month} {day:>2} {h:02}:{m:02}:{s:02} {year}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ctime_formats_like_c() {
        // 2020-05-06T20:22:18Z, the example of Gloo's docs.
        let t = UNIX_EPOCH + Duration::from_secs(1_588_796_538);
        assert_eq!(ctime(t), "Wed May  6 20:22:18 2020");
        assert_eq!(ctime(UNIX_EPOCH), "Thu Jan  1 00:00:00 1970");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(ctime(t), "Tue Feb 29 00:00:00 2000");
    }

    #[test]
    fn rule_messages_split_into_fields() {
        let line = r#"ModSecurity: Warning. Matched "Operator `Rx' with parameter `(?i)<script[^>]*>' against variable `ARGS:q' (Value: `<script>"]' )" [file "/r/REQUEST-941.conf"] [line "64"] [id "941110"] [rev ""] [msg "XSS Filter - Category 1: Script Tag Vector"] [data "Matched Data: <script> found within ARGS:q: <script>\"] x"] [severity "2"] [tag "attack-xss"] [tag "OWASP_CRS"] [hostname "127.0.0.1"] [uri "/"] [unique_id "1796.02"] [ref "o0,8v8,25"]"#;
        let m = Message::parse(line);
        assert!(m.text.starts_with("Matched \"Operator `Rx'"), "{}", m.text);
        assert_eq!(m.field("id"), Some("941110"));
        assert_eq!(m.field("rev"), Some(""));
        assert_eq!(m.field("line"), Some("64"));
        assert_eq!(
            m.field("data"),
            Some(r#"Matched Data: <script> found within ARGS:q: <script>\"] x"#)
        );
        assert_eq!(m.field("unique_id"), Some("1796.02"));
        let json = m.to_json();
        assert_eq!(
            json["message"],
            "XSS Filter - Category 1: Script Tag Vector"
        );
        assert_eq!(json["details"]["tags"], json!(["attack-xss", "OWASP_CRS"]));

        let denied = Message::parse(
            r#"[client 127.0.0.1] ModSecurity: Access denied with code 403 (phase 2). Matched "Operator `Ge' with parameter `5' against variable `TX:ANOMALY_SCORE' (Value: `5' ) [id "949110"] [msg "Inbound Anomaly Score Exceeded (Total Score: 5)"]"#,
        );
        assert_eq!(denied.field("id"), Some("949110"));
        assert!(denied.text.starts_with("Matched"), "{}", denied.text);
    }
}

//! One HTTP exchange under ModSecurity: the phases in libmodsecurity's order, shared by the
//! tower layer and the ext_proc service. Every method here calls into libmodsecurity and
//! must run off the async runtime's workers (see [`Evaluation`](super::blocking::Evaluation)).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;

use super::audit::{AuditLog, AuditRecord};
use super::config::{AuditLogAction, WafRules};
use super::ffi;

/// The message of an intervention when no `custom_intervention_message` is configured
/// (envoy-gloo's).
pub const DEFAULT_INTERVENTION_MESSAGE: &str = "ModSecurity: intervention occurred";

/// The addresses of the connection a request came on, which ModSecurity sees as
/// `REMOTE_ADDR` / `REMOTE_PORT` and `SERVER_ADDR` / `SERVER_PORT`.
///
/// Put it in the request's extensions; without it the layer uses a `SocketAddr` extension
/// as the client's address, else `0.0.0.0:0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The client's address.
    pub client: SocketAddr,
    /// The address the client connected to.
    pub server: SocketAddr,
}

impl Connection {
    /// The connection from `client` to `server`.
    pub fn new(client: SocketAddr, server: SocketAddr) -> Self {
        Self { client, server }
    }

    /// From the request's extensions: a [`Connection`], else a `SocketAddr` (the client).
    pub(crate) fn of(extensions: &http::Extensions) -> Self {
        let unknown = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        extensions
            .get::<Connection>()
            .copied()
            .unwrap_or_else(|| Self {
                client: extensions.get::<SocketAddr>().copied().unwrap_or(unknown),
                server: unknown,
            })
    }
}

/// A disruptive action a rule took (`deny`, `redirect`, `drop`, ...): the layer answers with
/// its status instead of (or in place of) the upstream's response, and puts this in the
/// answer's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intervention {
    status: StatusCode,
    redirect: Option<String>,
    log: Option<String>,
}

impl Intervention {
    fn from_raw(raw: ffi::RawIntervention) -> Self {
        let status = u16::try_from(raw.status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok());
        let redirect = raw.url.filter(|u| !u.is_empty());
        let status = match status {
            // `redirect:` sets a 3xx status and the URL.
            Some(s) if s.is_redirection() && redirect.is_some() => s,
            Some(s) if s.is_client_error() || s.is_server_error() => s,
            // A disruptive action without an error status (`drop`, a `deny` whose status was
            // left at 200) refuses the request the way `deny` does by default.
            _ => StatusCode::FORBIDDEN,
        };
        Self {
            status,
            redirect: redirect.filter(|_| status.is_redirection()),
            log: raw.log,
        }
    }

    /// A refusal for an exchange the WAF could not evaluate (fail closed).
    pub(crate) fn failed(why: &str) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            redirect: None,
            log: Some(format!("WAF evaluation failed: {why}")),
        }
    }

    /// The status of the answer (the rule's `status:`, 403 for the CRS).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `Location` of a `redirect:` action.
    pub fn redirect(&self) -> Option<&str> {
        self.redirect.as_deref()
    }

    /// ModSecurity's log line for the intervention, e.g. `ModSecurity: Access denied with
    /// code 403 (phase 2). Matched "Operator ... [id "949110"] ...`.
    pub fn log(&self) -> Option<&str> {
        self.log.as_deref()
    }
}

/// How one exchange is inspected.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) rules: WafRules,
    pub(crate) message: Bytes,
    pub(crate) audit: AuditLogAction,
    pub(crate) request_headers_only: bool,
    pub(crate) response_headers_only: bool,
    pub(crate) max_body_bytes: usize,
}

impl Settings {
    pub(crate) fn new(rules: WafRules) -> Self {
        Self {
            rules,
            message: Bytes::from_static(DEFAULT_INTERVENTION_MESSAGE.as_bytes()),
            audit: AuditLogAction::Never,
            request_headers_only: false,
            response_headers_only: false,
            max_body_bytes: super::layer::DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// A request's head as ModSecurity takes it.
pub(crate) struct RequestHead<'a, H> {
    pub(crate) connection: Connection,
    pub(crate) method: &'a str,
    /// The path and query.
    pub(crate) uri: &'a str,
    /// `1.1`, `2.0`, ...
    pub(crate) version: &'a str,
    /// The headers (name, value), as bytes.
    pub(crate) headers: H,
}

/// One exchange: a ModSecurity transaction and what its audit log needs.
#[derive(Debug)]
pub(crate) struct Exchange {
    tx: ffi::Transaction,
    settings: Arc<Settings>,
    audit: Option<AuditRecord>,
    /// The intervention that ended the exchange, if any.
    intervened: Option<Intervention>,
}

impl Exchange {
    /// Starts a transaction.
    pub(crate) fn start(settings: &Arc<Settings>) -> Result<Self, String> {
        let audit = settings.audit != AuditLogAction::Never;
        Ok(Self {
            tx: ffi::Transaction::new(settings.rules.set.clone(), audit)?,
            settings: settings.clone(),
            audit: audit.then(AuditRecord::default),
            intervened: None,
        })
    }

    /// Phase 1 (connection, request line, headers); with `end`, phase 2 too, with no body.
    pub(crate) fn request_headers<'h, H>(
        &mut self,
        head: RequestHead<'_, H>,
        end: bool,
    ) -> Option<Intervention>
    where
        H: Iterator<Item = (&'h [u8], &'h [u8])>,
    {
        let c = head.connection;
        self.tx.process_connection(
            &c.client.ip().to_string(),
            c.client.port(),
            &c.server.ip().to_string(),
            c.server.port(),
        );
        self.tx.process_uri(head.uri, head.method, head.version);
        let mut record = self.audit.take();
        if let Some(r) = &mut record {
            r.request(c, head.method, head.uri, head.version);
        }
        for (name, value) in head.headers {
            self.tx.add_request_header(name, value);
            if let Some(r) = &mut record {
                r.request_header(name, value);
            }
        }
        self.audit = record;
        self.tx.process_request_headers();
        if let Some(it) = self.intervention() {
            return Some(it);
        }
        if end {
            self.request_body(&[])
        } else {
            None
        }
    }

    /// Phase 2 with `body` (the whole body, or as much as is inspected).
    pub(crate) fn request_body(&mut self, body: &[u8]) -> Option<Intervention> {
        if !body.is_empty() {
            self.tx.append_request_body(body);
        }
        self.tx.process_request_body();
        self.intervention()
    }

    /// Phases 3 and 4: the response's status, headers and `body` (empty when it is not
    /// inspected).
    pub(crate) fn response<'h, H>(
        &mut self,
        status: u16,
        version: &str,
        headers: H,
        body: &[u8],
    ) -> Option<Intervention>
    where
        H: Iterator<Item = (&'h [u8], &'h [u8])>,
    {
        let mut record = self.audit.take();
        for (name, value) in headers {
            self.tx.add_response_header(name, value);
            if let Some(r) = &mut record {
                r.response_header(name, value);
            }
        }
        self.audit = record;
        self.tx
            .process_response_headers(status, &format!("HTTP/{version}"));
        if let Some(it) = self.intervention() {
            return Some(it);
        }
        if !body.is_empty() {
            self.tx.append_response_body(body);
        }
        self.tx.process_response_body();
        self.intervention()
    }

    fn intervention(&mut self) -> Option<Intervention> {
        let it = Intervention::from_raw(self.tx.intervention()?);
        tracing::debug!(
            target: "gloo_filters::waf",
            status = it.status.as_u16(),
            log = it.log.as_deref().unwrap_or_default(),
            "ModSecurity intervention"
        );
        self.intervened = Some(it.clone());
        Some(it)
    }

    /// Ends the exchange, answered with `status`: its audit log, if the settings ask for
    /// one (also traced at `gloo_filters::waf::audit`).
    pub(crate) fn finish(mut self, status: u16) -> Option<AuditLog> {
        let record = self.audit.take()?;
        let messages = self.tx.take_messages();
        let relevant = !messages.is_empty() || self.intervened.is_some();
        if self.settings.audit == AuditLogAction::RelevantOnly && !relevant {
            return None;
        }
        let log = record.finish(status, messages, self.intervened.as_ref());
        tracing::info!(target: "gloo_filters::waf::audit", "{}", log.as_str());
        Some(log)
    }
}

//! The HTTP/1.1 server loop for plain requests, without hyper's connection machinery.
//!
//! Most requests a gateway sees are HTTP/1.1 requests without a body, or with a small one
//! sent with its head, asking for nothing special of the connection. This loop reads them,
//! hands them to the [`Proxy`](crate::proxy::Proxy) and writes the answers, encoding them
//! exactly as hyper's server would (the same status line, `date`, `content-length` /
//! `transfer-encoding` and `connection` rules), in one write per answer when the body is at
//! hand.
//!
//! Anything else hands the connection over to hyper, with the bytes read so far, before
//! anything of that request has been acted on: a body that is chunked, large or not all there
//! yet, a length that is not one plain number, `Expect`, `Upgrade`, `CONNECT` or `HEAD`,
//! HTTP/1.0, an HTTP/2 preface, a request target that is not a path, a head hyper's parser
//! would reject, or one over the listener's limits. So every error answer, every request whose
//! framing is in doubt (smuggling attempts) and every protocol feature stays hyper's; this
//! loop only serves what needs none of them.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::{Activity, Connection};
use crate::body::Body;

/// How the loop ended.
pub(super) enum Ended<I> {
    /// The connection is done: closed by either side, drained, or broken.
    Closed,
    /// A request this loop does not serve arrived: hyper serves the connection from here,
    /// starting with these bytes (the head and whatever followed it).
    Handover(I, Bytes),
}

/// The largest request body served here (when it came whole with its head); hyper streams
/// larger ones.
const MAX_BODY: usize = 64 * 1024;

/// Serves plain HTTP/1.1 requests on `io` until the connection ends or a request needs hyper.
pub(super) async fn serve<I>(
    mut io: I,
    conn: &Arc<Connection>,
    activity: &Arc<Activity>,
) -> Ended<I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let settings = &conn.listener.settings;
    // A longer head is handed over, for hyper to answer 431; so is one with more fields than
    // the listener allows (or than hyper's default, which the loop's parser holds at most).
    let max_head = super::head_limit(settings);
    let max_headers = settings.max_headers_count.min(super::HYPER_MAX_HEADERS);
    let mut buf = BytesMut::with_capacity(8192);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    // The last answer's header map, cleared: the next request's fields go in its allocation
    // (as hyper does).
    let mut spare: Option<HeaderMap> = None;
    loop {
        // A complete head, or the reason there is none.
        let (req, asked) = loop {
            if !buf.is_empty() {
                match parse_request(&mut buf, max_headers, &mut spare) {
                    Parsed::Request(req, asked) => break (req, asked),
                    Parsed::Partial if buf.len() < max_head => {}
                    Parsed::Partial | Parsed::Unusual => {
                        return Ended::Handover(io, buf.freeze());
                    }
                }
            }
            // Between requests, a drain (idle or header timeout, connection age, shutdown)
            // closes the connection; a request begun but incomplete then goes with it.
            if activity.drain_requested() {
                return Ended::Closed;
            }
            buf.reserve(4096);
            tokio::select! {
                biased;
                read = io.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return Ended::Closed,
                    Ok(_) => {}
                },
                () = activity.drained() => return Ended::Closed,
            }
        };

        let guard = activity.begin();
        let last_allowed = settings
            .max_requests_per_connection
            .is_some_and(|max| guard.served >= max);
        let mut handling = std::pin::pin!(conn.proxy.handle(req, &conn.listener, &conn.downstream));
        // While the answer is prepared, the socket is watched: a client that goes away
        // abandons its request (the proxy's work for it is dropped), as with hyper. Bytes
        // of a next (pipelined) request are kept, up to the head limit.
        let response = loop {
            tokio::select! {
                biased;
                response = &mut handling => break response,
                read = io.read_buf(&mut buf), if buf.len() < max_head => match read {
                    Ok(0) | Err(_) => return Ended::Closed,
                    Ok(_) => {}
                },
            }
        };
        if last_allowed {
            activity.drain();
        }
        let keep_alive = !asked.close && !last_allowed && !activity.drain_requested();
        let (mut parts, mut body) = response.into_parts();
        out.clear();
        let (framing, response_close) = encode_head(
            &mut parts,
            &body,
            keep_alive,
            asked.trailers,
            Style::of(&conn.listener.settings),
            &mut out,
        );
        parts.headers.clear();
        spare = Some(parts.headers);
        let written = write_body(&mut io, &mut out, &mut body, framing).await;
        drop(body);
        if let Err(AnswerFailed::Body { sent: false }) = written {
            // The answer's body failed (an upstream's broken chunked framing, say) before
            // any of it went out: the client gets a clear 502 instead of a silent close.
            let (mut parts, mut body) =
                crate::proxy::local_reply(http::StatusCode::BAD_GATEWAY, "invalid response body")
                    .into_parts();
            out.clear();
            let style = Style::of(&conn.listener.settings);
            let (framing, _) = encode_head(&mut parts, &body, false, false, style, &mut out);
            let _ = write_body(&mut io, &mut out, &mut body, framing).await;
            let _ = io.shutdown().await;
            return Ended::Closed;
        }
        if out.capacity() > crate::head::OUT_KEPT {
            // Not kept for the next request: the room a large answer's small frames took.
            out = Vec::with_capacity(1024);
        }
        drop(guard);
        if written.is_err() {
            return Ended::Closed;
        }
        if !keep_alive || response_close {
            let _ = io.shutdown().await;
            return Ended::Closed;
        }
    }
}

/// What a request asked of the connection.
#[derive(Debug, Clone, Copy, Default)]
struct Asked {
    /// `Connection: close`: no more requests after this one.
    close: bool,
    /// `TE: trailers`: the answer's trailers may be sent.
    trailers: bool,
}

// Returned once per request and taken apart at once: boxing the request would cost an
// allocation per request to save a move.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    /// A request to serve.
    Request(Request<Body>, Asked),
    /// More bytes are needed.
    Partial,
    /// Not a request this loop serves (nothing of it was consumed).
    Unusual,
}

/// Parses one request head at the start of `buf`, consuming it only when the request is one
/// this loop serves.
fn parse_request(buf: &mut BytesMut, max_headers: usize, spare: &mut Option<HeaderMap>) -> Parsed {
    let mut slots =
        [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; super::HYPER_MAX_HEADERS];
    let slots = &mut slots[..max_headers.min(super::HYPER_MAX_HEADERS)];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        buf,
        slots,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Unusual,
    };
    let (Some(method), Some(path), Some(1)) = (parsed.method, parsed.path, parsed.version) else {
        return Parsed::Unusual;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::Unusual;
    };
    if !path.starts_with('/') || method == Method::CONNECT || method == Method::HEAD {
        return Parsed::Unusual;
    }
    // Fields as offsets into the head, so the head can be frozen and shared by the values.
    let base = buf.as_ptr() as usize;
    let span = |field: &[u8]| -> Option<(usize, usize)> {
        match (field.as_ptr() as usize).checked_sub(base) {
            Some(start) if start + field.len() <= len => Some((start, start + field.len())),
            _ if field.is_empty() => Some((0, 0)),
            _ => None,
        }
    };
    let Some(path_span) = span(path.as_bytes()) else {
        return Parsed::Unusual;
    };
    let mut inline = crate::head::inline_room::<(usize, usize, usize, usize)>();
    let mut heap = Vec::new();
    let spans = crate::head::field_room(&mut inline, &mut heap, parsed.headers.len());
    for (slot, h) in spans.iter_mut().zip(parsed.headers.iter()) {
        let (Some(name), Some(value)) = (span(h.name.as_bytes()), span(h.value)) else {
            return Parsed::Unusual;
        };
        *slot = (name.0, name.1, value.0, value.1);
    }
    let head = buf.split_to(len).freeze();
    let request = build_request(&head, method, path_span, spans, spare).and_then(
        |(mut req, asked, length)| {
            // A body is served here only when it has all arrived with its head (as a small
            // body sent in one write does) and is small; else hyper streams it.
            let length = usize::try_from(length).ok()?;
            if length > 0 {
                if length > MAX_BODY || buf.len() < length {
                    return None;
                }
                *req.body_mut() = Body::full(buf.split_to(length).freeze());
            }
            Some((req, asked))
        },
    );
    match request {
        Some((req, asked)) => Parsed::Request(req, asked),
        None => {
            // Put the head back in front of what followed it, for hyper.
            let mut whole = BytesMut::with_capacity(head.len() + buf.len());
            whole.extend_from_slice(&head);
            whole.extend_from_slice(buf);
            *buf = whole;
            Parsed::Unusual
        }
    }
}

/// The request of a frozen head (without its body) and its `Content-Length` (0 when
/// absent), or `None` if it is not one this loop serves.
fn build_request(
    head: &Bytes,
    method: Method,
    path: (usize, usize),
    fields: &[(usize, usize, usize, usize)],
    spare: &mut Option<HeaderMap>,
) -> Option<(Request<Body>, Asked, u64)> {
    let uri = Uri::from_maybe_shared(head.slice(path.0..path.1)).ok()?;
    let mut headers = spare.take().unwrap_or_default();
    headers.reserve(fields.len());
    let mut asked = Asked::default();
    let mut content_length = None;
    for &(name_start, name_end, value_start, value_end) in fields {
        let name = crate::head::field_name(&head[name_start..name_end]).ok()?;
        let raw = head.slice(value_start..value_end);
        match name {
            // A body (or the promise of one), or a change of protocol: hyper's to serve.
            header::TRANSFER_ENCODING | header::EXPECT | header::UPGRADE => return None,
            header::CONTENT_LENGTH => {
                // One length, in plain digits: anything else (a second length, a sign, a
                // list) is hyper's to judge.
                if content_length.is_some() {
                    return None;
                }
                content_length = Some(crate::head::content_length(&raw)?);
            }
            header::CONNECTION => asked.close |= crate::head::has_token(&raw, b"close"),
            header::TE => asked.trailers |= crate::head::has_token(&raw, b"trailers"),
            _ => {}
        }
        headers.append(name, HeaderValue::from_maybe_shared(raw).ok()?);
    }
    let mut req = Request::new(Body::empty());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    Some((req, asked, content_length.unwrap_or(0)))
}

/// How an answer's body is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Framing {
    /// This many bytes (zero: no body is written, whatever the body holds).
    Length(u64),
    /// Chunked, with the trailers that may be sent.
    Chunked(Trailers),
}

/// Which of an answer's trailers a chunked body sends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trailers {
    /// Only these fields: those the answer's `trailer` field declared, when the client takes
    /// trailers (as with hyper).
    Declared(Vec<HeaderName>),
    /// Every one (Envoy's `enable_trailers`, whatever the client said).
    All,
}

impl Trailers {
    fn none() -> Trailers {
        Trailers::Declared(Vec::new())
    }

    fn allows(&self, name: &HeaderName) -> bool {
        match self {
            Trailers::Declared(names) => names.contains(name),
            Trailers::All => true,
        }
    }
}

/// How the lean loop writes an answer's head and trailers, from the listener's HTTP/1
/// options.
#[derive(Debug, Clone, Copy, Default)]
struct Style {
    /// Header names in proper case.
    proper_case: bool,
    /// Every trailer, whether or not declared or asked for (`enable_trailers`).
    all_trailers: bool,
}

impl Style {
    fn of(settings: &crate::config::ConnectionSettings) -> Style {
        Style {
            proper_case: settings.http1_proper_case,
            all_trailers: settings.http1_enable_trailers,
        }
    }
}

/// Encodes the answer's head into `out` as hyper's server encodes it for an HTTP/1.1
/// request (`GET`-like: not `HEAD`, not `CONNECT`): the status line; the fields in order, with
/// several `connection`, `transfer-encoding` or `trailer` values joined on one line; the
/// framing from the body when no field gave it (`content-length` for a known length, `0`
/// for none, else `transfer-encoding: chunked`); `connection: close` when the connection
/// will not be kept; `date` when absent. Returns the body's framing (with the trailer fields
/// that may be sent, none unless the client said it takes `trailers`, as with hyper) and
/// whether the answer closes the connection.
fn encode_head(
    parts: &mut http::response::Parts,
    body: &Body,
    keep_alive: bool,
    trailers: bool,
    style: Style,
    out: &mut Vec<u8>,
) -> (Framing, bool) {
    let proper_case = style.proper_case;
    // hyper sends no 1xx answer through a service: it answers 500 instead, and closes.
    let informational = parts.status.is_informational();
    if informational {
        parts.status = StatusCode::INTERNAL_SERVER_ERROR;
        parts.headers.clear();
    }
    let mut closing = informational || !keep_alive;
    if !keep_alive {
        let has_close = parts
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .any(is_close);
        if !has_close {
            parts
                .headers
                .append(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    let status = parts.status;
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let can_have_body = !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
    let length = if informational || body.is_end_stream() {
        None
    } else {
        Some(body.size_hint().exact())
    };
    let mut framing = None;
    let mut wrote_date = false;
    let mut declared = Vec::new();
    // The field being written, when its line is still open for more values.
    let mut open: Option<HeaderName> = None;
    for (name, value) in parts.headers.iter() {
        if open.as_ref().is_some_and(|o| o != name) {
            out.extend_from_slice(b"\r\n");
            open = None;
        }
        match *name {
            header::CONTENT_LENGTH => {
                if matches!(framing, Some(Framing::Chunked(_))) {
                    continue;
                }
                match length {
                    // No body: hyper drops the field (it writes its own `0` below).
                    None => continue,
                    Some(known) => {
                        if framing.is_some() {
                            // A repeated length: one line only (hyper refuses a different one;
                            // the proxy never makes one).
                            continue;
                        }
                        let Some(n) =
                            known.or_else(|| crate::head::content_length(value.as_bytes()))
                        else {
                            continue;
                        };
                        framing = Some(Framing::Length(n));
                        field(out, "content-length: ", proper_case);
                        out.extend_from_slice(value.as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                }
            }
            header::TRANSFER_ENCODING => {
                if !can_have_body {
                    continue;
                }
                if open.as_ref() == Some(name) {
                    out.extend_from_slice(b", ");
                } else {
                    field(out, "transfer-encoding: ", proper_case);
                    open = Some(name.clone());
                }
                out.extend_from_slice(value.as_bytes());
                if !matches!(framing, Some(Framing::Chunked(_))) {
                    framing = Some(Framing::Chunked(Trailers::none()));
                }
                if !crate::head::ends_chunked(value.as_bytes()) {
                    out.extend_from_slice(b", chunked");
                }
            }
            header::CONNECTION | header::TRAILER => {
                if *name == header::TRAILER && !can_have_body {
                    continue;
                }
                if *name == header::CONNECTION && is_close(value) {
                    closing = true;
                }
                if *name == header::TRAILER && trailers {
                    declared.extend(
                        value
                            .as_bytes()
                            .split(|b| *b == b',')
                            .filter_map(|n| HeaderName::from_bytes(n.trim_ascii()).ok()),
                    );
                }
                if open.as_ref() == Some(name) {
                    out.extend_from_slice(b", ");
                } else {
                    field(out, name.as_str(), proper_case);
                    out.extend_from_slice(b": ");
                    open = Some(name.clone());
                }
                out.extend_from_slice(value.as_bytes());
            }
            _ => {
                if *name == header::DATE {
                    wrote_date = true;
                }
                field(out, name.as_str(), proper_case);
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    if open.is_some() {
        out.extend_from_slice(b"\r\n");
    }
    let framing = match framing {
        Some(f) => f,
        None => match length {
            Some(None) if can_have_body => {
                field(out, "transfer-encoding: ", proper_case);
                out.extend_from_slice(b"chunked\r\n");
                Framing::Chunked(Trailers::none())
            }
            Some(Some(n)) if n > 0 => {
                if can_have_body {
                    field(out, "content-length: ", proper_case);
                    out.extend_from_slice(n.to_string().as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                Framing::Length(n)
            }
            _ => {
                if can_have_body {
                    field(out, "content-length: ", proper_case);
                    out.extend_from_slice(b"0\r\n");
                }
                Framing::Length(0)
            }
        },
    };
    let framing = match framing {
        _ if !can_have_body => Framing::Length(0),
        Framing::Chunked(_) if style.all_trailers => Framing::Chunked(Trailers::All),
        Framing::Chunked(_) => Framing::Chunked(Trailers::Declared(declared)),
        length => length,
    };
    if !wrote_date {
        field(out, "date: ", proper_case);
        extend_date(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    (framing, closing)
}

/// Writes a field's name (with `: ` when the caller's text has it), in proper case when the
/// listener says so (Envoy's `proper_case_words`).
#[inline(always)]
fn field(out: &mut Vec<u8>, name: &str, proper_case: bool) {
    if proper_case {
        proper_case_field(out, name);
    } else {
        out.extend_from_slice(name.as_bytes());
    }
}

#[cold]
fn proper_case_field(out: &mut Vec<u8>, name: &str) {
    crate::upstream::h1::write_proper_case(out, name);
}

fn is_close(value: &HeaderValue) -> bool {
    crate::head::has_token(value.as_bytes(), b"close")
}

/// Fields hyper never sends as trailers.
fn may_trail(name: &HeaderName) -> bool {
    !matches!(
        *name,
        header::AUTHORIZATION
            | header::CACHE_CONTROL
            | header::CONTENT_ENCODING
            | header::CONTENT_LENGTH
            | header::CONTENT_RANGE
            | header::CONTENT_TYPE
            | header::HOST
            | header::MAX_FORWARDS
            | header::SET_COOKIE
            | header::TRAILER
            | header::TRANSFER_ENCODING
            | header::TE
    )
}

/// The largest frame copied after what is pending (the head, earlier small frames), for one
/// `send`: the kernel's vectored write costs more per call (about 0.3 µs on loopback, `perf`
/// says) than copying a few KiB. A larger frame goes out beside what is pending, uncopied.
const COPIED_BODY: usize = 4 * 1024;

/// Writes `out` (the head) and the body after it: the body's first frame goes in the same
/// write when it is at hand, after the head in `out` when it is small.
async fn write_body<I>(
    io: &mut I,
    out: &mut Vec<u8>,
    body: &mut Body,
    framing: Framing,
) -> Result<(), AnswerFailed>
where
    I: AsyncWrite + Unpin,
{
    let (mut remaining, declared) = match framing {
        Framing::Length(0) => {
            io.write_all(out).await?;
            return Ok(io.flush().await?);
        }
        Framing::Length(n) => (Some(n), Trailers::none()),
        Framing::Chunked(trailers) => (None, trailers),
    };
    // Whether any of the answer went out yet.
    let mut sent = false;
    let broken = |sent: bool| AnswerFailed::Body { sent };
    loop {
        let frame = match next_frame_now(body) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if !out.is_empty() {
                    io.write_all(out).await?;
                    out.clear();
                    sent = true;
                }
                io.flush().await?;
                std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
            }
        };
        match frame {
            None => {
                match remaining {
                    Some(0) => {}
                    // Shorter than its length: the client cannot tell the answer ended.
                    Some(_) => return Err(broken(sent)),
                    None => out.extend_from_slice(b"0\r\n\r\n"),
                }
                break;
            }
            Some(Err(_)) => return Err(broken(sent)),
            Some(Ok(frame)) => {
                let frame = match frame.into_data() {
                    Ok(data) => {
                        if data.is_empty() {
                            continue;
                        }
                        // Counted against the length, or framed as a chunk.
                        match remaining.as_mut() {
                            Some(left) => {
                                *left = left.checked_sub(data.len() as u64).ok_or(broken(sent))?;
                            }
                            None => {
                                out.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes())
                            }
                        }
                        if data.len() > COPIED_BODY {
                            // A large frame is written beside what is pending (the head,
                            // small frames before it), not copied after it.
                            write_both(io, out, &data).await?;
                            out.clear();
                            sent = true;
                        } else {
                            out.extend_from_slice(&data);
                        }
                        if remaining.is_none() {
                            out.extend_from_slice(b"\r\n");
                        }
                        if out.len() >= 64 * 1024 {
                            io.write_all(out).await?;
                            out.clear();
                            sent = true;
                        }
                        continue;
                    }
                    Err(frame) => frame,
                };
                if let (Ok(trailers), None) = (frame.into_trailers(), remaining) {
                    // The trailers end the body; only the fields the answer declared go.
                    out.extend_from_slice(b"0\r\n");
                    let sent = trailers
                        .iter()
                        .filter(|(name, _)| declared.allows(name) && may_trail(name));
                    for (name, value) in sent {
                        out.extend_from_slice(name.as_str().as_bytes());
                        out.extend_from_slice(b": ");
                        out.extend_from_slice(value.as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"\r\n");
                    break;
                }
            }
        }
    }
    io.write_all(out).await?;
    Ok(io.flush().await?)
}

/// Why an answer was not written whole.
#[derive(Debug)]
enum AnswerFailed {
    /// Its body failed or did not match its length; `sent` says whether any of the answer had
    /// gone out (if not, another answer can take its place).
    Body { sent: bool },
    /// The client's socket failed.
    Io,
}

impl From<std::io::Error> for AnswerFailed {
    fn from(_: std::io::Error) -> Self {
        AnswerFailed::Io
    }
}

/// Writes `first` then `second`, in one vectored write when the stream takes them.
async fn write_both<I>(io: &mut I, mut first: &[u8], mut second: &[u8]) -> std::io::Result<()>
where
    I: AsyncWrite + Unpin,
{
    while !first.is_empty() {
        let slices = [std::io::IoSlice::new(first), std::io::IoSlice::new(second)];
        let n = io.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        match n.checked_sub(first.len()) {
            Some(into_second) => {
                first = &[];
                second = &second[into_second..];
            }
            None => first = &first[n..],
        }
    }
    io.write_all(second).await
}

/// Polls the body once, with a waker that does nothing: whatever it already holds is taken
/// now, and a body that must wait is polled again (with the task's waker) by the caller.
fn next_frame_now(
    body: &mut Body,
) -> Poll<Option<Result<http_body::Frame<Bytes>, crate::body::BoxError>>> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    Pin::new(body).poll_frame(&mut cx)
}

/// Appends the current `date` value (an IMF-fixdate), formatted at most once a second per
/// thread.
fn extend_date(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            *cached = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(cached.1.as_bytes());
    });
}

/// The connection's stream, with bytes already read from it put back in front: what hyper
/// reads after a handover.
pub(crate) struct Rewind<I> {
    prefix: Bytes,
    io: I,
}

impl<I> Rewind<I> {
    pub(crate) fn new(io: I, prefix: Bytes) -> Self {
        Rewind { prefix, io }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// The date line's value, blanked: it is the one thing two encodings may differ in.
    fn without_date(raw: &[u8]) -> String {
        String::from_utf8_lossy(raw)
            .split("\r\n")
            .map(|line| {
                if line.starts_with("date: ") {
                    "date: <now>"
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    /// A body fed by a channel.
    struct Channel(tokio::sync::mpsc::Receiver<http_body::Frame<Bytes>>);

    impl http_body::Body for Channel {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|frame| frame.map(Ok))
        }
    }

    /// A body that gives `first` at once, then fails (after waiting once, if `wait`).
    struct Failing {
        first: Option<Bytes>,
        wait: bool,
    }

    impl http_body::Body for Failing {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            if let Some(data) = self.first.take() {
                return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
            }
            if std::mem::take(&mut self.wait) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Some(Err(std::io::Error::other("broken framing"))))
        }
    }

    /// A body that fails, or ends short of its length, while all of the answer is still in
    /// hand is reported as not sent (the loop answers 502 instead); once the head went out,
    /// as sent (the loop can only close).
    #[tokio::test]
    async fn a_body_failing_before_anything_went_out_is_told_apart() {
        let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        for wait in [false, true] {
            let mut out = head.to_vec();
            let mut client = Vec::new();
            let mut body = Body::new(Failing {
                first: Some(Bytes::from("hello")),
                wait,
            });
            let written = write_body(
                &mut client,
                &mut out,
                &mut body,
                Framing::Chunked(Trailers::none()),
            )
            .await;
            match written {
                Err(AnswerFailed::Body { sent }) => assert_eq!(sent, wait),
                other => panic!("expected a body failure, got {other:?}"),
            }
            // Waiting flushed the head and the first chunk; failing at once wrote nothing.
            let expected: &[u8] = if wait { b"5\r\nhello\r\n" } else { b"" };
            let flushed = client.strip_prefix(&head[..]).unwrap_or(&client);
            assert_eq!(flushed, expected, "wait: {wait}");
            assert_eq!(client.is_empty(), !wait);
        }

        let mut out = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n".to_vec();
        let mut client = Vec::new();
        let mut body = Body::from("short");
        let written = write_body(&mut client, &mut out, &mut body, Framing::Length(10)).await;
        assert!(
            matches!(written, Err(AnswerFailed::Body { sent: false })),
            "{written:?}"
        );
        assert!(client.is_empty());
    }

    /// A body that is not at hand at once and has no known length: two pieces, then trailers.
    fn streamed() -> Body {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            let _ = tx.send(http_body::Frame::data(Bytes::from("hello "))).await;
            let _ = tx.send(http_body::Frame::data(Bytes::from("world"))).await;
            let mut trailers = HeaderMap::new();
            trailers.insert("x-sum", HeaderValue::from_static("1"));
            trailers.insert("x-undeclared", HeaderValue::from_static("2"));
            let _ = tx.send(http_body::Frame::trailers(trailers)).await;
        });
        Body::new(Channel(rx))
    }

    /// The pieces of [`streamed_large`]: large frames (past the copied size) around a small one.
    const LARGE_PIECES: [(u8, usize); 4] = [(b'a', 5000), (b'h', 2), (b'b', 9000), (b'c', 6000)];

    /// A body at hand at once, with no known length: large and small frames, then trailers.
    fn streamed_large() -> Body {
        let (tx, rx) = tokio::sync::mpsc::channel(LARGE_PIECES.len() + 1);
        for (byte, n) in LARGE_PIECES {
            let _ = tx.try_send(http_body::Frame::data(Bytes::from(vec![byte; n])));
        }
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", HeaderValue::from_static("1"));
        let _ = tx.try_send(http_body::Frame::trailers(trailers));
        Body::new(Channel(rx))
    }

    fn large_pieces_length() -> usize {
        LARGE_PIECES.iter().map(|(_, n)| n).sum()
    }

    type Case = (&'static str, fn() -> http::Response<Body>);

    fn cases() -> Vec<Case> {
        fn with(status: u16, fields: &[(&str, &str)], body: Body) -> http::Response<Body> {
            let mut r = http::Response::new(body);
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
            for (n, v) in fields {
                r.headers_mut().append(
                    HeaderName::from_bytes(n.as_bytes()).expect("name"),
                    HeaderValue::from_str(v).expect("value"),
                );
            }
            r
        }
        vec![
            ("200 with bytes", || {
                with(
                    200,
                    &[("content-type", "text/plain"), ("x-a", "1"), ("x-a", "2")],
                    Body::from("hi"),
                )
            }),
            ("200 with a length field", || {
                with(
                    200,
                    &[("content-length", "2"), ("server", "s")],
                    Body::from("hi"),
                )
            }),
            ("200 with a body past the copied size", || {
                // Written beside the head rather than copied after it.
                with(200, &[], Body::from("x".repeat(COPIED_BODY + 1)))
            }),
            ("empty 404", || {
                with(404, &[("x-why", "none")], Body::empty())
            }),
            ("empty with a stale length", || {
                with(503, &[("content-length", "19")], Body::empty())
            }),
            ("204 with a length and a body", || {
                with(204, &[("content-length", "2")], Body::from("no"))
            }),
            ("304", || with(304, &[("etag", "\"x\"")], Body::empty())),
            ("unknown status", || with(599, &[], Body::from("?"))),
            ("own date", || {
                with(
                    200,
                    &[("date", "Thu, 01 Jan 1970 00:00:00 GMT")],
                    Body::from("d"),
                )
            }),
            ("own connection close", || {
                with(400, &[("connection", "close")], Body::empty())
            }),
            ("streamed with declared trailers", || {
                with(200, &[("trailer", "x-sum")], streamed())
            }),
            ("streamed, nothing declared", || with(201, &[], streamed())),
            ("streamed under a length", || {
                with(200, &[("content-length", "11")], streamed())
            }),
            (
                "large frames at hand, chunked, with declared trailers",
                || with(200, &[("trailer", "x-sum")], streamed_large()),
            ),
            ("large frames at hand under a length", || {
                let length = large_pieces_length().to_string();
                with(200, &[("content-length", &length)], streamed_large())
            }),
        ]
    }

    /// What hyper's HTTP/1 server writes for `response` to `GET / HTTP/1.1` (with
    /// `connection: close` or `te: trailers` as asked). A request kept alive is followed by a
    /// second one that closes, so the connection ends when both answers are written.
    async fn hyper_writes(
        response: impl Fn() -> http::Response<Body> + Send + 'static,
        close: bool,
        te: bool,
    ) -> Vec<u8> {
        let (client, server) = tokio::io::duplex(1 << 16);
        let service = hyper::service::service_fn(move |_req| {
            let answer = response();
            async move { Ok::<_, std::convert::Infallible>(answer) }
        });
        let serving = tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(hyper_util::rt::TokioIo::new(server), service),
        );
        let (mut read, mut write) = tokio::io::split(client);
        let mut requests = format!(
            "GET / HTTP/1.1\r\nhost: h\r\n{}{}\r\n",
            if close { "connection: close\r\n" } else { "" },
            if te { "te: trailers\r\n" } else { "" },
        );
        if !close {
            requests.push_str("GET / HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n");
        }
        write
            .write_all(requests.as_bytes())
            .await
            .expect("write the requests");
        let mut raw = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            read.read_to_end(&mut raw),
        )
        .await
        .expect("hyper closes after the last answer")
        .expect("read to the end");
        serving.abort();
        raw
    }

    async fn lean_writes(
        response: impl Fn() -> http::Response<Body>,
        keep_alive: bool,
        te: bool,
    ) -> (Vec<u8>, bool) {
        let (mut parts, mut body) = response().into_parts();
        let mut out = Vec::new();
        let (framing, closing) = encode_head(
            &mut parts,
            &body,
            keep_alive,
            te,
            Style::default(),
            &mut out,
        );
        let mut sink = Vec::new();
        // A failed body leaves what was written; the connection would close.
        let _ = write_body(&mut sink, &mut out, &mut body, framing).await;
        (sink, closing)
    }

    #[tokio::test]
    async fn answers_are_encoded_byte_for_byte_as_hyper_encodes_them() {
        for (name, response) in cases() {
            for (keep_alive, te) in [(true, false), (false, false), (true, true)] {
                let hyper = hyper_writes(response, !keep_alive, te).await;
                let (mut lean, closing) = lean_writes(response, keep_alive, te).await;
                // The answer's own `connection: close` ends the connection as well.
                let second = keep_alive && !closing;
                if second {
                    lean.extend(lean_writes(response, false, false).await.0);
                }
                assert_eq!(
                    without_date(&lean),
                    without_date(&hyper),
                    "{name} (keep-alive: {keep_alive}, te: trailers: {te})"
                );
                let date_lines = |raw: &[u8]| without_date(raw).matches("date: ").count();
                assert_eq!(
                    date_lines(&lean),
                    if second { 2 } else { 1 },
                    "{name}: one date field an answer"
                );
                assert_eq!(closing, !keep_alive || name.contains("close"), "{name}");
            }
        }
    }

    /// An answer put together from parts the proxy's answers are made of: statuses with and
    /// without bodies, fields the encoder reads (`content-length`, `transfer-encoding`,
    /// `connection`, `trailer`, `date`) with values that agree with the body, and others;
    /// bodies empty, small, past the copied size, or streamed (small frames, or large and small
    /// frames at hand at once) with trailers.
    fn random_answer(
        rng: &mut fastrand::Rng,
    ) -> impl Fn() -> http::Response<Body> + Send + 'static {
        const STATUSES: &[u16] = &[200, 200, 201, 204, 206, 304, 404, 500, 599];
        const FIELDS: &[(&str, &str)] = &[
            ("content-type", "text/plain"),
            ("x-a", "1"),
            ("x-a", "2"),
            ("set-cookie", "a=1"),
            // The body's own length (hyper asserts, in debug builds, that a length it is
            // given matches a body of known size; the test below covers one that does not).
            ("content-length", "<the body's>"),
            // Not `transfer-encoding: gzip`: when hyper closes after such an answer, it
            // writes `, chunked` onto its `connection: close` line as well as onto the coding
            // (hyper 1.x). The loop writes it once; the test below covers that coding.
            ("transfer-encoding", "chunked"),
            ("connection", "close"),
            ("connection", "keep-alive"),
            ("trailer", "x-sum"),
            ("date", "Thu, 01 Jan 1970 00:00:00 GMT"),
            ("server", "s"),
        ];
        let status = STATUSES[rng.usize(..STATUSES.len())];
        // At most one framing field: hyper refuses an answer that sets both, or a length
        // twice, and writes nothing (the loop writes the answer framed once).
        let mut framed = false;
        let fields: Vec<(&str, &str)> = (0..rng.usize(..4))
            .map(|_| FIELDS[rng.usize(..FIELDS.len())])
            .filter(|(name, _)| {
                let framing = *name == "content-length" || *name == "transfer-encoding";
                !(framing && std::mem::replace(&mut framed, true))
            })
            .collect();
        let body = rng.u8(..5);
        move || {
            let (body, length) = match body {
                0 => (Body::empty(), 0),
                1 => (Body::from("hi"), 2),
                2 => (Body::from("x".repeat(5000)), 5000),
                3 => (streamed(), "hello world".len()),
                _ => (streamed_large(), large_pieces_length()),
            };
            let mut r = http::Response::new(body);
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            for (name, value) in &fields {
                let value = match *value {
                    "<the body's>" => HeaderValue::from(length),
                    v => HeaderValue::from_static(v),
                };
                r.headers_mut().append(*name, value);
            }
            r
        }
    }

    #[tokio::test]
    async fn generated_answers_are_encoded_byte_for_byte_as_hyper_encodes_them() {
        let mut rng = fastrand::Rng::with_seed(0x9102);
        for case in 0..1200 {
            let (keep_alive, te) = [(true, false), (false, false), (true, true)][case % 3];
            let answer = std::sync::Arc::new(random_answer(&mut rng));
            let shown = format!("{:?}", answer());
            let hyper = hyper_writes(
                {
                    let a = answer.clone();
                    move || a()
                },
                !keep_alive,
                te,
            )
            .await;
            let (mut lean, closing) = lean_writes(|| answer(), keep_alive, te).await;
            if keep_alive && !closing {
                lean.extend(lean_writes(|| answer(), false, false).await.0);
            }
            assert_eq!(
                without_date(&lean),
                without_date(&hyper),
                "{shown} (keep-alive: {keep_alive}, te: trailers: {te})"
            );
        }
    }

    #[tokio::test]
    async fn a_stale_length_beside_a_body_of_known_size_gives_way_to_the_body() {
        // A filter that replaced a body and kept the old `content-length`: once its answer is
        // settled (as every filter stack's is), the length of the bytes that go is written, by
        // the loop and by hyper alike, so nothing is left over for the client to read as a
        // next answer.
        for (stale, body) in [("2", "x".repeat(5000)), ("5000", "hi".to_string())] {
            let expected_length = body.len();
            let answer = move || {
                let mut r = http::Response::new(Body::from(body.clone()));
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from_static(stale));
                crate::proxy::settle_content_length(&mut r);
                r
            };
            let (lean, closing) = lean_writes(answer.clone(), true, false).await;
            assert!(!closing);
            let text = String::from_utf8_lossy(&lean);
            let (head, sent) = text.split_once("\r\n\r\n").expect("a head");
            assert!(
                head.contains(&format!("\r\ncontent-length: {expected_length}\r\n")),
                "{head}"
            );
            assert_eq!(sent.len(), expected_length);
            // Closing after it, byte for byte as hyper writes it (hyper, in a debug build,
            // asserts that a length agrees with a body of known size).
            let (lean, _) = lean_writes(answer.clone(), false, false).await;
            let hyper = hyper_writes(answer, true, false).await;
            assert_eq!(
                without_date(&lean),
                without_date(&hyper),
                "content-length {stale}"
            );
        }
        // A 204's or 304's length, and that of an answer without a body, stay as they are.
        for (status, body) in [(204, "hi"), (304, "hi"), (200, "")] {
            let mut r = http::Response::new(Body::from(body));
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("5000"));
            crate::proxy::settle_content_length(&mut r);
            assert_eq!(r.headers()[header::CONTENT_LENGTH], "5000", "{status}");
        }
    }

    #[tokio::test]
    async fn a_coding_that_is_not_chunked_gets_chunked_added() {
        // hyper appends the `, chunked` to the next special field's line as well (here
        // `connection: close, chunked`); this loop writes it once, on its own line.
        fn gzipped() -> http::Response<Body> {
            let mut r = http::Response::new(streamed());
            r.headers_mut()
                .insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        let (lean, closing) = lean_writes(gzipped, false, false).await;
        assert!(closing);
        assert_eq!(
            without_date(&lean),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\
             date: <now>\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"
        );
    }

    fn parse(raw: &[u8]) -> (Parsed, BytesMut) {
        let mut buf = BytesMut::from(raw);
        let parsed = parse_request(&mut buf, super::super::HYPER_MAX_HEADERS, &mut None);
        (parsed, buf)
    }

    #[tokio::test]
    async fn plain_requests_are_parsed_and_consumed_up_to_the_next_one() {
        let (parsed, rest) = parse(
            b"GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-Two: 1\r\nx-two: 2\r\nContent-Length: 0\r\nConnection: keep-alive, Close\r\n\r\nGET /next",
        );
        let Parsed::Request(req, asked) = parsed else {
            panic!("a plain GET is served here");
        };
        assert!(asked.close, "`close` among the connection tokens");
        assert!(!asked.trailers);
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri(), "/a/b?c=d");
        assert_eq!(req.version(), Version::HTTP_11);
        assert_eq!(req.headers()["host"], "example.com");
        let twos: Vec<_> = req.headers().get_all("x-two").iter().collect();
        assert_eq!(twos, ["1", "2"]);
        assert!(req.body().is_end_stream());
        assert_eq!(&rest[..], b"GET /next", "the next request stays");

        let (parsed, rest) = parse(b"DELETE /x HTTP/1.1\r\nhost: h\r\nTE: gzip, Trailers\r\n\r\n");
        assert!(matches!(
            parsed,
            Parsed::Request(
                _,
                Asked {
                    close: false,
                    trailers: true
                }
            )
        ));
        assert!(rest.is_empty());

        // More fields than are kept on the stack.
        let many: String = (0..40).map(|i| format!("x-f{i}: {i}\r\n")).collect();
        let (parsed, _) = parse(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
        let Parsed::Request(req, _) = parsed else {
            panic!("40 fields are within the limit");
        };
        assert_eq!(req.headers().len(), 40);
        assert_eq!(req.headers()["x-f39"], "39");

        // A small body that came with its head is served here, and only its bytes are taken.
        let (parsed, rest) =
            parse(b"POST /form HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\n\r\nhelloGET /next");
        let Parsed::Request(req, _) = parsed else {
            panic!("a POST whose body is all there is served here");
        };
        assert_eq!(req.body().as_bytes(), Some(&b"hello"[..]));
        assert_eq!(req.headers()["content-length"], "5");
        assert_eq!(&rest[..], b"GET /next");

        let (parsed, rest) = parse(b"GET /x HTTP/1.1\r\nhost: h\r\nx-part");
        assert!(matches!(parsed, Parsed::Partial));
        assert_eq!(&rest[..], b"GET /x HTTP/1.1\r\nhost: h\r\nx-part");
    }

    /// What a service is handed of a request: method, target, version, fields in order, body.
    #[derive(Debug, PartialEq)]
    struct Seen {
        method: String,
        target: String,
        version: Version,
        fields: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    }

    fn seen(parts: &http::request::Parts, body: &[u8]) -> Seen {
        Seen {
            method: parts.method.to_string(),
            target: parts.uri.to_string(),
            version: parts.version,
            fields: parts
                .headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                .collect(),
            body: body.to_vec(),
        }
    }

    /// The first request hyper's HTTP/1 server hands its service when a client sends `raw`
    /// and then closes its side, if hyper takes one.
    async fn hyper_reads(raw: &[u8]) -> Option<Seen> {
        let (mut client, server) = tokio::io::duplex(1 << 17);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let tx = tx.clone();
            async move {
                let (parts, body) = req.into_parts();
                if let Ok(body) = body.collect().await {
                    let _ = tx.send(seen(&parts, &body.to_bytes()));
                }
                Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
            }
        });
        // Half-closes allowed: the client's end of input must not cancel its request.
        let serving = tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .serve_connection(hyper_util::rt::TokioIo::new(server), service),
        );
        client.write_all(raw).await.expect("write the request");
        client.shutdown().await.expect("close the client's side");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), serving).await;
        rx.try_recv().ok()
    }

    /// A request head put together from parts a client may get right or wrong: methods,
    /// targets and versions this loop serves and others, fields it reads (`content-length`,
    /// `connection`, `te`) or hands over (`transfer-encoding`, `expect`, `upgrade`), names and
    /// values of any case with stray whitespace, control bytes and obs-text, lengths that do
    /// or do not match the body, bare LF line ends; sometimes cut short, sometimes followed
    /// by a next request.
    fn random_request(rng: &mut fastrand::Rng) -> Vec<u8> {
        // Each part is one of those the loop may serve, and now and then one it must not.
        const METHODS: (&[&str], &[&str]) = (
            &[
                "GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "M-SEARCH",
            ],
            &["HEAD", "CONNECT", "G\x01T", ""],
        );
        const TARGETS: (&[&str], &[&str]) = (
            &[
                "/",
                "/a/b?c=d",
                "/%2e%2e/x",
                "//x",
                "/a%2Fb",
                "/?q=%",
                "/a/./b/../c",
            ],
            &[
                "*",
                "http://h/x",
                "/a b",
                "/\x7f",
                "/\u{e9}",
                "/a#frag",
                "h:443",
                "",
            ],
        );
        const VERSIONS: (&[&str], &[&str]) = (
            &["HTTP/1.1"],
            &["HTTP/1.0", "HTTP/2.0", "HTTP/1.2", "http/1.1"],
        );
        const NAMES: (&[&str], &[&str]) = (
            &[
                "Host",
                "host",
                "HOST",
                "Content-Length",
                "content-length",
                "CONTENT-LENGTH",
                "Connection",
                "connection",
                "TE",
                "Te",
                "X-Custom",
                "x-custom",
                "X_Under",
                "Accept",
                "User-Agent",
                "Cookie",
                "Authorization",
            ],
            &[
                "Transfer-Encoding",
                "Expect",
                "Upgrade",
                "bad name",
                "",
                "X:Y",
                "X-\u{80}",
            ],
        );
        const SEPARATORS: (&[&str], &[&str]) = (&[": ", ":", ":\t", ":  "], &[" : "]);
        const VALUES: (&[&str], &[&str]) = (
            &[
                "",
                "h",
                "  padded  ",
                "a\tb",
                "\u{80}\u{ff}",
                "1",
                "0",
                "01",
                "5",
                "3",
                "close",
                "keep-alive, Close",
                "trailers",
                "gzip, Trailers",
                "tab\t",
            ],
            &[
                "ctl\x01",
                "+1",
                "1, 1",
                "18446744073709551616",
                "chunked",
                "gzip, chunked",
                "100-continue",
                "websocket",
                "del\x7f",
            ],
        );
        use crate::head::generated::pick;
        let eol = if rng.u8(..6) == 0 { "\n" } else { "\r\n" };
        let mut raw = format!(
            "{} {} {}{eol}",
            pick(rng, METHODS),
            pick(rng, TARGETS),
            pick(rng, VERSIONS)
        );
        for _ in 0..rng.usize(..7) {
            raw.push_str(pick(rng, NAMES));
            raw.push_str(pick(rng, SEPARATORS));
            raw.push_str(pick(rng, VALUES));
            raw.push_str(eol);
        }
        raw.push_str(eol);
        let mut raw = raw.into_bytes();
        raw.extend((0..rng.usize(..8)).map(|_| rng.alphanumeric() as u8));
        match rng.u8(..8) {
            0 => raw.truncate(rng.usize(..raw.len())),
            1 => raw.extend_from_slice(b"GET /next HTTP/1.1\r\nhost: h\r\n\r\n"),
            _ => {}
        }
        raw
    }

    #[tokio::test]
    async fn whatever_the_loop_serves_it_reads_as_hyper_does() {
        // The loop serves only requests hyper would serve, and reads them as hyper would:
        // the same method, target, version, fields in order and body. What it does not serve
        // goes to hyper untouched, and a head it calls incomplete is one hyper takes nothing
        // from either.
        let mut rng = fastrand::Rng::with_seed(0x9100);
        let (mut served, mut handed_over, mut partial) = (0, 0, 0);
        for _ in 0..3000 {
            let raw = random_request(&mut rng);
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let (parsed, rest) = parse(&raw);
            match parsed {
                Parsed::Request(req, _) => {
                    served += 1;
                    let (parts, body) = req.into_parts();
                    let ours = seen(&parts, body.as_bytes().unwrap_or_default());
                    assert_eq!(hyper_reads(&raw).await.as_ref(), Some(&ours), "{shown:?}");
                    assert!(raw.ends_with(&rest), "{shown:?}: only the request is taken");
                }
                Parsed::Unusual => {
                    handed_over += 1;
                    assert_eq!(&rest[..], &raw[..], "{shown:?}: nothing is consumed");
                }
                Parsed::Partial => {
                    partial += 1;
                    assert_eq!(&rest[..], &raw[..], "{shown:?}: nothing is consumed");
                    assert_eq!(hyper_reads(&raw).await, None, "{shown:?}");
                }
            }
        }
        // The inputs reach every outcome, often.
        assert!(
            served > 600 && handed_over > 600 && partial > 150,
            "served {served}, handed over {handed_over}, incomplete {partial}"
        );
    }

    #[tokio::test]
    async fn anything_else_is_left_whole_for_hyper() {
        let unusual: [&[u8]; 15] = [
            b"POST /x HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\n\r\nabc",
            b"POST /x HTTP/1.1\r\nhost: h\r\ncontent-length: 3, 3\r\n\r\nabc",
            b"POST /x HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST /x HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\ntransfer-encoding: chunked\r\n\r\n",
            b"GET /x HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\ncontent-length: 0\r\n\r\n",
            b"GET /x HTTP/1.1\r\nhost: h\r\ncontent-length: +0\r\n\r\n",
            b"GET /x HTTP/1.1\r\nhost: h\r\nexpect: 100-continue\r\n\r\n",
            b"GET /chat HTTP/1.1\r\nhost: h\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            b"GET /x HTTP/1.0\r\nhost: h\r\n\r\n",
            b"HEAD /x HTTP/1.1\r\nhost: h\r\n\r\n",
            b"CONNECT h:443 HTTP/1.1\r\nhost: h:443\r\n\r\n",
            b"GET http://h/x HTTP/1.1\r\nhost: h\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nhost: h\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET /x HTTP/1.1\r\nbad header: 1\r\n\r\n",
        ];
        for raw in unusual {
            let (parsed, rest) = parse(raw);
            assert!(
                matches!(parsed, Parsed::Unusual),
                "{:?} is hyper's to serve",
                String::from_utf8_lossy(raw)
            );
            assert_eq!(&rest[..], raw, "nothing is consumed");
        }
        // A body over the limit, though it is all there.
        let mut big = b"POST /x HTTP/1.1\r\nhost: h\r\ncontent-length: 65537\r\n\r\n".to_vec();
        big.resize(big.len() + 65537, b'x');
        let (parsed, rest) = parse(&big);
        assert!(matches!(parsed, Parsed::Unusual));
        assert_eq!(&rest[..], &big[..]);
        // Over the listener's header count: hyper answers it (431).
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n"[..]);
        assert!(matches!(
            parse_request(&mut buf, 2, &mut None),
            Parsed::Unusual
        ));
        assert_eq!(buf.len(), 36);
    }

    /// A stream that takes at most three bytes a write, vectored or not.
    struct Trickle(Vec<u8>, bool);

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut left = 3;
            for b in bufs {
                let n = b.len().min(left);
                self.0.extend_from_slice(&b[..n]);
                left -= n;
            }
            Poll::Ready(Ok(3 - left))
        }

        fn is_write_vectored(&self) -> bool {
            self.1
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn head_and_body_survive_short_writes() {
        for vectored in [true, false] {
            let mut stream = Trickle(Vec::new(), vectored);
            write_both(&mut stream, b"head:", b"the body")
                .await
                .expect("written");
            assert_eq!(stream.0, b"head:the body", "vectored: {vectored}");
        }
    }

    #[tokio::test]
    async fn rewind_reads_the_kept_bytes_first() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b" world").await.expect("write");
        drop(client);
        let mut rewound = Rewind::new(server, Bytes::from_static(b"hello"));
        let mut all = String::new();
        rewound.read_to_string(&mut all).await.expect("read");
        assert_eq!(all, "hello world");
        let _ = BodyExt::collect(Body::empty()).await;
    }
}

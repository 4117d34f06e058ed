//! What the two HTTP/1 sides share: the server loop's (requests in, answers out) and the
//! upstream client's (requests out, responses in): head parsing, and how much write room a
//! connection keeps.

use http::header::{self, HeaderName, InvalidHeaderName};

/// The most room a connection's write buffer keeps between messages: after a larger head or
/// body (or an answer's many small frames) it is let go, so an idle connection holds little.
pub(crate) const OUT_KEPT: usize = 16 * 1024;

/// How many fields' places a parser keeps on the stack; a head with more puts them on the
/// heap. Zeroing room for the most fields a head may have (100 or more) cost more than the
/// rest of the parse.
const FIELDS_ON_STACK: usize = 16;

/// Room for the places of `count` fields: in `inline` when they fit, else in `heap`.
pub(crate) fn field_room<'a, T: Copy + Default>(
    inline: &'a mut [T; FIELDS_ON_STACK],
    heap: &'a mut Vec<T>,
    count: usize,
) -> &'a mut [T] {
    if count <= inline.len() {
        &mut inline[..count]
    } else {
        heap.resize(count, T::default());
        &mut heap[..]
    }
}

/// Whether a `Transfer-Encoding` value ends with `chunked` (the body is chunked then).
pub(crate) fn ends_chunked(value: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .next_back()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// What a `Connection` value says, read in one pass over its options (any case).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ConnectionOptions {
    /// It lists `close`.
    pub(crate) close: bool,
    /// It lists `keep-alive`.
    pub(crate) keep_alive: bool,
    /// It names a field that must go with it: an option other than `close` and the names of
    /// the hop-by-hop fields (which go anyway).
    pub(crate) names_other_field: bool,
}

/// Reads a `Connection` value's options. Runs for the `Connection` field of every upstream
/// answer (usually `keep-alive`), so it looks at each option once.
pub(crate) fn connection_options(value: &[u8]) -> ConnectionOptions {
    let mut options = ConnectionOptions::default();
    for option in value.split(|b| *b == b',') {
        let option = option.trim_ascii();
        if option.eq_ignore_ascii_case(b"keep-alive") {
            options.keep_alive = true;
        } else if option.eq_ignore_ascii_case(b"close") {
            options.close = true;
        } else if !crate::proxy::names_no_other_field(option) {
            options.names_other_field = true;
        }
    }
    options
}

/// Whether a comma-separated field value (`Connection`, `TE`) lists `token`, in any case.
pub(crate) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// A `Content-Length` value: digits only (RFC 9110 8.6, `1*DIGIT`), with the optional
/// whitespace around it; `None` for anything else (a sign, a list, a number past `u64`), as
/// hyper refuses those too.
pub(crate) fn content_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// A field name as `HeaderName::from_bytes` reads it, through a switch on the usual names as
/// servers and clients spell them (`Content-Type` or `content-type`) first: for those it
/// costs a length switch and a comparison or two instead of a copy lowercased byte by byte
/// and a search of the standard names, about 45 instructions instead of 120. Every field of
/// every proxied message comes through here.
pub(crate) fn field_name(raw: &[u8]) -> Result<HeaderName, InvalidHeaderName> {
    let known = match raw.len() {
        4 => match raw {
            b"Date" | b"date" => Some(header::DATE),
            b"Host" | b"host" => Some(header::HOST),
            b"ETag" | b"etag" => Some(header::ETAG),
            b"Vary" | b"vary" => Some(header::VARY),
            _ => None,
        },
        6 => match raw {
            b"Server" | b"server" => Some(header::SERVER),
            b"Accept" | b"accept" => Some(header::ACCEPT),
            b"Cookie" | b"cookie" => Some(header::COOKIE),
            _ => None,
        },
        10 => match raw {
            b"Connection" | b"connection" => Some(header::CONNECTION),
            b"User-Agent" | b"user-agent" => Some(header::USER_AGENT),
            b"Set-Cookie" | b"set-cookie" => Some(header::SET_COOKIE),
            _ => None,
        },
        12 => match raw {
            b"Content-Type" | b"content-type" => Some(header::CONTENT_TYPE),
            _ => None,
        },
        13 => match raw {
            b"Last-Modified" | b"last-modified" => Some(header::LAST_MODIFIED),
            b"Accept-Ranges" | b"accept-ranges" => Some(header::ACCEPT_RANGES),
            b"Cache-Control" | b"cache-control" => Some(header::CACHE_CONTROL),
            b"Authorization" | b"authorization" => Some(header::AUTHORIZATION),
            _ => None,
        },
        14 => match raw {
            b"Content-Length" | b"content-length" => Some(header::CONTENT_LENGTH),
            _ => None,
        },
        15 => match raw {
            b"Accept-Encoding" | b"accept-encoding" => Some(header::ACCEPT_ENCODING),
            b"Accept-Language" | b"accept-language" => Some(header::ACCEPT_LANGUAGE),
            _ => None,
        },
        16 => match raw {
            b"Content-Encoding" | b"content-encoding" => Some(header::CONTENT_ENCODING),
            _ => None,
        },
        17 => match raw {
            b"Transfer-Encoding" | b"transfer-encoding" => Some(header::TRANSFER_ENCODING),
            _ => None,
        },
        _ => None,
    };
    match known {
        Some(name) => Ok(name),
        None => HeaderName::from_bytes(raw),
    }
}

/// Room on the stack for [`field_room`].
pub(crate) fn inline_room<T: Copy + Default>() -> [T; FIELDS_ON_STACK] {
    [T::default(); FIELDS_ON_STACK]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_length_is_digits_only() {
        for (value, length) in [
            (&b"0"[..], Some(0)),
            (b"1024", Some(1024)),
            (b" 5\t", Some(5)),
            (b"007", Some(7)),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"18446744073709551616", None),
            (b"+5", None),
            (b"-1", None),
            (b"5, 5", None),
            (b"5 5", None),
            (b"", None),
            (b"  ", None),
            (b"0x10", None),
            (b"\xd9\xa3", None),
        ] {
            assert_eq!(content_length(value), length, "{value:?}");
        }
    }

    #[test]
    fn connection_options_are_read_as_tokens_in_any_case() {
        let read = |value: &[u8]| {
            let o = connection_options(value);
            (o.close, o.keep_alive, o.names_other_field)
        };
        for (value, expected) in [
            (&b"keep-alive"[..], (false, true, false)),
            (b"Keep-Alive", (false, true, false)),
            (b"close", (true, false, false)),
            (b" CLOSE , keep-alive", (true, true, false)),
            (b"x-closed", (false, false, true)),
            (b"x-keep-alive", (false, false, true)),
            (b"Upgrade, TE", (false, false, false)),
            (b"keep-alive, X-Hop", (false, true, true)),
            (b"", (false, false, false)),
            (b",,", (false, false, false)),
        ] {
            assert_eq!(
                read(value),
                expected,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn a_few_fields_stay_inline_and_more_go_to_the_heap() {
        let mut inline = inline_room::<u32>();
        let mut heap = Vec::new();
        assert_eq!(field_room(&mut inline, &mut heap, 3).len(), 3);
        assert!(heap.is_empty());
        assert_eq!(field_room(&mut inline, &mut heap, 40).len(), 40);
        assert_eq!(heap.len(), 40);
    }

    #[test]
    fn a_usual_field_name_is_the_name_from_bytes_reads() {
        let usual = [
            "Date",
            "Host",
            "ETag",
            "Vary",
            "Server",
            "Accept",
            "Cookie",
            "Connection",
            "User-Agent",
            "Set-Cookie",
            "Content-Type",
            "Last-Modified",
            "Accept-Ranges",
            "Cache-Control",
            "Authorization",
            "Content-Length",
            "Accept-Encoding",
            "Accept-Language",
            "Content-Encoding",
            "Transfer-Encoding",
        ];
        for name in usual {
            for spelling in [
                name.to_string(),
                name.to_ascii_lowercase(),
                name.to_ascii_uppercase(),
            ] {
                let expected = HeaderName::from_bytes(spelling.as_bytes()).expect("a name");
                assert_eq!(
                    field_name(spelling.as_bytes()).ok(),
                    Some(expected),
                    "{spelling}"
                );
            }
        }
        // Names off the list, of the list's lengths or not, and names that are not names.
        for raw in [
            &b"x-custom"[..],
            b"Keep-Alive",
            b"X-Request-Id",
            b"Content-Typo",
            b"Dat\xe9",
            b"",
            b"Content Type",
        ] {
            assert_eq!(
                field_name(raw).ok(),
                HeaderName::from_bytes(raw).ok(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}

/// What the tests that generate HTTP messages for the parsers share.
#[cfg(test)]
pub(crate) mod generated {
    /// A part of a generated message: one of the `usual` ones, and one time in 16 one of
    /// the `unusual` ones.
    pub(crate) fn pick(
        rng: &mut fastrand::Rng,
        (usual, unusual): (&[&'static str], &[&'static str]),
    ) -> &'static str {
        let from = if rng.u8(..16) == 0 { unusual } else { usual };
        from[rng.usize(..from.len())]
    }
}

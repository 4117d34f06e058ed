//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load balancer in front of
//! the proxy sends first, carrying the original client address; and the one the proxy sends
//! to an upstream whose cluster asks for it ([`header`]).
//!
//! ```
//! use gloo_proxy::proxy_protocol::read_header;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! // Any `AsyncRead` will do (the accepted `TcpStream`; bytes here). Version 1: a text line.
//! let mut stream: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n";
//! let client = read_header(&mut stream).await?;
//! assert_eq!(client, Some("192.0.2.1:56324".parse().expect("an address")));
//! // Only the header is read: the request follows.
//! assert_eq!(stream, b"GET / HTTP/1.1\r\n");
//!
//! // Version 2: binary, here a TCP over IPv4 address block (10.0.0.7:8080 to 10.0.0.1:80).
//! let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
//! header.extend_from_slice(&[0x21, 0x11, 0, 12]);
//! header.extend_from_slice(&[10, 0, 0, 7, 10, 0, 0, 1, 0x1f, 0x90, 0, 80]);
//! let client = read_header(&mut header.as_slice()).await?;
//! assert_eq!(client, Some("10.0.0.7:8080".parse().expect("an address")));
//!
//! // A balancer's own health check (v1 `UNKNOWN`, v2 `LOCAL`) names no client.
//! let mut health_check: &[u8] = b"PROXY UNKNOWN\r\n";
//! assert_eq!(read_header(&mut health_check).await?, None);
//! // A connection without the header is refused.
//! let mut plain: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
//! assert!(read_header(&mut plain).await.is_err());
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// Reads a PROXY protocol header (v1 or v2) from the start of a connection, reading no more
/// than the header. Returns the client address it names (`None` for `UNKNOWN` / `LOCAL`).
pub async fn read_header<R: AsyncRead + Unpin>(stream: &mut R) -> io::Result<Option<SocketAddr>> {
    let mut start = [0u8; 12];
    stream.read_exact(&mut start[..6]).await?;
    if &start[..6] == b"PROXY " {
        // v1: a text line of at most 107 bytes ending in CRLF.
        let mut line = Vec::with_capacity(107);
        line.extend_from_slice(&start[..6]);
        loop {
            let b = stream.read_u8().await?;
            line.push(b);
            if line.ends_with(b"\r\n") {
                break;
            }
            if line.len() >= 107 {
                return Err(invalid("PROXY v1 header longer than 107 bytes"));
            }
        }
        return parse_v1(&line[..line.len() - 2]);
    }
    stream.read_exact(&mut start[6..]).await?;
    if start != V2_SIGNATURE {
        return Err(invalid(
            "connection does not start with a PROXY protocol header",
        ));
    }
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await?;
    let version_command = head[0];
    if version_command >> 4 != 2 {
        return Err(invalid("unsupported PROXY protocol version"));
    }
    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    if version_command & 0x0f == 0 {
        // LOCAL: a health check from the balancer itself.
        return Ok(None);
    }
    match head[1] >> 4 {
        1 if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        2 if body.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            Ok(Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                port,
            )))
        }
        0 => Ok(None),
        _ => Err(invalid(
            "PROXY v2 address block too short or unsupported family",
        )),
    }
}

fn parse_v1(line: &[u8]) -> io::Result<Option<SocketAddr>> {
    let text = std::str::from_utf8(line).map_err(|_| invalid("PROXY v1 header is not text"))?;
    let parts: Vec<&str> = text.split(' ').collect();
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        ["PROXY", family @ ("TCP4" | "TCP6"), src, _dst, sport, _dport] => {
            let ip: IpAddr = src
                .parse()
                .map_err(|_| invalid("bad PROXY v1 source address"))?;
            if (*family == "TCP4") != ip.is_ipv4() {
                return Err(invalid("PROXY v1 address does not match its family"));
            }
            let port: u16 = sport
                .parse()
                .map_err(|_| invalid("bad PROXY v1 source port"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(invalid("malformed PROXY v1 header")),
    }
}

/// The PROXY protocol version a cluster speaks to its endpoints (Envoy's
/// `envoy.transport_sockets.upstream_proxy_protocol` transport socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The text header.
    V1,
    /// The binary header.
    V2,
}

/// The downstream connection a request came on, as a PROXY protocol header describes it to
/// an upstream: its source (the client, or the address a PROXY header in front of the proxy
/// named) and its destination (the address the client connected to). Upstream connections
/// carry one origin each, so they are pooled by it, as Envoy pools them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The client.
    pub source: SocketAddr,
    /// The address the client connected to.
    pub destination: SocketAddr,
}

/// The header an upstream connection starts with for `origin`; `None`, for a connection of
/// the proxy's own (a health check, a shadowed request), gives v1's `UNKNOWN` or v2's
/// `LOCAL` command, as Envoy sends them.
///
/// ```
/// use gloo_proxy::proxy_protocol::{header, Origin, Version};
/// let origin = Origin {
///     source: "192.0.2.1:56324".parse().unwrap(),
///     destination: "198.51.100.1:443".parse().unwrap(),
/// };
/// assert_eq!(
///     header(Version::V1, Some(origin)),
///     b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n"
/// );
/// assert_eq!(header(Version::V1, None), b"PROXY UNKNOWN\r\n");
/// let v2 = header(Version::V2, Some(origin));
/// assert_eq!(&v2[12..16], &[0x21, 0x11, 0, 12]);
/// assert_eq!(&v2[16..], &[192, 0, 2, 1, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb]);
/// ```
pub fn header(version: Version, origin: Option<Origin>) -> Vec<u8> {
    // An IPv4 client seen on an IPv6 socket is an IPv4 client; a pair still of two families
    // is written as IPv6 (the v4 side mapped).
    let origin = origin.map(|o| {
        let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        let (source, destination) = (canonical(o.source), canonical(o.destination));
        match (source.ip(), destination.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                (source, destination)
            }
            _ => {
                let v6 = |a: SocketAddr| match a.ip() {
                    IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), a.port()),
                    IpAddr::V6(_) => a,
                };
                (v6(source), v6(destination))
            }
        }
    });
    match (version, origin) {
        (Version::V1, None) => b"PROXY UNKNOWN\r\n".to_vec(),
        (Version::V1, Some((source, destination))) => {
            let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
            format!(
                "PROXY {family} {} {} {} {}\r\n",
                source.ip(),
                destination.ip(),
                source.port(),
                destination.port()
            )
            .into_bytes()
        }
        (Version::V2, None) => {
            let mut out = V2_SIGNATURE.to_vec();
            // Version 2, LOCAL; unspecified family; no addresses.
            out.extend_from_slice(&[0x20, 0x00, 0, 0]);
            out
        }
        (Version::V2, Some((source, destination))) => {
            let mut out = V2_SIGNATURE.to_vec();
            match (source.ip(), destination.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    out.extend_from_slice(&[0x21, 0x11, 0, 12]);
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                }
                (s, d) => {
                    let v6 = |ip: IpAddr| match ip {
                        IpAddr::V6(ip) => ip.octets(),
                        IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
                    };
                    out.extend_from_slice(&[0x21, 0x21, 0, 36]);
                    out.extend_from_slice(&v6(s));
                    out.extend_from_slice(&v6(d));
                }
            }
            out.extend_from_slice(&source.port().to_be_bytes());
            out.extend_from_slice(&destination.port().to_be_bytes());
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_headers_written_read_back_as_their_origin() {
        for (source, destination) in [
            ("192.0.2.1:56324", "198.51.100.1:443"),
            ("[2001:db8::1]:4000", "[2001:db8::2]:8443"),
            ("[::ffff:192.0.2.9]:4000", "198.51.100.1:80"),
        ] {
            let origin = Origin {
                source: source.parse().expect("source"),
                destination: destination.parse().expect("destination"),
            };
            for version in [Version::V1, Version::V2] {
                let written = header(version, Some(origin));
                let read = read_header(&mut written.as_slice())
                    .await
                    .expect("our own header parses");
                let want = SocketAddr::new(origin.source.ip().to_canonical(), origin.source.port());
                assert_eq!(read, Some(want), "{version:?} {source}");
            }
        }
        for version in [Version::V1, Version::V2] {
            let written = header(version, None);
            assert_eq!(
                read_header(&mut written.as_slice()).await.expect("parses"),
                None
            );
        }
    }

    #[tokio::test]
    async fn v1_and_v2_headers_give_the_client_address_and_nothing_more() {
        let mut v1: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET /";
        let addr = read_header(&mut v1).await.expect("v1 parses");
        assert_eq!(addr, Some("192.0.2.1:56324".parse().expect("addr")));
        assert_eq!(v1, b"GET /");

        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[
            0x21, 0x11, 0, 12, 10, 0, 0, 7, 10, 0, 0, 1, 0x1f, 0x90, 0, 80,
        ]);
        v2.extend_from_slice(b"GET /");
        let mut reader: &[u8] = &v2;
        let addr = read_header(&mut reader).await.expect("v2 parses");
        assert_eq!(addr, Some("10.0.0.7:8080".parse().expect("addr")));
        assert_eq!(reader, b"GET /");
    }

    #[tokio::test]
    async fn garbage_is_rejected() {
        let mut plain: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        assert!(read_header(&mut plain).await.is_err());
        let mut mismatched: &[u8] = b"PROXY TCP6 192.0.2.1 198.51.100.1 1 2\r\n";
        assert!(read_header(&mut mismatched).await.is_err());
    }
}

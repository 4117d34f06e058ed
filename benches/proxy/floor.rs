//! The floor of an HTTP/1 proxy on tokio, for `cpu_split.sh FLOOR=1`: what a proxy costs in
//! user space when it does nothing but forward. One current-thread runtime, a task per client
//! connection, one upstream connection per client connection, heads parsed with httparse and
//! copied as bytes, `Content-Length` bodies only; no routing, no header rules, no timeouts, no
//! statistics. It is an experiment to size the gap between gloo's request path and the runtime
//! underneath it, not a proxy: anything it does not understand closes the connection.
//!
//! ```text
//! proxy_floor LISTEN_ADDR UPSTREAM_ADDR
//! ```
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: proxy_floor LISTEN_ADDR UPSTREAM_ADDR";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstream: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        loop {
            let (client, _) = listener.accept().await?;
            tokio::spawn(async move {
                match serve(client, upstream).await {
                    // wrk resets its connections when it stops.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                    Err(e) => eprintln!("proxy_floor: connection ended: {e}"),
                    Ok(()) => {}
                }
            });
        }
    })
}

/// Reads into `buf` until it holds a whole head; false when the peer closed first.
async fn read_head(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<bool> {
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(true);
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// One client connection: request heads forwarded as they came (less `connection`), each
/// answer (head and `Content-Length` body) copied back.
async fn serve(mut client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut to_upstream: Option<TcpStream> = None;
    let mut request = BytesMut::with_capacity(8192);
    let mut response = BytesMut::with_capacity(16384);
    let mut head = Vec::with_capacity(8192);
    loop {
        if !read_head(&mut client, &mut request).await? {
            return Ok(());
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        let length = match parsed.parse(&request) {
            Ok(httparse::Status::Complete(length)) => length,
            _ => return Err(invalid("request head")),
        };
        let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
            return Err(invalid("request line"));
        };
        if parsed.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("content-length")
                || h.name.eq_ignore_ascii_case("transfer-encoding")
        }) {
            return Err(invalid("a request body (not supported here)"));
        }
        head.clear();
        head.extend_from_slice(method.as_bytes());
        head.push(b' ');
        head.extend_from_slice(path.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        for header in parsed.headers.iter() {
            if !header.name.eq_ignore_ascii_case("connection") {
                head.extend_from_slice(header.name.as_bytes());
                head.extend_from_slice(b": ");
                head.extend_from_slice(header.value);
                head.extend_from_slice(b"\r\n");
            }
        }
        head.extend_from_slice(b"\r\n");
        let _ = request.split_to(length);
        let stream = match &mut to_upstream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(upstream).await?;
                stream.set_nodelay(true)?;
                to_upstream.insert(stream)
            }
        };
        stream.write_all(&head).await?;
        response.clear();
        if !read_head(stream, &mut response).await? {
            return Err(invalid("upstream closed before answering"));
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut headers);
        let length = match parsed.parse(&response) {
            Ok(httparse::Status::Complete(length)) => length,
            _ => return Err(invalid("response head")),
        };
        let body: usize = match parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        {
            Some(h) => std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| invalid("content-length"))?,
            None => return Err(invalid("a response without content-length")),
        };
        while response.len() < length + body {
            if stream.read_buf(&mut response).await? == 0 {
                return Err(invalid("upstream closed mid-body"));
            }
        }
        client.write_all(&response[..length + body]).await?;
    }
}

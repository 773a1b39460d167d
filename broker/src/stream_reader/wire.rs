//! The data plane of [`super::StreamReader`]: one plain-TCP NATS connection
//! that subscribes, answers the server's PINGs and parses deliveries out of
//! its read buffer without copying them (a delivery's payload is a slice of
//! the buffer it arrived in).
//!
//! Why not async-nats here: its connection task parses every message into a
//! `HeaderMap`, owned subjects and a channel send, which was a quarter of a
//! replay's CPU; this reader only needs each delivery's reply subject and
//! payload.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::ServerAddr;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::ReaderError;
use crate::NatsAuth;

/// The connection's transport: plain TCP until the server's INFO, then TLS
/// when either side requires it.
enum Socket {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only between taking the TCP stream and wrapping it.
    Upgrading,
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Socket::Upgrading => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, data),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
            Socket::Upgrading => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Socket::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Socket::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// Longer control lines are a protocol error (the server's own limit is 4 KiB).
const MAX_CONTROL_LINE: usize = 4096;
/// The read buffer grows by this much: hundreds of deliveries per read.
const READ_CHUNK: usize = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One operation the server sent.
#[derive(Debug, PartialEq)]
pub(super) enum Op {
    Msg(Msg),
    Ping,
    Pong,
    Ok,
    Info(Bytes),
    Err(String),
}

/// A `MSG` or `HMSG`: a delivery, a heartbeat or a flow-control request.
#[derive(Debug, PartialEq)]
pub(super) struct Msg {
    pub sid: u64,
    /// Empty when the message has no reply subject.
    pub reply: Bytes,
    /// The header block (`NATS/1.0 ...\r\n...`), empty for a `MSG`.
    pub headers: Bytes,
    pub payload: Bytes,
}

impl Msg {
    /// The status code of a status message (`NATS/1.0 100 Idle Heartbeat`).
    pub fn status(&self) -> Option<u16> {
        let line = self.headers.split(|b| *b == b'\r').next()?;
        let code = line.strip_prefix(b"NATS/1.0 ")?.get(..3)?;
        std::str::from_utf8(code).ok()?.parse().ok()
    }

    /// The last value of header `name` (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.split(|b| *b == b'\n').skip(1).filter_map(|line| header_value(line, name.as_bytes())).last()
    }
}

fn header_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let colon = line.iter().position(|b| *b == b':')?;
    line[..colon].eq_ignore_ascii_case(name).then(|| line[colon + 1..].trim_ascii())
}

/// Takes the next complete operation off the front of `buf`; `None` when
/// `buf` does not hold one yet.
pub(super) fn parse_op(buf: &mut BytesMut) -> Result<Option<Op>, ReaderError> {
    loop {
        let Some(newline) = memchr::memchr(b'\n', &buf[..buf.len().min(MAX_CONTROL_LINE)]) else {
            return if buf.len() >= MAX_CONTROL_LINE {
                Err(protocol("a control line longer than 4 KiB"))
            } else {
                Ok(None)
            };
        };
        let line_end = if newline > 0 && buf[newline - 1] == b'\r' { newline - 1 } else { newline };
        let words = Words::of(&buf[..line_end]);
        let Some((verb_start, verb_end)) = words.get(0) else {
            // A blank line: nothing to act on.
            let _ = buf.split_to(newline + 1);
            continue;
        };
        let verb = &buf[verb_start..verb_end];
        let is = |name: &str| verb.eq_ignore_ascii_case(name.as_bytes());
        let op = if is("HMSG") || is("MSG") {
            return parse_msg(buf, &words, is("HMSG"), newline);
        } else if is("PING") {
            Op::Ping
        } else if is("PONG") {
            Op::Pong
        } else if is("+OK") {
            Op::Ok
        } else if is("INFO") {
            return Ok(Some(Op::Info(buf.split_to(newline + 1).freeze().slice(verb_end..line_end))));
        } else if is("-ERR") {
            Op::Err(String::from_utf8_lossy(&buf[verb_end..line_end]).trim().trim_matches('\'').to_string())
        } else {
            return Err(protocol(&format!("an unknown operation {:?}", String::from_utf8_lossy(verb))));
        };
        let _ = buf.split_to(newline + 1);
        return Ok(Some(op));
    }
}

/// `MSG <subject> <sid> [reply] <size>` or
/// `HMSG <subject> <sid> [reply] <header size> <total size>`.
fn parse_msg(buf: &mut BytesMut, words: &Words, with_headers: bool, newline: usize) -> Result<Option<Op>, ReaderError> {
    let number = |i: usize| -> Result<usize, ReaderError> {
        let parsed = words.get(i).and_then(|(start, end)| parse_decimal(&buf[start..end]));
        parsed
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| protocol("a message size or subscription id that is not a number"))
    };
    let count = if words.more { usize::MAX } else { words.len };
    let (reply, header_len, total_len) = match (with_headers, count) {
        (false, 4) => (None, 0, number(3)?),
        (false, 5) => (words.get(3), 0, number(4)?),
        (true, 5) => (None, number(3)?, number(4)?),
        (true, 6) => (words.get(3), number(4)?, number(5)?),
        _ => return Err(protocol("a MSG or HMSG line with the wrong number of arguments")),
    };
    if header_len > total_len {
        return Err(protocol("a header block longer than its message"));
    }
    let sid = number(2)? as u64;
    let body = newline + 1;
    let frame_len = body + total_len + 2;
    if buf.len() < frame_len {
        return Ok(None);
    }
    if &buf[frame_len - 2..frame_len] != b"\r\n" {
        return Err(protocol("a message that does not end where its size says"));
    }
    let frame = buf.split_to(frame_len).freeze();
    Ok(Some(Op::Msg(Msg {
        sid,
        reply: reply.map_or_else(Bytes::new, |(start, end)| frame.slice(start..end)),
        headers: frame.slice(body..body + header_len),
        payload: frame.slice(body + header_len..body + total_len),
    })))
}

/// An unsigned decimal without sign or spaces, `None` on anything else or
/// on overflow.
pub(super) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| match d {
        b'0'..=b'9' => n.checked_mul(10)?.checked_add(u64::from(d - b'0')),
        _ => None,
    })
}

/// The `(start, end)` of the first six (HMSG's count) space- or
/// tab-separated words of a control line; `more` if it has more.
struct Words {
    spans: [(usize, usize); 6],
    len: usize,
    more: bool,
}

impl Words {
    fn of(line: &[u8]) -> Words {
        let mut words = Words { spans: [(0, 0); 6], len: 0, more: false };
        let mut start = None;
        for (i, b) in line.iter().enumerate() {
            match (start, *b == b' ' || *b == b'\t') {
                (None, false) => start = Some(i),
                (Some(s), true) => {
                    words.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            words.push((s, line.len()));
        }
        words
    }

    fn push(&mut self, span: (usize, usize)) {
        match self.spans.get_mut(self.len) {
            Some(slot) => {
                *slot = span;
                self.len += 1;
            }
            None => self.more = true,
        }
    }

    fn get(&self, i: usize) -> Option<(usize, usize)> {
        self.spans[..self.len].get(i).copied()
    }
}

fn protocol(what: &str) -> ReaderError {
    ReaderError::Protocol(format!("the server sent {what}"))
}

/// A connected, handshaken client connection.
pub(super) struct Connection {
    socket: Socket,
    buf: BytesMut,
    out: Vec<u8>,
}

impl Connection {
    /// Connects (`addr` is a `nats://` or `tls://` URL), reads the server's
    /// INFO, upgrades to TLS when either side requires it, and sends
    /// CONNECT with `auth`'s credentials; returns once the server answered
    /// a PING, so it accepted us.
    pub async fn open(
        addr: &ServerAddr,
        client_name: &str,
        idle_limit: Duration,
        auth: &NatsAuth,
    ) -> Result<Connection, ReaderError> {
        let url = addr.as_url_str().to_string();
        let socket = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((addr.host(), addr.port())))
            .await
            .map_err(|_| ReaderError::Io(std::io::ErrorKind::TimedOut.into()))??;
        socket.set_nodelay(true)?;
        let mut conn =
            Connection { socket: Socket::Plain(socket), buf: BytesMut::with_capacity(READ_CHUNK), out: Vec::new() };
        let info = match conn.next_op(CONNECT_TIMEOUT).await? {
            Op::Info(info) => info,
            other => return Err(protocol(&format!("{other:?} before its INFO"))),
        };
        let info: serde_json::Value =
            serde_json::from_slice(&info).map_err(|e| protocol(&format!("an INFO that is not JSON ({e})")))?;
        let tls = addr.tls_required() || auth.require_tls || info["tls_required"].as_bool() == Some(true);
        if tls {
            conn.upgrade(addr.host(), auth).await.map_err(|e| ReaderError::Unsupported {
                url: url.clone(),
                reason: format!("TLS handshake failed: {e}"),
            })?;
        }
        let nonce = info["nonce"].as_str();
        let credentials = auth
            .connect_fields(nonce)
            .map_err(|e| ReaderError::Unsupported { url: url.clone(), reason: e.to_string() })?;
        if info["auth_required"].as_bool() == Some(true) && credentials.is_empty() {
            return Err(ReaderError::Unsupported { url, reason: "the server requires credentials; none given".into() });
        }
        let mut connect = serde_json::json!({
            "verbose": false, "pedantic": false, "headers": true, "no_responders": true, "tls_required": tls,
            "protocol": 1, "lang": "rust-orderstream", "version": env!("CARGO_PKG_VERSION"), "name": client_name,
        });
        if let Some(fields) = connect.as_object_mut() {
            fields.extend(credentials);
        }
        conn.out.extend_from_slice(format!("CONNECT {connect}\r\n").as_bytes());
        conn.sync(idle_limit).await?;
        Ok(conn)
    }

    /// The TLS handshake over the TCP connection (after INFO, as NATS does).
    async fn upgrade(&mut self, host: &str, auth: &NatsAuth) -> std::io::Result<()> {
        let Socket::Plain(tcp) = std::mem::replace(&mut self.socket, Socket::Upgrading) else {
            return Err(std::io::ErrorKind::InvalidInput.into());
        };
        let connector = tokio_rustls::TlsConnector::from(auth.tls_config()?);
        let name = crate::security::server_name(host)?;
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        self.socket = Socket::Tls(Box::new(tls));
        Ok(())
    }

    pub fn subscribe(&mut self, subject: &str, sid: u64) {
        self.out.extend_from_slice(format!("SUB {subject} {sid}\r\n").as_bytes());
    }

    pub fn unsubscribe(&mut self, sid: u64) {
        self.out.extend_from_slice(format!("UNSUB {sid}\r\n").as_bytes());
    }

    /// Queues an empty message to `subject` (flow-control replies).
    pub fn publish_empty(&mut self, subject: &[u8]) {
        self.out.extend_from_slice(b"PUB ");
        self.out.extend_from_slice(subject);
        self.out.extend_from_slice(b" 0\r\n\r\n");
    }

    pub async fn flush(&mut self) -> Result<(), ReaderError> {
        if !self.out.is_empty() {
            self.socket.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Sends what is queued and a PING, and waits for the PONG: the server
    /// has then applied everything sent before it. Messages read meanwhile
    /// are dropped (only subscriptions being replaced receive any).
    pub async fn sync(&mut self, idle_limit: Duration) -> Result<(), ReaderError> {
        self.out.extend_from_slice(b"PING\r\n");
        loop {
            match self.next_op(idle_limit).await? {
                Op::Pong => return Ok(()),
                Op::Err(message) => return Err(ReaderError::Server(message)),
                _ => {}
            }
        }
    }

    /// The next message; answers PINGs on the way. Fails when the server
    /// sent nothing for `idle_limit`, or sent an error.
    pub async fn next_msg(&mut self, idle_limit: Duration) -> Result<Msg, ReaderError> {
        loop {
            match self.next_op(idle_limit).await? {
                Op::Msg(msg) => return Ok(msg),
                Op::Err(message) => return Err(ReaderError::Server(message)),
                Op::Pong | Op::Ok | Op::Info(_) | Op::Ping => {}
            }
        }
    }

    async fn next_op(&mut self, idle_limit: Duration) -> Result<Op, ReaderError> {
        loop {
            match parse_op(&mut self.buf)? {
                Some(Op::Ping) => self.out.extend_from_slice(b"PONG\r\n"),
                Some(op) => return Ok(op),
                None => {
                    self.flush().await?;
                    self.buf.reserve(READ_CHUNK);
                    let read = tokio::time::timeout(idle_limit, self.socket.read_buf(&mut self.buf))
                        .await
                        .map_err(|_| ReaderError::Idle(idle_limit))??;
                    if read == 0 {
                        return Err(ReaderError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(sid: u64, reply: &str, headers: &str, payload: &str) -> Op {
        Op::Msg(Msg {
            sid,
            reply: Bytes::copy_from_slice(reply.as_bytes()),
            headers: Bytes::copy_from_slice(headers.as_bytes()),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
        })
    }

    const HB: &str = "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 7\r\nnats-consumer-stalled: $JS.FC.x\r\n\r\n";

    /// A wire capture and the operations it holds.
    fn capture() -> (Vec<u8>, Vec<Op>) {
        let mut wire = Vec::new();
        let mut ops = Vec::new();
        wire.extend_from_slice(b"INFO {\"server_id\":\"x\", \"name\": \"a b c d e f g\"}\r\n");
        ops.push(Op::Info(Bytes::from_static(b" {\"server_id\":\"x\", \"name\": \"a b c d e f g\"}")));
        for i in 0..40u64 {
            let payload = format!("{{\"order\":{i},\"pad\":\"{}\"}}", "x".repeat((i * 37 % 300) as usize));
            let reply = format!("$JS.ACK.S.c.1.{i}.{i}.1763600000000000000.{}", 40 - i);
            let headers = format!("NATS/1.0\r\nNats-Msg-Id: m{i}\r\n\r\n");
            let total = headers.len() + payload.len();
            wire.extend_from_slice(
                format!("HMSG s.a 9 {reply} {} {total}\r\n{headers}{payload}\r\n", headers.len()).as_bytes(),
            );
            ops.push(msg(9, &reply, &headers, &payload));
            if i % 7 == 0 {
                wire.extend_from_slice(
                    format!("HMSG _INBOX.x 9 {} {}\r\n{HB}\r\nPING\r\n", HB.len(), HB.len()).as_bytes(),
                );
                ops.push(msg(9, "", HB, ""));
                ops.push(Op::Ping);
            }
            if i % 11 == 0 {
                wire.extend_from_slice(format!("MSG\ta.b  3 r.{i}\t2\r\nhi\r\n+OK\r\nPONG\r\n").as_bytes());
                ops.extend([msg(3, &format!("r.{i}"), "", "hi"), Op::Ok, Op::Pong]);
            }
        }
        wire.extend_from_slice(b"MSG a 4 0\r\n\r\n-ERR 'Authorization Violation'\r\n");
        ops.extend([msg(4, "", "", ""), Op::Err("Authorization Violation".into())]);
        (wire, ops)
    }

    fn parse_in_pieces(wire: &[u8], cuts: &[usize]) -> Result<Vec<Op>, ReaderError> {
        let mut buf = BytesMut::new();
        let mut ops = Vec::new();
        let mut at = 0;
        for &cut in cuts.iter().chain([wire.len()].iter()) {
            let cut = cut.clamp(at, wire.len());
            buf.extend_from_slice(&wire[at..cut]);
            at = cut;
            while let Some(op) = parse_op(&mut buf)? {
                ops.push(op);
            }
        }
        assert!(buf.is_empty(), "left over: {:?}", String::from_utf8_lossy(&buf));
        Ok(ops)
    }

    proptest! {
        #[test]
        fn any_split_of_the_wire_parses_to_the_same_operations(mut cuts in prop::collection::vec(0usize..20_000, 0..60)) {
            let (wire, expected) = capture();
            cuts.sort_unstable();
            prop_assert_eq!(parse_in_pieces(&wire, &cuts).unwrap(), expected);
        }
    }

    #[test]
    fn byte_by_byte_parses_too() {
        let (wire, expected) = capture();
        let cuts: Vec<usize> = (0..wire.len()).collect();
        assert_eq!(parse_in_pieces(&wire, &cuts).unwrap(), expected);
    }

    #[test]
    fn status_and_headers_of_a_heartbeat() {
        let Op::Msg(heartbeat) = msg(1, "", HB, "") else { unreachable!() };
        assert_eq!(heartbeat.status(), Some(100));
        assert_eq!(heartbeat.header("Nats-Last-Consumer"), Some(&b"7"[..]));
        assert_eq!(heartbeat.header("Nats-Consumer-Stalled"), Some(&b"$JS.FC.x"[..]));
        assert_eq!(heartbeat.header("Nats-Last-Stream"), None);
        let Op::Msg(delivery) = msg(1, "r", "NATS/1.0\r\nNats-Msg-Id: a\r\n\r\n", "x") else { unreachable!() };
        assert_eq!(delivery.status(), None);
        let Op::Msg(deleted) = msg(1, "", "NATS/1.0 409 Consumer Deleted\r\n\r\n", "") else { unreachable!() };
        assert_eq!(deleted.status(), Some(409));
    }

    #[test]
    fn malformed_operations_are_protocol_errors() {
        for bad in [
            &b"MSG a 1 x\r\nhi\r\n"[..],
            b"MSG a 1\r\n",
            b"HMSG a 1 r 9 4\r\nNATS/1.0\r\n\r\n",
            b"MSG a 1 2\r\nhiya\r\n",
            b"BOGUS\r\n",
            b"HMSG a 1 r x 9 4 5\r\n",
            b"MSG a 1 -2\r\n",
        ] {
            let mut buf = BytesMut::from(bad);
            assert!(matches!(parse_op(&mut buf), Err(ReaderError::Protocol(_))), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut long = BytesMut::from(&[b'x'; MAX_CONTROL_LINE][..]);
        assert!(matches!(parse_op(&mut long), Err(ReaderError::Protocol(_))));
        let mut partial = BytesMut::from(&b"MSG a 1 5\r\nhi"[..]);
        assert!(matches!(parse_op(&mut partial), Ok(None)));
        assert_eq!(partial.len(), 13, "an incomplete message stays in the buffer");
    }
}

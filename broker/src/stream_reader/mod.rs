//! Reading a JetStream stream from a sequence or a time to its end, in
//! order, fast: what `orderstream replay` reads history with.
//!
//! The consumer is an ordered push consumer (no acks, flow control, idle
//! heartbeats, in memory), created and deleted through async-nats; its
//! deliveries arrive on a connection of our own ([`wire`]), which parses
//! them without copying. Like async-nats's ordered consumer, the reader
//! recreates the consumer from the last sequence it delivered when a
//! delivery is missing, heartbeats stop, or the connection drops (NATS
//! restarted): nothing is skipped and nothing is delivered twice.

mod wire;

use std::time::{Duration, Instant};

use async_nats::ServerAddr;
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use thiserror::Error;

use wire::{Connection, Msg, parse_decimal};

#[derive(Debug, Error)]
pub enum ReaderError {
    #[error("invalid NATS URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot read from {url}: {reason}")]
    Unsupported { url: String, reason: String },
    #[error("NATS connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("NATS protocol: {0}")]
    Protocol(String),
    #[error("the NATS server answered: {0}")]
    Server(String),
    #[error("nothing from the NATS server for {0:?}")]
    Idle(Duration),
    #[error("cannot create the consumer on stream {stream}: {source}")]
    Consumer {
        stream: String,
        #[source]
        source: jetstream::stream::ConsumerError,
    },
    #[error("could not resume reading stream {stream} for {waited:?}; the last error: {last}")]
    GaveUp { stream: String, waited: Duration, last: Box<ReaderError> },
}

/// What to read and how patiently.
#[derive(Clone, Debug)]
pub struct ReaderOptions {
    pub stream: String,
    pub filter_subject: String,
    pub start: consumer::DeliverPolicy,
    /// The consumer's idle heartbeat; three missed ones mean it is gone.
    pub heartbeat: Duration,
    /// How long to keep trying to reconnect and recreate the consumer.
    pub resume_deadline: Duration,
    pub client_name: String,
    /// TLS and credentials for the data connection (plain by default).
    pub auth: crate::NatsAuth,
}

impl ReaderOptions {
    pub fn new(stream: &str, filter_subject: &str, start: consumer::DeliverPolicy) -> ReaderOptions {
        ReaderOptions {
            stream: stream.to_string(),
            filter_subject: filter_subject.to_string(),
            start,
            heartbeat: Duration::from_secs(5),
            resume_deadline: Duration::from_secs(60),
            client_name: format!("orderstream-reader-{stream}"),
            auth: crate::NatsAuth::default(),
        }
    }
}

/// One message of the stream.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub stream_seq: u64,
    /// Messages left in the stream (under the filter) after this one.
    pub pending: u64,
    pub payload: Bytes,
}

/// What the reader did besides delivering, for tests and logs.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReaderStats {
    pub flow_control_replies: u64,
    pub heartbeats: u64,
    /// Times the consumer was recreated (after reconnecting, if the
    /// connection was lost).
    pub resumes: u64,
}

pub struct StreamReader {
    js: jetstream::Context,
    servers: Vec<ServerAddr>,
    options: ReaderOptions,
    conn: Option<Connection>,
    /// The current subscription; deliveries to older ones are dropped.
    sid: u64,
    consumer: String,
    consumer_seq: u64,
    last_stream_seq: u64,
    pending_at_open: u64,
    stats: ReaderStats,
}

impl StreamReader {
    /// Connects to the first of `urls` (comma-separated) that answers and
    /// creates the consumer; `js` is the control connection.
    pub async fn open(js: jetstream::Context, urls: &str, options: ReaderOptions) -> Result<StreamReader, ReaderError> {
        let servers = parse_urls(urls)?;
        let mut reader = StreamReader {
            js,
            servers,
            options,
            conn: None,
            sid: 0,
            consumer: String::new(),
            consumer_seq: 0,
            last_stream_seq: 0,
            pending_at_open: 0,
            stats: ReaderStats::default(),
        };
        reader.connect().await?;
        reader.pending_at_open = reader.start_consumer().await?;
        Ok(reader)
    }

    /// Messages in the stream from the start position when the reader opened.
    pub fn pending(&self) -> u64 {
        self.pending_at_open
    }

    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// The current consumer's name.
    pub fn consumer_name(&self) -> &str {
        &self.consumer
    }

    /// The next message. Waits while the stream has none.
    pub async fn next(&mut self) -> Result<Delivery, ReaderError> {
        loop {
            let idle_limit = self.options.heartbeat * 3;
            let msg = match self.conn.as_mut() {
                Some(conn) => conn.next_msg(idle_limit).await,
                None => Err(ReaderError::Io(std::io::ErrorKind::NotConnected.into())),
            };
            match msg {
                Ok(msg) if msg.sid != self.sid => {}
                Ok(msg) => match self.delivery(msg).await? {
                    Some(delivery) => return Ok(delivery),
                    None => continue,
                },
                Err(e) => self.resume(e).await?,
            }
        }
    }

    /// Deletes the consumer (it would also go by itself 30 s after the
    /// connection closes).
    pub async fn close(self) {
        let delete = self.js.delete_consumer_from_stream(&self.consumer, &self.options.stream);
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), delete).await {
            tracing::debug!(error = %e, consumer = %self.consumer, "could not delete the reader's consumer");
        }
    }

    /// A delivery, or `None` after handling a status message.
    async fn delivery(&mut self, msg: Msg) -> Result<Option<Delivery>, ReaderError> {
        if let Some(status) = msg.status() {
            let trouble = match status {
                100 => self.control(&msg).await,
                _ => Some(ReaderError::Server(format!("status {status} on the consumer"))),
            };
            if let Some(trouble) = trouble {
                self.resume(trouble).await?;
            }
            return Ok(None);
        }
        let Some(position) = delivery_position(&msg.reply) else {
            return Err(ReaderError::Protocol("a delivery without a JetStream reply subject".into()));
        };
        if position.consumer_seq != self.consumer_seq + 1 {
            let gap = format!("consumer sequence {} after {}", position.consumer_seq, self.consumer_seq);
            self.resume(ReaderError::Protocol(gap)).await?;
            return Ok(None);
        }
        self.consumer_seq = position.consumer_seq;
        self.last_stream_seq = position.stream_seq;
        Ok(Some(Delivery { stream_seq: position.stream_seq, pending: position.pending, payload: msg.payload }))
    }

    /// Answers a flow-control request (it has a reply subject) or a
    /// heartbeat; returns why the consumer must be resumed, if it must.
    async fn control(&mut self, msg: &Msg) -> Option<ReaderError> {
        let conn = self.conn.as_mut()?;
        if !msg.reply.is_empty() {
            self.stats.flow_control_replies += 1;
            conn.publish_empty(&msg.reply);
        } else {
            self.stats.heartbeats += 1;
            if let Some(stalled) = msg.header("Nats-Consumer-Stalled") {
                conn.publish_empty(stalled);
            }
            let last = msg.header("Nats-Last-Consumer").and_then(parse_decimal);
            if let Some(last) = last.filter(|last| *last != self.consumer_seq) {
                // Deliveries went missing while the stream was quiet.
                return Some(ReaderError::Protocol(format!("a heartbeat at consumer sequence {last}")));
            }
        }
        conn.flush().await.err()
    }

    /// Reconnects if needed and recreates the consumer from the last
    /// delivered sequence, retrying until `resume_deadline`.
    async fn resume(&mut self, cause: ReaderError) -> Result<(), ReaderError> {
        tracing::warn!(stream = %self.options.stream, after = self.last_stream_seq, error = %cause, "resuming the stream reader");
        self.stats.resumes += 1;
        let started = Instant::now();
        let mut last = cause;
        let mut attempt = 0u64;
        loop {
            if started.elapsed() > self.options.resume_deadline {
                let waited = started.elapsed();
                return Err(ReaderError::GaveUp { stream: self.options.stream.clone(), waited, last: Box::new(last) });
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis((attempt * 25).min(250))).await;
            }
            attempt += 1;
            if !matches!(last, ReaderError::Idle(_) | ReaderError::Server(_) | ReaderError::Protocol(_)) {
                self.conn = None;
            }
            if self.conn.is_none()
                && let Err(e) = self.connect().await
            {
                last = e;
                continue;
            }
            let old = std::mem::take(&mut self.consumer);
            if !old.is_empty() {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    self.js.delete_consumer_from_stream(&old, &self.options.stream),
                )
                .await;
            }
            match self.start_consumer().await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    last = e;
                    self.conn = None;
                }
            }
        }
    }

    /// Opens a connection to the first server that answers.
    async fn connect(&mut self) -> Result<(), ReaderError> {
        let mut last = None;
        for addr in &self.servers {
            match Connection::open(addr, &self.options.client_name, self.options.heartbeat * 3, &self.options.auth)
                .await
            {
                Ok(conn) => {
                    self.conn = Some(conn);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ReaderError::Url { url: String::new(), reason: "no servers".into() }))
    }

    /// Subscribes to a fresh inbox and creates a consumer delivering to it,
    /// from just after the last delivered message (or from the start).
    /// Returns the consumer's pending count.
    async fn start_consumer(&mut self) -> Result<u64, ReaderError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(ReaderError::Io(std::io::ErrorKind::NotConnected.into()));
        };
        let inbox = self.js.client().new_inbox();
        if self.sid > 0 {
            conn.unsubscribe(self.sid);
        }
        self.sid += 1;
        conn.subscribe(&inbox, self.sid);
        // The server must know the subscription before the consumer exists,
        // or its first deliveries find no interest.
        conn.sync(self.options.heartbeat * 3).await?;
        let deliver_policy = match self.last_stream_seq {
            0 => self.options.start,
            last => consumer::DeliverPolicy::ByStartSequence { start_sequence: last + 1 },
        };
        let config = consumer::push::Config {
            deliver_subject: inbox,
            filter_subject: self.options.filter_subject.clone(),
            deliver_policy,
            ack_policy: consumer::AckPolicy::None,
            max_deliver: 1,
            flow_control: true,
            idle_heartbeat: self.options.heartbeat,
            inactive_threshold: Duration::from_secs(30),
            num_replicas: 1,
            memory_storage: true,
            ..Default::default()
        };
        let consumer_error = |source| ReaderError::Consumer { stream: self.options.stream.clone(), source };
        let created = self.js.create_consumer_on_stream(config, &self.options.stream).await.map_err(consumer_error)?;
        let info = created.cached_info();
        self.consumer = info.name.clone();
        self.consumer_seq = 0;
        Ok(info.num_pending)
    }
}

fn parse_urls(urls: &str) -> Result<Vec<ServerAddr>, ReaderError> {
    let servers =
        crate::server_addrs(urls).map_err(|e| ReaderError::Url { url: urls.to_string(), reason: e.to_string() })?;
    for addr in &servers {
        if addr.is_websocket() {
            let url = addr.as_url_str().to_string();
            return Err(ReaderError::Unsupported { url, reason: "only nats:// and tls:// URLs are read".into() });
        }
    }
    Ok(servers)
}

/// Where a delivery sits, from its reply subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryPosition {
    pub stream_seq: u64,
    pub consumer_seq: u64,
    pub pending: u64,
}

/// A JetStream delivery's reply subject: `$JS.ACK.<stream>.<consumer>.
/// <delivered>.<stream seq>.<consumer seq>.<time>.<pending>`, or since
/// NATS 2.9 with `<domain>.<account hash>` after `ACK` and possibly more
/// tokens at the end (ADR-15).
pub fn delivery_position(reply: &[u8]) -> Option<DeliveryPosition> {
    let mut tokens: [&[u8]; 11] = [b""; 11];
    let mut count = 0;
    for token in reply.split(|b| *b == b'.') {
        if let Some(slot) = tokens.get_mut(count) {
            *slot = token;
        }
        count += 1;
    }
    let first = match (tokens[0], tokens[1], count) {
        (b"$JS", b"ACK", 9) => 5,
        (b"$JS", b"ACK", 11..) => 7,
        _ => return None,
    };
    Some(DeliveryPosition {
        stream_seq: parse_decimal(tokens[first])?,
        consumer_seq: parse_decimal(tokens[first + 1])?,
        pending: parse_decimal(tokens[first + 3])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_positions_read_both_reply_subject_forms() {
        let at = |stream_seq, consumer_seq, pending| Some(DeliveryPosition { stream_seq, consumer_seq, pending });
        assert_eq!(delivery_position(b"$JS.ACK.ORDERS.c1.1.2002.2.1763600000000000000.997998"), at(2002, 2, 997998));
        assert_eq!(delivery_position(b"$JS.ACK.hub.ACCHASH.ORDERS.c1.3.17.5.1763600000000000000.0.tok"), at(17, 5, 0));
        assert_eq!(delivery_position(b"$JS.ACK.hub.ACCHASH.ORDERS.c1.3.17.5.1763600000000000000.4"), at(17, 5, 4));
        assert_eq!(delivery_position(b"$JS.ACK.hub.H.S.c.3.17.5.1763600000000000000.4.tok.more.x"), at(17, 5, 4));
        for bad in ["", "$JS.ACK.ORDERS.c1.1.x.2.3.4", "$JS.ACK.a.b.c", "_INBOX.x.y", "$JS.ACK.a.b.c.d.e.f.g.h.i"] {
            assert_eq!(delivery_position(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn nats_and_tls_urls_are_read() {
        assert_eq!(parse_urls("nats://127.0.0.1:4222, 127.0.0.1:4223").unwrap().len(), 2);
        assert_eq!(parse_urls("tls://127.0.0.1:4222").unwrap().len(), 1);
        for url in ["ws://127.0.0.1:4222", "nats://a:1,wss://b:2"] {
            assert!(matches!(parse_urls(url), Err(ReaderError::Unsupported { .. })), "{url}");
        }
        assert!(matches!(parse_urls("http://x:1"), Err(ReaderError::Url { .. })));
    }
}

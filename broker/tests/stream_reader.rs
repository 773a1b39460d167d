//! The stream reader against a real `nats-server`: order, filtering, flow
//! control, and resuming after the server restarts or the consumer vanishes,
//! with nothing lost and nothing delivered twice.
// The helpers unwrap too: a failure there is the test's failure.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, stream};
use broker::{NatsServer, ReaderOptions, StreamReader};

const STREAM: &str = "READER";

async fn setup() -> (NatsServer, jetstream::Context) {
    let server = NatsServer::start_temporary().await.unwrap();
    let js = jetstream::new(broker::connect(&server.url(), "reader-test").await.unwrap());
    js.create_stream(stream::Config { name: STREAM.into(), subjects: vec!["reader.>".into()], ..Default::default() })
        .await
        .unwrap();
    (server, js)
}

fn payload(i: u64, pad: usize) -> String {
    format!("{i}:{}", "x".repeat(pad))
}

/// Publishes messages `from..to` (their payloads say their number) to
/// `reader.a`, or to `reader.b` when `b(i)`; returns the sequences of the
/// `reader.a` ones.
async fn publish(
    js: &jetstream::Context,
    range: std::ops::Range<u64>,
    pad: usize,
    b: impl Fn(u64) -> bool,
) -> Vec<u64> {
    let mut a_seqs = Vec::new();
    let ids: Vec<u64> = range.collect();
    for chunk in ids.chunks(500) {
        let mut acks = Vec::new();
        for &i in chunk {
            let subject = if b(i) { "reader.b" } else { "reader.a" };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("m{i}").as_str());
            let ack = js.publish_with_headers(subject, headers, payload(i, pad).into()).await.unwrap();
            acks.push((subject, ack));
        }
        for (subject, ack) in acks {
            let seq = ack.await.unwrap().sequence;
            if subject == "reader.a" {
                a_seqs.push(seq);
            }
        }
    }
    a_seqs
}

/// Reads until nothing is pending; returns (stream seq, payload) pairs.
async fn read_to_end(reader: &mut StreamReader) -> Vec<(u64, String)> {
    let mut read = Vec::new();
    loop {
        let delivery = tokio::time::timeout(Duration::from_secs(60), reader.next()).await.unwrap().unwrap();
        read.push((delivery.stream_seq, String::from_utf8(delivery.payload.to_vec()).unwrap()));
        if delivery.pending == 0 {
            return read;
        }
    }
}

#[tokio::test]
async fn reads_a_filtered_stream_in_order_answering_flow_control() {
    let (server, js) = setup().await;
    // 12k messages of 3 KB: far more than the consumer may have in flight.
    let a_seqs = publish(&js, 0..12_000, 3_000, |i| i % 3 == 0).await;
    let options = ReaderOptions::new(STREAM, "reader.a", DeliverPolicy::All);
    let mut reader = StreamReader::open(js.clone(), &server.url(), options).await.unwrap();
    assert_eq!(reader.pending(), 8_000);
    let read = read_to_end(&mut reader).await;
    assert_eq!(read.iter().map(|r| r.0).collect::<Vec<_>>(), a_seqs);
    let expected: Vec<String> = (0..12_000u64).filter(|i| i % 3 != 0).map(|i| payload(i, 3_000)).collect();
    assert!(read.iter().map(|r| &r.1).eq(expected.iter()), "payloads differ");
    let stats = reader.stats();
    assert!(stats.flow_control_replies > 0, "{stats:?}");
    assert_eq!(stats.resumes, 0, "{stats:?}");

    // From a sequence in the middle, one reader after the other.
    let start = a_seqs[5_000];
    let options = ReaderOptions::new(STREAM, "reader.a", DeliverPolicy::ByStartSequence { start_sequence: start });
    let mut reader = StreamReader::open(js.clone(), &server.url(), options).await.unwrap();
    assert_eq!(reader.pending(), 3_000);
    assert_eq!(read_to_end(&mut reader).await, read[5_000..]);
    let name = reader.consumer_name().to_string();
    reader.close().await;
    assert!(js.get_stream(STREAM).await.unwrap().consumer_info(&name).await.is_err(), "the consumer is deleted");
}

#[tokio::test]
async fn resumes_after_the_server_restarts_mid_stream() {
    let (mut server, js) = setup().await;
    publish(&js, 0..20_000, 2_000, |_| false).await;
    let options = ReaderOptions::new(STREAM, "reader.a", DeliverPolicy::All);
    let mut reader = StreamReader::open(js.clone(), &server.url(), options).await.unwrap();
    let mut read = Vec::new();
    while read.len() < 3_000 {
        read.push(reader.next().await.unwrap().stream_seq);
    }
    server.restart().await.unwrap();
    read.extend(read_to_end(&mut reader).await.into_iter().map(|r| r.0));
    assert_eq!(read, (1..=20_000).collect::<Vec<u64>>(), "every message once, in order");
    assert!(reader.stats().resumes >= 1, "{:?}", reader.stats());
}

#[tokio::test]
async fn resumes_when_its_consumer_vanishes() {
    let (server, js) = setup().await;
    publish(&js, 0..1_000, 100, |_| false).await;
    let mut options = ReaderOptions::new(STREAM, "reader.a", DeliverPolicy::All);
    options.heartbeat = Duration::from_millis(200);
    let mut reader = StreamReader::open(js.clone(), &server.url(), options).await.unwrap();
    let first = read_to_end(&mut reader).await;
    assert_eq!(first.len(), 1_000);
    js.delete_consumer_from_stream(reader.consumer_name(), STREAM).await.unwrap();
    publish(&js, 1_000..2_000, 100, |_| false).await;
    let rest = read_to_end(&mut reader).await;
    assert_eq!(rest.iter().map(|r| r.0).collect::<Vec<_>>(), (1_001..=2_000).collect::<Vec<u64>>());
    assert_eq!(rest[0].1, payload(1_000, 100));
    assert!(reader.stats().resumes >= 1, "{:?}", reader.stats());
}

#[tokio::test]
async fn a_server_that_is_not_there_is_an_error() {
    let (server, js) = setup().await;
    let port = broker::server::free_port().unwrap();
    let options = ReaderOptions::new(STREAM, "reader.a", DeliverPolicy::All);
    let url = format!("nats://127.0.0.1:{port}");
    assert!(StreamReader::open(js.clone(), &url, options.clone()).await.is_err());
    // A stream that does not exist.
    let options = ReaderOptions { stream: "NOPE".into(), ..options };
    let error = StreamReader::open(js, &server.url(), options).await.err().unwrap();
    assert!(error.to_string().contains("NOPE"), "{error}");
}

//! Secure NATS against a real `nats-server` configured with TLS (a CA and a
//! server certificate generated here) and an account with a password user
//! and an NKey user: async-nats (every role) and the replay's own wire
//! reader both connect over TLS with either credential; a wrong password or
//! an untrusted certificate is a clear error at once.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, stream};
use broker::server::SecuredServer;
use broker::{NatsAuth, ReaderOptions, StreamReader};

const STREAM: &str = "SECURE";

async fn read_all(js: &jetstream::Context, url: &str, auth: NatsAuth) -> Result<Vec<String>, broker::ReaderError> {
    let options = ReaderOptions { auth, ..ReaderOptions::new(STREAM, "secure.>", DeliverPolicy::All) };
    let mut reader = StreamReader::open(js.clone(), url, options).await?;
    let mut read = Vec::new();
    loop {
        let delivery = tokio::time::timeout(Duration::from_secs(30), reader.next()).await.unwrap()?;
        read.push(String::from_utf8(delivery.payload.to_vec()).unwrap());
        if delivery.pending == 0 {
            reader.close().await;
            return Ok(read);
        }
    }
}

#[tokio::test]
async fn tls_with_password_and_nkey_users_for_clients_and_the_wire_reader() {
    let nats = SecuredServer::start().await.unwrap();
    let url = nats.url();

    // A role's connection: TLS and a password; JetStream works.
    let client = broker::connect_secure(&url, &nats.auth(), "secure-test").await.unwrap();
    let js = jetstream::new(client);
    js.create_stream(stream::Config { name: STREAM.into(), subjects: vec!["secure.>".into()], ..Default::default() })
        .await
        .unwrap();
    for i in 0..50 {
        js.publish("secure.orders", format!("order {i}").into()).await.unwrap().await.unwrap();
    }

    // The replay's wire reader over TLS, as the password user and as the NKey user.
    let read = read_all(&js, &url, nats.auth()).await.unwrap();
    assert_eq!(read.len(), 50);
    assert_eq!(read[49], "order 49");
    let nkey = NatsAuth { user: None, password: None, nkey_seed: Some(nats.nkey_seed.clone()), ..nats.auth() };
    assert_eq!(read_all(&js, &url, nkey.clone()).await.unwrap(), read);
    // The server requires TLS: a nats:// URL upgrades all the same.
    assert_eq!(read_all(&js, &nats.server.url(), nkey.clone()).await.unwrap().len(), 50);
    let as_nkey = broker::connect_secure(&url, &nkey, "secure-nkey").await.unwrap();
    assert_eq!(jetstream::new(as_nkey).get_stream(STREAM).await.unwrap().info().await.unwrap().state.messages, 50);

    // Refusals are immediate and say why.
    let wrong = NatsAuth { password: Some("guess".into()), ..nats.auth() };
    let refused = broker::connect_secure(&url, &wrong, "secure-wrong").await.unwrap_err();
    assert!(broker::is_refused(&refused), "{refused}");
    assert!(read_all(&js, &url, wrong).await.is_err(), "the wire reader is refused too");
    let none = NatsAuth { ca_file: Some(nats.dir().join("ca.pem")), ..NatsAuth::default() };
    let refused = broker::connect_secure(&url, &none, "secure-anonymous").await.unwrap_err();
    assert!(broker::is_refused(&refused), "{refused}");
    let untrusted = NatsAuth { ca_file: Some(nats.dir().join("other-ca.pem")), ..nats.auth() };
    let refused = broker::connect_secure(&url, &untrusted, "secure-untrusted").await.unwrap_err();
    assert!(broker::is_refused(&refused), "{refused}");
    let error = read_all(&js, &url, untrusted).await.unwrap_err();
    assert!(error.to_string().contains("TLS"), "{error}");
}

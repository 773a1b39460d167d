//! The harness itself against real servers: topology is idempotent and
//! changes only by intent, a restart keeps messages, and a three-node
//! cluster serves a replicated stream that a role with other flags leaves
//! replicated.

use std::time::Duration;

use broker::{IDEMPOTENCY_BUCKET, NatsCluster, NatsServer, ORDERS_STREAM, TopologySettings, ensure_topology};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn topology_is_idempotent_and_survives_a_restart() -> TestResult {
    let mut server = NatsServer::start_temporary().await?;
    let client = broker::connect(&server.url(), "harness-test").await?;
    let js = async_nats::jetstream::new(client.clone());
    let settings = TopologySettings::default();
    ensure_topology(&js, &settings).await?;
    ensure_topology(&js, &settings).await?;
    // A role started with other flags changes nothing that exists...
    let other = TopologySettings {
        duplicate_window: Duration::from_secs(30),
        max_age: Duration::from_secs(3600),
        idempotency_ttl: Duration::from_secs(60),
        ..settings.clone()
    };
    ensure_topology(&js, &other).await?;
    let info = js.get_stream(ORDERS_STREAM).await?.info().await?.clone();
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120), "the dedup window is never shortened");
    assert_eq!(info.config.max_age, Duration::ZERO, "retention is never shortened");
    // ...the plan says what `streams apply` would change, and apply does it.
    let plan = broker::plan(&js, &other).await?;
    let described: Vec<String> = plan.iter().map(ToString::to_string).collect();
    assert!(described.contains(&"stream ORDERS duplicate_window: 120s -> 30s".to_string()), "{described:?}");
    assert!(described.contains(&"stream ORDERS max_age: forever -> 3600s".to_string()), "{described:?}");
    assert!(described.contains(&format!("bucket {IDEMPOTENCY_BUCKET} max_age: 86400s -> 60s")), "{described:?}");
    broker::apply(&js, &other).await?;
    let info = js.get_stream(ORDERS_STREAM).await?.info().await?.clone();
    assert_eq!(info.config.duplicate_window, Duration::from_secs(30));
    assert!(broker::plan(&js, &other).await?.is_empty(), "applied");
    broker::apply(&js, &settings).await?;

    js.publish(broker::order_submitted_subject("a"), "one".into()).await?.await?;
    server.restart().await?;
    // The client reconnects by itself; the message is still there.
    let mut stream = None;
    for _ in 0..100 {
        if let Ok(s) = js.get_stream(ORDERS_STREAM).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stream = stream.ok_or("stream not reachable after restart")?;
    assert_eq!(stream.info().await?.state.messages, 1);
    server.stop().await?;
    assert!(!server.is_running());
    Ok(())
}

#[tokio::test]
async fn three_node_cluster_serves_a_replicated_stream() -> TestResult {
    let cluster = NatsCluster::start(3).await?;
    let client = broker::connect(&cluster.urls(), "cluster-test").await?;
    let js = async_nats::jetstream::new(client);
    let settings = TopologySettings { replicas: 3, ..TopologySettings::default() };
    // The meta leader is elected a moment after the nodes start.
    let mut last = None;
    for _ in 0..100 {
        match ensure_topology(&js, &settings).await {
            Ok(()) => {
                last = None;
                break;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(e) = last {
        return Err(e.into());
    }
    let ack = js.publish(broker::order_submitted_subject("b"), "x".into()).await?.await?;
    assert_eq!(ack.sequence, 1);
    let info = js.get_stream(ORDERS_STREAM).await?.info().await?.clone();
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(info.cluster.map(|c| c.replicas.len()), Some(2));
    // A role started without --stream-replicas (1) leaves every stream and
    // bucket replicated.
    ensure_topology(&js, &TopologySettings::default()).await?;
    for name in [ORDERS_STREAM, "KV_IDEMPOTENCY"] {
        let info = js.get_stream(name).await?.info().await?.clone();
        assert_eq!(info.config.num_replicas, 3, "{name}");
    }
    Ok(())
}

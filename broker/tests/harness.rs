//! The harness itself against real servers: topology is idempotent, a restart
//! keeps messages, and a three-node cluster serves a replicated stream.

use std::time::Duration;

use broker::{NatsCluster, NatsServer, ORDERS_STREAM, TopologySettings, ensure_topology};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn topology_is_idempotent_and_survives_a_restart() -> TestResult {
    let mut server = NatsServer::start_temporary().await?;
    let client = broker::connect(&server.url(), "harness-test").await?;
    let js = async_nats::jetstream::new(client.clone());
    let settings = TopologySettings::default();
    ensure_topology(&js, &settings).await?;
    ensure_topology(&js, &settings).await?;
    // A changed limit is applied on the next start, not refused.
    let wider = TopologySettings { duplicate_window: Duration::from_secs(300), ..settings.clone() };
    ensure_topology(&js, &wider).await?;
    let info = js.get_stream(ORDERS_STREAM).await?.info().await?.clone();
    assert_eq!(info.config.duplicate_window, Duration::from_secs(300));

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
    Ok(())
}

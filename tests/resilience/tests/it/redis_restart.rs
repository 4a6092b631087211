//! Redis stopped and restarted under a steady stream of views: every view is
//! served (from PostgreSQL while Redis is away), the cache fills again once
//! Redis is back, and no view is ever stale after an update was acked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mcr_proto::common::v1::Role;
use mcr_resilience::{Stack, person, summary, update, view};
use tonic::transport::Channel;

const ENTRIES: u32 = 20;

/// Publishes version `version` of entry 0, waits until the aggregator acked
/// it, and asserts the very next view shows it.
async fn update_and_check(stack: &Stack, channel: &Channel, token: &str, version: u64) {
    let report = stack.publisher().publish_all([update(1, 0, version)]).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
    stack.wait_for_ingest(Duration::from_secs(30)).await;
    let record = match view(channel.clone(), token, &person(1)).await {
        Ok(record) => record,
        Err(status) => panic!("the view after version {version} failed: {status}"),
    };
    let expected = summary(1, 0, version);
    assert!(
        record
            .entries
            .iter()
            .any(|entry| entry.display_summary == expected),
        "a stale view after version {version} was acked"
    );
    assert_eq!(record.entries.len(), ENTRIES as usize);
}

async fn cached_keys(stack: &Stack) -> usize {
    match stack.servers.redis.command("DBSIZE").await {
        Ok(reply) => reply.trim().trim_start_matches(':').parse().unwrap_or(0),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_are_served_throughout_a_redis_restart_and_never_stale() {
    let mut stack = Stack::start().await;
    let aggregator = stack.spawn_aggregator(&[]).await;
    let report = stack
        .publisher()
        .publish_all((0..ENTRIES).map(|entry| update(1, entry, 1)))
        .await;
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
    stack.wait_for_ingest(Duration::from_secs(30)).await;
    let token = stack
        .professional("redis.viewer", Role::ClinicalPractitioner)
        .await;
    stack.allow(&person(1), &token).await;
    let channel = aggregator.channel().await;
    update_and_check(&stack, &channel, &token, 2).await;
    assert!(cached_keys(&stack).await > 0, "the view was not cached");

    // A steady reader for the whole test: no view may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let reader = {
        let (channel, token, stop, served) = (
            channel.clone(),
            token.clone(),
            Arc::clone(&stop),
            Arc::clone(&served),
        );
        tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match view(channel.clone(), &token, &person(1)).await {
                    Ok(record) if record.entries.len() == ENTRIES as usize => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(record) => failures.push(format!("{} entries", record.entries.len())),
                    Err(status) => failures.push(status.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failures
        })
    };

    stack.servers.redis.stop().await;
    let before_outage = served.load(Ordering::Relaxed);
    update_and_check(&stack, &channel, &token, 3).await;
    update_and_check(&stack, &channel, &token, 4).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during_outage = served.load(Ordering::Relaxed) - before_outage;
    assert!(during_outage > 0, "no view was served while Redis was down");

    stack.servers.redis.restart().await;
    // It keeps nothing on disk, so whatever it holds from now on was rebuilt.
    update_and_check(&stack, &channel, &token, 5).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while cached_keys(&stack).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the cache was not rebuilt after Redis came back"
        );
        let _ = view(channel.clone(), &token, &person(1)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The rebuilt cache, too, gives way to the next update.
    update_and_check(&stack, &channel, &token, 6).await;

    stop.store(true, Ordering::Relaxed);
    let failures = match reader.await {
        Ok(failures) => failures,
        Err(panic) => panic!("the reader panicked: {panic}"),
    };
    assert!(
        failures.is_empty(),
        "{} views failed around the Redis restart, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    if let Err(error) = aggregator.stop().await {
        panic!("{error}");
    }
}

//! A running audit (with identity for tokens), a publisher, and direct
//! database access for counting and tampering.

use std::time::{Duration, Instant};

use mcr_audit::AuditService;
use mcr_audit_client::AuditPublisher;
use mcr_proto::audit::v1::audit_client::AuditClient;
use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome};
use mcr_proto::common::v1::{Actor, ActorKind, Role};
use mcr_runtime::McrService;
use mcr_runtime::nats::NatsBus;
use mcr_runtime::settings::NatsSettings;
use mcr_testkit::{RunningService, TestEnvironment};
use mcr_testkit_identity::Identity;
use sqlx::PgPool;
use tonic::transport::Channel;

pub use mcr_testkit_identity::with_token;

/// Audit and identity in one test environment.
pub struct Harness {
    pub identity: Identity,
    /// Held so the service lives as long as the harness.
    _audit: RunningService,
    pub client: AuditClient<Channel>,
    pub publisher: AuditPublisher,
    pub nats: NatsBus,
    pub database: PgPool,
}

impl Harness {
    /// Starts identity and audit; `overrides` are audit settings.
    pub async fn start(overrides: &[(&str, &str)]) -> Self {
        let environment = TestEnvironment::new().await;
        let identity = mcr_testkit_identity::start_in(environment.clone(), &[]).await;
        let identity_url = identity.identity_url();
        let mut settings = vec![
            ("MCR_AUTH__IDENTITY_URL", identity_url.as_str()),
            ("MCR_AUDIT__CHECKPOINT_INTERVAL_MS", "200"),
        ];
        settings.extend_from_slice(overrides);
        let audit = mcr_testkit::spawn_service::<AuditService>(&environment, &settings).await;
        let client = AuditClient::new(audit.channel().await);
        let nats = bus(&environment).await;
        let database = database(&environment).await;
        Self {
            publisher: AuditPublisher::new(nats.clone()),
            identity,
            _audit: audit,
            client,
            nats,
            database,
        }
    }

    /// Publishes `events`, each acknowledged by JetStream.
    pub async fn publish(&self, events: &[AuditEvent]) {
        for event in events {
            if let Err(error) = self.publisher.publish(event).await {
                panic!("publishing an audit event failed: {error}");
            }
        }
    }

    /// Waits until `count` events are stored.
    pub async fn wait_for_stored(&self, count: i64) {
        wait_for_count(&self.database, count, Duration::from_secs(60)).await;
    }

    /// An access token for a new user with `role`.
    pub async fn token(&self, username: &str, role: Role) -> String {
        self.identity.token_for(username, "RQW", role).await
    }
}

/// NATS in `environment`'s namespace.
pub async fn bus(environment: &TestEnvironment) -> NatsBus {
    let settings = NatsSettings {
        url: "nats://127.0.0.1:4222".to_owned(),
        namespace: environment.id.clone(),
        connect_timeout_ms: 2_000,
    };
    match NatsBus::connect(&settings, "audit-test").await {
        Ok(bus) => bus,
        Err(error) => panic!("nats: {error}"),
    }
}

/// A pool on audit's database of `environment`, as the table owner.
pub async fn database(environment: &TestEnvironment) -> PgPool {
    let name = environment.database_name(&AuditService::SPEC);
    let url = format!("postgres://mcr:mcr@127.0.0.1:5432/{name}");
    match PgPool::connect(&url).await {
        Ok(pool) => pool,
        Err(error) => panic!("cannot connect to {name}: {error}"),
    }
}

/// Stored events now, leaving out what other services and audit itself
/// record on the side (identity audits every sign-in, audit every query):
/// sign-ins, revocations, administration and audit's own calls.
pub async fn stored_count(database: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action NOT IN (9, 10, 11, 16, 17, 18)",
    )
    .fetch_one(database)
    .await
    .unwrap_or(-1)
}

/// The head sequence (every event counts).
pub async fn head(database: &PgPool) -> u64 {
    sqlx::query_scalar::<_, i64>("SELECT coalesce(max(sequence), 0) FROM audit_events")
        .fetch_one(database)
        .await
        .map_or(0, |head| u64::try_from(head).unwrap_or(0))
}

/// Waits until exactly `count` events are stored; panics on more or on timeout.
pub async fn wait_for_count(database: &PgPool, count: i64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let stored = stored_count(database).await;
        assert!(stored <= count, "{stored} events stored, expected {count}");
        if stored == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {stored} of {count} events stored within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An event of `action` by `actor` about `person` (a UUID, or empty).
pub fn event(action: AuditAction, actor: &str, organisation: &str, person: &str) -> AuditEvent {
    AuditEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        source_service: "record-aggregator".to_owned(),
        actor: Some(Actor {
            user_id: actor.to_owned(),
            role_profile_id: uuid::Uuid::now_v7().to_string(),
            role: Role::Nurse as i32,
            role_code: "R8001".to_owned(),
            organisation_code: organisation.to_owned(),
            session_id: uuid::Uuid::now_v7().to_string(),
            kind: ActorKind::User as i32,
            display_name: "Nurse Jones".to_owned(),
        }),
        action: action as i32,
        person_id: person.to_owned(),
        purpose: 1,
        purpose_of_use_code: "TREAT".to_owned(),
        outcome: AuditOutcome::Permitted as i32,
        categories: vec![2, 3],
        entry_count: 4,
        description: "viewed care record".to_owned(),
        ..Default::default()
    }
}

/// `count` record views by one actor about one person.
pub fn views(count: usize, person: &str) -> Vec<AuditEvent> {
    (0..count)
        .map(|_| event(AuditAction::ViewRecord, "nurse-1", "RQW", person))
        .collect()
}

/// A fresh person id.
pub fn person() -> String {
    uuid::Uuid::new_v4().to_string()
}

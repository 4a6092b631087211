//! Alerts for privacy officers on NATS: every break-glass event, and one
//! actor viewing more distinct persons within the window than the threshold.
//!
//! Denied views count as much as permitted ones: probing is what the alert
//! is for. A probe of a reference that names nobody (the aggregator records
//! it denied, with the reference as asked and no `person_id`) counts as one
//! person per distinct reference, so an enumeration of unregistered NHS
//! Numbers is caught too.
//!
//! Alerts follow storage: an event is alerted on once it is in the chain.
//! The unusual-access count runs in PostgreSQL and each alert is claimed
//! there (one per actor per window), so replicas agree and never raise the
//! same alert twice. Alerts are core NATS messages: a privacy officer's
//! console subscribes; the chain, not the alert, is the record.

use std::collections::BTreeSet;
use std::time::Duration;

use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome, UnusualAccessAlert};
use mcr_proto::consent::v1::{BreakGlassAlert, BreakGlassGrant};
use mcr_runtime::nats::NatsBus;
use prost::Message;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::convert::timestamp;
use crate::domain::event::ValidEvent;
use crate::store::checkpoints as store;

/// Every break-glass event, as a `BreakGlassAlert`.
pub const BREAK_GLASS_SUBJECT: &str = "mcr.alerts.v1.break_glass";
/// Unusual access, as an `UnusualAccessAlert`.
pub const UNUSUAL_ACCESS_SUBJECT: &str = "mcr.alerts.v1.unusual_access";
/// Alerts raised, by kind.
pub const ALERTS_METRIC: &str = "mcr_audit_alerts_total";

/// Denied views of references that named nobody read per check, at most.
const MAX_UNRESOLVED_READ: i64 = 1_000;

/// The actions counted as viewing a person.
pub const VIEW_ACTIONS: &[AuditAction] = &[
    AuditAction::ViewRecord,
    AuditAction::ViewEntry,
    AuditAction::ViewPerson,
];

/// What raising alerts needs.
#[derive(Debug, Clone)]
pub struct Alerts {
    pub pool: PgPool,
    pub nats: NatsBus,
    pub threshold: u32,
    pub window: Duration,
}

impl Alerts {
    /// Raises the alerts that the newly stored `events` call for.
    pub async fn after_append(&self, events: &[&ValidEvent]) {
        for event in events {
            if event.event.action == AuditAction::BreakGlass as i32 {
                self.break_glass(event).await;
            }
        }
        let view_actions: Vec<i32> = VIEW_ACTIONS.iter().map(|action| *action as i32).collect();
        let actors: BTreeSet<&str> = events
            .iter()
            .filter(|event| {
                view_actions.contains(&event.event.action) && event.columns.person_id.is_some()
            })
            .map(|event| event.columns.actor_user_id.as_str())
            .collect();
        let probing: BTreeSet<&str> = events
            .iter()
            .filter(|event| {
                view_actions.contains(&event.event.action)
                    && event.columns.person_id.is_none()
                    && event.event.outcome == AuditOutcome::Denied as i32
            })
            .map(|event| event.columns.actor_user_id.as_str())
            .collect();
        if !actors.is_empty()
            && let Err(error) = self.unusual_access(actors, &view_actions).await
        {
            tracing::error!(%error, "checking for unusual access failed");
        }
        for actor in probing {
            if let Err(error) = self.unresolved_probes(actor, &view_actions).await {
                tracing::error!(%error, "checking for unusual access failed");
            }
        }
    }

    /// Counts `actor`'s resolved persons plus each distinct reference of
    /// their denied views that named nobody, and raises the alert past the
    /// threshold. Runs only for actors whose new events include such a view,
    /// and reads at most [`MAX_UNRESOLVED_READ`] of them.
    async fn unresolved_probes(
        &self,
        actor: &str,
        view_actions: &[i32],
    ) -> Result<(), sqlx::Error> {
        let (since, now) = self.window_bounds();
        let resolved: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT person_id) FROM audit_events
             WHERE actor_user_id = $1 AND action = ANY($2) AND person_id IS NOT NULL
               AND occurred_at >= $3",
        )
        .bind(actor)
        .bind(view_actions)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let unresolved: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT canonical FROM audit_events
             WHERE actor_user_id = $1 AND action = ANY($2) AND person_id IS NULL
               AND outcome = $3 AND occurred_at >= $4
             ORDER BY occurred_at DESC LIMIT $5",
        )
        .bind(actor)
        .bind(view_actions)
        .bind(AuditOutcome::Denied as i32)
        .bind(since)
        .bind(MAX_UNRESOLVED_READ)
        .fetch_all(&self.pool)
        .await?;
        let references: BTreeSet<String> = unresolved
            .iter()
            .filter_map(|canonical| AuditEvent::decode(canonical.as_slice()).ok())
            .filter_map(|event| event.requested_person.and_then(|person| person.reference))
            .map(|reference| format!("{reference:?}"))
            .collect();
        let distinct = resolved + i64::try_from(references.len()).unwrap_or(i64::MAX);
        if distinct > i64::from(self.threshold) {
            self.raise(actor.to_owned(), distinct, since, now, view_actions)
                .await?;
        }
        Ok(())
    }

    /// The start of the current window, and now.
    fn window_bounds(&self) -> (OffsetDateTime, OffsetDateTime) {
        let now = OffsetDateTime::now_utc();
        let window = time::Duration::try_from(self.window).unwrap_or(time::Duration::HOUR);
        (now - window, now)
    }

    async fn break_glass(&self, event: &ValidEvent) {
        let audit_event = &event.event;
        let alert = BreakGlassAlert {
            // The event id: a redelivered alert carries the same id.
            alert_id: audit_event.event_id.clone(),
            grant: Some(BreakGlassGrant {
                grant_id: audit_event.break_glass_grant_id.clone(),
                person_id: audit_event.person_id.clone(),
                actor: audit_event.actor.clone(),
                justification: audit_event.description.clone(),
                granted_at: audit_event.occurred_at,
                ..Default::default()
            }),
            raised_at: Some(timestamp(OffsetDateTime::now_utc())),
        };
        self.publish(BREAK_GLASS_SUBJECT, &alert.alert_id, alert.encode_to_vec())
            .await;
        metrics::counter!(ALERTS_METRIC, "kind" => "break_glass").increment(1);
    }

    async fn unusual_access(
        &self,
        actors: BTreeSet<&str>,
        view_actions: &[i32],
    ) -> Result<(), sqlx::Error> {
        let (since, now) = self.window_bounds();
        let actors: Vec<String> = actors.into_iter().map(str::to_owned).collect();
        let over =
            store::actors_over_threshold(&self.pool, &actors, view_actions, since, self.threshold)
                .await?;
        for (actor, distinct_persons) in over {
            self.raise(actor, distinct_persons, since, now, view_actions)
                .await?;
        }
        Ok(())
    }

    /// Claims and publishes the alert of `actor` for this window, unless
    /// another batch or replica already did.
    async fn raise(
        &self,
        actor: String,
        distinct_persons: i64,
        since: OffsetDateTime,
        now: OffsetDateTime,
        view_actions: &[i32],
    ) -> Result<(), sqlx::Error> {
        let window_seconds = i64::try_from(self.window.as_secs().max(1)).unwrap_or(3_600);
        let alert_id = uuid::Uuid::now_v7();
        let bucket = now.unix_timestamp() / window_seconds;
        if !store::claim_alert(&self.pool, &actor, bucket, alert_id).await? {
            return Ok(());
        }
        let event_ids = store::recent_views(&self.pool, &actor, view_actions, since).await?;
        let alert = UnusualAccessAlert {
            alert_id: alert_id.to_string(),
            actor: Some(mcr_proto::common::v1::Actor {
                user_id: actor.clone(),
                ..Default::default()
            }),
            distinct_persons: u32::try_from(distinct_persons).unwrap_or(u32::MAX),
            threshold: self.threshold,
            window_start: Some(timestamp(since)),
            window_end: Some(timestamp(now)),
            raised_at: Some(timestamp(now)),
            event_ids: event_ids.iter().map(uuid::Uuid::to_string).collect(),
        };
        tracing::warn!(actor_user_id = %actor, distinct_persons, threshold = self.threshold, "unusual access");
        self.publish(
            UNUSUAL_ACCESS_SUBJECT,
            &alert.alert_id,
            alert.encode_to_vec(),
        )
        .await;
        metrics::counter!(ALERTS_METRIC, "kind" => "unusual_access").increment(1);
        Ok(())
    }

    async fn publish(&self, subject: &str, alert_id: &str, payload: Vec<u8>) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", alert_id);
        headers.insert("Mcr-Alert-Source", "audit");
        mcr_runtime::propagation::inject_current_into_nats(&mut headers);
        let published = self
            .nats
            .client()
            .publish_with_headers(self.nats.subject(subject), headers, payload.into())
            .await;
        if let Err(error) = published {
            tracing::error!(%error, %subject, "publishing an alert failed");
        }
    }
}

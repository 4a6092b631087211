//! Following patient-index merges (JetStream, durable consumer): a merged
//! person's facts move to the survivor — so a merged-away opt-out keeps
//! denying — and an unmerge moves exactly those facts back. Each move bumps
//! both persons' versions and announces ConsentChanged (PERSON_MERGE) for
//! both, through the outbox like every change.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use mcr_proto::audit::v1::AuditAction;
use mcr_proto::common::v1::Actor;
use mcr_proto::consent::v1::{ConsentChangeKind, ConsentChanged};
use mcr_proto::patient_index::v1::{PersonMerged, PersonUnmerged};
use mcr_runtime::nats::NatsBus;
use prost::Message;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::audit::{Audited, Auditor};
use crate::convert::timestamp;
use crate::error::ConsentError;
use crate::events;
use crate::store::{self, ChangeRow, Tx};

const CONSUMER: &str = "consent-person-merges";

/// Applies merges and unmerges to consent's facts.
#[derive(Debug, Clone)]
pub struct MergeFollower {
    pub pool: PgPool,
    pub nats: NatsBus,
    pub auditor: Auditor,
}

fn uuid(field: &str, value: &str) -> Result<Uuid, ConsentError> {
    Uuid::parse_str(value)
        .map_err(|_| ConsentError::Corrupt(format!("merge event {field} is not a UUID")))
}

impl MergeFollower {
    /// Consumes until `stop`; re-attaches after any stream failure.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            // Cancellable even while NATS does not answer, so shutdown never waits on it.
            tokio::select! {
                () = stop.cancelled() => return,
                consumed = self.consume(&stop) => if let Err(error) = consumed {
                    tracing::warn!(%error, "following patient-index merges failed; re-attaching");
                },
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }

    async fn consume(&self, stop: &CancellationToken) -> Result<(), ConsentError> {
        let messaging = |error: &dyn std::fmt::Display| ConsentError::Messaging(error.to_string());
        let stream = self
            .nats
            .ensure_stream(mcr_runtime::streams::index_events_stream_config())
            .await
            .map_err(|e| messaging(&e))?;
        let consumer = self
            .nats
            .ensure_pull_consumer(
                &stream,
                jetstream::consumer::pull::Config {
                    durable_name: Some(CONSUMER.to_owned()),
                    filter_subject: "mcr.index.v1.person.>".to_owned(),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| messaging(&e))?;
        let mut messages = consumer.messages().await.map_err(|e| messaging(&e))?;
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            let Some(message) = next else { return Ok(()) };
            let message = message.map_err(|e| messaging(&e))?;
            let subject = message.subject.to_string();
            let handled = if subject.ends_with(".person.merged") {
                match PersonMerged::decode(message.payload.as_ref()) {
                    Ok(event) => self.merged(&event).await,
                    Err(error) => Err(ConsentError::Corrupt(format!("PersonMerged: {error}"))),
                }
            } else if subject.ends_with(".person.unmerged") {
                match PersonUnmerged::decode(message.payload.as_ref()) {
                    Ok(event) => self.unmerged(&event).await,
                    Err(error) => Err(ConsentError::Corrupt(format!("PersonUnmerged: {error}"))),
                }
            } else {
                Ok(())
            };
            let acknowledgement = match handled {
                Ok(()) => message.ack().await,
                Err(ConsentError::Corrupt(reason)) => {
                    tracing::error!(%reason, %subject, "unusable index event dropped");
                    message.ack_with(AckKind::Term).await
                }
                Err(error) => {
                    tracing::warn!(%error, %subject, "index event not applied; redelivery in 2 s");
                    message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                        .await
                }
            };
            if let Err(error) = acknowledgement {
                tracing::warn!(%error, "acknowledging an index event failed");
            }
        }
    }

    #[tracing::instrument(name = "consent.person_merged", skip_all)]
    async fn merged(&self, event: &PersonMerged) -> Result<(), ConsentError> {
        let merge_id = uuid("merge_id", &event.merge_id)?;
        let surviving = uuid("surviving_person_id", &event.surviving_person_id)?;
        let merged = uuid("merged_person_id", &event.merged_person_id)?;
        let now = OffsetDateTime::now_utc();
        let mut tx = store::begin(&self.pool).await?;
        if !store::claim_merge(&mut tx, merge_id, surviving, merged, now).await? {
            return Ok(());
        }
        let versions = bump_both(&mut tx, [surviving, merged]).await?;
        let moved = store::move_facts(&mut tx, merge_id, surviving, merged).await?;
        tracing::info!(%merge_id, moved, "facts moved to the surviving person");
        self.commit(
            tx,
            merge_id,
            versions,
            event.actor.clone().unwrap_or_default(),
            "facts moved by a person merge",
        )
        .await
    }

    #[tracing::instrument(name = "consent.person_unmerged", skip_all)]
    async fn unmerged(&self, event: &PersonUnmerged) -> Result<(), ConsentError> {
        let merge_id = uuid("merge_id", &event.merge_id)?;
        let now = OffsetDateTime::now_utc();
        let mut tx = store::begin(&self.pool).await?;
        let Some((surviving, restored)) = store::claim_unmerge(&mut tx, merge_id, now).await?
        else {
            return Ok(());
        };
        let versions = bump_both(&mut tx, [surviving, restored]).await?;
        let moved = store::restore_facts(&mut tx, merge_id, surviving, restored).await?;
        tracing::info!(%merge_id, moved, "facts moved back to the restored person");
        self.commit(
            tx,
            merge_id,
            versions,
            event.actor.clone().unwrap_or_default(),
            "facts moved back by an unmerge",
        )
        .await
    }

    /// Appends both persons' ConsentChanged, audits, commits and announces.
    async fn commit(
        &self,
        mut tx: Tx,
        merge_id: Uuid,
        versions: Vec<(Uuid, u64)>,
        actor: Actor,
        description: &str,
    ) -> Result<(), ConsentError> {
        let now = OffsetDateTime::now_utc();
        let audited_person = versions.first().map(|(person_id, _)| *person_id);
        let persons: Vec<Uuid> = versions.iter().map(|(person_id, _)| *person_id).collect();
        store::refresh_decision_facts(&mut tx, &persons).await?;
        let mut outbox = Vec::new();
        let mut rows = Vec::new();
        for (person_id, version) in versions {
            let event_id = Uuid::now_v7();
            let event = ConsentChanged {
                event_id: event_id.to_string(),
                person_id: person_id.to_string(),
                change_kind: ConsentChangeKind::PersonMerge as i32,
                fact_id: merge_id.to_string(),
                consent_version: version,
                actor: Some(actor.clone()),
                occurred_at: Some(timestamp(now)),
            }
            .encode_to_vec();
            rows.push(ChangeRow {
                event_id,
                person_id,
                change_kind: ConsentChangeKind::PersonMerge as i16,
                fact_id: merge_id,
                consent_version: version,
                occurred_at: now,
                actor_user_id: actor.user_id.clone(),
                actor_organisation_code: actor.organisation_code.clone(),
                source_system: "patient-index".to_owned(),
                note: description.to_owned(),
                fact: Vec::new(),
                event: event.clone(),
            });
            outbox.push((event_id, person_id, event));
        }
        store::append_changes(&mut tx, &rows).await?;
        self.auditor
            .record(
                &actor,
                AuditAction::ConsentChange,
                true,
                Audited {
                    person_id: audited_person,
                    description: description.to_owned(),
                    reasons: Vec::new(),
                    target_reference: merge_id.to_string(),
                },
                |_| {},
            )
            .await?;
        tx.commit().await?;
        events::announce_all(&self.nats, &self.pool, outbox).await;
        Ok(())
    }
}

/// Bumps both persons' versions first, in id order, so a merge takes the
/// person row locks before any fact row, as every change RPC does.
async fn bump_both(tx: &mut Tx, persons: [Uuid; 2]) -> Result<Vec<(Uuid, u64)>, ConsentError> {
    let now = OffsetDateTime::now_utc();
    let mut ordered = persons;
    ordered.sort();
    let mut versions = Vec::with_capacity(2);
    for person_id in ordered {
        versions.push((person_id, store::bump_version(tx, person_id, now).await?));
    }
    Ok(versions)
}

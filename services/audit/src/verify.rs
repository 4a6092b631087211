//! VerifyChain: walk the stored links of a range through the domain's
//! verifier, check the signed checkpoints on the way, and the latest
//! checkpoint against the head (truncation).

use futures::StreamExt;
use mcr_proto::audit::v1::AuditEvent;
use prost::Message;
use sqlx::PgPool;

use crate::domain::chain::{self, Break, BreakKind, Head, StoredLink, Verifier};
use crate::domain::checkpoint::{self, CheckpointBody};
use crate::domain::event;
use crate::error::AuditError;
use crate::store::checkpoints::CheckpointRow;
use crate::store::{self, LinkRow};

/// The outcome of a verification.
#[derive(Debug, Clone)]
pub struct Verification {
    pub first_break: Option<Break>,
    pub verified_from: u64,
    pub verified_to: u64,
    pub events_verified: u64,
    pub head: Head,
    pub latest_checkpoint: Option<CheckpointRow>,
    pub checkpoints_verified: u32,
}

fn columns_match(row: &LinkRow) -> bool {
    let Ok(decoded) = AuditEvent::decode(row.canonical.as_slice()) else {
        return false;
    };
    let Ok(columns) = event::columns(&decoded) else {
        return false;
    };
    columns.event_id == row.event_id
        && columns.occurred_at == row.occurred_at
        && columns.action == row.action
        && columns.outcome == row.outcome
        && columns.person_id == row.person_id
        && columns.actor_user_id == row.actor_user_id
        && columns.organisation_code == row.organisation_code
}

fn body_of(row: &CheckpointRow) -> Option<CheckpointBody> {
    Some(CheckpointBody {
        sequence: u64::try_from(row.sequence).ok()?,
        head_hash: chain::as_hash(&row.head_hash)?,
        created_at: row.created_at,
    })
}

fn check_checkpoint(row: &CheckpointRow, trusted: &[[u8; 32]]) -> Result<CheckpointBody, Break> {
    let sequence = u64::try_from(row.sequence).unwrap_or(0);
    let body = body_of(row).ok_or_else(|| Break {
        sequence,
        kind: BreakKind::CheckpointSignatureInvalid,
        detail: format!("checkpoint {sequence} is malformed"),
    })?;
    checkpoint::verify(&body, &row.signature, &row.public_key, trusted).map_err(|reason| {
        Break {
            sequence,
            kind: BreakKind::CheckpointSignatureInvalid,
            detail: format!("checkpoint {sequence}: {reason}"),
        }
    })?;
    Ok(body)
}

/// Verifies `from..=to` (0 = oldest / head) against `trusted` checkpoint keys.
pub async fn verify(
    pool: &PgPool,
    trusted: &[[u8; 32]],
    from: u64,
    to: u64,
) -> Result<Verification, AuditError> {
    let head = store::head(pool).await?;
    // Retention removes the oldest events; the recorded purge anchors what
    // remains. Starting at "the oldest stored" instead would hide a deleted
    // first event.
    let purged = store::retention::latest_purge(pool).await?;
    let purged_up_to = purged.as_ref().map_or(0, |(up_to, _)| *up_to);
    let from = from.max(purged_up_to + 1);
    let to = if to == 0 {
        head.sequence
    } else {
        to.min(head.sequence)
    };
    let latest_checkpoint = store::checkpoints::latest(pool).await?;
    let checkpoints = store::checkpoints::between(pool, from, to).await?;
    let mut pending = checkpoints.iter().peekable();
    let mut checkpoints_verified = 0_u32;

    let anchor = match &purged {
        _ if from <= 1 => Some(chain::GENESIS),
        Some((up_to, anchor_hash)) if *up_to + 1 == from => chain::as_hash(anchor_hash),
        _ => store::hash_at(pool, from - 1)
            .await?
            .and_then(|hash| chain::as_hash(&hash)),
    };
    let mut verifier = anchor.map(|previous| Verifier::starting_at(from.max(1), previous));
    let mut first_break = None;
    let mut rows = store::links(pool, from, to);
    while let Some(row) = rows.next().await {
        let row = row?;
        let sequence = u64::try_from(row.sequence).unwrap_or(0);
        // Past retention the first kept event's previous hash is the anchor.
        let walker = verifier.get_or_insert_with(|| {
            Verifier::starting_at(
                sequence,
                chain::as_hash(&row.previous_hash).unwrap_or(chain::GENESIS),
            )
        });
        let checked = walker.check(StoredLink {
            sequence,
            canonical: &row.canonical,
            previous_hash: &row.previous_hash,
            hash: &row.hash,
            columns_match: columns_match(&row),
        });
        if let Err(found) = checked {
            first_break = Some(found);
            break;
        }
        while let Some(checkpoint_row) = pending.next_if(|cp| cp.sequence <= row.sequence) {
            let outcome = check_checkpoint(checkpoint_row, trusted).and_then(|body| {
                if body.sequence == sequence && body.head_hash != walker.last_hash() {
                    return Err(Break {
                        sequence,
                        kind: BreakKind::CheckpointMismatch,
                        detail: format!("sequence {sequence}: the chain hash differs from the one signed in checkpoint {sequence}"),
                    });
                }
                Ok(())
            });
            if let Err(found) = outcome {
                first_break = Some(found);
                break;
            }
            checkpoints_verified += 1;
        }
        if first_break.is_some() {
            break;
        }
    }
    drop(rows);
    let events_verified = verifier.as_ref().map_or(0, Verifier::verified);
    if first_break.is_none()
        && let Some(latest) = &latest_checkpoint
    {
        let latest_sequence = u64::try_from(latest.sequence).unwrap_or(0);
        if latest_sequence > head.sequence {
            first_break = Some(match check_checkpoint(latest, trusted) {
                Err(found) => found,
                Ok(_) => Break {
                    sequence: head.sequence + 1,
                    kind: BreakKind::Truncated,
                    detail: format!(
                        "the chain ends at sequence {} but checkpoint {latest_sequence}, signed at {}, covers events up to {latest_sequence}: the tail was removed",
                        head.sequence, latest.created_at
                    ),
                },
            });
        }
    }
    Ok(Verification {
        first_break,
        verified_from: from,
        verified_to: verifier
            .as_ref()
            .map_or(0, |walker| walker.next_sequence().saturating_sub(1)),
        events_verified,
        head,
        latest_checkpoint,
        checkpoints_verified,
    })
}

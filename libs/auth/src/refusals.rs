//! Refused access tokens on the audit trail.
//!
//! Every call the auth layer refuses (no token, forged, tampered, from
//! another deployment, expired, revoked) becomes an `AUTHENTICATE` /
//! `DENIED` audit event, so a privacy officer sees a replayed revoked
//! session or a forging attempt next to everything else. The event carries
//! the reason class, the method, the client address and, when the token's
//! payload can be read at all, the subject and session it *claims*:
//!
//! - when the signature verified (expired, not yet valid, revoked, wrong
//!   issuer or audience) those claims are genuine, so the actor is the real
//!   user id and session: "this session's revoked token was replayed";
//! - otherwise nothing in the token is trustworthy, so the actor id is
//!   `unverified:<claimed subject>` (never attributed to the real user),
//!   or `anonymous` when there is no readable subject.
//!
//! The token itself is never recorded or logged.
//!
//! **Bounded, never blocking.** Refusals go through a bounded queue to one
//! background publisher that awaits JetStream's ack per event. The request
//! path only `try_send`s: a flood of bad tokens can fill the queue, never
//! stall the service or exhaust its memory. What does not fit is counted
//! and recorded as one summary event ("N further refusals not individually
//! audited") as soon as the queue has room — so under attack the trail
//! keeps the first refusals in full and the volume of the rest, which is
//! what an investigation needs. A refusal is audited after the caller was
//! answered, unlike data access (no data left, so nothing to withhold).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcr_audit_client::AuditPublisher;
use mcr_proto::audit::v1::{AuditAction, AuditEvent, AuditOutcome, OutcomeReason};
use mcr_proto::common::v1::{Actor, ActorKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::AuthError;

/// Refusals waiting to be published, at most; past this they are counted.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1_024;
/// Refusals that did not fit in the queue.
pub const DROPPED_METRIC: &str = "mcr_auth_refusals_not_audited_total";

/// The longest claimed subject or session recorded (a forger chooses them).
const MAX_CLAIMED_CHARS: usize = 64;
/// Tokens longer than this are not even peeked into.
const MAX_PEEKED_TOKEN_BYTES: usize = 8 * 1024;

/// One refused call, as the auth layer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why the token was refused.
    pub reason: AuthError,
    /// The gRPC method path, e.g. `/mcr.records.v1.RecordAggregator/GetCareRecord`.
    pub method: String,
    /// The client's IP address, when known.
    pub client_address: String,
    /// What the token claims about its holder, if readable.
    pub claimed: ClaimedCaller,
}

/// The subject, session and organisation a token claims. Genuine only when
/// `signature_verified`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimedCaller {
    /// `sub`, if readable.
    pub subject: Option<String>,
    /// `sid`, if readable.
    pub session_id: Option<String>,
    /// `org`, if readable.
    pub organisation_code: Option<String>,
    /// Whether the signature checked out (the claims are the issuer's).
    pub signature_verified: bool,
}

impl ClaimedCaller {
    /// Reads `token`'s payload without trusting it; `reason` says whether
    /// the verifier got past the signature.
    pub fn peek(token: Option<&str>, reason: &AuthError) -> Self {
        let signature_verified = matches!(
            reason,
            AuthError::Expired
                | AuthError::NotYetValid
                | AuthError::Revoked
                | AuthError::WrongIssuer
                | AuthError::WrongAudience
        );
        let Some(token) = token.filter(|token| token.len() <= MAX_PEEKED_TOKEN_BYTES) else {
            return Self::default();
        };
        let payload = token
            .split('.')
            .nth(1)
            .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
        let Some(payload) = payload else {
            return Self::default();
        };
        let text = |name: &str| {
            payload
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(bounded)
                .filter(|value| !value.is_empty())
        };
        Self {
            subject: text("sub"),
            session_id: text("sid"),
            organisation_code: text("org"),
            signature_verified,
        }
    }
}

/// Printable, at most [`MAX_CLAIMED_CHARS`]: a forger chooses these.
fn bounded(value: &str) -> String {
    value
        .chars()
        .filter(|character| !character.is_control())
        .take(MAX_CLAIMED_CHARS)
        .collect()
}

/// A machine code for each reason, as the audit event's reason code.
pub fn reason_code(reason: &AuthError) -> &'static str {
    match reason {
        AuthError::MissingToken => "TOKEN_MISSING",
        AuthError::Malformed => "TOKEN_MALFORMED",
        AuthError::AlgorithmNotAllowed => "TOKEN_ALGORITHM_NOT_ALLOWED",
        AuthError::UnknownKey => "TOKEN_UNKNOWN_KEY",
        AuthError::BadSignature => "TOKEN_BAD_SIGNATURE",
        AuthError::Expired => "TOKEN_EXPIRED",
        AuthError::NotYetValid => "TOKEN_NOT_YET_VALID",
        AuthError::WrongIssuer => "TOKEN_WRONG_ISSUER",
        AuthError::WrongAudience => "TOKEN_WRONG_AUDIENCE",
        AuthError::InvalidClaims => "TOKEN_INVALID_CLAIMS",
        AuthError::Revoked => "TOKEN_REVOKED",
        AuthError::KeysUnavailable(_) => "SIGNING_KEYS_UNAVAILABLE",
        AuthError::NoServiceCredentials => "NO_SERVICE_CREDENTIALS",
    }
}

/// The audit event of `refusal`, published by `source_service`.
pub fn refusal_event(refusal: &Refusal, source_service: &str) -> AuditEvent {
    let claimed = &refusal.claimed;
    let user_id = match (&claimed.subject, claimed.signature_verified) {
        (Some(subject), true) => subject.clone(),
        (Some(subject), false) => format!("unverified:{subject}"),
        (None, _) => "anonymous".to_owned(),
    };
    let trusted = |value: &Option<String>| {
        if claimed.signature_verified {
            value.clone().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let organisation_code: String = trusted(&claimed.organisation_code)
        .chars()
        .take(12)
        .collect();
    let session = claimed
        .session_id
        .as_ref()
        .map(|session| {
            if claimed.signature_verified {
                format!("session {session}")
            } else {
                format!("unverified session {session}")
            }
        })
        .unwrap_or_default();
    AuditEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at: Some(now()),
        source_service: source_service.chars().take(64).collect(),
        actor: Some(Actor {
            user_id,
            organisation_code,
            session_id: trusted(&claimed.session_id),
            kind: ActorKind::User as i32,
            ..Default::default()
        }),
        action: AuditAction::Authenticate as i32,
        outcome: AuditOutcome::Denied as i32,
        reasons: vec![OutcomeReason {
            code: reason_code(&refusal.reason).to_owned(),
            text: refusal.reason.to_string().chars().take(500).collect(),
        }],
        trace_id: mcr_runtime::propagation::current_trace_id().unwrap_or_default(),
        client_address: refusal.client_address.clone(),
        target_reference: session,
        description: format!("access token refused on {}", refusal.method)
            .chars()
            .take(500)
            .collect(),
        ..Default::default()
    }
}

fn summary_event(not_audited: u64, source_service: &str) -> AuditEvent {
    AuditEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at: Some(now()),
        source_service: source_service.chars().take(64).collect(),
        actor: Some(Actor {
            user_id: "anonymous".to_owned(),
            kind: ActorKind::User as i32,
            ..Default::default()
        }),
        action: AuditAction::Authenticate as i32,
        outcome: AuditOutcome::Denied as i32,
        reasons: vec![OutcomeReason {
            code: "REFUSALS_NOT_INDIVIDUALLY_AUDITED".to_owned(),
            text: format!(
                "{not_audited} further refused access tokens arrived while the refusal audit queue was full"
            ),
        }],
        description: format!("{not_audited} refused access tokens not individually audited"),
        ..Default::default()
    }
}

fn now() -> prost_types::Timestamp {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(elapsed.subsec_nanos()).unwrap_or(0),
    }
}

/// Where the auth layer sends refusals; cheap to clone.
#[derive(Debug, Clone)]
pub struct RefusalAudit {
    sender: mpsc::Sender<Refusal>,
    not_audited: Arc<AtomicU64>,
}

impl RefusalAudit {
    /// Starts the publisher on `tasks`; it publishes until `stop`, then
    /// publishes what is still queued and ends.
    pub fn start(
        publisher: AuditPublisher,
        source_service: &'static str,
        capacity: usize,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let not_audited = Arc::new(AtomicU64::new(0));
        tasks.spawn(publish_refusals(
            publisher,
            source_service,
            receiver,
            Arc::clone(&not_audited),
            stop,
        ));
        Self {
            sender,
            not_audited,
        }
    }

    /// A sink whose refusals go to `sender` (tests read them there).
    pub fn to_channel(sender: mpsc::Sender<Refusal>) -> Self {
        Self {
            sender,
            not_audited: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues `refusal` without waiting; when the queue is full it is only
    /// counted.
    pub fn record(&self, refusal: Refusal) {
        if self.sender.try_send(refusal).is_err() {
            self.not_audited.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(DROPPED_METRIC).increment(1);
        }
    }

    /// Refusals counted but not queued since the last summary.
    pub fn not_audited(&self) -> u64 {
        self.not_audited.load(Ordering::Relaxed)
    }
}

async fn publish_refusals(
    publisher: AuditPublisher,
    source_service: &'static str,
    mut receiver: mpsc::Receiver<Refusal>,
    not_audited: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    loop {
        let refusal = tokio::select! {
            refusal = receiver.recv() => refusal,
            () = stop.cancelled() => {
                receiver.close();
                receiver.recv().await
            }
        };
        let Some(refusal) = refusal else {
            return;
        };
        publish(&publisher, &refusal_event(&refusal, source_service)).await;
        let missed = not_audited.swap(0, Ordering::Relaxed);
        if missed > 0 {
            publish(&publisher, &summary_event(missed, source_service)).await;
        }
    }
}

async fn publish(publisher: &AuditPublisher, event: &AuditEvent) {
    if let Err(error) = publisher.publish(event).await {
        // Nothing to withhold (the caller was refused anyway); the log keeps
        // the trace of what the trail missed.
        tracing::warn!(%error, reason = ?event.reasons.first().map(|r| &r.code), "auditing a refused access token failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with(payload: &serde_json::Value) -> String {
        format!(
            "eyJhbGciOiJFZERTQSJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload.to_string())
        )
    }

    #[test]
    fn a_forged_token_is_recorded_as_unverified_and_never_as_the_user() {
        let token = token_with(&serde_json::json!({
            "sub": "real-user", "sid": "s-1", "org": "RQW", "role": "ROLE_SYSTEM_ADMINISTRATOR"
        }));
        let claimed = ClaimedCaller::peek(Some(&token), &AuthError::BadSignature);
        let event = refusal_event(
            &Refusal {
                reason: AuthError::BadSignature,
                method: "/mcr.records.v1.RecordAggregator/GetCareRecord".to_owned(),
                client_address: "192.0.2.7".to_owned(),
                claimed,
            },
            "record-aggregator",
        );
        let actor = event.actor.clone().unwrap_or_default();
        assert_eq!(actor.user_id, "unverified:real-user");
        assert_eq!(
            actor.organisation_code, "",
            "an unverified org is not recorded as the actor's"
        );
        assert_eq!(event.target_reference, "unverified session s-1");
        assert_eq!(event.reasons[0].code, "TOKEN_BAD_SIGNATURE");
        assert_eq!(event.outcome, AuditOutcome::Denied as i32);
        assert_eq!(event.client_address, "192.0.2.7");
        assert!(
            !format!("{event:?}").contains(&token),
            "the token is never recorded"
        );
    }

    #[test]
    fn a_revoked_token_names_its_genuine_user_and_session() {
        let token =
            token_with(&serde_json::json!({"sub": "user-7", "sid": "s-7", "org": "A81001"}));
        let claimed = ClaimedCaller::peek(Some(&token), &AuthError::Revoked);
        let event = refusal_event(
            &Refusal {
                reason: AuthError::Revoked,
                method: "/m".to_owned(),
                client_address: String::new(),
                claimed,
            },
            "consent",
        );
        let actor = event.actor.unwrap_or_default();
        assert_eq!(actor.user_id, "user-7");
        assert_eq!(actor.session_id, "s-7");
        assert_eq!(actor.organisation_code, "A81001");
        assert_eq!(event.reasons[0].code, "TOKEN_REVOKED");
    }

    #[test]
    fn unreadable_or_hostile_claims_are_bounded() {
        assert_eq!(
            ClaimedCaller::peek(Some("garbage"), &AuthError::Malformed),
            ClaimedCaller::default()
        );
        assert_eq!(
            ClaimedCaller::peek(None, &AuthError::MissingToken),
            ClaimedCaller::default()
        );
        let hostile =
            token_with(&serde_json::json!({"sub": format!("{}\n\u{7}", "x".repeat(10_000))}));
        let claimed = ClaimedCaller::peek(Some(&hostile), &AuthError::BadSignature);
        assert_eq!(
            claimed,
            ClaimedCaller::default(),
            "oversized tokens are not peeked into"
        );
        let long = token_with(&serde_json::json!({"sub": format!("{}\n", "x".repeat(500))}));
        let subject = ClaimedCaller::peek(Some(&long), &AuthError::BadSignature).subject;
        assert_eq!(subject.map(|s| s.len()), Some(MAX_CLAIMED_CHARS));
    }

    #[tokio::test]
    async fn a_full_queue_counts_instead_of_blocking() {
        let (sender, mut receiver) = mpsc::channel(2);
        let audit = RefusalAudit::to_channel(sender);
        let refusal = Refusal {
            reason: AuthError::MissingToken,
            method: "/m".to_owned(),
            client_address: String::new(),
            claimed: ClaimedCaller::default(),
        };
        for _ in 0..5 {
            audit.record(refusal.clone());
        }
        assert_eq!(audit.not_audited(), 3);
        assert_eq!(receiver.recv().await, Some(refusal));
        let summary = summary_event(3, "identity");
        assert!(summary.reasons[0].text.starts_with("3 further"));
    }
}

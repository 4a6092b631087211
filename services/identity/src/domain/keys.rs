//! The lifecycle of token signing keys, decided without I/O.
//!
//! A key is created as NEXT and published at once, becomes CURRENT (signs)
//! only after every verifier's cached JWKS has had time to pick it up, and
//! stays published as PREVIOUS after retirement until the last token it
//! signed has expired. So keys rotate with no token ever failing to verify.

use mcr_proto::identity::v1::KeyStatus;
use time::{Duration, OffsetDateTime};

/// One stored key's timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDates {
    /// Key id.
    pub kid: String,
    /// Created (published from then).
    pub created_at: OffsetDateTime,
    /// Began signing.
    pub activated_at: Option<OffsetDateTime>,
    /// Stopped signing.
    pub retired_at: Option<OffsetDateTime>,
}

/// How keys rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long a key signs before the next takes over.
    pub rotation_interval: Duration,
    /// How long a NEXT key is published before it signs: at least the JWKS cache lifetime.
    pub publish_ahead: Duration,
    /// Longest life of a token signed by a key (plus clock skew).
    pub token_lifetime: Duration,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationStep {
    /// No key signs: create one that signs at once (first start).
    CreateCurrent,
    /// The current key is due for rotation: publish its successor.
    CreateNext,
    /// The successor has been published long enough: it signs from now, the old key retires.
    Promote {
        /// The key that starts signing.
        next: String,
        /// The key that stops signing.
        retiring: Option<String>,
    },
    /// Nothing is due.
    Nothing,
}

fn current(keys: &[KeyDates]) -> Option<&KeyDates> {
    keys.iter()
        .filter(|key| key.activated_at.is_some() && key.retired_at.is_none())
        .max_by_key(|key| key.activated_at)
}

fn next(keys: &[KeyDates]) -> Option<&KeyDates> {
    keys.iter()
        .filter(|key| key.activated_at.is_none())
        .max_by_key(|key| key.created_at)
}

/// The kid that signs now.
pub fn signing_kid(keys: &[KeyDates]) -> Option<&str> {
    current(keys).map(|key| key.kid.as_str())
}

impl RotationPolicy {
    /// The step due at `now`.
    pub fn step(&self, keys: &[KeyDates], now: OffsetDateTime) -> RotationStep {
        let Some(current) = current(keys) else {
            return match next(keys) {
                Some(next) => RotationStep::Promote {
                    next: next.kid.clone(),
                    retiring: None,
                },
                None => RotationStep::CreateCurrent,
            };
        };
        let due = current
            .activated_at
            .is_some_and(|activated| activated + self.rotation_interval <= now);
        if !due {
            return RotationStep::Nothing;
        }
        match next(keys) {
            None => RotationStep::CreateNext,
            Some(next) if next.created_at + self.publish_ahead <= now => RotationStep::Promote {
                next: next.kid.clone(),
                retiring: Some(current.kid.clone()),
            },
            Some(_) => RotationStep::Nothing,
        }
    }

    /// The keys to publish at `now`, with their status; retired keys drop out
    /// once no token they signed can still be valid.
    pub fn published<'a>(
        &self,
        keys: &'a [KeyDates],
        now: OffsetDateTime,
    ) -> Vec<(&'a str, KeyStatus)> {
        keys.iter()
            .filter_map(|key| match (key.activated_at, key.retired_at) {
                (None, _) => Some((key.kid.as_str(), KeyStatus::Next)),
                (Some(_), None) => Some((key.kid.as_str(), KeyStatus::Current)),
                (Some(_), Some(retired)) if retired + self.token_lifetime > now => {
                    Some((key.kid.as_str(), KeyStatus::Previous))
                }
                (Some(_), Some(_)) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RotationPolicy = RotationPolicy {
        rotation_interval: Duration::days(30),
        publish_ahead: Duration::minutes(10),
        token_lifetime: Duration::minutes(6),
    };

    fn at(minutes: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::minutes(minutes)
    }

    fn key(kid: &str, created: i64, activated: Option<i64>, retired: Option<i64>) -> KeyDates {
        KeyDates {
            kid: kid.to_owned(),
            created_at: at(created),
            activated_at: activated.map(at),
            retired_at: retired.map(at),
        }
    }

    #[test]
    fn the_first_start_creates_a_signing_key() {
        assert_eq!(POLICY.step(&[], at(0)), RotationStep::CreateCurrent);
    }

    #[test]
    fn a_due_key_gets_a_published_successor_before_it_is_replaced() {
        let month = 30 * 24 * 60;
        let keys = vec![key("a", 0, Some(0), None)];
        assert_eq!(POLICY.step(&keys, at(month - 1)), RotationStep::Nothing);
        assert_eq!(POLICY.step(&keys, at(month)), RotationStep::CreateNext);
        let keys = vec![key("a", 0, Some(0), None), key("b", month, None, None)];
        assert_eq!(POLICY.step(&keys, at(month + 5)), RotationStep::Nothing);
        assert_eq!(
            POLICY.step(&keys, at(month + 10)),
            RotationStep::Promote {
                next: "b".to_owned(),
                retiring: Some("a".to_owned())
            }
        );
        assert_eq!(signing_kid(&keys), Some("a"));
    }

    #[test]
    fn a_retired_key_stays_published_until_its_tokens_expire() {
        let keys = vec![
            key("a", 0, Some(0), Some(100)),
            key("b", 90, Some(100), None),
        ];
        assert_eq!(
            POLICY.published(&keys, at(105)),
            vec![("a", KeyStatus::Previous), ("b", KeyStatus::Current)]
        );
        assert_eq!(
            POLICY.published(&keys, at(106)),
            vec![("b", KeyStatus::Current)]
        );
        assert_eq!(signing_kid(&keys), Some("b"));
    }
}

//! Locking an account after repeated failed sign-ins.

use time::{Duration, OffsetDateTime};

/// How many failures lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the account.
    pub threshold: u32,
    /// How long the lock lasts.
    pub duration: Duration,
}

/// The account's state after one more failed sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterFailure {
    /// Consecutive failures so far (reset to 0 when a lock starts).
    pub failed_attempts: u32,
    /// Set when this failure locked the account.
    pub locked_until: Option<OffsetDateTime>,
}

impl LockoutPolicy {
    /// Whether an account locked until `locked_until` is still locked at `now`.
    pub fn is_locked(locked_until: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
        locked_until.is_some_and(|until| until > now)
    }

    /// Counts one more failure after `failed_attempts` earlier ones.
    pub fn after_failure(&self, failed_attempts: u32, now: OffsetDateTime) -> AfterFailure {
        let attempts = failed_attempts.saturating_add(1);
        if attempts >= self.threshold {
            AfterFailure {
                failed_attempts: 0,
                locked_until: Some(now + self.duration),
            }
        } else {
            AfterFailure {
                failed_attempts: attempts,
                locked_until: None,
            }
        }
    }

    /// The message a locked user sees: why, and until when.
    pub fn locked_message(&self, until: OffsetDateTime) -> String {
        let format = time::macros::format_description!(
            "[hour]:[minute] UTC on [day] [month repr:short] [year]"
        );
        let until_text = until.format(&format).unwrap_or_else(|_| until.to_string());
        format!(
            "this account is locked after {} failed sign-ins until {until_text}; try again then, or ask your system administrator to unlock it",
            self.threshold
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 3,
        duration: Duration::minutes(15),
    };

    #[test]
    fn the_threshold_failure_locks_and_resets_the_count() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let first = POLICY.after_failure(0, now);
        assert_eq!(
            first,
            AfterFailure {
                failed_attempts: 1,
                locked_until: None
            }
        );
        let second = POLICY.after_failure(first.failed_attempts, now);
        assert_eq!(second.locked_until, None);
        let third = POLICY.after_failure(second.failed_attempts, now);
        assert_eq!(third.locked_until, Some(now + Duration::minutes(15)));
        assert_eq!(third.failed_attempts, 0);
    }

    #[test]
    fn a_lock_ends_when_its_time_has_passed() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        assert!(LockoutPolicy::is_locked(
            Some(now + Duration::seconds(1)),
            now
        ));
        assert!(!LockoutPolicy::is_locked(
            Some(now - Duration::seconds(1)),
            now
        ));
        assert!(!LockoutPolicy::is_locked(None, now));
    }

    #[test]
    fn the_message_says_until_when() {
        let until = OffsetDateTime::UNIX_EPOCH + Duration::hours(13) + Duration::minutes(5);
        let message = POLICY.locked_message(until);
        assert!(
            message.contains("13:05 UTC on 01 Jan 1970") && message.contains("3 failed"),
            "{message}"
        );
    }
}

//! The JetStream streams of record updates and of rejected updates.
//!
//! Names and subjects are unscoped; a service or test applies its namespace
//! with `mcr_runtime::nats::NatsBus::ensure_stream`, and [`crate::publisher`]
//! does the same for connectors.

use std::time::Duration;

use async_nats::jetstream::stream;

/// The stream connectors publish record updates into.
pub const RECORDS_STREAM: &str = "MCR_RECORDS";
/// Exactly two tokens after the prefix (organisation, category), so the
/// one-token dead-letter subject is not captured by the records stream.
pub const RECORDS_STREAM_SUBJECT: &str = "mcr.records.v1.*.*";
/// The stream holding the aggregator's dead letters.
pub const DEAD_LETTER_STREAM: &str = "MCR_RECORDS_DEADLETTER";
/// How long JetStream remembers a `Nats-Msg-Id`: a publish retried within it
/// is stored once. Beyond it, versions keep a late duplicate harmless.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long the records stream keeps an update the aggregator has not yet
/// taken: long enough to ride out a long aggregator outage.
pub const RECORDS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long dead letters are kept for someone to look at them.
pub const DEAD_LETTER_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The records stream: file storage, de-duplication on `Nats-Msg-Id`.
/// No message size limit of its own: the server's `max_payload` bounds what
/// is stored, and the aggregator dead-letters anything over
/// [`crate::validate::MAX_MESSAGE_BYTES`] with a reason rather than the
/// publisher getting a bare refusal.
pub fn records_stream_config() -> stream::Config {
    stream::Config {
        name: RECORDS_STREAM.to_owned(),
        description: Some("Record updates published by provider connectors".to_owned()),
        subjects: vec![RECORDS_STREAM_SUBJECT.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: RECORDS_MAX_AGE,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// The dead-letter stream: every update the aggregator rejected, with the
/// reason and the original bytes.
pub fn dead_letter_stream_config() -> stream::Config {
    stream::Config {
        name: DEAD_LETTER_STREAM.to_owned(),
        description: Some("Record updates the aggregator rejected, with the reason".to_owned()),
        subjects: vec![crate::validate::DEAD_LETTER_SUBJECT.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: DEAD_LETTER_MAX_AGE,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{DEAD_LETTER_SUBJECT, subject_for};
    use mcr_proto::common::v1::Category;

    /// NATS subject matching, enough for `*` and literal tokens.
    fn captures(filter: &str, subject: &str) -> bool {
        let filter_tokens: Vec<&str> = filter.split('.').collect();
        let subject_tokens: Vec<&str> = subject.split('.').collect();
        filter_tokens.len() == subject_tokens.len()
            && filter_tokens
                .iter()
                .zip(&subject_tokens)
                .all(|(f, s)| *f == "*" || f == s)
    }

    #[test]
    fn the_records_stream_captures_updates_but_not_dead_letters() {
        let config = records_stream_config();
        assert_eq!(config.name, "MCR_RECORDS");
        assert_eq!(config.storage, stream::StorageType::File);
        assert!(config.duplicate_window >= Duration::from_secs(60));
        let filter = &config.subjects[0];
        assert!(captures(filter, &subject_for("RQW", Category::Medications)));
        assert!(captures(
            filter,
            &subject_for("F81001", Category::SocialCare)
        ));
        assert!(!captures(filter, DEAD_LETTER_SUBJECT));
    }

    #[test]
    fn the_dead_letter_stream_has_its_own_subject() {
        let config = dead_letter_stream_config();
        assert_eq!(config.name, "MCR_RECORDS_DEADLETTER");
        assert_eq!(config.subjects, vec![DEAD_LETTER_SUBJECT.to_owned()]);
        assert_eq!(config.storage, stream::StorageType::File);
    }
}

//! The My Care Record gRPC contract, generated from `proto/` by `build.rs`.
//!
//! Modules mirror the proto packages: `mcr.identity.v1` is [`identity::v1`].
//! Generated code is never committed; change the `.proto` files instead.
#![forbid(unsafe_code)]
#![allow(clippy::all, missing_docs)]

/// Encoded `FileDescriptorSet` of every proto package, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("mcr_descriptor");

/// Shared types: person and organisation references, categories, purposes, paging.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("mcr.common.v1");
    }
}

/// Organisations, professionals, role profiles and tokens.
pub mod identity {
    pub mod v1 {
        tonic::include_proto!("mcr.identity.v1");
    }
}

/// The region's master patient index.
pub mod patient_index {
    pub mod v1 {
        tonic::include_proto!("mcr.patient_index.v1");
    }
}

/// Opt-outs, permissions, care relationships, restrictions, break-glass and `Decide`.
pub mod consent {
    pub mod v1 {
        tonic::include_proto!("mcr.consent.v1");
    }
}

/// The assembled care record and the `RecordUpdate` connectors publish.
pub mod records {
    pub mod v1 {
        tonic::include_proto!("mcr.records.v1");
    }
}

/// The append-only, hash-chained access log and the `AuditEvent` services publish.
pub mod audit {
    pub mod v1 {
        tonic::include_proto!("mcr.audit.v1");
    }
}

/// Between protobuf `Timestamp`s and `time::OffsetDateTime`, which every
/// service stores.
pub mod timestamps {
    use time::OffsetDateTime;

    /// `at` as a protobuf `Timestamp`.
    pub fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: at.unix_timestamp(),
            nanos: i32::try_from(at.nanosecond()).unwrap_or(0),
        }
    }

    /// `timestamp` as an instant; `None` when it is outside what `time`
    /// represents or its nanos are out of range.
    pub fn offset_date_time(timestamp: &prost_types::Timestamp) -> Option<OffsetDateTime> {
        let nanos = u32::try_from(timestamp.nanos)
            .ok()
            .filter(|nanos| *nanos < 1_000_000_000)?;
        OffsetDateTime::from_unix_timestamp(timestamp.seconds)
            .ok()?
            .replace_nanosecond(nanos)
            .ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn instants_survive_the_round_trip_and_nonsense_is_refused() {
            let at = OffsetDateTime::from_unix_timestamp(1_764_000_000)
                .unwrap()
                .replace_nanosecond(123_456_789)
                .unwrap();
            assert_eq!(offset_date_time(&timestamp(at)), Some(at));
            let bad_nanos = prost_types::Timestamp {
                seconds: 0,
                nanos: -1,
            };
            assert_eq!(offset_date_time(&bad_nanos), None);
            let absurd = prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            };
            assert_eq!(offset_date_time(&absurd), None);
        }
    }
}

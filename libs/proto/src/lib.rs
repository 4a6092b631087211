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

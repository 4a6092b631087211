//! The gRPC adapter: every RPC answers UNIMPLEMENTED until this service's issue lands.

use mcr_proto::patient_index::v1::patient_index_server::PatientIndex;

/// The `mcr.patient_index.v1.PatientIndex` handlers.
#[derive(Debug)]
pub(crate) struct PatientIndexApi;

#[tonic::async_trait]
impl PatientIndex for PatientIndexApi {}

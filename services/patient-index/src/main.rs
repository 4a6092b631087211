//! The `mcr-patient-index` binary: the region's master patient index.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mcr_runtime::run::<mcr_patient_index::PatientIndexService>().await
}

//! A patient index with a real identity in front of it, for the index benchmarks.

use mcr_proto::common::v1::LocalIdentifier;
use mcr_proto::patient_index::v1::patient_index_client::PatientIndexClient;
use mcr_proto::patient_index::v1::{
    Demographics, RegisterPersonRequest, RegisterPersonResponse, RegisterPersonsRequest,
};
use mcr_testkit::{RunningService, TestEnvironment};
use tonic::transport::Channel;

/// The running services and a connector's token (index:read, index:write).
pub struct IndexUnderTest {
    pub _identity: mcr_testkit_identity::Identity,
    pub service: RunningService,
    pub client: PatientIndexClient<Channel>,
    pub token: String,
    /// The index's own database, for keeping planner statistics fresh.
    pub database: sqlx::PgPool,
}

/// Starts identity and patient-index in a fresh environment.
pub async fn start() -> IndexUnderTest {
    let environment = TestEnvironment::new().await;
    // Benchmarks run for longer than a default access token lives.
    let identity = mcr_testkit_identity::start_in(
        environment.clone(),
        &[("MCR_IDENTITY__ACCESS_TOKEN_TTL_SECONDS", "7200")],
    )
    .await;
    let identity_url = identity.identity_url();
    let service = mcr_testkit::spawn_service::<mcr_patient_index::PatientIndexService>(
        &environment,
        &[
            ("MCR_AUTH__IDENTITY_URL", identity_url.as_str()),
            ("MCR_DATABASE__MAX_CONNECTIONS", "32"),
        ],
    )
    .await;
    // Registering any organisation's identifiers is a connector's job.
    let token = identity
        .service_token("bench-connector", "MCRAGG", &["index:read", "index:write"])
        .await;
    let client = PatientIndexClient::new(service.channel().await);
    let database_name = environment
        .database_name(&<mcr_patient_index::PatientIndexService as mcr_runtime::McrService>::SPEC);
    let database = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(
            sqlx::postgres::PgConnectOptions::new()
                .host("127.0.0.1")
                .username("mcr")
                .password("mcr")
                .database(&database_name),
        );
    IndexUnderTest {
        _identity: identity,
        service,
        client,
        token,
        database,
    }
}

impl IndexUnderTest {
    /// Registers one identifier of `organisation` with `demographics`.
    pub async fn register(
        &self,
        organisation: &str,
        value: &str,
        demographics: Demographics,
    ) -> anyhow::Result<RegisterPersonResponse> {
        let request = self.authorised(registration(organisation, value, demographics))?;
        Ok(self
            .client
            .clone()
            .register_person(request)
            .await?
            .into_inner())
    }

    /// Registers a batch of `organisation`'s identifiers in one RegisterPersons call.
    pub async fn register_batch(
        &self,
        organisation: &str,
        batch: Vec<(String, Demographics)>,
    ) -> anyhow::Result<Vec<RegisterPersonResponse>> {
        let registrations = batch
            .into_iter()
            .map(|(value, demographics)| registration(organisation, &value, demographics))
            .collect();
        let request = self.authorised(RegisterPersonsRequest { registrations })?;
        Ok(self
            .client
            .clone()
            .register_persons(request)
            .await?
            .into_inner()
            .results)
    }

    /// Refreshes planner statistics, as autovacuum does on its own schedule;
    /// a table that grows from empty within seconds would otherwise be planned
    /// as if it were still tiny.
    pub async fn analyze(&self) -> anyhow::Result<()> {
        sqlx::raw_sql("ANALYZE persons; ANALYZE person_blocking_keys; ANALYZE local_identifiers")
            .execute(&self.database)
            .await?;
        Ok(())
    }

    /// Vacuums and analyzes the index's tables, as an operator does after a
    /// bulk load (and autovacuum would soon do on its own, competing with
    /// the measurements that follow).
    pub async fn vacuum(&self) -> anyhow::Result<()> {
        // One statement each: VACUUM cannot run inside a transaction block.
        for statement in [
            "VACUUM (ANALYZE) persons",
            "VACUUM (ANALYZE) person_blocking_keys",
            "VACUUM (ANALYZE) local_identifiers",
            "VACUUM (ANALYZE) person_history",
        ] {
            sqlx::raw_sql(statement).execute(&self.database).await?;
        }
        Ok(())
    }

    /// `message` with this benchmark's bearer token.
    pub fn authorised<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", self.token).parse()?);
        Ok(request)
    }
}

fn registration(
    organisation: &str,
    value: &str,
    demographics: Demographics,
) -> RegisterPersonRequest {
    RegisterPersonRequest {
        local_identifier: Some(LocalIdentifier {
            organisation_code: organisation.to_owned(),
            system: "https://bench.example/id".to_owned(),
            value: value.to_owned(),
        }),
        demographics: Some(demographics),
    }
}

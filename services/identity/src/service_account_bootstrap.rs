//! Service accounts declared in settings (`identity.bootstrap_service_accounts`),
//! created or brought up to date at every start, so a platform's own
//! services get their credentials from configuration (a Kubernetes Secret)
//! instead of an administrator's hands.

use std::collections::BTreeMap;
use std::time::Duration;

use mcr_proto::common::v1::OrganisationType;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::BootstrapServiceAccount;
use crate::domain::service_accounts::{self, DeclaredServiceAccount};
use crate::domain::tokens;
use crate::domain::validation::{Contact, NewOrganisation};
use crate::error::IdentityError;
use crate::sessions::hex;
use crate::store::{self, ServiceAccountRow, Upserted};

/// Applies every declared account, retrying each until the database is
/// ready; an account whose settings can never work is reported once and skipped.
pub async fn ensure_declared_service_accounts(
    pool: PgPool,
    accounts: BTreeMap<String, BootstrapServiceAccount>,
    stop: CancellationToken,
) {
    for (key, account) in accounts {
        loop {
            match apply(&pool, &key, &account).await {
                Ok(()) => break,
                Err(
                    error @ (IdentityError::InvalidArgument { .. }
                    | IdentityError::AlreadyExists(_)),
                ) => {
                    tracing::error!(%error, account = %key, "invalid settings: identity.bootstrap_service_accounts; account not applied");
                    break;
                }
                Err(error) => {
                    tracing::debug!(%error, account = %key, "declared service account not applied yet");
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}

async fn apply(
    pool: &PgPool,
    key: &str,
    account: &BootstrapServiceAccount,
) -> Result<(), IdentityError> {
    let secret = account.client_secret.expose_secret();
    let declared = service_accounts::declared(
        key,
        &account.client_id,
        secret,
        &account.organisation_code,
        &account.scopes.to_vec(),
    )?;
    ensure_organisation(pool, &declared, account.organisation_name.as_deref()).await?;
    let row = ServiceAccountRow {
        client_id: declared.client_id.clone(),
        name: declared.name.clone(),
        organisation_code: declared.organisation_code.clone(),
        allowed_scopes: declared.scopes.clone(),
        secret_hash: hex(&tokens::hash_secret(secret)),
        active: true,
        created_at: time::OffsetDateTime::now_utc(),
    };
    let outcome = store::upsert_declared_service_account(pool, &row).await?;
    let scopes = declared.scopes.join(" ");
    match outcome {
        Upserted::Created => {
            tracing::info!(client_id = %declared.client_id, name = %declared.name, %scopes, "service account created from settings");
        }
        Upserted::Updated => {
            tracing::info!(client_id = %declared.client_id, name = %declared.name, %scopes, "service account updated from settings");
        }
        Upserted::Unchanged => {
            tracing::debug!(client_id = %declared.client_id, "service account from settings unchanged");
        }
    }
    Ok(())
}

/// The account's organisation, created as the platform operator's when
/// missing (platform services act for the operator).
async fn ensure_organisation(
    pool: &PgPool,
    declared: &DeclaredServiceAccount,
    organisation_name: Option<&str>,
) -> Result<(), IdentityError> {
    if store::get_organisation(pool, &declared.organisation_code)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let name = organisation_name
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or("Platform services")
        .to_owned();
    let organisation = NewOrganisation {
        code: declared.organisation_code.clone(),
        name: name.clone(),
        organisation_type: OrganisationType::PlatformOperator,
        contact: Contact {
            name: "Data Protection Officer".to_owned(),
            lines: vec![name],
            city: String::new(),
            district: String::new(),
            postcode: String::new(),
            country: "GB".to_owned(),
            phone: String::new(),
            email: String::new(),
            web_url: String::new(),
        },
    };
    match store::insert_organisation(pool, &organisation).await {
        Ok(_) | Err(IdentityError::AlreadyExists(_)) => Ok(()),
        Err(other) => Err(other),
    }
}

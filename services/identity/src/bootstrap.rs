//! The first administrator: without one nobody could create anything.

use std::time::Duration;

use mcr_proto::common::v1::{OrganisationType, Role};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::BootstrapAdmin;
use crate::domain::validation::{self, Contact, NewOrganisation, NewRoleProfile, PersonName};
use crate::error::IdentityError;
use crate::passwords;
use crate::store::{self, NewUser};

/// Creates the configured administrator (and the operator's organisation)
/// when the database has no user yet; retries until the database is ready.
pub async fn ensure_initial_administrator(
    pool: PgPool,
    admin: BootstrapAdmin,
    stop: CancellationToken,
) {
    loop {
        match create_if_no_user_exists(&pool, &admin).await {
            Ok(()) => return,
            // Settings that can never work: say so once and stop trying.
            Err(error @ IdentityError::InvalidArgument { .. }) => {
                tracing::error!(%error, "invalid settings: identity.bootstrap_admin; no initial administrator created");
                return;
            }
            Err(error) => tracing::debug!(%error, "initial administrator not created yet"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn create_if_no_user_exists(
    pool: &PgPool,
    admin: &BootstrapAdmin,
) -> Result<(), IdentityError> {
    let username = validation::username(&admin.username)?;
    let password = validation::new_password(admin.password.expose_secret())?.to_owned();
    let organisation_code =
        validation::organisation_code("organisation_code", &admin.organisation_code)?;
    let any_user: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(pool)
        .await?;
    if any_user {
        return Ok(());
    }
    if store::get_organisation(pool, &organisation_code)
        .await?
        .is_none()
    {
        let organisation = NewOrganisation {
            code: organisation_code.clone(),
            name: validation::required_name("organisation_name", &admin.organisation_name, 200)?,
            organisation_type: OrganisationType::PlatformOperator,
            contact: Contact {
                name: "Data Protection Officer".to_owned(),
                lines: vec![admin.organisation_name.clone()],
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
            Ok(_) | Err(IdentityError::AlreadyExists(_)) => {}
            Err(other) => return Err(other),
        }
    }
    let user = NewUser {
        username: username.clone(),
        name: PersonName {
            prefix: String::new(),
            given: vec!["Platform".to_owned()],
            family: "Administrator".to_owned(),
            suffix: String::new(),
        },
        email: String::new(),
        registrations: Vec::new(),
        password_hash: passwords::hash(password).await?,
        role_profiles: vec![NewRoleProfile {
            organisation_code,
            role: Role::SystemAdministrator,
            role_code: Role::SystemAdministrator.as_str_name().to_owned(),
            job_title: "System administrator".to_owned(),
        }],
        external_subjects: Vec::new(),
    };
    match store::insert_user(pool, &user).await {
        // Another replica won the race: that is the same outcome.
        Ok(_) | Err(IdentityError::AlreadyExists(_)) => {
            tracing::info!(%username, "initial administrator created from identity.bootstrap_admin");
            Ok(())
        }
        Err(other) => Err(other),
    }
}

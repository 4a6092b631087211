//! The signing keys in use: loaded from the database, rotated on schedule
//! (one replica at a time, under an advisory lock), published as JWKS, and
//! handed to this service's own token verifier.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use mcr_auth::{KeySource, SigningKeyPair, TokenVerifier};
use mcr_proto::identity::v1::JsonWebKey;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::domain::keys::{KeyDates, RotationPolicy, RotationStep, signing_kid};
use crate::error::IdentityError;
use crate::events::timestamp;
use crate::store::{self, SigningKeyRow};

#[derive(Default)]
struct Loaded {
    signing: Option<SigningKeyPair>,
    published: Vec<JsonWebKey>,
}

/// The keys this replica signs with and publishes.
#[derive(Clone)]
pub struct Keyring {
    pool: PgPool,
    policy: RotationPolicy,
    loaded: Arc<RwLock<Loaded>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Keyring")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn dates(row: &SigningKeyRow) -> KeyDates {
    KeyDates {
        kid: row.kid.clone(),
        created_at: row.created_at,
        activated_at: row.activated_at,
        retired_at: row.retired_at,
    }
}

impl Keyring {
    /// A keyring with nothing loaded yet; see [`Keyring::rotate_and_reload`].
    pub fn new(pool: PgPool, policy: RotationPolicy) -> Self {
        Self {
            pool,
            policy,
            loaded: Arc::new(RwLock::new(Loaded::default())),
        }
    }

    /// The key that signs now; UNAVAILABLE until the first load succeeded.
    pub fn signing_key(&self) -> Result<SigningKeyPair, IdentityError> {
        let loaded = match self.loaded.read() {
            Ok(loaded) => loaded,
            Err(poisoned) => poisoned.into_inner(),
        };
        loaded.signing.clone().ok_or_else(|| {
            IdentityError::Unavailable("no signing key is loaded yet; retry shortly".to_owned())
        })
    }

    /// The keys published now (as last loaded).
    pub fn published(&self) -> Vec<JsonWebKey> {
        match self.loaded.read() {
            Ok(loaded) => loaded.published.clone(),
            Err(poisoned) => poisoned.into_inner().published.clone(),
        }
    }

    /// Applies any due rotation step, then reloads.
    pub async fn rotate_and_reload(&self) -> Result<(), IdentityError> {
        let mut transaction = store::with_key_rotation_lock(&self.pool).await?;
        let rows = store::keys_in(&mut transaction).await?;
        let key_dates: Vec<KeyDates> = rows.iter().map(dates).collect();
        match self.policy.step(&key_dates, OffsetDateTime::now_utc()) {
            RotationStep::CreateCurrent => {
                store::insert_key(&mut transaction, &SigningKeyPair::generate()?, true).await?;
                tracing::info!("created the first token signing key");
            }
            RotationStep::CreateNext => {
                store::insert_key(&mut transaction, &SigningKeyPair::generate()?, false).await?;
                tracing::info!("published the next token signing key");
            }
            RotationStep::Promote { next, retiring } => {
                store::promote_key(&mut transaction, &next, retiring.as_deref()).await?;
                tracing::info!(kid = %next, "token signing key rotated");
            }
            RotationStep::Nothing => {}
        }
        transaction.commit().await?;
        self.reload().await
    }

    async fn reload(&self) -> Result<(), IdentityError> {
        let rows = store::signing_keys(&self.pool).await?;
        let key_dates: Vec<KeyDates> = rows.iter().map(dates).collect();
        let now = OffsetDateTime::now_utc();
        let published = self
            .policy
            .published(&key_dates, now)
            .into_iter()
            .filter_map(|(kid, status)| {
                let row = rows.iter().find(|row| row.kid == kid)?;
                let mut jwk = mcr_auth::signing::public_jwk(kid, &row.public_key, status);
                jwk.created_at = Some(timestamp(row.created_at));
                Some(jwk)
            })
            .collect();
        let signing = signing_kid(&key_dates)
            .and_then(|kid| rows.iter().find(|row| row.kid == kid))
            .and_then(|row| {
                Some(SigningKeyPair {
                    kid: row.kid.clone(),
                    private_pkcs8_der: row.private_pkcs8.clone(),
                    public_key: row.public_key.as_slice().try_into().ok()?,
                })
            });
        let mut loaded = match self.loaded.write() {
            Ok(loaded) => loaded,
            Err(poisoned) => poisoned.into_inner(),
        };
        *loaded = Loaded { signing, published };
        Ok(())
    }

    /// Rotates and reloads every `interval` until `stop`, feeding `verifier`
    /// and raising `ready` once a signing key is loaded. Until then it retries
    /// quickly: the database may still be being created.
    pub async fn maintain(
        self,
        verifier: TokenVerifier,
        interval: Duration,
        ready: Arc<AtomicBool>,
        stop: CancellationToken,
    ) {
        loop {
            match self.rotate_and_reload().await {
                Ok(()) => verifier.set_keys(&self.published()),
                Err(error) => tracing::warn!(%error, "signing keys could not be refreshed"),
            }
            let loaded = self.signing_key().is_ok();
            ready.store(loaded, Ordering::Release);
            let wait = if loaded {
                interval
            } else {
                Duration::from_millis(250)
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

impl KeySource for Keyring {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<JsonWebKey>, mcr_auth::AuthError>> {
        Box::pin(async move {
            self.reload()
                .await
                .map_err(|error| mcr_auth::AuthError::KeysUnavailable(error.to_string()))?;
            Ok(self.published())
        })
    }
}

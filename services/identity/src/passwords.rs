//! Password and client-secret hashing with argon2id at the OWASP minimum
//! (19 MiB, 2 passes, 1 lane). Hashing is CPU-bound on purpose, so it runs on
//! the blocking pool, never on the async workers that serve other calls.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::IdentityError;

/// A PHC string of a known-wrong password, verified when the username does not
/// exist so that a wrong username takes as long as a wrong password.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2w4fBC6ufSAFfmqmyMkiDtUMDzE24fYWoE4uTpsyYhk";

fn hasher() -> Result<Argon2<'static>, IdentityError> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|error| IdentityError::Internal(error.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The PHC string of `secret` with a fresh random salt.
pub async fn hash(secret: String) -> Result<String, IdentityError> {
    tokio::task::spawn_blocking(move || {
        let hashed = hasher()?
            .hash_password(secret.as_bytes())
            .map_err(|error| IdentityError::Internal(format!("hashing failed: {error}")))?;
        Ok(hashed.to_string())
    })
    .await
    .map_err(|error| IdentityError::Internal(error.to_string()))?
}

/// Whether `secret` matches `stored` (a PHC string); `None` compares against a
/// decoy so the caller's timing does not reveal whether an account exists.
pub async fn verify(secret: String, stored: Option<String>) -> Result<bool, IdentityError> {
    tokio::task::spawn_blocking(move || {
        let known_account = stored.is_some();
        let phc = stored.unwrap_or_else(|| DECOY_HASH.to_owned());
        let matches = hasher()?
            .verify_password(secret.as_bytes(), phc.as_str())
            .is_ok();
        Ok(matches && known_account)
    })
    .await
    .map_err(|error| IdentityError::Internal(error.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() -> Result<(), IdentityError> {
        let stored = hash("correct horse battery staple".to_owned()).await?;
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(
            verify(
                "correct horse battery staple".to_owned(),
                Some(stored.clone())
            )
            .await?
        );
        assert!(!verify("correct horse battery stapler".to_owned(), Some(stored)).await?);
        Ok(())
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() -> Result<(), IdentityError> {
        assert!(!verify("anything at all".to_owned(), None).await?);
        Ok(())
    }
}

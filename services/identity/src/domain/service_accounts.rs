//! Service accounts declared in settings: what a configured account must
//! look like before identity stores it.

use crate::domain::validation;
use crate::error::IdentityError;

type Checked<T> = Result<T, IdentityError>;

/// The shortest configured client secret accepted. Only its SHA-256 is
/// stored (no slow hash, as for generated secrets), so it must be too long
/// to guess — 32 random characters, as `openssl rand -base64 24` gives.
pub const MINIMUM_SECRET_CHARACTERS: usize = 32;

/// A configured account, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredServiceAccount {
    pub name: String,
    pub client_id: String,
    pub organisation_code: String,
    pub scopes: Vec<String>,
}

/// The account name from its settings key: `_` reads as `-` because the
/// `config` crate cannot express `-` in an environment variable name.
pub fn account_name(key: &str) -> Checked<String> {
    let name = key.trim().to_ascii_lowercase().replace('_', "-");
    let well_formed = (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '-');
    if !well_formed {
        return Err(IdentityError::invalid(
            "bootstrap_service_accounts",
            format!("account name {key:?} must be 1-100 of a-z, 0-9, '-' and '_'"),
        ));
    }
    Ok(name)
}

/// A configured client id: `svc-` and 1-60 of a-z, 0-9 and `-` — the same
/// prefix generated ids carry, so every client id says it is a service.
pub fn client_id(value: &str) -> Checked<String> {
    let client_id = value.trim();
    let rest = client_id.strip_prefix("svc-").unwrap_or_default();
    let well_formed = (1..=60).contains(&rest.len())
        && rest.chars().all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '-'
        });
    if !well_formed {
        return Err(IdentityError::invalid(
            "client_id",
            "must be 'svc-' then 1-60 of a-z, 0-9 and '-', e.g. svc-record-aggregator",
        ));
    }
    Ok(client_id.to_owned())
}

/// A configured client secret: long enough, printable, no surrounding spaces.
pub fn client_secret(value: &str) -> Checked<&str> {
    let length = value.chars().count();
    if !(MINIMUM_SECRET_CHARACTERS..=256).contains(&length) {
        return Err(IdentityError::invalid(
            "client_secret",
            format!("must be {MINIMUM_SECRET_CHARACTERS}-256 characters, got {length}"),
        ));
    }
    if value.trim() != value || value.chars().any(char::is_control) {
        return Err(IdentityError::invalid(
            "client_secret",
            "must not start or end with spaces or hold control characters",
        ));
    }
    Ok(value)
}

/// Checks one declared account as a whole.
pub fn declared(
    key: &str,
    client_id_value: &str,
    secret: &str,
    organisation_code: &str,
    scopes: &[String],
) -> Checked<DeclaredServiceAccount> {
    let name = account_name(key)?;
    let client_id = client_id(client_id_value)?;
    client_secret(secret)?;
    let organisation_code = validation::organisation_code("organisation_code", organisation_code)?;
    if scopes.is_empty() {
        return Err(IdentityError::invalid("scopes", "give 1-20 scopes"));
    }
    let scopes = validation::scopes("scopes", scopes)?;
    Ok(DeclaredServiceAccount {
        name,
        client_id,
        organisation_code,
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn environment_names_read_underscores_as_hyphens() {
        assert_eq!(
            account_name("RECORD_AGGREGATOR").ok().as_deref(),
            Some("record-aggregator")
        );
        assert_eq!(account_name("consent").ok().as_deref(), Some("consent"));
        assert!(account_name("a b").is_err());
        assert!(account_name("").is_err());
    }

    #[test]
    fn client_ids_carry_the_service_prefix() {
        assert_eq!(
            client_id("svc-record-aggregator").ok().as_deref(),
            Some("svc-record-aggregator")
        );
        for bad in [
            "record-aggregator",
            "svc-",
            "svc-UPPER",
            "svc-a_b",
            &format!("svc-{}", "a".repeat(61)),
        ] {
            assert!(client_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn short_or_padded_secrets_are_refused() {
        assert!(client_secret(SECRET).is_ok());
        assert!(client_secret("too short").is_err());
        assert!(client_secret(&format!(" {SECRET}")).is_err());
        let error = client_secret("x").err().map(|error| error.to_string());
        assert_eq!(
            error.as_deref(),
            Some("client_secret: must be 32-256 characters, got 1")
        );
    }

    #[test]
    fn a_declared_account_needs_known_scopes() {
        let account = declared(
            "consent",
            "svc-consent",
            SECRET,
            "mcr001",
            &["index:read".to_owned()],
        );
        assert_eq!(
            account.ok(),
            Some(DeclaredServiceAccount {
                name: "consent".to_owned(),
                client_id: "svc-consent".to_owned(),
                organisation_code: "MCR001".to_owned(),
                scopes: vec!["index:read".to_owned()],
            })
        );
        assert!(declared("consent", "svc-consent", SECRET, "MCR001", &[]).is_err());
        assert!(
            declared(
                "consent",
                "svc-consent",
                SECRET,
                "MCR001",
                &["root".to_owned()]
            )
            .is_err()
        );
    }
}

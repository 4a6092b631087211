//! `[auth.caller_limits]`: how much each verified caller may ask of one
//! replica. The settings live here, where every service's settings are
//! read; `mcr_auth`'s limiter enforces them.

use serde::Deserialize;

use super::SettingsError;

/// Limits for one kind of caller, per replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSettings {
    /// Sustained calls per second per caller.
    pub requests_per_second: u32,
    /// Calls a caller may make at once after being idle (the bucket size).
    pub burst: u32,
    /// Calls of one caller being handled at the same time.
    pub max_in_flight: u32,
}

impl Default for RateSettings {
    fn default() -> Self {
        CallerLimits::default().users
    }
}

/// Per-caller limits of one service (`[auth.caller_limits]`). The defaults
/// are generous backstops against runaway clients that no person at a
/// keyboard and no benchmark of a single professional comes near; a
/// deployment should lower `users` to what its busiest real user needs.
/// Every key may be set alone: the others keep their own kind's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(from = "CallerLimitsInput")]
pub struct CallerLimits {
    /// Professionals (user tokens).
    pub users: RateSettings,
    /// Platform services and connectors (service tokens).
    pub services: RateSettings,
}

impl Default for CallerLimits {
    fn default() -> Self {
        Self {
            users: RateSettings {
                requests_per_second: 5_000,
                burst: 10_000,
                max_in_flight: 256,
            },
            services: RateSettings {
                requests_per_second: 50_000,
                burst: 100_000,
                max_in_flight: 2_048,
            },
        }
    }
}

// Read through optional fields so that a partial `services` section keeps
// the services' defaults, not the users' (a plain `#[serde(default)]` on
// `RateSettings` has only one default for both kinds). Unknown keys are
// refused: a misspelt `user` must not silently leave the default in force.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CallerLimitsInput {
    users: RateInput,
    services: RateInput,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RateInput {
    requests_per_second: Option<u32>,
    burst: Option<u32>,
    max_in_flight: Option<u32>,
}

impl RateInput {
    fn over(self, defaults: RateSettings) -> RateSettings {
        RateSettings {
            requests_per_second: self
                .requests_per_second
                .unwrap_or(defaults.requests_per_second),
            burst: self.burst.unwrap_or(defaults.burst),
            max_in_flight: self.max_in_flight.unwrap_or(defaults.max_in_flight),
        }
    }
}

impl From<CallerLimitsInput> for CallerLimits {
    fn from(input: CallerLimitsInput) -> Self {
        let defaults = Self::default();
        Self {
            users: input.users.over(defaults.users),
            services: input.services.over(defaults.services),
        }
    }
}

// Zero is refused rather than read as "off": a limit switched off by a slip
// would leave a replica open to any one runaway caller. A deployment that
// wants no practical limit sets a large one.
pub(super) fn check(limits: &CallerLimits) -> Result<(), SettingsError> {
    let values = [
        (
            "auth.caller_limits.users.requests_per_second",
            limits.users.requests_per_second,
        ),
        ("auth.caller_limits.users.burst", limits.users.burst),
        (
            "auth.caller_limits.users.max_in_flight",
            limits.users.max_in_flight,
        ),
        (
            "auth.caller_limits.services.requests_per_second",
            limits.services.requests_per_second,
        ),
        ("auth.caller_limits.services.burst", limits.services.burst),
        (
            "auth.caller_limits.services.max_in_flight",
            limits.services.max_in_flight,
        ),
    ];
    match values.into_iter().find(|(_, value)| *value == 0) {
        Some((key, _)) => Err(SettingsError::Rejected {
            key,
            reason: "must be greater than zero (a limit cannot be switched off; set a large value instead)".to_owned(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::service::ServiceSpec;
    use crate::settings::Settings;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "example",
        config_section: "example",
        grpc_service_name: "mcr.example.v1.Example",
        default_grpc_port: 50998,
        default_admin_port: 9198,
    };

    fn load(pairs: &[(&str, &str)]) -> Result<CallerLimits, SettingsError> {
        let environment: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Settings::<()>::load(&SPEC, &environment)
            .map(|settings| settings.runtime.auth.caller_limits)
    }

    #[test]
    fn unset_limits_are_the_defaults_and_one_key_changes_only_itself() {
        assert_eq!(load(&[]).expect("defaults"), CallerLimits::default());
        let limits = load(&[
            ("MCR_AUTH__CALLER_LIMITS__USERS__REQUESTS_PER_SECOND", "20"),
            ("MCR_AUTH__CALLER_LIMITS__SERVICES__MAX_IN_FLIGHT", "64"),
        ])
        .expect("valid limits");
        let defaults = CallerLimits::default();
        assert_eq!(limits.users.requests_per_second, 20);
        assert_eq!(limits.users.burst, defaults.users.burst);
        assert_eq!(limits.services.max_in_flight, 64);
        assert_eq!(
            limits.services.requests_per_second, defaults.services.requests_per_second,
            "a partial services section keeps the services' defaults, not the users'"
        );
        assert_eq!(limits.services.burst, defaults.services.burst);
    }

    #[test]
    fn zero_and_unknown_keys_are_refused_naming_the_key() {
        let zero = load(&[("MCR_AUTH__CALLER_LIMITS__SERVICES__BURST", "0")])
            .expect_err("zero is refused")
            .to_string();
        assert!(
            zero.contains("auth.caller_limits.services.burst")
                && zero.contains("greater than zero"),
            "{zero}"
        );
        let misspelt = load(&[("MCR_AUTH__CALLER_LIMITS__USER__BURST", "10")])
            .expect_err("`user` is not a kind of caller")
            .to_string();
        assert!(misspelt.contains("user"), "{misspelt}");
        let negative = load(&[("MCR_AUTH__CALLER_LIMITS__USERS__BURST", "-1")]);
        assert!(negative.is_err(), "{negative:?}");
    }
}

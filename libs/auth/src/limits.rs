//! Per-caller limits: a token bucket and a cap on calls in flight for each
//! verified subject, so one misbehaving client cannot take a replica's
//! capacity from everyone else.
//!
//! Keyed by the verified subject (user id or service client id), never by
//! anything a caller could vary freely: a token the verifier refused never
//! reaches the limiter (that flood is bounded by verification itself and
//! by the refusal audit's queue). Users and services get separate budgets
//! because a platform service legitimately calls thousands of times a
//! second on behalf of many users, and a person never does.
//!
//! The state is per replica: with N replicas behind a balancer a caller
//! gets about N times the budget. That is the point — the limit protects
//! each replica's capacity, not a global quota.
//!
//! The limits are settings (`auth.caller_limits`, [`CallerLimits`]), read
//! by [`crate::AuthLayer::for_service`]. Settings refuse zero; the limiter
//! itself still treats zero as "no limit" for callers that build it by hand.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
pub use mcr_runtime::settings::{CallerLimits, RateSettings};

use crate::claims::{Principal, PrincipalKind};

/// Why a caller's call was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitExceeded {
    /// The caller's token bucket is empty.
    Rate {
        /// The sustained rate allowed.
        requests_per_second: u32,
        /// The bucket size.
        burst: u32,
        /// When the next call would be allowed.
        retry_after: Duration,
    },
    /// Too many of the caller's calls are being handled already.
    InFlight {
        /// The cap.
        max_in_flight: u32,
    },
}

impl LimitExceeded {
    /// RESOURCE_EXHAUSTED saying which limit and when to retry; the wait is
    /// also in the `retry-after-ms` trailer for clients that back off.
    pub fn status(&self) -> tonic::Status {
        match self {
            Self::Rate {
                requests_per_second,
                burst,
                retry_after,
            } => {
                let wait_ms = retry_after.as_millis().max(1);
                let mut metadata = tonic::metadata::MetadataMap::new();
                if let Ok(value) = wait_ms.to_string().parse() {
                    metadata.insert("retry-after-ms", value);
                }
                tonic::Status::with_metadata(
                    tonic::Code::ResourceExhausted,
                    format!(
                        "too many requests from this caller: at most {requests_per_second} per second (bursts of {burst}); retry in {wait_ms} ms"
                    ),
                    metadata,
                )
            }
            Self::InFlight { max_in_flight } => tonic::Status::resource_exhausted(format!(
                "too many concurrent requests from this caller: at most {max_in_flight} at once; wait for earlier calls to finish"
            )),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Rate { .. } => "rate",
            Self::InFlight { .. } => "in_flight",
        }
    }
}

/// Callers limited, by reason.
pub const LIMITED_METRIC: &str = "mcr_auth_caller_limited_total";

/// The limiter shared by every clone of one service's auth layer.
#[derive(Clone)]
pub struct CallerLimiter {
    inner: Arc<LimiterInner>,
}

struct LimiterInner {
    settings: CallerLimits,
    users: Option<DefaultKeyedRateLimiter<String>>,
    services: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    in_flight: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for CallerLimiter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CallerLimiter")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// Keys idle long enough to be full again are forgotten once the map holds
/// this many, so a stream of distinct callers cannot grow it for ever.
const FORGET_IDLE_ABOVE: usize = 10_000;

fn bucket(settings: RateSettings) -> Option<DefaultKeyedRateLimiter<String>> {
    let rate = NonZeroU32::new(settings.requests_per_second)?;
    let burst = NonZeroU32::new(settings.burst).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl CallerLimiter {
    /// A limiter enforcing `settings`.
    pub fn new(settings: CallerLimits) -> Self {
        Self {
            inner: Arc::new(LimiterInner {
                users: bucket(settings.users),
                services: bucket(settings.services),
                settings,
                clock: DefaultClock::default(),
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The limits in force.
    pub fn settings(&self) -> CallerLimits {
        self.inner.settings
    }

    /// Lets one call of `principal` through, or says which limit it hit.
    /// The returned guard counts the call as in flight until dropped.
    pub fn admit(&self, principal: &Principal) -> Result<InFlightGuard, LimitExceeded> {
        let (settings, bucket) = match principal.kind {
            PrincipalKind::User => (self.inner.settings.users, &self.inner.users),
            PrincipalKind::Service => (self.inner.settings.services, &self.inner.services),
        };
        let key = &principal.subject;
        let admitted = self
            .check_rate(settings, bucket.as_ref(), key)
            .and_then(|()| self.enter(settings, key));
        if let Err(exceeded) = &admitted {
            metrics::counter!(LIMITED_METRIC, "limit" => exceeded.kind()).increment(1);
        }
        admitted
    }

    fn check_rate(
        &self,
        settings: RateSettings,
        bucket: Option<&DefaultKeyedRateLimiter<String>>,
        key: &String,
    ) -> Result<(), LimitExceeded> {
        let Some(bucket) = bucket else {
            return Ok(());
        };
        if bucket.len() > FORGET_IDLE_ABOVE {
            bucket.retain_recent();
        }
        bucket
            .check_key(key)
            .map_err(|not_until| LimitExceeded::Rate {
                requests_per_second: settings.requests_per_second,
                burst: settings.burst.max(settings.requests_per_second),
                retry_after: not_until.wait_time_from(self.inner.clock.now()),
            })
    }

    fn enter(&self, settings: RateSettings, key: &str) -> Result<InFlightGuard, LimitExceeded> {
        if settings.max_in_flight == 0 {
            return Ok(InFlightGuard { release: None });
        }
        let mut in_flight = match self.inner.in_flight.lock() {
            Ok(in_flight) => in_flight,
            Err(poisoned) => poisoned.into_inner(),
        };
        let count = in_flight.entry(key.to_owned()).or_insert(0);
        if *count >= settings.max_in_flight {
            return Err(LimitExceeded::InFlight {
                max_in_flight: settings.max_in_flight,
            });
        }
        *count += 1;
        Ok(InFlightGuard {
            release: Some((self.clone(), key.to_owned())),
        })
    }

    fn leave(&self, key: &str) {
        let mut in_flight = match self.inner.in_flight.lock() {
            Ok(in_flight) => in_flight,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(count) = in_flight.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(key);
            }
        }
    }
}

/// One call counted as in flight; dropping it (when the handler has
/// answered) releases the slot.
#[derive(Debug)]
pub struct InFlightGuard {
    release: Option<(CallerLimiter, String)>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Some((limiter, key)) = self.release.take() {
            limiter.leave(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use mcr_proto::common::v1::Role;

    use super::*;

    fn caller(subject: &str, kind: PrincipalKind) -> Principal {
        Principal {
            subject: subject.to_owned(),
            kind,
            session_id: None,
            organisation_code: "RQW".to_owned(),
            role_profile_id: None,
            role: Role::Nurse,
            role_code: None,
            scopes: BTreeSet::new(),
            display_name: String::new(),
            expires_at: 0,
        }
    }

    fn limits(requests_per_second: u32, burst: u32, max_in_flight: u32) -> CallerLimits {
        let settings = RateSettings {
            requests_per_second,
            burst,
            max_in_flight,
        };
        CallerLimits {
            users: settings,
            services: settings,
        }
    }

    #[test]
    fn a_caller_over_its_burst_is_refused_while_another_is_not() {
        let limiter = CallerLimiter::new(limits(1, 3, 0));
        let greedy = caller("greedy", PrincipalKind::User);
        let quiet = caller("quiet", PrincipalKind::User);
        for _ in 0..3 {
            assert!(limiter.admit(&greedy).is_ok());
        }
        let refused = limiter.admit(&greedy).expect_err("the bucket is empty");
        let status = refused.status();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status.message().contains("at most 1 per second"),
            "{status:?}"
        );
        assert!(status.metadata().get("retry-after-ms").is_some());
        assert!(
            limiter.admit(&quiet).is_ok(),
            "another caller has its own bucket"
        );
    }

    #[test]
    fn calls_in_flight_are_capped_per_caller_and_released_on_drop() {
        let limiter = CallerLimiter::new(limits(0, 0, 2));
        let busy = caller("busy", PrincipalKind::Service);
        let first = limiter.admit(&busy).expect("first");
        let _second = limiter.admit(&busy).expect("second");
        let refused = limiter.admit(&busy).expect_err("a third at once");
        assert_eq!(refused, LimitExceeded::InFlight { max_in_flight: 2 });
        assert!(
            limiter
                .admit(&caller("other", PrincipalKind::Service))
                .is_ok()
        );
        drop(first);
        assert!(
            limiter.admit(&busy).is_ok(),
            "a finished call frees its slot"
        );
    }

    #[test]
    fn zero_switches_limits_off_and_defaults_are_generous() {
        let limiter = CallerLimiter::new(limits(0, 0, 0));
        let anyone = caller("anyone", PrincipalKind::User);
        for _ in 0..10_000 {
            assert!(limiter.admit(&anyone).is_ok());
        }
        let defaults = CallerLimits::default();
        assert!(defaults.users.requests_per_second >= 1_000);
        assert!(defaults.services.requests_per_second > defaults.users.requests_per_second);
        let parsed: CallerLimits =
            serde_json::from_str(r#"{"users": {"requests_per_second": 20}}"#).expect("json");
        assert_eq!(parsed.users.requests_per_second, 20);
        assert_eq!(
            parsed.users.burst, defaults.users.burst,
            "unset keys keep defaults"
        );
        assert_eq!(parsed.services, defaults.services);
    }
}

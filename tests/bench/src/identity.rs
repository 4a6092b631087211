//! `identity`: local token verification throughput on one core, and the
//! (deliberately slow, argon2id) Authenticate round trip.

use std::sync::Arc;
use std::time::Instant;

use mcr_auth::jwks::IdentityJwks;
use mcr_auth::{TokenVerifier, VerifierConfig};
use mcr_proto::identity::v1::identity_client::IdentityClient;
use mcr_proto::identity::v1::{AuthenticateRequest, RefreshTokenRequest};
use serde_json::json;

use crate::stats::{Latencies, round3};

const USERNAME: &str = "bench.admin";
const PASSWORD: &str = "a benchmark password";

/// Runs the benchmark and returns the JSON figures.
pub async fn run(quick: bool) -> anyhow::Result<serde_json::Value> {
    let environment = mcr_testkit::TestEnvironment::new().await;
    let service = mcr_testkit::spawn_service::<mcr_identity::IdentityService>(
        &environment,
        &[
            ("MCR_IDENTITY__BOOTSTRAP_ADMIN__USERNAME", USERNAME),
            ("MCR_IDENTITY__BOOTSTRAP_ADMIN__PASSWORD", PASSWORD),
            ("MCR_IDENTITY__BOOTSTRAP_ADMIN__ORGANISATION_CODE", "MCR001"),
            (
                "MCR_IDENTITY__BOOTSTRAP_ADMIN__ORGANISATION_NAME",
                "Benchmark operator",
            ),
        ],
    )
    .await;
    let mut client = IdentityClient::new(service.channel().await);
    let sign_in = || AuthenticateRequest {
        username: USERNAME.to_owned(),
        password: PASSWORD.to_owned(),
        role_profile_id: String::new(),
    };
    // The bootstrap administrator appears in the background.
    let mut first = None;
    for _ in 0..100 {
        if let Ok(response) = client.authenticate(sign_in()).await {
            first = response.into_inner().tokens;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let first =
        first.ok_or_else(|| anyhow::anyhow!("the bootstrap administrator never signed in"))?;
    let access_token = first.access_token;
    let first_refresh = first.refresh_token;

    let authentications = if quick { 10 } else { 30 };
    let mut authenticate = Latencies::default();
    for _ in 0..authentications {
        let started = Instant::now();
        client.authenticate(sign_in()).await?;
        authenticate.record(started.elapsed());
    }

    // A pool of distinct live tokens, as many sessions would present them
    // (refreshing mints a new access token without another argon2 hash).
    let pool_size = if quick { 500 } else { 1_000 };
    let mut refresh_token = first_refresh;
    let mut token_pool = Vec::with_capacity(pool_size);
    for _ in 0..pool_size {
        let tokens = client
            .refresh_token(RefreshTokenRequest { refresh_token })
            .await?
            .into_inner()
            .tokens
            .ok_or_else(|| anyhow::anyhow!("refresh returned no tokens"))?;
        refresh_token = tokens.refresh_token;
        token_pool.push(tokens.access_token);
    }

    let verifier = TokenVerifier::new(
        VerifierConfig {
            issuer: "https://identity.mcr.local".to_owned(),
            audience: "mcr".to_owned(),
            leeway_seconds: 30,
        },
        Some(Arc::new(IdentityJwks::new(&service.grpc_endpoint())?)),
    );
    verifier.verify_refreshing(&access_token).await?;
    let jwks = verifier_keys(&service.grpc_endpoint()).await?;
    let verifications: usize = if quick { 50_000 } else { 200_000 };
    let cold_rounds = if quick { 4 } else { 10 };
    // One thread, so the figures are per core.
    let (verify_per_s, verify_uncached_per_s) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, f64)> {
            // Uncached: every token seen for the first time (the cache is emptied each round).
            let started = Instant::now();
            for _ in 0..cold_rounds {
                verifier.set_keys(&jwks);
                for token in &token_pool {
                    verifier.verify(token)?;
                }
            }
            let uncached =
                (cold_rounds * token_pool.len()) as f64 / started.elapsed().as_secs_f64();
            // Steady state: the pool's tokens presented again and again.
            let started = Instant::now();
            for index in 0..verifications {
                verifier.verify(&token_pool[index % token_pool.len()])?;
            }
            Ok((
                verifications as f64 / started.elapsed().as_secs_f64(),
                uncached,
            ))
        })
        .await??;
    service.stop().await?;

    println!("identity: token verification and sign-in");
    println!(
        "  verify, steady state (one core, {verifications} checks over {pool_size} live tokens): {verify_per_s:.0} per second"
    );
    println!(
        "  verify, first sight of each token (full Ed25519 check): {verify_uncached_per_s:.0} per second"
    );
    println!(
        "  Authenticate (argon2id m=19 MiB t=2 p=1, over loopback): {} calls, p50 {:.1} ms, p99 {:.1} ms",
        authenticate.count(),
        authenticate.quantile_ms(0.5),
        authenticate.quantile_ms(0.99)
    );
    Ok(json!({
        "bench": "identity",
        "verify_per_s": verify_per_s.round(),
        "verify_uncached_per_s": verify_uncached_per_s.round(),
        "authenticate_ms": round3(authenticate.quantile_ms(0.5)),
    }))
}

async fn verifier_keys(endpoint: &str) -> anyhow::Result<Vec<mcr_proto::identity::v1::JsonWebKey>> {
    let mut client = IdentityClient::new(mcr_testkit::grpc::connect(endpoint).await);
    Ok(client
        .get_jwks(mcr_proto::identity::v1::GetJwksRequest {})
        .await?
        .into_inner()
        .keys)
}

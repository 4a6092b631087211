//! The configuration the base gives each Deployment (ConfigMap variables,
//! the mounted `config.toml`, the Deployment's own variables, placeholder
//! values for its Secrets) loads through the service's own settings code,
//! and says what the manifests mean: the ports of `SPEC`, the peers'
//! Service names, and service accounts that identity bootstraps.

use std::collections::HashMap;

use mcr_deploy_tests::{base, parse_documents, workspace_root};
use mcr_runtime::service::McrService;
use mcr_runtime::settings::Settings;
use serde_json::Value;

/// A stand-in for every Secret value: long enough for any length rule.
const SECRET: &str = "placeholder-secret-value-of-forty-chars!";

fn kustomization() -> Value {
    let path = workspace_root().join("k8s/base/kustomization.yaml");
    parse_documents(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .remove(0)
}

/// The generated ConfigMap `name`'s `key=value` literals.
fn literals(name: &str) -> Vec<(String, String)> {
    let kustomization = kustomization();
    let generator = kustomization["configMapGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .find(|generator| generator["name"] == name)
        .unwrap_or_else(|| panic!("no configMapGenerator {name}"));
    generator["literals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|literal| {
            let (key, value) = literal.as_str().unwrap().split_once('=').unwrap();
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

/// The file behind `config.toml` of ConfigMap `name`.
fn config_file(name: &str) -> std::path::PathBuf {
    let kustomization = kustomization();
    let generator = kustomization["configMapGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .find(|generator| generator["name"] == name)
        .unwrap_or_else(|| panic!("no configMapGenerator {name}"));
    let file = generator["files"][0].as_str().unwrap();
    let (key, path) = file.split_once('=').unwrap();
    assert_eq!(key, "config.toml");
    workspace_root().join("k8s/base").join(path)
}

/// Everything the pod of `S` would see, with Secrets replaced by [`SECRET`]
/// (optional ones left out, as when the Secret does not exist).
fn pod_environment<S: McrService>() -> HashMap<String, String> {
    let manifests = base().unwrap();
    let app = format!("mcr-{}", S::SPEC.name);
    let deployment = manifests.find("Deployment", &app).unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let mut environment = HashMap::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let name = source["configMapRef"]["name"].as_str().unwrap();
        environment.extend(literals(name));
    }
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = variable["name"].as_str().unwrap().to_owned();
        if let Some(value) = variable["value"].as_str() {
            environment.insert(name, value.to_owned());
        } else if variable["valueFrom"]["secretKeyRef"]["optional"] != true {
            environment.insert(name, SECRET.to_owned());
        }
    }
    // The mounted ConfigMap, read from the file it is generated from.
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|volume| volume["name"] == "config")
        .unwrap();
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mount| mount["name"] == "config")
        .unwrap();
    assert_eq!(
        environment.get("MCR_CONFIG_FILE").map(String::as_str),
        Some(format!("{}/config.toml", mount["mountPath"].as_str().unwrap()).as_str()),
        "{app}: MCR_CONFIG_FILE is not the mounted config.toml"
    );
    let file = config_file(volume["configMap"]["name"].as_str().unwrap());
    environment.insert("MCR_CONFIG_FILE".to_owned(), file.display().to_string());
    environment
}

fn load<S: McrService>() -> Settings<S::Config> {
    let settings = Settings::<S::Config>::load(&S::SPEC, &pod_environment::<S>())
        .unwrap_or_else(|error| panic!("{}: {error}", S::SPEC.name));
    assert_eq!(settings.runtime.grpc.port, S::SPEC.default_grpc_port);
    assert_eq!(settings.runtime.admin.port, S::SPEC.default_admin_port);
    assert_eq!(
        settings.runtime.auth.identity_url,
        "http://mcr-identity:50051"
    );
    settings
}

#[test]
fn every_service_accepts_the_configuration_the_base_gives_it() {
    let identity = load::<mcr_identity::IdentityService>();
    load::<mcr_patient_index::PatientIndexService>();
    let consent = load::<mcr_consent::ConsentService>();
    let aggregator = load::<mcr_record_aggregator::RecordAggregatorService>();
    let audit = load::<mcr_audit::AuditService>();

    assert_eq!(
        consent.service.patient_index_url,
        "http://mcr-patient-index:50052"
    );
    assert_eq!(
        aggregator.service.patient_index_url,
        "http://mcr-patient-index:50052"
    );
    assert_eq!(aggregator.service.consent_url, "http://mcr-consent:50053");
    assert!(audit.service.checkpoint_signing_key.is_none());

    // The accounts consent and the aggregator sign in with are the ones
    // identity bootstraps, with the secret from the same Secret.
    let accounts = &identity.service.bootstrap_service_accounts;
    for (key, settings) in [
        ("consent", &consent.runtime),
        ("record_aggregator", &aggregator.runtime),
    ] {
        let account = accounts
            .get(key)
            .unwrap_or_else(|| panic!("identity bootstraps no account {key}: {accounts:?}"));
        assert_eq!(account.client_id, settings.auth.client_id);
        assert_eq!(settings.auth.client_secret, SECRET);
    }
}

/// `(Secret, key)` behind variable `name` of Deployment `app`.
fn secret_of(app: &str, name: &str) -> (String, String) {
    let manifests = base().unwrap();
    let deployment = manifests.find("Deployment", app).unwrap();
    let variable = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|variable| variable["name"] == name)
        .unwrap_or_else(|| panic!("{app} sets no {name}"));
    let reference = &variable["valueFrom"]["secretKeyRef"];
    (
        reference["name"].as_str().unwrap().to_owned(),
        reference["key"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn identity_and_each_caller_read_the_client_secret_from_the_same_secret() {
    for (app, key) in [
        ("mcr-consent", "CONSENT"),
        ("mcr-record-aggregator", "RECORD_AGGREGATOR"),
    ] {
        let bootstrapped =
            format!("MCR_IDENTITY__BOOTSTRAP_SERVICE_ACCOUNTS__{key}__CLIENT_SECRET");
        assert_eq!(
            secret_of("mcr-identity", &bootstrapped),
            secret_of(app, "MCR_AUTH__CLIENT_SECRET"),
            "{app}"
        );
    }
}

/// Where components/grpc-tls mounts the Secret mcr-grpc-tls.
const TLS_MOUNT: &str = "/etc/mcr-tls/";

/// A directory holding what mcr-grpc-tls holds: tls.crt, tls.key, ca.crt.
fn mounted_tls_files() -> tempfile::TempDir {
    let directory = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["mcr-consent".to_owned()]).unwrap();
    let certificate = certified.cert.pem();
    for (file, contents) in [
        ("tls.crt", certificate.clone()),
        ("ca.crt", certificate),
        ("tls.key", certified.signing_key.serialize_pem()),
    ] {
        std::fs::write(directory.path().join(file), contents).unwrap();
    }
    directory
}

#[test]
fn the_shared_variables_of_every_overlay_load() {
    for name in mcr_deploy_tests::overlay_names().unwrap() {
        let Some(manifests) = mcr_deploy_tests::render_overlay(&name).unwrap() else {
            eprintln!("neither kubectl nor kustomize is installed: overlay {name} not rendered");
            return;
        };
        let platform = manifests
            .of_kind("ConfigMap")
            .find(|map| {
                map["metadata"]["name"]
                    .as_str()
                    .is_some_and(|map_name| map_name.starts_with("mcr-platform"))
            })
            .unwrap_or_else(|| panic!("{name}: no mcr-platform ConfigMap"));
        let mounted = mounted_tls_files();
        let environment: HashMap<String, String> = platform["data"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| {
                let value = value.as_str().unwrap();
                // The Secret mcr-grpc-tls, as the pod would see it mounted.
                let value = match value.strip_prefix(TLS_MOUNT) {
                    Some(file) => mounted.path().join(file).display().to_string(),
                    None => value.to_owned(),
                };
                (key.clone(), value)
            })
            .collect();
        let settings = Settings::<<mcr_audit::AuditService as McrService>::Config>::load(
            &mcr_audit::AuditService::SPEC,
            &environment,
        )
        .unwrap_or_else(|error| panic!("{name}: {error}"));
        if name == "production" {
            assert!(
                settings.runtime.database.require_tls,
                "production requires TLS"
            );
            assert!(
                settings.runtime.telemetry.otlp_endpoint.is_some(),
                "production exports traces"
            );
            let grpc = &settings.runtime.grpc;
            assert!(
                grpc.tls
                    .as_ref()
                    .is_some_and(|tls| tls.client_ca_path.is_some()),
                "production serves gRPC over mutual TLS"
            );
            assert!(
                grpc.client_tls.require_tls && grpc.client_tls.cert_path.is_some(),
                "and calls its peers over it, presenting a certificate"
            );
            for peer in [
                "MCR_AUTH__IDENTITY_URL",
                "MCR_CONSENT__PATIENT_INDEX_URL",
                "MCR_RECORDS__PATIENT_INDEX_URL",
                "MCR_RECORDS__CONSENT_URL",
            ] {
                assert!(
                    environment
                        .get(peer)
                        .is_some_and(|url| url.starts_with("https://")),
                    "{peer} must be https when TLS is required: {:?}",
                    environment.get(peer)
                );
            }
            // The variables reach the services that call those peers.
            let https = |url: &str| url.starts_with("https://");
            let consent = Settings::<<mcr_consent::ConsentService as McrService>::Config>::load(
                &mcr_consent::ConsentService::SPEC,
                &environment,
            )
            .unwrap_or_else(|error| panic!("{name}: consent: {error}"));
            assert!(https(&consent.service.patient_index_url));
            let aggregator = Settings::<
                <mcr_record_aggregator::RecordAggregatorService as McrService>::Config,
            >::load(
                &mcr_record_aggregator::RecordAggregatorService::SPEC,
                &environment,
            )
            .unwrap_or_else(|error| panic!("{name}: record-aggregator: {error}"));
            assert!(https(&aggregator.service.patient_index_url));
            assert!(https(&aggregator.service.consent_url));
            assert!(https(&aggregator.runtime.auth.identity_url));
        }
    }
}

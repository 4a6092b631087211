//! Every Deployment's names, ports, probes and binary match the crate's
//! `SPEC` and `[[bin]]`, in the base and in every rendered overlay, so the
//! manifests cannot drift from the code.

use mcr_deploy_tests::{Manifests, base, overlay_names, render_overlay, workspace_root};
use mcr_runtime::service::{McrService, ServiceSpec};
use serde_json::Value;

fn specs() -> [ServiceSpec; 5] {
    [
        mcr_identity::IdentityService::SPEC,
        mcr_patient_index::PatientIndexService::SPEC,
        mcr_consent::ConsentService::SPEC,
        mcr_record_aggregator::RecordAggregatorService::SPEC,
        mcr_audit::AuditService::SPEC,
    ]
}

/// The `[[bin]]` names of `services/<name>/Cargo.toml`.
fn binaries_of(name: &str) -> Vec<String> {
    let path = workspace_root()
        .join("services")
        .join(name)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest
        .get("bin")
        .and_then(|bins| bins.as_array())
        .map(|bins| {
            bins.iter()
                .filter_map(|bin| bin.get("name")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn port_named(container: &Value, name: &str) -> Option<u64> {
    container["ports"]
        .as_array()?
        .iter()
        .find(|port| port["name"] == name)?["containerPort"]
        .as_u64()
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|variable| variable["name"] == name)?["value"]
        .as_str()
}

fn check_service(manifests: &Manifests, spec: &ServiceSpec, problems: &mut Vec<String>) {
    let source = &manifests.source;
    let app = format!("mcr-{}", spec.name);
    let mut problem = |text: String| problems.push(format!("{source}: {app}: {text}"));
    let Some(deployment) = manifests.find("Deployment", &app) else {
        problem("no Deployment".to_owned());
        return;
    };
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().cloned().unwrap_or_default();
    let [container] = containers.as_slice() else {
        problem(format!(
            "expected one container, found {}",
            containers.len()
        ));
        return;
    };
    let grpc = u64::from(spec.default_grpc_port);
    let admin = u64::from(spec.default_admin_port);

    // The binary the container runs is one the crate builds.
    let binary = format!("mcr-{}", spec.name);
    let command = container["command"][0].as_str().unwrap_or_default();
    if command != format!("/usr/local/bin/{binary}") {
        problem(format!(
            "command {command:?} is not /usr/local/bin/{binary}"
        ));
    }
    if !binaries_of(spec.name).contains(&binary) {
        problem(format!(
            "services/{}/Cargo.toml has no [[bin]] {binary}",
            spec.name
        ));
    }
    if container["image"]
        .as_str()
        .is_none_or(|image| !image.contains(&binary))
    {
        problem(format!(
            "image {} is not the {binary} image",
            container["image"]
        ));
    }

    if port_named(container, "grpc") != Some(grpc) {
        problem(format!("containerPort grpc is not {grpc}"));
    }
    if port_named(container, "admin") != Some(admin) {
        problem(format!("containerPort admin is not {admin}"));
    }
    for (variable, port) in [("MCR_GRPC__PORT", grpc), ("MCR_ADMIN__PORT", admin)] {
        let value = env_value(container, variable).unwrap_or_default();
        if value != port.to_string() {
            problem(format!("{variable}={value:?}, expected {port}"));
        }
    }
    for (probe, services) in [
        ("startupProbe", vec!["", spec.grpc_service_name]),
        ("readinessProbe", vec![spec.grpc_service_name]),
        ("livenessProbe", vec!["", spec.grpc_service_name]),
    ] {
        // With gRPC TLS on (components/grpc-tls), kubelet cannot speak gRPC
        // health, and the probes ask the admin port's /healthz instead.
        let http = &container[probe]["httpGet"];
        if http["path"] == "/healthz"
            && (http["port"] == "admin" || http["port"].as_u64() == Some(admin))
        {
            continue;
        }
        let check = &container[probe]["grpc"];
        if check["port"].as_u64() != Some(grpc) {
            problem(format!("{probe} is not a gRPC probe on {grpc}"));
        }
        let service = check["service"].as_str().unwrap_or_default();
        if !services.contains(&service) {
            problem(format!(
                "{probe} asks for health service {service:?}, expected one of {services:?}"
            ));
        }
    }
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    if annotations["prometheus.io/port"].as_str() != Some(admin.to_string().as_str()) {
        problem(format!("prometheus.io/port is not {admin}"));
    }

    // Locked down as the issue asks.
    let security = &container["securityContext"];
    if security["readOnlyRootFilesystem"] != true
        || security["allowPrivilegeEscalation"] != false
        || security["capabilities"]["drop"] != serde_json::json!(["ALL"])
        || pod["securityContext"]["runAsNonRoot"] != true
        || pod["securityContext"]["seccompProfile"]["type"] != "RuntimeDefault"
    {
        problem(
            "not non-root, read-only, no escalation, caps dropped, seccomp RuntimeDefault"
                .to_owned(),
        );
    }
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            if container["resources"][kind][resource].is_null() {
                problem(format!("no {resource} {kind}"));
            }
        }
    }
    if pod["serviceAccountName"] != app.as_str() {
        problem("does not run as its own ServiceAccount".to_owned());
    }

    // The Service reaches the gRPC port of these pods.
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    match manifests.find("Service", &app) {
        None => problem("no Service".to_owned()),
        Some(service) => {
            let selector = service["spec"]["selector"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            if selector.is_empty()
                || selector
                    .iter()
                    .any(|(key, value)| &pod_labels[key] != value)
            {
                problem("Service selector does not select the pods".to_owned());
            }
            let ports = service["spec"]["ports"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let Some(port) = ports.iter().find(|port| port["name"] == "grpc") else {
                problem("Service has no grpc port".to_owned());
                return;
            };
            let target = match &port["targetPort"] {
                Value::String(name) => port_named(container, name),
                other => other.as_u64(),
            };
            if port["port"].as_u64() != Some(grpc) || target != Some(grpc) {
                problem(format!(
                    "Service grpc port/targetPort do not lead to {grpc}"
                ));
            }
        }
    }
    for kind in [
        "ServiceAccount",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ] {
        if manifests.find(kind, &app).is_none() {
            problem(format!("no {kind}"));
        }
    }
    if let Some(autoscaler) = manifests.find("HorizontalPodAutoscaler", &app)
        && autoscaler["spec"]["scaleTargetRef"]["name"] != app.as_str()
    {
        problem("HorizontalPodAutoscaler scales another Deployment".to_owned());
    }
    if let Some(policy) = manifests.find("NetworkPolicy", &app) {
        let allowed: Vec<u64> = policy["spec"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|rule| rule["ports"].as_array().cloned().unwrap_or_default())
            .filter_map(|port| port["port"].as_u64())
            .collect();
        if !allowed.contains(&grpc) || !allowed.contains(&admin) {
            problem(format!(
                "NetworkPolicy admits {allowed:?}, not both {grpc} and {admin}"
            ));
        }
    }
}

fn check(manifests: &Manifests) -> Vec<String> {
    let mut problems = Vec::new();
    for spec in specs() {
        check_service(manifests, &spec, &mut problems);
    }
    let known: Vec<String> = specs()
        .iter()
        .map(|spec| format!("mcr-{}", spec.name))
        .collect();
    for deployment in manifests.of_kind("Deployment") {
        let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
        if name.starts_with("mcr-") && !known.iter().any(|known| known == name) {
            problems.push(format!(
                "{}: Deployment {name} is no service of the workspace",
                manifests.source
            ));
        }
    }
    problems
}

#[test]
fn the_base_matches_every_service_spec() {
    let problems = check(&base().unwrap());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_rendered_overlay_matches_every_service_spec() {
    let names = overlay_names().unwrap();
    assert!(names.contains(&"dev".to_owned()) && names.contains(&"production".to_owned()));
    for name in names {
        let Some(manifests) = render_overlay(&name).unwrap() else {
            // CI renders with kubectl (scripts/check-k8s fails without it);
            // a developer machine without it still checks the base above.
            eprintln!("neither kubectl nor kustomize is installed: overlay {name} not rendered");
            return;
        };
        let problems = check(&manifests);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

#[test]
fn the_checks_catch_a_drifted_port() {
    let mut manifests = base().unwrap();
    let deployment = manifests
        .objects
        .iter_mut()
        .find(|object| {
            object["kind"] == "Deployment" && object["metadata"]["name"] == "mcr-consent"
        })
        .unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] =
        Value::from(50099);
    let problems = check(&manifests);
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("mcr-consent: readinessProbe")),
        "{problems:?}"
    );
}

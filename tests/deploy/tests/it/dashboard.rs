//! The sample Grafana dashboard graphs only metrics the code emits, so a
//! renamed metric cannot leave an empty panel behind.

use std::collections::BTreeSet;
use std::path::Path;

use mcr_deploy_tests::workspace_root;

/// Every string literal of the form `"mcr_…"` in the Rust sources of
/// `services/` and `libs/runtime`.
fn emitted_metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let root = workspace_root();
    for directory in ["services", "libs/runtime/src"] {
        collect(&root.join(directory), &mut names);
    }
    names
}

fn collect(path: &Path, names: &mut BTreeSet<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            collect(&entry.unwrap().path(), names);
        }
    } else if path.extension().is_some_and(|extension| extension == "rs") {
        let text = std::fs::read_to_string(path).unwrap();
        for literal in text.split('"').skip(1).step_by(2) {
            if literal.starts_with("mcr_")
                && literal.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                names.insert(literal.to_owned());
            }
        }
    }
}

/// `mcr_…` metric names in PromQL `expression`, without the histogram suffixes.
fn metrics_in(expression: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = expression;
    while let Some(start) = rest.find("mcr_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        found.push(base.to_owned());
        rest = &tail[end..];
    }
    found
}

#[test]
fn the_dashboard_graphs_only_metrics_the_services_emit() {
    let path = workspace_root().join("k8s/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let emitted = emitted_metric_names();
    let mut graphed = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            graphed.extend(metrics_in(target["expr"].as_str().unwrap()));
        }
    }
    let unknown: Vec<&String> = graphed.difference(&emitted).collect();
    assert!(unknown.is_empty(), "graphed but never emitted: {unknown:?}");
    for wanted in [
        "mcr_rpc_server_requests_total",
        "mcr_rpc_server_duration_seconds",
        "mcr_records_ingest_lag_seconds",
        "mcr_records_dead_letters_total",
        "mcr_records_view_cache_total",
        "mcr_audit_chain_head_sequence",
    ] {
        assert!(
            graphed.contains(wanted),
            "the dashboard does not graph {wanted}"
        );
    }
}

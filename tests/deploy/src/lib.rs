//! Reads the Kubernetes manifests of `k8s/` for the deploy tests: the base's
//! files as written, and every overlay as kustomize renders it.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

/// One set of Kubernetes objects and where it came from.
#[derive(Debug, Clone)]
pub struct Manifests {
    /// `k8s/base` or `k8s/overlays/<name>`.
    pub source: String,
    /// Every object, as JSON.
    pub objects: Vec<Value>,
}

impl Manifests {
    /// The object of `kind` named `name`, if any.
    pub fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
    }

    /// Every object of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |object| object["kind"] == kind)
    }
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every YAML document of `text`, as JSON values (empty documents skipped).
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|error| error.to_string())?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// The base's files as written (no kustomize needed): every `*.yaml` under
/// `k8s/base` but the kustomization itself.
pub fn base() -> Result<Manifests, String> {
    let directory = workspace_root().join("k8s/base");
    let mut files = Vec::new();
    collect_yaml(&directory, &mut files).map_err(|error| error.to_string())?;
    files.sort();
    let mut objects = Vec::new();
    for file in files {
        if file
            .file_name()
            .is_some_and(|name| name == "kustomization.yaml")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(|error| error.to_string())?;
        objects.extend(
            parse_documents(&text).map_err(|error| format!("{}: {error}", file.display()))?,
        );
    }
    Ok(Manifests {
        source: "k8s/base".to_owned(),
        objects,
    })
}

fn collect_yaml(directory: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_yaml(&path, files)?;
        } else if path
            .extension()
            .is_some_and(|extension| extension == "yaml")
        {
            files.push(path);
        }
    }
    Ok(())
}

/// The names of the overlays under `k8s/overlays`.
pub fn overlay_names() -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let directory = workspace_root().join("k8s/overlays");
    for entry in std::fs::read_dir(&directory).map_err(|error| error.to_string())? {
        let entry = entry.map_err(|error| error.to_string())?;
        if entry.path().join("kustomization.yaml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// `k8s/overlays/<name>` rendered by `kubectl kustomize` (or `kustomize
/// build`); `None` when neither is installed.
pub fn render_overlay(name: &str) -> Result<Option<Manifests>, String> {
    let path = workspace_root().join("k8s/overlays").join(name);
    let attempts: [(&str, &[&str]); 2] = [("kubectl", &["kustomize"]), ("kustomize", &["build"])];
    for (program, arguments) in attempts {
        let output = match Command::new(program).args(arguments).arg(&path).output() {
            Ok(output) => output,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(format!("{program}: {error}")),
        };
        if !output.status.success() {
            return Err(format!(
                "{program} {} {name} failed: {}",
                arguments.join(" "),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let text = String::from_utf8(output.stdout).map_err(|error| error.to_string())?;
        return Ok(Some(Manifests {
            source: format!("k8s/overlays/{name}"),
            objects: parse_documents(&text)?,
        }));
    }
    Ok(None)
}

//! Reading the deployment's policy directory.

use std::path::Path;

use crate::domain::policy::{AccessPolicy, PolicyError, SHIPPED_SCHEMA};

/// The policy in `policy_dir`: its `schema.cedarschema` (or the shipped
/// schema when it has none) and every `*.cedar` file, in name order.
/// An empty `policy_dir` is the shipped policy.
pub fn load_policy(policy_dir: &str) -> Result<AccessPolicy, PolicyError> {
    if policy_dir.trim().is_empty() {
        return AccessPolicy::shipped();
    }
    let directory = Path::new(policy_dir);
    let unreadable = |what: &str, error: std::io::Error| PolicyError::Parse {
        source_name: format!("{}/{what}", directory.display()),
        message: format!("cannot be read: {error}"),
    };
    let schema_path = directory.join("schema.cedarschema");
    let (schema_text, schema_name) = if schema_path.exists() {
        let text = std::fs::read_to_string(&schema_path)
            .map_err(|error| unreadable("schema.cedarschema", error))?;
        (text, schema_path.display().to_string())
    } else {
        (SHIPPED_SCHEMA.to_owned(), "shipped schema".to_owned())
    };
    let mut files: Vec<_> = std::fs::read_dir(directory)
        .map_err(|error| unreadable("", error))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "cedar")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(PolicyError::Parse {
            source_name: directory.display().to_string(),
            message: "holds no *.cedar policy file".to_owned(),
        });
    }
    let mut policy_text = String::new();
    let mut names = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|error| unreadable(&file.display().to_string(), error))?;
        // Each file is compiled alone first, so an error names its file.
        AccessPolicy::compile(
            &schema_text,
            &schema_name,
            &text,
            &file.display().to_string(),
        )?;
        policy_text.push_str(&text);
        policy_text.push('\n');
        names.push(file.display().to_string());
    }
    AccessPolicy::compile(&schema_text, &schema_name, &policy_text, &names.join(", "))
}

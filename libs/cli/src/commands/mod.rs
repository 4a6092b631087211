//! One module per command group.

pub mod audit;
pub mod consent;
pub mod health;
pub mod login;
pub mod person;
pub mod publish;
pub mod record;

/// Prints `value` as pretty JSON (for `--json`).
pub fn print_json(value: &serde_json::Value) {
    crate::say!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

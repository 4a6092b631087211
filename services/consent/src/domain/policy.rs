//! The deployment's access policy (Cedar), compiled at start-up into a table.
//!
//! The policy only sees role, category and purpose — a finite space of
//! 10 roles × 10 categories × 2 purposes — so every answer is computed once
//! when the policy is loaded and Decide reads a bit mask instead of running
//! Cedar per request. The policy text stays the single source of truth: the
//! table is nothing but Cedar's answers.

use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request, RestrictedExpression,
    Schema, ValidationMode, Validator,
};
use mcr_proto::common::v1::{Category, Role};
use sha2::{Digest, Sha256};

use super::{ALL_CATEGORIES, CategorySet, Purpose};

/// The shipped schema (`services/consent/policy/schema.cedarschema`).
pub const SHIPPED_SCHEMA: &str = include_str!("../../policy/schema.cedarschema");
/// The shipped default policy (`services/consent/policy/default.cedar`).
pub const SHIPPED_POLICY: &str = include_str!("../../policy/default.cedar");

/// Every role a policy answers for (`Role::Unspecified` is never valid).
pub const ALL_ROLES: [Role; 10] = [
    Role::ClinicalPractitioner,
    Role::Nurse,
    Role::HealthVisitor,
    Role::Midwife,
    Role::Paramedic,
    Role::Pharmacist,
    Role::SocialWorker,
    Role::AdminClerical,
    Role::PrivacyOfficer,
    Role::SystemAdministrator,
];

/// Why a policy could not be loaded. The message is shown at start-up.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The schema does not parse.
    #[error("policy schema {source_name} is invalid: {message}")]
    Schema {
        /// File (or "shipped schema").
        source_name: String,
        /// Cedar's error.
        message: String,
    },
    /// A policy does not parse.
    #[error("policy {source_name} does not parse: {message}")]
    Parse {
        /// File(s).
        source_name: String,
        /// Cedar's error.
        message: String,
    },
    /// A policy does not validate against the schema.
    #[error("policy {source_name} does not validate against the schema: {message}")]
    Invalid {
        /// File(s).
        source_name: String,
        /// Cedar's validation errors.
        message: String,
    },
    /// A request the service makes does not fit the schema (the schema was
    /// changed in a way consent cannot use).
    #[error("the policy schema does not fit consent's requests: {0}")]
    Request(String),
}

/// The policy's answers for every role, category and purpose.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    /// Categories each role may see: `[role index][purpose index]`.
    categories: [[CategorySet; 2]; ALL_ROLES.len()],
    /// Whether each role may see sensitive demographics, per purpose.
    sensitive_demographics: [[bool; 2]; ALL_ROLES.len()],
    version: String,
}

impl AccessPolicy {
    /// The shipped schema and default policy.
    pub fn shipped() -> Result<Self, PolicyError> {
        Self::compile(
            SHIPPED_SCHEMA,
            "shipped schema",
            SHIPPED_POLICY,
            "shipped default.cedar",
        )
    }

    /// Parses `schema_text` and `policy_text`, validates the policies
    /// strictly against the schema and evaluates every combination.
    pub fn compile(
        schema_text: &str,
        schema_name: &str,
        policy_text: &str,
        policy_name: &str,
    ) -> Result<Self, PolicyError> {
        let (schema, _warnings) =
            Schema::from_cedarschema_str(schema_text).map_err(|error| PolicyError::Schema {
                source_name: schema_name.to_owned(),
                message: error.to_string(),
            })?;
        let policies = PolicySet::from_str(policy_text).map_err(|error| PolicyError::Parse {
            source_name: policy_name.to_owned(),
            message: describe_parse_errors(&error),
        })?;
        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !validation.validation_passed() {
            let message = validation
                .validation_errors()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(PolicyError::Invalid {
                source_name: policy_name.to_owned(),
                message,
            });
        }
        let authorizer = Authorizer::new();
        let entities = Entities::empty();
        let mut categories = [[CategorySet::EMPTY; 2]; ALL_ROLES.len()];
        let mut sensitive_demographics = [[false; 2]; ALL_ROLES.len()];
        for (role_index, role) in ALL_ROLES.iter().enumerate() {
            for purpose in [Purpose::DirectCare, Purpose::Emergency] {
                let ask = |action: &str, category: Category| -> Result<bool, PolicyError> {
                    let request = request(&schema, *role, action, category, purpose)?;
                    let response = authorizer.is_authorized(&request, &policies, &entities);
                    if let Some(error) = response.diagnostics().errors().next() {
                        return Err(PolicyError::Request(error.to_string()));
                    }
                    Ok(response.decision() == Decision::Allow)
                };
                for category in ALL_CATEGORIES {
                    if ask("ViewCategory", category)? {
                        categories[role_index][purpose.index()].insert(category);
                    }
                }
                sensitive_demographics[role_index][purpose.index()] =
                    ask("ViewSensitiveDemographics", Category::Demographics)?;
            }
        }
        Ok(Self {
            categories,
            sensitive_demographics,
            version: version_of(schema_text, policy_text),
        })
    }

    /// Categories `role` may see for `purpose`; none for an unknown role.
    pub fn categories(&self, role: Role, purpose: Purpose) -> CategorySet {
        role_index(role)
            .map(|index| self.categories[index][purpose.index()])
            .unwrap_or(CategorySet::EMPTY)
    }

    /// Whether `role` may see a sensitive person's address and contacts.
    pub fn sees_sensitive_demographics(&self, role: Role, purpose: Purpose) -> bool {
        role_index(role)
            .map(|index| self.sensitive_demographics[index][purpose.index()])
            .unwrap_or(false)
    }

    /// Short hash of schema and policy text: `cedar-<12 hex>`.
    pub fn version(&self) -> &str {
        &self.version
    }
}

fn role_index(role: Role) -> Option<usize> {
    ALL_ROLES.iter().position(|known| *known == role)
}

fn describe_parse_errors(errors: &cedar_policy::ParseErrors) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn version_of(schema_text: &str, policy_text: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(schema_text.as_bytes());
    hasher.update([0u8]);
    hasher.update(policy_text.as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("cedar-{hex}")
}

/// The enum value name without its prefix: `ROLE_NURSE` → `NURSE`.
fn bare_name<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
}

fn entity(type_name: &str, id: &str) -> Result<EntityUid, PolicyError> {
    EntityUid::from_str(&format!("Mcr::{type_name}::{id:?}"))
        .map_err(|error| PolicyError::Request(error.to_string()))
}

fn request(
    schema: &Schema,
    role: Role,
    action: &str,
    category: Category,
    purpose: Purpose,
) -> Result<Request, PolicyError> {
    let principal = entity("Role", bare_name(role.as_str_name(), "ROLE_"))?;
    let action = entity("Action", action)?;
    let resource = entity("Category", bare_name(category.as_str_name(), "CATEGORY_"))?;
    let purpose_entity = entity("Purpose", purpose.code())?;
    let context = Context::from_pairs([(
        "purpose".to_owned(),
        RestrictedExpression::new_entity_uid(purpose_entity),
    )])
    .map_err(|error| PolicyError::Request(error.to_string()))?;
    Request::new(principal, action, resource, context, Some(schema))
        .map_err(|error| PolicyError::Request(error.to_string()))
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;

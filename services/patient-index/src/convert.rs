//! Stored rows → proto messages.

use mcr_proto::common::v1 as common;
use mcr_proto::patient_index::v1 as proto;

use crate::error::IndexError;
use crate::store::{HistoryRow, IdentifierRow, PersonRow};

pub use mcr_proto::timestamps::timestamp;

/// Who is reading: sensitive demographics are withheld from professionals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// A professional (user token).
    Professional,
    /// A platform service or connector.
    Service,
}

/// A person with its identifiers and (optionally) history. For a sensitive
/// person read by a professional, address and contact details are removed
/// and `demographics_withheld` says so.
pub fn person(
    row: &PersonRow,
    identifiers: &[IdentifierRow],
    history: &[HistoryRow],
    reader: Reader,
) -> Result<proto::Person, IndexError> {
    let mut demographics = row.demographics()?;
    let withheld = row.sensitive && reader == Reader::Professional;
    if withheld {
        demographics.address = None;
        demographics.phone.clear();
        demographics.email.clear();
    }
    Ok(proto::Person {
        person_id: row.id.to_string(),
        status: if row.is_active() {
            proto::PersonStatus::Active
        } else {
            proto::PersonStatus::Merged
        } as i32,
        merged_into_person_id: row.merged_into.map(|id| id.to_string()).unwrap_or_default(),
        demographics: Some(demographics),
        demographics_withheld: withheld,
        local_identifiers: identifiers.iter().map(linked_identifier).collect(),
        history: history.iter().map(history_entry).collect(),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
    })
}

fn linked_identifier(row: &IdentifierRow) -> proto::LinkedIdentifier {
    proto::LinkedIdentifier {
        identifier: Some(common::LocalIdentifier {
            organisation_code: row.organisation_code.clone(),
            system: row.system.clone(),
            value: row.value.clone(),
        }),
        link_method: row.link_method,
        match_weight: row.match_weight,
        linked_at: Some(timestamp(row.linked_at)),
        last_registered_at: Some(timestamp(row.last_registered_at)),
    }
}

fn history_entry(row: &HistoryRow) -> proto::PersonHistoryEntry {
    proto::PersonHistoryEntry {
        history_id: row.id.to_string(),
        kind: row.kind,
        occurred_at: Some(timestamp(row.occurred_at)),
        actor: row.actor.as_ref().map(|actor| actor.0.to_proto()),
        identifier: row
            .identifier
            .as_ref()
            .map(|identifier| identifier.0.to_proto()),
        other_person_id: row
            .other_person_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        merge_id: row.merge_id.map(|id| id.to_string()).unwrap_or_default(),
        note: row.note.clone(),
    }
}

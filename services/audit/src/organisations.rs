//! Organisation names and data protection contacts, from identity.
//!
//! The caller's own bearer token is forwarded to identity's
//! `GetOrganisation` (scope `identity:read`, which privacy officers and
//! system administrators hold): audit needs no credentials of its own, and
//! identity sees who asked.

use std::collections::BTreeMap;

use mcr_proto::audit::v1::OrganisationContact;
use mcr_proto::identity::v1::GetOrganisationRequest;
use mcr_proto::identity::v1::identity_client::IdentityClient;
use mcr_runtime::tls::ClientTlsSettings;
use tonic::transport::Channel;

use crate::error::AuditError;

/// A lazily connected client of identity.
#[derive(Debug, Clone)]
pub struct Organisations {
    client: IdentityClient<Channel>,
}

impl Organisations {
    /// A client of identity at `identity_url` (connects on first use), over
    /// TLS when it is `https://`.
    pub fn new(identity_url: &str, tls: &ClientTlsSettings) -> Result<Self, String> {
        let endpoint = mcr_runtime::tls::endpoint("auth.identity_url", identity_url, tls)
            .map_err(|error| format!("invalid settings: {error}"))?
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(5));
        Ok(Self {
            client: IdentityClient::new(endpoint.connect_lazy()),
        })
    }

    /// Each code's organisation, asked with `authorization` (the caller's
    /// `Bearer …` header). An organisation identity does not know is named by
    /// its code, without contact.
    pub async fn contacts(
        &self,
        codes: impl IntoIterator<Item = String>,
        authorization: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    ) -> Result<BTreeMap<String, OrganisationContact>, AuditError> {
        let mut contacts = BTreeMap::new();
        for code in codes {
            if code.is_empty() || contacts.contains_key(&code) {
                continue;
            }
            let mut request = tonic::Request::new(GetOrganisationRequest {
                organisation_code: code.clone(),
            });
            if let Some(value) = authorization {
                request
                    .metadata_mut()
                    .insert("authorization", value.clone());
            }
            mcr_runtime::propagation::inject_current_into_grpc(request.metadata_mut());
            let contact = match self.client.clone().get_organisation(request).await {
                Ok(response) => match response.into_inner().organisation {
                    Some(organisation) => OrganisationContact {
                        organisation_code: code.clone(),
                        name: organisation.name,
                        data_protection_contact: organisation.data_protection_contact,
                    },
                    None => unknown(&code),
                },
                Err(status) if status.code() == tonic::Code::NotFound => unknown(&code),
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
                    ) =>
                {
                    return Err(AuditError::PermissionDenied(format!(
                        "identity refused organisation details with this token: {}",
                        status.message()
                    )));
                }
                Err(status) => {
                    return Err(AuditError::IdentityUnavailable(format!(
                        "identity could not give organisation {code}'s details ({}); retry shortly",
                        status.message()
                    )));
                }
            };
            contacts.insert(code, contact);
        }
        Ok(contacts)
    }
}

fn unknown(code: &str) -> OrganisationContact {
    OrganisationContact {
        organisation_code: code.to_owned(),
        name: code.to_owned(),
        data_protection_contact: None,
    }
}

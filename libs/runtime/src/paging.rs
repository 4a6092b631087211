//! Paging shared by every list RPC: page-size bounds and opaque page tokens
//! bound to the query that produced them.
//!
//! A token is `base64url(fingerprint ‖ cursor)`: the fingerprint (first 8
//! bytes of SHA-256 of the query's canonical text) makes a token used with a
//! different query INVALID_ARGUMENT instead of silently returning the wrong
//! page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page any RPC returns.
pub const MAX_PAGE_SIZE: u32 = 500;

const FINGERPRINT_BYTES: usize = 8;

/// Why a page request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageError {
    /// The page size is above the maximum.
    #[error("page.page_size {asked} is above the maximum of {maximum}")]
    TooLarge {
        /// What was asked.
        asked: u32,
        /// The maximum.
        maximum: u32,
    },
    /// The token is not one this query produced.
    #[error("page.page_token is not valid for this query; start again without a token")]
    InvalidToken,
}

/// A checked page request: how many items, and after which cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Items to return.
    pub size: u32,
    /// Resume after this cursor (`None`: from the start).
    pub after: Option<String>,
}

/// Checks `page_size` and decodes `page_token` for the query `query_fingerprint_text`.
pub fn parse_page(
    page_size: u32,
    page_token: &str,
    query_fingerprint_text: &str,
) -> Result<Page, PageError> {
    let size = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        asked if asked > MAX_PAGE_SIZE => {
            return Err(PageError::TooLarge {
                asked,
                maximum: MAX_PAGE_SIZE,
            });
        }
        asked => asked,
    };
    if page_token.is_empty() {
        return Ok(Page { size, after: None });
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(page_token)
        .map_err(|_| PageError::InvalidToken)?;
    if bytes.len() < FINGERPRINT_BYTES
        || bytes[..FINGERPRINT_BYTES] != fingerprint(query_fingerprint_text)
    {
        return Err(PageError::InvalidToken);
    }
    let cursor = String::from_utf8(bytes[FINGERPRINT_BYTES..].to_vec())
        .map_err(|_| PageError::InvalidToken)?;
    Ok(Page {
        size,
        after: Some(cursor),
    })
}

/// The token that resumes `query_fingerprint_text` after `cursor`.
pub fn next_page_token(cursor: &str, query_fingerprint_text: &str) -> String {
    let mut bytes = fingerprint(query_fingerprint_text).to_vec();
    bytes.extend_from_slice(cursor.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn fingerprint(query_fingerprint_text: &str) -> [u8; FINGERPRINT_BYTES] {
    let digest = Sha256::digest(query_fingerprint_text.as_bytes());
    let mut fingerprint = [0_u8; FINGERPRINT_BYTES];
    fingerprint.copy_from_slice(&digest[..FINGERPRINT_BYTES]);
    fingerprint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_the_default_and_too_large_is_refused() {
        assert_eq!(
            parse_page(0, "", "q").map(|page| page.size),
            Ok(DEFAULT_PAGE_SIZE)
        );
        assert_eq!(parse_page(500, "", "q").map(|page| page.size), Ok(500));
        assert_eq!(
            parse_page(501, "", "q"),
            Err(PageError::TooLarge {
                asked: 501,
                maximum: 500
            })
        );
    }

    #[test]
    fn a_token_resumes_its_own_query_only() {
        let token = next_page_token("F81001", "type=1");
        assert_eq!(
            parse_page(10, &token, "type=1").map(|page| page.after),
            Ok(Some("F81001".to_owned()))
        );
        assert_eq!(
            parse_page(10, &token, "type=2"),
            Err(PageError::InvalidToken)
        );
        assert_eq!(
            parse_page(10, "not base64!", "type=1"),
            Err(PageError::InvalidToken)
        );
        assert_eq!(
            parse_page(10, "AAAA", "type=1"),
            Err(PageError::InvalidToken)
        );
    }
}

//! The comparable form of a record: normalised names with phonetic codes, address tokens,
//! phone digits. Built once per record so comparing many candidates repeats no work.

use rphonetic::DoubleMetaphone;
use time::Date;
use unicode_normalization::UnicodeNormalization;

use crate::domain::{NhsNumber, PersonDemographics, PersonName, SearchQuery, Sex};

/// Words that say what kind of street it is rather than which street: they agree between
/// unrelated addresses so often that they would count as false evidence.
const ADDRESS_STOPWORDS: &[&str] = &[
    "AVE", "AVENUE", "CIRCUIT", "CL", "CLOSE", "COURT", "CRES", "CRESCENT", "CT", "DR", "DRIVE",
    "FLAT", "GARDENS", "LANE", "LN", "PL", "PLACE", "RD", "ROAD", "ST", "STREET", "THE", "WAY",
];

/// Upper-cases a name, folds diacritics ("Zoë" -> "ZOE", "Straße" -> "STRASSE"), drops
/// apostrophes ("O'Brien" -> "OBRIEN"), turns other punctuation into spaces ("Smith-Jones"
/// -> "SMITH JONES") and collapses white space. Digits are dropped: they are never part of a
/// name and appear only as keying errors. The result holds only A-Z and single spaces.
pub fn normalise_name(name: &str) -> String {
    normalise(name, false)
}

/// One address word or number in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressToken {
    text: String,
    /// Bit i set when the i-th of A-Z, 0-9 occurs.
    symbols: u64,
    /// How often each of A-Z, 0-9 occurs.
    symbol_counts: [u8; 36],
    has_digit: bool,
}

impl AddressToken {
    fn new(text: &str) -> Self {
        let mut symbols = 0_u64;
        let mut symbol_counts = [0_u8; 36];
        for byte in text.bytes() {
            let slot = match byte {
                b'A'..=b'Z' => byte - b'A',
                b'0'..=b'9' => 26 + byte - b'0',
                _ => continue,
            };
            symbols |= 1 << slot;
            if let Some(count) = symbol_counts.get_mut(usize::from(slot)) {
                *count = count.saturating_add(1);
            }
        }
        Self {
            text: text.to_owned(),
            symbols,
            symbol_counts,
            has_digit: text.bytes().any(|byte| byte.is_ascii_digit()),
        }
    }

    /// The token, e.g. "HIGH" or "12".
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it holds a digit (house numbers, flat numbers): such tokens match only exactly.
    pub fn has_digit(&self) -> bool {
        self.has_digit
    }

    /// Whether the Jaro-Winkler similarity of two tokens can reach `threshold`, judged from
    /// the symbols they hold without running Jaro-Winkler. Addresses are compared token by
    /// token with every candidate, so ruling most pairs out cheaply is what keeps scoring
    /// fast. Jaro cannot exceed (m/|a| + m/|b| + 1)/3 when at most m characters match; m is
    /// bounded first in constant time (shared distinct symbols plus repeats), then exactly by
    /// the shared symbol counts.
    pub(crate) fn may_reach(&self, other: &Self, threshold: f64) -> bool {
        let shared_distinct = (self.symbols & other.symbols).count_ones();
        if shared_distinct == 0 {
            return false;
        }
        let repeats = |token: &Self| {
            let length = u32::try_from(token.text.len()).unwrap_or(u32::MAX);
            length.saturating_sub(token.symbols.count_ones())
        };
        if self.jaro_winkler_bound(other, shared_distinct + repeats(self).min(repeats(other)))
            < threshold
        {
            return false;
        }
        let shared: u32 = self
            .symbol_counts
            .iter()
            .zip(&other.symbol_counts)
            .map(|(left, right)| u32::from(*left.min(right)))
            .sum();
        self.jaro_winkler_bound(other, shared) >= threshold
    }

    fn jaro_winkler_bound(&self, other: &Self, matches: u32) -> f64 {
        let matches = f64::from(matches);
        // Token lengths are bounded by the 100-character address line, so these are exact.
        let (left, right) = (self.text.len() as f64, other.text.len() as f64);
        let jaro = ((matches / left).min(1.0) + (matches / right).min(1.0) + 1.0) / 3.0;
        let prefix = self
            .text
            .bytes()
            .zip(other.text.bytes())
            .take(4)
            .take_while(|(a, b)| a == b)
            .count();
        jaro + f64::from(u8::try_from(prefix).unwrap_or(4)) * 0.1 * (1.0 - jaro)
    }
}

/// The comparable tokens of an address: lines and city normalised like names but keeping
/// digits (house numbers matter), street-kind words and single letters dropped, deduplicated.
pub fn address_tokens<'a>(parts: impl IntoIterator<Item = &'a str>) -> Vec<AddressToken> {
    let mut tokens: Vec<AddressToken> = Vec::new();
    for part in parts {
        for token in normalise(part, true).split(' ') {
            let single_letter =
                token.len() == 1 && !token.bytes().all(|byte| byte.is_ascii_digit());
            if token.is_empty() || single_letter || ADDRESS_STOPWORDS.contains(&token) {
                continue;
            }
            if !tokens.iter().any(|existing| existing.text == token) {
                tokens.push(AddressToken::new(token));
            }
        }
    }
    tokens
}

fn normalise(text: &str, keep_digits: bool) -> String {
    let mut folded = String::with_capacity(text.len());
    for character in text.nfkd() {
        match character.to_ascii_uppercase() {
            upper @ 'A'..='Z' => folded.push(upper),
            digit @ '0'..='9' if keep_digits => folded.push(digit),
            '\'' | '\u{2019}' | '`' => {}
            // Letters NFKD does not decompose into a base letter plus marks.
            'ß' => folded.push_str("SS"),
            'æ' | 'Æ' => folded.push_str("AE"),
            'œ' | 'Œ' => folded.push_str("OE"),
            'ø' | 'Ø' => folded.push('O'),
            'ł' | 'Ł' => folded.push('L'),
            'đ' | 'Đ' | 'ð' | 'Ð' => folded.push('D'),
            'þ' | 'Þ' => folded.push_str("TH"),
            // Combining marks left by the decomposition ("e" + acute) carry no letter.
            mark if is_combining_mark(mark) => {}
            _ => folded.push(' '),
        }
    }
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_combining_mark(character: char) -> bool {
    matches!(character, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

/// One name in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameKey {
    /// Normalised, spaces removed: "DE COURCEY" and "DECOURCEY" compare equal, and so does a
    /// stray space typed inside a name.
    pub compact: String,
    /// Double Metaphone primary code (at most 4 characters).
    pub phonetic: String,
    /// Double Metaphone alternate code (equal to the primary for most names).
    pub phonetic_alternate: String,
}

impl NameKey {
    /// The comparable form of a name; `None` when nothing comparable is left (e.g. "-").
    pub fn new(name: &str) -> Option<Self> {
        let compact: String = normalise_name(name).split(' ').collect();
        if compact.is_empty() {
            return None;
        }
        // The encoder indexes by bytes, so it only ever sees the ASCII A-Z that normalise gives.
        let codes = DoubleMetaphone::default().double_metaphone(&compact);
        Some(Self {
            phonetic: codes.primary(),
            phonetic_alternate: codes.alternate(),
            compact,
        })
    }

    /// Whether the two names sound alike: any of their Double Metaphone codes agree.
    pub fn sounds_like(&self, other: &Self) -> bool {
        let codes = [&self.phonetic, &self.phonetic_alternate];
        !self.phonetic.is_empty()
            && [&other.phonetic, &other.phonetic_alternate]
                .iter()
                .any(|code| codes.contains(code))
    }
}

/// A postcode in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostcodeKey {
    /// Country code, upper case.
    pub country: String,
    /// Upper case, spaces removed.
    pub compact: String,
    /// GB outward code ("CM20"); `None` elsewhere.
    pub outward: Option<String>,
}

/// Everything the comparators look at, for one record. Build it with `From` a
/// [`PersonDemographics`] (registration, stored persons) or a [`SearchQuery`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchProfile {
    /// NHS Number.
    pub nhs_number: Option<NhsNumber>,
    /// Whether the NHS Number is verified (UK Core 01).
    pub nhs_number_verified: bool,
    /// Current given names, first (the one in use) first.
    pub given: Vec<NameKey>,
    /// Current family name.
    pub family: Option<NameKey>,
    /// Previous family names (maiden names, aliases).
    pub previous_family: Vec<NameKey>,
    /// Date of birth.
    pub birth_date: Option<Date>,
    /// Sex, when male, female or other ("unknown" tells nothing).
    pub sex: Option<Sex>,
    /// Postcode.
    pub postcode: Option<PostcodeKey>,
    /// Address tokens (lines and city).
    pub address_tokens: Vec<AddressToken>,
    /// Phone digits in national form, when there are enough of them to identify a line.
    pub phone_digits: Option<String>,
}

/// Shortest digit string taken as a telephone number: anything shorter is an extension or a
/// keying fragment and would agree by chance.
const MIN_PHONE_DIGITS: usize = 7;

impl From<&PersonDemographics> for MatchProfile {
    fn from(demographics: &PersonDemographics) -> Self {
        let mut previous_family = Vec::new();
        for PersonName { family, .. } in &demographics.previous_names {
            if let Some(key) = family.as_deref().and_then(NameKey::new)
                && !previous_family.contains(&key)
            {
                previous_family.push(key);
            }
        }
        let address = demographics.address.as_ref();
        Self {
            nhs_number: demographics.nhs_number.clone(),
            nhs_number_verified: demographics.has_verified_nhs_number(),
            given: demographics
                .name
                .given
                .iter()
                .filter_map(|given| NameKey::new(given))
                .collect(),
            family: demographics.name.family.as_deref().and_then(NameKey::new),
            previous_family,
            birth_date: demographics.birth_date,
            sex: known_sex(demographics.sex),
            postcode: address
                .and_then(|address| address.postcode.as_ref())
                .map(postcode_key),
            address_tokens: address
                .map(|address| {
                    address_tokens(
                        address
                            .lines
                            .iter()
                            .map(String::as_str)
                            .chain(address.city.as_deref()),
                    )
                })
                .unwrap_or_default(),
            phone_digits: demographics
                .phone
                .as_ref()
                .map(|phone| phone.comparable_digits())
                .filter(|digits| digits.len() >= MIN_PHONE_DIGITS),
        }
    }
}

impl From<&SearchQuery> for MatchProfile {
    fn from(query: &SearchQuery) -> Self {
        Self {
            given: query
                .given_name
                .as_deref()
                .and_then(NameKey::new)
                .into_iter()
                .collect(),
            family: query.family_name.as_deref().and_then(NameKey::new),
            birth_date: query.birth_date,
            sex: known_sex(query.sex),
            postcode: query.postcode.as_ref().map(postcode_key),
            ..Self::default()
        }
    }
}

fn known_sex(sex: Option<Sex>) -> Option<Sex> {
    sex.filter(|sex| *sex != Sex::Unknown)
}

fn postcode_key(postcode: &crate::domain::Postcode) -> PostcodeKey {
    PostcodeKey {
        country: postcode.country().as_str().to_owned(),
        compact: postcode
            .as_str()
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_uppercase)
            .collect(),
        outward: postcode.outward_code().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_upper_cased_folded_and_stripped() {
        assert_eq!(normalise_name("  zoë  o'brien-smyth "), "ZOE OBRIEN SMYTH");
        assert_eq!(normalise_name("Straße"), "STRASSE");
        assert_eq!(normalise_name("Łukasz Øvergård"), "LUKASZ OVERGARD");
        assert_eq!(normalise_name("José María"), "JOSE MARIA");
        assert_eq!(normalise_name("John2 Smith."), "JOHN SMITH");
        assert_eq!(normalise_name("李"), "");
    }

    #[test]
    fn name_keys_ignore_inner_spaces_and_carry_phonetic_codes() {
        let spaced = NameKey::new("De Courcey");
        assert_eq!(
            spaced.as_ref().map(|key| key.compact.as_str()),
            Some("DECOURCEY")
        );
        assert_eq!(NameKey::new("decourcey"), spaced);
        assert_eq!(NameKey::new(" - "), None);
        let smith = NameKey::new("Smith");
        let smyth = NameKey::new("Smyth");
        assert!(matches!((&smith, &smyth), (Some(a), Some(b)) if a.sounds_like(b)));
        let jones = NameKey::new("Jones");
        assert!(matches!((&smith, &jones), (Some(a), Some(b)) if !a.sounds_like(b)));
    }

    #[test]
    fn address_tokens_drop_street_kinds_and_single_letters() {
        let tokens = address_tokens(["Flat 3, 12 High Street", "c ircuit", "Harlow"]);
        let texts: Vec<&str> = tokens.iter().map(AddressToken::as_str).collect();
        assert_eq!(texts, ["3", "12", "HIGH", "IRCUIT", "HARLOW"]);
    }

    #[test]
    fn the_cheap_bound_never_rules_out_a_similar_pair() {
        let words = [
            "STREET", "SETREET", "IRCUIT", "CIRCUIT", "HARLOW", "HARLWO", "MEREDITH", "KELA", "AB",
            "BA", "A1B",
        ];
        for left in words {
            for right in words {
                let (a, b) = (AddressToken::new(left), AddressToken::new(right));
                let real = strsim::jaro_winkler(left, right);
                for threshold in [0.5, 0.7, 0.8, 0.9, 0.95, 1.0] {
                    assert!(
                        real < threshold || a.may_reach(&b, threshold),
                        "{left} {right} {threshold}"
                    );
                }
            }
        }
    }
}

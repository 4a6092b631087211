//! What a comparison produces: decision, grade, weight and the per-field explanation.

use mcr_proto::patient_index::v1 as proto;

use super::Level;

/// A compared field (the proto's MatchField).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchField {
    /// NHS Number.
    NhsNumber,
    /// Family name (current or previous).
    FamilyName,
    /// Given name.
    GivenName,
    /// Date of birth.
    BirthDate,
    /// Sex.
    Sex,
    /// Postcode.
    Postcode,
    /// Address lines and city.
    Address,
    /// Telephone.
    Phone,
}

impl MatchField {
    /// The proto enum.
    pub fn to_proto(self) -> proto::MatchField {
        match self {
            Self::NhsNumber => proto::MatchField::NhsNumber,
            Self::FamilyName => proto::MatchField::FamilyName,
            Self::GivenName => proto::MatchField::GivenName,
            Self::BirthDate => proto::MatchField::BirthDate,
            Self::Sex => proto::MatchField::Sex,
            Self::Postcode => proto::MatchField::Postcode,
            Self::Address => proto::MatchField::Address,
            Self::Phone => proto::MatchField::Phone,
        }
    }
}

/// What to do with a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchDecision {
    /// Link the registration to this person without a human.
    AutoLink,
    /// Create a new person and queue it as a possible duplicate of this one.
    Review,
    /// Not the same person.
    NoMatch,
}

/// Confidence grade of a candidate (the proto's MatchGrade; like FHIR match-grade).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchGrade {
    /// Same verified NHS Number, or an automatic link.
    Certain,
    /// Queued for review: between the thresholds, or above auto-link but withheld by a guard.
    Probable,
    /// Below review but at or above the possible threshold: shown by searches only.
    Possible,
}

impl MatchGrade {
    /// The proto enum.
    pub fn to_proto(self) -> proto::MatchGrade {
        match self {
            Self::Certain => proto::MatchGrade::Certain,
            Self::Probable => proto::MatchGrade::Probable,
            Self::Possible => proto::MatchGrade::Possible,
        }
    }

    /// The lowest grade a search asks for: UNSPECIFIED means POSSIBLE (all candidates), as the
    /// proto says; an undefined number is treated the same way.
    pub fn minimum_from_proto(value: i32) -> Self {
        match proto::MatchGrade::try_from(value) {
            Ok(proto::MatchGrade::Certain) => Self::Certain,
            Ok(proto::MatchGrade::Probable) => Self::Probable,
            Ok(proto::MatchGrade::Possible | proto::MatchGrade::Unspecified) | Err(_) => {
                Self::Possible
            }
        }
    }

    /// Whether a candidate of this grade satisfies a search asking for at least `minimum`
    /// (certain is the highest).
    pub fn meets(self, minimum: Self) -> bool {
        self <= minimum
    }
}

/// Why a candidate whose weight reached the auto-link threshold was only queued for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutoLinkWithheld {
    /// Both records have NHS Numbers and they differ.
    NhsNumbersDiffer,
    /// Both records have given names and they disagree or agree only loosely, by sound or a
    /// distant spelling (the twins pattern).
    GivenNamesDisagree,
    /// Both records have dates of birth and they disagree (the father-and-son pattern).
    BirthDatesDisagree,
}

impl AutoLinkWithheld {
    /// A short lowercase reason, for logs and review-queue notes.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NhsNumbersDiffer => "nhs numbers differ",
            Self::GivenNamesDisagree => "given names disagree",
            Self::BirthDatesDisagree => "dates of birth disagree",
        }
    }
}

/// How one field contributed to a match weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldContribution {
    /// The field.
    pub field: MatchField,
    /// The agreement level reached.
    pub level: Level,
    /// Similarity from the comparator, 0.0-1.0 (1.0 for exact, 0.0 for missing).
    pub similarity: f64,
    /// Weight added to the total: `log2(m/u)`, negative for disagreement, 0 for missing.
    pub weight: f64,
    /// Whether the weight was scaled down by the household cap.
    pub capped: bool,
}

impl FieldContribution {
    /// The proto form. A capped weight is labelled "<level>,household_capped" so the reader
    /// sees why it is smaller than the level's usual weight.
    pub fn to_proto(&self) -> proto::FieldContribution {
        let level = if self.capped {
            format!("{},household_capped", self.level)
        } else {
            self.level.to_string()
        };
        proto::FieldContribution {
            field: self.field.to_proto().into(),
            comparison_level: level,
            similarity: self.similarity,
            weight: self.weight,
        }
    }
}

/// The result of comparing a query record with one candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchOutcome {
    /// Total match weight: the sum of the contributions' weights.
    pub weight: f64,
    /// Posterior match probability given the configured prior, 0.0-1.0.
    pub probability: f64,
    /// What to do.
    pub decision: MatchDecision,
    /// Grade, or `None` when the candidate is below the possible threshold (not worth showing).
    pub grade: Option<MatchGrade>,
    /// Set when the weight reached auto-link but a guard held the link back.
    pub withheld: Option<AutoLinkWithheld>,
    /// One entry per field, in a fixed order (NHS Number, family name, given name, date of
    /// birth, sex, postcode, address, phone), missing fields included with weight 0.
    pub contributions: Vec<FieldContribution>,
}

impl MatchOutcome {
    /// The proto MatchCandidate without its person, which the caller fills in.
    pub fn to_proto_candidate(&self) -> proto::MatchCandidate {
        proto::MatchCandidate {
            person: None,
            match_weight: self.weight,
            match_probability: self.probability,
            grade: self
                .grade
                .map_or(proto::MatchGrade::Unspecified, MatchGrade::to_proto)
                .into(),
            contributions: self
                .contributions
                .iter()
                .map(FieldContribution::to_proto)
                .collect(),
        }
    }
}

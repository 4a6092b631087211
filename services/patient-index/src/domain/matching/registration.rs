//! What a registration does with its scored candidates.

use super::{MatchDecision, MatchOutcome};

/// The matching outcome of a registration, over all its candidates. `K` is whatever names a
/// candidate person in the caller (a person id, a row).
#[derive(Debug, Clone, PartialEq)]
pub enum RegistrationChoice<K> {
    /// Link the identifier to this person (REGISTER_OUTCOME_LINKED_BY_DEMOGRAPHIC_MATCH).
    Link {
        /// The person.
        person: K,
        /// Why: its comparison, for the response's candidate list.
        outcome: MatchOutcome,
    },
    /// Create a new person and queue it as a possible duplicate of these candidates, best
    /// first (REGISTER_OUTCOME_CREATED_AND_QUEUED_FOR_REVIEW).
    CreateAndReview {
        /// The candidates that reached review (or auto-link, when more than one did).
        candidates: Vec<(K, MatchOutcome)>,
    },
    /// Create a new person; nobody is close (REGISTER_OUTCOME_CREATED).
    Create,
}

/// Chooses what a registration does from every candidate's outcome.
///
/// One candidate at auto-link: link to it. More than one: the record fits several people
/// equally well (twins and a registration without a given name, or duplicates the index
/// already holds), so no automatic choice is safe: create and queue for review with all of
/// them. Otherwise any candidate at review level queues the new person for review.
pub fn choose_registration<K>(
    scored: impl IntoIterator<Item = (K, MatchOutcome)>,
) -> RegistrationChoice<K> {
    let mut auto_links = Vec::new();
    let mut reviews = Vec::new();
    for (person, outcome) in scored {
        match outcome.decision {
            MatchDecision::AutoLink => auto_links.push((person, outcome)),
            MatchDecision::Review => reviews.push((person, outcome)),
            MatchDecision::NoMatch => {}
        }
    }
    if auto_links.len() == 1
        && let Some((person, outcome)) = auto_links.pop()
    {
        return RegistrationChoice::Link { person, outcome };
    }
    let mut candidates = if auto_links.is_empty() {
        reviews
    } else {
        auto_links
    };
    if candidates.is_empty() {
        return RegistrationChoice::Create;
    }
    candidates.sort_by(|left, right| right.1.weight.total_cmp(&left.1.weight));
    RegistrationChoice::CreateAndReview { candidates }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(decision: MatchDecision, weight: f64) -> MatchOutcome {
        MatchOutcome {
            weight,
            probability: 0.5,
            decision,
            grade: None,
            withheld: None,
            contributions: Vec::new(),
        }
    }

    #[test]
    fn a_single_auto_link_links() {
        let choice = choose_registration([
            ("a", outcome(MatchDecision::Review, 20.0)),
            ("b", outcome(MatchDecision::AutoLink, 40.0)),
            ("c", outcome(MatchDecision::NoMatch, 1.0)),
        ]);
        assert!(matches!(
            choice,
            RegistrationChoice::Link { person: "b", .. }
        ));
    }

    #[test]
    fn two_auto_links_go_to_review_best_first() {
        let choice = choose_registration([
            ("a", outcome(MatchDecision::AutoLink, 30.0)),
            ("b", outcome(MatchDecision::AutoLink, 40.0)),
            ("c", outcome(MatchDecision::Review, 20.0)),
        ]);
        let RegistrationChoice::CreateAndReview { candidates } = choice else {
            panic!("expected review, got {choice:?}");
        };
        let people: Vec<&str> = candidates.iter().map(|(person, _)| *person).collect();
        assert_eq!(people, ["b", "a"]);
    }

    #[test]
    fn reviews_queue_and_nothing_creates() {
        let choice = choose_registration([
            ("a", outcome(MatchDecision::Review, 19.0)),
            ("b", outcome(MatchDecision::Review, 22.0)),
        ]);
        assert!(
            matches!(&choice, RegistrationChoice::CreateAndReview { candidates } if candidates[0].0 == "b")
        );
        let nothing = choose_registration([("a", outcome(MatchDecision::NoMatch, 3.0))]);
        assert_eq!(nothing, RegistrationChoice::Create);
        assert_eq!(
            choose_registration(Vec::<(u32, MatchOutcome)>::new()),
            RegistrationChoice::Create
        );
    }
}

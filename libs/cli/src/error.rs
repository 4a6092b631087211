//! Every failure of a command as a sentence a person can act on: what
//! failed, the service's own message, the gRPC code in words, and what to do.
//! Never a Rust debug dump.

use tonic::Code;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A service answered with an error status.
    #[error("{}", rpc_sentence(.action, .status.code(), .status.message()))]
    Rpc {
        /// What was being done, e.g. "reading the care record".
        action: String,
        /// The service's answer.
        status: tonic::Status,
    },
    /// A service could not be reached at all.
    #[error(
        "could not reach {service} at {url}: {reason}.\n  hint: start the platform with ./scripts/run-platform, or point mcr at it with --{service}-url (see mcr --help); `mcr health` shows which services answer"
    )]
    Unreachable {
        /// Service name, e.g. "identity".
        service: &'static str,
        /// Where it was looked for.
        url: String,
        /// What went wrong, in words.
        reason: String,
    },
    /// No stored sign-in.
    #[error("you are not logged in.\n  hint: run `mcr login --username <your user name>` first")]
    NotLoggedIn,
    /// The stored session has ended and cannot be refreshed.
    #[error("your session has ended ({0}).\n  hint: run `mcr login` again")]
    SessionEnded(String),
    /// An argument is wrong; the text says which and how.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a local file failed.
    #[error("{0}")]
    Local(String),
    /// Publishing to NATS failed.
    #[error("{0}")]
    Publish(String),
    /// The command ran and reports a failure it has already explained
    /// (e.g. a service not serving in `mcr health`).
    #[error("{0}")]
    Reported(String),
}

impl CliError {
    /// An error status of a call made while doing `action`.
    pub fn rpc(action: impl Into<String>, status: tonic::Status) -> Self {
        CliError::Rpc {
            action: action.into(),
            status,
        }
    }

    /// The process exit code: 2 for wrong usage, 3 when not signed in,
    /// 4 when access was refused, 5 when a service is unavailable, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::NotLoggedIn | CliError::SessionEnded(_) => 3,
            CliError::Rpc { status, .. } => match status.code() {
                Code::Unauthenticated => 3,
                Code::PermissionDenied => 4,
                Code::Unavailable | Code::DeadlineExceeded => 5,
                Code::InvalidArgument => 2,
                _ => 1,
            },
            CliError::Unreachable { .. } => 5,
            CliError::Local(_) | CliError::Publish(_) | CliError::Reported(_) => 1,
        }
    }
}

/// A gRPC code in words.
pub fn code_in_words(code: Code) -> &'static str {
    match code {
        Code::Ok => "it worked",
        Code::Cancelled => "the request was cancelled",
        Code::Unknown => "the service failed in an unknown way",
        Code::InvalidArgument => "the request was not valid",
        Code::DeadlineExceeded => "the service took too long to answer",
        Code::NotFound => "it was not found",
        Code::AlreadyExists => "it exists already",
        Code::PermissionDenied => "access was refused",
        Code::ResourceExhausted => "the service is overloaded or a limit was reached",
        Code::FailedPrecondition => "it is not possible in the current state",
        Code::Aborted => "the request was aborted by a conflicting change",
        Code::OutOfRange => "a value was out of range",
        Code::Unimplemented => "the service does not offer this",
        Code::Internal => "the service failed unexpectedly",
        Code::Unavailable => "the service is unavailable",
        Code::DataLoss => "data was lost",
        Code::Unauthenticated => "you are not signed in, or your sign-in has ended",
    }
}

/// What to do about a code.
pub fn hint_for(code: Code) -> Option<&'static str> {
    match code {
        Code::InvalidArgument | Code::OutOfRange => {
            Some("check the value named above; every command explains its arguments with --help")
        }
        Code::NotFound => Some("check the identifier; `mcr person search` finds a person"),
        Code::PermissionDenied => Some(
            "seeing a record needs a care relationship and the person's permission (`mcr consent permission`); in an emergency, `mcr consent break-glass` then `--purpose emergency`; a missing scope means your role cannot do this",
        ),
        Code::Unauthenticated => Some("run `mcr login` again"),
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
            Some("retry shortly; `mcr health` shows which service is not serving")
        }
        Code::FailedPrecondition => Some("the message above says what stands in the way"),
        Code::AlreadyExists => Some("nothing needs to be done again"),
        Code::Internal | Code::Unknown | Code::DataLoss => {
            Some("the service's log has the details; report it if it happens again")
        }
        Code::Unimplemented => Some("the service may be older than this client"),
        Code::Ok | Code::Cancelled | Code::Aborted => None,
    }
}

/// "reading the care record failed: <message> (access was refused).\n  hint: …"
pub fn rpc_sentence(action: &str, code: Code, message: &str) -> String {
    let message = message.trim().trim_end_matches('.');
    let words = code_in_words(code);
    let mut sentence = if message.is_empty() {
        format!("{action} failed: {words}.")
    } else {
        format!("{action} failed: {message} ({words}).")
    };
    // An opt-out is the one refusal nothing overrides: say so rather than
    // suggest break-glass.
    let opted_out = code == Code::PermissionDenied && message.contains("opted out");
    let hint = if opted_out {
        Some(
            "the person has opted out of the shared record: nobody may see it, not even in an emergency",
        )
    } else {
        hint_for(code)
    };
    if let Some(hint) = hint {
        sentence.push_str("\n  hint: ");
        sentence.push_str(hint);
    }
    sentence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_as_a_sentence_with_a_hint() {
        let error = CliError::rpc(
            "reading the care record",
            tonic::Status::permission_denied("no care relationship with this person."),
        );
        let text = error.to_string();
        assert!(
            text.starts_with("reading the care record failed: no care relationship with this person (access was refused).\n  hint: "),
            "{text}"
        );
        assert!(!text.contains("Status {"), "{text}");
        assert_eq!(error.exit_code(), 4);
    }

    #[test]
    fn an_empty_message_still_says_what_happened() {
        assert_eq!(
            rpc_sentence("signing in", Code::Unavailable, ""),
            "signing in failed: the service is unavailable.\n  hint: retry shortly; `mcr health` shows which service is not serving"
        );
    }

    #[test]
    fn an_opt_out_is_not_met_with_break_glass_advice() {
        let text = rpc_sentence(
            "reading",
            Code::PermissionDenied,
            "access denied: opted out on 2026-11-25",
        );
        assert!(
            text.ends_with("nobody may see it, not even in an emergency"),
            "{text}"
        );
    }

    #[test]
    fn every_code_has_words() {
        for value in 0..=16 {
            assert!(!code_in_words(Code::from_i32(value)).is_empty());
        }
    }

    #[test]
    fn exit_codes_tell_kinds_apart() {
        assert_eq!(CliError::NotLoggedIn.exit_code(), 3);
        assert_eq!(CliError::Usage("x".to_owned()).exit_code(), 2);
        let unreachable = CliError::Unreachable {
            service: "identity",
            url: "http://127.0.0.1:50051".to_owned(),
            reason: "connection refused".to_owned(),
        };
        assert_eq!(unreachable.exit_code(), 5);
        assert!(unreachable.to_string().starts_with(
            "could not reach identity at http://127.0.0.1:50051: connection refused."
        ));
    }
}

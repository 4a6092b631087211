//! Publishing `AuditEvent`s to the audit stream. (Being written for issue 7.)
#![forbid(unsafe_code)]

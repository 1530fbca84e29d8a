//! Who cordon contains: an IAM user, a role, the root user, or a kind it never guesses at.
//! Lower than signals, protection and rules, which all speak of principals.

use serde::Serialize;

use crate::ids::IamName;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Principal {
    User(IamName),
    Role(IamName),
    Root,
    /// FederatedUser, AWSService, AWSAccount and whatever GuardDuty adds next: never guessed at.
    Unsupported(String),
}

impl Principal {
    /// The type names a principal kind, never a path or a sentence: letters and digits only.
    pub fn unsupported(kind: &str) -> Self {
        let kind: String = kind
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(64)
            .collect();
        Self::Unsupported(if kind.is_empty() {
            "unknown".to_owned()
        } else {
            kind
        })
    }

    /// What a person reads: `IAM user alice`, `role web-app`.
    pub fn describe(&self) -> String {
        match self {
            Self::User(n) => format!("IAM user {n}"),
            Self::Role(n) => format!("role {n}"),
            Self::Root => "root user".to_owned(),
            Self::Unsupported(kind) => format!("{kind} principal"),
        }
    }
}

//! Playbooks: which actions, in which order, for each kind of target.

pub mod credentials;
pub mod instance;

use crate::actions::ActionRecord;

/// What a playbook did, or why it touched nothing.
pub enum Played {
    Actions(Vec<ActionRecord>),
    Refused(String),
}

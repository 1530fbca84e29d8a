//! Playbooks: which actions, in which order, for each kind of target.

pub mod credentials;

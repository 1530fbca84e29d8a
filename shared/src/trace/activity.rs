//! "What the key did": every write of the chain, grouped by service, one record per service.
//! The ledger keeps each call (with a link to its CloudTrail event); the note a person reads
//! names the calls that matter first: compute launched, policies attached, functions created.

use std::collections::BTreeMap;

use serde_json::json;

use super::chain::Write;
use crate::actions::{observed, Action, ActionRecord};

/// Calls kept per service in the ledger's item (DynamoDB holds 400 KB); every call is counted.
const CALLS_KEPT: usize = 500;
/// What the notification's line for a service may hold.
const NOTE_CHARS: usize = 450;

pub fn list(writes: &BTreeMap<String, Vec<Write>>) -> Vec<ActionRecord> {
    writes
        .iter()
        .map(|(service, calls)| {
            let mut by_event: BTreeMap<&str, usize> = BTreeMap::new();
            for c in calls {
                *by_event.entry(c.event.as_str()).or_default() += 1;
            }
            let kept: Vec<_> = calls
                .iter()
                .take(CALLS_KEPT)
                .map(|c| {
                    let mut v = json!(c);
                    if let (Some(region), Some(id)) = (&c.region, &c.event_id) {
                        v["link"] = format!(
                            "https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{id}"
                        )
                        .into();
                    }
                    v
                })
                .collect();
            let mut notable: Vec<String> = calls
                .iter()
                .filter(|c| c.notable)
                .map(|c| match &c.resource {
                    Some(r) => format!("{} {r}", c.event),
                    None => c.event.clone(),
                })
                .collect();
            notable.dedup();
            let counts = by_event
                .iter()
                .map(|(e, n)| format!("{e} x{n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut note = if notable.is_empty() {
                format!("{} write(s): {counts}", calls.len())
            } else {
                format!("{} write(s); NOTE {}; all: {counts}", calls.len(), notable.join(", "))
            };
            if note.len() > NOTE_CHARS {
                note = format!(
                    "{}... (the ledger lists every call)",
                    note.chars().take(NOTE_CHARS).collect::<String>()
                );
            }
            observed(
                Action::ListActivity,
                service.clone(),
                json!({"writes": calls.len(), "by_event": by_event, "calls": kept,
                       "calls_not_kept": calls.len().saturating_sub(CALLS_KEPT)}),
                Some(note),
            )
        })
        .collect()
}

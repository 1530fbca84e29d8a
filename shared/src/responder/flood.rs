//! Floods: a rule's notify-only incidents about one principal or instance (failed calls, open
//! admin ports, root use, a probed instance) are published once per window
//! (NOTICE_WINDOW_SECONDS). Each later one is still recorded, with its own ledger item, and
//! counted beside the window's first; the next window's first notice says how many were only
//! counted. An attacker repeating a failed call cannot bury the alert topic, and a count that
//! cannot be kept is never a reason to stay silent.

use time::OffsetDateTime;

use crate::ledger::Status;
use crate::policy::rfc3339_seconds;
use crate::signals::{Incident, Target};

use super::Responder;

/// Whether a declined incident's notice goes out, and what its reason gains.
pub(super) enum Telling {
    /// Published, the reason followed by what a person should know about the window.
    Publish(Option<String>),
    /// Counted, not published: the reason it is recorded with.
    Counted(String),
}

impl Responder {
    /// A notify-only incident's first delivery, counted against its rule and target's window.
    pub(super) async fn tell_or_count(
        &self,
        incident: &Incident,
        target: Option<&Target>,
        status: Status,
    ) -> Telling {
        let Some(target) = target.filter(|_| status == Status::NotifyOnly) else {
            return Telling::Publish(None);
        };
        let account = incident.account.as_ref().unwrap_or(&self.account).as_str();
        let counted = self
            .ledger
            .count_notice(
                incident,
                account,
                &target.resource_key(),
                self.config.notice_window_seconds,
                OffsetDateTime::now_utc(),
            )
            .await;
        let about = target.describe_briefly();
        match counted {
            Ok(c) if c.seen > 1 => Telling::Counted(format!(
                "{} notice {} about {about} in the window until {}: counted in the ledger, not published (the window's first was)",
                incident.kind,
                c.seen,
                rfc3339_seconds(c.window_end)
            )),
            Ok(c) => {
                let mut note = format!(
                    "further {} notices about {about} until {} are counted in the ledger, not published",
                    incident.kind,
                    rfc3339_seconds(c.window_end)
                );
                if c.previous > 1 {
                    note.push_str(&format!(
                        "; the window before counted {} more, not published",
                        c.previous - 1
                    ));
                }
                Telling::Publish(Some(note))
            }
            Err(error) => {
                tracing::warn!(incident = %incident.id, %error, "could not count the notice against its window");
                Telling::Publish(Some(format!(
                    "could not be counted against a flood ({error}): published"
                )))
            }
        }
    }
}

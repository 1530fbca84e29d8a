//! trace-credentials: follow a stolen credential through CloudTrail and contain what it made.
//!
//! [`history`] reads what a key did (LookupEvents, within [`limiter`]'s quota and the
//! invocation's time), [`chain`] reads what the records say it minted and made, [`contain`]
//! stops each thing made, and [`activity`] lists every other write by service. Here: the walk
//! from the first key through the credentials it minted, each visited once, to TRACE_DEPTH.

mod activity;
pub mod chain;
mod contain;
pub mod history;
pub mod limiter;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::actions::iam::IamActions;
use crate::actions::instance::InstanceActions;
use crate::actions::shares::ShareActions;
use crate::actions::{observed, read_failed, skipped, Action, ActionRecord};
use crate::config::Config;
use crate::events::cloudtrail::Record;
use crate::ids::{AccessKeyId, AccountId, IamName, IncidentId};
use crate::principal::{IamPath, Principal};
use history::{History, Lookup, Unread};
use limiter::{Limiter, LOOKUPS_PER_SECOND};

/// IAM, STS and other global services write their events to us-east-1.
pub const GLOBAL_REGION: &str = "us-east-1";

/// Reading stops this long before the invocation's deadline: time to contain what was found,
/// then write the ledger and the notification.
pub const RESERVE: Duration = Duration::from_secs(30);

/// What the trace uses, all built once per cold start.
pub struct Tracer<'a> {
    pub iam: &'a IamActions,
    pub shares: ShareActions,
    pub instances: &'a InstanceActions,
    pub cloudtrail: &'a aws_sdk_cloudtrail::Client,
    pub account: &'a AccountId,
    pub config: &'a Config,
}

/// The credential an incident names, and where it was seen.
pub struct Start<'a> {
    pub principal: &'a Principal,
    pub key: Option<&'a AccessKeyId>,
    pub region: Option<&'a str>,
    pub incident: &'a IncidentId,
}

impl Tracer<'_> {
    pub async fn trace(
        &self,
        start: Start<'_>,
        cutoff: OffsetDateTime,
        deadline: Option<std::time::Instant>,
    ) -> Vec<ActionRecord> {
        let Some(key) = start.key else {
            return vec![skipped(
                Action::TraceHistory,
                start.principal.describe(),
                "the incident names no access key: nothing to trace",
            )];
        };
        let until = deadline.map(|d| {
            Instant::from_std(d)
                .checked_sub(RESERVE)
                .unwrap_or_else(Instant::now)
        });
        let now = OffsetDateTime::now_utc();
        let window = (
            now - time::Duration::days(i64::try_from(self.config.trace.days).unwrap_or(90)),
            now,
        );
        let regions = regions(start.region);
        let mut walk = Walk {
            limiters: regions
                .iter()
                .map(|r| (r.clone(), Limiter::new(LOOKUPS_PER_SECOND)))
                .collect(),
            clients: regions
                .iter()
                .map(|r| (r.clone(), self.regional(r)))
                .collect(),
            regions,
            window,
            until,
            first: Vec::new(),
        };
        let mut records = walk.read_first().await;
        let mut all: Vec<Record> = Vec::new();
        let mut frontier = vec![key.clone()];
        // A temporary key of an IAM user: the long-term key that minted it is the attacker's too.
        if let (Principal::User(_), false) = (start.principal, key.is_long_term()) {
            match walk.minter(key) {
                Some((user, parent)) => {
                    records.extend(
                        self.iam
                            .deactivate_keys(&user, Some(&parent), false, self.config.dry_run)
                            .await,
                    );
                    frontier.push(parent);
                }
                None => records.push(skipped(
                    Action::DeactivateAccessKey,
                    key.to_string(),
                    "no GetSessionToken or GetFederationToken that was read minted this key: its long-term key was not found",
                )),
            }
        }
        let mut visited: BTreeSet<AccessKeyId> = frontier.iter().cloned().collect();
        for depth in 0..=self.config.trace.depth {
            let mut next = Vec::new();
            for k in std::mem::take(&mut frontier) {
                let (read, histories) = walk.key(&k).await;
                records.extend(histories);
                for m in read.into_iter().flat_map(|r| {
                    let minted = chain::read(&r, self.account, &self.config.rules).minted;
                    all.extend(r);
                    minted
                }) {
                    if !visited.insert(m.key.clone()) {
                        continue;
                    }
                    if depth < self.config.trace.depth {
                        next.push(m.key);
                    } else {
                        records.push(skipped(
                            Action::TraceHistory,
                            m.key.to_string(),
                            format!(
                                "minted by {} of {k}: not followed, TRACE_DEPTH {} reached",
                                m.by, self.config.trace.depth
                            ),
                        ));
                    }
                }
            }
            frontier = next;
            if frontier.is_empty() {
                break;
            }
        }
        let read = chain::read(&all, self.account, &self.config.rules);
        records.extend(contain::all(self, &read.made, start.incident, cutoff).await);
        records.extend(activity::list(&read.writes));
        records
    }

    fn regional(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        let config = self
            .cloudtrail
            .config()
            .to_builder()
            .region(aws_sdk_cloudtrail::config::Region::new(region.to_owned()))
            .build();
        aws_sdk_cloudtrail::Client::from_conf(config)
    }

    /// `path` where the record says (a role the chain assumed); a principal it made is matched
    /// by an exact name, or a pattern without a path.
    fn protected(&self, principal: &Principal, path: Option<&IamPath>) -> Option<String> {
        self.config
            .protected
            .matching(Some(self.account), principal, path)
            .map(ToString::to_string)
    }
}

/// The incident's region and the global one, each once; a region that is not a region name is
/// not asked.
fn regions(incident: Option<&str>) -> Vec<String> {
    let mut out = vec![GLOBAL_REGION.to_owned()];
    if let Some(r) = incident.filter(|r| {
        (1..=32).contains(&r.len())
            && r.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }) {
        if r != GLOBAL_REGION {
            out.insert(0, r.to_owned());
        }
    }
    out
}

/// One trace's readers: a client and a quota per region, one window, one bound; and the calls
/// read by name first.
struct Walk {
    regions: Vec<String>,
    clients: HashMap<String, aws_sdk_cloudtrail::Client>,
    limiters: HashMap<String, Limiter>,
    window: (OffsetDateTime, OffsetDateTime),
    until: Option<Instant>,
    first: Vec<Record>,
}

impl Walk {
    /// `lookup` in every region at once, none after `until`; each region keeps its own quota.
    async fn read(&self, lookup: &Lookup, until: Option<Instant>) -> Vec<History> {
        let reads = self.regions.iter().filter_map(|r| {
            Some(history::read(
                self.clients.get(r)?,
                r,
                self.limiters.get(r)?,
                lookup,
                self.window,
                until,
            ))
        });
        futures::future::join_all(reads).await
    }

    /// Every call of [`chain::READ_FIRST`] in the account, before any key's history and in at
    /// most a third of the time: a key that floods its own history with other calls cannot push
    /// what it made out of the time. One record per region.
    async fn read_first(&mut self) -> Vec<ActionRecord> {
        let now = Instant::now();
        let until = self
            .until
            .map(|u| now + u.saturating_duration_since(now) / 3);
        let mut by_region: Vec<History> = Vec::new();
        for call in chain::READ_FIRST {
            for h in self.read(&Lookup::EventName(call), until).await {
                match by_region.iter_mut().find(|b| b.region == h.region) {
                    Some(b) => b.absorb(h),
                    None => by_region.push(h),
                }
            }
        }
        let records = by_region
            .iter()
            .map(|h| {
                record(
                    h,
                    &format!("calls that make credentials or shares in {}", h.region),
                )
            })
            .collect();
        self.first = by_region.into_iter().flat_map(|h| h.records).collect();
        records
    }

    /// Everything `key` signed (its history, and what was read first), and the record of each
    /// region's read.
    async fn key(&self, key: &AccessKeyId) -> (Vec<Vec<Record>>, Vec<ActionRecord>) {
        let histories = self
            .read(&Lookup::AccessKey(key.to_string()), self.until)
            .await;
        let records = histories
            .iter()
            .map(|h| record(h, &format!("{key} in {}", h.region)))
            .collect();
        let mut read: Vec<Vec<Record>> = histories.into_iter().map(|h| h.records).collect();
        let seen: BTreeSet<&str> = read
            .iter()
            .flatten()
            .filter_map(|r| r.event_id.as_deref())
            .collect();
        let signed: Vec<Record> = self
            .first
            .iter()
            .filter(|r| r.user_identity.access_key_id.as_deref() == Some(key.as_str()))
            .filter(|r| r.event_id.as_deref().is_none_or(|id| !seen.contains(id)))
            .cloned()
            .collect();
        read.push(signed);
        (read, records)
    }

    /// The call that minted the temporary `key` (read first), by its user's long-term key.
    fn minter(&self, key: &AccessKeyId) -> Option<(IamName, AccessKeyId)> {
        self.first
            .iter()
            .filter(|r| ["GetSessionToken", "GetFederationToken"].contains(&r.event_name.as_str()))
            .find_map(|r| {
                let minted = r
                    .response_elements
                    .as_ref()?
                    .pointer("/credentials/accessKeyId")?;
                if minted.as_str() != Some(key.as_str()) || r.error_code.is_some() {
                    return None;
                }
                let id = &r.user_identity;
                let user = IamName::parse(id.user_name.as_deref()?).ok()?;
                let parent = AccessKeyId::parse(id.access_key_id.as_deref()?).ok()?;
                parent.is_long_term().then_some((user, parent))
            })
    }
}

/// A read, as an action: succeeded when every page was read, failed when LookupEvents failed,
/// skipped (saying what was NOT read) when time ran out.
fn record(h: &History, target: &str) -> ActionRecord {
    let summary = h.summary();
    let mut r = match (&h.unread, h.unread_text()) {
        (Some(Unread::Failed(e)), _) => read_failed(Action::TraceHistory, target, e),
        (Some(Unread::OutOfTime), Some(text)) => skipped(Action::TraceHistory, target, text),
        _ => return observed(Action::TraceHistory, target, summary, None),
    };
    r.after = Some(summary);
    r
}

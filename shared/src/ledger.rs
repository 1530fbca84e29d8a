//! The incident ledger in DynamoDB: one incident per finding, one item per delivery and per action.
//!
//! Layout (partition key `pk`, sort key `sk`, both strings):
//! - `INCIDENT#<id>` / `META#<function>`: the incident as this function handles it: what, which
//!   resource, status, deliveries, the lease, and `cutoff` (the session-revocation time every
//!   delivery reuses). One finding can go to both functions (InstanceCredentialExfiltration is
//!   an AccessKey finding about an instance), and each keeps its own lease and status.
//! - `INCIDENT#<id>` / `DELIVERY#<function>#<nnnn>`: each invocation: request id, new / repeat /
//!   duplicate.
//! - `INCIDENT#<id>` / `ACTION#<function>#<nnnn>#<ii>`: each action of that delivery, with the
//!   state before.
//! - `RATE#<account>#<window>` / `RATE`: the containments the budget allowed in a window;
//!   `PAID#<account>#<resource>` / `BUDGET`: a target the budget paid for (`paid_at`).
//! - `NOTICE#<account>#<finding type>#<resource>` / `WINDOW#<window>`: the notify-only incidents
//!   of one rule and principal in a window (`seen`, `first_incident`, `last_incident`): the
//!   first was published, the rest only counted.
//!
//! Queries: all of an incident = `pk` alone; all incidents of a principal or instance = index
//! `by-resource` (`resource_pk`, `created_at`); open incidents = sparse index `open`
//! (`open_pk` = `OPEN`, `created_at`), which a person empties by removing `open_pk` on release.
//! The lease is a number compared in a condition, not a TTL: nothing in the ledger expires.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::actions::{rfc3339_millis, ActionRecord, Outcome};
use crate::aws::{aws, AwsError};
use crate::ids::AccessKeyId;
use crate::policy::rfc3339_seconds;
use crate::signals::{Function, Incident, Target};

pub const BY_RESOURCE_INDEX: &str = "by-resource";
pub const OPEN_INDEX: &str = "open";

/// Where an incident stands after an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Contained,
    Failed,
    Planned,
    Protected,
    NotifyOnly,
    Unsupported,
    Ignored,
    /// The account's containment budget was spent: a person decides.
    Deferred,
}

impl Status {
    /// How much a person needs to hear of it, for the status of an incident with several parts:
    /// a failure above all, then what waits on a person, then what was done.
    pub fn urgency(self) -> u8 {
        match self {
            Self::Failed => 7,
            Self::Deferred => 6,
            Self::Contained => 5,
            Self::Planned => 4,
            Self::NotifyOnly => 3,
            Self::Unsupported => 2,
            Self::Protected => 1,
            Self::Ignored => 0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contained => "contained",
            Self::Failed => "failed",
            Self::Planned => "planned",
            Self::Protected => "protected",
            Self::NotifyOnly => "notify_only",
            Self::Unsupported => "unsupported",
            Self::Ignored => "ignored",
            Self::Deferred => "deferred",
        }
    }

    /// Incidents a person still has to look at.
    fn is_open(self) -> bool {
        !matches!(self, Self::Ignored | Self::Planned)
    }
}

/// How this invocation relates to earlier ones for the same incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    New,
    /// The incident was handled before (GuardDuty re-sent it, or EventBridge/Lambda repeated).
    Repeat,
    /// Another invocation holds the incident right now; this one changed nothing.
    ConcurrentDuplicate,
}

pub enum Claim {
    Owned {
        delivery: u64,
        kind: Delivery,
        cutoff: OffsetDateTime,
        /// The status the last finished invocation wrote, and the one that was notified.
        previous: Option<String>,
        notified: Option<String>,
        /// The access key whose sessions the cutoff last covered: the finding's key when it was
        /// set, or the key that made the cutoff move.
        cut_key: Option<String>,
    },
    Busy {
        delivery: u64,
        owner: String,
    },
}

/// What an invocation settled, for [`Ledger::finish`] to record.
pub struct Settled<'a> {
    pub status: Status,
    pub actions: &'a [ActionRecord],
    /// The status a notification went out for, if one did.
    pub notified: Option<Status>,
    /// The new session cutoff, when continued activity moved it, and the key that was active.
    pub moved_cutoff: Option<(OffsetDateTime, Option<&'a AccessKeyId>)>,
    /// Why the incident stands as it does (a refusal, drift, tampering), when there is a why.
    pub reason: Option<&'a str>,
}

/// A declined incident as [`Ledger::note`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Noted {
    pub delivery: u64,
    /// The status a notice went out for, if one did.
    pub notified: Option<String>,
    /// Its notice was counted against a flood window instead of published.
    pub counted: bool,
    /// Lambda's retry of the invocation that made the delivery before (the same request id):
    /// its notice may have failed to go out.
    pub retry: bool,
}

impl Noted {
    /// A first delivery, nothing told before: what an unrecorded delivery may be.
    pub fn first() -> Self {
        Self {
            delivery: 1,
            notified: None,
            counted: false,
            retry: false,
        }
    }
}

/// A notify-only incident counted in its rule and principal's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoticeCount {
    /// How many the window has seen, this one included: only the first is published.
    pub seen: u64,
    /// For the window's first: how many the window before saw (all but its first unpublished).
    pub previous: u64,
    pub window_end: OffsetDateTime,
}

fn window_start(window: u64, window_seconds: u64) -> OffsetDateTime {
    let at = i64::try_from(window.saturating_mul(window_seconds)).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub struct Ledger {
    client: aws_sdk_dynamodb::Client,
    table: String,
    function: Function,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn pk(incident: &Incident) -> AttributeValue {
    s(format!("INCIDENT#{}", incident.id))
}

/// One item per target the budget paid for, for good. IAM names are unique whatever their case.
/// A conditional write: `false` when its condition did not hold, an error for anything else.
fn condition_held<T>(written: Result<T, AwsError>) -> Result<bool, AwsError> {
    match written {
        Ok(_) => Ok(true),
        Err(e) if e.is("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(e),
    }
}

fn paid_pk(account: &str, resource_key: &str) -> AttributeValue {
    s(format!(
        "PAID#{account}#{}",
        resource_key.to_ascii_lowercase()
    ))
}

/// `SET a = :a, …` from pairs, every name behind a placeholder (many are reserved words).
struct Update {
    sets: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Update {
    fn new() -> Self {
        Self {
            sets: Vec::new(),
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    fn name(&mut self, attr: &str) -> String {
        let key = format!("#{attr}");
        self.names.insert(key.clone(), attr.to_owned());
        key
    }

    fn value(&mut self, attr: &str, v: AttributeValue) -> String {
        let key = format!(":{attr}");
        self.values.insert(key.clone(), v);
        key
    }

    fn set(mut self, attr: &str, v: AttributeValue) -> Self {
        let (k, val) = (self.name(attr), self.value(attr, v));
        self.sets.push(format!("{k} = {val}"));
        self
    }

    /// Written by the first invocation only.
    fn set_once(mut self, attr: &str, v: AttributeValue) -> Self {
        let (k, val) = (self.name(attr), self.value(attr, v));
        self.sets.push(format!("{k} = if_not_exists({k}, {val})"));
        self
    }

    fn expression(&mut self) -> String {
        let one = self.value("one", n(1));
        let deliveries = self.name("deliveries");
        format!("SET {} ADD {deliveries} {one}", self.sets.join(", "))
    }
}

impl Ledger {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        function: Function,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            function,
        }
    }

    fn meta(&self) -> AttributeValue {
        s(format!("META#{}", self.function.name()))
    }

    fn describe(&self, incident: &Incident, target: Option<&Target>, now: &str) -> Update {
        let mut u = Update::new()
            .set("incident_id", s(incident.id.as_str()))
            .set("function", s(self.function.name()))
            .set("finding_type", s(&incident.kind))
            .set("title", s(&incident.title))
            .set("severity", n(incident.severity))
            .set("last_count", n(incident.count))
            .set("updated_at", s(now))
            .set_once("created_at", s(now));
        if let Some(a) = &incident.account {
            u = u.set("account", s(a.as_str()));
        }
        if let Some(r) = &incident.region {
            u = u.set("region", s(r));
        }
        if let Some(t) = target {
            u = u
                .set("target", s(serde_json::to_string(t).unwrap_or_default()))
                .set("resource_pk", s(format!("RESOURCE#{}", t.resource_key())));
        }
        u
    }

    /// Claim the incident for this invocation, or learn who holds it. The condition makes
    /// concurrent duplicates end with exactly one owner; an expired lease (a crashed
    /// invocation) can be taken over.
    pub async fn claim(
        &self,
        incident: &Incident,
        target: &Target,
        request_id: &str,
        lease_seconds: u64,
        now: OffsetDateTime,
    ) -> Result<Claim, AwsError> {
        let stamp = rfc3339_millis(now);
        let mut u = self
            .describe(incident, Some(target), &stamp)
            .set_once("cutoff", s(rfc3339_seconds(now)));
        if let Some(key) = target.access_key() {
            u = u.set_once("cut_key", s(key.as_str()));
        }
        let mut u = u.set("lease_owner", s(request_id)).set(
            "lease_expires",
            n(now.unix_timestamp() as u64 + lease_seconds),
        );
        let now_key = u.value("now_epoch", n(now.unix_timestamp()));
        let lease = u.name("lease_expires");
        // Our own lease counts as free: the SDK may retry a claim whose first attempt was
        // applied but whose answer was lost.
        let me = u.value("me", s(request_id));
        let owner = u.name("lease_owner");
        let condition =
            format!("attribute_not_exists({lease}) OR {lease} < {now_key} OR {owner} = {me}");
        let expression = u.expression();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(incident))
            .key("sk", self.meta())
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(aws);
        match result {
            Ok(out) => {
                let item = out.attributes().cloned().unwrap_or_default();
                let delivery = number(&item, "deliveries");
                let cutoff = string(&item, "cutoff")
                    .and_then(|c| OffsetDateTime::parse(&c, &Rfc3339).ok())
                    .unwrap_or(now);
                let previous = string(&item, "status");
                let kind = if delivery > 1 {
                    Delivery::Repeat
                } else {
                    Delivery::New
                };
                self.put_delivery(incident, delivery, request_id, kind, &stamp)
                    .await?;
                Ok(Claim::Owned {
                    delivery,
                    kind,
                    cutoff,
                    previous,
                    notified: string(&item, "notified_status"),
                    cut_key: string(&item, "cut_key"),
                })
            }
            Err(e) if e.is("ConditionalCheckFailedException") => {
                let (delivery, owner) = self.count_delivery(incident).await?;
                self.put_delivery(
                    incident,
                    delivery,
                    request_id,
                    Delivery::ConcurrentDuplicate,
                    &stamp,
                )
                .await?;
                Ok(Claim::Busy { delivery, owner })
            }
            Err(e) => Err(e),
        }
    }

    async fn count_delivery(&self, incident: &Incident) -> Result<(u64, String), AwsError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(incident))
            .key("sk", self.meta())
            .update_expression("ADD deliveries :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(aws)?;
        let item = out.attributes().cloned().unwrap_or_default();
        Ok((
            number(&item, "deliveries"),
            string(&item, "lease_owner").unwrap_or_default(),
        ))
    }

    async fn put_delivery(
        &self,
        incident: &Incident,
        delivery: u64,
        request_id: &str,
        kind: Delivery,
        at: &str,
    ) -> Result<(), AwsError> {
        let kind = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(incident))
            .item(
                "sk",
                s(format!("DELIVERY#{}#{delivery:04}", self.function.name())),
            )
            .item("request_id", s(request_id))
            .item("delivery", n(delivery))
            .item("kind", s(kind))
            .item("finding_count", n(incident.count))
            .item("at", s(at))
            .send()
            .await
            .map_err(aws)?;
        Ok(())
    }

    /// Record the actions of this delivery and the incident's new status, and release the lease.
    pub async fn finish(
        &self,
        incident: &Incident,
        delivery: u64,
        request_id: &str,
        settled: Settled<'_>,
    ) -> Result<(), AwsError> {
        let Settled {
            status,
            actions,
            notified,
            moved_cutoff,
            reason,
        } = settled;
        let puts = actions.iter().enumerate().map(|(i, a)| {
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", pk(incident))
                .item(
                    "sk",
                    s(format!(
                        "ACTION#{}#{delivery:04}#{i:02}",
                        self.function.name()
                    )),
                )
                .item("action", s(a.action.name()))
                .item("target", s(&a.target))
                .item("outcome", s(a.outcome.word()))
                .item("started_at", s(&a.started_at))
                .item("finished_at", s(&a.finished_at))
                .item("request_id", s(request_id))
                .item("delivery", n(delivery));
            match &a.outcome {
                Outcome::Skipped { reason } => put = put.item("reason", s(reason)),
                Outcome::Failed { error } => put = put.item("error", s(error)),
                Outcome::Succeeded | Outcome::Planned => {}
            }
            for (name, v) in [("before", &a.before), ("after", &a.after)] {
                if let Some(v) = v {
                    put = put.item(name, s(v.to_string()));
                }
            }
            if let Some(note) = &a.note {
                put = put.item("note", s(note));
            }
            if let Some(verified) = a.verified {
                put = put.item("verified", AttributeValue::Bool(verified));
            }
            if let Some(tampered) = &a.tampered {
                put = put.item("tampered", s(tampered));
            }
            put.send()
        });
        for r in futures::future::join_all(puts).await {
            r.map_err(aws)?;
        }
        let now = rfc3339_millis(OffsetDateTime::now_utc());
        let mut u = Update::new()
            .set("status", s(status.as_str()))
            .set("updated_at", s(&now))
            .set("last_request_id", s(request_id))
            .set("lease_expires", n(0));
        if status.is_open() {
            u = u.set("open_pk", s("OPEN"));
        }
        if let Some(notified) = notified {
            u = u.set("notified_status", s(notified.as_str()));
        }
        if let Some((cutoff, key)) = moved_cutoff {
            u = u.set("cutoff", s(rfc3339_seconds(cutoff)));
            if let Some(key) = key {
                u = u.set("cut_key", s(key.as_str()));
            }
        }
        if let Some(reason) = reason {
            u = u.set("reason", s(reason));
        }
        let expression = format!("SET {}", u.sets.join(", "));
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(incident))
            .key("sk", self.meta())
            .update_expression(expression)
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .send()
            .await
            .map_err(aws)?;
        Ok(())
    }

    /// Whether the budget has paid for this target (`resource_key`, as [`Target::resource_key`]
    /// gives it) before. Asked through a conditional UpdateItem, which the functions may call
    /// (GetItem they may not); it writes only to an item that is already there.
    pub async fn paid_for(&self, account: &str, resource_key: &str) -> Result<bool, AwsError> {
        let seen = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", paid_pk(account, resource_key))
            .key("sk", s("BUDGET"))
            .update_expression("SET #seen = :now")
            .condition_expression("attribute_exists(#paid)")
            .expression_attribute_names("#seen", "last_seen_at")
            .expression_attribute_names("#paid", "paid_at")
            .expression_attribute_values(":now", s(rfc3339_millis(OffsetDateTime::now_utc())))
            .send()
            .await
            .map_err(aws);
        condition_held(seen)
    }

    /// Record that the budget paid for this target: later incidents against it cost nothing.
    pub async fn mark_paid(&self, account: &str, resource_key: &str) -> Result<(), AwsError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", paid_pk(account, resource_key))
            .key("sk", s("BUDGET"))
            .update_expression("SET #paid = if_not_exists(#paid, :now)")
            .expression_attribute_names("#paid", "paid_at")
            .expression_attribute_values(":now", s(rfc3339_millis(OffsetDateTime::now_utc())))
            .send()
            .await
            .map_err(aws)?;
        Ok(())
    }

    /// Take one containment from the account's budget for the current window. `false` when the
    /// budget is spent: a flood of findings (or an attacker creating them) must not let cordon
    /// lock out a whole account.
    pub async fn take_budget(
        &self,
        account: &str,
        limit: u32,
        window_seconds: u64,
        now: OffsetDateTime,
    ) -> Result<bool, AwsError> {
        let window = now.unix_timestamp() as u64 / window_seconds.max(1);
        let taken = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("RATE#{account}#{window}")))
            .key("sk", s("RATE"))
            .update_expression("ADD #used :one")
            .condition_expression("attribute_not_exists(#used) OR #used < :limit")
            .expression_attribute_names("#used", "used")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .send()
            .await
            .map_err(aws);
        condition_held(taken)
    }

    /// Count one notify-only incident against its rule (`incident.kind`) and principal or
    /// instance (`resource_key`) in the window holding `now`. Returns how many the window has
    /// seen with this one and, for the window's first, how many the window before saw.
    pub async fn count_notice(
        &self,
        incident: &Incident,
        account: &str,
        resource_key: &str,
        window_seconds: u64,
        now: OffsetDateTime,
    ) -> Result<NoticeCount, AwsError> {
        let window_seconds = window_seconds.max(1);
        let window = now.unix_timestamp() as u64 / window_seconds;
        let key = s(format!(
            "NOTICE#{account}#{}#{}",
            incident.kind,
            resource_key.to_ascii_lowercase()
        ));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key.clone())
            .key("sk", s(format!("WINDOW#{window}")))
            .update_expression(
                "ADD #seen :one SET #first = if_not_exists(#first, :id), #last = :id, #start = if_not_exists(#start, :start)",
            )
            .expression_attribute_names("#seen", "seen")
            .expression_attribute_names("#first", "first_incident")
            .expression_attribute_names("#last", "last_incident")
            .expression_attribute_names("#start", "window_start")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":id", s(incident.id.as_str()))
            .expression_attribute_values(
                ":start",
                s(rfc3339_seconds(window_start(window, window_seconds))),
            )
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(aws)?;
        let seen = out.attributes().map_or(1, |i| number(i, "seen"));
        let previous = if seen == 1 && window > 0 {
            let before = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", key)
                .key("sk", s(format!("WINDOW#{}", window - 1)))
                .send()
                .await
                .map_err(aws)?;
            before.item().map_or(0, |i| number(i, "seen"))
        } else {
            0
        };
        Ok(NoticeCount {
            seen,
            previous,
            window_end: window_start(window + 1, window_seconds),
        })
    }

    /// A declined incident's notice was counted against its window, not published: with the
    /// reason that says so, and `counted`, so that a repeat does not publish it either.
    pub async fn counted(&self, incident: &Incident, reason: &str) -> Result<(), AwsError> {
        let u = Update::new()
            .set("reason", s(reason))
            .set("counted", AttributeValue::Bool(true));
        self.set_on_meta(incident, u).await
    }

    /// A declined incident's notice went out, for `status`: a repeat need not tell again, a
    /// retry after a failed publish must.
    pub async fn notified(&self, incident: &Incident, status: Status) -> Result<(), AwsError> {
        let u = Update::new().set("notified_status", s(status.as_str()));
        self.set_on_meta(incident, u).await
    }

    /// `u`'s attributes set on the incident's item, deliveries untouched.
    async fn set_on_meta(&self, incident: &Incident, u: Update) -> Result<(), AwsError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(incident))
            .key("sk", self.meta())
            .update_expression(format!("SET {}", u.sets.join(", ")))
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .send()
            .await
            .map_err(aws)?;
        Ok(())
    }

    /// An incident we decided not to act on (ignored, protected, notify-only): recorded with its
    /// reason. Returns the delivery number and whether it was told (or counted) before.
    pub async fn note(
        &self,
        incident: &Incident,
        target: Option<&Target>,
        request_id: &str,
        status: Status,
        reason: &str,
    ) -> Result<Noted, AwsError> {
        let now = rfc3339_millis(OffsetDateTime::now_utc());
        let mut u = self
            .describe(incident, target, &now)
            .set("status", s(status.as_str()))
            .set("reason", s(reason))
            .set("last_request_id", s(request_id));
        if status.is_open() {
            u = u.set("open_pk", s("OPEN"));
        }
        let expression = u.expression();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(incident))
            .key("sk", self.meta())
            .update_expression(expression)
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(aws)?;
        // The item as it was: what earlier deliveries told, and which invocation made the last.
        let before = out.attributes();
        let delivery = before.map_or(0, |i| number(i, "deliveries")) + 1;
        let kind = if delivery > 1 {
            Delivery::Repeat
        } else {
            Delivery::New
        };
        self.put_delivery(incident, delivery, request_id, kind, &now)
            .await?;
        Ok(Noted {
            delivery,
            notified: before.and_then(|i| string(i, "notified_status")),
            counted: before
                .and_then(|i| i.get("counted"))
                .is_some_and(|v| v.as_bool().is_ok_and(|b| *b)),
            retry: before.and_then(|i| string(i, "last_request_id")).as_deref() == Some(request_id),
        })
    }
}

fn string(item: &HashMap<String, AttributeValue>, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &HashMap<String, AttributeValue>, key: &str) -> u64 {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

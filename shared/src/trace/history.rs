//! A credential's history: CloudTrail `LookupEvents`, every page, within the quota and the time
//! the invocation has. What could not be read is said, never dropped.

use aws_sdk_cloudtrail::primitives::DateTime;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::limiter::Limiter;
use crate::aws::{aws, AwsError};
use crate::events::cloudtrail::Record;
use crate::policy::rfc3339_seconds;

/// LookupEvents' largest page.
const PAGE_SIZE: i32 = 50;

/// What to look up: the events signed by a key, or the events of one API call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lookup {
    AccessKey(String),
    EventName(&'static str),
}

impl Lookup {
    fn attribute(&self) -> Result<LookupAttribute, AwsError> {
        let (key, value) = match self {
            Self::AccessKey(k) => (LookupAttributeKey::AccessKeyId, k.as_str()),
            Self::EventName(n) => (LookupAttributeKey::EventName, *n),
        };
        LookupAttribute::builder()
            .attribute_key(key)
            .attribute_value(value)
            .build()
            .map_err(|e| AwsError {
                code: "InvalidLookupAttribute".to_owned(),
                message: e.to_string(),
            })
    }
}

/// Why part of a history was not read.
#[derive(Debug, Clone, PartialEq)]
pub enum Unread {
    /// The next page would have come after the invocation's bound.
    OutOfTime,
    /// LookupEvents failed after the SDK's retries.
    Failed(AwsError),
}

/// One lookup in one region, as far as it got.
pub struct History {
    pub region: String,
    pub records: Vec<Record>,
    pub pages: u32,
    /// Events CloudTrail returned whose record did not parse: counted, never guessed at.
    pub unparsed: u32,
    /// `None` when every page was read.
    pub unread: Option<Unread>,
    /// Events come newest first: what was not read is older than this (or all, if none came).
    pub oldest_read: Option<OffsetDateTime>,
    pub window: (OffsetDateTime, OffsetDateTime),
}

impl History {
    /// For the record: how much was read, and what was not.
    pub fn summary(&self) -> Value {
        json!({
            "region": self.region,
            "from": rfc3339_seconds(self.window.0),
            "to": rfc3339_seconds(self.window.1),
            "pages": self.pages,
            "events": self.records.len(),
            "unparsed": self.unparsed,
            "not_read": self.unread_text(),
        })
    }

    /// Another lookup's read in the same region, counted into this one: the pages and events
    /// add up, and what either did not read stays said (the earlier reason first).
    pub fn absorb(&mut self, other: History) {
        self.pages += other.pages;
        self.unparsed += other.unparsed;
        self.records.extend(other.records);
        if self.unread.is_none() {
            self.unread = other.unread;
            self.oldest_read = other.oldest_read;
        }
    }

    pub fn unread_text(&self) -> Option<String> {
        let why = match self.unread.as_ref()? {
            Unread::OutOfTime => "the invocation's time ran out".to_owned(),
            Unread::Failed(e) => format!("LookupEvents failed: {e}"),
        };
        let to = self.oldest_read.unwrap_or(self.window.1);
        Some(format!(
            "NOT READ: events from {} to {} in {} ({why})",
            rfc3339_seconds(self.window.0),
            rfc3339_seconds(to),
            self.region
        ))
    }
}

/// Every page of `lookup` in the client's region over `window`, each page in a slot of
/// `limiter`, none after `until`.
pub async fn read(
    client: &aws_sdk_cloudtrail::Client,
    region: &str,
    limiter: &Limiter,
    lookup: &Lookup,
    window: (OffsetDateTime, OffsetDateTime),
    until: Option<Instant>,
) -> History {
    let mut history = History {
        region: region.to_owned(),
        records: Vec::new(),
        pages: 0,
        unparsed: 0,
        unread: None,
        oldest_read: None,
        window,
    };
    let attribute = match lookup.attribute() {
        Ok(a) => a,
        Err(e) => {
            history.unread = Some(Unread::Failed(e));
            return history;
        }
    };
    let mut token: Option<String> = None;
    loop {
        if !limiter.acquire(until).await {
            history.unread = Some(Unread::OutOfTime);
            return history;
        }
        let page = client
            .lookup_events()
            .lookup_attributes(attribute.clone())
            .start_time(DateTime::from_secs(window.0.unix_timestamp()))
            .end_time(DateTime::from_secs(window.1.unix_timestamp()))
            .max_results(PAGE_SIZE)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(aws);
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                history.unread = Some(Unread::Failed(e));
                return history;
            }
        };
        history.pages += 1;
        for event in page.events() {
            if let Some(t) = event.event_time() {
                history.oldest_read = OffsetDateTime::from_unix_timestamp(t.secs()).ok();
            }
            match event
                .cloud_trail_event()
                .map(serde_json::from_str::<Record>)
            {
                Some(Ok(record)) => history.records.push(record),
                _ => history.unparsed += 1,
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return history,
        }
    }
}

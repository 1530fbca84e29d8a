//! CloudTrail history for the LookupEvents stand-in of `tests/moto_server.py`: the real recorded
//! records of `tests/corpus/cloudtrail`, re-stamped to the keys, users and resources a test
//! seeded in moto, and stored per region with the harness's own `CordonTest.PutTrailEvents`.

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{harness_call, repo_root, unique, BoxError, ACCOUNT};

/// The records of `tests/corpus/cloudtrail/<file>.json`.
pub fn corpus(file: &str) -> Result<Vec<Value>, BoxError> {
    let path = repo_root()
        .join("tests/corpus/cloudtrail")
        .join(format!("{file}.json"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    Ok(match doc {
        Value::Array(items) => items,
        Value::Object(mut o) => match o.remove("Records") {
            Some(Value::Array(items)) => items,
            _ => vec![Value::Object(o)],
        },
        _ => Vec::new(),
    })
}

/// The first record of `file` named `event`.
pub fn recorded(file: &str, event: &str) -> Result<Value, BoxError> {
    corpus(file)?
        .into_iter()
        .find(|r| r["eventName"] == event)
        .ok_or_else(|| format!("{file} has no {event}").into())
}

/// `record` as if IAM user `user` had made it with `key` in this account, `minutes_ago`, under a
/// fresh event id.
pub fn restamp(mut record: Value, user: &str, key: &str, minutes_ago: i64) -> Value {
    let at = OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago);
    let id = &mut record["userIdentity"];
    id["type"] = "IAMUser".into();
    id["userName"] = user.into();
    id["accessKeyId"] = key.into();
    id["accountId"] = ACCOUNT.into();
    id["arn"] = format!("arn:aws:iam::{ACCOUNT}:user/{user}").into();
    record["recipientAccountId"] = ACCOUNT.into();
    record["awsRegion"] = "us-east-1".into();
    record["eventID"] = unique("event").into();
    record["eventTime"] = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
    .into();
    record
}

/// Stratus `iam-backdoor-user`'s CreateAccessKey, as `key` of `user` making `made` for `victim`.
pub fn backdoor_key(
    user: &str,
    key: &str,
    minutes_ago: i64,
    victim: &str,
    made: &str,
) -> Result<Value, BoxError> {
    let mut r = restamp(
        recorded(
            "stratus__aws.persistence.iam-backdoor-user",
            "CreateAccessKey",
        )?,
        user,
        key,
        minutes_ago,
    );
    r["requestParameters"]["userName"] = victim.into();
    r["responseElements"]["accessKey"]["userName"] = victim.into();
    r["responseElements"]["accessKey"]["accessKeyId"] = made.into();
    Ok(r)
}

/// The same record made by a role session (`AssumedRole`) whose key is `key`.
pub fn as_role_session(
    mut record: Value,
    role: &str,
    role_id: &str,
    session: &str,
    key: &str,
) -> Value {
    record["userIdentity"] = json!({
        "type": "AssumedRole",
        "principalId": format!("{role_id}:{session}"),
        "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"),
        "accountId": ACCOUNT,
        "accessKeyId": key,
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role_id,
            "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "accountId": ACCOUNT, "userName": role}},
    });
    record
}

/// Store `records` as `region`'s CloudTrail history.
pub fn put(endpoint: &str, region: &str, records: &[Value]) -> Result<(), BoxError> {
    harness_call(
        endpoint,
        "CordonTest.PutTrailEvents",
        &json!({"Region": region, "Records": records}),
    )?;
    Ok(())
}

//! quarantine-credentials stops every credential of a contained IAM user, not only the
//! finding's access key: the console password is deleted; service-specific credentials, SSH
//! public keys and signing certificates are set Inactive (evidence, never deleted).
//!
//! Each event goes through `cordon::lambda::handle`, the function `lambda_runtime` serves, with
//! the function's AWS calls through the fault proxy to moto. moto serves login profiles, SSH
//! public keys and signing certificates. It does not implement ListServiceSpecificCredentials or
//! UpdateServiceSpecificCredential (moto 5.2.5 answers HTTP 500; tests/moto_server.py answers
//! them as for a user with none), so here the proxy answers those two calls with IAM's own
//! Query XML, scripted by the test, as the LimitExceeded fallback test scripts AttachUserPolicy,
//! and keeps the requests so the test sees the update cordon asked for.

use aws_sdk_iam::types::StatusType;
use cordon::actions::{Action, ActionRecord};
use cordon::ledger::{Delivery, Status};
use cordon::Report;
use integration_tests::faults::{Answer, FaultProxy};
use integration_tests::{attr, key_statuses, ledger_items, seed_role, seed_user, unique};
use serde_json::Value;

use crate::{deployment, lambda_invoke, moto, role_finding, through, user_finding};

/// A real OpenSSH RSA public key (generated with `ssh-keygen -t rsa -b 2048`).
const SSH_PUBLIC_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCdnmyBhFoSyUfGPI3KN82q7dLv6freWRTcnIEKpjbah/74Xfl39s9cPQhjCTdfD63brcTDcdoLxnyBEwQXDDCg4XpkboqoV4Mjp6RsP5VAak5piNmMuIyJ4xyZ7ydk/pEisa+BZOPGn01YJ3sixjhkloMNIAtnBWwfJybhg/c6Njyv2i9f7moH+kqVFknvdm/nrpB0KQkseKO8y+tB1Aje0w0ao595hVqbNF0aZ9Yruw86DmU7glkHcNaZdeNPjqGQwLCLdjpaazivFAGVPMQ0Yh/IiGLMrOGZ0Gry6bu4uGEGXjBPhfjkx4mF8mL74dYazcn+v0B8M3An/tP2ElPV cordon-test";

/// A real self-signed X.509 certificate (`openssl req -x509 -newkey rsa:2048 -days 36500`);
/// moto parses what it is given, as IAM does.
const SIGNING_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----
MIIDNzCCAh+gAwIBAgIUBKF+6JxCvEltB01gq1DzGfHyuB8wDQYJKoZIhvcNAQEL
BQAwKjEoMCYGA1UEAwwfY29yZG9uLXRlc3Qtc2lnbmluZy1jZXJ0aWZpY2F0ZTAg
Fw0yNjEyMDIxMjIwMThaGA8yMTI2MTEwODEyMjAxOFowKjEoMCYGA1UEAwwfY29y
ZG9uLXRlc3Qtc2lnbmluZy1jZXJ0aWZpY2F0ZTCCASIwDQYJKoZIhvcNAQEBBQAD
ggEPADCCAQoCggEBALrmoNBhHIFnxAcjerG4K6JNrutagDUM+q9cFApVg+2Tbnsh
4+HA/IhUyaF63Bq8Uz4roU9cMg8UmHSbJbmwfcZ17fi5nXKedo6gtQC0PNd9ieUg
Yc+waztP8jijsbteIuH5yTogBVnqAGg8YurAx0PGuswUXAYwSRYJ2cPyxmu+72WB
Ej0iKHQrFyv3CdkDMsDxYX517bz3UPbd1fOW249kOZ6ejLvqL7cdt4lm1P/woWeR
i6VaeN/rmll7q+sCnDReFeuYIksGUMs7CCT4noegs3WFfo/YnV3J0vBkmPuEBTVC
stATXKNeM+1kuwr94DjH7SoJBMcpXLiMZ4rUa4kCAwEAAaNTMFEwHQYDVR0OBBYE
FOqZLR3nN1eVEWTTX5LlWMDboGszMB8GA1UdIwQYMBaAFOqZLR3nN1eVEWTTX5Ll
WMDboGszMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQELBQADggEBAKAP7LqO
ElRncDcW46fQ3sc6JVZdfSFu+qC7Zt9n2mjC9sR9Btf3+e9FRZ9eMLXHJUFCA+gs
uOx+PxHJ298/0DWZ/5zB6Djt1HD0PDAm1q3IGkIWkMA7g52JQlkdpFnsth44iLaE
vYc4ninERK1+ZbqVxBq2YxX5Bok+xIfn+pOeP41WVvZWNtEUVXWfC3Lz6cv7eUdY
e9Yc2Wk8cMY6xEHu6BxfTi/4bXtWvXCPc3XptLKYEHZHY0ILCQ+MdtDUNOOTZEXv
xdP5LEKDPDdzlcUGDvf8BRbBQ8620aLLqo1ZQHQ7sIifnBl4Iu2K2txmH9svR+r2
R4Uu3R/B1xVZenI=
-----END CERTIFICATE-----
";

/// The scripted service-specific credential: a long-term Amazon Bedrock API key.
const BEDROCK_KEY_ID: &str = "ACCAQFODOSJV3EXAMPLE";

/// A user with two access keys, a console password, an SSH public key and a signing
/// certificate, all in moto. Returns the key ids.
async fn seed_user_with_every_credential(iam: &aws_sdk_iam::Client, user: &str) -> Vec<String> {
    let keys = seed_user(iam, user, 2).await.unwrap();
    iam.create_login_profile()
        .user_name(user)
        .password("Correct-Horse-Battery-9")
        .send()
        .await
        .unwrap();
    iam.upload_ssh_public_key()
        .user_name(user)
        .ssh_public_key_body(SSH_PUBLIC_KEY)
        .send()
        .await
        .unwrap();
    iam.upload_signing_certificate()
        .user_name(user)
        .certificate_body(SIGNING_CERTIFICATE)
        .send()
        .await
        .unwrap();
    keys
}

/// IAM's answer to ListServiceSpecificCredentials: one Bedrock API key with `status`. The shape
/// is botocore's iam 2010-05-08 model (ListServiceSpecificCredentialsResponse, result wrapper
/// ListServiceSpecificCredentialsResult, ServiceSpecificCredentialMetadata members).
fn list_answer(user: &str, status: &str) -> String {
    format!(
        r#"<ListServiceSpecificCredentialsResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <ListServiceSpecificCredentialsResult>
    <ServiceSpecificCredentials>
      <member>
        <UserName>{user}</UserName>
        <Status>{status}</Status>
        <ServiceCredentialAlias>BedrockAPIKey-q7x2</ServiceCredentialAlias>
        <CreateDate>2026-11-30T09:15:00Z</CreateDate>
        <ExpirationDate>2027-11-30T09:15:00Z</ExpirationDate>
        <ServiceSpecificCredentialId>{BEDROCK_KEY_ID}</ServiceSpecificCredentialId>
        <ServiceName>bedrock.amazonaws.com</ServiceName>
      </member>
    </ServiceSpecificCredentials>
    <IsTruncated>false</IsTruncated>
  </ListServiceSpecificCredentialsResult>
  <ResponseMetadata><RequestId>4f1e2a7c-scripted</RequestId></ResponseMetadata>
</ListServiceSpecificCredentialsResponse>"#
    )
}

const UPDATE_ANSWER: &str = r#"<UpdateServiceSpecificCredentialResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <ResponseMetadata><RequestId>9b3d5e61-scripted</RequestId></ResponseMetadata>
</UpdateServiceSpecificCredentialResponse>"#;

/// The proxy in front of moto, answering the two service-specific calls moto lacks: the key is
/// Active until cordon's update, Inactive after (as IAM would then list it). Scripted because
/// moto has no such API; every other call reaches moto.
async fn proxy_with_bedrock_key(user: &str) -> FaultProxy {
    let answers = vec![
        Answer {
            action: "ListServiceSpecificCredentials",
            status: "200 OK",
            body: list_answer(user, "Active"),
            times: 1,
        },
        Answer {
            action: "ListServiceSpecificCredentials",
            status: "200 OK",
            body: list_answer(user, "Inactive"),
            times: usize::MAX,
        },
        Answer {
            action: "UpdateServiceSpecificCredential",
            status: "200 OK",
            body: UPDATE_ANSWER.to_owned(),
            times: usize::MAX,
        },
    ];
    FaultProxy::answering(&moto().endpoint, answers)
        .await
        .unwrap()
}

/// The requests for `action` the proxy answered.
fn asked(proxy: &FaultProxy, action: &str) -> Vec<String> {
    let prefix = format!("Action={action}&");
    proxy
        .answered
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.starts_with(&prefix))
        .cloned()
        .collect()
}

fn records(report: &Report, action: Action) -> Vec<&ActionRecord> {
    report
        .actions
        .iter()
        .filter(|a| a.action == action)
        .collect()
}

fn only(report: &Report, action: Action) -> &ActionRecord {
    let found = records(report, action);
    assert_eq!(found.len(), 1, "{action:?}: {:#?}", report.actions);
    found[0]
}

async fn ssh_statuses(iam: &aws_sdk_iam::Client, user: &str) -> Vec<(String, StatusType)> {
    let out = iam
        .list_ssh_public_keys()
        .user_name(user)
        .send()
        .await
        .unwrap();
    out.ssh_public_keys()
        .iter()
        .map(|k| (k.ssh_public_key_id().to_owned(), k.status().clone()))
        .collect()
}

async fn certificate_statuses(iam: &aws_sdk_iam::Client, user: &str) -> Vec<(String, StatusType)> {
    let out = iam
        .list_signing_certificates()
        .user_name(user)
        .send()
        .await
        .unwrap();
    out.certificates()
        .iter()
        .map(|c| (c.certificate_id().to_owned(), c.status().clone()))
        .collect()
}

async fn has_login_profile(iam: &aws_sdk_iam::Client, user: &str) -> bool {
    match iam.get_login_profile().user_name(user).send().await {
        Ok(_) => true,
        Err(e) => {
            let e = cordon::aws::AwsError::from_sdk(e);
            assert!(e.is("NoSuchEntity"), "{e}");
            false
        }
    }
}

#[tokio::test]
async fn a_contained_user_keeps_no_live_credential() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("mallory");
    let keys = seed_user_with_every_credential(iam, &user).await;
    let ssh_before = ssh_statuses(iam, &user).await;
    let certificates_before = certificate_statuses(iam, &user).await;
    let proxy = proxy_with_bedrock_key(&user).await;
    let r = through(&proxy, &d, &[("DEACTIVATE_ALL_KEYS", "true")]).await;
    let (finding, e) = user_finding(&user, &keys[0]);

    let report = lambda_invoke(&r, e.clone()).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(report.delivery, Some(Delivery::New));

    // No Active access key.
    let statuses = key_statuses(iam, &user).await.unwrap();
    assert_eq!(statuses.len(), 2);
    assert!(
        statuses.iter().all(|(_, s)| s == "Inactive"),
        "{statuses:?}"
    );

    // No console password, and the record keeps that there was one, since when, and that the
    // user needs a new one on release.
    assert!(!has_login_profile(iam, &user).await);
    let password = only(&report, Action::RemoveLoginProfile);
    assert_eq!(password.outcome.word(), "succeeded", "{password:#?}");
    assert_eq!(password.target, format!("user/{user}"));
    assert_eq!(password.verified, Some(true));
    let before = &password.before.as_ref().unwrap()["login_profile"];
    assert_eq!(before["exists"], true, "{password:#?}");
    assert!(before["create_date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(before["password_reset_required"], false);
    assert!(password
        .note
        .as_deref()
        .unwrap()
        .contains("cannot be restored"));

    // The SSH public key and the signing certificate are still there, Inactive.
    let ssh = ssh_statuses(iam, &user).await;
    assert_eq!(ssh.len(), 1, "kept as evidence");
    assert!(
        ssh.iter().all(|(_, s)| *s == StatusType::Inactive),
        "{ssh:?}"
    );
    let ssh_record = only(&report, Action::DeactivateSshPublicKeys);
    assert_eq!(ssh_record.outcome.word(), "succeeded", "{ssh_record:#?}");
    assert_eq!(ssh_record.target, ssh_before[0].0);
    assert_eq!(ssh_record.before.as_ref().unwrap()["status"], "Active");
    assert_eq!(ssh_record.verified, Some(true));

    let certificates = certificate_statuses(iam, &user).await;
    assert_eq!(certificates.len(), 1, "kept as evidence");
    assert!(
        certificates.iter().all(|(_, s)| *s == StatusType::Inactive),
        "{certificates:?}"
    );
    let certificate = only(&report, Action::DeactivateSigningCertificates);
    assert_eq!(certificate.outcome.word(), "succeeded", "{certificate:#?}");
    assert_eq!(certificate.target, certificates_before[0].0);
    assert_eq!(certificate.before.as_ref().unwrap()["status"], "Active");
    assert_eq!(certificate.verified, Some(true));

    // The Bedrock API key (scripted: moto lacks the API): cordon asked IAM to set exactly that
    // credential of exactly that user Inactive, once, and read it back.
    let updates = asked(&proxy, "UpdateServiceSpecificCredential");
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert!(updates[0].contains("Status=Inactive"), "{}", updates[0]);
    assert!(
        updates[0].contains(&format!("ServiceSpecificCredentialId={BEDROCK_KEY_ID}")),
        "{}",
        updates[0]
    );
    assert!(
        updates[0].contains(&format!("UserName={user}")),
        "{}",
        updates[0]
    );
    let bedrock = only(&report, Action::DeactivateServiceSpecificCredentials);
    assert_eq!(bedrock.outcome.word(), "succeeded", "{bedrock:#?}");
    assert_eq!(bedrock.target, BEDROCK_KEY_ID);
    let before = bedrock.before.as_ref().unwrap();
    assert_eq!(before["status"], "Active");
    assert_eq!(before["service"], "bedrock.amazonaws.com");
    assert_eq!(before["alias"], "BedrockAPIKey-q7x2");
    assert_eq!(bedrock.verified, Some(true));

    // The ledger holds each action with its before-state.
    let items = ledger_items(&d.clients.dynamodb, &d.table, &finding)
        .await
        .unwrap();
    for action in [
        "remove_login_profile",
        "deactivate_service_specific_credentials",
        "deactivate_ssh_public_keys",
        "deactivate_signing_certificates",
    ] {
        let item = items
            .iter()
            .find(|i| attr(i, "action") == action)
            .unwrap_or_else(|| panic!("{action} in the ledger: {items:?}"));
        assert_eq!(attr(item, "outcome"), "succeeded");
        let before: Value = serde_json::from_str(attr(item, "before")).unwrap();
        assert_eq!(before["user"], user.as_str(), "{action}: {before}");
    }

    // A repeat delivery changes nothing and says so.
    let mut again = e;
    again["detail"]["service"]["count"] = 2.into();
    let repeat = lambda_invoke(&r, again).await;

    assert_eq!(repeat.delivery, Some(Delivery::Repeat));
    assert_eq!(repeat.status, Some(Status::Contained), "{repeat:#?}");
    for action in [
        Action::DeactivateServiceSpecificCredentials,
        Action::DeactivateSshPublicKeys,
        Action::DeactivateSigningCertificates,
    ] {
        let record = only(&repeat, action);
        assert_eq!(
            record.outcome,
            cordon::actions::Outcome::Skipped {
                reason: "already in place".to_owned()
            },
            "{record:#?}"
        );
        assert_eq!(record.before.as_ref().unwrap()["status"], "Inactive");
    }
    // The password is gone: nothing left to remove, so no record (as for a user without one).
    assert!(records(&repeat, Action::RemoveLoginProfile).is_empty());
    assert!(
        repeat.actions.iter().all(|a| a.outcome.word() == "skipped"),
        "{:#?}",
        repeat.actions
    );
    assert_eq!(asked(&proxy, "UpdateServiceSpecificCredential").len(), 1);
    assert!(!has_login_profile(iam, &user).await);
    assert_eq!(ssh_statuses(iam, &user).await, ssh);
    assert_eq!(certificate_statuses(iam, &user).await, certificates);
}

#[tokio::test]
async fn without_deactivate_all_keys_only_the_finding_key_but_every_other_credential() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("trudy");
    let keys = seed_user_with_every_credential(iam, &user).await;
    let proxy = proxy_with_bedrock_key(&user).await;
    let r = through(&proxy, &d, &[]).await;
    let (_, e) = user_finding(&user, &keys[0]);

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    let statuses = key_statuses(iam, &user).await.unwrap();
    assert!(statuses.contains(&(keys[0].clone(), "Inactive".to_owned())));
    assert!(statuses.contains(&(keys[1].clone(), "Active".to_owned())));
    assert!(!has_login_profile(iam, &user).await);
    assert!(ssh_statuses(iam, &user)
        .await
        .iter()
        .all(|(_, s)| *s == StatusType::Inactive));
    assert!(certificate_statuses(iam, &user)
        .await
        .iter()
        .all(|(_, s)| *s == StatusType::Inactive));
    assert_eq!(asked(&proxy, "UpdateServiceSpecificCredential").len(), 1);
}

#[tokio::test]
async fn dry_run_plans_every_credential_and_changes_none() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("oscar");
    let keys = seed_user_with_every_credential(iam, &user).await;
    let proxy = proxy_with_bedrock_key(&user).await;
    let r = through(
        &proxy,
        &d,
        &[("DRY_RUN", "true"), ("DEACTIVATE_ALL_KEYS", "true")],
    )
    .await;
    let (_, e) = user_finding(&user, &keys[0]);

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Planned), "{report:#?}");
    assert!(
        report.actions.iter().all(|a| a.outcome.word() == "planned"),
        "{:#?}",
        report.actions
    );
    for action in [
        Action::RemoveLoginProfile,
        Action::DeactivateServiceSpecificCredentials,
        Action::DeactivateSshPublicKeys,
        Action::DeactivateSigningCertificates,
    ] {
        assert!(only(&report, action).before.is_some());
    }
    assert!(key_statuses(iam, &user)
        .await
        .unwrap()
        .iter()
        .all(|(_, s)| s == "Active"));
    assert!(has_login_profile(iam, &user).await);
    assert!(ssh_statuses(iam, &user)
        .await
        .iter()
        .all(|(_, s)| *s == StatusType::Active));
    assert!(certificate_statuses(iam, &user)
        .await
        .iter()
        .all(|(_, s)| *s == StatusType::Active));
    assert!(asked(&proxy, "UpdateServiceSpecificCredential").is_empty());
}

/// A role has no password, service-specific credentials, SSH keys or certificates: none of
/// these actions runs for it.
#[tokio::test]
async fn a_role_gets_none_of_the_user_credential_actions() {
    let d = deployment().await;
    let role = unique("svc");
    seed_role(&d.clients.iam, &role).await.unwrap();
    let proxy = proxy_with_bedrock_key(&role).await;
    let (_, e) = role_finding(&role);

    let report = lambda_invoke(&through(&proxy, &d, &[]).await, e).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    for action in [
        Action::RemoveLoginProfile,
        Action::DeactivateServiceSpecificCredentials,
        Action::DeactivateSshPublicKeys,
        Action::DeactivateSigningCertificates,
    ] {
        assert!(records(&report, action).is_empty(), "{report:#?}");
    }
    assert!(asked(&proxy, "ListServiceSpecificCredentials").is_empty());
}

"""make deploy REGIONS="us-east-1 eu-west-1 ...": one cordon per region, one ledger and topic.

The home region is us-east-1: IAM's, STS's and AWS Health's account-wide events reach
EventBridge only there, so it must be one of the regions. It is deployed first and owns the
ledger (one rate limit and one record per account) and the alert topic. Every other region is
deployed pointed at them (SharedLedgerTableArn, SharedAlertTopicArn). Then every stack is
deployed once more, told the other stacks' function roles (PeerCordonRoles): the home ledger
lets only cordon's roles write, and each stack must not take the others' writes to the shared
quarantine policy for tampering.

Usage: python tools/deploy_regions.py <sam> <stack> "<regions>" "<Key=Value ...>"
"""

import subprocess
import sys

import boto3

HOME = "us-east-1"
ROLE_OUTPUTS = ("QuarantineCredentialsFunctionRoleArn", "IsolateInstanceFunctionRoleArn")


def outputs(stack: str, region: str) -> dict:
    cfn = boto3.client("cloudformation", region_name=region)
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def deploy(sam: str, stack: str, region: str, params: dict) -> None:
    overrides = [f"{k}={v}" for k, v in params.items()]
    subprocess.run(
        [sam, "deploy", "--region", region, "--stack-name", stack,
         "--capabilities", "CAPABILITY_NAMED_IAM", "--resolve-s3",
         "--no-confirm-changeset", "--no-fail-on-empty-changeset",
         "--parameter-overrides", *overrides],
        check=True,
    )


def main() -> int:
    sam, stack, regions, extra = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
    if HOME not in regions:
        print(f"REGIONS must include {HOME}: IAM's, STS's and Health's events reach "
              "EventBridge only there", file=sys.stderr)
        return 2
    base = dict(kv.split("=", 1) for kv in extra)
    base.setdefault("DeployerArn", boto3.client("sts").get_caller_identity()["Arn"])
    others = [r for r in dict.fromkeys(regions) if r != HOME]

    deploy(sam, stack, HOME, base)
    home = outputs(stack, HOME)
    shared = {"SharedLedgerTableArn": home["LedgerTableArn"],
              "SharedAlertTopicArn": home["AlertTopicArn"]}
    for region in others:
        deploy(sam, stack, region, {**base, **shared})

    roles = {r: [outputs(stack, r)[k] for k in ROLE_OUTPUTS] for r in [HOME, *others]}
    for region in [HOME, *others]:
        peers = ",".join(arn for r, arns in roles.items() if r != region for arn in arns)
        region_params = {**base, **({} if region == HOME else shared)}
        deploy(sam, stack, region, {**region_params, "PeerCordonRoles": peers})
    return 0


if __name__ == "__main__":
    sys.exit(main())

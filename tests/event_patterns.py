"""template.yaml's EventBridge rules as EventBridge would hold them, for the tests.

Reads the template with cfn-lint's decoder (which keeps `!Ref`, `!If`, `!Split`, `!Sub`),
resolves the intrinsic functions with the parameters' defaults overridden by a JSON object on
argv[1], drops the rules whose Condition is false, and prints one JSON object:

    {"rules": [{"rule": "<logical id>/<event>", "function": "quarantine-credentials",
                "resource": "CloudTrailCallsFunction", "state": "ENABLED", "pattern": {...}}]}

`function` is the code the rule's target runs (its CodeUri, target/lambda/<function>/), which
two function resources may share; `resource` is the target's logical id.

The integration tests match events against these patterns with moto's own event-pattern
engine (the events service's TestEventPattern), so no test hands a function an event that the
template would not deliver to it.
"""

import json
import sys

from cfnlint.decode import decode

NO_VALUE = object()
PSEUDO = {
    "AWS::StackName": "cordon",
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::NoValue": NO_VALUE,
}


def main():
    template_path, overrides = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    template, errors = decode(template_path)
    if errors:
        raise SystemExit(f"cannot read {template_path}: {errors}")
    params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    params.update(overrides)
    resources = template["Resources"]

    def ref(name):
        if name in PSEUDO:
            return PSEUDO[name]
        if name in params:
            return params[name]
        return function_name(name) or name

    def function_name(logical_id):
        code = resources.get(logical_id, {}).get("Properties", {}).get("CodeUri")
        return code.rstrip("/").rsplit("/", 1)[-1] if isinstance(code, str) else None

    def function_arn(logical_id):
        """A function's ARN, as the logical id and the code it runs."""
        return {"resource": logical_id, "function": function_name(logical_id)}

    def condition(name):
        return bool(resolve(template["Conditions"][name]))

    def sub(text):
        out, rest = "", text
        while "${" in rest:
            head, _, tail = rest.partition("${")
            var, _, rest = tail.partition("}")
            out += head + str(ref(var.split(".")[0]))
        return out + rest

    def resolve(node):
        if isinstance(node, dict):
            if len(node) == 1:
                (key, arg), = node.items()
                if key == "Ref":
                    return ref(arg)
                if key == "Fn::If":
                    return resolve(arg[1] if condition(arg[0]) else arg[2])
                if key == "Fn::Not":
                    return not resolve(arg[0])
                if key == "Fn::Equals":
                    return resolve(arg[0]) == resolve(arg[1])
                if key == "Fn::Split":
                    return resolve(arg[1]).split(arg[0])
                if key == "Fn::Join":
                    return arg[0].join(str(x) for x in resolve(arg[1]))
                if key == "Fn::Sub":
                    return sub(arg if isinstance(arg, str) else arg[0])
                if key == "Fn::GetAtt":
                    return function_arn(arg[0] if isinstance(arg, list) else arg.split(".")[0])
            out = {}
            for k, v in node.items():
                v = resolve(v)
                if v is not NO_VALUE:
                    out[k] = v
            return out
        if isinstance(node, list):
            return [v for v in map(resolve, node) if v is not NO_VALUE]
        return node

    rules = []
    for logical_id, resource in resources.items():
        if "Condition" in resource and not condition(resource["Condition"]):
            continue
        props = resource.get("Properties", {})
        for event, spec in props.get("Events", {}).items():
            if spec.get("Type") == "EventBridgeRule":
                rules.append({
                    "rule": f"{logical_id}/{event}",
                    "function": function_name(logical_id),
                    "resource": logical_id,
                    "state": resolve(spec["Properties"].get("State", "ENABLED")),
                    "pattern": resolve(spec["Properties"]["Pattern"]),
                })
        if resource.get("Type") == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                arn = resolve(target["Arn"])
                rules.append({
                    "rule": logical_id,
                    "function": arn.get("function") if isinstance(arn, dict) else None,
                    "resource": arn.get("resource") if isinstance(arn, dict) else None,
                    "state": resolve(props.get("State", "ENABLED")),
                    "pattern": resolve(props["EventPattern"]),
                })
    json.dump({"rules": rules}, sys.stdout, default=str)


if __name__ == "__main__":
    main()

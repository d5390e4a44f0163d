#!/usr/bin/env python3
"""Evaluates rafter's ValidatingAdmissionPolicies on sample admission requests, as the API
server would: a request the policy's resource rules do not match, or whose match conditions
are not all true, is not its business ("skipped"); otherwise it is "refused" when a validation
is false and "admitted" when all are true. The CEL is evaluated by cel-python; the variables
are those Kubernetes gives a policy (`object`, `oldObject`, `request`).

Usage: check-admission.py MANIFEST... < {"requests": [{"operation": "CREATE",
  "resource": "pods", "group": "", "object": {...}, "userInfo": {...}}]}
The policies are every ValidatingAdmissionPolicy in the MANIFEST files (multi-document YAML).
Prints one JSON array: per request, {"decision": ..., "policy": NAME or null, "message": ...}.
A policy whose CEL does not compile or does not evaluate to a boolean is an error (exit 1).
"""

import json
import sys

import celpy
import yaml


def matches_rules(policy, request):
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    for rule in rules:
        if (
            request.get("group", "") in rule.get("apiGroups", [])
            and request["resource"] in rule.get("resources", [])
            and (request["operation"] in rule.get("operations", []) or "*" in rule.get("operations", []))
        ):
            return True
    return False


def evaluate(environment, expression, activation, where):
    try:
        program = environment.program(environment.compile(expression))
        result = program.evaluate(activation)
    except Exception as error:  # noqa: BLE001 - any CEL failure is the policy's error
        sys.exit(f"check-admission: {where}: {expression!r} failed: {error}")
    if not isinstance(result, celpy.celtypes.BoolType):
        sys.exit(f"check-admission: {where}: {expression!r} gave {result!r}, not a boolean")
    return bool(result)


def decide(environment, policies, request):
    activation = {
        "object": celpy.json_to_cel(request.get("object")),
        "oldObject": celpy.json_to_cel(request.get("oldObject")),
        "request": celpy.json_to_cel(
            {"operation": request["operation"], "userInfo": request.get("userInfo", {})}
        ),
    }
    for policy in policies:
        name = policy["metadata"]["name"]
        if not matches_rules(policy, request):
            continue
        conditions = policy["spec"].get("matchConditions", [])
        if not all(
            evaluate(environment, condition["expression"], activation, f"{name}/{condition['name']}")
            for condition in conditions
        ):
            continue
        for index, validation in enumerate(policy["spec"]["validations"]):
            if not evaluate(environment, validation["expression"], activation, f"{name}/validations[{index}]"):
                return {"decision": "refused", "policy": name, "message": validation.get("message")}
        return {"decision": "admitted", "policy": name, "message": None}
    return {"decision": "skipped", "policy": None, "message": None}


def policies_in(paths):
    policies = []
    for path in paths:
        with open(path, encoding="utf-8") as manifest:
            for document in yaml.safe_load_all(manifest):
                if document and document.get("kind") == "ValidatingAdmissionPolicy":
                    policies.append(document)
    return policies


def main():
    policies = policies_in(sys.argv[1:])
    if not policies:
        sys.exit(f"check-admission: no ValidatingAdmissionPolicy in {sys.argv[1:]}")
    document = json.load(sys.stdin)
    environment = celpy.Environment()
    decisions = [decide(environment, policies, request) for request in document["requests"]]
    json.dump(decisions, sys.stdout)
    print()


if __name__ == "__main__":
    main()

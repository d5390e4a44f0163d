#!/usr/bin/env python3
"""Audits IAM identity policies with parliament and cloudsplaining; prints findings as JSON.

Usage: check-iam.py POLICY.json [POLICY.json...]

Output: a JSON list of {"tool", "check", "policy", "detail"}, one per finding, where "policy"
is the file's name and "detail" the actions or text the tool reported. Exit 0 whether or not
there are findings: the test suite compares them with its reviewed allow-list.

- parliament (Duo Labs) with its community auditors: malformed policies, unknown actions,
  resource types that do not match the action, Resource "*" where a narrower one exists.
- cloudsplaining (Salesforce) in its strictest mode (statements constrained by resource ARNs
  or conditions are flagged too): privilege escalation, data exfiltration, resource exposure,
  credentials exposure, infrastructure modification, service wildcards.

Both work offline from the IAM action database they ship. Trust (assume-role) policies are
resource policies, outside what either audits.
"""

import json
import sys
from pathlib import Path

from cloudsplaining.command.scan_policy_file import scan_policy
from parliament import analyze_policy_string


def parliament_findings(name: str, text: str) -> list[dict]:
    policy = analyze_policy_string(text, filepath=name, include_community_auditors=True)
    return [
        {"tool": "parliament", "check": finding.issue, "policy": name, "detail": finding.detail}
        for finding in policy.findings
    ]


def cloudsplaining_findings(name: str, document: dict) -> list[dict]:
    results = scan_policy(
        document, flag_resource_arn_statements=True, flag_conditional_statements=True
    )
    found = []
    for check, result in sorted(results.items()):
        if not isinstance(result, dict):
            continue
        for action in result.get("findings") or []:
            found.append(
                {"tool": "cloudsplaining", "check": check, "policy": name, "detail": action}
            )
    return found


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    findings = []
    for argument in sys.argv[1:]:
        path = Path(argument)
        text = path.read_text()
        findings += parliament_findings(path.name, text)
        findings += cloudsplaining_findings(path.name, json.loads(text))
    json.dump(findings, sys.stdout, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())

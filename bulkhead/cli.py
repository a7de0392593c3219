"""`python -m bulkhead <verb>`: one module per verb (bulkhead/commands/<verb>.py), each with
add_parser() and run()."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import Optional

from .errors import UserError

# One module per verb, bulkhead/commands/<verb>.py, with add_parser() and run().
# Importing a verb module must stay cheap: no pulumi, pulumi_policy, pydantic or boto3 at module level.
VERBS = ("plan", "check", "audit", "env", "dsn", "psql", "reset", "dump", "restore", "split")


def _verb_of(argv: list[str]) -> Optional[str]:
    """The verb of a command line (the first word that is not an option), if it names one."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in VERBS else None


def build_parser(verb: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser for `verb` alone (only its module is imported), or for every verb."""
    parser = argparse.ArgumentParser(prog="python -m bulkhead", description="bulkhead operator CLI")
    sub = parser.add_subparsers(dest="verb", required=True)
    for name in [verb] if verb in VERBS else VERBS:
        importlib.import_module(f"bulkhead.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_verb_of(argv))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception:  # noqa: BLE001 - our bug, not the user's: say so plainly
        traceback.print_exc()
        print("internal error in bulkhead; please report it with the traceback above", file=sys.stderr)
        return 3

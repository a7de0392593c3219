"""`python -m bulkhead <verb>`: one module per verb, each with add_parser() and run()."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from .errors import UserError

VERBS = ("plan", "check", "audit", "env", "dsn")
# Verb modules; `consume` provides both `env` and `dsn`. A module not written yet is skipped.
MODULES = ("plan", "check", "audit", "consume")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bulkhead", description="bulkhead operator CLI")
    sub = parser.add_subparsers(dest="verb", required=True)
    for name in MODULES:
        try:
            module = importlib.import_module(f"bulkhead.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bulkhead.{name}":
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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

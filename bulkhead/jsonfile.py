"""Read a JSON file (or stdin) that a user handed us: every failure is a UserError."""

from __future__ import annotations

import json
import sys
from typing import Any

from .errors import UserError


def read_json(path: str, what: str, hint: str = "") -> Any:
    """JSON from `path` ('-' = stdin). Messages name the file and say what to do; they
    never quote its content, which may hold passwords."""
    where = "stdin" if path == "-" else path
    suffix = f"; {hint}" if hint else ""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist{suffix}") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a directory, not a JSON file") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {where} is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or type(exc).__name__}") from None
    if not text.strip():
        raise UserError(f"{what} {where} is empty; expected JSON{suffix}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} {where} is not JSON (line {exc.lineno}, column {exc.colno}){suffix}") from None

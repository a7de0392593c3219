"""Names AWS accepts, derived only from the stack and catalogue names (so they never change by themselves)."""

from __future__ import annotations

import re


def aws_name(*parts: str, max_length: int = 63) -> str:
    """`parts` joined by dashes, as RDS identifiers, parameter groups, subnet groups and
    vaults all accept: lower-case letters, digits and single dashes, starting with a
    letter, no trailing dash. Stack names may hold capitals, dots and underscores."""
    name = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    if not name[:1].isalpha():
        name = f"db-{name}"
    return name[:max_length].rstrip("-")

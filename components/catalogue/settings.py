"""The PostgreSQL settings table (components/catalogue/data/pg_settings.json), per major.

Generated from real servers by tools/generate_pg_settings.py: each setting's type,
unit, range, enum values (with the hidden spellings the server also takes) and
context. A major that was not generated is looked up in the nearest generated one
(ties: the newer), and `resolve` says so in a note: never skipped silently.

Public API (other modules depend on it; keep it stable):
  context(major, name)       -> "postmaster", "sighup", "user", ... (pg_settings.context)
  apply_method(major, name)  -> "pending-reboot" for postmaster settings, else "immediate"
  resolve(major)             -> (generated major used, note or None)
  setting(major, name)       -> Setting or None
  names(major)               -> every setting name of that major
  latest_minor(major)        -> newest released minor of that major (released: 0..latest)
  first_image_minor(major)   -> first minor with a postgres:<major>.<minor>-bookworm image
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

TABLE_PATH = Path(__file__).resolve().parent / "data" / "pg_settings.json"
SUPPORTED_MAJORS = (13, 14, 15, 16, 17)


class UnknownSetting(KeyError):
    """The name is neither a PostgreSQL setting of that major nor one RDS adds."""


@dataclass(frozen=True)
class Setting:
    name: str
    type: str  # bool, integer, real, string, enum
    context: str  # internal, postmaster, sighup, superuser-backend, backend, superuser, user
    unit: Optional[str] = None  # base unit of integer/real settings: kB, 8kB, B, MB, ms, s, min
    min: Optional[float] = None
    max: Optional[float] = None
    enum: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)  # hidden enum spellings -> canonical value
    default: Optional[str] = None  # boot value, in `unit`


@dataclass(frozen=True)
class RdsSetting:
    """A setting RDS adds to its parameter groups (not in PostgreSQL's own pg_settings)."""

    name: str
    type: str
    context: str  # "postmaster" where the RDS docs call it static, else "sighup"
    allowed: tuple[str, ...] = ()  # the values RDS documents; () = not checked here
    user_settable: bool = True
    reason: str = ""


# RDS's own settings (RDS for PostgreSQL user guide). A static one needs a reboot
# (pending-reboot); names RDS lists but does not let a user change are refused.
RDS_SETTINGS: dict[str, RdsSetting] = {
    s.name: s
    for s in (
        # "Using SSL with a PostgreSQL DB instance": 0 or 1; bulkhead sets it to 1 itself.
        RdsSetting("rds.force_ssl", "bool", "sighup", ("0", "1")),
        # Knowledge center "rds-postgresql-use-logical-replication": "a static parameter that
        # requires a DB instance reboot".
        RdsSetting("rds.logical_replication", "bool", "postmaster", ("0", "1")),
        # "Delegating and controlling user password management": set to 1, then reboot.
        RdsSetting("rds.restrict_password_commands", "bool", "postmaster", ("0", "1")),
        # "RDS for PostgreSQL database log files": minutes to keep logs, 1440-10080.
        RdsSetting("rds.log_retention_period", "integer", "sighup"),
        # "Restricting installation of PostgreSQL extensions": a comma-separated allow-list.
        RdsSetting("rds.allowed_extensions", "string", "sighup"),
        # The extensions RDS ships: shown in the parameter group, not modifiable.
        RdsSetting("rds.extensions", "string", "internal", user_settable=False,
                   reason="it lists the extensions RDS ships and is read-only"),
    )
}


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    return json.loads(TABLE_PATH.read_text(encoding="utf-8"))


def generated_majors() -> tuple[int, ...]:
    return tuple(sorted(int(m) for m in _table()["majors"]))


def source(major: int) -> dict[str, str]:
    """{'server': '16.2', 'source': 'pgserver (PyPI) bundled build'} of a generated major."""
    data = _table()["majors"][str(major)]
    return {"server": data["server"], "source": data["source"]}


@lru_cache(maxsize=None)
def resolve(major: int) -> tuple[int, Optional[str]]:
    """The generated major that `major` is checked against, and a note when it is not `major` itself."""
    have = generated_majors()
    if major in have:
        return major, None
    nearest = min(have, key=lambda m: (abs(m - major), -m))
    return nearest, (f"PostgreSQL {major} is not in the generated settings table; "
                     f"its settings are checked against PostgreSQL {nearest}'s")


def _raw_settings(major: int) -> dict[str, dict[str, Any]]:
    used, _ = resolve(major)
    return _table()["majors"][str(used)]["settings"]


@lru_cache(maxsize=None)
def names(major: int) -> frozenset[str]:
    return frozenset(_raw_settings(major))


@lru_cache(maxsize=4096)
def setting(major: int, name: str) -> Optional[Setting]:
    # Built on first use: a plan looks up a handful of the ~360 settings of a major.
    raw = _raw_settings(major).get(name)
    if raw is None:
        return None
    return Setting(
        name=name,
        type=raw["type"],
        context=raw["context"],
        unit=raw.get("unit"),
        min=raw.get("min"),
        max=raw.get("max"),
        enum=tuple(raw.get("enum", ())),
        aliases=dict(raw.get("aliases", {})),
        default=raw.get("default"),
    )


def context(major: int, name: str) -> str:
    """pg_settings.context of `name` in `major` (or RDS's static/dynamic for rds.* settings)."""
    found = setting(major, name)
    if found is not None:
        return found.context
    if name in RDS_SETTINGS:
        return RDS_SETTINGS[name].context
    raise UnknownSetting(f"{name!r} is not a PostgreSQL {major} setting")


def apply_method(major: int, name: str) -> str:
    """RDS parameter apply_method: a postmaster setting takes effect only after a reboot."""
    return "pending-reboot" if context(major, name) in ("postmaster", "internal") else "immediate"


def latest_minor(major: int) -> Optional[int]:
    entry = _table()["released_minors"].get(str(major))
    return None if entry is None else int(entry["latest"])


def first_image_minor(major: int) -> Optional[int]:
    """The first minor of `major` with a postgres:<major>.<minor>-bookworm image (the dev image flavour)."""
    entry = _table()["released_minors"].get(str(major))
    return None if entry is None or "first_bookworm_image" not in entry else int(entry["first_bookworm_image"])


def minors_source(major: int) -> Optional[str]:
    entry = _table()["released_minors"].get(str(major))
    return None if entry is None else entry["source"]

"""Catalogue `parameters` checked the way PostgreSQL checks them, from the settings table.

`check_parameters` takes one database's (or shared server's) parameters and returns
every problem at once, each under its own key path, plus warnings and the values in the
form the platform takes:

- docker: PostgreSQL's own spelling, passed as `-c name=value` (units as PostgreSQL
  reads them: case-sensitive, `kB MB GB TB B` for memory, `us ms s min h d` for time);
- aws: what an RDS parameter group takes: numbers in the setting's base unit without a
  unit (`8MB` for work_mem becomes `8192`, kB), booleans as 1/0, enums by their
  canonical name. RDS's own values are in base units (its parameter formulas, e.g.
  shared_buffers `{DBInstanceClassMemory/32768}` = 8kB pages, "DB parameter formulas"
  in the RDS user guide; RDS's default groups list booleans as 0/1), and teams that
  wrote units for RDS had to convert them (dimagi/commcare-cloud PR 2488,
  opensupplyhub/open-apparel-registry PR 1744: "work_mem is specified in KB").

The parsing mirrors PostgreSQL's (guc.c parse_bool, parse_int, parse_real,
convert_to_base_unit, enum lookup): booleans take unique prefixes of true/false/yes/no,
on/off and 1/0, case-insensitively; numbers may be decimal, hex (0x) or octal (0), and
may carry a fraction before a unit; the range is checked after rounding to the base unit.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Mapping, Optional

from components.catalogue import checks
from components.catalogue import settings as pg_settings
from components.catalogue.settings import RDS_SETTINGS, Setting

# Settings bulkhead sets itself (TLS, pg_hba, port, data directory): overriding one would
# undo the separation. One list with the init SQL's flags.
from components.dev.container import MANAGED_PARAMETERS as _DOCKER_MANAGED
from components.dev.container import PARAMETER_RE

MANAGED = frozenset(_DOCKER_MANAGED | {"rds.force_ssl"})
_NAME_RE = PARAMETER_RE

# Settings an RDS parameter group does not let a user change, and why (RDS owns the
# files, the network endpoint and WAL archiving behind its backups).
RDS_NOT_SETTABLE: dict[str, str] = {
    "archive_command": "RDS archives WAL itself for backups and point-in-time recovery",
    "archive_mode": "RDS archives WAL itself for backups and point-in-time recovery",
    "restore_command": "RDS runs recovery itself",
    "wal_level": "RDS sets it; for logical replication set rds.logical_replication: 1 instead",
    "config_file": "RDS owns the server's files",
    "external_pid_file": "RDS owns the server's files",
    "log_directory": "RDS owns the server's files (logs reach CloudWatch through the log exports)",
    "ssl_ca_file": "RDS installs its own certificates (ca_cert_identifier)",
    "ssl_crl_file": "RDS installs its own certificates (ca_cert_identifier)",
    "unix_socket_directories": "RDS owns the server's files",
    "unix_socket_group": "RDS owns the server's files",
    "unix_socket_permissions": "RDS owns the server's files",
}

# ~40% of RAM: PostgreSQL's docs on shared_buffers ("unlikely that an allocation of more
# than 40% of RAM to shared_buffers will work better than a smaller amount").
SHARED_BUFFERS_WARN_FRACTION = 0.40
# What a postgres server needs besides shared_buffers before it serves anything
# (processes, catalogs caches, WAL buffers): a floor, not a tuning figure.
SERVER_OVERHEAD_MB = 64

_MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
# pg_settings.unit -> (table of accepted units, size of one base unit in that table's measure)
_BASE_UNITS = {
    "B": (_MEMORY_UNITS, 1), "kB": (_MEMORY_UNITS, 1024), "8kB": (_MEMORY_UNITS, 8192), "MB": (_MEMORY_UNITS, 1024**2),
    "us": (_TIME_UNITS, 0.001), "ms": (_TIME_UNITS, 1), "s": (_TIME_UNITS, 1000), "min": (_TIME_UNITS, 60_000),
}
_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False}
# C's strtol (base 0: hex 0x.., octal 0..) and strtod prefixes, as parse_int/parse_real read them.
_STRTOL_RE = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)?")
_STRTOD_RE = re.compile(r"\s*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    path: str
    message: str


@dataclass
class Checked:
    values: dict[str, str] = field(default_factory=dict)  # name -> value in the platform's form
    problems: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    bytes: dict[str, float] = field(default_factory=dict)  # memory settings in bytes, for the container rule
    numbers: dict[str, float] = field(default_factory=dict)  # numeric settings as the server reads them


def parse_bool(text: str) -> Optional[bool]:
    """PostgreSQL's parse_bool: unique prefixes of true/false/yes/no, on/off, 1/0; any case."""
    value = text.lower()  # parse_bool does not trim: "on " is not a boolean
    if not value:
        return None
    for word, meaning in _BOOL_WORDS.items():
        if word.startswith(value):
            return meaning
    if value in ("on",):
        return True
    if len(value) >= 2 and "off".startswith(value):
        return False
    return {"1": True, "0": False}.get(value)


def _units_hint(setting: Setting) -> str:
    table, _ = _BASE_UNITS[setting.unit]
    return ", ".join(sorted(table, key=table.get))


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def _fmt_range(setting: Setting) -> str:
    unit = f" {setting.unit}" if setting.unit else ""
    return f"{_plain(setting.min)} .. {_plain(setting.max)}{unit}"


def _strtol(text: str) -> tuple[Optional[int], str]:
    """C strtol(text, &end, 0): (value or None when no digits, the rest after them)."""
    match = _STRTOL_RE.match(text)
    if not match or not match.group(2):
        return None, text
    sign, digits = match.groups()
    if digits[:2].lower() == "0x":
        value = int(digits, 16)
    elif digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits)
    return (-value if sign == "-" else value), text[match.end():]


def _strtod(text: str) -> tuple[Optional[float], str]:
    match = _STRTOD_RE.match(text)
    if not match:
        return None, text
    return float(match.group(0)), text[match.end():]


def parse_number(setting: Setting, text: str) -> tuple[Optional[float], Optional[str], bool]:
    """(value in base units, error, had a unit) as PostgreSQL's parse_int/parse_real reads `text`."""
    value: Optional[float]
    if setting.type == "integer":
        whole, rest = _strtol(text)
        # parse_int: a decimal point, an exponent or an overflow -> strtod instead.
        if whole is None or rest[:1] in (".", "e", "E") or abs(whole) > 2**63 - 1:
            value, rest = _strtod(text)
        else:
            value = float(whole)
    else:
        value, rest = _strtod(text)
    if value is None or math.isnan(value):
        return None, "is not a number", False
    unit = rest.strip()
    if unit:
        if not setting.unit:
            return None, "is not a plain number (this setting has no unit)", True
        table, base = _BASE_UNITS[setting.unit]
        if unit not in table:
            return None, f"has unit {unit!r}, which PostgreSQL does not accept", True
        value = value * table[unit]
        # convert_to_base_unit: a fraction is rounded to the next smaller unit first ("1.5GB" -> 1536MB).
        smaller = [m for m in table.values() if m < table[unit]]
        if smaller:
            step = max(smaller)
            value = round(value / step) * step
        value = value / base
    if setting.type == "integer":
        if math.isinf(value) or abs(value) > 2**31 - 1:
            return None, "is out of the integer range", bool(unit)
        value = float(round(value))  # rint: ties to even, like Python's round
        if abs(value) > 2**31 - 1:
            return None, "is out of the integer range", bool(unit)
    return value, None, bool(unit)


def _did_you_mean(name: str, names) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.75)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def check_parameters(params: Mapping[str, str], major: int, platform: str, path: str) -> Checked:
    """Every problem of one `parameters` map (already scalar strings) at `path`, e.g. bulkhead:databases.app.parameters."""
    out = Checked()
    used, note = pg_settings.resolve(major)
    known = pg_settings.names(major)
    for name in sorted(params):
        text = params[name]
        here = f"{path}.{name}"
        is_setting = name in MANAGED or pg_settings.setting(major, name) is not None
        secret = checks.secret_looking_parameter(name, text, is_setting)
        if secret:
            out.problems.append(Finding(here, secret))
            continue
        if not _NAME_RE.fullmatch(name):
            lower = name.lower()
            fix = f"write {lower}" if _NAME_RE.fullmatch(lower) else "use a setting name such as work_mem"
            out.problems.append(Finding(here, f"{name!r} is not a PostgreSQL setting name (lower case letters, "
                                              f"digits, _ and .); {fix}"))
            continue
        if name in MANAGED:
            out.problems.append(Finding(here, f"{name} is managed by bulkhead (TLS, pg_hba, port and data directory "
                                                "keep the databases apart) and cannot be overridden; remove it"))
            continue
        if name.startswith("rds."):
            _check_rds(name, text, platform, here, out)
            continue
        setting = pg_settings.setting(major, name)
        if setting is None:
            if "." in name:
                # An extension's setting (prefix.name): PostgreSQL keeps it as an unchecked placeholder
                # until the extension loads; the table has only the core server's settings.
                out.warnings.append(Finding(here, f"{name} is an extension setting the settings table cannot check; "
                                                  "make sure its extension is in shared_preload_libraries"))
                out.values[name] = text
                continue
            which = f"PostgreSQL {major}" + (f" (checked against {used}: {note})" if note else "")
            hint = _did_you_mean(name, known) or "; check its spelling or remove it"
            out.problems.append(Finding(here, f"{name!r} is not a setting of {which}{hint}"))
            continue
        if platform == "aws" and name in RDS_NOT_SETTABLE:
            out.problems.append(Finding(here, f"RDS does not let a parameter group change {name}: "
                                              f"{RDS_NOT_SETTABLE[name]}; remove it"))
            continue
        value, message = _check_value(setting, text, platform, out, name)
        if message:
            out.problems.append(Finding(here, message))
        else:
            out.values[name] = value
    return out


def _check_value(setting: Setting, text: str, platform: str, out: Checked, name: str) -> tuple[str, Optional[str]]:
    """(value in the platform's form, error or None)."""
    if setting.context == "internal":
        return text, f"{name} is read-only (fixed when PostgreSQL was built or the cluster initialised); remove it"
    if setting.type == "bool":
        meaning = parse_bool(text)
        if meaning is None:
            return text, f"{text!r} is not a boolean; use on or off"
        if platform == "aws":
            return ("1" if meaning else "0"), None
        return text, None
    if setting.type == "enum":
        lowered = text.lower()
        canonical = next((v for v in setting.enum if v.lower() == lowered), None) or setting.aliases.get(lowered)
        if canonical is None:
            return text, f"{text!r} is not one of {', '.join(setting.enum)}"
        return (canonical if platform == "aws" else text), None
    if setting.type in ("integer", "real"):
        value, error, _had_unit = parse_number(setting, text)
        if error:
            return text, f"{text!r} {error}; {_number_fix(setting, text)}"
        if math.isnan(value) or value < setting.min or value > setting.max:
            return text, f"{text!r} is outside the range PostgreSQL allows for {name} ({_fmt_range(setting)})"
        out.numbers[name] = value
        if setting.unit in ("B", "kB", "8kB", "MB"):
            out.bytes[name] = value * _BASE_UNITS[setting.unit][1]
        return (_plain(value) if platform == "aws" else text), None
    # string: the server's check hooks (time zones, library names, ...) are not in the table.
    return text, None


def _number_fix(setting: Setting, text: str) -> str:
    """How to write it: the same unit in the right case when that is the mistake, else the accepted units."""
    if not setting.unit:
        return f"write a plain number, e.g. {_plain(setting.default) if setting.default else '1'}" if setting.default and _is_number(setting.default) else "write a plain number"
    table, _ = _BASE_UNITS[setting.unit]
    number, rest = _strtod(text)
    written = rest.strip()
    for unit in table:
        if number is not None and written and unit.lower() == written.lower():
            return f"write {text[: len(text) - len(rest)].strip()}{unit} (units are case-sensitive)"
    return f"write a number of {setting.unit}, or a number with one of the units {_units_hint(setting)}"


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _check_rds(name: str, text: str, platform: str, here: str, out: Checked) -> None:
    if platform != "aws":
        out.problems.append(Finding(here, f"{name} is an RDS setting and applies only to platform aws; remove it "
                                          "from this docker stack"))
        return
    rds = RDS_SETTINGS.get(name)
    if rds is None:
        out.problems.append(Finding(here, f"{name!r} is not an RDS setting bulkhead knows"
                                          f"{_did_you_mean(name, RDS_SETTINGS)}; known: {', '.join(sorted(RDS_SETTINGS))}"))
        return
    if not rds.user_settable:
        out.problems.append(Finding(here, f"RDS does not let a parameter group change {name}: {rds.reason}; remove it"))
        return
    if rds.type == "bool":
        meaning = parse_bool(text)
        if meaning is None:
            out.problems.append(Finding(here, f"{text!r} is not a boolean; RDS takes {name} as 1 or 0"))
            return
        out.values[name] = "1" if meaning else "0"
        return
    if rds.allowed and text not in rds.allowed:
        out.problems.append(Finding(here, f"{text!r} is not one of {', '.join(rds.allowed)}"))
        return
    if rds.type == "integer" and not re.fullmatch(r"[0-9]+", text.strip()):
        out.problems.append(Finding(here, f"{text!r} is not a whole number; RDS takes {name} as one"))
        return
    out.values[name] = text


def memory_findings(checked: Checked, memory_mb: int, major: int, path: str) -> tuple[list[Finding], list[Finding]]:
    """(errors, warnings) for a container of `memory_mb` running these settings.

    Error only where the server cannot work at all: shared_buffers (allocated at start,
    and filled as data is read) plus the server's floor above the container's limit, so
    the kernel's OOM killer ends postgres as soon as the cache fills. Warnings: shared_buffers
    over 40% of the container, and max_connections x work_mem over what is left, which
    only fails when that many sorts run at once.
    """
    errors: list[Finding] = []
    warnings: list[Finding] = []
    limit = memory_mb * 1024**2
    default_sb = pg_settings.setting(major, "shared_buffers")
    shared = checked.bytes.get("shared_buffers", float(default_sb.default) * 8192 if default_sb and default_sb.default else 128 * 1024**2)
    mb = lambda b: f"{b / 1024**2:.0f}MB"  # noqa: E731
    if shared + SERVER_OVERHEAD_MB * 1024**2 > limit:
        errors.append(Finding(f"{path}.parameters.shared_buffers",
                              f"shared_buffers {mb(shared)} plus the server's ~{SERVER_OVERHEAD_MB}MB does not fit in "
                              f"memory_mb {memory_mb}; the container is killed once the cache fills. Lower shared_buffers "
                              f"to about {int(memory_mb * 0.25)}MB or raise memory_mb"))
        return errors, warnings
    if "shared_buffers" in checked.bytes and shared > SHARED_BUFFERS_WARN_FRACTION * limit:
        warnings.append(Finding(f"{path}.parameters.shared_buffers",
                                f"shared_buffers {mb(shared)} is over 40% of memory_mb {memory_mb}; PostgreSQL "
                                f"recommends about 25% ({int(memory_mb * 0.25)}MB)"))
    if "work_mem" in checked.bytes or "max_connections" in checked.numbers:
        work = checked.bytes.get("work_mem", 4 * 1024**2)
        connections = int(checked.numbers.get("max_connections", 100))
        if connections * work > limit - shared:
            warnings.append(Finding(f"{path}.parameters.work_mem",
                                    f"max_connections {connections} x work_mem {mb(work)} = {mb(connections * work)} is "
                                    f"more than the {mb(limit - shared)} memory_mb {memory_mb} leaves after shared_buffers; "
                                    "many concurrent sorts would get the container killed. Lower one of them or raise memory_mb"))
    return errors, warnings

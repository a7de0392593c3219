"""Checks of the catalogue for mistakes a team makes that PostgreSQL, RDS or Docker would take
without a word, or refuse only later (issue 21). One small function per check; each returns
`(key path, message)` pairs saying what is wrong and the fix, and model.load_catalogue files them
as errors or warnings. An error: a server would refuse it, or nobody could mean it. A warning:
a user could mean it (the message says how to say so and silence it).

No Pulumi, no pydantic models imported (model.py imports this module)."""

from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

Finding = tuple[str, str]

# --------------------------------------------------------------------------- units

# What a bare number means for a setting whose unit is... (pg_settings.unit; PostgreSQL docs,
# "Parameter Names and Values": "the default unit is the parameter's base unit")
_UNIT_WORDS = {"B": "bytes", "kB": "kilobytes", "8kB": "8kB pages", "MB": "megabytes",
               "us": "microseconds", "ms": "milliseconds", "s": "seconds", "min": "minutes"}
_UNIT_BYTES = {"B": 1, "kB": 1024, "8kB": 8192, "MB": 1024**2}
_BARE_NUMBER = re.compile(r"^[0-9]+$")
# Role settings (bulkhead:databases.<db>.<key>) and their base units (PostgreSQL docs, "Client
# Connection Defaults" and "Resource Consumption": statement_timeout in ms, temp_file_limit in kB).
ROLE_SETTING_UNITS = {"statement_timeout": "ms", "idle_in_transaction_session_timeout": "ms", "temp_file_limit": "kB"}


def _size(n: float) -> str:
    for unit, size in (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if n >= size and n % size == 0:
            return f"{int(n // size)}{unit}"
    return f"{n:g}B" if n < 1024 else f"{n / 1024:.1f}kB"


def unit_less(name: str, text: str, unit: Optional[str]) -> Optional[str]:
    """The warning for a bare number that PostgreSQL reads in the setting's base unit, or None."""
    if unit not in _UNIT_WORDS or not _BARE_NUMBER.match(text) or int(text) == 0:
        return None
    read = f"{text} {unit}" if unit not in _UNIT_BYTES else f"{text} x {unit} = {_size(int(text) * _UNIT_BYTES[unit])}"
    if unit == "8kB":
        example = f"'{text}MB'"
    elif unit in _UNIT_BYTES:
        example = f"'{text}MB' if you meant megabytes, or '{text}{unit}'"
    else:
        example = f"'{text}s' if you meant seconds, or '{text}{unit}'"
    return (f"{text} has no unit, so PostgreSQL reads it as {read} ({name} is in {_UNIT_WORDS[unit]}); "
            f"write the unit you mean, e.g. {example} to keep this value")


def unit_less_role_settings(path: str, values: Mapping[str, Any]) -> list[Finding]:
    """statement_timeout: 30 (30 ms), temp_file_limit: 2048 (2 MB): warnings."""
    out = []
    for key, unit in ROLE_SETTING_UNITS.items():
        message = unit_less(key, str(values.get(key)), unit)
        if message:
            out.append((f"{path}.{key}", message))
    return out


def unit_less_parameters(path: str, parameters: Mapping[str, str], unit_of) -> list[Finding]:
    """`parameters` numbers without a unit (`shared_buffers: "256"` is 2MB): warnings.
    `unit_of(name)` is the setting's base unit from the settings table (None when unknown)."""
    out = []
    for name, text in sorted(parameters.items()):
        message = unit_less(name, text, unit_of(name))
        if message:
            out.append((f"{path}.{name}", message))
    return out


# ------------------------------------------------------------------- secrets, env

_SECRET_WORDS = ("password", "passwd", "secret", "token", "passphrase", "apikey", "api_key", "credential")


_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")


def secret_looking_parameter(name: str, text: str = "", known: bool = False) -> Optional[str]:
    """`POSTGRES_PASSWORD` (a password-looking name that is not a PostgreSQL setting) or a value holding
    a URL with a password (`postgres://u:secret@host`) in parameters."""
    if _URL_WITH_PASSWORD.search(text):
        return (f"the value of {name} holds a URL with a password (user:password@); parameters go on the server's "
                f"command line (shown by `docker inspect` and `ps`) and into the plan, never as a secret: remove "
                f"the password from it")
    if known or not any(word in name.lower() for word in _SECRET_WORDS):
        return None
    return (f"{name} looks like a password, and parameters are PostgreSQL settings: they go on the server's "
            f"command line (shown by `docker inspect` and `ps`) and into the plan, never as a secret. bulkhead "
            f"makes every password itself (the admin's and each role's, random, Pulumi secrets); remove {name}")


# Names a process or the shell that loads the `.env` depends on (POSIX "Environment Variables",
# glibc ld.so(8), libpq "Environment Variables"): a database URL there breaks the service.
_PROCESS_VARS = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "TERM", "LANG", "LANGUAGE", "TZ", "TMPDIR",
    "HOSTNAME", "IFS", "PS1", "PS2", "PS4", "MAIL", "ENV", "BASH_ENV", "CDPATH", "PYTHONPATH", "PYTHONHOME",
    "NODE_OPTIONS", "NODE_PATH", "JAVA_TOOL_OPTIONS", "RUBYOPT", "PERL5OPT", "HTTP_PROXY", "HTTPS_PROXY",
    "NO_PROXY", "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGPASSFILE",
    "PGSERVICE", "PGSERVICEFILE", "PGOPTIONS", "PGAPPNAME", "PGSSLMODE", "PGSSLROOTCERT", "PGTZ",
    "PGCLIENTENCODING", "PGCONNECT_TIMEOUT", "PGDATESTYLE",
})
_PROCESS_PREFIXES = ("LC_", "LD_", "DYLD_")


def process_env_var(path: str, env_var: str, name: str) -> list[Finding]:
    """env_var: PATH (the shell loading the .env loses its PATH): an error."""
    if env_var in _PROCESS_VARS or env_var.startswith(_PROCESS_PREFIXES):
        return [(f"{path}.env_var", f"{env_var} is a variable the service's process or shell depends on (or that "
                                    f"libpq reads); a database URL there breaks it. Use a name of its own, e.g. "
                                    f"{name.upper()}_DATABASE_URL")]
    return []


def env_var_of_another_database(databases: Mapping[str, Any], default_of) -> list[Finding]:
    """`API_DATABASE_URL` on the worker's database while the catalogue has a database `api`: a
    reader (and the service's code review) takes it for api's database. A warning: each service's
    environment is its own (two services may both read DATABASE_URL), so someone may mean it."""
    # One default per database, looked up by variable: the pairwise loop was N^2 (0.5 s at N=500).
    owner_of_default: dict[str, list[str]] = {}
    for other in sorted(databases):
        owner_of_default.setdefault(default_of(other), []).append(other)
    out = []
    for name, db in sorted(databases.items()):
        for other in owner_of_default.get(db.env_var, ()):
            if other != name:
                out.append((f"bulkhead:databases.{name}.env_var",
                            f"{db.env_var} is the default variable of bulkhead:databases.{other}, but it holds "
                            f"{name}'s URL; a reader takes it for {other}'s database: use {default_of(name)} "
                            f"(this database's default) or another name of its own"))
    return out


# ---------------------------------------------------------------------- stack name

_PRODUCTION_WORDS = ("prod", "prd", "production", "live")


def production_name_on_docker(stack: str, platform: str, separators: Iterable[str]) -> list[Finding]:
    """`Shop-Prod`, `kanban-prd` on docker (the pack's name rule is case-sensitive and knows no `prd`): a warning."""
    if platform != "docker":
        return []
    words = re.split("[" + re.escape("".join(separators)) + "]", stack.lower())
    said = [w for w in words if w in _PRODUCTION_WORDS]
    if not said:
        return []
    return [("bulkhead:platform", f"stack {stack} is named like a production stack ({said[0]!r}, case aside) but "
                                  f"runs on docker, a dev container on this machine; production data belongs on "
                                  f"aws (bulkhead:platform: aws). If it is a dev stack, give it a name without "
                                  f"{said[0]!r}")]


# -------------------------------------------------------------------------- DR copy

def dr_copy_without_region(databases: Mapping[str, Any], tiers: Mapping[str, Any], written: Mapping[str, Any],
                           dr_region, platform) -> tuple[list[Finding], list[Finding]]:
    """(errors, warnings): a tier that copies to a DR region (copy_to_dr) on aws without
    bulkhead:dr_region: no copy would be made. `copy_to_dr: true` written in the stack file: an error
    (nobody writes it to get no copy). The built-in `critical` tier's default: a warning (a team may
    want its hourly schedule without a DR region)."""
    errors, warnings = [], []
    if platform != "aws" or dr_region is not None:
        return errors, warnings
    for tier in sorted({db.tier for db in databases.values()}):
        if tier not in tiers or not tiers[tier].copy_to_dr:
            continue
        names = ", ".join(sorted(n for n, db in databases.items() if db.tier == tier))
        explicit = isinstance(written.get(tier), dict) and written[tier].get("copy_to_dr") is True
        said = f"bulkhead:backup_tiers.{tier}.copy_to_dr is true" if explicit else f"tier {tier} copies its backups to a DR region by default (copy_to_dr)"
        (errors if explicit else warnings).append((
            "bulkhead:dr_region", f"is not set, but {said} (databases {names}): no copy would be made. Set "
                                  f"bulkhead:dr_region to a region other than aws:region, e.g. eu-central-1, or set "
                                  f"copy_to_dr: false under bulkhead:backup_tiers.{tier} to go without"))
    return errors, warnings


# ----------------------------------------------------------------- RDS class memory

_MEMORY_FILE = Path(__file__).parent / "data" / "rds_memory.json"


@lru_cache(maxsize=1)
def _rds_memory() -> dict:
    return json.loads(_MEMORY_FILE.read_text())


def rds_memory_gib(instance_class: str) -> Optional[float]:
    """Memory of an RDS class (tools/generate_rds_memory.py: AWS's hardware table), None when unknown."""
    return _rds_memory()["memory_gib"].get(instance_class)


def shared_buffers_on_rds(path: str, instance_class: str, shared_buffers_bytes: Optional[float]) -> tuple[list[Finding], list[Finding]]:
    """(errors, warnings): shared_buffers above the class's memory (RDS would not start it)."""
    if shared_buffers_bytes is None:
        return [], []
    gib = rds_memory_gib(instance_class)
    where = f"{path}.parameters.shared_buffers"
    if gib is None:
        return [], [(where, f"the memory of {instance_class} is unknown to bulkhead's table ("
                            f"{_rds_memory()['source']}, via tools/generate_rds_memory.py), so shared_buffers is "
                            f"not checked against it")]
    memory = gib * 1024**3
    if shared_buffers_bytes >= memory:
        return [(where, f"{_size(shared_buffers_bytes)} is not below the {gib:g} GiB of memory of {instance_class} "
                        f"(AWS: {_rds_memory()['source']}); RDS would not start the instance. Lower it (RDS's "
                        f"default is about a quarter of memory, {{DBInstanceClassMemory/32768}} pages) or choose a "
                        f"larger instance_class")], []
    return [], []


# ----------------------------------------------------------------------- names

MAX_NAME = 63  # NAMEDATALEN - 1 (PostgreSQL docs, "Identifiers and Key Words")


def name_problem(name: Any, what: str, name_re: str) -> str:
    """Why a map key is not a valid name, and the fix."""
    if isinstance(name, bool):
        return (f"YAML read this key as the boolean {str(name).lower()}: an unquoted on/off/yes/no/y/n is a boolean "
                f"in YAML 1.1; quote it (\"on\":) or choose another {what} name")
    text = str(name)
    if len(text) > MAX_NAME and re.fullmatch(name_re.replace("{0,62}", "*"), text):
        return (f"{text!r} is {len(text)} characters; PostgreSQL names are at most {MAX_NAME} (longer ones are cut "
                f"off); shorten it")
    sep = "underscores" if "_" in name_re else "dashes"
    return (f"{text!r} is not a valid {what} name; use lower case letters, digits and {sep}, starting with a "
            f"letter (max {MAX_NAME})")


# -------------------------------------------------------------- config namespaces

KNOWN_NAMESPACES = ("bulkhead", "aws", "pulumi", "docker", "random", "command", "tls")


def misspelt_namespaces(keys: Iterable[str], stack_file: str) -> list[Finding]:
    """`bulkhaed:dr_region`: a config key whose namespace is a near miss of `bulkhead` is ignored by
    the program (it reads `bulkhead:` only). An error, with the key it should be."""
    out = []
    for key in keys:
        namespace, sep, rest = key.partition(":")
        if not sep or namespace in KNOWN_NAMESPACES:
            continue
        if difflib.SequenceMatcher(None, namespace.lower(), "bulkhead").ratio() >= 0.75:
            out.append((f"{stack_file}: {key}", f"namespace {namespace!r} is not bulkhead, so the program ignores "
                                                f"this key; write bulkhead:{rest}"))
    return out


# ----------------------------------------------------------------------- dev ports

def ports_of(raw: Mapping[str, Any]) -> dict[int, str]:
    """port -> key path of a docker catalogue (own-container databases and servers), best effort on raw config."""
    out: dict[int, str] = {}
    for section, key in (("databases", "port"), ("servers", "port")):
        entries = raw.get(section)
        if not isinstance(entries, dict):
            continue
        for name, entry in entries.items():
            port = entry.get(key) if isinstance(entry, dict) else None
            if isinstance(port, int) and not isinstance(port, bool):
                out.setdefault(port, f"bulkhead:{section}.{name}.{key}")
    return out


def ports_shared_with_other_stacks(mine: Mapping[int, str], others: Mapping[str, Mapping[int, str]]) -> list[Finding]:
    """A dev port another stack of the project uses: both cannot run on one machine. A warning
    (a team may never run both on one machine)."""
    out = []
    for port, path in sorted(mine.items()):
        for stack, theirs in sorted(others.items()):
            if port in theirs:
                out.append((path, f"port {port} is also {theirs[port]} of stack {stack} (Pulumi.{stack}.yaml); "
                                  f"Docker cannot publish it twice, so the two stacks cannot run on one machine: "
                                  f"choose another port"))
    return out


def ports_in_use(ports: Mapping[int, str], in_use, owner_of) -> list[Finding]:
    """A port something on this host already listens on (`plan` only): a warning. `in_use(port)`
    tells whether 127.0.0.1:port is taken; `owner_of(port)` names the container publishing it, if any."""
    out = []
    for port, path in sorted(ports.items()):
        if in_use(port):
            owner = owner_of(port)
            if owner is None:
                out.append((path, f"port {port} is already in use on this host (another PostgreSQL?); `up` would fail "
                                  f"to publish it: choose another port or stop what listens there"))
            elif owner is not True:
                out.append((path, f"port {port} is published by container {owner} on this host; `up` would fail "
                                  f"to publish it: choose another port or stop that container"))
    return out

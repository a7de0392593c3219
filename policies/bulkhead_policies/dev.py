"""Dev hygiene: Docker database containers that are reproducible, bounded, healthy and keep their data."""

from __future__ import annotations

from typing import Iterable

from . import thresholds
from ._resources import (
    ADVISORY,
    CONTAINER,
    MANDATORY,
    POSTGRES_DATA_PATH,
    REMOTE_IMAGE,
    VOLUME,
    CouldNotCheck,
    Index,
    Res,
    as_int,
    as_list,
    resource_rule,
    schema,
    string_list,
    stack_rule,
)

# Filled by @resource_rule / @stack_rule where each check is defined, in definition order.
POLICIES: list = []


def _tag_problem(reference: str, floating: set) -> str | None:
    """Why an image reference is not pinned, or None when it is."""
    if "@sha256:" in reference or reference.startswith("sha256:"):
        return None
    last = reference.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag:
        return "has no tag, so Docker pulls `latest`"
    if tag in floating:
        return f"uses the floating tag `{tag}`"
    if not tag[0].isdigit():
        return f"uses the tag `{tag}`, which does not name a PostgreSQL version"
    return None


@stack_rule(POLICIES, "dev-image-pinned",
    "Dev database images are pinned to a PostgreSQL version tag or digest, never `latest` (advisory).",
    ADVISORY, [REMOTE_IMAGE, CONTAINER],
    config_schema=schema({"floatingTags": string_list(thresholds.FLOATING_IMAGE_TAGS,
                                                      "Image tags that count as not pinned.")}),
)
def check_dev_image_pinned(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    floating = {str(t) for t in as_list(cfg.get("floatingTags"))}
    if r.type == REMOTE_IMAGE:
        name = r.need("name")
        problem = _tag_problem(str(name or ""), floating)
        if problem:
            yield (f"{r.label} ({name}) {problem}, so a re-pull can silently move the database to another "
                   f"PostgreSQL version; pin a version tag such as postgres:16-bookworm or a digest.")
        return
    images, unresolved, unknown = index.refs(r, "image", REMOTE_IMAGE)
    if images:
        return  # the RemoteImage itself is checked
    if unknown:
        raise CouldNotCheck(r, "image")
    for reference in unresolved:
        problem = _tag_problem(reference, floating)
        if problem:
            yield (f"{r.label} runs image {reference}, which {problem}; pin a version tag such as "
                   f"postgres:16-bookworm or a digest.")


@resource_rule(POLICIES, "dev-resource-limits",
    "Dev database containers have memory, swap and CPU limits (advisory).",
    ADVISORY, [CONTAINER],
    config_schema=schema({
        "maxMemoryMb": {"type": "integer", "minimum": 1, "default": thresholds.MAX_DEV_MEMORY_MB,
                        "description": "Largest memory limit for a dev container."},
        "minMemoryMb": {"type": "integer", "minimum": 1, "default": thresholds.MIN_DEV_MEMORY_MB,
                        "description": "Smallest memory limit for a dev container."},
    }),
)
def check_dev_resource_limits(r: Res, cfg: dict) -> Iterable[str]:
    memory = as_int(r.need("memory")) or 0
    swap = as_int(r.need("memorySwap"))
    cpus = r.need("cpus")
    maximum = as_int(cfg.get("maxMemoryMb")) or thresholds.MAX_DEV_MEMORY_MB
    minimum = as_int(cfg.get("minMemoryMb")) or thresholds.MIN_DEV_MEMORY_MB
    if memory <= 0:
        yield (f"{r.label} has no memory limit, so a runaway query can take the whole machine; set memory "
               f"(catalogue memory_mb).")
    elif memory > maximum:
        yield f"{r.label} may use {memory} MB, above the dev limit of {maximum} MB; lower memory_mb."
    elif memory < minimum:
        yield f"{r.label} is limited to {memory} MB, below the {minimum} MB PostgreSQL needs; raise memory_mb."
    if memory > 0 and (swap is None or swap < 0 or swap > 2 * memory):
        yield (f"{r.label} has no swap limit (memory_swap), so the memory limit can be bypassed through swap; "
               f"set memory_swap equal to memory.")
    try:
        cpu_value = float(cpus) if cpus not in (None, "") else 0.0
    except (TypeError, ValueError):
        cpu_value = 0.0
    if cpu_value <= 0 and not as_int(r.get("cpuShares")):
        yield f"{r.label} has no CPU limit; set cpus (catalogue cpus)."


@resource_rule(POLICIES, "dev-healthcheck",
    "Dev database containers have a healthcheck (advisory).",
    ADVISORY, [CONTAINER],
)
def check_dev_healthcheck(r: Res, cfg: dict) -> Iterable[str]:
    health = r.need("healthcheck")
    tests = as_list(health.get("tests")) if isinstance(health, dict) else []
    if not tests or str(tests[0]).upper() == "NONE":
        yield (f"{r.label} has no healthcheck, so `pulumi up` and services cannot tell when PostgreSQL accepts "
               f"connections; add a pg_isready healthcheck.")


# --- dev-ssl-enforced ----------------------------------------------------------------------------------
# Methods that send or accept a password without scram's protection.
_WEAK_HBA_METHODS = {"trust", "password", "md5", "ident"}


def _server_settings(command) -> dict[str, str]:
    """`-c key=value` / `-ckey=value` / `--key=value` flags of a postgres command line."""
    out: dict[str, str] = {}
    items = [str(c) for c in as_list(command)]
    for i, item in enumerate(items):
        text = None
        if item == "-c" and i + 1 < len(items):
            text = items[i + 1]
        elif item.startswith("-c") and len(item) > 2:
            text = item[2:]
        elif item.startswith("--") and "=" in item:
            text = item[2:]
        if text and "=" in text:
            key, value = text.split("=", 1)
            out[key.strip().replace("-", "_")] = value.strip().strip("'\"")
    return out


@resource_rule(POLICIES, "dev-ssl-enforced",
    "Dev database containers run with ssl=on and a pg_hba.conf that refuses plain TCP and weak password methods.",
    MANDATORY, [CONTAINER],
)
def check_dev_ssl_enforced(r: Res, cfg: dict) -> Iterable[str]:
    settings = _server_settings(r.need("command"))
    if settings.get("ssl", "off").lower() not in ("on", "true", "1", "yes"):
        yield (f"{r.label} starts PostgreSQL without ssl=on, so passwords and data cross the network in clear; "
               f"add `-c ssl=on` with a certificate (bulkhead's DockerPostgres does).")
    hba_file = settings.get("hba_file")
    if not hba_file:
        yield (f"{r.label} uses the image's default pg_hba.conf, which accepts plain TCP connections; upload a "
               f"pg_hba.conf that allows only hostssl with scram-sha-256 and point hba_file at it.")
        return
    uploads = [u for u in as_list(r.need("uploads")) if isinstance(u, dict) and u.get("file") == hba_file]
    if not uploads or not isinstance(uploads[0].get("content"), str):
        yield (f"{r.label} points hba_file at {hba_file} but uploads no such file; upload the pg_hba.conf "
               f"it names.")
        return
    for number, line in enumerate(uploads[0]["content"].splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields or not fields[0].startswith("host"):
            continue
        method = fields[-1] if "=" not in fields[-1] else next((f for f in reversed(fields) if "=" not in f), "")
        if fields[0] in ("host", "hostnossl") and method != "reject":
            yield (f"{r.label}'s pg_hba.conf line {number} (`{line.strip()}`) accepts TCP without SSL; make it "
                   f"hostssl or reject.")
        elif method in _WEAK_HBA_METHODS:
            yield (f"{r.label}'s pg_hba.conf line {number} (`{line.strip()}`) uses `{method}`; use scram-sha-256.")


@stack_rule(POLICIES, "dev-volume-retained",
    "Dev database data lives on a named Docker volume that `pulumi destroy` keeps (advisory).",
    ADVISORY, [CONTAINER],
)
def check_dev_volume_retained(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    mounts = r.need("volumes")
    data_mounts = [m for m in as_list(mounts) if isinstance(m, dict)
                   and str(m.get("containerPath", "")).rstrip("/").startswith("/var/lib/postgresql")]
    if not data_mounts:
        yield (f"{r.label} keeps its data directory ({POSTGRES_DATA_PATH}) inside the container, so replacing the "
               f"container loses the data; mount a named Docker volume there.")
        return
    named = [m for m in data_mounts if m.get("volumeName")]
    if not named:
        yield (f"{r.label} does not keep {POSTGRES_DATA_PATH} on a named Docker volume; mount the database's own "
               f"named volume there.")
        return
    for volume in index.attached(r, "volumes", VOLUME):
        # retainOnDelete is not part of the analyzer protocol; `bulkhead check` passes it when the plan has it.
        if volume.retain_on_delete is False and volume.protect is not True:
            yield (f"{r.label} keeps its data on {volume.label}, which `pulumi destroy` deletes; keep "
                   f"bulkhead:keep_volumes true (retain_on_delete) or protect the volume.")

"""Generate components/catalogue/data/pg_settings.json from real PostgreSQL servers.

    .venv/bin/python tools/generate_pg_settings.py            # every server found, write the table
    .venv/bin/python tools/generate_pg_settings.py --check    # regenerate and compare, exit 1 on drift

For each server found (Debian's /usr/lib/postgresql/N, pgserver's bundled build, the
servers `scripts/fetch-postgres-servers` downloads), a throw-away cluster is made with
initdb and `pg_settings` is read in single-user mode (no port, no socket): name, type,
unit, min/max, enum values, context, boot value. Enum settings also accept hidden
spellings that `pg_settings.enumvals` does not list (`synchronous_commit = yes`); each
enum is probed with the boolean words through `postgres -C name -c name=word`, the
server's own parser, and the spellings it takes are recorded as aliases.

The released-minors table is the newest minor seen per major in the sources named in
LATEST_MINOR_SOURCES, raised by the servers this run read. PostgreSQL numbers its minors
without gaps from .0, so "released" means 0..latest.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: tools/ is a package of the checkout
    sys.path.insert(0, str(ROOT))
from tools import pg_account  # noqa: E402
TABLE_PATH = ROOT / "components" / "catalogue" / "data" / "pg_settings.json"
MAJORS = (13, 14, 15, 16, 17)
BOOL_WORDS = ("on", "off", "true", "false", "yes", "no", "1", "0")
# Older spellings an enum still takes without listing them (wal_level before 9.6); probed
# like the boolean words, so the table has them only where the server really takes them.
LEGACY_ENUM_WORDS: dict[str, tuple[str, ...]] = {"wal_level": ("archive", "hot_standby")}

# Newest minor per major as published, where no server of that minor is at hand.
LATEST_MINOR_SOURCES: dict[int, tuple[int, str]] = {
    13: (23, "docker-library/postgres versions.json before 13's removal (2925b19f, 2025-11-13, end of life)"),
    14: (22, "docker-library/postgres versions.json (6edb0a8c, 2026-02-26)"),
    15: (17, "docker-library/postgres versions.json (6edb0a8c, 2026-02-26)"),
    16: (13, "docker-library/postgres versions.json (6edb0a8c, 2026-02-26)"),
    17: (9, "docker-library/postgres versions.json (6edb0a8c, 2026-02-26)"),
}

# The first minor of each major with a `-bookworm` image tag (the dev image flavour), from
# docker-library/postgres's versions.json history (the first commit listing bookworm).
FIRST_BOOKWORM_IMAGE: dict[int, int] = {13: 11, 14: 8, 15: 3, 16: 0, 17: 0}

_QUERY = (
    "COPY (SELECT replace(json_agg(s ORDER BY s.name)::text, E'\\n', '') FROM ("
    "SELECT name, vartype, unit, min_val, max_val, enumvals, context, boot_val FROM pg_settings) s) TO STDOUT"
)


def fetched_servers_dir() -> Path:
    """Where scripts/fetch-postgres-servers puts its servers (same rule as the script)."""
    explicit = os.environ.get("BULKHEAD_PG_SERVERS")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/cache/bulkhead/postgres-servers")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bulkhead" / "postgres-servers"


def _pgserver_bindir() -> Optional[Path]:
    spec = importlib.util.find_spec("pgserver")  # not imported: its import has side effects
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _server_candidates() -> list[tuple[Path, str]]:
    out = [(p, "Debian package postgresql-" + p.parent.name) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"))]
    bundled = _pgserver_bindir()
    if bundled:
        out.append((bundled, "pgserver (PyPI) bundled build"))
    fetched = fetched_servers_dir()
    suites = {"13": "bullseye", "17": "trixie"}
    out += [(p, f"Debian {suites.get(p.parent.name, '?')} postgresql-{p.parent.name} (scripts/fetch-postgres-servers)")
            for p in sorted(fetched.glob("*/bin"))]
    return out


def server_version(bindir: Path) -> str:
    """'16.2' from `postgres --version` ("postgres (PostgreSQL) 16.2 (Debian ...)")."""
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"\(PostgreSQL\) (\d+)\.(\d+)", out)
    if not match:
        raise RuntimeError(f"{bindir}/postgres --version said {out!r}")
    return f"{match.group(1)}.{match.group(2)}"


def find_servers() -> dict[int, tuple[Path, str]]:
    """major -> (bin dir, where it came from); the first found per major wins."""
    found: dict[int, tuple[Path, str]] = {}
    for bindir, source in _server_candidates():
        if not all((bindir / exe).is_file() for exe in ("initdb", "postgres")):
            continue
        major = int(server_version(bindir).split(".")[0])
        found.setdefault(major, (bindir, source))
    return dict(sorted(found.items()))


def _run(cmd: list[str], user: Optional[pg_account.Account], **kw) -> subprocess.CompletedProcess:
    """As the server's OS account (tools/pg_account.py: PostgreSQL will not run as root), from a
    directory it can enter (ours may be a checkout in a 0700 directory)."""
    kw.setdefault("cwd", "/")
    return pg_account.run(cmd, user, capture_output=True, text=True, env={"PATH": os.defpath, "LC_ALL": "C"}, **kw)


class Cluster:
    """A throw-away data directory of one server, for single-user queries and `postgres -C` probes."""

    def __init__(self, bindir: Path, data_dir: Path, user: Optional[pg_account.Account]):
        self.bindir, self.data_dir, self.user = bindir, data_dir, user

    def probe(self, name: str, value: str) -> tuple[bool, str]:
        """Would the server start with `-c name=value`? (accepted, its value of `name` or its error)."""
        result = _run([str(self.bindir / "postgres"), "-D", str(self.data_dir), "-C", name, "-c", f"{name}={value}"], self.user)
        if result.returncode == 0:
            return True, result.stdout.strip()
        return False, " ".join(result.stderr.split())

    def pg_settings(self) -> list[dict[str, Any]]:
        result = _run([str(self.bindir / "postgres"), "--single", "-D", str(self.data_dir), "postgres"], self.user, input=_QUERY + "\n")
        for line in result.stdout.splitlines():
            line = line.removeprefix("backend> ").strip()
            if line.startswith("[{"):
                return json.loads(line.replace("\\\\", "\\"))
        raise RuntimeError(f"no pg_settings from {self.bindir}/postgres --single:\n{result.stdout}\n{result.stderr}")


@contextlib.contextmanager
def cluster(bindir: Path) -> Iterator[Cluster]:
    user = pg_account.server_account()
    # A server the account cannot reach (pgserver's, in a checkout inside a 0700 directory) runs from a copy.
    bindir = pg_account.reachable_bindir(bindir, user)
    root = Path(tempfile.mkdtemp(prefix="bulkhead-pgset-"))
    try:
        if user:
            os.chown(root, user.uid, user.gid)
        data = root / "data"
        result = _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync",
                       "--no-locale", "--encoding=UTF8"], user, cwd=root)
        if result.returncode != 0:
            raise RuntimeError(f"initdb of {bindir} failed:\n{result.stdout}\n{result.stderr}")
        yield Cluster(bindir, data, user)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _number(text: Optional[str], vartype: str) -> Optional[float | int]:
    if text is None:
        return None
    return int(text) if vartype == "integer" else float(text)


# Enum values that exist only in a server built with a library (configure flag). The dev
# image's server (PGDG's Debian packages) is built with lz4 and zstd; a server at hand built
# without them (pgserver's) lists fewer values, so they are added back and marked as such.
BUILD_ENUM_VALUES: dict[str, dict[str, list[str]]] = {
    "--with-lz4": {"wal_compression": ["lz4"], "default_toast_compression": ["lz4"]},
    "--with-zstd": {"wal_compression": ["zstd"]},
}


def missing_build_flags(bindir: Path) -> list[str]:
    """The BUILD_ENUM_VALUES flags this server was built without (pg_config --configure; none known: [])."""
    pg_config = bindir / "pg_config"
    if not pg_config.is_file():
        return []
    configure = subprocess.run([str(pg_config), "--configure"], capture_output=True, text=True).stdout
    return [flag for flag in BUILD_ENUM_VALUES if flag not in configure]


def _add_build_values(settings: dict[str, dict[str, Any]], flags: list[str]) -> None:
    for flag in flags:
        for name, values in BUILD_ENUM_VALUES[flag].items():
            entry = settings.get(name)
            if entry is None or entry["type"] != "enum":
                continue
            # After "pglz", where PostgreSQL lists the compression methods it was built with.
            at = entry["enum"].index("pglz") + 1 if "pglz" in entry["enum"] else len(entry["enum"])
            for value in values:
                if value not in entry["enum"]:
                    entry["enum"].insert(at, value)
                    at += 1
                    entry.setdefault("added_for_image_build", []).append(value)
    for entry in settings.values():
        if "added_for_image_build" in entry:
            order = {"lz4": 0, "zstd": 1}
            entry["enum"] = sorted(entry["enum"], key=lambda v: (v not in ("pglz",), v in ("on", "off"), order.get(v, 9)))
            entry["added_for_image_build"].sort(key=lambda v: order.get(v, 9))


def read_settings(bindir: Path) -> dict[str, dict[str, Any]]:
    """name -> {type, unit, min, max, enum, aliases, context, default} as this server defines them.

    Enum values a library-less build lacks (BUILD_ENUM_VALUES) are added back, marked
    `added_for_image_build`: the dev image's server has them.
    """
    settings = _read_settings(bindir)
    _add_build_values(settings, missing_build_flags(bindir))
    return settings


def _read_settings(bindir: Path) -> dict[str, dict[str, Any]]:
    with cluster(bindir) as c:
        out: dict[str, dict[str, Any]] = {}
        for row in c.pg_settings():
            vartype = row["vartype"]
            entry: dict[str, Any] = {"type": vartype, "context": row["context"]}
            if row["unit"]:
                entry["unit"] = row["unit"]
            if vartype in ("integer", "real"):
                entry["min"] = _number(row["min_val"], vartype)
                entry["max"] = _number(row["max_val"], vartype)
            if vartype == "enum":
                entry["enum"] = row["enumvals"]
                aliases = {}
                for word in BOOL_WORDS + LEGACY_ENUM_WORDS.get(row["name"], ()):
                    if word in row["enumvals"]:
                        continue
                    accepted, canonical = c.probe(row["name"], word)
                    if accepted:
                        aliases[word] = canonical
                if aliases:
                    entry["aliases"] = aliases
            if row["boot_val"] is not None:
                entry["default"] = row["boot_val"]
            out[row["name"]] = entry
        return out


def released_minors(servers: dict[int, str]) -> dict[str, dict[str, Any]]:
    out = {}
    for major in MAJORS:
        latest, source = LATEST_MINOR_SOURCES[major]
        seen = servers.get(major)
        if seen and int(seen.split(".")[1]) > latest:
            latest, source = int(seen.split(".")[1]), f"the {seen} server this table was generated from"
        out[str(major)] = {"latest": latest, "first_bookworm_image": FIRST_BOOKWORM_IMAGE[major], "source": source}
    return out


def generate(servers: Optional[dict[int, tuple[Path, str]]] = None) -> dict[str, Any]:
    servers = servers if servers is not None else find_servers()
    majors: dict[str, Any] = {}
    versions: dict[int, str] = {}
    for major, (bindir, source) in servers.items():
        if major not in MAJORS:
            continue
        versions[major] = server_version(bindir)
        majors[str(major)] = {"server": versions[major], "source": source, "settings": read_settings(bindir)}
    return {
        "generated_by": "tools/generate_pg_settings.py",
        "majors": majors,
        "released_minors": released_minors(versions),
    }


def dump(table: dict[str, Any]) -> str:
    """One line per setting, so a regeneration's diff reads setting by setting."""
    lines = ["{", f' "generated_by": {json.dumps(table["generated_by"])},', ' "majors": {']
    majors = list(table["majors"].items())
    for i, (major, data) in enumerate(majors):
        lines.append(f'  {json.dumps(major)}: {{"server": {json.dumps(data["server"])}, "source": {json.dumps(data["source"])}, "settings": {{')
        items = sorted(data["settings"].items())
        for j, (name, entry) in enumerate(items):
            comma = "," if j < len(items) - 1 else ""
            lines.append(f"   {json.dumps(name)}: {json.dumps(entry, sort_keys=True)}{comma}")
        lines.append("  }}" + ("," if i < len(majors) - 1 else ""))
    lines.append(" },")
    lines.append(f' "released_minors": {json.dumps(table["released_minors"], sort_keys=True)}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed table instead of writing it")
    parser.add_argument("--out", default=str(TABLE_PATH))
    args = parser.parse_args(argv)
    table = generate()
    missing = [m for m in MAJORS if str(m) not in table["majors"]]
    if args.check:
        committed = json.loads(Path(args.out).read_text(encoding="utf-8"))
        drift = [m for m, data in table["majors"].items() if committed["majors"].get(m) != data]
        for major in drift:
            print(f"PostgreSQL {major}: the committed table differs from the server; rerun without --check", file=sys.stderr)
        return 1 if drift else 0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(dump(table), encoding="utf-8")
    for data in table["majors"].values():
        print(f"PostgreSQL {data['server']}: {len(data['settings'])} settings ({data['source']})")
    if missing:
        print(f"not generated (no server found): {', '.join(map(str, missing))}; validated against the nearest generated major")
    return 0


if __name__ == "__main__":
    sys.exit(main())

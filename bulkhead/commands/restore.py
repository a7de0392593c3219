"""`restore`: pg_restore a dump into one database, owned by its owner role.

Trust: everything a dump's functions, triggers and constraints do during the restore runs as the
target's owner role (pg_restore --role). A dump of the target database itself (its TOC's
`dbname:` is the target's) carries the owner's own code and is restored whole. Any other dump is
refused unless `--from-untrusted`, which restores it without any code of the dump's author
(`untrusted_use_list`): what needs that code fails, and the restore, one transaction, changes nothing.

Exit: 0, 1 restore failed (nothing changed), 2 bad input or refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

from bulkhead.errors import UserError
from bulkhead.outputs_source import add_arguments
from bulkhead.pgtools import (client_error, client_program, confirm, describe_for_confirmation, load_target,
                              outputs_file, run_client, summarise, user_objects, warn_if_not_service_role)

# TOC entry kinds (pg_dump's `desc`, as `pg_restore --list` prints them) whose restore creates
# code of the dump's author that runs as the restoring role: at restore time (a CHECK constraint or
# index expression calling a function while COPY loads the rows; REFRESH of a materialized view)
# or later, whenever the service touches its data (triggers, rules). Operators, aggregates and
# casts are functions under another name; a subscription connects out.
CODE_KINDS = (
    "FUNCTION", "PROCEDURE", "AGGREGATE", "OPERATOR", "OPERATOR CLASS", "OPERATOR FAMILY", "CAST", "TRANSFORM",
    "TRIGGER", "EVENT TRIGGER", "RULE", "PROCEDURAL LANGUAGE", "LANGUAGE", "CONVERSION", "TEXT SEARCH PARSER",
    "TEXT SEARCH TEMPLATE", "FOREIGN DATA WRAPPER", "SERVER", "USER MAPPING", "SUBSCRIPTION",
    "MATERIALIZED VIEW DATA",
)
# Entries about another object (`COMMENT public FUNCTION f(integer) owner`) go with it.
ATTACHED_KINDS = ("COMMENT", "SECURITY LABEL", "ACL")
# `215; 1255 16390 FUNCTION public chk(integer) app`: id; catalog oid, object oid, then the rest.
_TOC_LINE = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")
_DBNAME = re.compile(r"^;\s+dbname: (.*)$", re.M)


def add_parser(sub) -> None:
    s = sub.add_parser("restore", help="pg_restore a dump into one database, owned by its owner role",
                       description="pg_restore --no-owner --no-privileges --role=<owner> in one transaction, so "
                                   "the dump lands owned by the database's own role and grants nothing to anyone "
                                   "else. A dump of another database is refused unless --from-untrusted, which "
                                   "restores it without any of its functions, triggers, rules or other code. "
                                   "Refuses a database that is not empty unless --clean (which asks for the "
                                   "database's name, or --yes). Exit: 0, 1 restore failed (nothing changed), "
                                   "2 bad input or refused.")
    add_arguments(s)
    s.add_argument("--database", required=True, help="the database's name in the catalogue")
    s.add_argument("file", metavar="FILE", help="a pg_dump custom-format archive (pg_dump -Fc)")
    s.add_argument("--clean", action="store_true",
                   help="drop the dump's objects before recreating them (pg_restore --clean --if-exists)")
    s.add_argument("--from-untrusted", action="store_true",
                   help="the dump comes from another database: restore its tables, data, views, indexes and "
                        "constraints but none of its code (functions, triggers, rules, operators...), so nothing "
                        "in it runs as this database's owner")
    s.add_argument("--yes", action="store_true", help="with --clean: do not ask (required without a terminal)")
    s.set_defaults(func=run)


def dump_source(listing: str) -> str | None:
    """The database a dump was taken of (the `dbname:` line of `pg_restore --list`)."""
    m = _DBNAME.search(listing)
    return m.group(1).strip() if m else None


def _kind(rest: str) -> str:
    """`FUNCTION public chk(integer) app` -> FUNCTION (kinds have up to three words)."""
    words = rest.split(" ")
    for n in (3, 2, 1):
        if " ".join(words[:n]) in CODE_KINDS + ATTACHED_KINDS:
            return " ".join(words[:n])
    return words[0]


def untrusted_use_list(listing: str) -> tuple[str, list[str]]:
    """(a --use-list without the dump's code, the entries left out): `pg_restore --list` lines of
    a CODE_KINDS kind are commented out (pg_restore's own syntax for "skip"), and so are comments,
    labels and grants attached to them."""
    kept, left_out = [], []
    for line in listing.splitlines():
        m = _TOC_LINE.match(line)
        if not m:
            kept.append(line)
            continue
        rest = m.group(4)
        kind = _kind(rest)
        # `COMMENT public FUNCTION chk(integer) app`: kind, namespace, then the tag naming the object
        tag = rest[len(kind):].lstrip().partition(" ")[2]
        attached = kind in ATTACHED_KINDS and any(tag.startswith(f"{code} ") for code in CODE_KINDS)
        if kind in CODE_KINDS or attached:
            kept.append(f";{line}")
            left_out.append(rest)
        else:
            kept.append(line)
    return "\n".join(kept) + "\n", left_out


def run(args) -> int:
    if not os.path.isfile(args.file):
        raise UserError(f"{args.file} does not exist or is not a file; pass a dump written by "
                        f"`python -m bulkhead dump` (pg_dump -Fc)")
    with outputs_file(args.outputs) as outputs:
        target = load_target(args.database, outputs, args.stack)
    owner = target.owner_role
    warn_if_not_service_role(target)
    pg_restore = client_program("pg_restore")
    listed = subprocess.run([pg_restore, "--list", args.file], capture_output=True, text=True)
    if listed.returncode != 0:
        raise UserError(f"{args.file} is not a pg_dump custom-format archive ({client_error('pg_restore', listed.stderr)})")
    source = dump_source(listed.stdout)
    if source != target.dsn.dbname and not args.from_untrusted:
        raise UserError(
            f"{args.file} is a dump of database {source or '(unknown)'}, not of {target.dsn.dbname}: its functions, "
            f"triggers and constraints would run as {owner} while it is restored (and later), with every right "
            f"{owner} has. Nothing was done. If you do not control that database's code, pass --from-untrusted: "
            f"its tables, data, views, indexes and constraints are restored, none of its code")
    with target.dsn.connect(autocommit=True) as conn:
        existing = user_objects(conn)
        if existing and args.clean:
            what = f"restore --clean replaces the dump's objects in {describe_for_confirmation(conn, target, args.stack)}"
            if args.yes:
                print(what, file=sys.stderr)
            else:
                confirm(what, args.database)
    if existing and not args.clean:
        raise UserError(f"database {args.database} is not empty ({len(existing)} objects: {summarise(existing, 4)}); "
                        f"pass --clean to replace the dump's objects, or `python -m bulkhead reset` it first (dev)")
    argv = [pg_restore, "--verbose", "--no-owner", "--no-privileges", f"--role={owner}", "--exit-on-error",
            "--single-transaction", f"--dbname={target.dsn.conninfo}"]
    if args.clean:
        argv += ["--clean", "--if-exists"]
    left_out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bulkhead-restore-") as tmp:
        if args.from_untrusted:
            use_list, left_out = untrusted_use_list(listed.stdout)
            path = os.path.join(tmp, "use-list")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(use_list)
            argv += [f"--use-list={path}"]
        code, count, errors = run_client([*argv, args.file], target, (": creating ", ": processing data for table "))
    if code != 0:
        print(client_error("pg_restore", errors), file=sys.stderr)
        if left_out:
            print(f"--from-untrusted left out the dump's code ({_listed(left_out)}); an object that needs it could "
                  f"not be created", file=sys.stderr)
        print(f"restore into {args.database} failed; it ran in one transaction, so nothing was changed",
              file=sys.stderr)
        return 1
    if errors:
        print(errors, end="", file=sys.stderr)
    if left_out:
        print(f"left out {len(left_out)} entries of code from {source}: {_listed(left_out)}", file=sys.stderr)
    with target.dsn.connect(autocommit=True) as conn:
        foreign = [o for o in user_objects(conn) if o[2] != owner]
    if foreign:
        print(f"restored, but {len(foreign)} objects are not owned by {owner}: {summarise(foreign)}", file=sys.stderr)
        return 1
    print(f"restored {args.file} into {args.database}: {count} objects, all owned by {owner}")
    return 0


def _listed(entries: list[str], limit: int = 6) -> str:
    # `FUNCTION public chk(integer) app` -> `FUNCTION public chk(integer)` (the owner is the source's role)
    shown = ", ".join(e.rsplit(" ", 1)[0] for e in entries[:limit])
    return shown + (f" and {len(entries) - limit} more" if len(entries) > limit else "")

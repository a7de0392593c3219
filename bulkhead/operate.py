"""Day-2 verbs on one database: `psql`, `reset` (dev only), `dump`, `restore`.

Each gets its DSN from `dsn` (bulkhead/pgtools.py) and runs the PostgreSQL client
programs with the password in the environment, never on the command line.
Progress goes to stderr; stdout carries only the result line (or psql's own output).
Exit codes: 0 done, 1 done but wrong (objects left behind, nothing restored), 2 bad input
or refused; `psql` returns psql's own code.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

from . import PROJECT_DIR
from .errors import UserError
from .outputs_source import add_arguments, database, load_outputs
from .pgtools import (Target, client_program, load_target, outputs_file, summarise, user_objects,
                      warn_if_not_service_role)

VERSION_HINT = ("the client is older than the server: install the client of the server's major version "
                "(Debian/Ubuntu: apt-get install postgresql-client-<major>) or set BULKHEAD_PG_BINDIR")


def add_parser(sub) -> None:
    p = sub.add_parser("psql", help="run psql on one database through its DSN",
                       description="Run psql connected to one database as its service role (the DSN `dsn` prints). "
                                   "Arguments after `--` go to psql. Exit: psql's own, 2 bad input.")
    add_arguments(p)
    p.add_argument("--database", required=True, help="the database's name in the catalogue")
    p.add_argument("--admin", action="store_true",
                   help="break-glass: connect with the admin login (aws: the master secret), with a warning")
    p.add_argument("psql_args", nargs="*", metavar="-- PSQL_ARGS", help="passed to psql unchanged")
    p.set_defaults(func=run_psql)

    r = sub.add_parser("reset", help="dev only: empty one database, the others untouched",
                       description="Drop every object the database's owner role owns in that database and give it "
                                   "an empty `public` schema again. Docker stacks only; other databases, on the same "
                                   "server or not, are not touched. Exit: 0 emptied, 1 objects of other roles remain, "
                                   "2 refused or bad input.")
    add_arguments(r, stack_required=True)
    r.add_argument("--database", required=True, help="the database's name in the catalogue")
    r.add_argument("--yes", action="store_true", help="do not ask (required without a terminal)")
    r.set_defaults(func=run_reset)

    d = sub.add_parser("dump", help="pg_dump -Fc of one database",
                       description="pg_dump -Fc of one database through its DSN into a new file (never overwritten). "
                                   "Exit: 0, 2.")
    add_arguments(d)
    d.add_argument("--database", required=True, help="the database's name in the catalogue")
    d.add_argument("--out", metavar="FILE", help="where to write (default <database>-<UTC time>.dump)")
    d.set_defaults(func=run_dump)

    s = sub.add_parser("restore", help="pg_restore a dump into one database, owned by its owner role",
                       description="pg_restore --no-owner --no-privileges --role=<owner> in one transaction, so "
                                   "a dump from any source lands owned by the database's own role and grants "
                                   "nothing to anyone else. Refuses a database that is not empty unless --clean. "
                                   "Exit: 0, 1 restore failed (nothing changed), 2 bad input.")
    add_arguments(s)
    s.add_argument("--database", required=True, help="the database's name in the catalogue")
    s.add_argument("file", metavar="FILE", help="a pg_dump custom-format archive (pg_dump -Fc)")
    s.add_argument("--clean", action="store_true",
                   help="drop the dump's objects before recreating them (pg_restore --clean --if-exists)")
    s.set_defaults(func=run_restore)


# --- psql --------------------------------------------------------------------

def run_psql(args) -> int:
    with outputs_file(args.outputs) as outputs:
        target = load_target(args.database, outputs, args.stack, admin=args.admin)
    psql = client_program("psql")
    warn_if_not_service_role(target)
    try:
        return subprocess.run([psql, target.dsn.conninfo, *args.psql_args], env=target.dsn.env()).returncode
    except OSError as exc:
        raise UserError(f"could not run {psql}: {exc.strerror}") from None


# --- reset -------------------------------------------------------------------

# As the owner role: DROP OWNED drops what it owns in this database only (other databases
# are not even reachable by this role) and never the database itself.
RESET_SQL = (
    "DROP OWNED BY CURRENT_USER CASCADE",
    "CREATE SCHEMA IF NOT EXISTS public AUTHORIZATION CURRENT_USER",
    # as components/postgres_init.py leaves it: the public schema is the owner's alone
    "REVOKE ALL ON SCHEMA public FROM PUBLIC",
)


def _confirm(what: str, name: str) -> None:
    if not sys.stdin.isatty():
        raise UserError(f"{what}, which cannot be undone, and there is no terminal to confirm on: pass --yes")
    print(f"{what}. Type the database name ({name}) to continue: ", end="", file=sys.stderr, flush=True)
    try:
        answer = input().strip()
    except EOFError:
        answer = ""
    if answer != name:
        raise UserError("not confirmed; nothing was changed")


def run_reset(args) -> int:
    with outputs_file(args.outputs) as outputs:
        loaded = load_outputs(outputs, args.stack, cwd=PROJECT_DIR)
        # refused before any DSN is made (on aws that would read a secret)
        if database(loaded, args.database).get("platform") != "docker":
            raise UserError(f"reset is for dev (docker) stacks; {args.database} on stack {args.stack} is an RDS "
                            f"database: restore it from a backup instead (AWS Backup / RDS point-in-time restore, "
                            f"or `python -m bulkhead restore --database {args.database} FILE --clean`)")
        target = load_target(args.database, outputs, args.stack, loaded=loaded)
    owner = target.owner_role
    if target.dsn.user != owner:
        raise UserError(f"the DSN of {args.database} logs in as {target.dsn.user}, not its owner role {owner}; "
                        f"reset only runs as the owner so that it cannot reach anything else")
    if not args.yes:
        _confirm(f"reset drops every object of {owner} in database {target.dsn.dbname} on {target.dsn.host}", args.database)
    with target.dsn.connect(autocommit=False) as conn:
        before = user_objects(conn)
        for statement in RESET_SQL:
            conn.execute(statement)
        conn.commit()
        conn.autocommit = True
        left = user_objects(conn)
    dropped = len(before) - len(left)
    if left:
        print(f"reset {args.database}: dropped {dropped} objects of {owner}, but {len(left)} of other roles remain: "
              f"{summarise(left)}; drop them as their owner", file=sys.stderr)
        return 1
    print(f"reset {args.database}: dropped {dropped} objects of {owner}; empty public schema owned by {owner}")
    return 0


# --- dump --------------------------------------------------------------------

def _client_error(program: str, stderr: str) -> str:
    text = " ".join(stderr.strip().split())[-600:] or "no message"
    if "server version mismatch" in text:
        text += f"; {VERSION_HINT}"
    return f"{program} failed: {text}"


def _run_client(argv: list[str], target: Target, counting: tuple[str, ...]) -> tuple[int, int, str]:
    """Run a client program with --verbose: counted progress lines on stderr (one line per object
    would drown the terminal), everything else passed through. (exit code, count, other stderr)."""
    proc = subprocess.Popen(argv, env=target.dsn.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    count, other = 0, []
    tty = sys.stderr.isatty()
    assert proc.stderr is not None
    for line in proc.stderr:
        if any(marker in line for marker in counting):
            count += 1
            if tty:
                print(f"\r{os.path.basename(argv[0])}: {count} objects", end="", file=sys.stderr, flush=True)
        elif ": warning: " in line or ": error: " in line or "ERROR" in line or "FATAL" in line or other:
            other.append(line)
    code = proc.wait()
    if tty and count:
        print(file=sys.stderr)
    return code, count, "".join(other)


def default_dump_name(name: str) -> str:
    return f"{name}-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.dump"


def run_dump(args) -> int:
    with outputs_file(args.outputs) as outputs:
        target = load_target(args.database, outputs, args.stack)
    warn_if_not_service_role(target)
    out = args.out or default_dump_name(args.database)
    if os.path.exists(out):
        raise UserError(f"{out} exists; dump never overwrites a file: pass another --out")
    pg_dump = client_program("pg_dump")
    partial = f"{out}.partial"
    code, count, errors = _run_client([pg_dump, "--format=custom", "--verbose", f"--file={partial}",
                                       f"--dbname={target.dsn.conninfo}"], target, (": dumping contents of table",))
    if code != 0:
        if os.path.exists(partial):
            os.unlink(partial)
        raise UserError(_client_error("pg_dump", errors))
    os.replace(partial, out)
    size = os.path.getsize(out)
    if errors:
        print(errors, end="", file=sys.stderr)
    print(f"dumped {args.database} ({target.dsn.dbname} on {target.dsn.host}) to {out}: {count} tables, {size} bytes")
    return 0


# --- restore -----------------------------------------------------------------

def run_restore(args) -> int:
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
        raise UserError(f"{args.file} is not a pg_dump custom-format archive ({_client_error('pg_restore', listed.stderr)})")
    with target.dsn.connect(autocommit=True) as conn:
        existing = user_objects(conn)
    if existing and not args.clean:
        raise UserError(f"database {args.database} is not empty ({len(existing)} objects: {summarise(existing, 4)}); "
                        f"pass --clean to replace the dump's objects, or `python -m bulkhead reset` it first (dev)")
    argv = [pg_restore, "--verbose", "--no-owner", "--no-privileges", f"--role={owner}", "--exit-on-error",
            "--single-transaction", f"--dbname={target.dsn.conninfo}"]
    if args.clean:
        argv += ["--clean", "--if-exists"]
    code, count, errors = _run_client([*argv, args.file], target, (": creating ", ": processing data for table "))
    if code != 0:
        print(_client_error("pg_restore", errors), file=sys.stderr)
        print(f"restore into {args.database} failed; it ran in one transaction, so nothing was changed",
              file=sys.stderr)
        return 1
    if errors:
        print(errors, end="", file=sys.stderr)
    with target.dsn.connect(autocommit=True) as conn:
        foreign = [o for o in user_objects(conn) if o[2] != owner]
    if foreign:
        print(f"restored, but {len(foreign)} objects are not owned by {owner}: {summarise(foreign)}", file=sys.stderr)
        return 1
    print(f"restored {args.file} into {args.database}: {count} objects, all owned by {owner}")
    return 0

"""`dump`: pg_dump -Fc of one database through its DSN into a new file (never overwritten); exit 0, 2."""

from __future__ import annotations

import datetime as dt
import os
import sys

from bulkhead.errors import UserError
from bulkhead.outputs_source import add_arguments
from bulkhead.pgtools import client_error, client_program, load_target, outputs_file, run_client, warn_if_not_service_role


def add_parser(sub) -> None:
    d = sub.add_parser("dump", help="pg_dump -Fc of one database",
                       description="pg_dump -Fc of one database through its DSN into a new file (never overwritten). "
                                   "Exit: 0, 2.")
    add_arguments(d)
    d.add_argument("--database", required=True, help="the database's name in the catalogue")
    d.add_argument("--out", metavar="FILE", help="where to write (default <database>-<UTC time>.dump)")
    d.set_defaults(func=run)


def default_dump_name(name: str) -> str:
    return f"{name}-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.dump"


def run(args) -> int:
    with outputs_file(args.outputs) as outputs:
        target = load_target(args.database, outputs, args.stack)
    warn_if_not_service_role(target)
    out = args.out or default_dump_name(args.database)
    if os.path.exists(out):
        raise UserError(f"{out} exists; dump never overwrites a file: pass another --out")
    pg_dump = client_program("pg_dump")
    partial = f"{out}.partial"
    code, count, errors = run_client([pg_dump, "--format=custom", "--verbose", f"--file={partial}",
                                       f"--dbname={target.dsn.conninfo}"], target, (": dumping contents of table",))
    if code != 0:
        if os.path.exists(partial):
            os.unlink(partial)
        raise UserError(client_error("pg_dump", errors))
    os.replace(partial, out)
    size = os.path.getsize(out)
    if errors:
        print(errors, end="", file=sys.stderr)
    print(f"dumped {args.database} ({target.dsn.dbname} on {target.dsn.host}) to {out}: {count} tables, {size} bytes")
    return 0


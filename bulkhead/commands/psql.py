"""`psql`: run psql on one database as its service role (the DSN `dsn` prints); exit psql's own, 2 bad input."""

from __future__ import annotations

import subprocess

from bulkhead.errors import UserError
from bulkhead.outputs_source import add_arguments
from bulkhead.pgtools import client_program, load_target, outputs_file, warn_if_not_service_role


def add_parser(sub) -> None:
    p = sub.add_parser("psql", help="run psql on one database through its DSN",
                       description="Run psql connected to one database as its service role (the DSN `dsn` prints). "
                                   "Arguments after `--` go to psql. Exit: psql's own, 2 bad input.")
    add_arguments(p)
    p.add_argument("--database", required=True, help="the database's name in the catalogue")
    p.add_argument("--admin", action="store_true",
                   help="break-glass: connect with the admin login (aws: the master secret), with a warning")
    p.add_argument("psql_args", nargs="*", metavar="-- PSQL_ARGS", help="passed to psql unchanged")
    p.set_defaults(func=run)


def run(args) -> int:
    with outputs_file(args.outputs) as outputs:
        target = load_target(args.database, outputs, args.stack, admin=args.admin)
    psql = client_program("psql")
    warn_if_not_service_role(target)
    try:
        return subprocess.run([psql, target.dsn.conninfo, *args.psql_args], env=target.dsn.env()).returncode
    except OSError as exc:
        raise UserError(f"could not run {psql}: {exc.strerror}") from None

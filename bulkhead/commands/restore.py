"""`restore`: pg_restore a dump into one database, owned by its owner role.

Exit: 0, 1 restore failed (nothing changed), 2 bad input."""

from __future__ import annotations

import os
import subprocess
import sys

from bulkhead.errors import UserError
from bulkhead.outputs_source import add_arguments
from bulkhead.pgtools import (client_error, client_program, load_target, outputs_file, run_client, summarise,
                              user_objects, warn_if_not_service_role)


def add_parser(sub) -> None:
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
    s.set_defaults(func=run)


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
    with target.dsn.connect(autocommit=True) as conn:
        existing = user_objects(conn)
    if existing and not args.clean:
        raise UserError(f"database {args.database} is not empty ({len(existing)} objects: {summarise(existing, 4)}); "
                        f"pass --clean to replace the dump's objects, or `python -m bulkhead reset` it first (dev)")
    argv = [pg_restore, "--verbose", "--no-owner", "--no-privileges", f"--role={owner}", "--exit-on-error",
            "--single-transaction", f"--dbname={target.dsn.conninfo}"]
    if args.clean:
        argv += ["--clean", "--if-exists"]
    code, count, errors = run_client([*argv, args.file], target, (": creating ", ": processing data for table "))
    if code != 0:
        print(client_error("pg_restore", errors), file=sys.stderr)
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

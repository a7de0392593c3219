"""`reset`: dev only: empty one database, the others untouched.

Exit: 0 emptied, 1 objects of other roles remain, 2 refused or bad input."""

from __future__ import annotations

import sys

from bulkhead import PROJECT_DIR
from bulkhead.errors import UserError
from bulkhead.outputs_source import add_arguments, database, load_outputs
from bulkhead.pgtools import confirm, describe_for_confirmation, load_target, outputs_file, summarise, user_objects


def add_parser(sub) -> None:
    r = sub.add_parser("reset", help="dev only: empty one database, the others untouched",
                       description="Drop every object the database's owner role owns in that database and give it "
                                   "an empty `public` schema again. Docker stacks only; other databases, on the same "
                                   "server or not, are not touched. Exit: 0 emptied, 1 objects of other roles remain, "
                                   "2 refused or bad input.")
    add_arguments(r, stack_required=True)
    r.add_argument("--database", required=True, help="the database's name in the catalogue")
    r.add_argument("--yes", action="store_true", help="do not ask (required without a terminal)")
    r.set_defaults(func=run)


# As the owner role: DROP OWNED drops what it owns in this database only (other databases
# are not even reachable by this role) and never the database itself.
RESET_SQL = (
    "DROP OWNED BY CURRENT_USER CASCADE",
    "CREATE SCHEMA IF NOT EXISTS public AUTHORIZATION CURRENT_USER",
    # as components/dev/container.py leaves it: the public schema is the owner's alone
    "REVOKE ALL ON SCHEMA public FROM PUBLIC",
)



def run(args) -> int:
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
    with target.dsn.connect(autocommit=True) as conn:
        what = f"reset drops every object of {owner} in {describe_for_confirmation(conn, target, args.stack)}"
    if args.yes:
        print(what, file=sys.stderr)
    else:
        confirm(what, args.database)
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


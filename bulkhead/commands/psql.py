"""`psql`: run psql on one database as its service role (the DSN `dsn` prints); exit psql's own, 2 bad input.

`--admin` on a dev (docker) database runs psql INSIDE the database's container as the admin, over
the container's unix socket (peer, root only: components/dev/container.py pg_hba_conf), with the
protections of the init's own sessions as startup options (role_sql.admin_session_options):
`search_path=pg_catalog,pg_temp` first of all. A tenant owns its database and may attach settings
to it (`ALTER DATABASE mine SET search_path = trap, pg_catalog`) and put its own `=` operator in
`trap`: a superuser who opens that database with plain `docker exec ... psql` and types
`WHERE rolname = 'x'` runs the tenant's function as superuser."""

from __future__ import annotations

import shutil
import subprocess
import sys

from bulkhead import PROJECT_DIR
from bulkhead.errors import UserError
from bulkhead.outputs_source import add_arguments, database, load_outputs
from bulkhead.pgtools import client_program, load_target, outputs_file, warn_if_not_service_role

DOCKER_HINT = "install the Docker CLI (https://docs.docker.com/engine/install/) or put `docker` on PATH"


def add_parser(sub) -> None:
    p = sub.add_parser("psql", help="run psql on one database through its DSN",
                       description="Run psql connected to one database as its service role (the DSN `dsn` prints). "
                                   "Arguments after `--` go to psql. --admin: aws, the master from the database's "
                                   "secret; docker, psql inside the container as the admin over its unix socket, "
                                   "with search_path=pg_catalog,pg_temp and the init's other session protections. "
                                   "Exit: psql's own, 2 bad input.")
    add_arguments(p)
    p.add_argument("--database", required=True, help="the database's name in the catalogue")
    p.add_argument("--admin", action="store_true",
                   help="break-glass: connect as the admin (aws: the master secret; docker: inside the container), "
                        "with a warning")
    p.add_argument("psql_args", nargs="*", metavar="-- PSQL_ARGS", help="passed to psql unchanged")
    p.set_defaults(func=run)


def docker_admin_argv(entry: dict, name: str, psql_args: list[str], tty: bool) -> list[str]:
    """`docker exec` argv running the container's own psql as the admin in the tenant's database."""
    from components.dev.container import ADMIN_USER
    from components.postgres.role_sql import admin_session_options

    container = entry.get("container")
    db_name = entry.get("db_name")
    if not isinstance(container, str) or not container or not isinstance(db_name, str) or not db_name:
        raise UserError(f"databases.{name}.container is missing from the outputs (outputs from before bulkhead "
                        f"exported it); run `pulumi up` on the stack, then write the outputs again")
    docker = shutil.which("docker")
    if docker is None:
        raise UserError(f"`docker` is not installed here; psql --admin on a dev database runs psql in its "
                        f"container: {DOCKER_HINT}")
    # No --host: the container's libpq default is its server's socket directory (the image's
    # /var/run/postgresql, where components/dev/files/start.sh starts the server).
    return [docker, "exec", "-i", *(["-t"] if tty else []), "--env", f"PGOPTIONS={admin_session_options()}",
            container, "psql", "--no-psqlrc", "--username", ADMIN_USER, "--dbname", db_name, *psql_args]


def run(args) -> int:
    with outputs_file(args.outputs) as outputs:
        loaded = load_outputs(outputs, args.stack, cwd=PROJECT_DIR)
        entry = database(loaded, args.database)
        if args.admin and entry.get("platform") == "docker":
            argv = docker_admin_argv(entry, args.database, args.psql_args, sys.stdin.isatty() and sys.stdout.isatty())
            print(f"warning: psql as the admin in {args.database} (container {entry.get('container')}): break-glass "
                  f"access, every statement runs as superuser; search_path is pg_catalog,pg_temp so the tenant's "
                  f"own objects are reached only by qualified names", file=sys.stderr)
            try:
                return subprocess.run(argv).returncode
            except OSError as exc:
                raise UserError(f"could not run docker: {exc.strerror}") from None
        target = load_target(args.database, outputs, args.stack, admin=args.admin, loaded=loaded)
    psql = client_program("psql")
    warn_if_not_service_role(target)
    try:
        return subprocess.run([psql, target.dsn.conninfo, *args.psql_args], env=target.dsn.env()).returncode
    except OSError as exc:
        raise UserError(f"could not run {psql}: {exc.strerror}") from None

"""`env` and `dsn`: what a service or a person needs to connect to a database.

Both print secrets on purpose (that is what they are for), to stdout only;
nothing they write to stderr, and no error message, carries a password.

`env` prints one service's dotenv lines. It needs `--service` unless the stack
has a single service: a `.env` is one service's environment, and merging several
would put `DATABASE_URL` (and other services' credentials) into one file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from urllib.parse import quote, urlencode

from . import PROJECT_DIR
from .aws_errors import aws_user_error, client, error_code, is_not_found, session
from .errors import UserError
from .outputs_source import is_secret_placeholder, add_arguments, database, how_to_get, load_outputs, platform_of

DEFAULT_CA_BUNDLE = "~/.postgresql/rds-global-bundle.pem"
CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
# Only for the fallback below; the stack's `services` output (components/outputs.py) is the source of truth.
LEGACY_ENV_VAR = "DATABASE_URL"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTENV_PLAIN = re.compile(r"^[A-Za-z0-9_./:@%?=&+,~-]*$")


def add_parser(sub) -> None:
    p = sub.add_parser("env", help="print a service's dotenv lines (<NAME>_DATABASE_URL, DATABASE_URL)",
                       description="Print dotenv lines for one service: one <NAME>_DATABASE_URL per database it "
                                   "owns, plus DATABASE_URL when it owns exactly one. Prints passwords (dev).")
    add_arguments(p)
    p.add_argument("--service", help="the service (database owner); required when the stack has several services")
    p.add_argument("--internal", action="store_true",
                   help="docker: URLs for a container on the database's network (host = container alias)")
    p.set_defaults(func=run_env)

    d = sub.add_parser("dsn", help="print a psql connection string for one database (password included)",
                       description="Print a libpq connection URI for one database. On aws it logs in as the "
                                   "service's own role with a fresh IAM token as the password (valid 15 minutes; "
                                   "boto3 generate_db_auth_token), or with --admin as the break-glass master from "
                                   "the database's secret; the URI verifies the server against the RDS CA bundle.")
    add_arguments(d)
    d.add_argument("--database", required=True, help="the database's name in the catalogue")
    d.add_argument("--reader", nargs="?", const=1, type=int, metavar="N",
                   help="connect to read replica N (default 1) instead of the primary")
    d.add_argument("--ca-bundle", default=os.environ.get("BULKHEAD_RDS_CA_BUNDLE", DEFAULT_CA_BUNDLE),
                   help=f"RDS CA bundle for sslrootcert (default $BULKHEAD_RDS_CA_BUNDLE or {DEFAULT_CA_BUNDLE}; "
                        f"download: {CA_BUNDLE_URL})")
    d.add_argument("--region", help="AWS region of the database (default: from its host name or its secret's ARN)")
    d.add_argument("--admin", action="store_true",
                   help="aws: the master user from the database's secret (break-glass; warns on stderr)")
    d.set_defaults(func=run_dsn)


# --- env ---------------------------------------------------------------------

def dotenv_quote(value: str) -> str:
    """A dotenv value that docker compose, python-dotenv and `set -a; . .env` all read back unchanged."""
    if "\n" in value or "\r" in value or "\x00" in value:
        raise UserError("a value spans lines; it cannot be written as a dotenv line")
    if "'" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    return f'"{escaped}"'


def services_of(outputs: dict) -> dict | None:
    """The stack's `services` output (owner -> {databases, env}), or None for outputs that predate it."""
    services = outputs.get("services")
    if services is None:
        return None
    if not isinstance(services, dict) or not all(isinstance(v, dict) for v in services.values()):
        raise UserError("the `services` output is not a map of service -> {databases, env}; regenerate the "
                        "outputs file from a current stack")
    return services


def service_names(outputs: dict) -> list[str]:
    services = services_of(outputs)
    if services is not None:
        return sorted(str(s) for s in services)
    return sorted({str(d.get("owner")) for d in outputs["databases"].values()})


def _no_such_service(service: str, outputs: dict) -> UserError:
    return UserError(f"service {service!r} owns no database in this stack; services: {', '.join(service_names(outputs))}")


def env_for_service(outputs: dict, service: str, internal: bool = False) -> list[tuple[str, str]]:
    """(name, url) pairs: the stack's `services.<service>.env`, or (for --internal, or for
    outputs without `services`) built from the service's `databases` entries."""
    services = services_of(outputs)
    if services is not None and not internal:
        return _env_from_services(services, service, outputs)
    return _env_from_databases(outputs, service, internal)


def _env_from_services(services: dict, service: str, outputs: dict) -> list[tuple[str, str]]:
    if service not in services:
        raise _no_such_service(service, outputs)
    env = services[service].get("env")
    if not isinstance(env, dict) or not env:
        raise UserError(f"services.{service}.env in the outputs is not a map of variable -> URL; is the stack current?")
    pairs: list[tuple[str, str]] = []
    for env_var, url in env.items():
        if not isinstance(env_var, str) or not ENV_NAME_RE.match(env_var):
            raise UserError(f"services.{service}.env has a key that is not a variable name")
        if is_secret_placeholder(url):
            raise UserError("the outputs show secrets as [secret]; write them with `--show-secrets`")
        if not isinstance(url, str) or not url:
            raise UserError(f"services.{service}.env.{env_var} in the outputs is not a URL; is the stack current?")
        pairs.append((env_var, url))
    return pairs


def _env_from_databases(outputs: dict, service: str, internal: bool) -> list[tuple[str, str]]:
    dbs = {n: d for n, d in sorted(outputs["databases"].items()) if d.get("owner") == service}
    if not dbs:
        raise _no_such_service(service, outputs)
    key = "url"
    if internal:
        if any(d.get("platform") != "docker" for d in dbs.values()):
            raise UserError("--internal is for docker stacks (containers on the database's network)")
        key = "internal_url"
    pairs: list[tuple[str, str]] = []
    for name, db in dbs.items():
        env_var, url = db.get("env_var"), db.get(key)
        if not isinstance(env_var, str) or not ENV_NAME_RE.match(env_var):
            raise UserError(f"databases.{name}.env_var in the outputs is not a variable name")
        if is_secret_placeholder(url):
            raise UserError("the outputs show secrets as [secret]; write them with `--show-secrets`")
        if not isinstance(url, str) or not url:
            raise UserError(f"databases.{name} has no `{key}` in the outputs; is the stack current?")
        pairs.append((env_var, url))
    # The same rule as components/outputs.py services_output.
    if len(dbs) == 1 and LEGACY_ENV_VAR not in dict(pairs):
        pairs.append((LEGACY_ENV_VAR, pairs[0][1]))
    return pairs


def run_env(args) -> int:
    outputs = load_outputs(args.outputs, args.stack, cwd=PROJECT_DIR)
    service = args.service
    if not service:
        names = service_names(outputs)
        if len(names) != 1:
            raise UserError(f"--service is required: this stack has {len(names)} services ({', '.join(names)}); "
                            f"a .env file holds one service's environment")
        service = names[0]
    pairs = env_for_service(outputs, service, internal=args.internal)
    lines = [f"# bulkhead: {service}, stack {args.stack or '(from outputs)'}; contains credentials, do not commit"]
    if platform_of(outputs) == "aws":
        lines += [
            "# aws: each URL logs in as the service's own role with an IAM token as the password (no password",
            "# here): sign one per connection with boto3 rds.generate_db_auth_token(host, port, user, region)",
            "# (the task role needs the database's access_policy_arn), or for a shell:",
            "# `python -m bulkhead dsn --database NAME`. sslrootcert must point at the RDS CA bundle.",
        ]
    lines += [f"{k}={dotenv_quote(v)}" for k, v in pairs]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# --- dsn ---------------------------------------------------------------------

def _region_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[3] else None


def fetch_master_secret(secret_arn: str, region: str | None) -> dict:
    """{"username", "password"} of the RDS-managed secret."""
    from botocore.exceptions import BotoCoreError, ClientError

    region = region or _region_of_arn(secret_arn)
    try:
        sm = client(session(region), "secretsmanager", region)
        value = sm.get_secret_value(SecretId=secret_arn)
    except ClientError as exc:
        if is_not_found(exc):
            raise UserError(f"the database's secret {secret_arn} does not exist (deleted?); "
                            f"run `python -m bulkhead audit` to see what else drifted") from None
        if error_code(exc) in ("InvalidRequestException",):
            raise UserError(f"the database's secret {secret_arn} is scheduled for deletion; restore it "
                            f"(`aws secretsmanager restore-secret`) or rotate the master password") from None
        if error_code(exc) in ("DecryptionFailure", "KMSAccessDeniedException", "KMSDisabledException"):
            raise UserError(f"cannot decrypt {secret_arn}: this identity needs kms:Decrypt on the database's key "
                            f"(attach its access policy)") from None
        raise aws_user_error(exc, "reading the database's secret") from None
    except BotoCoreError as exc:
        raise aws_user_error(exc, "reading the database's secret") from None
    text = value.get("SecretString")
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("password"), str):
        # Never quote the secret's content here.
        raise UserError(f"secret {secret_arn} is not a master secret (JSON with username and password)")
    return data


_RDS_HOST = re.compile(r"\.([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9])\.rds\.amazonaws\.com(?:\.cn)?$")


def database_region(host: str, secret_arn, given: str | None) -> str | None:
    if given:
        return given
    m = _RDS_HOST.search(host)
    if m:
        return m.group(1)
    return _region_of_arn(secret_arn) if isinstance(secret_arn, str) else None


def iam_token(host: str, port, user: str, region: str | None) -> str:
    """A fresh IAM authentication token for `user` (the password of an IAM login; 15 minutes)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not region:
        raise UserError("cannot tell the database's region from its host name; pass --region")
    try:
        rds = client(session(region), "rds", region)
        return rds.generate_db_auth_token(DBHostname=host, Port=int(port), DBUsername=user, Region=region)
    except (BotoCoreError, ClientError) as exc:
        raise aws_user_error(exc, "signing an IAM database token") from None


def libpq_uri(user: str, password: str | None, host: str, port, db_name: str, params: dict) -> str:
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    query = urlencode(params, safe="/~.-_")
    return f"postgresql://{auth}@{host}:{port}/{quote(db_name, safe='')}" + (f"?{query}" if query else "")


def _field(name: str, db: dict, key: str, kind: str, stack: str | None):
    """databases.<name>.<key>, checked; the message names the key path, never the value."""
    value = db.get(key)
    if kind == "port":
        ok = (isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536) or \
             (isinstance(value, str) and value.isdigit() and 0 < int(value) < 65536)
        expected = "a port number"
    elif kind == "hosts":
        ok = isinstance(value, list) and all(isinstance(h, str) and h for h in value)
        expected = "a list of host names"
    else:
        ok = isinstance(value, str) and bool(value)
        expected = "a non-empty string"
    if not ok:
        state = "is missing" if value is None else f"is not {expected}"
        raise UserError(f"databases.{name}.{key} {state} in the outputs; the file is incomplete or from an older "
                        f"bulkhead. Regenerate it: {how_to_get(stack)}")
    return value


def _pick_host(name: str, db: dict, reader, stack: str | None = None) -> str:
    if reader is None:
        return _field(name, db, "host", "str", stack)
    readers = _field(name, db, "reader_hosts", "hosts", stack) if db.get("reader_hosts") is not None else []
    if not readers:
        raise UserError(f"database {name} has no read replicas; drop --reader, or set `replicas` in the catalogue")
    if not 1 <= reader <= len(readers):
        raise UserError(f"--reader {reader}: database {name} has {len(readers)} replica(s) (1-{len(readers)})")
    return readers[reader - 1]


def run_dsn(args) -> int:
    outputs = load_outputs(args.outputs, args.stack, cwd=PROJECT_DIR)
    name = args.database
    db = database(outputs, name)
    if db.get("platform") == "docker":
        if args.reader is not None:
            _pick_host(name, db, args.reader, args.stack)  # refuses: a dev server has no replicas
        url = _field(name, db, "url", "str", args.stack)
        print(url)
        return 0
    host = _pick_host(name, db, args.reader, args.stack)
    port = _field(name, db, "port", "port", args.stack)
    db_name = _field(name, db, "db_name", "str", args.stack)
    secret_arn = db.get("secret_arn")
    if args.admin or db.get("auth") != "iam":  # outputs of older stacks: the master was the only login
        if not isinstance(secret_arn, str) or not secret_arn.startswith("arn:"):
            raise UserError(f"databases.{name}.secret_arn is missing from the outputs; is the stack current? "
                            f"Regenerate the file: {how_to_get(args.stack)}")
        secret = fetch_master_secret(secret_arn, args.region)
        user = secret.get("username") if isinstance(secret.get("username"), str) and secret.get("username") else None
        user = user or _field(name, db, "username", "str", args.stack)
        password = secret["password"]
        if args.admin:
            print(f"warning: this is the master user {user} of {name}, for break-glass use only: it can drop the "
                  f"database and every role in it. Services log in as their own role "
                  f"(`dsn --database {name}` without --admin).", file=sys.stderr)
    else:
        user = _field(name, db, "username", "str", args.stack)
        password = iam_token(host, port, user, database_region(host, secret_arn, args.region))
    ca_bundle = os.path.abspath(os.path.expanduser(args.ca_bundle))
    if not os.path.exists(ca_bundle):
        print(f"warning: {ca_bundle} does not exist; psql will refuse verify-full without it. Download it:\n"
              f"  mkdir -p {os.path.dirname(ca_bundle)} && curl -fsSo {ca_bundle} {CA_BUNDLE_URL}", file=sys.stderr)
    print(libpq_uri(user, password, host, port, db_name, {"sslmode": "verify-full", "sslrootcert": ca_bundle}))
    return 0

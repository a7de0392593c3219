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
from .outputs_source import add_arguments, database, load_outputs, platform_of

DEFAULT_CA_BUNDLE = "~/.postgresql/rds-global-bundle.pem"
CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
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
                       description="Print a libpq connection URI for one database. On aws the password is fetched "
                                   "from the RDS-managed secret in Secrets Manager (boto3) and the URI verifies the "
                                   "server certificate against the RDS CA bundle.")
    add_arguments(d)
    d.add_argument("--database", required=True, help="the database's name in the catalogue")
    d.add_argument("--reader", nargs="?", const=1, type=int, metavar="N",
                   help="connect to read replica N (default 1) instead of the primary")
    d.add_argument("--ca-bundle", default=os.environ.get("BULKHEAD_RDS_CA_BUNDLE", DEFAULT_CA_BUNDLE),
                   help=f"RDS CA bundle for sslrootcert (default $BULKHEAD_RDS_CA_BUNDLE or {DEFAULT_CA_BUNDLE}; "
                        f"download: {CA_BUNDLE_URL})")
    d.add_argument("--region", help="AWS region of the secret (default: from the secret's ARN)")
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


def env_for_service(outputs: dict, service: str, internal: bool = False) -> list[tuple[str, str]]:
    dbs = {n: d for n, d in sorted(outputs["databases"].items()) if d.get("owner") == service}
    if not dbs:
        owners = sorted({d.get("owner") for d in outputs["databases"].values()})
        raise UserError(f"service {service!r} owns no database in this stack; services: {', '.join(owners)}")
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
        if not isinstance(url, str) or not url:
            raise UserError(f"databases.{name} has no `{key}` in the outputs; is the stack current?")
        pairs.append((env_var, url))
    if len(dbs) == 1 and LEGACY_ENV_VAR not in dict(pairs):
        pairs.append((LEGACY_ENV_VAR, pairs[0][1]))
    return pairs


def run_env(args) -> int:
    outputs = load_outputs(args.outputs, args.stack, cwd=PROJECT_DIR)
    owners = sorted({d.get("owner") for d in outputs["databases"].values()})
    service = args.service
    if not service:
        if len(owners) != 1:
            raise UserError(f"--service is required: this stack has {len(owners)} services ({', '.join(owners)}); "
                            f"a .env file holds one service's environment")
        service = owners[0]
    pairs = env_for_service(outputs, service, internal=args.internal)
    lines = [f"# bulkhead: {service}, stack {args.stack or '(from outputs)'}; contains credentials, do not commit"]
    if platform_of(outputs) == "aws":
        lines.append("# aws: URLs carry no password; use IAM auth or `python -m bulkhead dsn --database NAME`")
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
        raise UserError(f"secret {secret_arn} is not an RDS-managed master secret (JSON with username and password)")
    return data


def libpq_uri(user: str, password: str | None, host: str, port, db_name: str, params: dict) -> str:
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    query = urlencode(params, safe="/~.-_")
    return f"postgresql://{auth}@{host}:{port}/{quote(db_name, safe='')}" + (f"?{query}" if query else "")


def _pick_host(name: str, db: dict, reader) -> str:
    if reader is None:
        return db["host"]
    readers = db.get("reader_hosts") or []
    if not readers:
        raise UserError(f"database {name} has no read replicas; drop --reader, or set `replicas` in the catalogue")
    if not 1 <= reader <= len(readers):
        raise UserError(f"--reader {reader}: database {name} has {len(readers)} replica(s) (1-{len(readers)})")
    return readers[reader - 1]


def run_dsn(args) -> int:
    outputs = load_outputs(args.outputs, args.stack, cwd=PROJECT_DIR)
    db = database(outputs, args.database)
    host = _pick_host(args.database, db, args.reader)
    if db.get("platform") == "docker":
        url = db.get("url")
        if not isinstance(url, str):
            raise UserError(f"databases.{args.database} has no url in the outputs")
        print(url)
        return 0
    secret_arn = db.get("secret_arn")
    if not isinstance(secret_arn, str) or not secret_arn.startswith("arn:"):
        raise UserError(f"databases.{args.database} has no secret_arn in the outputs; is the stack current?")
    secret = fetch_master_secret(secret_arn, args.region)
    ca_bundle = os.path.abspath(os.path.expanduser(args.ca_bundle))
    if not os.path.exists(ca_bundle):
        print(f"warning: {ca_bundle} does not exist; psql will refuse verify-full without it. Download it:\n"
              f"  mkdir -p {os.path.dirname(ca_bundle)} && curl -fsSo {ca_bundle} {CA_BUNDLE_URL}", file=sys.stderr)
    print(libpq_uri(secret.get("username") or db["username"], secret["password"], host, db["port"], db["db_name"],
                    {"sslmode": "verify-full", "sslrootcert": ca_bundle}))
    return 0

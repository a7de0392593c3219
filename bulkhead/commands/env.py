"""`env`: what a service needs to connect to its databases, as dotenv lines.

It prints secrets on purpose (that is what they are for), to stdout only;
nothing it writes to stderr, and no error message, carries a password.

`env` prints one service's dotenv lines. It needs `--service` unless the stack
has a single service: a `.env` is one service's environment, and merging several
would put `DATABASE_URL` (and other services' credentials) into one file.
"""

from __future__ import annotations

import os
import re
import sys

from bulkhead import PROJECT_DIR
from bulkhead.drivers import BINDS_CHANNEL, DEFAULT_DRIVER, DRIVERS, driver_env, driver_note, driver_url
from bulkhead.errors import UserError
from bulkhead.outputs_source import add_arguments, is_secret_placeholder, load_outputs, platform_of

# Only for the fallback below; the stack's `services` output (components/outputs.py) is the source of truth.
LEGACY_ENV_VAR = "DATABASE_URL"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def add_parser(sub) -> None:
    p = sub.add_parser("env", help="print a service's dotenv lines (<NAME>_DATABASE_URL, DATABASE_URL)",
                       description="Print dotenv lines for one service: one <NAME>_DATABASE_URL per database it "
                                   "owns, plus DATABASE_URL when it owns exactly one. Prints passwords (dev).")
    add_arguments(p)
    p.add_argument("--service", help="the service (database owner); required when the stack has several services")
    p.add_argument("--internal", action="store_true",
                   help="docker: URLs for a container on the database's network (host = container alias)")
    p.add_argument("--driver", choices=DRIVERS, default=DEFAULT_DRIVER,
                   help=f"the URL form of this client driver, TLS on (default {DEFAULT_DRIVER}; see bulkhead/drivers.py)")
    p.add_argument("--ca-dir", default=".",
                   help="docker: where to write the CA files the URLs verify the server with, one per database "
                        "(<database>-ca.pem, only that database's container's CA); put them next to the .env "
                        "(default: the current directory)")
    p.add_argument("--ca-mount", metavar="DIR",
                   help="docker: the directory holding the CA files as the client sees it, e.g. where a compose "
                        "service mounts it (default: the absolute --ca-dir)")
    p.add_argument("--format", choices=FORMATS, default="dotenv",
                   help="dotenv: quoted values (docker compose env_file, python-dotenv, `set -a; . ./.env`); "
                        "docker: raw values for `docker run --env-file`, which keeps quotes as part of the value")
    p.set_defaults(func=run)


FORMATS = ("dotenv", "docker")


def docker_env_value(value: str) -> str:
    """A `docker run --env-file` value: the rest of the line, taken as it is (no quotes, no escapes:
    docker/cli opts/parse.go parseKeyValueFile)."""
    if "\n" in value or "\r" in value or "\x00" in value:
        raise UserError("a value spans lines; it cannot be written as an env-file line")
    return value


def ca_files(outputs: dict, service: str, ca_dir: str, ca_mount: str | None) -> dict[str, str] | None:
    """Write one CA file per database of `service` (docker): <ca_dir>/<database>-ca.pem, holding only
    the CA of the container that database lives on (its `ca_cert` output), so a URL of database A
    never trusts the CA of database B's container (docs/connecting.md, "One CA file per database").
    Returns database -> the file's path as the client sees it; None when a docker database of the
    service has no `ca_cert` (outputs from before per-container CAs)."""
    from bulkhead.connection import dev_ca_pem, write_ca_file

    files: dict[str, str] = {}
    for name, db in sorted(outputs["databases"].items()):
        if db.get("owner") != service or db.get("platform") != "docker":
            continue
        pem = dev_ca_pem(name, db)
        if pem is None:
            return None
        path = write_ca_file(pem, os.path.join(ca_dir, f"{name}-ca.pem"))
        files[name] = ca_mount.rstrip("/") + f"/{name}-ca.pem" if ca_mount else path
    return files


def _database_of(outputs: dict, service: str, url: str) -> str | None:
    """The database of `service` whose url/internal_url is `url` (DATABASE_URL is one of them)."""
    for name, db in outputs["databases"].items():
        if db.get("owner") == service and url in (db.get("url"), db.get("internal_url")):
            return name
    return None


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
        return _with_proxy_urls(outputs, service, _with_login_passwords(outputs, _env_from_services(services, service, outputs)))
    return _with_proxy_urls(outputs, service, _with_login_passwords(outputs, _env_from_databases(outputs, service, internal)))


def proxy_env_var(env_var: str) -> str:
    """ORDERS_DATABASE_URL -> ORDERS_DATABASE_PROXY_URL: where the same role connects through its RDS Proxy."""
    return env_var[:-len("_URL")] + "_PROXY_URL" if env_var.endswith("_URL") else env_var + "_PROXY"


def _with_proxy_urls(outputs: dict, service: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`proxy: true` (aws): one more variable per proxied database, its URL with the proxy's host
    (`proxy_host`): the same user, TLS and IAM token (end-to-end IAM, components/prod/proxy.py)."""
    extra = []
    for _name, db in sorted(outputs["databases"].items()):
        proxy, host, url = db.get("proxy_host"), db.get("host"), db.get("url")
        if db.get("owner") != service or not isinstance(proxy, str) or not isinstance(url, str) or not host:
            continue
        extra.append((proxy_env_var(str(db.get("env_var"))), url.replace(f"@{host}:", f"@{proxy}:", 1)))
    return pairs + extra


def _with_login_passwords(outputs: dict, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """auth password: a database's URL gains its login password, read from its login secret."""
    password_dbs = {d.get("url"): (n, d) for n, d in outputs["databases"].items()
                    if d.get("platform") == "aws" and d.get("auth") == "password"}
    if not password_dbs:
        return pairs
    from bulkhead.connection import password_url

    urls = {url: password_url(*password_dbs[url]) for _, url in pairs if url in password_dbs}
    return [(k, urls.get(v, v)) for k, v in pairs]


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


def _for_driver(url: str, driver: str, ca_file: str | None) -> str:
    try:
        return driver_url(url, driver, ca_file)
    except UserError:
        if driver == DEFAULT_DRIVER:
            return url  # not a TLS postgresql:// URL: the default form prints it as the outputs hold it
        raise


def _driver_env(driver: str, pairs: list, ca_of: dict, service: str, outputs: dict, args) -> list[tuple[str, str]]:
    """sqlalchemy+asyncpg's PGSSLROOTCERT: the one CA file of the service's database; with databases
    on several containers, one variable cannot name a file per database, so it names a bundle of
    this service's CAs (<service>-ca.pem; docs/connecting.md says so)."""
    roots = sorted({v for v in ca_of.values() if v})
    if driver != "sqlalchemy+asyncpg" or len(roots) <= 1:
        return driver_env(driver, [v for _, v in pairs], roots[0] if roots else None)
    from bulkhead.connection import dev_ca_pem, write_ca_file

    pems = dict.fromkeys(dev_ca_pem(n, d) for n, d in sorted(outputs["databases"].items())
                         if d.get("owner") == service and d.get("platform") == "docker")
    path = write_ca_file("".join(p for p in pems if p), os.path.join(args.ca_dir, f"{service}-ca.pem"))
    bundle = args.ca_mount.rstrip("/") + f"/{service}-ca.pem" if args.ca_mount else path
    return driver_env(driver, [v for _, v in pairs], bundle)


def run(args) -> int:
    outputs = load_outputs(args.outputs, args.stack, cwd=PROJECT_DIR)
    service = args.service
    if not service:
        names = service_names(outputs)
        if len(names) != 1:
            raise UserError(f"--service is required: this stack has {len(names)} services ({', '.join(names)}); "
                            f"a .env file holds one service's environment")
        service = names[0]
    pairs = env_for_service(outputs, service, internal=args.internal)
    files = ca_files(outputs, service, args.ca_dir, args.ca_mount) if platform_of(outputs) == "docker" else None
    if not files and platform_of(outputs) == "docker" and args.driver not in BINDS_CHANNEL:
        # Without the container's CA nothing would authenticate the server for this client (it does
        # not do channel binding): a relay on the database's network would get the password.
        raise UserError(f"these outputs carry no `ca_cert` (written before per-container CAs): a {args.driver} URL "
                        f"could not verify the server. Run `pulumi up`, then write the outputs again "
                        f"(pulumi stack output --json --show-secrets)")
    ca_of = {k: files.get(_database_of(outputs, service, v) or "") for k, v in pairs} if files else {}
    notes = [] if files else driver_note(args.driver, [v for _, v in pairs])
    extra = _driver_env(args.driver, pairs, ca_of, service, outputs, args) if files else []
    pairs = [(k, _for_driver(v, args.driver, ca_of.get(k))) for k, v in pairs] + extra
    quote = docker_env_value if args.format == "docker" else dotenv_quote
    lines = [f"# bulkhead: {service}, stack {args.stack or '(from outputs)'}; contains credentials, do not commit"]
    if platform_of(outputs) == "aws":
        lines += [
            "# aws: each URL logs in as the service's own role with an IAM token as the password (no password",
            "# here): sign one per connection with boto3 rds.generate_db_auth_token(host, port, user, region)",
            "# (the task role needs the database's access_policy_arn), or for a shell:",
            "# `python -m bulkhead dsn --database NAME`. sslrootcert must point at the RDS CA bundle.",
            "# A database with auth: password carries its login password, read from its login secret.",
        ]
    if files:
        lines.append(f"# each server is verified (sslmode=verify-full) with its own container's CA, written to "
                     f"{', '.join(sorted(set(files.values())))}")
    lines += notes + [f"{k}={quote(v)}" for k, v in pairs]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0



"""One database URL in the form each client driver accepts, the server authenticated (`env --driver`).

The stack's URLs are libpq URIs (`postgresql://user[:password]@host:port/db?sslmode=...`). On a
dev stack `env` gives each the CA of the database's container (`ca_file`, written next to the
.env): every form then verifies the server's certificate and host name (`verify-full`), which
every client below can do; channel binding is kept only where the client enforces it.
What each driver does with a URL, read in its source and proven on the real engine
(tests/docker/test_clients.py):

- libpq, psycopg (2 and 3), SQLAlchemy + psycopg: the URI as it is (PQconninfoParse);
  `sslmode=verify-full`, `sslrootcert`, `channel_binding=require` (libpq >= 13).
- asyncpg (`asyncpg.connect(dsn)`): its own parser (asyncpg/connect_utils.py
  `_parse_connect_dsn_and_args`) reads `sslmode` and `sslrootcert`; any other query key becomes
  a *server setting*, so `channel_binding` would fail the login ("unrecognized configuration
  parameter"). asyncpg has no channel binding (SCRAM-SHA-256 only): verify-full is its protection.
- SQLAlchemy + asyncpg (`postgresql+asyncpg://`): the dialect passes the query as keyword arguments
  to `asyncpg.connect()`, which has `ssl` and no `sslmode`/`sslrootcert`: `ssl=verify-full`, and the
  CA in `PGSSLROOTCERT` (asyncpg reads it when no sslrootcert is given): `env` writes that line too.
- JDBC (pgjdbc): `jdbc:postgresql://host:port/db?...`; the authority holds host and port only
  (Driver.parseURL), so user and password are query parameters, percent-encoded (pgjdbc decodes
  with java.net.URLDecoder: `+` must be `%2B`). `sslmode=verify-full` and `sslrootcert` (a PEM
  file: LibPQFactory) are pgjdbc properties of those names. pgjdbc ignores a property it does not
  know: `channel_binding` is not one (its name is `channelBinding`, pgjdbc >= 42.7.4, and only
  >= 42.7.12 enforces it: CVE-2025-49146, CVE-2026-54291). Debian 12 ships 42.5.5, which has
  none, so the form leaves it out and relies on verify-full.
- node (node-postgres, `new pg.Client({connectionString})`): pg-connection-string reads
  `sslmode=verify-full` as TLS with verification and `sslrootcert` as a file it loads into
  `ssl.ca`; node's tls checks the host name (an IP against the certificate's IP names). pg binds
  the channel only when `enableChannelBinding: true` is passed in code, never from the URL, so
  `channel_binding` is left out.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .errors import UserError

DRIVERS = ("libpq", "psycopg", "asyncpg", "sqlalchemy+asyncpg", "sqlalchemy+psycopg", "jdbc", "node")
DEFAULT_DRIVER = "libpq"
# Clients that enforce channel_binding=require given in the URL.
BINDS_CHANNEL = frozenset({"libpq", "psycopg", "sqlalchemy+psycopg"})
# The CA file for sqlalchemy+asyncpg (its URL cannot name one).
CA_ENV_VAR = "PGSSLROOTCERT"


def _parts(url: str) -> tuple:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise UserError("a URL in the outputs is not a postgresql:// URL; is the stack current?")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if query.get("sslmode", "disable") in ("disable", "allow", "prefer"):
        raise UserError("a URL in the outputs does not require TLS (sslmode); regenerate the outputs from a current stack")
    return parts, query


def _libpq_url(parts, query: dict) -> str:
    # quote, not quote_plus: libpq decodes %XX only, a `+` stays a `+`
    return f"postgresql://{parts.netloc}{parts.path}?" + urlencode(query, safe="/~.-_", quote_via=quote)


def driver_url(url: str, driver: str, ca_file: str | None = None) -> str:
    """`url` (a libpq URI from the outputs) for `driver`, TLS as strict as the original; with
    `ca_file` (the database's CA), the server's certificate and name are verified (verify-full)."""
    if driver not in DRIVERS:
        raise UserError(f"--driver {driver!r}: one of {', '.join(DRIVERS)}")
    if driver == DEFAULT_DRIVER and ca_file is None:
        return url  # the outputs' URL, unchanged
    parts, query = _parts(url)
    if ca_file is not None:
        query.pop("sslrootcert", None)
        query = {"sslmode": "verify-full", "sslrootcert": ca_file,
                 **{k: v for k, v in query.items() if k != "sslmode"}}
    if driver not in BINDS_CHANNEL:
        query.pop("channel_binding", None)
    if driver in ("libpq", "psycopg", "asyncpg", "node"):
        return _libpq_url(parts, query)
    if driver == "sqlalchemy+psycopg":
        return "postgresql+psycopg" + _libpq_url(parts, query)[len("postgresql"):]
    if driver == "sqlalchemy+asyncpg":
        rest = {"ssl": query["sslmode"], **{k: v for k, v in query.items() if k not in ("sslmode", "sslrootcert")}}
        return f"postgresql+asyncpg://{parts.netloc}{parts.path}?{urlencode(rest)}"
    # jdbc
    params = {}
    if parts.username is not None:
        params["user"] = unquote(parts.username)
    if parts.password is not None:
        params["password"] = unquote(parts.password)
    params.update(query)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    return f"jdbc:postgresql://{host}{port}{parts.path}?" + urlencode(params, quote_via=quote, safe="/")


def driver_env(driver: str, urls: list[str], ca_file: str | None = None) -> list[tuple[str, str]]:
    """Variables besides the URLs this driver needs: sqlalchemy+asyncpg's CA (`PGSSLROOTCERT`)."""
    if driver != "sqlalchemy+asyncpg":
        return []
    roots = {ca_file} if ca_file else {q["sslrootcert"] for q in (_parts(u)[1] for u in urls) if "sslrootcert" in q}
    if len(roots) > 1:
        raise UserError("sqlalchemy+asyncpg: these URLs name different CA bundles and PGSSLROOTCERT holds one; "
                        "print one database at a time")
    return [(CA_ENV_VAR, root) for root in roots]


def driver_note(driver: str, urls: list[str]) -> list[str]:
    """Comment lines a .env needs for this driver (never a secret)."""
    return [f"# sqlalchemy+asyncpg: the URL cannot carry sslrootcert; export {k}={v}" for k, v in driver_env(driver, urls)]

"""One database URL in the form each client driver accepts, TLS kept on (`env --driver`).

The stack's URLs are libpq URIs (`postgresql://user[:password]@host:port/db?sslmode=...`).
What each driver does with one, read in its source:

- libpq, psycopg (2 and 3): the URI as it is; psycopg hands it to libpq's PQconninfoParse.
- asyncpg (`asyncpg.connect(dsn)`): its own parser (asyncpg/connect_utils.py
  `_parse_connect_dsn_and_args`) accepts only the `postgresql`/`postgres` schemes and reads
  `sslmode`, `sslrootcert` from the query; any other query key becomes a *server setting*.
  So the libpq URI is right as it is.
- SQLAlchemy + asyncpg (`postgresql+asyncpg://`): the dialect passes the query as keyword
  arguments to `asyncpg.connect()`, which has `ssl` and no `sslmode`/`sslrootcert`: the URL
  carries `ssl=<mode>`, and the CA bundle goes in `PGSSLROOTCERT` (asyncpg reads it when
  no sslrootcert is given).
- SQLAlchemy + psycopg (`postgresql+psycopg://`): the query reaches libpq unchanged.
- JDBC (pgjdbc): `jdbc:postgresql://host:port/db?...`; the authority holds host and port
  only (Driver.parseURL), so user and password are query parameters, percent-encoded
  (pgjdbc 42.x decodes values with java.net.URLDecoder, which turns `+` into a space:
  `+` must be `%2B`); `sslmode` and `sslrootcert` are pgjdbc properties of the same name.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .errors import UserError

DRIVERS = ("libpq", "psycopg", "asyncpg", "sqlalchemy+asyncpg", "sqlalchemy+psycopg", "jdbc")
DEFAULT_DRIVER = "libpq"


def _parts(url: str) -> tuple:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise UserError("a URL in the outputs is not a postgresql:// URL; is the stack current?")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if query.get("sslmode", "disable") in ("disable", "allow", "prefer"):
        raise UserError("a URL in the outputs does not require TLS (sslmode); regenerate the outputs from a current stack")
    return parts, query


def driver_url(url: str, driver: str) -> str:
    """`url` (a libpq URI from the outputs) for `driver`, TLS as strict as the original."""
    if driver not in DRIVERS:
        raise UserError(f"--driver {driver!r}: one of {', '.join(DRIVERS)}")
    if driver == DEFAULT_DRIVER:
        return url  # today's URLs, unchanged
    parts, query = _parts(url)
    if driver in ("psycopg", "asyncpg"):
        return url
    if driver == "sqlalchemy+psycopg":
        return "postgresql+psycopg" + url[len(parts.scheme):]
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


def driver_note(driver: str, urls: list[str]) -> list[str]:
    """Comment lines a .env needs for this driver (never a secret)."""
    if driver != "sqlalchemy+asyncpg":
        return []
    roots = sorted({q["sslrootcert"] for q in (_parts(u)[1] for u in urls) if "sslrootcert" in q})
    return [f"# sqlalchemy+asyncpg: the URL cannot carry sslrootcert; export PGSSLROOTCERT={r}" for r in roots]

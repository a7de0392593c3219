"""`env --driver`: each driver's URL read back by that driver's own parser (psycopg/libpq,
asyncpg, SQLAlchemy's asyncpg and psycopg dialects); JDBC by pgjdbc's rules (no JVM here).

The connections themselves, over TLS to a real server, are in tests/postgres/test_operate.py."""

from __future__ import annotations

import inspect
import json
import ssl
from urllib.parse import quote, unquote_plus

import asyncpg
import pytest
from asyncpg import connect_utils
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy.engine import make_url

from bulkhead.cli import main
from bulkhead.drivers import BINDS_CHANNEL, DRIVERS, driver_url
from bulkhead.offline.mock_runtime import exports_plain

HOSTILE = "p@ss:w/rd?&=+ %'\"ü#"
CA = "/etc/ssl/certs/ca-certificates.crt"  # any PEM bundle that exists; asyncpg loads it
DOCKER = f"postgresql://auth:{quote(HOSTILE, safe='')}@127.0.0.1:5433/auth?sslmode=require"
AWS = f"postgresql://app_service@prod-app.x.eu-west-1.rds.amazonaws.com:5432/app?sslmode=verify-full&sslrootcert={CA}"
URLS = {
    "docker": (DOCKER, {"user": "auth", "password": HOSTILE, "host": "127.0.0.1", "port": 5433, "db": "auth",
                        "sslmode": "require", "sslrootcert": None}),
    "aws": (AWS, {"user": "app_service", "password": None, "host": "prod-app.x.eu-west-1.rds.amazonaws.com",
                  "port": 5432, "db": "app", "sslmode": "verify-full", "sslrootcert": CA}),
}


def _libpq(url: str) -> dict:
    d = conninfo_to_dict(url)
    return {"user": d.get("user"), "password": d.get("password"), "host": d.get("host"), "port": int(d["port"]),
            "db": d.get("dbname"), "sslmode": d.get("sslmode"), "sslrootcert": d.get("sslrootcert")}


def _asyncpg(url: str = None, **kwargs) -> dict:
    defaults = dict(dsn=url, host=None, port=None, user=None, password=None, passfile=None, database=None, ssl=None,
                    direct_tls=None, server_settings=None, target_session_attrs=None, krbsrvname=None, gsslib=None)
    addrs, params = connect_utils._parse_connect_dsn_and_args(**{**defaults, **kwargs})
    # an unknown query key would have become a server setting: none may
    assert not params.server_settings, params.server_settings
    assert isinstance(params.ssl, ssl.SSLContext)  # TLS on
    (host, port), = addrs
    return {"user": params.user, "password": params.password, "host": host, "port": port, "db": params.database,
            "sslmode": params.sslmode.name.replace("_", "-"), "check_hostname": params.ssl.check_hostname}


def _sqlalchemy_asyncpg(url: str) -> dict:
    parsed = make_url(url)
    dialect = parsed.get_dialect()()
    args, kwargs = dialect.create_connect_args(parsed)
    inspect.signature(asyncpg.connect).bind(*args, **kwargs)  # raises on a keyword asyncpg.connect lacks
    kwargs = dict(kwargs)
    kwargs["database"] = kwargs.pop("database", None)
    return _asyncpg(**kwargs)


def _sqlalchemy_psycopg(url: str) -> dict:
    parsed = make_url(url)
    assert parsed.get_dialect().driver == "psycopg"
    _, kwargs = parsed.get_dialect()().create_connect_args(parsed)
    return _libpq(make_conninfo(**{k: str(v) for k, v in kwargs.items()}))


def _jdbc(url: str) -> dict:
    """pgjdbc's Driver.parseURL: `jdbc:postgresql://host:port/db?k=v&...`, values URL-decoded (URLDecoder)."""
    assert url.startswith("jdbc:postgresql://")
    server, _, args = url[len("jdbc:postgresql://"):].partition("?")
    hostport, _, db = server.partition("/")
    assert "@" not in hostport  # pgjdbc reads no user info from the authority
    host, _, port = hostport.rpartition(":")
    props = {}
    for token in args.split("&"):
        key, _, value = token.partition("=")
        props[key] = unquote_plus(value)
    return {"user": props.get("user"), "password": props.get("password"), "host": host, "port": int(port),
            "db": db, "sslmode": props.get("sslmode"), "sslrootcert": props.get("sslrootcert")}


PARSERS = {
    "libpq": _libpq,
    "psycopg": _libpq,
    "asyncpg": _asyncpg,
    "sqlalchemy+asyncpg": _sqlalchemy_asyncpg,
    "sqlalchemy+psycopg": _sqlalchemy_psycopg,
    "jdbc": _jdbc,
    # node-postgres's pg-connection-string reads a libpq URI (run for real in tests/docker/test_clients.py)
    "node": _libpq,
}


def test_every_driver_has_a_parser():
    assert set(PARSERS) == set(DRIVERS)


@pytest.mark.parametrize("platform", sorted(URLS))
@pytest.mark.parametrize("driver", DRIVERS)
def test_driver_parser_reads_back_the_connection_with_tls(driver, platform, monkeypatch):
    url, want = URLS[platform]
    monkeypatch.setenv("PGSSLROOTCERT", CA)  # what the sqlalchemy+asyncpg note tells users to export
    got = PARSERS[driver](driver_url(url, driver))
    for key in ("user", "password", "host", "port", "db", "sslmode"):
        assert got[key] == want[key], (driver, key)
    if "sslrootcert" in got:
        assert got["sslrootcert"] == want["sslrootcert"]
    if "check_hostname" in got:  # asyncpg: verify-full verifies the host name, require does not
        assert got["check_hostname"] is (want["sslmode"] == "verify-full")


def test_asyncpg_dialect_needs_ssl_not_sslmode():
    """Why sqlalchemy+asyncpg rewrites the query: with `sslmode` the dialect's kwargs do not fit asyncpg.connect."""
    parsed = make_url(DOCKER.replace("postgresql://", "postgresql+asyncpg://"))
    _, kwargs = parsed.get_dialect()().create_connect_args(parsed)
    with pytest.raises(TypeError, match="sslmode"):
        inspect.signature(asyncpg.connect).bind(**kwargs)


@pytest.mark.parametrize("url, fragment", [
    ("postgresql://a:b@h:1/d?sslmode=disable", "does not require TLS"),
    ("postgresql://a:b@h:1/d", "does not require TLS"),
    ("mysql://a:b@h:1/d?sslmode=require", "not a postgresql:// URL"),
])
def test_urls_without_tls_are_refused_for_other_drivers(url, fragment, capsys):
    from bulkhead.errors import UserError

    with pytest.raises(UserError, match=fragment) as exc:
        driver_url(url, "jdbc")
    assert "b@" not in str(exc.value)  # never the password
    assert driver_url(url, "libpq") == url  # today's URLs unchanged


def _one_database_outputs(tmp_path, name: str, platform: str, url: str) -> str:
    outputs = {"databases": {name: {"owner": f"{name}-service", "platform": platform,
                                    "env_var": f"{name.upper()}_DATABASE_URL", "url": url}}}
    path = tmp_path / "out.json"
    path.write_text(json.dumps(outputs))
    return path


def test_env_refuses_a_url_it_cannot_verify(tmp_path, capsys):
    """Docker outputs without the container's CA (written before per-container CAs): a client that does
    not bind the channel would have nothing authenticating the server, so `env` refuses (exit 2)."""
    path = _one_database_outputs(tmp_path, "auth", "docker", DOCKER)
    assert main(["env", "--outputs", str(path), "--driver", "jdbc"]) == 2
    assert "no `ca_cert`" in capsys.readouterr().err
    # libpq binds the channel (channel_binding=require): its URL is still printed.
    assert main(["env", "--outputs", str(path), "--driver", "libpq"]) == 0


def test_env_driver_flag(tmp_path, capsys, dev_run, monkeypatch):
    path = _one_database_outputs(tmp_path, "auth", "docker", DOCKER)
    outputs = json.loads(path.read_text())
    outputs["databases"]["auth"]["ca_cert"] = exports_plain(dev_run.exports)["databases"]["auth"]["ca_cert"]
    path.write_text(json.dumps(outputs))
    monkeypatch.chdir(tmp_path)
    assert main(["env", "--outputs", str(path), "--driver", "jdbc"]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split("=", 1) for line in out.splitlines() if not line.startswith("#"))
    assert set(lines) == {"AUTH_DATABASE_URL", "DATABASE_URL"}
    assert _jdbc(lines["AUTH_DATABASE_URL"].strip("'\""))["password"] == HOSTILE
    with pytest.raises(SystemExit):
        main(["env", "--outputs", str(path), "--driver", "odbc"])
    assert "invalid choice: 'odbc'" in capsys.readouterr().err


def test_sqlalchemy_asyncpg_note_names_the_ca_bundle(tmp_path, capsys):
    path = _one_database_outputs(tmp_path, "app", "aws", AWS)
    assert main(["env", "--outputs", str(path), "--driver", "sqlalchemy+asyncpg"]) == 0
    out = capsys.readouterr().out
    assert f"export PGSSLROOTCERT={CA}" in out and "?ssl=verify-full'" in out


# ---------------------------------------------------------------- from the program's real outputs


def _env_lines(out: str) -> dict:
    return {k: v.strip("'") for k, v in (line.split("=", 1) for line in out.splitlines() if line and not line.startswith("#"))}


@pytest.mark.parametrize("database", ["auth", "billing"])  # an own container, a shared server
@pytest.mark.parametrize("driver", DRIVERS)
def test_env_from_the_programs_outputs_verifies_the_server(dev_run, driver, database, tmp_path, capsys, monkeypatch):
    """What `env --driver X` prints for the outputs the dev program produces (not a URL made by hand):
    each driver's own parser reads verify-full with the CA `env` wrote, no unknown key (asyncpg would
    send `channel_binding` as a server setting and fail), channel binding where the client enforces it."""
    outputs = exports_plain(dev_run.exports)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    db = outputs["databases"][database]
    assert "channel_binding=require" in db["url"]  # what broke asyncpg before
    monkeypatch.chdir(tmp_path)
    assert main(["env", "--outputs", str(path), "--service", db["owner"], "--driver", driver, "--ca-dir", "ca"]) == 0
    lines = _env_lines(capsys.readouterr().out)
    ca_file = str(tmp_path / "ca" / f"{database}-ca.pem")
    assert (tmp_path / "ca" / f"{database}-ca.pem").read_text().strip() == db["ca_cert"].strip()
    if driver == "sqlalchemy+asyncpg":
        assert lines.pop("PGSSLROOTCERT") == ca_file
        monkeypatch.setenv("PGSSLROOTCERT", ca_file)
    url = lines[db["env_var"]]
    got = PARSERS[driver](url)
    assert (got["user"], got["db"], got["host"], got["port"]) == (database, database, "127.0.0.1", db["port"])
    assert got["sslmode"] == "verify-full"
    assert got.get("sslrootcert", ca_file) == ca_file
    if "check_hostname" in got:
        assert got["check_hostname"] is True
    assert ("channel_binding=require" in url) is (driver in BINDS_CHANNEL)
    if driver == "jdbc":
        assert "channelBinding" not in url  # Debian 12's pgjdbc 42.5.5 has no such property


def test_env_internal_and_ca_mount_for_a_container(dev_run, tmp_path, capsys, monkeypatch):
    outputs = exports_plain(dev_run.exports)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    monkeypatch.chdir(tmp_path)
    assert main(["env", "--outputs", str(path), "--service", "auth-service", "--internal", "--driver", "node",
                 "--ca-mount", "/run/bulkhead-ca"]) == 0
    lines = _env_lines(capsys.readouterr().out)
    got = _libpq(lines["AUTH_DATABASE_URL"])
    assert (got["host"], got["port"], got["sslrootcert"]) == ("auth", 5432, "/run/bulkhead-ca/auth-ca.pem")
    assert (tmp_path / "auth-ca.pem").exists()


def test_docker_format_is_unquoted_and_dotenv_quoted(dev_run, tmp_path, capsys, monkeypatch):
    outputs = exports_plain(dev_run.exports)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    monkeypatch.chdir(tmp_path)
    assert main(["env", "--outputs", str(path), "--service", "auth-service", "--format", "docker"]) == 0
    raw = [line for line in capsys.readouterr().out.splitlines() if line.startswith("AUTH_DATABASE_URL=")]
    assert raw and raw[0].startswith("AUTH_DATABASE_URL=postgresql://") and "'" not in raw[0]
    assert main(["env", "--outputs", str(path), "--service", "auth-service"]) == 0
    quoted = [line for line in capsys.readouterr().out.splitlines() if line.startswith("AUTH_DATABASE_URL=")]
    assert quoted[0] == raw[0].replace("=", "='", 1) + "'"

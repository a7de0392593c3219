"""`env` and `dsn` on output files of both example stacks (what `pulumi stack output --json --show-secrets` prints)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

from bulkhead import connection
from bulkhead.commands import env as env_cmd
from bulkhead.cli import main
from bulkhead.drivers import driver_url
from bulkhead.offline.mock_runtime import exports_plain

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "eu-west-1"


@pytest.fixture
def dev_outputs(dev_run, tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(exports_plain(dev_run.exports)))
    return str(path), exports_plain(dev_run.exports)


@pytest.fixture
def prod_outputs(prod_run, tmp_path):
    path = tmp_path / "prod.json"
    path.write_text(json.dumps(exports_plain(prod_run.exports)))
    return str(path), exports_plain(prod_run.exports)


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def parse_dotenv(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, raw = line.partition("=")
        assert raw[0] == raw[-1] and raw[0] in "'\"", line
        values[key] = raw[1:-1]
    return values


def _verified(url: str, ca_file) -> str:
    """The outputs' URL as `env` prints it: the server verified with the CA it wrote (bulkhead/drivers.py)."""
    return driver_url(url, "libpq", str(ca_file))


def test_env_dev_single_database_service(dev_outputs, dev_run, capsys, tmp_path):
    path, outputs = dev_outputs
    code, out, err = cli(capsys, "env", "--stack", "dev", "--service", "app-service", "--outputs", path,
                         "--ca-dir", str(tmp_path))
    assert code == 0 and err == ""
    env = parse_dotenv(out)
    app = outputs["databases"]["app"]
    url = _verified(app["url"], tmp_path / "app-ca.pem")
    assert env == {"APP_DATABASE_URL": url, "DATABASE_URL": url}
    # Only app's password: no other database's secret is printed.
    others = {d["password"] for n, d in outputs["databases"].items() if n != "app"}
    assert app["password"] in out and not any(pw in out for pw in others)


def test_env_reads_back_with_a_shell(dev_outputs, capsys, tmp_path):
    path, outputs = dev_outputs
    code, out, _ = cli(capsys, "env", "--stack", "dev", "--service", "billing-service", "--outputs", path,
                       "--ca-dir", str(tmp_path))
    envfile = tmp_path / ".env"
    envfile.write_text(out)
    shown = subprocess.run(["sh", "-c", f"set -a; . {envfile}; printf %s \"$BILLING_DATABASE_URL\""],
                           capture_output=True, text=True, check=True).stdout
    assert shown == _verified(outputs["databases"]["billing"]["url"], tmp_path / "billing-ca.pem")


def test_env_internal_urls_for_containers(dev_outputs, capsys, tmp_path):
    path, outputs = dev_outputs
    code, out, _ = cli(capsys, "env", "--stack", "dev", "--service", "auth-service", "--internal", "--outputs", path,
                       "--ca-dir", str(tmp_path), "--ca-mount", "/ca")
    assert code == 0
    assert parse_dotenv(out)["AUTH_DATABASE_URL"] == _verified(outputs["databases"]["auth"]["internal_url"],
                                                               "/ca/auth-ca.pem")


def test_env_without_service_on_multi_service_stack_is_refused(dev_outputs, dev_run, capsys):
    path, outputs = dev_outputs
    code, out, err = cli(capsys, "env", "--stack", "dev", "--outputs", path)
    assert code == 2 and out == ""
    assert "--service is required" in err and "app-service" in err
    assert not any(s in err for s in dev_run.secret_values)


def test_env_unknown_service(dev_outputs, capsys):
    path, _ = dev_outputs
    code, out, err = cli(capsys, "env", "--stack", "dev", "--service", "nobody", "--outputs", path)
    assert code == 2 and out == "" and "owns no database" in err


def test_env_prod_has_no_password(prod_outputs, capsys):
    path, outputs = prod_outputs
    code, out, _ = cli(capsys, "env", "--stack", "prod", "--service", "auth-service", "--outputs", path)
    assert code == 0
    env = parse_dotenv(out)
    assert env["AUTH_DATABASE_URL"] == outputs["databases"]["auth"]["url"] == env["DATABASE_URL"]
    assert urlsplit(env["AUTH_DATABASE_URL"]).password is None
    assert urlsplit(env["AUTH_DATABASE_URL"]).username == "auth"
    assert "generate_db_auth_token" in out and "IAM token" in out


@pytest.mark.parametrize("with_services", [True, False], ids=["services-output", "no-services-output"])
def test_env_multi_database_service_has_no_database_url(dev_run, tmp_path, capsys, with_services):
    outputs = exports_plain(dev_run.exports)
    dbs = outputs["databases"]
    dbs["worker"]["owner"] = "app-service"  # app-service owns app and worker
    if with_services:  # what the stack would export for that catalogue
        del outputs["services"]["worker-service"]
        outputs["services"]["app-service"] = {"databases": ["app", "worker"], "env": {
            "APP_DATABASE_URL": dbs["app"]["url"], "WORKER_DATABASE_URL": dbs["worker"]["url"]}}
    else:  # outputs of a stack from before the `services` output: built from `databases`
        del outputs["services"]
    path = tmp_path / "o.json"
    path.write_text(json.dumps(outputs))
    code, out, _ = cli(capsys, "env", "--stack", "dev", "--service", "app-service", "--outputs", str(path),
                       "--ca-dir", str(tmp_path))
    assert code == 0 and set(parse_dotenv(out)) == {"APP_DATABASE_URL", "WORKER_DATABASE_URL"}
    # one CA file per database, each with only its own container's CA (a client of app must not trust
    # worker's container: docs/connecting.md "One CA file per database")
    for name in ("app", "worker"):
        ca = (tmp_path / f"{name}-ca.pem").read_text()
        assert ca.count("BEGIN CERTIFICATE") == 1 and ca.strip() == dbs[name]["ca_cert"].strip()
        assert f"sslrootcert={tmp_path / name}-ca.pem" in parse_dotenv(out)[f"{name.upper()}_DATABASE_URL"]
    assert dbs["app"]["ca_cert"] != dbs["worker"]["ca_cert"]
    assert not (tmp_path / "app-service-ca.pem").exists()


def test_env_reads_the_services_output(dev_run, tmp_path, capsys):
    """`services.<owner>.env` is the source of truth (components/outputs.py), not a re-derivation."""
    outputs = exports_plain(dev_run.exports)
    outputs["services"]["app-service"]["env"] = {"APP_DATABASE_URL": "postgresql://u:p@h:1/app", "EXTRA_URL": "x"}
    path = tmp_path / "o.json"
    path.write_text(json.dumps(outputs))
    code, out, _ = cli(capsys, "env", "--stack", "dev", "--service", "app-service", "--outputs", str(path),
                       "--ca-dir", str(tmp_path))
    assert code == 0 and parse_dotenv(out) == {"APP_DATABASE_URL": "postgresql://u:p@h:1/app", "EXTRA_URL": "x"}
    # services come from the `services` output too
    code, _, err = cli(capsys, "env", "--stack", "dev", "--service", "nobody", "--outputs", str(path))
    assert code == 2 and "owns no database" in err and "worker-service" in err


@pytest.mark.parametrize("services, fragment", [
    (["app-service"], "`services` output is not a map"),
    ({"app-service": "x"}, "`services` output is not a map"),
    ({"app-service": {"databases": ["app"]}}, "services.app-service.env"),
    ({"app-service": {"env": {"not a name": "u"}}}, "not a variable name"),
    ({"app-service": {"env": {"APP_DATABASE_URL": 5}}}, "services.app-service.env.APP_DATABASE_URL"),
    ({"app-service": {"env": {"APP_DATABASE_URL": "[secret]"}}}, "--show-secrets"),
])
def test_env_bad_services_output_is_a_clear_error(dev_run, tmp_path, capsys, services, fragment):
    outputs = exports_plain(dev_run.exports)
    outputs["services"] = services
    path = tmp_path / "o.json"
    path.write_text(json.dumps(outputs))
    code, out, err = cli(capsys, "env", "--stack", "dev", "--service", "app-service", "--outputs", str(path))
    assert code == 2 and out == "" and fragment in err and "Traceback" not in err
    assert not any(s in err for s in dev_run.secret_values)


def test_env_and_dsn_start_without_heavy_imports():
    """`env`/`dsn` build only their own parser: no pulumi, grpc, pydantic, boto3 or policy pack."""
    code = ("import sys; from bulkhead.cli import build_parser; build_parser('env'); build_parser('dsn'); "
            "heavy = {'pulumi', 'pulumi_policy', 'grpc', 'pydantic', 'boto3', 'botocore', 'components', 'bulkhead_policies'}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_help_lists_every_verb(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(verb in out for verb in ("plan", "check", "audit", "env", "dsn"))


def test_dotenv_quoting():
    assert env_cmd.dotenv_quote("a$b") == "'a$b'"
    assert env_cmd.dotenv_quote("it's") == '"it\'s"'
    assert env_cmd.dotenv_quote("x'\"$`\\") == '"x\'\\"\\$\\`\\\\"'


def test_dsn_dev_verifies_the_server_with_its_own_containers_ca(dev_outputs, capsys, tmp_path, monkeypatch):
    """dsn on docker: the outputs' url made verify-full with the CA of the database's own container
    (a file of its own, nothing else in it), channel binding kept; the same URI `env` prints."""
    path, outputs = dev_outputs
    monkeypatch.setenv("BULKHEAD_CA_DIR", str(tmp_path / "cache"))
    code, out, err = cli(capsys, "dsn", "--database", "notify", "--outputs", path)
    assert code == 0 and err == ""
    notify = outputs["databases"]["notify"]
    params = conninfo_to_dict(out.strip())
    assert (params["sslmode"], params["channel_binding"]) == ("verify-full", "require")
    ca = Path(params["sslrootcert"])
    assert ca.parent == tmp_path / "cache" and ca.name.startswith("notify-")
    assert ca.read_text().strip() == notify["ca_cert"].strip()  # only its own container's CA
    assert out.strip() == _verified(notify["url"], ca)
    # the same again: the same file (named by content), not a new one
    assert cli(capsys, "dsn", "--database", "notify", "--outputs", path)[1] == out
    assert len(list((tmp_path / "cache").iterdir())) == 1
    # --ca-dir
    code, out2, _ = cli(capsys, "dsn", "--database", "auth", "--outputs", path, "--ca-dir", str(tmp_path / "mine"))
    assert Path(conninfo_to_dict(out2.strip())["sslrootcert"]).parent == tmp_path / "mine"


def test_dsn_dev_without_ca_cert_warns_and_keeps_channel_binding(dev_outputs, capsys, tmp_path):
    path, outputs = dev_outputs
    del outputs["databases"]["notify"]["ca_cert"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(outputs))
    code, out, err = cli(capsys, "dsn", "--database", "notify", "--outputs", str(old))
    assert code == 0 and out.strip() == outputs["databases"]["notify"]["url"]
    assert "no databases.notify.ca_cert" in err and "pulumi up" in err
    outputs["databases"]["notify"]["ca_cert"] = "not a certificate"
    old.write_text(json.dumps(outputs))
    code, out, err = cli(capsys, "dsn", "--database", "notify", "--outputs", str(old))
    assert code == 2 and out == "" and "databases.notify.ca_cert" in err and "not a PEM certificate" in err


def test_dsn_bad_database_is_exit_2(prod_outputs, capsys):
    path, _ = prod_outputs
    code, out, err = cli(capsys, "dsn", "--database", "nope", "--outputs", path)
    assert code == 2 and out == "" and "no database 'nope'" in err and "app, auth, worker" in err


@pytest.mark.parametrize("platform, key, value, shown", [
    ("aws", "host", None, "databases.auth.host is missing"),
    ("aws", "host", 42, "databases.auth.host is not a non-empty string"),
    ("aws", "port", None, "databases.auth.port is missing"),
    ("aws", "port", "fivefourthreetwo", "databases.auth.port is not a port number"),
    ("aws", "port", True, "databases.auth.port is not a port number"),
    ("aws", "db_name", None, "databases.auth.db_name is missing"),
    ("aws", "db_name", ["auth"], "databases.auth.db_name is not a non-empty string"),
    ("aws", "secret_arn", None, "databases.auth.secret_arn is missing"),
    ("aws", "username", None, "databases.auth.username is missing"),
    ("docker", "url", None, "databases.auth.url is missing"),
])
def test_dsn_incomplete_outputs_name_the_key_and_the_fix(dev_run, prod_run, tmp_path, capsys, platform, key, value, shown):
    run = prod_run if platform == "aws" else dev_run
    outputs = exports_plain(run.exports)
    if value is None:
        del outputs["databases"]["auth"][key]
    else:
        outputs["databases"]["auth"][key] = value
    path = tmp_path / "o.json"
    path.write_text(json.dumps(outputs))
    admin = ["--admin"] if key == "secret_arn" else []  # the master secret is read for --admin only
    code, out, err = cli(capsys, "dsn", "--stack", run.stack, "--database", "auth", "--outputs", str(path), *admin)
    assert code == 2 and out == "" and "Traceback" not in err
    assert shown in err
    assert f"pulumi stack output --json --show-secrets --stack {run.stack} > outputs.json" in err
    assert not any(s in err for s in run.secret_values)


def test_dsn_reader_hosts_of_wrong_type(prod_outputs, tmp_path, capsys):
    _, outputs = prod_outputs
    outputs["databases"]["auth"]["reader_hosts"] = "host-1"
    path = tmp_path / "o.json"
    path.write_text(json.dumps(outputs))
    code, _, err = cli(capsys, "dsn", "--database", "auth", "--reader", "--outputs", str(path))
    assert code == 2 and "databases.auth.reader_hosts is not a list of host names" in err


def test_dsn_reader_without_replicas(prod_outputs, capsys):
    path, _ = prod_outputs
    code, _, err = cli(capsys, "dsn", "--database", "worker", "--reader", "--outputs", path)
    assert code == 2 and "no read replicas" in err


@pytest.fixture
def prod_with_secrets(prod_run, tmp_path, monkeypatch):
    """Prod outputs whose secret ARNs point at moto Secrets Manager secrets shaped like bulkhead's master secrets."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for key, value in (("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST"), ("AWS_SECRET_ACCESS_KEY", "test-secret-key")):
        monkeypatch.setenv(key, value)
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name=REGION)
        outputs = exports_plain(prod_run.exports)
        passwords = {}
        for name, db in outputs["databases"].items():
            pw = f"pw/{name}:with@odd#chars&=?%"
            arn = sm.create_secret(Name=f"bulkhead/prod/{name}/master-1", SecretString=json.dumps({
                "engine": "postgres", "host": db["host"], "port": 5432, "username": "bulkhead_admin", "password": pw,
                "dbname": db["db_name"], "dbInstanceIdentifier": db["instance_identifier"]}))["ARN"]
            db["secret_arn"] = arn
            passwords[name] = pw
        path = tmp_path / "prod.json"
        path.write_text(json.dumps(outputs))
        yield str(path), outputs, passwords, sm


def _token_of(uri) -> dict:
    """The IAM token in a DSN's password: `<host>:<port>/?Action=connect&DBUser=<user>&X-Amz-...`."""
    token = unquote(uri.password)
    where, _, query = token.partition("/?")
    return {"where": where, **{k: v[0] for k, v in parse_qs(query).items()}}


def test_dsn_prod_is_the_service_role_with_an_iam_token(prod_with_secrets, capsys, tmp_path):
    path, outputs, passwords, _ = prod_with_secrets
    bundle = tmp_path / "rds-global-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    code, out, err = cli(capsys, "dsn", "--database", "auth", "--outputs", path, "--ca-bundle", str(bundle))
    assert code == 0 and err == ""
    uri = urlsplit(out.strip())
    db = outputs["databases"]["auth"]
    assert unquote(uri.username) == db["username"] == "auth" and uri.hostname == db["host"] and uri.path == "/auth"
    token = _token_of(uri)
    assert token["where"] == f"{db['host']}:5432" and token["Action"] == "connect" and token["DBUser"] == "auth"
    assert token["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and f"/{REGION}/rds-db/" in token["X-Amz-Credential"]
    assert int(token["X-Amz-Expires"]) == 900 and token["X-Amz-Signature"]
    assert parse_qs(uri.query) == {"sslmode": ["verify-full"], "sslrootcert": [str(bundle)]}
    assert not any(pw in out for pw in passwords.values()), "never the master password"


def test_dsn_prod_reader_token_signs_for_the_replica(prod_with_secrets, capsys, tmp_path):
    path, outputs, _, _ = prod_with_secrets
    readers = outputs["databases"]["auth"]["reader_hosts"]
    code, out, _ = cli(capsys, "dsn", "--database", "auth", "--reader", "2", "--outputs", path, "--ca-bundle", str(tmp_path))
    uri = urlsplit(out.strip())
    assert code == 0 and uri.hostname == readers[1] and _token_of(uri)["where"] == f"{readers[1]}:5432"
    assert unquote(uri.username) == "auth"


def test_dsn_prod_without_aws_credentials_is_clear(prod_with_secrets, capsys, monkeypatch, tmp_path):
    path, _, _, _ = prod_with_secrets
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, out, err = cli(capsys, "dsn", "--database", "auth", "--outputs", path)
    assert code == 2 and out == "" and "no AWS credentials" in err and "Traceback" not in err


def test_dsn_admin_is_the_master_with_a_break_glass_warning(prod_with_secrets, capsys, tmp_path):
    path, outputs, passwords, _ = prod_with_secrets
    bundle = tmp_path / "rds-global-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    code, out, err = cli(capsys, "dsn", "--database", "auth", "--outputs", path, "--ca-bundle", str(bundle), "--admin")
    assert code == 0 and "break-glass" in err and passwords["auth"] not in err
    uri = urlsplit(out.strip())
    assert uri.scheme == "postgresql" and uri.hostname == outputs["databases"]["auth"]["host"] and uri.port == 5432
    assert unquote(uri.username) == "bulkhead_admin" and unquote(uri.password) == passwords["auth"]
    assert uri.path == "/auth"
    query = parse_qs(uri.query)
    assert query == {"sslmode": ["verify-full"], "sslrootcert": [str(bundle)]}
    # only auth's password
    assert not any(pw in out for n, pw in passwords.items() if n != "auth")


def test_dsn_prod_reader(prod_with_secrets, capsys, tmp_path):
    path, outputs, passwords, _ = prod_with_secrets
    code, out, _ = cli(capsys, "dsn", "--database", "auth", "--reader", "--outputs", path, "--ca-bundle", str(tmp_path), "--admin")
    assert code == 0 and urlsplit(out.strip()).hostname == outputs["databases"]["auth"]["reader_hosts"][0]
    code, out, _ = cli(capsys, "dsn", "--database", "auth", "--reader", "2", "--outputs", path, "--ca-bundle", str(tmp_path), "--admin")
    assert code == 0 and urlsplit(out.strip()).hostname == outputs["databases"]["auth"]["reader_hosts"][1]
    code, out, err = cli(capsys, "dsn", "--database", "auth", "--reader", "3", "--outputs", path)
    assert code == 2 and "has 2 replica(s)" in err


def test_dsn_default_ca_bundle_and_warning(prod_with_secrets, capsys, monkeypatch, tmp_path):
    path, _, passwords, _ = prod_with_secrets
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("BULKHEAD_RDS_CA_BUNDLE", raising=False)
    # the default is read when the parser is built
    code, out, err = cli(capsys, "dsn", "--database", "app", "--outputs", path)
    assert code == 0
    assert parse_qs(urlsplit(out.strip()).query)["sslrootcert"] == [str(tmp_path / ".postgresql" / "rds-global-bundle.pem")]
    assert "does not exist" in err and connection.CA_BUNDLE_URL in err
    assert passwords["app"] not in err


def test_dsn_missing_secret_is_clear(prod_with_secrets, capsys):
    path, outputs, passwords, sm = prod_with_secrets
    sm.delete_secret(SecretId=outputs["databases"]["app"]["secret_arn"], ForceDeleteWithoutRecovery=True)
    code, out, err = cli(capsys, "dsn", "--database", "app", "--outputs", path, "--admin")
    assert code == 2 and out == "" and "does not exist" in err and "Traceback" not in err


def test_dsn_not_a_master_secret_does_not_echo_it(prod_with_secrets, capsys):
    path, outputs, passwords, sm = prod_with_secrets
    sm.put_secret_value(SecretId=outputs["databases"]["app"]["secret_arn"], SecretString="hunter2-plaintext")
    code, out, err = cli(capsys, "dsn", "--database", "app", "--outputs", path, "--admin")
    assert code == 2 and "hunter2" not in out + err


def test_outputs_hidden_secrets_are_refused(dev_run, tmp_path, capsys):
    outputs = exports_plain(dev_run.exports)
    for db in outputs["databases"].values():
        db["url"] = db["password"] = "[secret]"
    path = tmp_path / "o.json"
    path.write_text(json.dumps(outputs))
    code, _, err = cli(capsys, "env", "--stack", "dev", "--service", "app-service", "--outputs", str(path))
    assert code == 2 and "--show-secrets" in err


def test_invalid_json_message_has_no_content(tmp_path, capsys):
    path = tmp_path / "o.json"
    path.write_text('{"databases": {"app": {"password": "s3cr3t-value-xyz" ')
    code, _, err = cli(capsys, "dsn", "--database", "app", "--outputs", str(path))
    assert code == 2 and "not JSON" in err and "s3cr3t" not in err


def test_without_outputs_and_cli_says_how(capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    code, _, err = cli(capsys, "env", "--stack", "dev", "--service", "app-service")
    assert code == 2 and "pulumi stack output --json --show-secrets --stack dev > outputs.json" in err


def test_with_pulumi_cli(dev_run, tmp_path, capsys, monkeypatch):
    """Without --outputs, the verbs run `pulumi stack output --json --show-secrets --stack S`."""
    outputs = tmp_path / "o.json"
    outputs.write_text(json.dumps(exports_plain(dev_run.exports)))
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ncat {outputs}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    code, out, _ = cli(capsys, "env", "--stack", "dev", "--service", "worker-service",
                       "--ca-dir", str(tmp_path))
    assert code == 0 and "WORKER_DATABASE_URL=" in out
    assert (tmp_path / "args").read_text().split() == ["stack", "output", "--json", "--show-secrets", "--non-interactive", "--stack", "dev"]
    fake.write_text("#!/bin/sh\necho 'error: no stack named dev found' >&2\nexit 255\n")
    code, out, err = cli(capsys, "env", "--stack", "dev", "--service", "worker-service")
    assert code == 2 and "no stack named dev found" in err


LOGIN_PW = "login/pw:with@odd#chars&=?%"


@pytest.fixture
def prod_password(prod_with_secrets):
    """`app` with auth: password: its login secret in moto, its ARN in the outputs."""
    path, outputs, passwords, sm = prod_with_secrets
    db = outputs["databases"]["app"]
    db["auth"] = "password"
    db["login_secret_arn"] = sm.create_secret(Name="bulkhead/prod/app/login-1", SecretString=json.dumps(
        {"engine": "postgres", "host": db["host"], "port": 5432, "username": "app", "password": LOGIN_PW,
         "dbname": "app"}))["ARN"]
    with open(path, "w") as handle:
        json.dump(outputs, handle)
    return path, outputs, passwords


def test_dsn_auth_password_is_the_service_role_with_its_login_password(prod_password, capsys, tmp_path):
    path, outputs, passwords = prod_password
    code, out, err = cli(capsys, "dsn", "--database", "app", "--outputs", path, "--ca-bundle", str(tmp_path))
    uri = urlsplit(out.strip())
    assert code == 0 and unquote(uri.username) == "app" and unquote(uri.password) == LOGIN_PW
    assert "X-Amz" not in out and passwords["app"] not in out, "neither a token nor the master's password"
    # --admin is still the master's
    code, out, _ = cli(capsys, "dsn", "--database", "app", "--admin", "--outputs", path, "--ca-bundle", str(tmp_path))
    assert code == 0 and unquote(urlsplit(out.strip()).password) == passwords["app"]


def test_env_auth_password_carries_the_login_password_iam_databases_none(prod_password, capsys):
    path, outputs, passwords = prod_password
    code, out, err = cli(capsys, "env", "--service", "app-service", "--outputs", path)
    assert code == 0, err
    line = next(v for v in out.splitlines() if v.startswith(outputs["databases"]["app"]["env_var"] + "="))
    value = line.split("=", 1)[1].strip("'\"")
    assert unquote(urlsplit(value).password) == LOGIN_PW and passwords["app"] not in out
    code, out, _ = cli(capsys, "env", "--service", "auth-service", "--outputs", path)
    assert code == 0 and urlsplit(next(v for v in out.splitlines() if v.startswith("DATABASE_URL=")).split(
        "=", 1)[1].strip("'\"")).password is None


def test_dsn_auth_password_without_login_secret_is_clear(prod_password, capsys, tmp_path):
    path, outputs, _ = prod_password
    del outputs["databases"]["app"]["login_secret_arn"]
    with open(path, "w") as handle:
        json.dump(outputs, handle)
    code, out, err = cli(capsys, "dsn", "--database", "app", "--outputs", path)
    assert code == 2 and "databases.app.login_secret_arn is missing" in err and "Traceback" not in err


def test_dsn_dev_never_reuses_a_ca_file_it_does_not_own_alone(tmp_path):
    """Review of issue 18: dev_ca_file reused whatever sat at `<db>-<hash>-ca.pem` with the right
    content, symlinks included. A link whose target someone else can rewrite (a shared
    $BULKHEAD_CA_DIR, a file in /tmp) passes the content check and is swapped afterwards: libpq then
    verifies the server against that person's CA. Now only a regular file of ours, writable by us
    alone, is reused; anything else is replaced by our own file (os.replace swaps the link itself)."""
    import stat

    from bulkhead.connection import dev_ca_file

    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    db = {"ca_cert": pem}
    first = dev_ca_file("auth", db, str(tmp_path))
    target = tmp_path / "elsewhere.pem"
    target.write_text(pem)
    target.chmod(0o666)  # another user's, or anyone's, to rewrite later
    os.unlink(first)
    os.symlink(target, first)
    again = dev_ca_file("auth", db, str(tmp_path))
    assert again == first
    st = os.lstat(again)
    assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o022 == 0, "a symlink to someone else's file was reused"
    # a regular file of ours, but writable by others: replaced too
    os.chmod(again, 0o666)
    dev_ca_file("auth", db, str(tmp_path))
    assert os.lstat(again).st_mode & 0o022 == 0
    # ours, unchanged: reused as is (no rewrite, same inode)
    inode = os.lstat(again).st_ino
    assert dev_ca_file("auth", db, str(tmp_path)) == again and os.lstat(again).st_ino == inode

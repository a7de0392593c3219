"""The one place a connection string is computed from the stack's outputs: `dsn` prints it,
the day-2 verbs (psql, reset, dump, restore, split) connect with it.

On docker it is the outputs' own `url`, made to verify the server (`sslmode=verify-full`) with the
CA of the database's own container (its `ca_cert` output, written to a file of its own:
`dev_ca_file`), channel binding kept. On aws it logs in as the service's own role with a
fresh IAM token (boto3 generate_db_auth_token, valid 15 minutes), or with `admin` as the
break-glass master from the database's secret, and verifies the server against the RDS CA bundle.
Nothing here puts a password in an error message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
import tempfile
from typing import Optional
from urllib.parse import quote, urlencode

from bulkhead.aws_errors import aws_user_error, client, error_code, is_not_found, session
from bulkhead.errors import UserError
from bulkhead.outputs_source import database, how_to_get

DEFAULT_CA_BUNDLE = "~/.postgresql/rds-global-bundle.pem"
CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


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


def login_credentials(name: str, db: dict, region: str | None = None, stack: str | None = None) -> tuple[str, str]:
    """auth password: (role, password) from the database's login secret (`login_secret_arn`)."""
    arn = db.get("login_secret_arn")
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        raise UserError(f"databases.{name}.login_secret_arn is missing from the outputs (auth password); is the "
                        f"stack current? Regenerate the file: {how_to_get(stack)}")
    secret = fetch_master_secret(arn, region)
    return _field(name, db, "username", "str", stack), secret["password"]


def password_url(name: str, db: dict, region: str | None = None, stack: str | None = None) -> str:
    """auth password: the outputs' `url` (no password in it) with the login secret's password."""
    from urllib.parse import urlsplit, urlunsplit

    user, password = login_credentials(name, db, region, stack)
    parts = urlsplit(_field(name, db, "url", "str", stack))
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


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




def dev_ca_pem(name: str, db: dict) -> str | None:
    """databases.<name>.ca_cert: the CA of the container holding `name` (docker), checked; None for
    outputs without it (aws, stacks from before per-container CAs)."""
    pem = db.get("ca_cert")
    if pem is None:
        return None
    if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
        raise UserError(f"databases.{name}.ca_cert in the outputs is not a PEM certificate; regenerate the outputs")
    return pem.strip() + "\n"


def write_ca_file(pem: str, path: str, flag: str = "--ca-dir") -> str:
    """Write one CA file (atomically: a reader never sees half of it); return its absolute path."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ca-")
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(pem)
        os.chmod(tmp, 0o644)  # a CA certificate is public; the client (maybe another user in a container) reads it
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"{flag} {directory}: cannot write {os.path.basename(path)} ({exc.strerror}); "
                        f"pass a writable directory") from None
    return os.path.abspath(path)


def default_ca_dir() -> str:
    """Where `dsn`/`psql` keep dev CA files: $BULKHEAD_CA_DIR, else the user's cache directory."""
    given = os.environ.get("BULKHEAD_CA_DIR")
    if given:
        return os.path.expanduser(given)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "bulkhead", "ca")


def dev_ca_file(name: str, db: dict, ca_dir: Optional[str] = None) -> str | None:
    """The CA file of dev database `name`, only its own container's CA in it (a client of database A
    must not trust database B's CA: docs/connecting.md). Named by database and content
    (`<name>-<sha256>.pem`), so stacks with the same database name, or a CA that changed, never share
    a file or overwrite one a running client reads."""
    pem = dev_ca_pem(name, db)
    if pem is None:
        return None
    directory = ca_dir or default_ca_dir()
    path = os.path.join(directory, f"{name}-{hashlib.sha256(pem.encode()).hexdigest()[:16]}-ca.pem")
    try:
        # Reused only when it is a regular file of ours that nobody else can write: a symlink (or a
        # file others may rewrite) with the right content now could name another CA when libpq reads
        # it (review of issue 18). O_NOFOLLOW: open(2) fails on a symlink; anything else is replaced.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, encoding="ascii") as f:
            st = os.fstat(f.fileno())
            ours = stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022
            if ours and f.read() == pem:
                return os.path.abspath(path)
    except (OSError, UnicodeDecodeError):
        pass
    return write_ca_file(pem, path, "--ca-dir" if ca_dir else "$BULKHEAD_CA_DIR (or the cache directory)")


def database_url(outputs: dict, name: str, stack: Optional[str] = None, admin: bool = False,
                 reader: Optional[int] = None, region: Optional[str] = None,
                 ca_bundle: Optional[str] = None, ca_dir: Optional[str] = None) -> str:
    """The libpq URI of database `name` from the loaded outputs (warnings go to stderr)."""
    db = database(outputs, name)
    if db.get("platform") == "docker":
        if admin:
            raise UserError(f"--admin: a dev database has no break-glass login in the outputs (its owner role "
                            f"{db.get('username')} owns everything in it); drop --admin")
        if reader is not None:
            _pick_host(name, db, reader, stack)  # refuses: a dev server has no replicas
        url = _field(name, db, "url", "str", stack)
        ca_file = dev_ca_file(name, db, ca_dir)
        if ca_file is None:
            print(f"warning: the outputs carry no databases.{name}.ca_cert (written before per-container CAs): "
                  f"only channel binding authenticates the server. Run `pulumi up`, then write the outputs again",
                  file=sys.stderr)
            return url
        from bulkhead.drivers import driver_url

        # verify-full with the container's own CA, channel_binding=require kept (bulkhead/drivers.py)
        return driver_url(url, "libpq", ca_file)
    host = _pick_host(name, db, reader, stack)
    port = _field(name, db, "port", "port", stack)
    db_name = _field(name, db, "db_name", "str", stack)
    secret_arn = db.get("secret_arn")
    if not admin and db.get("auth") == "password":
        # auth password: the service's own login, from its own secret (never the master's).
        user, password = login_credentials(name, db, region, stack)
    elif admin or db.get("auth") != "iam":  # outputs of older stacks: the master was the only login
        if not isinstance(secret_arn, str) or not secret_arn.startswith("arn:"):
            raise UserError(f"databases.{name}.secret_arn is missing from the outputs; is the stack current? "
                            f"Regenerate the file: {how_to_get(stack)}")
        secret = fetch_master_secret(secret_arn, region)
        user = secret.get("username") if isinstance(secret.get("username"), str) and secret.get("username") else None
        user = user or _field(name, db, "username", "str", stack)
        password = secret["password"]
        if admin:
            print(f"warning: this is the master user {user} of {name}, for break-glass use only: it can drop the "
                  f"database and every role in it. Services log in as their own role "
                  f"(`dsn --database {name}` without --admin).", file=sys.stderr)
    else:
        user = _field(name, db, "username", "str", stack)
        password = iam_token(host, port, user, database_region(host, secret_arn, region))
    bundle = ca_bundle or os.environ.get("BULKHEAD_RDS_CA_BUNDLE", DEFAULT_CA_BUNDLE)
    bundle = os.path.abspath(os.path.expanduser(bundle))
    if not os.path.exists(bundle):
        print(f"warning: {bundle} does not exist; psql will refuse verify-full without it. Download it:\n"
              f"  mkdir -p {os.path.dirname(bundle)} && curl -fsSo {bundle} {CA_BUNDLE_URL}", file=sys.stderr)
    return libpq_uri(user, password, host, port, db_name, {"sslmode": "verify-full", "sslrootcert": bundle})

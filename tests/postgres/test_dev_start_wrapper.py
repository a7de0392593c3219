"""The container's start wrapper (components/dev/container.py `start_script`) run for real.

The wrapper is the dev container's entrypoint: it runs the image's
`docker-entrypoint.sh` and, on EVERY start, the idempotent init once the final
server is up. That is what makes a kept volume follow the deployment: after
`pulumi destroy` + `up` every password is new, and a database added to a shared
server is created although the data directory is not empty.

Here the wrapper runs against a FAKE `docker-entrypoint.sh` on PATH that does
what the image's does, in essence: on the first start (no PG_VERSION) it needs
$POSTGRES_PASSWORD, runs initdb with $POSTGRES_USER, a temporary server with the
given flags but NO TCP (`listen_addresses=''`, as the image's
`docker_temp_server_start`), a psql setup step over the socket as the admin, then
stops; every start ends in `exec postgres "$@"`. The wrapper honours $PGPORT,
$PGHOST (socket directory), $PG_MAJOR and the bulkhead directories
($BULKHEAD_SECRETS_DIR, $BULKHEAD_STATUS_DIR, $BULKHEAD_DATA_ROOT); their
defaults are the container's. The real image is exercised by tests/docker/test_docker_engine.py.

A `psql` shim first on PATH records, for each call the wrapper makes, whether
the final server accepted TCP at that moment and whether the ready marker
existed, then runs the real psql (after an optional delay, so the test can look
at the marker while the init is still running).

Root handling is the one of tests/postgres/test_postgres_isolation.py (its helpers are
imported): as root, the wrapper, the fake entrypoint and the server run as the
unprivileged `postgres` OS user (or `pgserver`/`$BULKHEAD_PG_OS_USER`), whom the
pg_ident.conf maps to the admin, as it maps root and postgres in the container.

Exit status after SIGTERM/SIGINT: the wrapper exits with the server's status,
0 (postgres exits 0 from a smart or fast shutdown). Only in the race where bash
reaps the server while the signal interrupts `wait` can it be 143 (SIGTERM) or
130 (SIGINT); both are accepted as a clean stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

import pytest

from components.dev.container import (
    ADMIN_USER,
    DATA_ROOT,
    DEFAULT_PORT,
    DEFAULT_SOCKET_DIR,
    IMAGE_ENTRYPOINT,
    SECRETS_DIR,
    STATUS_DIR,
    RoleSpec,
    health_script,
    pg_hba_conf,
    pg_ident_conf,
    secret_content,
    server_flags,
    start_script,
)
from tests.support.postgres import (
    BAD_PASSWORD,
    HBA_REJECT,
    PgServer,
    _make_cert,
    admin_os_users,
    find_pg_bindir,
    free_port,
    refusal,
    server_bindir,
    server_os_user,
)
from tools import pg_account

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0  # "within a few seconds"; generous for a loaded CI machine
CLEAN_STOP_CODES = (0, 128 + signal.SIGTERM, 128 + signal.SIGINT)
# The SCRAM salt of the uploads (random per password in a stack, components/dev/docker_postgres.py).
TEST_SALT = bytes(range(16))

SERVICES = ("auth", "app", "worker")
ROLES = tuple(RoleSpec(name, name) for name in SERVICES)
BILLING = RoleSpec("billing", "billing")

FAKE_ENTRYPOINT = textwrap.dedent(
    r"""
    #!/usr/bin/env bash
    # FAKE docker-entrypoint.sh for tests/postgres/test_dev_start_wrapper.py: the postgres image's, in essence.
    set -Eeo pipefail
    if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
    if [ "$1" != postgres ]; then exec "$@"; fi
    shift
    : "${PGDATA:?}" "${POSTGRES_USER:?}"
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        : "${POSTGRES_PASSWORD:?the image needs a password to initialise an empty data directory}"
        echo "fake entrypoint: first start, initdb" >&2
        mkdir -p "$PGDATA"; chmod 0700 "$PGDATA"
        pwfile="$(mktemp)"
        printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
        initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
            --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --no-locale --no-sync >&2
        rm -f "$pwfile"
        # like docker_temp_server_start: our flags, then no TCP
        pg_ctl -D "$PGDATA" -l "$PGDATA/temp-server.log" \
            -o "$(printf '%q ' "$@") -c listen_addresses='' -p ${PGPORT:-5432}" -w start >&2
        # like docker_setup_db / initdb.d: psql as the admin over the socket ($PGPASSWORD exported, as the image does)
        export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
        "$FAKE_REAL_PSQL" -v ON_ERROR_STOP=1 --no-psqlrc --no-password --host "$PGHOST" \
            --username "$POSTGRES_USER" --dbname postgres -c 'SELECT 1' >/dev/null
        unset PGPASSWORD
        sleep "${FAKE_TEMP_SERVER_HOLD:-1}"  # long enough for a wrapper that wrongly inits the temp server
        pg_ctl -D "$PGDATA" -m fast -w stop >&2
        echo "fake entrypoint: init process complete" >&2
    fi
    exec postgres "$@"
    """
).lstrip()

PSQL_SHIM = textwrap.dedent(
    r"""
    #!/usr/bin/env bash
    # psql shim: records the state when the wrapper calls psql, then runs the real one.
    tcp=down; pg_isready -q -h 127.0.0.1 -p "${PGPORT:-5432}" -U bulkhead_admin -d auth && tcp=up
    marker=absent; [ -e "$BULKHEAD_READY_FILE" ] && marker=present
    echo "start tcp=$tcp marker=$marker" >> "$FAKE_PSQL_LOG"
    sleep "${FAKE_PSQL_DELAY:-0}"
    rc=0; "$FAKE_REAL_PSQL" "$@" || rc=$?
    echo "done rc=$rc" >> "$FAKE_PSQL_LOG"
    exit "$rc"
    """
).lstrip()


@dataclass(frozen=True)
class Deployment:
    """What one `pulumi up` puts into the container: databases, role passwords, admin password."""

    roles: tuple[RoleSpec, ...]
    passwords: Mapping[str, str]  # role -> password
    admin_password: str

    def env(self) -> dict[str, str]:
        # what the container's envs hold: no password at all
        return {"POSTGRES_USER": ADMIN_USER, "POSTGRES_DB": "postgres"}

    def secrets(self) -> dict[str, str]:
        """The password uploads: file name under the secrets directory -> content (the SCRAM verifier)."""
        plain = {"admin": self.admin_password, **{f"role-{s.db_name}": self.passwords[s.role] for s in self.roles}}
        return {name: secret_content(pw, TEST_SALT) for name, pw in plain.items()}


FIRST = Deployment(
    ROLES,
    {"auth": "auth-old ' pw", "app": "app-old $HOME `id`", "worker": "worker-old \\gexec"},
    "admin-old 'pw'",
)
# `pulumi destroy` + `pulumi up` with the volume kept, and `billing` added to the server:
SECOND = Deployment(
    (*ROLES, BILLING),
    {"auth": "auth-NEW", "app": "app-NEW :'pw_auth'", "worker": "worker-NEW", "billing": "billing-NEW"},
    "admin-NEW \"pw\"",
)


@dataclass
class Run:
    """One start of the wrapper (one container start)."""

    proc: subprocess.Popen
    psql_log: Path
    log_path: Path
    saw_init_running: bool = False  # a poll found the init started, not finished, and no marker

    def psql_calls(self) -> list[str]:
        return self.psql_log.read_text().splitlines() if self.psql_log.exists() else []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Container:
    """A data directory (the kept volume) and the files uploaded into the container, started with the wrapper."""

    def __init__(self, root: Path):
        found = find_pg_bindir()
        self.os_user = server_os_user()
        self.bindir = server_bindir(found, self.os_user)
        self.root = root
        self.port = free_port()
        self.pg = PgServer(
            bindir=self.bindir,
            dir=root,
            data_dir=root / "data",
            socket_dir=root / "sock",
            port=self.port,
            admin_password="",
            hba_path=root / "pg_hba.conf",
            ident_path=root / "pg_ident.conf",
            cert_file=root / "server.crt",
            key_file=root / "server.key",
            log_path=root / "wrapper-1.log",
            os_user=self.os_user,
        )
        self.major = int(found.parent.name)
        self.pg.data_dir = root / "data" / f"pg{self.major}"  # the per-major data directory
        self.status_dir = root / "run"
        self.ready_file = self.status_dir / "ready"
        self.start_sh = root / "start.sh"
        self.runs: list[Run] = []
        pg = self.pg
        pg.give(root, 0o755)  # the wrapper runs as the server's OS user; the test reads its files
        for d in ("sock", "run", "fake-bin", "shim-bin", "data"):
            (root / d).mkdir()
            pg.give(root / d, 0o755)
        _make_cert(pg)
        pg.write_file(pg.ident_path, pg_ident_conf(admin_os_users(self.os_user)))
        pg.write_file(root / "fake-bin" / IMAGE_ENTRYPOINT, FAKE_ENTRYPOINT, 0o755)
        pg.write_file(root / "shim-bin" / "psql", PSQL_SHIM, 0o755)

    def flags(self, parameters: Mapping[str, str] = {}) -> list[str]:
        return [
            *server_flags(
                parameters,
                cert_file=str(self.pg.cert_file),
                key_file=str(self.pg.key_file),
                hba_file=str(self.pg.hba_path),
                ident_file=str(self.pg.ident_path),
            ),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.pg.socket_dir}",
        ]  # fmt: skip

    def start(
        self,
        dep: Deployment,
        *,
        env_drop: Sequence[str] = (),
        secrets_drop: Sequence[str] = (),
        psql_delay: float = 0.0,
        argv: Optional[Sequence[str]] = None,
        data_root: Optional[Path] = None,
    ) -> Run:
        """What Docker does on `pulumi up` (container created with this deployment's uploads and env)."""
        n = len(self.runs) + 1
        # the uploads of this deployment
        self.pg.write_file(self.start_sh, start_script(dep.roles), 0o755)
        self.pg.write_file(self.pg.hba_path, pg_hba_conf(dep.roles))
        secrets = self.root / f"secrets-{n}"
        secrets.mkdir()
        self.pg.give(secrets, 0o700)
        for name, value in dep.secrets().items():
            if name not in secrets_drop:
                self.pg.write_file(secrets / name, value, 0o400)
        if "tls-server.key" not in secrets_drop:  # the pair server_tls.py makes, uploaded root-only
            self.pg.write_file(secrets / "tls-server.key", self.pg.key_file.read_text(), 0o400)
        psql_log = self.root / "run" / f"psql-{n}.log"
        log_path = self.root / f"wrapper-{n}.log"
        env = {
            "PATH": os.pathsep.join(
                [str(self.root / "shim-bin"), str(self.root / "fake-bin"), str(self.bindir), os.defpath]
            ),
            "LC_ALL": "C",
            "HOME": str(self.root),
            "PGPORT": str(self.port),
            "PGHOST": str(self.pg.socket_dir),
            "PG_MAJOR": str(self.major),
            "BULKHEAD_SECRETS_DIR": str(secrets),
            "BULKHEAD_TLS_CERT": str(self.pg.cert_file),  # the container's is an upload of its own
            "BULKHEAD_STATUS_DIR": str(self.status_dir),
            "BULKHEAD_DATA_ROOT": str(data_root or self.root / "data"),
            "BULKHEAD_READY_FILE": str(self.ready_file),  # read by the psql shim
            "FAKE_REAL_PSQL": str(self.bindir / "psql"),
            "FAKE_PSQL_LOG": str(psql_log),
            "FAKE_PSQL_DELAY": str(psql_delay),
            **dep.env(),
        }
        for name in env_drop:
            env.pop(name)
        with open(log_path, "ab") as log:
            # A container's PID 1 starts with no signal ignored; a runner that started us in the
            # background without job control (`cmd &`) ignores SIGINT/SIGQUIT, the wrapper would
            # inherit that and a shell cannot trap a signal ignored on entry (POSIX "trap").
            proc = pg_account.popen(
                ["env", "--default-signal=HUP,INT,QUIT,TERM", "bash", str(self.start_sh),
                 *(argv if argv is not None else ["postgres", *self.flags()])], self.os_user,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, env=env,
                start_new_session=True,
            )  # fmt: skip
        os.chmod(log_path, 0o644)
        run = Run(proc, psql_log, log_path)
        self.runs.append(run)
        self.pg.admin_password = dep.admin_password
        return run

    def wait_ready(self, run: Run) -> None:
        """Until the marker appears; on every poll, the marker may exist only once the init is done."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < READY_TIMEOUT_S:
            calls = run.psql_calls()  # read BEFORE the marker: a later init completion cannot fool us
            marker = self._fresh_marker()
            if calls and calls[-1].startswith("start ") and not marker:
                run.saw_init_running = True
            if marker:
                assert calls and calls[-1].startswith("done rc="), f"marker before the init finished: {calls}\n{run.log()}"
                return
            code = run.proc.poll()
            assert code is None, f"wrapper exited with {code} before ready:\n{run.log()}"
            time.sleep(0.01)
        raise AssertionError(f"not ready after {READY_TIMEOUT_S}s:\n{run.log()}")

    def health(self) -> tuple[int, str]:
        """The healthcheck, as Docker runs it: exit status and output."""
        script = self.root / "health.sh"
        self.pg.write_file(script, health_script(), 0o755)
        out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=10,
                             env={"PATH": os.defpath, "BULKHEAD_STATUS_DIR": str(self.status_dir)})
        return out.returncode, out.stdout

    def server_environ(self) -> dict[str, str]:
        """The postmaster's environment (what any code run by the server inherits)."""
        pid = int((self.pg.data_dir / "postmaster.pid").read_text().splitlines()[0])
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        return dict(item.decode(errors="replace").partition("=")[::2] for item in raw if item)

    def _fresh_marker(self) -> bool:
        """The marker this start made (`touch`: empty); a stale one planted by a test has content."""
        try:
            return self.ready_file.read_text() == ""
        except FileNotFoundError:
            return False

    def stop(self, run: Run, sig: int = signal.SIGTERM) -> tuple[int, float]:
        """`docker stop`: the signal to the wrapper (PID 1) only; returns (exit code, seconds)."""
        t0 = time.monotonic()
        run.proc.send_signal(sig)
        try:
            code = run.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"wrapper still running {STOP_TIMEOUT_S}s after signal {sig}:\n{run.log()}") from None
        return code, time.monotonic() - t0

    def kill_all(self) -> None:
        """Teardown: whatever of our own runs is still alive (each run is its own process group)."""
        for run in self.runs:
            if run.proc.poll() is None:
                try:
                    os.killpg(run.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                run.proc.wait(timeout=10)
        # a postgres left behind (e.g. pg_ctl's temporary server), found by its pid file
        pidfile = self.pg.data_dir / "postmaster.pid"
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text().splitlines()[0]), signal.SIGQUIT)
            except (ValueError, IndexError, ProcessLookupError, PermissionError):
                pass

    def server_is_down(self) -> bool:
        with socket.socket() as s:
            s.settimeout(1)
            tcp_closed = s.connect_ex(("127.0.0.1", self.port)) != 0
        return tcp_closed and not (self.pg.data_dir / "postmaster.pid").exists()


@pytest.fixture
def container() -> Iterator[Container]:
    # Not pytest's tmp_path: unreachable for the server's OS user as root, and too long for a socket path.
    root = Path(tempfile.mkdtemp(prefix="bulkhead-wrap-"))
    box = None
    try:
        box = Container(root)
        yield box
    finally:
        if box is not None:
            box.kill_all()
        shutil.rmtree(root, ignore_errors=True)


def assert_deployment_applied(box: Container, dep: Deployment) -> None:
    """Every role reaches its own database over TLS and no other one; the admin's password is this one."""
    pg = box.pg
    dbs = [spec.db_name for spec in dep.roles]
    for spec in dep.roles:
        for db in dbs:
            if db == spec.db_name:
                with pg.connect(db, spec.role, dep.passwords[spec.role]) as conn:
                    row = conn.execute(
                        "SELECT current_user, current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                    ).fetchone()
                assert row == (spec.role, db, True)
            else:
                assert HBA_REJECT in refusal(pg, db, spec.role, dep.passwords[spec.role])
                # the socket too: `local` lines per database, like the hostssl ones
                assert HBA_REJECT in refusal(pg, db, spec.role, dep.passwords[spec.role], via_socket=True)
        assert HBA_REJECT in refusal(pg, "postgres", spec.role, dep.passwords[spec.role], via_socket=True)
        with pg.connect(spec.db_name, spec.role, dep.passwords[spec.role], via_socket=True):
            pass
    # the admin, with its right password, over TCP (TLS): refused by pg_hba (no network line for it)
    assert HBA_REJECT in refusal(pg, dbs[0], ADMIN_USER, dep.admin_password)
    assert HBA_REJECT in refusal(pg, "postgres", ADMIN_USER, dep.admin_password)


# ----------------------------------------------------------------------------------------------
# Pure checks of the generated script
# ----------------------------------------------------------------------------------------------


def init_calls(dep: Deployment) -> list[str]:
    """The psql calls of one clean init: the server-wide part, then one per database, all on the
    init server (no TCP: nothing outside the container can reach it) before the marker."""
    return ["start tcp=down marker=absent", "done rc=0"] * (1 + len(dep.roles))


def test_script_defaults_are_the_images() -> None:
    script = start_script(ROLES)
    assert f'bulkhead_port="${{PGPORT:-{DEFAULT_PORT}}}"' in script
    assert f'bulkhead_socket_dir="${{PGHOST:-{DEFAULT_SOCKET_DIR}}}"' in script
    assert f'bulkhead_status_dir="${{BULKHEAD_STATUS_DIR:-{STATUS_DIR}}}"' in script
    assert f'bulkhead_secrets_dir="${{BULKHEAD_SECRETS_DIR:-{SECRETS_DIR}}}"' in script
    assert f'bulkhead_data_root="${{BULKHEAD_DATA_ROOT:-{DATA_ROOT}}}"' in script
    assert f'{IMAGE_ENTRYPOINT} "$@" &' in script
    assert "unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE PGPASSWORD PGPASSFILE" in script
    assert "printenv" not in script and "-v pw" not in script, "passwords only through files read by psql"
    assert "pg_isready" not in script, "the wrapper waits on postmaster.pid: no connection, nothing in the log"
    assert script.count("<<'BULKHEAD_SQL'") == 1 + len(ROLES)
    assert subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True).returncode == 0
    assert subprocess.run(["bash", "-n"], input=health_script(), text=True, capture_output=True).returncode == 0


# ----------------------------------------------------------------------------------------------
# The wrapper, for real
# ----------------------------------------------------------------------------------------------


def test_first_start_inits_once_on_the_init_server_then_serves(container: Container) -> None:
    box = container
    box.pg.write_file(box.ready_file, "stale marker of an earlier start\n")  # the container fs survives restarts
    run = box.start(FIRST, psql_delay=0.5)
    box.wait_ready(run)
    # The init ran on the wrapper's init server (our flags, no TCP), not on the entrypoint's temporary
    # one, after the stale marker was removed; then the server that serves TCP started.
    assert run.psql_calls() == init_calls(FIRST), run.log()
    assert "fake entrypoint: init process complete" in run.log()
    assert run.saw_init_running  # polled while the (slowed) init ran: no marker then
    assert "FATAL" not in run.log()
    assert_deployment_applied(box, FIRST)
    # No password in the server's environment (the first start's throwaway died with its server).
    environ = box.server_environ()
    assert not [k for k in environ if "PASSWORD" in k], sorted(environ)
    assert not any(pw in v for v in environ.values() for pw in [FIRST.admin_password, *FIRST.passwords.values()])
    assert box.health() == (0, "ok\n")
    code, seconds = box.stop(run)
    assert code in CLEAN_STOP_CODES, run.log()
    assert box.server_is_down()
    assert not box.ready_file.exists()
    assert box.health()[0] == 1


def test_restart_with_new_passwords_and_an_added_database(container: Container) -> None:
    """`pulumi destroy` + `up` on the kept volume, with `billing` added to the server."""
    box = container
    first = box.start(FIRST)
    box.wait_ready(first)
    assert_deployment_applied(box, FIRST)
    assert box.stop(first)[0] in CLEAN_STOP_CODES

    second = box.start(SECOND)
    box.wait_ready(second)
    assert "first start" not in second.log()  # the data directory was kept: no initdb this time
    assert second.psql_calls() == init_calls(SECOND), second.log()
    assert "FATAL" not in second.log()
    assert_deployment_applied(box, SECOND)
    pg = box.pg
    # every OLD password is refused now, the admin's too
    for spec in ROLES:
        assert BAD_PASSWORD in refusal(pg, spec.db_name, spec.role, FIRST.passwords[spec.role])
    with pg.admin() as conn:  # the admin's stored verifier is the new one (it has no login by password)
        assert conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (ADMIN_USER,)).fetchone() == (
            secret_content(SECOND.admin_password, TEST_SALT),
        )
    with pg.admin() as conn:  # the added database exists, owned by its own role
        assert conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'billing'"
        ).fetchone() == ("billing",)
    assert box.stop(second)[0] in CLEAN_STOP_CODES
    assert box.server_is_down()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_cleanly(container: Container, sig: int) -> None:
    box = container
    run = box.start(FIRST)
    box.wait_ready(run)
    with box.pg.connect("app", "app", FIRST.passwords["app"]) as conn:
        conn.execute("CREATE TABLE kept (id int)")
    code, seconds = box.stop(run, sig)
    assert code in CLEAN_STOP_CODES, run.log()
    assert seconds < STOP_TIMEOUT_S
    assert box.server_is_down()
    assert "database system is shut down" in run.log()
    # a clean shutdown: the next start needs no crash recovery and the data is there
    again = box.start(FIRST)
    box.wait_ready(again)
    assert "database system was not properly shut down" not in again.log()
    with box.pg.connect("app", "app", FIRST.passwords["app"]) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    assert box.stop(again)[0] in CLEAN_STOP_CODES


def test_signal_during_the_first_start_stops_cleanly(container: Container) -> None:
    """`docker stop` while the empty data directory is being initialised: no server left behind."""
    box = container
    run = box.start(FIRST)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while "first start, initdb" not in run.log():
        assert time.monotonic() < deadline and run.proc.poll() is None, run.log()
        time.sleep(0.01)
    code, _ = box.stop(run, signal.SIGINT)
    assert code in CLEAN_STOP_CODES or code == 1, run.log()  # the entrypoint's own status when cut short
    box.kill_all()
    assert not box.ready_file.exists()


def test_signal_while_the_init_runs_stops_cleanly(container: Container) -> None:
    """`docker stop` during the init: the running psql finishes, then the server stops."""
    box = container
    first = box.start(FIRST)
    box.wait_ready(first)
    assert box.stop(first)[0] in CLEAN_STOP_CODES
    run = box.start(SECOND, psql_delay=1.0)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not run.psql_calls():  # the init has started (and sleeps in the shim)
        assert time.monotonic() < deadline and run.proc.poll() is None, run.log()
        time.sleep(0.01)
    code, seconds = box.stop(run)
    assert code in CLEAN_STOP_CODES, run.log()
    assert "PROBLEM" not in run.log()
    assert box.server_is_down()
    assert not box.ready_file.exists()


def test_missing_admin_password_fails_before_the_server_starts(container: Container) -> None:
    box = container
    run = box.start(FIRST, secrets_drop=["admin"])
    code = run.proc.wait(timeout=STOP_TIMEOUT_S)
    assert code != 0
    assert "admin (password of the admin) is missing or empty" in run.log()
    assert not box.pg.data_dir.exists()  # the entrypoint never ran
    assert not box.ready_file.exists()


def test_one_tenants_problem_leaves_the_server_and_the_others_running(container: Container) -> None:
    box = container
    first = box.start(FIRST)
    box.wait_ready(first)
    assert box.stop(first)[0] in CLEAN_STOP_CODES
    rotated = Deployment(ROLES, {**FIRST.passwords, "auth": "auth-ROTATED"}, FIRST.admin_password)
    run = box.start(rotated, secrets_drop=["role-app"])
    box.wait_ready(run)
    assert "pending: database app: password file /etc/bulkhead/secrets/role-app is missing or empty" in run.log()
    assert "init pending for 1 part(s), retrying; the other databases are served" in run.log()
    code, output = box.health()
    assert code == 1 and "init pending after" in output and "database app: password file" in output, output
    with box.pg.connect("auth", "auth", "auth-ROTATED"):  # the others got their part
        pass
    with box.pg.connect("worker", "worker", FIRST.passwords["worker"]):
        pass
    with box.pg.connect("app", "app", FIRST.passwords["app"]):  # app keeps what it had
        pass
    for secret in [rotated.admin_password, *rotated.passwords.values()]:
        assert secret not in run.log()
    assert box.stop(run)[0] in CLEAN_STOP_CODES


def test_a_kept_cluster_of_another_major_is_left_alone(container: Container) -> None:
    """A volume from before (cluster at its root) of ANOTHER major: untouched; this major gets its
    own directory next to it, and the log and the healthcheck say so."""
    box = container
    legacy = box.root / "data"
    (legacy / "PG_VERSION").write_text("14\n")
    (legacy / "base").mkdir()
    (legacy / "base" / "precious").write_text("old major's data")
    run = box.start(FIRST)
    box.wait_ready(run)
    assert (legacy / "base" / "precious").read_text() == "old major's data"
    assert (legacy / "PG_VERSION").read_text() == "14\n"
    assert (box.pg.data_dir / "PG_VERSION").read_text().strip() == str(box.major)
    note = f"kept, untouched: PostgreSQL 14 data in {legacy}; this server is PostgreSQL {box.major}"
    assert note in run.log()
    code, output = box.health()
    assert code == 0 and note in output and output.endswith("ok\n"), output
    assert box.stop(run)[0] in CLEAN_STOP_CODES


def test_a_kept_cluster_of_this_major_at_the_volume_root_is_used(container: Container) -> None:
    """The layout before per-major directories: the cluster at the volume's root stays in use."""
    box = container
    run = box.start(FIRST)
    box.wait_ready(run)
    with box.pg.connect("app", "app", FIRST.passwords["app"]) as conn:
        conn.execute("CREATE TABLE from_before (id int)")
    assert box.stop(run)[0] in CLEAN_STOP_CODES
    legacy = box.root / "legacy-volume"
    box.pg.data_dir.rename(legacy)
    box.pg.data_dir = legacy
    again = box.start(FIRST, data_root=legacy)
    box.wait_ready(again)
    assert "first start" not in again.log() and "kept, untouched" not in again.log()
    with box.pg.connect("app", "app", FIRST.passwords["app"]) as conn:
        assert conn.execute("SELECT count(*) FROM from_before").fetchone() == (0,)
    assert box.stop(again)[0] in CLEAN_STOP_CODES


def test_other_commands_go_straight_to_the_entrypoint(container: Container) -> None:
    box = container
    run = box.start(FIRST, argv=["echo", "just a shell command"])
    assert run.proc.wait(timeout=STOP_TIMEOUT_S) == 0
    assert run.log().strip() == "just a shell command"
    assert run.psql_calls() == []


def test_a_part_that_fails_is_retried_until_it_succeeds(container: Container) -> None:
    """A tenant holds its own role row in a prepared transaction, which survives a restart: its
    part fails on lock_timeout on the init server, the server still serves, the healthcheck says
    which part is pending and why; once the tenant lets go, a retry succeeds and health turns
    green with no restart."""
    box = container
    argv = ["postgres", *box.flags({"max_prepared_transactions": "2"})]
    first = box.start(FIRST, argv=argv)
    box.wait_ready(first)
    with box.pg.connect("app", "app", FIRST.passwords["app"]) as conn:
        conn.execute("BEGIN")
        conn.execute(f"ALTER ROLE app PASSWORD '{secret_content(FIRST.passwords['app'], TEST_SALT)}'")
        conn.execute("PREPARE TRANSACTION 'hold'")
    assert box.stop(first)[0] in CLEAN_STOP_CODES
    rotated = Deployment(ROLES, {**FIRST.passwords, "auth": "auth-ROTATED", "app": "app-ROTATED"}, FIRST.admin_password)
    run = box.start(rotated, argv=argv)
    box.wait_ready(run)
    code, output = box.health()
    assert code == 1 and "init pending after 1 attempt(s)" in output, output
    assert "database app: ERROR:  canceling statement due to lock timeout" in output, output
    with box.pg.connect("auth", "auth", "auth-ROTATED"):  # the others got their part
        pass
    with box.pg.connect("app", "app", FIRST.passwords["app"]) as conn:  # the tenant lets go
        conn.execute("ROLLBACK PREPARED 'hold'")
    released = time.monotonic()
    while box.health()[0] != 0:
        assert time.monotonic() - released < 60 and run.proc.poll() is None, (box.health(), run.log())
        time.sleep(0.5)
    assert box.health() == (0, "ok\n")
    with box.pg.connect("app", "app", "app-ROTATED"):
        pass
    assert BAD_PASSWORD in refusal(box.pg, "app", "app", FIRST.passwords["app"])
    assert "init complete after" in run.log()
    assert box.stop(run)[0] in CLEAN_STOP_CODES

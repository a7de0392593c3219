"""The container's start wrapper (components/postgres_init.py `start_script`) run for real.

The wrapper is the dev container's entrypoint: it runs the image's
`docker-entrypoint.sh` and, on EVERY start, the idempotent init once the final
server is up. That is what makes a kept volume follow the deployment: after
`pulumi destroy` + `up` every password is new, and a database added to a shared
server is created although the data directory is not empty.

Here the wrapper runs against a FAKE `docker-entrypoint.sh` on PATH that does
what the image's does, in essence: on the first start (no PG_VERSION) initdb
with $POSTGRES_USER/$POSTGRES_PASSWORD, a temporary server with the given flags
but NO TCP (`listen_addresses=''`, as the image's `docker_temp_server_start`),
a psql setup step over the socket as the admin, then stop; every start ends in
`exec postgres "$@"`. The wrapper honours $PGPORT (the server does too),
$PGHOST (socket directory) and $BULKHEAD_READY_FILE; their defaults (5432,
/var/run/postgresql, /var/run/postgresql/bulkhead-ready) are the image's.

A `psql` shim first on PATH records, for each call the wrapper makes, whether
the final server accepted TCP at that moment and whether the ready marker
existed, then runs the real psql (after an optional delay, so the test can look
at the marker while the init is still running).

Root handling is the one of tests/test_postgres_isolation.py (its helpers are
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

from components.postgres_init import (
    ADMIN_USER,
    DEFAULT_PORT,
    DEFAULT_SOCKET_DIR,
    IMAGE_ENTRYPOINT,
    READY_FILE,
    RoleSpec,
    password_env_for,
    pg_hba_conf,
    pg_ident_conf,
    server_flags,
    start_script,
)
from tests.test_postgres_isolation import (
    BAD_PASSWORD,
    HBA_REJECT,
    NO_CONNECT_PRIVILEGE,
    PgServer,
    _as_user_kwargs,
    _make_cert,
    admin_os_users,
    find_pg_bindir,
    free_port,
    refusal,
    server_os_user,
)

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0  # "within a few seconds"; generous for a loaded CI machine
CLEAN_STOP_CODES = (0, 128 + signal.SIGTERM, 128 + signal.SIGINT)

SERVICES = ("auth", "app", "worker")
ROLES = tuple(RoleSpec(name, name, password_env_for(name)) for name in SERVICES)
BILLING = RoleSpec("billing", "billing", password_env_for("billing"))

FAKE_ENTRYPOINT = textwrap.dedent(
    r"""
    #!/usr/bin/env bash
    # FAKE docker-entrypoint.sh for tests/test_dev_start_wrapper.py: the postgres image's, in essence.
    set -Eeo pipefail
    if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
    if [ "$1" != postgres ]; then exec "$@"; fi
    shift
    : "${PGDATA:?}" "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}"
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        echo "fake entrypoint: first start, initdb" >&2
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
        return {
            "POSTGRES_USER": ADMIN_USER,
            "POSTGRES_PASSWORD": self.admin_password,
            "POSTGRES_DB": "postgres",
            **{spec.password_env: self.passwords[spec.role] for spec in self.roles},
        }


FIRST = Deployment(
    ROLES,
    {"auth": "auth-old ' pw", "app": "app-old $HOME `id`", "worker": "wörker-old \\gexec"},
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
    deployment: Deployment
    psql_log: Path
    log_path: Path
    ready_after_s: Optional[float] = None
    saw_init_running: bool = False  # a poll found the init started, not finished, and no marker

    def psql_calls(self) -> list[str]:
        return self.psql_log.read_text().splitlines() if self.psql_log.exists() else []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Container:
    """A data directory (the kept volume) and the files uploaded into the container, started with the wrapper."""

    def __init__(self, root: Path):
        self.bindir = find_pg_bindir()
        self.os_user = server_os_user()
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
        self.ready_file = root / "run" / "bulkhead-ready"
        self.start_sh = root / "start.sh"
        self.runs: list[Run] = []
        pg = self.pg
        pg.give(root, 0o755)  # the wrapper runs as the server's OS user; the test reads its files
        for d in ("sock", "run", "fake-bin", "shim-bin"):
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
        psql_delay: float = 0.0,
        argv: Optional[Sequence[str]] = None,
    ) -> Run:
        """What Docker does on `pulumi up` (container created with this deployment's uploads and env)."""
        n = len(self.runs) + 1
        # the uploads of this deployment
        self.pg.write_file(self.start_sh, start_script(dep.roles), 0o755)
        self.pg.write_file(self.pg.hba_path, pg_hba_conf(dep.roles))
        psql_log = self.root / "run" / f"psql-{n}.log"
        log_path = self.root / f"wrapper-{n}.log"
        env = {
            "PATH": os.pathsep.join(
                [str(self.root / "shim-bin"), str(self.root / "fake-bin"), str(self.bindir), os.defpath]
            ),
            "LC_ALL": "C",
            "HOME": str(self.root),
            "PGDATA": str(self.pg.data_dir),
            "PGPORT": str(self.port),
            "PGHOST": str(self.pg.socket_dir),
            "BULKHEAD_READY_FILE": str(self.ready_file),
            "FAKE_REAL_PSQL": str(self.bindir / "psql"),
            "FAKE_PSQL_LOG": str(psql_log),
            "FAKE_PSQL_DELAY": str(psql_delay),
            **dep.env(),
        }
        for name in env_drop:
            env.pop(name)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                ["bash", str(self.start_sh), *(argv if argv is not None else ["postgres", *self.flags()])],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, env=env,
                start_new_session=True, **_as_user_kwargs(self.os_user),
            )  # fmt: skip
        os.chmod(log_path, 0o644)
        run = Run(proc, dep, psql_log, log_path)
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
                assert calls and calls[-1] == "done rc=0", f"marker before the init finished: {calls}\n{run.log()}"
                run.ready_after_s = time.monotonic() - t0
                return
            code = run.proc.poll()
            assert code is None, f"wrapper exited with {code} before ready:\n{run.log()}"
            time.sleep(0.01)
        raise AssertionError(f"not ready after {READY_TIMEOUT_S}s:\n{run.log()}")

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
            raise AssertionError(f"wrapper still running {STOP_TIMEOUT_S}s after signal {sig}:\n{run.log()}")
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
                # layer 2 on its own: the socket's pg_hba admits the role, CONNECT does not
                assert NO_CONNECT_PRIVILEGE in refusal(pg, db, spec.role, dep.passwords[spec.role], via_socket=True)
        assert NO_CONNECT_PRIVILEGE in refusal(pg, "postgres", spec.role, dep.passwords[spec.role], via_socket=True)
    with pg.connect(dbs[0], ADMIN_USER, dep.admin_password) as conn:  # password auth over TLS
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)


# ----------------------------------------------------------------------------------------------
# Pure checks of the generated script
# ----------------------------------------------------------------------------------------------


def test_script_defaults_are_the_images() -> None:
    script = start_script(ROLES)
    assert f'bulkhead_port="${{PGPORT:-{DEFAULT_PORT}}}"' in script
    assert f'bulkhead_socket_dir="${{PGHOST:-{DEFAULT_SOCKET_DIR}}}"' in script
    assert f'bulkhead_ready_file="${{BULKHEAD_READY_FILE:-{READY_FILE}}}"' in script
    assert f'{IMAGE_ENTRYPOINT} "$@" &' in script
    assert f'pg_isready -q -h 127.0.0.1 -p "$bulkhead_port" -U {ADMIN_USER} -d auth -t 5' in script
    assert "-d postgres -t" in start_script([])  # no database: the only choice left
    # passwords only as psql variables from the environment
    assert f"\\set pw_{ADMIN_USER} `printenv POSTGRES_PASSWORD`" in script
    assert "-v pw_" not in script, "a password on psql's command line is visible in ps"
    for spec in ROLES:
        assert f"\\set pw_{spec.role} `printenv {spec.password_env}`" in script
    assert script.count("<<'BULKHEAD_SQL'") == 1
    assert subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True).returncode == 0


# ----------------------------------------------------------------------------------------------
# The wrapper, for real
# ----------------------------------------------------------------------------------------------


def test_first_start_inits_once_after_the_final_server_is_up(container: Container) -> None:
    box = container
    box.pg.write_file(box.ready_file, "stale marker of an earlier start\n")  # the container fs survives restarts
    run = box.start(FIRST, psql_delay=1.0)
    box.wait_ready(run)
    # The init ran once, against the FINAL server (TCP up), after the stale marker was removed.
    assert run.psql_calls() == ["start tcp=up marker=absent", "done rc=0"], run.log()
    assert "fake entrypoint: init process complete" in run.log()
    assert run.saw_init_running  # polled while the (slowed) init ran: no marker then
    assert "FATAL" not in run.log()  # the readiness probe passes pg_hba: nothing logged
    assert_deployment_applied(box, FIRST)
    code, seconds = box.stop(run)
    assert code in CLEAN_STOP_CODES, run.log()
    assert box.server_is_down()
    assert not box.ready_file.exists()


def test_restart_with_new_passwords_and_an_added_database(container: Container) -> None:
    """`pulumi destroy` + `up` on the kept volume, with `billing` added to the shared server."""
    box = container
    first = box.start(FIRST)
    box.wait_ready(first)
    assert_deployment_applied(box, FIRST)
    assert box.stop(first)[0] in CLEAN_STOP_CODES

    second = box.start(SECOND)
    box.wait_ready(second)
    assert "first start" not in second.log()  # the data directory was kept: no initdb this time
    assert second.psql_calls() == ["start tcp=up marker=absent", "done rc=0"], second.log()
    assert "FATAL" not in second.log()
    assert_deployment_applied(box, SECOND)
    pg = box.pg
    # every OLD password is refused now, the admin's too
    for spec in ROLES:
        assert BAD_PASSWORD in refusal(pg, spec.db_name, spec.role, FIRST.passwords[spec.role])
    assert BAD_PASSWORD in refusal(pg, ROLES[0].db_name, ADMIN_USER, FIRST.admin_password)
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


def test_signal_while_the_init_runs_stops_cleanly(container: Container) -> None:
    """`docker stop` during the init: the init finishes (psql runs in the foreground), then the server stops."""
    box = container
    first = box.start(FIRST)
    box.wait_ready(first)
    assert box.stop(first)[0] in CLEAN_STOP_CODES
    run = box.start(SECOND, psql_delay=2.0)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not run.psql_calls():  # the init has started (and sleeps 2s in the shim)
        assert time.monotonic() < deadline and run.proc.poll() is None, run.log()
        time.sleep(0.01)
    code, seconds = box.stop(run)
    assert code in CLEAN_STOP_CODES, run.log()
    assert run.psql_calls() == ["start tcp=up marker=absent", "done rc=0"]
    assert "init FAILED" not in run.log()
    assert box.server_is_down()
    assert not box.ready_file.exists()


def test_missing_password_fails_before_the_server_starts(container: Container) -> None:
    box = container
    run = box.start(FIRST, env_drop=[password_env_for("app")])
    code = run.proc.wait(timeout=STOP_TIMEOUT_S)
    assert code != 0
    assert "BULKHEAD_PASSWORD_APP" in run.log()
    assert FIRST.passwords["auth"] not in run.log()
    assert not box.pg.data_dir.exists()  # the entrypoint never ran
    assert not box.ready_file.exists()


def test_failed_init_stops_the_server_without_leaking_passwords(container: Container) -> None:
    box = container
    run = box.start(FIRST)
    box.wait_ready(run)
    with box.pg.admin() as conn:  # make the next init fail (ALTER ROLE in a read-only transaction)
        conn.execute('ALTER DATABASE "postgres" SET default_transaction_read_only = on')
    assert box.stop(run)[0] in CLEAN_STOP_CODES
    failing = box.start(SECOND)
    code = failing.proc.wait(timeout=READY_TIMEOUT_S)
    assert code == 1, failing.log()
    assert "init FAILED" in failing.log()
    assert "cannot execute ALTER ROLE in a read-only transaction" in failing.log()
    assert not box.ready_file.exists()
    assert box.server_is_down()
    log = failing.log()
    for secret in [SECOND.admin_password, *SECOND.passwords.values()]:
        assert secret not in log


def test_other_commands_go_straight_to_the_entrypoint(container: Container) -> None:
    box = container
    run = box.start(FIRST, argv=["echo", "just a shell command"], env_drop=["POSTGRES_PASSWORD"])
    assert run.proc.wait(timeout=STOP_TIMEOUT_S) == 0
    assert run.log().strip() == "just a shell command"
    assert run.psql_calls() == []

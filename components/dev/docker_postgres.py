"""DockerPostgres: one PostgreSQL container for one database, or for a shared dev server.

Each container gets its own network, volume and generated passwords, and an init
that gives every database its own login role; PUBLIC loses CONNECT, so a role
reaches only its own database even when several share a server.

The init runs on EVERY start of the container (components/dev/container.py
`start_script`, the container's entrypoint), not from /docker-entrypoint-initdb.d:
the image runs initdb.d only into an empty data directory, but the volume is kept
(`keep_volumes`), so after `pulumi destroy` + `up` (new passwords) or a database
added to a shared server (container replaced, same volume) it would never run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional
from urllib.parse import quote

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.catalogue.model import Database
from components.dev.forms import cpus_string, go_duration
from components.dev.container import (
    ADMIN_SECRET,
    ADMIN_USER,
    HBA_PATH,
    HEALTH_SCRIPT_PATH,
    IDENT_PATH,
    SCRAM_SALT_BYTES,
    SECRET_PERMISSIONS,
    START_SCRIPT_PATH,
    TLS_CERT_UPLOAD,
    TLS_KEY_UPLOAD,
    health_script,
    pg_hba_conf,
    pg_ident_conf,
    secret_content,
    secret_file,
    server_flags,
    start_script,
)
from components.dev.server_tls import ServerTls, ServerTlsArgs
from components.postgres.role_sql import RoleSpec
from components.tags import database_tags, docker_labels

CONTAINER_PORT = 5432
DATA_PATH = "/var/lib/postgresql/data"
# Debian images (openssl via ssl-cert, for the wrapper's own TLS pair), as the tests' look-alikes.
IMAGE_FLAVOUR = "bookworm"
# `docker stop` grace before SIGKILL, on replacement/destroy (provider: destroy_grace_seconds,
# else ContainerStop with timeout 0) and on `docker stop`/daemon shutdown (stop_timeout, else
# Docker's 10 s). A fast shutdown (the image's STOPSIGNAL, SIGINT) checkpoints first.
STOP_GRACE_SECONDS = 60
# Healthcheck timings, written the way the provider reads them back (Go time.Duration.String()).
HEALTH_INTERVAL_S, HEALTH_TIMEOUT_S, HEALTH_START_PERIOD_S, HEALTH_RETRIES = 3, 5, 60, 10
# Bounded logs (issue 22): the server logs to stderr, which Docker's json-file driver writes to the
# host disk that every volume shares, unrotated unless told; a failing 1 GB statement is logged whole.
# json-file rotates at max-size and keeps max-file files, so a container's log never exceeds
# LOG_MAX_MB_PER_FILE * LOG_FILES (Docker docs, logging/drivers/json-file). Sent explicitly, the
# driver and its options are what the provider reads back (resource_docker_container_funcs.go:
# `d.Set("log_driver", LogConfig.Type)`, `d.Set("log_opts", LogConfig.Config)`), so a daemon with
# default `log-opts` no longer makes every `up` replace the container (kreuzwerker #873); the engine
# adds its default options only for keys we leave out when its default driver is also json-file
# (moby daemon/logs.go mergeAndVerifyLogConfig), hence all three keys a daemon.json usually sets.
LOG_DRIVER = "json-file"
LOG_MAX_MB_PER_FILE, LOG_FILES = 10, 3
LOG_OPTS = {"max-size": f"{LOG_MAX_MB_PER_FILE}m", "max-file": str(LOG_FILES), "compress": "false"}
# sslmode=require encrypts but cannot verify the server's certificate (self-signed, made by the
# wrapper per container start: postgres_init.TLS_DIR); channel_binding=require binds the scram
# exchange to that certificate, so a relay without its key cannot complete the login (libpq >= 13).
URL_SSL_QUERY = "sslmode=require&channel_binding=require"


def image_reference(engine_version: str) -> str:
    """A pinned tag from the catalogue's version: never `latest`, never floating to a new major."""
    return f"postgres:{engine_version}-{IMAGE_FLAVOUR}"


def role_name(db_name: str) -> str:
    # One login role per database, named after it, so `username` reads naturally in URLs.
    return db_name


@dataclass
class DockerPostgresArgs:
    stack: str
    # The databases this container hosts: one for an own container, several for a shared server.
    databases: Mapping[str, Database]
    port: int
    engine_version: str = "16"
    memory_mb: int = 512
    cpus: float = 1.0
    parameters: Mapping[str, str] = field(default_factory=dict)
    # Keep data on `pulumi destroy` unless the stack explicitly says otherwise.
    keep_volumes: bool = True
    protect: bool = False
    server: Optional[str] = None
    # bulkhead:admin_tcp: the admin also over TLS through the published port (container.pg_hba_conf).
    admin_tcp: bool = False


class DockerPostgres(pulumi.ComponentResource):
    """Outputs `connections`: database name -> connection info (docs/contract.md section 5)."""

    connections: dict[str, dict]

    def __init__(self, name: str, args: DockerPostgresArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:DockerPostgres", name, None, opts)
        self._name = name
        self._args = args
        tags = database_tags(args.stack, args.databases)
        self._labels = docker_labels(tags)
        self._roles = [
            RoleSpec(
                db_name=db.db_name,
                role=role_name(db.db_name),
                connection_limit=db.connection_limit,
                settings=db.role_settings(),
            )
            for _, db in sorted(args.databases.items())
        ]

        image = self._create_image()
        self.network = self._create_network() if args.server is None else None
        # A shared server: one network per tenant database, the server on each (issue 18): a tenant's
        # services join only their own database's network, so no tenant's container shares a
        # network with another tenant's services (nor can stand in for the server on theirs).
        self.tenant_networks = (
            {key: self._create_tenant_network(key) for key in sorted(args.databases)}
            if args.server is not None else {}
        )
        self.volume = self._create_volume()
        admin_password = self._create_password("admin")
        # `role-` keeps a database named `admin` from colliding with the admin password.
        passwords = {db_key: self._create_password(f"role-{db_key}") for db_key in sorted(args.databases)}
        # One random SCRAM salt per password, kept in the state (container.secret_content).
        self._salts = {"admin": self._create_salt("admin")}
        self._salts.update({db_key: self._create_salt(f"role-{db_key}") for db_key in sorted(args.databases)})
        # The CA and key pair of this container alone (components/dev/server_tls.py).
        self.tls = ServerTls(f"{name}-tls", ServerTlsArgs(stack=args.stack, aliases=[name]), opts=self._child())
        self.container = self._create_container(image, admin_password, passwords)
        self.connections = {
            db_key: self._connection(db_key, db, passwords[db_key]) for db_key, db in sorted(args.databases.items())
        }
        # Only with bulkhead:admin_tcp: how a GUI reaches the admin (the stack output `admin`).
        self.admin_connection = self._admin_connection(admin_password) if args.admin_tcp else None
        self.register_outputs({"connections": self.connections})

    def _child(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _create_image(self) -> docker.RemoteImage:
        # keep_locally: removing the image on destroy would slow the next `up` and gains nothing.
        return docker.RemoteImage(
            f"{self._name}-image",
            name=image_reference(self._args.engine_version),
            keep_locally=True,
            opts=self._child(),
        )

    def _create_network(self) -> docker.Network:
        # A network per database: a service container joins only the network of the database it owns.
        return docker.Network(
            f"{self._name}-network",
            name=f"bulkhead-{self._args.stack}-{self._name}",
            driver="bridge",
            labels=self._labels,
            # Labels are replace-on-change in the Docker provider: a tier change or a database
            # added to a shared server must not recreate the network under running services.
            opts=self._child(ignore_changes=["labels"]),
        )

    def _create_tenant_network(self, db_key: str) -> docker.Network:
        return docker.Network(
            f"{self._name}-{db_key}-network",
            name=f"bulkhead-{self._args.stack}-{self._name}-{db_key}",
            driver="bridge",
            # The server's labels, as its container's: the network belongs to the server, which the
            # policy pack (no-shared-networks) sees as one owner group; the name says the tenant.
            labels=self._labels,
            opts=self._child(ignore_changes=["labels"]),
        )

    def _network_of(self, db_key: str) -> docker.Network:
        return self.network if self.network is not None else self.tenant_networks[db_key]

    def _create_volume(self) -> docker.Volume:
        return docker.Volume(
            f"{self._name}-data",
            name=f"bulkhead-{self._args.stack}-{self._name}-data",
            labels=self._labels,
            # The volume holds the data: labels are replace-on-change in the Docker provider,
            # so a label change (tier, a database added to a shared server) must not touch it.
            opts=self._child(
                retain_on_delete=self._args.keep_volumes,
                protect=self._args.protect,
                ignore_changes=["labels"],
            ),
        )

    def _create_password(self, suffix: str) -> random.RandomPassword:
        # URL-safe characters only, so the password drops into a connection URL unescaped.
        return random.RandomPassword(
            f"{self._name}-{suffix}-password",
            length=32,
            special=False,
            opts=self._child(),
        )

    def _create_salt(self, suffix: str) -> random.RandomId:
        # random_id draws its bytes from a cryptographic generator (terraform-provider-random
        # internal/provider/resource_id.go: `crypto/rand` Reader.Read; its description: "This resource
        # *does* use a cryptographic random number generator") and keeps them in the state until
        # replaced: byte_length, keepers and prefix are its only inputs, each RequiresReplace, so the salt never changes on its own
        # and a rotated password keeps its salt (fine: the salt only has to be unpredictable and not
        # derived from the password). Not a secret: the server sends it to whoever starts a SCRAM login.
        return random.RandomId(f"{self._name}-{suffix}-scram-salt", byte_length=SCRAM_SALT_BYTES, opts=self._child())

    def _create_container(self, image, admin_password, passwords) -> docker.Container:
        args = self._args
        # Each password an upload of its own, root:root 0400 (the provider writes uploads as
        # root with `permissions`: resource_docker_container_funcs.go, tar header Mode from
        # permissions, no Uid/Gid), never an environment variable: `docker inspect` shows
        # envs, and the server process would inherit them.
        secrets = [(ADMIN_SECRET, admin_password, self._salts["admin"])] + [
            (db.db_name, passwords[key], self._salts[key]) for key, db in sorted(args.databases.items())
        ]
        secret_uploads = [
            # The SCRAM verifier, not the password (container.secret_content): the container never holds it.
            docker.ContainerUploadArgs(
                file=secret_file(name),
                content=pulumi.Output.secret(
                    pulumi.Output.all(pw.result, salt.hex).apply(lambda a: secret_content(a[0], bytes.fromhex(a[1])))
                ),
                permissions=SECRET_PERMISSIONS,
            )
            for name, pw, salt in secrets
        ]
        # The server's key with the passwords (root:root 0400, a secret in the state); start.sh
        # copies it for the server's OS user. Its certificate is public.
        tls_uploads = [
            docker.ContainerUploadArgs(file=TLS_KEY_UPLOAD, content=self.tls.key_pem, permissions=SECRET_PERMISSIONS),
            docker.ContainerUploadArgs(file=TLS_CERT_UPLOAD, content=self.tls.cert_pem),
        ]
        return docker.Container(
            f"{self._name}-postgres",
            name=self.container_name,
            image=image.image_id,
            # Our wrapper runs the image's docker-entrypoint.sh with `command`, then the
            # idempotent init on every start (see the module docstring).
            entrypoints=["/bin/bash", START_SCRIPT_PATH],
            command=["postgres", *server_flags(args.parameters)],
            # No password here: the image needs POSTGRES_PASSWORD only to initdb an empty
            # data directory, and start.sh hands it a throwaway for that (postgres_init).
            envs=[
                f"POSTGRES_USER={ADMIN_USER}",
                "POSTGRES_DB=postgres",
                "POSTGRES_INITDB_ARGS=--auth-host=scram-sha-256 --auth-local=scram-sha-256",
            ],
            ports=[{"internal": CONTAINER_PORT, "external": args.port, "ip": "127.0.0.1", "protocol": "tcp"}],
            # The server's alias on each network (the name its certificate carries).
            networks_advanced=[{"name": n.name, "aliases": [self._name]}
                               for n in ([self.network] if self.network is not None else self.tenant_networks.values())],
            volumes=[{"volume_name": self.volume.name, "container_path": DATA_PATH}],
            uploads=[
                {"file": START_SCRIPT_PATH, "content": start_script(self._roles), "executable": True},
                {"file": HEALTH_SCRIPT_PATH, "content": health_script(), "executable": True},
                {"file": HBA_PATH, "content": pg_hba_conf(self._roles, admin_tcp=args.admin_tcp)},
                # peer map for the admin over the unix socket: root only
                {"file": IDENT_PATH, "content": pg_ident_conf()},
                *secret_uploads,
                *tls_uploads,
            ],
            # Healthy = start.sh has applied the init on THIS start without a problem and the
            # server it started accepts connections. The check opens no connection (nothing in
            # the server log, `log_connections` or not) and prints the reason when unhealthy.
            healthcheck={
                "tests": ["CMD", "/bin/bash", HEALTH_SCRIPT_PATH],
                "interval": go_duration(HEALTH_INTERVAL_S),
                "timeout": go_duration(HEALTH_TIMEOUT_S),
                "retries": HEALTH_RETRIES,
                "start_period": go_duration(HEALTH_START_PERIOD_S),
            },
            memory=args.memory_mb,
            # A hard cap on swap too, so a runaway query cannot take the laptop down.
            memory_swap=args.memory_mb,
            cpus=cpus_string(args.cpus),
            shm_size=min(256, max(64, args.memory_mb // 4)),
            restart="unless-stopped",
            log_driver=LOG_DRIVER,
            log_opts=dict(LOG_OPTS),
            labels=self._labels,
            # A replacement stops the old container with this grace (SIGINT from the image's
            # STOPSIGNAL, passed on by start.sh): a clean shutdown, no crash recovery next start.
            destroy_grace_seconds=STOP_GRACE_SECONDS,
            stop_timeout=STOP_GRACE_SECONDS,
            # `wait` makes `pulumi up` finish only once the healthcheck passes.
            wait=True,
            wait_timeout=180,
            # Not protected: the container holds no data (the volume does), and almost every
            # container setting is replace-on-change, so protect would block every change.
            # Only the password uploads' contents are secret (Output.secret above), so the
            # policy pack can still read the pg_hba upload.
            opts=self._child(),
        )

    def _admin_connection(self, password: random.RandomPassword) -> dict:
        secret_password = pulumi.Output.secret(password.result)
        port = self._args.port
        return {
            "host": "127.0.0.1",
            "port": port,
            "username": ADMIN_USER,
            "db_name": "postgres",
            "sslmode": "require",
            "password": secret_password,
            "url": pulumi.Output.secret(secret_password.apply(
                lambda pw: f"postgresql://{ADMIN_USER}:{quote(pw, safe='')}@127.0.0.1:{port}/postgres?{URL_SSL_QUERY}")),
            "ca_cert": self.tls.ca_cert_pem,
        }

    @property
    def container_name(self) -> str:
        """The Docker container's name (also in the outputs: `psql --admin` execs psql in it)."""
        return f"bulkhead-{self._args.stack}-{self._name}"

    def _connection(self, db_key: str, db: Database, password: random.RandomPassword) -> dict:
        """Connection info as a plain dict with Output leaves, so that only the
        password-bearing leaves are secret in the stack outputs, not the whole map."""
        username = role_name(db.db_name)
        secret_password = pulumi.Output.secret(password.result)

        def url(host: str, port: int) -> pulumi.Output:
            return pulumi.Output.secret(
                secret_password.apply(
                    lambda pw: f"postgresql://{username}:{quote(pw, safe='')}@{host}:{port}/{db.db_name}?{URL_SSL_QUERY}"
                )
            )

        return {
            "owner": db.owner,
            "platform": "docker",
            "host": "127.0.0.1",
            "port": self._args.port,
            "db_name": db.db_name,
            "username": username,
            # The container's own self-signed certificate encrypts but cannot be verified.
            "sslmode": "require",
            "env_var": db.env_var,
            "tier": db.tier,
            "reader_hosts": [],
            "password": secret_password,
            "url": url("127.0.0.1", self._args.port),
            "network": self._network_of(db_key).name,
            # For service containers on the database's own network.
            "internal_host": self._name,
            "internal_port": CONTAINER_PORT,
            "internal_url": url(self._name, CONTAINER_PORT),
            "server": self._args.server,
            # `bulkhead psql --admin` runs psql inside this container over its unix socket.
            "container": self.container_name,
            # The CA that signed this container's certificate (public): `env` writes it next to the
            # .env, and each URL it prints verifies the server with it (sslmode=verify-full).
            "ca_cert": self.tls.ca_cert_pem,
        }

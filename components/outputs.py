"""The `services` stack output, derived from each database's connection info."""

from __future__ import annotations

import typing
from typing import Mapping

from components.catalogue.model import Catalogue

LEGACY_ENV_VAR = "DATABASE_URL"


def services_output(catalogue: Catalogue, connections: Mapping[str, Mapping]) -> dict:
    """owner -> {databases, env}: each env var maps to its URL (secret where it has a password).

    `DATABASE_URL` is added for a service that owns exactly one database, for code
    written before the split; it never points at another service's data.
    """
    out = {}
    for owner, names in catalogue.owners().items():
        env = {catalogue.databases[n].env_var: connections[n]["url"] for n in names}
        if len(names) == 1 and LEGACY_ENV_VAR not in env:
            env[LEGACY_ENV_VAR] = connections[names[0]]["url"]
        out[owner] = {"databases": list(names), "env": env}
    return out


def stack_identity(stack: str, project: str) -> dict:
    """`stack` and `project` outputs: every output-reading verb refuses outputs whose stack is not
    its --stack (bulkhead/outputs_source.py check_stack)."""
    return {"stack": stack, "project": project}


# ---------------------------------------------------------------- the output types, described once
# docs/outputs.md's tables are generated from these (tools/generate_docs.py), and
# tests/docs/test_docs.py checks that each planned stack (dev and prod) exports exactly the keys
# described here for its platform: a new output key without a description fails there.

BOTH, DOCKER, AWS = "both", "docker", "aws"


class OutputKey(typing.NamedTuple):
    """One key of a stack output: where it exists, whether it is a Pulumi secret, what it means."""

    name: str
    platforms: str  # BOTH, DOCKER or AWS
    description: str
    secret: str = ""  # the platforms where the value is a Pulumi secret: "", BOTH or DOCKER
    optional: bool = False  # present only in some configurations (the description says when)


STACK_OUTPUTS: tuple[OutputKey, ...] = (
    OutputKey("databases", BOTH, "database name -> its connection info (the table below)"),
    OutputKey("services", BOTH, "owner -> `{databases, env}` (the table below)"),
    OutputKey("network", AWS, "where a service places its tasks (the table below)"),
    OutputKey("stack", BOTH, "the stack the outputs belong to; every verb that reads outputs refuses them "
              "(exit 2, naming both) when it differs from `--stack`"),
    OutputKey("project", BOTH, "the Pulumi project the outputs belong to"),
    OutputKey("admin", DOCKER, "with `bulkhead:admin_tcp: true` only: container -> the admin's `{host, port, "
              "username, db_name, sslmode, password, url, ca_cert}` over TLS through the published port "
              "(`password` and `url` are secrets); never in `databases` or `services`", optional=True),
)

DATABASE_OUTPUTS: tuple[OutputKey, ...] = (
    OutputKey("owner", BOTH, "the service that owns the database"),
    OutputKey("platform", BOTH, "`docker` or `aws`"),
    OutputKey("host", BOTH, "the server's address: `127.0.0.1` on docker, the RDS primary's endpoint on aws"),
    OutputKey("port", BOTH, "the server's port on `host`"),
    OutputKey("db_name", BOTH, "the database's name on the server"),
    OutputKey("username", BOTH, "the service's own login role (never the admin or master user)"),
    OutputKey("sslmode", BOTH, "`require` on docker (the URLs `env` prints verify with `ca_cert`), "
              "`verify-full` on aws (the RDS CA bundle)"),
    OutputKey("env_var", BOTH, "the environment variable the owner reads its URL from"),
    OutputKey("tier", BOTH, "the database's backup tier"),
    OutputKey("reader_hosts", BOTH, "the read replicas' endpoints (always empty on docker)"),
    OutputKey("url", BOTH, "the connection URL of the service's role: with its password on docker; on aws "
              "no password (the service signs an IAM token, or reads `login_secret_arn`) and "
              "`?sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-global-bundle.pem`: put the RDS CA bundle "
              "there or change the parameter", secret=DOCKER),
    OutputKey("password", DOCKER, "the service role's password", secret=BOTH),
    OutputKey("network", DOCKER, "the Docker network a service container joins to reach the database"),
    OutputKey("internal_host", DOCKER, "the container's name on that network"),
    OutputKey("internal_port", DOCKER, "the server's port inside the network"),
    OutputKey("internal_url", DOCKER, "the URL for a container on the database's network", secret=BOTH),
    OutputKey("server", DOCKER, "the dev server (container) the database lives on"),
    OutputKey("container", DOCKER, "the container that serves the database (`psql --admin` runs psql inside it)"),
    OutputKey("ca_cert", DOCKER, "public PEM of the CA of the container's own key pair; `env` writes it next "
              "to the `.env`"),
    OutputKey("auth", AWS, "how the service logs in: `iam` (a signed token) or `password`"),
    OutputKey("secret_arn", AWS, "the break-glass master secret, for operators (`dsn --admin`); no service "
              "is granted it"),
    OutputKey("security_group_id", AWS, "the owner's client security group: a task wearing it reaches its "
              "databases on 5432 and the endpoints on 443, nothing else"),
    OutputKey("access_policy_arn", AWS, "the IAM policy to attach to the owner's task role"),
    OutputKey("kms_key_arn", AWS, "the database's own KMS key"),
    OutputKey("database_security_group_id", AWS, "the database's own security group"),
    OutputKey("bootstrap_security_group_id", AWS, "the bootstrap function's group, which the database group "
              "admits besides the owner's"),
    OutputKey("instance_identifier", AWS, "the RDS primary's identifier"),
    OutputKey("proxy_host", AWS, "with `proxy: true` only: the RDS Proxy's endpoint (IAM token and TLS as for "
              "`host`); `env` prints it as `<env_var minus _URL>_PROXY_URL`, e.g. `ORDERS_DATABASE_PROXY_URL`", optional=True),
    OutputKey("resource_id", AWS, "the RDS primary's resource id (IAM `rds-db:connect` names it)"),
    OutputKey("login_secret_arn", AWS, "with `auth: password`: the login role's own secret (never the "
              "password itself)", optional=True),
)

NETWORK_OUTPUTS: tuple[OutputKey, ...] = (
    OutputKey("vpc_id", AWS, "the databases' VPC"),
    OutputKey("subnet_ids", AWS, "the databases' subnets, where a service places its tasks"),
    OutputKey("endpoint_security_group_id", AWS, "the stack's VPC endpoint group (`null` with "
              "`bulkhead:network`, whose owner provides the path to the AWS APIs)"),
)

SERVICE_OUTPUTS: tuple[OutputKey, ...] = (
    OutputKey("databases", BOTH, "the names of the databases the service owns"),
    OutputKey("env", BOTH, f"each env var -> its URL, plus `{LEGACY_ENV_VAR}` for a service that owns "
              "exactly one database", secret=DOCKER),
)


def is_secret(key: OutputKey, platform: str) -> bool:
    return key.secret in (BOTH, platform)


def output_keys(keys: tuple[OutputKey, ...], platform: str, *, with_optional: bool = True) -> set[str]:
    """The names of `keys` a stack on `platform` (`docker` or `aws`) exports."""
    return {k.name for k in keys if k.platforms in (BOTH, platform) and (with_optional or not k.optional)}

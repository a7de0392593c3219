"""The dev stack: one DockerPostgres per own-container database and per shared server."""

from __future__ import annotations

from typing import Collection, Optional

from components.catalogue.model import Catalogue
from components.dev.docker_postgres import DockerPostgres, DockerPostgresArgs


def build_docker_stack(catalogue: Catalogue, admin: Optional[dict[str, dict]] = None,
                       only: Optional[Collection[str]] = None) -> dict[str, dict]:
    """Build every container; return database name -> connection info. With `bulkhead:admin_tcp`,
    `admin` (when given) is filled with container name -> the admin's connection info.

    `only`: build just these databases' containers (a shared server with all its tenants:
    a shard holds a server's tenants together). Only an offline `plan --jobs` worker passes it
    (bulkhead/offline/parallel.py); None = every database."""
    connections: dict[str, dict] = {}
    for name, db in catalogue.databases.items():
        if db.server is not None or (only is not None and name not in only):
            continue
        component = DockerPostgres(
            name,
            DockerPostgresArgs(
                stack=catalogue.stack,
                databases={name: db},
                port=db.port,
                engine_version=db.engine_version,
                memory_mb=db.memory_mb,
                cpus=db.cpus,
                parameters=db.parameters,
                keep_volumes=catalogue.keep_volumes,
                protect=catalogue.protect,
                admin_tcp=catalogue.admin_tcp,
            ),
        )
        connections.update(component.connections)
        if admin is not None and component.admin_connection is not None:
            admin[component.container_name] = component.admin_connection
    for server_name, server in catalogue.servers.items():
        if only is not None and not any(n in only for n in catalogue.databases_on(server_name)):
            continue
        component = DockerPostgres(
            f"server-{server_name}",
            DockerPostgresArgs(
                stack=catalogue.stack,
                databases=catalogue.databases_on(server_name),
                port=server.port,
                engine_version=server.engine_version,
                memory_mb=server.memory_mb,
                cpus=server.cpus,
                parameters=server.parameters,
                keep_volumes=catalogue.keep_volumes,
                protect=catalogue.protect,
                server=server_name,
                admin_tcp=catalogue.admin_tcp,
            ),
        )
        connections.update(component.connections)
        if admin is not None and component.admin_connection is not None:
            admin[component.container_name] = component.admin_connection
    return dict(sorted(connections.items()))

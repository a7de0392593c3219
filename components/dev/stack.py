"""The dev stack: one DockerPostgres per own-container database and per shared server."""

from __future__ import annotations

from typing import Optional

from components.catalogue.model import Catalogue
from components.dev.docker_postgres import DockerPostgres, DockerPostgresArgs


def build_docker_stack(catalogue: Catalogue, admin: Optional[dict[str, dict]] = None) -> dict[str, dict]:
    """Build every container; return database name -> connection info. With `bulkhead:admin_tcp`,
    `admin` (when given) is filled with container name -> the admin's connection info."""
    connections: dict[str, dict] = {}
    for name, db in catalogue.databases.items():
        if db.server is not None:
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

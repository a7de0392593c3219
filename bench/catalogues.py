"""Generated catalogues of N databases, shaped like the repo's own stacks.

aws: the three databases of Pulumi.prod.yaml used as templates in turn (so
replicas 2/1/0, critical/standard tiers, instance classes, parameters and engine
versions mix as they do there), two databases per owner.
docker: own containers on ports 20000+i, and every fifth database on one of a
few shared servers (ports 19000+j), as Pulumi.dev.yaml's `shared` server.
"""

from __future__ import annotations

import copy
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bulkhead.offline.stack_config import load_stack_config  # noqa: E402


def aws_config(n: int) -> dict:
    config = copy.deepcopy(load_stack_config(ROOT, "prod"))
    templates = list(config["bulkhead:databases"].values())
    dbs = {}
    for i in range(n):
        spec = copy.deepcopy(templates[i % len(templates)])
        spec["owner"] = f"service-{i // 2:03d}"
        spec["env_var"] = f"SVC{i:03d}_DATABASE_URL"
        dbs[f"svc{i:03d}"] = spec
    config["bulkhead:databases"] = dbs
    return config


def docker_config(n: int) -> dict:
    config = copy.deepcopy(load_stack_config(ROOT, "dev"))
    own = [s for s in config["bulkhead:databases"].values() if "server" not in s]
    server_template = next(iter(config["bulkhead:servers"].values()))
    n_servers = max(1, min(5, n // 20))
    tenants = -(-(n // 5) // n_servers)  # the most tenants one server gets
    tenant_limit = max(1, min(20, (100 - 3) // max(1, tenants)))
    servers = {f"shared{j}": {**copy.deepcopy(server_template), "port": 19000 + j} for j in range(n_servers)}
    dbs = {}
    for i in range(n):
        name = f"svc{i:03d}"
        owner = f"service-{i:03d}"
        if i % 5 == 4:
            # The connection-budget rule (components/catalogue/model.py): a server's
            # max_connections (PostgreSQL's default 100) covers its tenants' connection_limit
            # plus 3 reserved slots; each tenant gets its share of that budget.
            dbs[name] = {"owner": owner, "server": f"shared{(i // 5) % n_servers}", "tier": "standard",
                         "connection_limit": tenant_limit}
        else:
            spec = copy.deepcopy(own[i % len(own)])
            spec.update(owner=owner, port=20000 + i)
            dbs[name] = spec
    config["bulkhead:databases"] = dbs
    used = {d["server"] for d in dbs.values() if "server" in d}
    config["bulkhead:servers"] = {k: v for k, v in servers.items() if k in used}
    return config


CATALOGUES = {"aws": ("prod", aws_config), "docker": ("dev", docker_config)}

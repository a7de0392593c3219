"""Separation: one service per database, nothing shared, nobody else on the network path.

These rules follow references (ids, ARNs, names, propertyDependencies) and the
`bulkhead:` tags/labels, never resource names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Iterable, Optional

from . import thresholds
from bulkhead_types import IAM_ROLE

from ._resources import (
    CONTAINER,
    EGRESS_RULE,
    IAM_POLICY_TYPES,
    INGRESS_RULE,
    KMS_ALIAS,
    KMS_KEY,
    LEGACY_SG_RULE,
    MANDATORY,
    ADVISORY,
    NETWORK,
    RANDOM_PASSWORD,
    RDS_INSTANCE,
    RDS_PARAMETER_GROUP,
    SECRET,
    SECRET_PLACEHOLDER,
    SECURITY_GROUP,
    STACK,
    TAG_STACK,
    UNKNOWN,
    VOLUME,
    CouldNotCheck,
    Index,
    Res,
    as_int,
    as_list,
    contains_unknown,
    database_security_groups,
    policy_document,
    resource_rule,
    schema,
    string_list,
    stack_rule,
    statements,
    strings,
    truthy,
)

# Filled by @resource_rule / @stack_rule where each check is defined, in definition order.
POLICIES: list = []

DOCKER_DATA_TYPES = (CONTAINER, VOLUME, NETWORK)


def _cached(index: Index, key: str, build):
    cache = index.__dict__.setdefault("_bulkhead_cache", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _db_groups(index: Index) -> dict[str, list[Res]]:
    return _cached(index, "db_groups", lambda: database_security_groups(index))


def _who(r: Res) -> str:
    return f"{','.join(r.databases) or 'no database'} (owner {','.join(r.owners) or 'missing'})"


@stack_rule(POLICIES, "database-single-owner",
    "Every database resource names exactly one owning service (bulkhead:owner), and everything a database uses "
    "(key, security groups, parameter group, volume, network) belongs to the same database and owner.",
    MANDATORY, [],
)
def check_database_single_owner(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    holds_data = r.type in (RDS_INSTANCE,) + DOCKER_DATA_TYPES
    tagged = bool(r.databases) or bool(r.owners)
    if not holds_data and not tagged:
        return
    if r.tags_unknown():
        raise CouldNotCheck(r, "tags")
    if not r.owners:
        yield (f"{r.label} has no bulkhead:owner tag, so no service is accountable for it and the other rules "
               f"cannot tell whose it is; tag it with the owning service (bulkhead:owner) and its database "
               f"(bulkhead:database).")
        return
    if not r.databases:
        yield (f"{r.label} is owned by {','.join(r.owners)} but names no database in bulkhead:database; tag it "
               f"with the database it belongs to.")
        return
    shared_server = r.type in DOCKER_DATA_TYPES
    if not shared_server and len(r.owners) > 1:
        yield (f"{r.label} is tagged with several owners ({', '.join(r.owners)}); give each service its own "
               f"resource instead of sharing one.")
    if r.type == RDS_INSTANCE and len(r.databases) > 1:
        yield (f"{r.label} is tagged with several databases ({', '.join(r.databases)}); each database gets an "
               f"RDS instance of its own.")
    if len(r.owners) > len(r.databases):
        yield (f"{r.label} names more owners ({', '.join(r.owners)}) than databases ({', '.join(r.databases)}); "
               f"a database has exactly one owner.")
    # Everything a database uses belongs to the same database and owner.
    if r.type == RDS_INSTANCE:
        uses = (("kmsKeyId", (KMS_KEY, KMS_ALIAS)), ("masterUserSecretKmsKeyId", (KMS_KEY, KMS_ALIAS)),
                ("performanceInsightsKmsKeyId", (KMS_KEY, KMS_ALIAS)), ("vpcSecurityGroupIds", (SECURITY_GROUP,)),
                ("parameterGroupName", (RDS_PARAMETER_GROUP,)))
    elif r.type == CONTAINER:
        uses = (("volumes", (VOLUME,)), ("networksAdvanced", (NETWORK,)))
    else:
        uses = ()
    for key, types in uses:
        found, _, _ = index.refs(r, key, *types)
        for used in found:
            if used.type == KMS_ALIAS:
                continue
            if used.tags_unknown():
                raise CouldNotCheck(used, "tags")
            if sorted(used.owners) != sorted(r.owners) or sorted(used.databases) != sorted(r.databases):
                yield (f"{r.label} ({_who(r)}) uses {used.label}, which belongs to {_who(used)}; give the "
                       f"database its own {used.label.split(' ')[0] if used.type != KMS_KEY else 'KMS key'} "
                       f"owned by the same service.")


# --- no-shared-credentials -------------------------------------------------------------------------
# Whether a password is generated is decided by where it comes from (the container's
# propertyDependencies for `envs` name the RandomPassword resources it draws on, at
# preview too), never by whether its value is visible: the engine hands the analyzer
# secrets in plain text, and `pulumi stack export --show-secrets` shows them too.
# Visible values are still compared, because the same value in two places is sharing.
_PASSWORD_ENV = re.compile(r"^([A-Z0-9_]*PASSWORD[A-Z0-9_]*)=(.*)$", re.DOTALL)


def _consumers_of(index: Index, password: Res) -> list[Res]:
    # The reverse dependency index: scanning every container and instance per password
    # made check quadratic in the number of databases (bench/README.md, "check").
    return index.dependents(password.urn, CONTAINER, RDS_INSTANCE)


def _visible(value) -> bool:
    """A password value that can be read (not absent, empty, unknown or the plan's secret placeholder)."""
    return isinstance(value, str) and value != "" and value != SECRET_PLACEHOLDER


def _env_passwords(r: Res) -> dict[str, str]:
    """Password-bearing env entries whose value is visible: env name -> value."""
    envs = r.get("envs")
    out = {}
    if isinstance(envs, list):
        for item in envs:
            if isinstance(item, str):
                m = _PASSWORD_ENV.match(item)
                if m and _visible(m.group(2)):
                    out[m.group(1)] = m.group(2)
    return out


# Password files uploaded into a container (bulkhead: /etc/bulkhead/secrets/<name>, 0400),
# held like env passwords: the upload's path names them, the content is the password.
_SECRET_UPLOAD = re.compile(r"(^|/)(secrets?|passwords?)(/|$)", re.IGNORECASE)


# The server's TLS key (components/dev/server_tls.py) sits with the passwords; it is not one when
# a pulumi-tls PrivateKey generated it (a key typed into the program still counts as a password).
_TLS_PRIVATE_KEY = "tls:index/privateKey:PrivateKey"


def _generated_key(r: Res, content) -> bool:
    return (isinstance(content, str) and content.startswith("-----BEGIN") and "PRIVATE KEY" in content
            and any(f"{_TLS_PRIVATE_KEY}::" in urn for urn in r.deps.get("uploads", [])))


def _upload_passwords(r: Res) -> dict[str, str]:
    """Password files among the container's uploads whose content is visible: path -> value."""
    out = {}
    for upload in as_list(r.get("uploads")):
        if isinstance(upload, dict) and isinstance(upload.get("file"), str) and _SECRET_UPLOAD.search(upload["file"]):
            if _visible(upload.get("content")) and not _generated_key(r, upload.get("content")):
                out[upload["file"]] = upload["content"]
    return out


def _container_passwords(r: Res) -> dict[str, str]:
    return {**_env_passwords(r), **_upload_passwords(r)}


def _generated_passwords(index: Index, r: Res, key: str) -> list[Res]:
    """The RandomPassword resources `r.key` is computed from."""
    out = []
    for urn in r.deps.get(key, []):
        dep = index.by_urn.get(urn)
        if dep is not None and dep.type == RANDOM_PASSWORD and dep not in out:
            out.append(dep)
    return out


def _password_holders(index: Index) -> dict[str, list[tuple[Res, str]]]:
    """Every visible password value of the stack -> the (resource, env var or prop) that hold it."""
    def build():
        holders: dict[str, list[tuple[Res, str]]] = {}
        for c in index.of_type(CONTAINER):
            for name, value in sorted(_container_passwords(c).items()):
                holders.setdefault(value, []).append((c, name))
        for inst in index.of_type(RDS_INSTANCE):
            if _visible(inst.get("password")):
                holders.setdefault(inst.get("password"), []).append((inst, "password"))
        return holders
    return _cached(index, "password_holders", build)


def _shared_with_others(index: Index, r: Res, values: Iterable[str]) -> list[Res]:
    others: list[Res] = []
    for value in values:
        for holder, _ in _password_holders(index).get(value, []):
            if holder is not r and holder not in others:
                others.append(holder)
    return others


_SCRAM = re.compile(r"^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$")


def _is_scram_of(verifier: str, password: str) -> bool:
    """True when `verifier` is PostgreSQL's SCRAM-SHA-256 verifier of `password` (RFC 5802/7677): the dev
    containers upload verifiers, never the passwords, so a generated password is recognised through them."""
    m = _SCRAM.match(verifier) if isinstance(verifier, str) else None
    if not m or not isinstance(password, str):
        return False
    iterations, salt = int(m.group(1)), base64.b64decode(m.group(2))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    return hmac.compare_digest(base64.b64encode(stored).decode(), m.group(3))


def _drawn_from(value, results) -> bool:
    return value in results or any(_is_scram_of(value, pw) for pw in results)


@stack_rule(POLICIES, "no-shared-credentials",
    "No password, secret or client security group is shared between servers, roles or services.",
    MANDATORY, [CONTAINER, RDS_INSTANCE, RANDOM_PASSWORD, STACK],
)
def check_no_shared_credentials(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if r.type == RANDOM_PASSWORD:
        users = _consumers_of(index, r)
        if len(users) > 1:
            yield (f"{r.label} is the password of several servers ({', '.join(u.name for u in users)}); "
                   f"generate one password per database role and container.")
        return
    if r.type == CONTAINER:
        envs = r.get("envs")
        generated = _generated_passwords(index, r, "envs")
        generated += [g for g in _generated_passwords(index, r, "uploads") if g not in generated]
        if contains_unknown(envs) and not generated:
            raise CouldNotCheck(r, "envs")
        passwords = _container_passwords(r)
        if passwords and not generated:
            yield (f"{r.label} sets {', '.join(sorted(passwords))} to a literal value: its environment draws on "
                   f"no RandomPassword, so the password is typed into the program or its config, readable in "
                   f"the source and the stack state, and easily reused; generate it with RandomPassword and "
                   f"pass it as a Pulumi secret.")
        elif passwords:
            results = [pw.get("result") for pw in generated]
            if all(_visible(v) for v in results):
                literal = sorted(n for n, v in passwords.items() if not _drawn_from(v, results))
                if literal:
                    yield (f"{r.label} sets {', '.join(literal)} to a value that none of the RandomPassword "
                           f"resources it draws on ({', '.join(pw.name for pw in generated)}) generated; "
                           f"generate every password with RandomPassword and pass it as a Pulumi secret.")
            elif len(set(passwords.values())) > len(generated):
                yield (f"{r.label} sets {len(set(passwords.values()))} different passwords but draws on only "
                       f"{len(generated)} RandomPassword resource(s), so some are typed into the program; "
                       f"generate every password with RandomPassword.")
        values = list(passwords.values())
        if len(set(values)) < len(values):
            yield f"{r.label} gives several roles the same password; each database role needs its own."
        for other in _shared_with_others(index, r, set(values)):
            yield (f"{r.label} uses the same password as {other.label}; every server and role needs its own "
                   f"generated password.")
        needed = len(r.databases) + 1  # one per database role, plus the admin
        if r.databases and len(generated) < needed:
            yield (f"{r.label} hosts {len(r.databases)} database(s) but its environment draws on only "
                   f"{len(generated)} generated password(s); give the admin and every database role a "
                   f"RandomPassword of its own.")
        return
    if r.type == RDS_INSTANCE:
        pw = r.get("password")
        if _visible(pw):
            for other in _shared_with_others(index, r, [pw]):
                yield (f"{r.label} has the same master password as {other.label}; give every instance a "
                       f"RandomPassword of its own.")
        return
    if r.type == STACK:
        outputs = r.props
        dbs = outputs.get("databases") if isinstance(outputs.get("databases"), dict) else {}
        services = outputs.get("services") if isinstance(outputs.get("services"), dict) else {}
        for service, info in sorted(services.items()):
            if not isinstance(info, dict):
                continue
            for db in as_list(info.get("databases")):
                owner = dbs.get(db, {}).get("owner") if isinstance(dbs.get(db), dict) else None
                if owner is not None and owner != service:
                    yield (f"The stack output `services.{service}` hands {service} the credentials of database "
                           f"{db}, which belongs to {owner}; export each database's URL to its owner only.")
        by_group: dict[str, set] = {}
        for _db, info in sorted(dbs.items()):
            if isinstance(info, dict) and isinstance(info.get("security_group_id"), str):
                by_group.setdefault(info["security_group_id"], set()).add(info.get("owner"))
        for group, owners in sorted(by_group.items()):
            if len(owners) > 1:
                yield (f"The stack output `databases` gives the same client security group {group} to "
                       f"{', '.join(sorted(str(o) for o in owners))}; every service gets a client group of its own.")


# --- db-ingress-owner-only -------------------------------------------------------------------------
def _db_port(instances: list[Res]) -> int:
    for inst in instances:
        port = as_int(inst.get("port"))
        if port:
            return port
    return 5432


def _instance_owners(instances: list[Res]) -> set[str]:
    return {o for inst in instances for o in inst.owners}


def _check_source(index: Index, rule: Res, target: Res, instances: list[Res], key: str,
                  cidr_keys: tuple, proto_key: str = "ipProtocol") -> Iterable[str]:
    owners = _instance_owners(instances)
    dbs = sorted({d for inst in instances for d in inst.databases})
    what = f"database security group {target.name} (database {','.join(dbs) or '?'})"
    cidrs = [c for k in cidr_keys for c in as_list(rule.get(k)) if c]
    if any(c is UNKNOWN for c in cidrs):
        raise CouldNotCheck(rule, cidr_keys[0])
    if cidrs:
        yield (f"{rule.label} admits the address range(s) {', '.join(map(str, cidrs))} into {what}; admit only "
               f"the owner's client security group (referenced_security_group_id), never an address range.")
    if rule.get("prefixListId") or rule.get("prefixListIds"):
        yield f"{rule.label} admits a prefix list into {what}; admit only the owner's client security group."
    sources, unresolved, unknown = index.refs(rule, key, SECURITY_GROUP)
    if not sources and unknown:
        raise CouldNotCheck(rule, key)
    for value in unresolved:
        yield (f"{rule.label} admits security group {value}, which is not a client group of this stack, into "
               f"{what}; admit only {', '.join(sorted(owners)) or 'the owner'}'s client security group.")
    for source in sources:
        if source.urn == target.urn:
            continue  # self-reference: members of the database group itself (the instances)
        if source.urn in _db_groups(index):
            other = _db_groups(index)[source.urn]
            yield (f"{rule.label} admits the database security group {source.name} of "
                   f"{','.join(sorted({d for i in other for d in i.databases}))} into {what}; admit only the "
                   f"owner's client security group.")
            continue
        if source.role == "bootstrap" and sorted(source.databases) != dbs:
            yield (f"{rule.label} admits the bootstrap function group {source.name} of "
                   f"{','.join(source.databases) or 'no database'} into {what}; a database admits only its own "
                   f"bootstrap function.")
            continue
        src_owners = set(source.owners)
        if not src_owners or src_owners != owners:
            yield (f"{rule.label} admits {source.label} (owner {','.join(sorted(src_owners)) or 'missing'}) into "
                   f"{what}, which belongs to {', '.join(sorted(owners)) or 'no owner'}; only the owning "
                   f"service's client group may reach a database.")
    if not cidrs and not sources and not unresolved and not unknown and not rule.get("prefixListId"):
        return
    proto = rule.get(proto_key)
    port = _db_port(instances)
    if proto in ("-1", "all", -1):
        yield (f"{rule.label} opens every protocol and port of {what}; open tcp {port} only.")
        return
    lo, hi = as_int(rule.get("fromPort")), as_int(rule.get("toPort"))
    if lo is not None and hi is not None and (lo, hi) != (port, port):
        yield (f"{rule.label} opens ports {lo}-{hi} of {what}; open the database port {port} only.")


@stack_rule(POLICIES, "db-ingress-owner-only",
    "A database's security group admits only its owner's client security group (and the database's own "
    "bootstrap function group), on the database port.",
    MANDATORY, [SECURITY_GROUP, INGRESS_RULE, EGRESS_RULE, LEGACY_SG_RULE],
)
def check_db_ingress_owner_only(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    groups = _db_groups(index)
    if r.type == SECURITY_GROUP:
        instances = groups.get(r.urn)
        if not instances:
            return
        for block, pseudo in _inline_ingress(r):
            if truthy(block.get("self")) and not block.get("securityGroups"):
                continue
            yield from _check_source(index, pseudo, r, instances, "securityGroups",
                                     ("cidrBlocks", "ipv6CidrBlocks"), "protocol")
        return
    if r.type in (INGRESS_RULE, LEGACY_SG_RULE):
        if r.type == LEGACY_SG_RULE and r.need("type") != "ingress":
            yield from _check_egress(index, r, "securityGroupId", "sourceSecurityGroupId")
            return
        targets, _, unknown = index.refs(r, "securityGroupId", SECURITY_GROUP)
        if not targets and unknown:
            raise CouldNotCheck(r, "securityGroupId")
        for target in targets:
            instances = groups.get(target.urn)
            if not instances:
                continue
            if r.type == INGRESS_RULE:
                yield from _check_source(index, r, target, instances, "referencedSecurityGroupId",
                                         ("cidrIpv4", "cidrIpv6"))
            else:
                yield from _check_source(index, r, target, instances, "sourceSecurityGroupId",
                                         ("cidrBlocks", "ipv6CidrBlocks"), "protocol")
        return
    if r.type == EGRESS_RULE:
        yield from _check_egress(index, r, "securityGroupId", "referencedSecurityGroupId")


def _inline_ingress(r: Res):
    """A security group's inline `ingress` blocks, each with a rule-shaped stand-in whose label names
    the block (db-ingress-owner-only and rds-proxy-owner-only judge them like rule resources)."""
    ingress = r.get("ingress")
    if ingress is UNKNOWN:
        raise CouldNotCheck(r, "ingress")
    for i, block in enumerate(as_list(ingress)):
        if isinstance(block, dict):
            yield block, Res(INGRESS_RULE, r.urn, f"{r.name}.ingress[{i}]", {
                "cidrBlocks": block.get("cidrBlocks"), "ipv6CidrBlocks": block.get("ipv6CidrBlocks"),
                "securityGroups": block.get("securityGroups"), "prefixListIds": block.get("prefixListIds"),
                "protocol": block.get("protocol"), "fromPort": block.get("fromPort"), "toPort": block.get("toPort"),
            })


def _check_egress(index: Index, r: Res, source_key: str, dest_key: str) -> list[str]:
    """A client group's egress to another owner's database group is a path waiting for an ingress."""
    groups = _db_groups(index)
    dests, _, _unknown_dest = index.refs(r, dest_key, SECURITY_GROUP)
    clients, _, _unknown_src = index.refs(r, source_key, SECURITY_GROUP)
    out = []
    for dest in dests:
        instances = groups.get(dest.urn)
        if not instances:
            continue
        owners = _instance_owners(instances)
        for client in clients:
            if client.urn in groups:
                continue
            if set(client.owners) != owners:
                out.append(f"{r.label} lets {client.label} (owner {','.join(client.owners) or 'missing'}) send to "
                           f"the database security group {dest.name} of {', '.join(sorted(owners)) or 'no owner'}; "
                           f"a client group may reach only its own service's databases.")
    return out


@stack_rule(POLICIES, "no-shared-volumes",
    "Every database server has a Docker volume of its own; no volume is mounted twice, no host bind mounts.",
    MANDATORY, [VOLUME, CONTAINER],
)
def check_no_shared_volumes(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if r.type == VOLUME:
        users = [c for c in index.of_type(CONTAINER) if r in index.attached(c, "volumes", VOLUME)]
        if len(users) > 1:
            yield (f"{r.label} is mounted by several containers ({', '.join(u.name for u in users)}), so each can "
                   f"read the other's data files; give every database server a volume of its own.")
        for user in users:
            if r.databases and user.databases and sorted(user.databases) != sorted(r.databases):
                yield (f"{r.label} holds the data of {','.join(r.databases)} but is mounted by {user.label} of "
                       f"{','.join(user.databases)}; mount only the server's own volume.")
        return
    if r.type == CONTAINER:
        for mount in as_list(r.get("volumes")):
            if isinstance(mount, dict) and mount.get("hostPath"):
                yield (f"{r.label} bind-mounts the host directory {mount.get('hostPath')}, which any other "
                       f"container or process on the host can share; use a named Docker volume of its own.")
            if isinstance(mount, dict) and mount.get("fromContainer"):
                yield (f"{r.label} mounts the volumes of container {mount.get('fromContainer')}; use a named "
                       f"Docker volume of its own.")
        for mount in as_list(r.get("mounts")):
            if isinstance(mount, dict) and mount.get("type") == "bind":
                yield (f"{r.label} bind-mounts {mount.get('source')} from the host; use a named Docker volume "
                       f"of its own.")


@stack_rule(POLICIES, "no-shared-networks",
    "Every database server has a network of its own (Docker network; RDS security group); no host or default "
    "bridge networking.",
    MANDATORY, [NETWORK, CONTAINER, SECURITY_GROUP],
)
def check_no_shared_networks(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if r.type == NETWORK:
        users = [c for c in index.of_type(CONTAINER) if r in index.attached(c, "networksAdvanced", NETWORK)]
        if len(users) > 1:
            yield (f"{r.label} connects several database containers ({', '.join(u.name for u in users)}); give "
                   f"each server a network of its own so that a service joins only its own database's network.")
        for user in users:
            if r.databases and user.databases and sorted(user.databases) != sorted(r.databases):
                yield (f"{r.label} belongs to {','.join(r.databases)} but {user.label} of "
                       f"{','.join(user.databases)} joins it; attach each container only to its own network.")
        return
    if r.type == CONTAINER:
        mode = r.get("networkMode")
        if mode is UNKNOWN:
            raise CouldNotCheck(r, "networkMode")
        if isinstance(mode, str) and (mode == "host" or mode.startswith("container:")):
            yield (f"{r.label} uses network mode '{mode}', sharing a network namespace with other processes; "
                   f"attach it to its own Docker network instead.")
        elif not as_list(r.get("networksAdvanced")) and mode in (None, "", "bridge", "default"):
            yield (f"{r.label} is on Docker's default bridge network, which every other container shares; "
                   f"attach it to the database's own network (networks_advanced).")
        return
    if r.type == SECURITY_GROUP:
        instances = _db_groups(index).get(r.urn) or []
        dbs = sorted({d for i in instances for d in i.databases} | {f"?{i.name}" for i in instances if not i.databases})
        if len(dbs) > 1:
            yield (f"{r.label} guards several databases ({', '.join(dbs)}), so whoever it admits reaches all of "
                   f"them; give every database a security group of its own.")


@resource_rule(POLICIES, "dev-ports-loopback-only",
    "Dev database containers publish their ports on the loopback interface only.",
    MANDATORY, [CONTAINER],
    config_schema=schema({"allowedHostIps": string_list(thresholds.LOOPBACK_IPS,
                                                        "Host IPs a container may publish a port on.")}),
)
def check_dev_ports_loopback_only(r: Res, cfg: dict) -> Iterable[str]:
    loopback = set(str(x) for x in as_list(cfg.get("allowedHostIps")))
    if r.need("networkMode") == "host":
        yield (f"{r.label} uses host networking, so PostgreSQL listens on every interface of the machine; use "
               f"a bridge network and publish the port on 127.0.0.1.")
    for port in as_list(r.need("ports")):
        if not isinstance(port, dict):
            continue
        ip = port.get("ip")
        if ip in (None, ""):
            yield (f"{r.label} publishes port {port.get('external') or port.get('internal')} without an ip, which "
                   f"Docker binds on 0.0.0.0 (every interface); set ip=\"127.0.0.1\".")
        elif str(ip) not in loopback:
            yield (f"{r.label} publishes port {port.get('external') or port.get('internal')} on {ip}, reachable "
                   f"from other machines; publish it on 127.0.0.1 only.")


@resource_rule(POLICIES, "one-database-per-server",
    "Every database has a server of its own. Shared dev servers (roles keep databases apart) are allowed by "
    "default; set allowSharedDevServers=false (and enforcementLevel mandatory, as the prod config does) to refuse them.",
    ADVISORY, [RDS_INSTANCE, CONTAINER],
    config_schema=schema({"allowSharedDevServers": {
        "type": "boolean", "default": thresholds.ALLOW_SHARED_DEV_SERVERS,
        "description": "Whether a Docker container may host several databases (bulkhead:servers)."}}),
)
def check_one_database_per_server(r: Res, cfg: dict) -> Iterable[str]:
    if r.tags_unknown():
        raise CouldNotCheck(r, "tags")
    dbs = r.databases
    if len(dbs) <= 1:
        return
    if r.type == RDS_INSTANCE:
        yield (f"{r.label} hosts several databases ({', '.join(dbs)}); give every database an RDS instance of "
               f"its own.")
    elif r.type == CONTAINER and not truthy(cfg.get("allowSharedDevServers")):
        yield (f"{r.label} is a shared server for {', '.join(dbs)}, which this stack does not allow; remove "
               f"`server` from those databases so that each gets its own container.")


# --- access-policy-single-database ------------------------------------------------------------------
_GRANT_ACTIONS = ("secretsmanager:", "kms:decrypt", "kms:*", "rds-db:", "rds:*", "*")
_DBUSER = re.compile(r"^arn:[^:]+:rds-db:[^:]*:[^:]*:dbuser:([^/]+)/(.*)$")
_SECRET_READ_ACTIONS = ("secretsmanager:getsecretvalue", "secretsmanager:*", "*")
MASTER_SECRET_ROLE = "master-secret"
BOOTSTRAP_ROLE = "bootstrap"


def _allowed(doc, prefixes: tuple) -> list[tuple[dict, list[str]]]:
    """(statement, lower-case actions) of the Allow statements with an action among `prefixes`."""
    out = []
    for st in statements(doc):
        if st.get("Effect", "Allow") != "Allow":
            continue
        actions = [str(a).lower() for a in as_list(st.get("Action"))]
        if any(a == p or (p.endswith(":") and a.startswith(p)) or (p.endswith("*") and a.startswith(p[:-1]))
               for a in actions for p in prefixes):
            out.append((st, actions))
    return out


def _master_secret_of(index: Index, arn: str) -> list[Res]:
    """The master secret(s) `arn` names: bulkhead's (role master-secret) or an RDS-managed one."""
    hits = [h for h in index.lookup(arn, SECRET) if h.role == MASTER_SECRET_ROLE]
    hits += [h for h in index.lookup(arn, RDS_INSTANCE)]  # masterUserSecrets ARNs resolve to the instance
    return hits


def _bootstrap_role_of(index: Index, r: Res) -> list[Res]:
    """For an inline role policy: the bootstrap role(s) it is attached to."""
    if r.type != "aws:iam/rolePolicy:RolePolicy":
        return []
    roles, _, _ = index.refs(r, "role", IAM_ROLE)
    return [role for role in roles if role.role == BOOTSTRAP_ROLE]


def master_secret_grants(index: Index, r: Res) -> list[tuple[str, list[str]]]:
    """(secret ARN, databases) of every master secret policy `r` lets its holder read,
    except the one grant bulkhead makes: a database's bootstrap role reading that database's secret."""
    out = []
    bootstrap_dbs = {d for role in _bootstrap_role_of(index, r) for d in role.databases}
    for st, _ in _allowed(policy_document(r), _SECRET_READ_ACTIONS):
        for res in strings(st.get("Resource")):
            secrets = _master_secret_of(index, res)
            if not secrets and ":secret:rds!" in res:
                out.append((res, []))  # RDS names its managed master secrets rds!<kind>-<id>
            for secret in secrets:
                dbs = sorted(secret.databases)
                if dbs and set(dbs) <= bootstrap_dbs:
                    continue
                out.append((res, dbs))
    return out


def _databases_of(index: Index, r: Res) -> set[str]:
    if r.databases:
        return set(r.databases)
    if r.type == KMS_KEY:  # an untagged key: whose instances use it?
        out = set()
        for inst in index.of_type(RDS_INSTANCE):
            found, _, _ = index.refs(inst, "kmsKeyId", KMS_KEY)
            if r in found:
                out |= set(inst.databases) or {f"?{inst.name}"}
        return out
    return {f"?{r.name}"}


def _granted(index: Index, r: Res) -> tuple[set[str], list[str]]:
    granted: set[str] = set()
    wildcards: list[str] = []
    for urn in r.deps.get("policy", []):
        dep = index.by_urn.get(urn)
        if dep is not None and dep.type in (RDS_INSTANCE, KMS_KEY, SECRET):
            granted |= _databases_of(index, dep)
    doc = policy_document(r)
    for st in statements(doc):
        if st.get("Effect", "Allow") != "Allow":
            continue
        actions = [str(a).lower() for a in as_list(st.get("Action"))]
        if not any(a.startswith(p) or a == p for a in actions for p in _GRANT_ACTIONS):
            continue
        for res in strings(st.get("Resource")):
            if res == "*" or res.endswith(":*") or res.endswith("secret:*") or res.endswith("key/*") or \
                    re.search(r":dbuser:\*", res) or res.endswith("db:*"):
                wildcards.append(res)
                continue
            m = _DBUSER.match(res)
            if m and "*" in m.group(2):
                wildcards.append(res)  # any database user: the master too
            hits = index.lookup(m.group(1) if m else res, RDS_INSTANCE, KMS_KEY, SECRET)
            for hit in hits:
                granted |= _databases_of(index, hit)
    return granted, wildcards


@stack_rule(POLICIES, "access-policy-single-database",
    "An IAM policy grants the secret, key and rds-db:connect of exactly one database, never a wildcard, never a "
    "`/*` database user and never a master secret (the one exception: a database's own bootstrap role reading "
    "that database's secret).",
    MANDATORY, list(IAM_POLICY_TYPES),
)
def check_access_policy_single_database(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    document = r.get("policy")
    granted, wildcards = _granted(index, r)
    if contains_unknown(document) and len(granted) <= 1:
        raise CouldNotCheck(r, "policy")
    if wildcards:
        yield (f"{r.label} grants database access on wildcard resource(s) {', '.join(sorted(set(wildcards)))}, "
               f"which covers every database; name exactly one database's secret, key and rds-db:connect user.")
    if len(granted) > 1:
        yield (f"{r.label} grants access to several databases ({', '.join(sorted(granted))}); give every "
               f"database its own access policy and attach only the owner's.")
    elif granted and r.databases and not granted <= set(r.databases):
        yield (f"{r.label} is tagged for {','.join(r.databases)} but grants {', '.join(sorted(granted))}; grant "
               f"only the database it belongs to.")
    for arn, dbs in master_secret_grants(index, r):
        yield (f"{r.label} grants the master secret {arn} of {','.join(dbs) or 'a database'}; the master is "
               f"break-glass, so grant the service only rds-db:connect for its own role.")


# --- service-role-not-master ------------------------------------------------------------------------
def _master_users(index: Index) -> dict[str, tuple[str, Res]]:
    """DbiResourceId and identifier of every instance -> (its master username, the primary)."""
    def build():
        out: dict[str, tuple[str, Res]] = {}
        primaries = {}
        for inst in index.of_type(RDS_INSTANCE):
            if inst.is_primary and isinstance(inst.get("username"), str):
                primaries[inst.urn] = inst
        for inst in index.of_type(RDS_INSTANCE):
            primary = inst if inst.urn in primaries else None
            if primary is None:
                found, _, _ = index.refs(inst, "replicateSourceDb", RDS_INSTANCE)
                primary = next((f for f in found if f.urn in primaries), None)
            if primary is None:
                continue
            for key in ("resourceId", "identifier"):
                if isinstance(inst.get(key), str):
                    out[inst.get(key)] = (primary.get("username"), primary)
        return out
    return _cached(index, "master_users", build)


def _url_user(url) -> str | None:
    m = re.match(r"^postgres(?:ql)?://([^:@/]+)(?::[^@]*)?@", url) if isinstance(url, str) else None
    return m.group(1) if m else None


def _database_master(index: Index, db: str, info: dict) -> tuple[str | None, Res | None]:
    for key in ("instance_identifier", "resource_id"):
        hit = _master_users(index).get(info.get(key)) if isinstance(info.get(key), str) else None
        if hit:
            return hit
    for inst in index.of_type(RDS_INSTANCE):
        if inst.is_primary and inst.databases == [db] and isinstance(inst.get("username"), str):
            return inst.get("username"), inst
    return None, None


@stack_rule(POLICIES, "service-role-not-master",
    "No stack output or IAM policy hands a service the master credentials: outputs name the service's own "
    "login role, and no policy grants a master secret or rds-db:connect as the master user.",
    MANDATORY, [STACK, *IAM_POLICY_TYPES],
)
def check_service_role_not_master(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if r.type == STACK:
        dbs = r.props.get("databases") if isinstance(r.props.get("databases"), dict) else {}
        masters: dict[str, str] = {}
        for db, info in sorted(dbs.items()):
            if not isinstance(info, dict) or info.get("platform") != "aws":
                continue
            master, primary = _database_master(index, db, info)
            if not master:
                continue
            masters[db] = master
            if info.get("username") == master:
                yield (f"The stack output `databases.{db}.username` is {master}, the master user of "
                       f"{primary.label}; export the service's own login role (bulkhead creates it with the "
                       f"bootstrap function).")
            if _url_user(info.get("url")) == master:
                yield (f"The stack output `databases.{db}.url` logs in as the master user {master}; export a URL "
                       f"for the service's own login role.")
            if info.get("password") or info.get("master_password"):
                yield (f"The stack output `databases.{db}` carries a password on an aws stack; services log in "
                       f"with IAM tokens, so remove it.")
        services = r.props.get("services") if isinstance(r.props.get("services"), dict) else {}
        by_url_master = set(masters.values())
        for service, info in sorted(services.items()):
            env = info.get("env") if isinstance(info, dict) else None
            for name, url in sorted((env or {}).items()) if isinstance(env, dict) else []:
                if by_url_master and _url_user(url) in by_url_master:
                    yield (f"The stack output `services.{service}.env.{name}` logs in as a master user "
                           f"({_url_user(url)}); hand the service its own login role's URL.")
        return
    for st, _ in _allowed(policy_document(r), ("rds-db:", "rds-db:connect", "*")):
        for res in strings(st.get("Resource")):
            m = _DBUSER.match(res)
            if not m:
                continue
            hit = _master_users(index).get(m.group(1))
            if hit and m.group(2) == hit[0]:
                yield (f"{r.label} grants rds-db:connect as {hit[0]}, the master user of {hit[1].label}; grant "
                       f"only the service's own login role.")
    for arn, dbs in master_secret_grants(index, r):
        yield (f"{r.label} hands the master credentials of {','.join(dbs) or 'a database'} ({arn}) to whoever "
               f"holds it; only the database's own bootstrap function may read them.")


def _expected_platform(index: Index, stack: str, mapping: dict) -> Optional[str]:
    """thresholds.expected_platform, once per (stack, mapping) and index: every resource of a stack
    asks it with the same two (41.6k times at 1000 databases, each matching every key)."""
    # Keyed by the mapping's identity (one merged config per policy run), which the memo holds,
    # so an id is never reused while its entry lives.
    memo = _cached(index, "expected_platform", dict)
    entry = memo.get((stack, id(mapping)))
    if entry is None or entry[0] is not mapping:
        entry = memo[(stack, id(mapping))] = (mapping, thresholds.expected_platform(stack, mapping))
    return entry[1]


@stack_rule(POLICIES, "platform-matches-stack",
    "A stack's databases live on the platform its name implies (prod: aws, dev: docker), on one platform only, "
    "and carry their own stack's bulkhead:stack tag.",
    MANDATORY, [],
    config_schema=schema({"platformByStack": {
        "type": "object", "additionalProperties": {"type": "string", "enum": ["aws", "docker"]},
        "default": dict(thresholds.PLATFORM_BY_STACK_PREFIX),
        "description": "Stack name (or prefix before -, _ or .) -> required platform."}}),
)
def check_platform_matches_stack(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    stack = r.stack
    if r.type == STACK:
        kinds = {"docker" if t == CONTAINER else "aws" for t in (CONTAINER, RDS_INSTANCE) if index.of_type(t)}
        if len(kinds) > 1:
            yield (f"Stack {stack} creates both Docker containers and RDS instances; a stack has one platform "
                   f"(bulkhead:platform), so put dev databases and prod databases in separate stacks.")
        return
    platform = "docker" if r.type.startswith("docker:") else ("aws" if r.type.startswith("aws:") else None)
    if platform is None:
        return
    expected = _expected_platform(index, stack or "", cfg.get("platformByStack") or {})
    if expected and platform != expected and r.type in (CONTAINER, VOLUME, NETWORK, RDS_INSTANCE):
        yield (f"{r.label} is a {platform} database resource in stack {stack}, which must use the {expected} "
               f"platform; set bulkhead:platform to {expected} in Pulumi.{stack}.yaml.")
    tagged = r.tags.get(TAG_STACK)
    if tagged and stack and tagged != stack:
        yield (f"{r.label} is tagged bulkhead:stack={tagged} but belongs to stack {stack}, so backups and audits "
               f"would attribute it to the wrong stack; tag it with its own stack.")


# --- rds-proxy-owner-only (issue 24: `proxy: true`, components/prod/proxy.py) ----------------------
RDS_PROXY = "aws:rds/proxy:Proxy"


def _proxy_groups(index: Index) -> dict[str, Res]:
    """security group urn -> the RDS Proxy that wears it (vpcSecurityGroupIds)."""
    out: dict[str, Res] = {}
    for proxy in index.of_type(RDS_PROXY):
        groups, _, _ = index.refs(proxy, "vpcSecurityGroupIds", SECURITY_GROUP)
        for group in groups:
            out[group.urn] = proxy
    return out


RDS_PROXY_TARGET = "aws:rds/proxyTarget:ProxyTarget"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# What a proxy's role may be allowed (components/prod/proxy.py: end-to-end IAM needs rds-db:connect; the
# secrets mode, which bulkhead does not use, GetSecretValue and kms:Decrypt of the secret's key: RDS User
# Guide, "Configuring IAM authentication for RDS Proxy").
_PROXY_ROLE_ACTIONS = ("rds-db:connect", "secretsmanager:getsecretvalue", "kms:decrypt")


def _proxy_database(index: Index, proxy: Res) -> tuple[set, set]:
    """(instances, their resource ids) of the proxy's own database: tagged with its database and owner."""
    instances = {i.urn: i for i in index.of_type(RDS_INSTANCE)
                 if proxy.databases and set(i.databases) == set(proxy.databases) and set(i.owners) == set(proxy.owners)}
    return set(instances), {i.get("resourceId") for i in instances.values() if isinstance(i.get("resourceId"), str)}


def _proxy_target_problems(index: Index, proxy: Res) -> Iterable[str]:
    """The proxy forwards to what its targets name: only its own database's instance."""
    own, _ = _proxy_database(index, proxy)
    for target in index.referrers(proxy, [RDS_PROXY_TARGET], "dbProxyName"):
        if target.is_set("dbClusterIdentifier"):
            yield (f"{target.label} makes RDS Proxy {proxy.name} forward to a cluster; it may forward only to the "
                   f"primary of its own database ({','.join(proxy.databases) or '?'}).")
        instances, unresolved, unknown = index.refs(target, "dbInstanceIdentifier", RDS_INSTANCE)
        if not instances and unknown:
            raise CouldNotCheck(target, "dbInstanceIdentifier")
        for value in unresolved:
            yield (f"{target.label} makes RDS Proxy {proxy.name} forward to instance {value}, which is no database "
                   f"of this stack; target only the primary of its own database.")
        for inst in instances:
            if inst.urn not in own:
                yield (f"{target.label} makes RDS Proxy {proxy.name} (database {','.join(proxy.databases) or '?'}, "
                       f"owner {','.join(proxy.owners) or 'missing'}) forward to {inst.label} (database "
                       f"{','.join(inst.databases) or '?'}, owner {','.join(inst.owners) or 'missing'}): its owner's "
                       f"clients would reach another service's data; target only the proxy's own database.")


def _proxy_role_problems(index: Index, proxy: Res) -> Iterable[str]:
    """The proxy's role: rds-db:connect on its own database's dbuser ARNs, secrets and keys of that
    database only, nothing else (no managed policy, no inline policy on the role itself)."""
    roles, unresolved, unknown = index.refs(proxy, "roleArn", IAM_ROLE)
    if not roles and unknown:
        raise CouldNotCheck(proxy, "roleArn")
    for value in unresolved:
        yield (f"{proxy.label} uses role {value}, which this stack does not manage; give it the role bulkhead "
               f"creates, which may connect only as its owner's login role.")
    _, resource_ids = _proxy_database(index, proxy)
    own_db = set(proxy.databases)
    for role in roles:
        if as_list(role.get("managedPolicyArns")) or as_list(role.get("inlinePolicies")):
            yield (f"{role.label}, the role of RDS Proxy {proxy.name}, carries managed or inline policies of its own; "
                   f"give it only its connect policy.")
        for attachment in index.referrers(role, [ROLE_POLICY_ATTACHMENT], "role"):
            yield (f"{attachment.label} attaches a managed policy to {role.label}, the role of RDS Proxy "
                   f"{proxy.name}; give it only its connect policy.")
        for pol in index.referrers(role, [IAM_ROLE_POLICY], "role"):
            if contains_unknown(pol.get("policy")):
                raise CouldNotCheck(pol, "policy")
            doc = policy_document(pol)
            if doc is None:
                yield f"{pol.label} is no policy document this rule can read; write it as JSON."
                continue
            for st in statements(doc):
                if st.get("Effect") != "Allow":
                    continue
                actions = [a.lower() for a in strings(st.get("Action"))]
                resources = strings(st.get("Resource"))
                if st.get("NotAction") is not None or st.get("NotResource") is not None:
                    yield (f"{pol.label} allows with NotAction/NotResource on {role.label}, the role of RDS Proxy "
                           f"{proxy.name}; name the actions and resources.")
                    continue
                for action in actions:
                    if action not in _PROXY_ROLE_ACTIONS:
                        yield (f"{pol.label} allows {action} to {role.label}, the role of RDS Proxy {proxy.name}; it "
                               f"may only connect to its own database (rds-db:connect).")
                for resource in resources:
                    if "rds-db:connect" in actions:
                        m = re.fullmatch(r"arn:[^:]+:rds-db:[^:]+:[^:]+:dbuser:([^/]+)/(.+)", resource)
                        if not m or m[1] not in resource_ids or "*" in m[2]:
                            yield (f"{pol.label} lets {role.label}, the role of RDS Proxy {proxy.name}, connect as "
                                   f"{resource}; only its own database's dbuser ARNs (database "
                                   f"{','.join(proxy.databases) or '?'}) and one login role.")
                    for kind, typ in (("secretsmanager:getsecretvalue", SECRET), ("kms:decrypt", KMS_KEY)):
                        if kind not in actions:
                            continue
                        hits = index.lookup(resource, typ)
                        if not hits or any(not set(h.databases) or not set(h.databases) <= own_db for h in hits):
                            yield (f"{pol.label} lets {role.label}, the role of RDS Proxy {proxy.name}, use {resource} "
                                   f"({kind}); only its own database's secret and key.")


RDS_PROXY_ENDPOINT = "aws:rds/proxyEndpoint:ProxyEndpoint"


def _proxy_endpoint_problems(index: Index, proxy: Res) -> Iterable[str]:
    """bulkhead declares no endpoint of its own (components/prod/proxy.py: clients use the proxy's default
    endpoint, `proxy_host`). An aws_db_proxy_endpoint (CreateDBProxyEndpoint) has its own
    vpc_subnet_ids and vpc_security_group_ids, possibly in another VPC (RDS API reference,
    CreateDBProxyEndpoint; terraform-provider-aws internal/service/rds/proxy_endpoint.go): a way into the
    database that the proxy's group, which this rule checks, does not guard. `audit` reports one made by
    hand; this refuses one declared in the program (review rev-ops2)."""
    for endpoint in index.referrers(proxy, [RDS_PROXY_ENDPOINT], "dbProxyName"):
        groups = ", ".join(str(g) for g in as_list(endpoint.get("vpcSecurityGroupIds"))) or "the VPC's default group"
        yield (f"{endpoint.label} adds an endpoint to RDS Proxy {proxy.name} (database {','.join(proxy.databases) or '?'}, "
               f"owner {','.join(sorted(proxy.owners)) or 'missing'}) with its own subnets and groups ({groups}): "
               f"another way into the database that the proxy's group does not guard; remove it, clients use the "
               f"proxy's default endpoint (proxy_host).")


def _proxy_what(target: Res, proxy: Res) -> str:
    return (f"the security group {target.name} of RDS Proxy {proxy.name} (database "
            f"{','.join(proxy.databases) or '?'}, owner {','.join(sorted(proxy.owners)) or 'missing'})")


def _proxy_source_problems(index: Index, rule: Res, what: str, owners: set, cidrs: list, prefix_lists: list,
                           source_key: str, source_value, proto, lo, hi) -> Iterable[str]:
    """One way into a proxy's group (a rule resource or an inline `ingress` block), judged as a whole."""
    port = 5432
    if any(c is UNKNOWN for c in cidrs):
        raise CouldNotCheck(rule, "cidrIpv4")
    if cidrs:
        yield (f"{rule.label} admits the address range(s) {', '.join(map(str, cidrs))} into {what}; admit only the "
               f"owner's client security group (referenced_security_group_id).")
    if prefix_lists:
        yield f"{rule.label} admits a prefix list into {what}; admit only the owner's client security group."
    # [] (an inline block naming no group): nothing to resolve; None: the rule's own property.
    sources, unresolved, unknown_src = (([], [], False) if source_value == [] else
                                        index.refs(rule, source_key, SECURITY_GROUP, value=source_value))
    if not sources and unknown_src:
        raise CouldNotCheck(rule, source_key)
    for value in unresolved:
        yield (f"{rule.label} admits security group {value}, which is not a client group of this stack, into "
               f"{what}; admit only the owner's client security group.")
    for source in sources:
        if source.role != "client" or set(source.owners) != owners:
            yield (f"{rule.label} admits {source.label} (role {source.role or 'missing'}, owner "
                   f"{','.join(source.owners) or 'missing'}) into {what}; only the owning service's client "
                   f"group may reach its proxy.")
    lo, hi = as_int(lo), as_int(hi)
    if proto in ("-1", "all", -1) or (lo is not None and hi is not None and (lo, hi) != (port, port)):
        yield f"{rule.label} opens more than tcp {port} of {what}; open the PostgreSQL port only."


@stack_rule(POLICIES, "rds-proxy-owner-only",
    "An RDS Proxy requires TLS, uses IAM end to end (no secret-based `auth`), and its security group admits only "
    "the client security group of the service that owns the proxy's database, on the database port; it targets only "
    "its own database's instance, it has no endpoint besides its default one, and its role may connect only to that "
    "database (rds-db:connect on its dbuser ARNs; secrets and keys of that database only): a proxy is one more way "
    "into the database.",
    MANDATORY, [RDS_PROXY, INGRESS_RULE, SECURITY_GROUP, LEGACY_SG_RULE],
)
def check_rds_proxy_owner_only(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if r.type == RDS_PROXY:
        if truthy(r.get("requireTls")) is not True:
            yield (f"{r.label} accepts connections without TLS; set require_tls: true (CreateDBProxy RequireTLS), "
                   f"so tokens and data never cross the network in clear.")
        # With `auth` blocks (AuthScheme SECRETS) the proxy logs in with whatever secret they name, e.g.
        # a master secret, and any client that passes the proxy's own check gets that login
        # (RDS User Guide, "Setting up database credentials for RDS Proxy"); bulkhead's proxies use
        # end-to-end IAM as the owner's login role only (components/prod/proxy.py).
        scheme = r.get("defaultAuthScheme")
        if scheme is UNKNOWN:
            raise CouldNotCheck(r, "defaultAuthScheme")
        if scheme != "IAM_AUTH":
            yield (f"{r.label} has default_auth_scheme {scheme or 'unset (NONE)'}; set IAM_AUTH, so the proxy "
                   f"logs in to the database as the owner's login role through IAM, never with a stored secret.")
        if as_list(r.get("auths")):
            yield (f"{r.label} has `auth` blocks (logins from Secrets Manager secrets); remove them: the proxy "
                   f"uses end-to-end IAM as the owner's login role only.")
        # Review of issue 24 (o-fix): what the proxy forwards to and what its role may do are two more ways
        # to another service's data.
        yield from _proxy_target_problems(index, r)
        yield from _proxy_role_problems(index, r)
        yield from _proxy_endpoint_problems(index, r)
        return
    proxies = _cached(index, "proxy_groups", lambda: _proxy_groups(index))
    if r.type == SECURITY_GROUP:
        # Inline `ingress` blocks and legacy aws.ec2.SecurityGroupRule admit as well as the rule resource
        # bulkhead creates (db-ingress-owner-only judges all three for the database's group).
        proxy = proxies.get(r.urn)
        if proxy is None:
            return
        for block, pseudo in _inline_ingress(r):
            cidrs = [c for k in ("cidrBlocks", "ipv6CidrBlocks") for c in as_list(block.get(k)) if c]
            if truthy(block.get("self")):
                yield (f"{pseudo.label} admits the group's own members (self) into {_proxy_what(r, proxy)}; admit "
                       f"only the owner's client security group.")
            yield from _proxy_source_problems(index, r, _proxy_what(r, proxy), set(proxy.owners), cidrs,
                                              as_list(block.get("prefixListIds")), "ingress",
                                              block.get("securityGroups") or [], block.get("protocol"),
                                              block.get("fromPort"), block.get("toPort"))
        return
    if r.type == LEGACY_SG_RULE and r.get("type") != "ingress":
        return
    targets, _, unknown = index.refs(r, "securityGroupId", SECURITY_GROUP)
    if not targets and unknown:
        raise CouldNotCheck(r, "securityGroupId")
    for target in targets:
        proxy = proxies.get(target.urn)
        if proxy is None:
            continue
        if r.type == LEGACY_SG_RULE:
            cidrs = [c for k in ("cidrBlocks", "ipv6CidrBlocks") for c in as_list(r.get(k)) if c]
            yield from _proxy_source_problems(index, r, _proxy_what(target, proxy), set(proxy.owners), cidrs,
                                              as_list(r.get("prefixListIds")), "sourceSecurityGroupId", None,
                                              r.get("protocol"), r.get("fromPort"), r.get("toPort"))
            if truthy(r.get("self")):
                yield (f"{r.label} admits the group's own members (self) into {_proxy_what(target, proxy)}; admit "
                       f"only the owner's client security group.")
            continue
        cidrs = [c for k in ("cidrIpv4", "cidrIpv6") for c in as_list(r.get(k)) if c]
        yield from _proxy_source_problems(index, r, _proxy_what(target, proxy), set(proxy.owners), cidrs,
                                          [r.get("prefixListId")] if r.get("prefixListId") else [],
                                          "referencedSecurityGroupId", None, r.get("ipProtocol"),
                                          r.get("fromPort"), r.get("toPort"))

"""Run the Pulumi program under Pulumi's own mock runtime and record every resource.

The recording monitor keeps what the engine would store in a `pulumi stack
export`: inputs (camelCase, with secrets as envelopes), outputs, parent,
dependencies, property dependencies, `protect` and `retainOnDelete`. The mock
gives every resource deterministic fake ids, ARNs and endpoints so that
references between resources resolve and two runs produce the same plan.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import hashlib
import heapq
import json
import logging
import os
import runpy
import string
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await
from google.protobuf import json_format

from bulkhead.offline import mock_tls, sdk_fast_path
from bulkhead.offline.stack_config import config_region
from bulkhead.planfile import SECRET_ENVELOPE
from policies import bulkhead_types as tokens

# The program's pulumi.log messages (its catalogue warnings): `bulkhead plan` prints the
# catalogue's warnings itself, so the mock engine's copy is not printed a second time.
_PROGRAM_LOG = logging.getLogger("bulkhead.program")
_PROGRAM_LOG.addHandler(logging.NullHandler())
_PROGRAM_LOG.propagate = False

FAKE_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"

# Outputs the providers' schemas mark secret; the mock runtime does not know them.
SCHEMA_SECRET_OUTPUTS = {
    "random:index/randomPassword:RandomPassword": {"result", "bcryptHash"},
    "random:index/randomString:RandomString": set(),
    "aws:rds/instance:Instance": {"password"},
    "aws:rds/cluster:Cluster": {"masterPassword"},
    "aws:secretsmanager/secretVersion:SecretVersion": {"secretString", "secretBinary"},
    **mock_tls.SECRET_OUTPUTS,
}


class Secret:
    """A resolved value that was secret: rendered as an envelope, never as text."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:  # never leak through logs or assertion messages
        return "Secret(***)"


def _digest(*parts: Any, length: int = 17) -> str:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()[:length]


def fake_password(seed: str, length: int = 32) -> str:
    """Deterministic, high-entropy-looking: tests search plans for it."""
    alphabet = string.ascii_letters + string.digits
    raw = hashlib.sha256(("pw/" + seed).encode()).digest() + hashlib.sha256(("pw2/" + seed).encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in raw[:length])


def _region_of(inputs: dict, default: str) -> str:
    return inputs.get("region") or default


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    custom: bool
    id: str
    inputs: dict
    outputs: dict
    parent: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    retain_on_delete: bool
    provider: str
    secret_outputs: set[str] = field(default_factory=set)
    delete_before_replace: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)


class RecordingMocks(pulumi.runtime.Mocks):
    """Fake provider: deterministic outputs per resource type, the inputs echoed back."""

    def __init__(self, stack: str, region: str = DEFAULT_REGION,
                 stack_references: Optional[dict[str, dict]] = None, caller_arn: Optional[str] = None):
        self.stack = stack
        self.region = region
        # GetCallerIdentity's Arn: who runs this (offline) deploy.
        self.caller_arn = caller_arn or f"arn:aws:iam::{FAKE_ACCOUNT}:user/bulkhead"
        self.providers: dict[str, str] = {}  # provider urn -> region
        # Referenced stack name -> its outputs (plain, or ProgramRun.exports with Secret(...)).
        self.stack_references = dict(stack_references or {})

    def call(self, args: pulumi.runtime.MockCallArgs):
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{s}" for s in "abc"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in (1, 2, 3)], "id": self.region}
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "id": self.region, "region": self.region}
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": FAKE_ACCOUNT, "arn": self.caller_arn, "userId": "AIDA", "id": FAKE_ACCOUNT}
        if token == "aws:ec2/getVpc:getVpc":  # a given network's VPC (bulkhead:network)
            vpc_id = args.args.get("id") or "vpc-0"
            return {"id": vpc_id, "cidrBlock": "10.0.0.0/16", "arn": f"arn:aws:ec2:{self.region}:{FAKE_ACCOUNT}:vpc/{vpc_id}"}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if token == "pulumi:pulumi:getResource":
            return {}
        return {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        typ, name = args.typ, args.name
        seed = f"{self.stack}/{typ}/{name}"
        region = self.providers.get(args.provider.rsplit("::", 1)[0] if args.provider else "", self.region)
        fake = _FAKES.get(typ) or next((f for prefix, f in _FAKES_BY_PREFIX if typ.startswith(prefix)), _fake_echo)
        return fake(_New(self, typ, name, seed, region, _unwrap(args.inputs)), dict(args.inputs))


# --- fakes by type token: what the provider would add to the inputs (ids, ARNs, names) -------------

@dataclass
class _New:
    """One resource being created, for its fake."""

    mocks: RecordingMocks
    typ: str
    name: str
    seed: str
    region: str
    inputs: dict  # plain (secrets unwrapped)

    @property
    def rid(self) -> str:
        """The id of a resource whose provider names it after its name."""
        return f"{self.name}-{_digest(self.seed, length=8)}"

    def arn(self, svc: str, rest: str) -> str:
        return f"arn:aws:{svc}:{self.region}:{FAKE_ACCOUNT}:{rest}"

    def generated_name(self, length: int = 8) -> str:
        """`name`, else the provider's `namePrefix` + a unique suffix."""
        return self.inputs.get("name") or f"{self.inputs.get('namePrefix', self.name)}{_digest('n', self.seed, length=length)}"


def _fake_echo(new: _New, state: dict) -> tuple[str, dict]:
    return new.rid, state


def _fake_provider(new: _New, state: dict) -> tuple[str, dict]:
    return f"provider-{_digest(new.seed, length=12)}", state


def _fake_stack_reference(new: _New, state: dict) -> tuple[str, dict]:
    target = new.inputs.get("name") or new.name
    if target not in new.mocks.stack_references:
        raise ValueError(f"stack reference {target!r}: no outputs given to the mock (stack_references)")
    outputs = new.mocks.stack_references[target]
    # As the engine does: a top-level output holding any secret is a secret output.
    secret_names = sorted(k for k, v in outputs.items() if _secret_plaintexts(v) or isinstance(v, Secret))
    return target, {"name": target, "outputs": exports_plain(outputs), "secretOutputNames": secret_names}


def _fake_random_password(new: _New, state: dict) -> tuple[str, dict]:
    pw = fake_password(new.seed, int(new.inputs.get("length", 32)))
    state.update(result=pw, bcryptHash="$2a$10$" + _digest("bcrypt", new.seed, length=53))
    return "none", state


def _fake_random_hex(new: _New, state: dict) -> tuple[str, dict]:
    n = int(new.inputs.get("byteLength", new.inputs.get("length", 8)))
    hexv = _digest("rid", new.seed, length=2 * n)
    state.update(hex=hexv, result=hexv, b64Url=hexv, b64Std=hexv, dec=str(int(hexv, 16)))
    return hexv, state


def _fake_remote_image(new: _New, state: dict) -> tuple[str, dict]:
    image = new.inputs.get("name")
    digest = _digest("image", image, length=64)
    state.update(imageId=f"sha256:{digest}", repoDigest=f"{new.inputs.get('name', '').split(':')[0]}@sha256:{digest}")
    return state["imageId"] + new.inputs.get("name", ""), state


def _fake_volume(new: _New, state: dict) -> tuple[str, dict]:
    state.update(mountpoint=f"/var/lib/docker/volumes/{new.inputs.get('name')}/_data", driver="local")
    return new.inputs.get("name", new.rid), state


def _fake_network(new: _New, state: dict) -> tuple[str, dict]:
    return _digest("net", new.seed, length=64), state


def _fake_container(new: _New, state: dict) -> tuple[str, dict]:
    state.update(exitCode=None, networkData=[])
    return _digest("ctr", new.seed, length=64), state


def _fake_kms_key(new: _New, state: dict) -> tuple[str, dict]:
    key_id = _uuid(new.seed)
    state.update(keyId=key_id, arn=new.arn("kms", f"key/{key_id}"))
    return key_id, state


def _fake_kms_alias(new: _New, state: dict) -> tuple[str, dict]:
    state.update(arn=new.arn("kms", f"{new.inputs.get('name')}"), targetKeyArn=new.inputs.get("targetKeyId"))
    return new.inputs.get("name", new.rid), state


def _fake_security_group(new: _New, state: dict) -> tuple[str, dict]:
    rid = f"sg-{_digest(new.seed)}"
    state.update(arn=new.arn("ec2", f"security-group/{rid}"), ownerId=FAKE_ACCOUNT, name=new.generated_name())
    return rid, state


def _fake_security_group_rule(new: _New, state: dict) -> tuple[str, dict]:
    rid = f"sgr-{_digest(new.seed)}"
    state.update(arn=new.arn("ec2", f"security-group-rule/{rid}"), securityGroupRuleId=rid)
    return rid, state


def _fake_vpc(new: _New, state: dict) -> tuple[str, dict]:
    rid = f"vpc-{_digest(new.seed)}"
    state.update(arn=new.arn("ec2", f"vpc/{rid}"), mainRouteTableId=f"rtb-{_digest('rtb', new.seed)}",
                 defaultSecurityGroupId=f"sg-{_digest('defsg', new.seed)}")
    return rid, state


def _fake_vpc_endpoint(new: _New, state: dict) -> tuple[str, dict]:
    rid = f"vpce-{_digest(new.seed)}"
    state.update(arn=new.arn("ec2", f"vpc-endpoint/{rid}"), state="available")
    if new.inputs.get("vpcEndpointType") == "Gateway":  # the service's prefix list (S3, DynamoDB)
        state.update(prefixListId=f"pl-{_digest('pl', new.inputs.get('serviceName'), length=8)}")
    else:  # an interface endpoint's Regional and zonal names (PrivateLink guide, "DNS hostnames")
        service_name = str(new.inputs.get("serviceName") or "com.amazonaws.region.service")
        region, service = service_name.split(".")[2], ".".join(service_name.split(".")[3:])
        suffix = _digest("dns", new.seed, length=8)
        state.update(dnsEntries=[
            {"dnsName": f"{rid}-{suffix}-{region}a.{service}.{region}.vpce.amazonaws.com", "hostedZoneId": "Z7HUB22UULQXV"},
            {"dnsName": f"{rid}-{suffix}.{service}.{region}.vpce.amazonaws.com", "hostedZoneId": "Z7HUB22UULQXV"},
        ])
    return rid, state


def _fake_log_group(new: _New, state: dict) -> tuple[str, dict]:
    rid = new.generated_name()
    state.update(name=rid, arn=new.arn("logs", f"log-group:{rid}"))
    return rid, state


def _fake_subnet(new: _New, state: dict) -> tuple[str, dict]:
    rid = f"subnet-{_digest(new.seed)}"
    state.update(arn=new.arn("ec2", f"subnet/{rid}"))
    return rid, state


def _fake_rds_group(kind: str):
    def fake(new: _New, state: dict) -> tuple[str, dict]:
        group_name = new.generated_name(length=12)
        state.update(name=group_name, arn=new.arn("rds", f"{kind}:{group_name}"))
        return group_name, state
    return fake


def _fake_rds_instance(new: _New, state: dict) -> tuple[str, dict]:
    inputs, seed = new.inputs, new.seed
    ident = inputs.get("identifier") or f"{inputs.get('identifierPrefix', new.name)}{_digest('n', seed, length=10)}"
    address = f"{ident}.c{_digest('host', new.mocks.stack, length=11)}.{new.region}.rds.amazonaws.com"
    port = inputs.get("port", 5432)
    resource_id = "db-" + _digest("rid", seed, length=26).upper()
    state.update(
        identifier=ident, address=address, endpoint=f"{address}:{port}", port=port,
        arn=new.arn("rds", f"db:{ident}"), resourceId=resource_id,
        hostedZoneId="Z2R2ITUGPM61AM", status="available",
    )
    if inputs.get("manageMasterUserPassword"):
        state["masterUserSecrets"] = [{
            "secretArn": new.arn("secretsmanager", f"secret:rds!{resource_id.lower()}-{_digest('s', seed, length=6)}"),
            "kmsKeyId": inputs.get("masterUserSecretKmsKeyId"),
            "secretStatus": "active",
        }]
    return ident, state


def _fake_rds_proxy(new: _New, state: dict) -> tuple[str, dict]:
    """aws_db_proxy: id = name; the ARN ends in the proxy's prx- resource id, which rds-db:connect names."""
    nm = new.inputs.get("name") or new.name
    state.update(name=nm, arn=new.arn("rds", f"db-proxy:prx-{_digest('prx', new.seed, length=17)}"),
                 endpoint=f"{nm}.proxy-c{_digest('host', new.mocks.stack, length=11)}.{new.region}.rds.amazonaws.com")
    return nm, state


def _fake_rds_proxy_target_group(new: _New, state: dict) -> tuple[str, dict]:
    """aws_db_proxy_default_target_group: the proxy's one target group is always named `default`."""
    state.update(name="default", arn=new.arn("rds", f"target-group:prx-tg-{_digest('tg', new.seed, length=17)}"))
    return str(new.inputs.get("dbProxyName")), state


def _fake_iam(new: _New, state: dict) -> tuple[str, dict]:
    kind = new.typ.split("/")[1].split(":")[0]
    nm = new.generated_name()
    state.update(name=nm, arn=f"arn:aws:iam::{FAKE_ACCOUNT}:{kind.lower()}/{nm}")
    if kind in ("policy", "role"):
        state["uniqueId"] = "ANPA" + _digest("u", new.seed, length=17).upper()
    if kind == "policy":
        return state["arn"], state
    return (nm if kind == "role" else new.rid), state


def _fake_backup(new: _New, state: dict) -> tuple[str, dict]:
    kind = new.typ.split(":")[-1]
    nm = new.inputs.get("name") or new.name
    svc = {"Vault": "backup-vault", "Plan": "backup-plan"}.get(kind, "backup")
    state.update(arn=new.arn("backup", f"{svc}:{nm}"))
    if kind == "Plan":
        state.update(version=_digest("v", new.seed, length=32))
        return _uuid(new.seed), state
    return (nm if kind == "Vault" else new.rid), state


def _fake_tls(new: _New, state: dict) -> tuple[str, dict]:
    """Real PEM, deterministic per resource (bulkhead/offline/mock_tls.py)."""
    state.update(mock_tls.fake(new.typ, new.seed, new.inputs))
    return _digest("tls", new.seed, length=32), state


def _fake_secret(new: _New, state: dict) -> tuple[str, dict]:
    """A Secrets Manager secret's ARN as AWS forms it: secret:<name>-<6 random characters>
    ("Secrets Manager ARN format", Secrets Manager User Guide), the name from `name_prefix` plus
    the provider's unique suffix (terraform-provider-aws secretsmanager/secret.go, create.NewNameGenerator),
    so ARN patterns in policies (key_policies.login_secret_arn_pattern) are tested on real shapes."""
    name = new.generated_name(length=26)
    arn = new.arn("secretsmanager", f"secret:{name}-{_digest('sfx', new.seed, length=6)}")
    state.update(name=name, arn=arn)
    return arn, state


def _fake_sns_topic(new: _New, state: dict) -> tuple[str, dict]:
    # aws_sns_topic: the id is the topic ARN, named after `name`.
    arn = new.arn("sns", new.generated_name())
    state.update(arn=arn, name=new.generated_name(), owner=FAKE_ACCOUNT)
    return arn, state


def _fake_sns_subscription(new: _New, state: dict) -> tuple[str, dict]:
    arn = f"{new.inputs.get('topic')}:{_uuid(new.seed)}"
    state.update(arn=arn, pendingConfirmation=new.inputs.get("protocol") in ("email", "email-json", "http", "https"),
                 ownerId=FAKE_ACCOUNT)
    return arn, state


def _fake_named_aws(svc: str, kind: str):
    """A resource whose id is its `name` and whose ARN is <svc>:<kind>:<name> (alarms, event subscriptions)."""
    def fake(new: _New, state: dict) -> tuple[str, dict]:
        nm = new.generated_name()
        state.update(arn=new.arn(svc, f"{kind}:{nm}"))
        return nm, state
    return fake


def _fake_snapshot_copy(new: _New, state: dict) -> tuple[str, dict]:
    # aws_db_snapshot_copy: the id is the target snapshot identifier.
    ident = new.inputs.get("targetDbSnapshotIdentifier") or new.rid
    state.update(dbSnapshotArn=new.arn("rds", f"snapshot:{ident}"), encrypted=True, status="available")
    return ident, state


def _fake_aws(new: _New, state: dict) -> tuple[str, dict]:
    svc = new.typ.split(":")[1].split("/")[0]
    state.setdefault("arn", new.arn(svc, new.name))
    return new.rid, state


_FAKES = {
    tokens.STACK_REFERENCE: _fake_stack_reference,
    tokens.RANDOM_PASSWORD: _fake_random_password,
    tokens.RANDOM_ID: _fake_random_hex,
    tokens.RANDOM_STRING: _fake_random_hex,
    tokens.REMOTE_IMAGE: _fake_remote_image,
    tokens.VOLUME: _fake_volume,
    tokens.NETWORK: _fake_network,
    tokens.CONTAINER: _fake_container,
    tokens.KMS_KEY: _fake_kms_key,
    tokens.KMS_ALIAS: _fake_kms_alias,
    tokens.SECURITY_GROUP: _fake_security_group,
    tokens.INGRESS_RULE: _fake_security_group_rule,
    tokens.EGRESS_RULE: _fake_security_group_rule,
    tokens.VPC: _fake_vpc,
    tokens.VPC_ENDPOINT: _fake_vpc_endpoint,
    tokens.LOG_GROUP: _fake_log_group,
    tokens.SUBNET: _fake_subnet,
    tokens.RDS_PARAMETER_GROUP: _fake_rds_group("pg"),
    tokens.RDS_SUBNET_GROUP: _fake_rds_group("subgrp"),
    tokens.RDS_INSTANCE: _fake_rds_instance,
    "aws:rds/proxy:Proxy": _fake_rds_proxy,
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup": _fake_rds_proxy_target_group,
    tokens.SECRET: _fake_secret,
    tokens.SNS_TOPIC: _fake_sns_topic,
    tokens.SNS_TOPIC_POLICY: _fake_echo,
    tokens.SNS_TOPIC_SUBSCRIPTION: _fake_sns_subscription,
    tokens.METRIC_ALARM: _fake_named_aws("cloudwatch", "alarm"),
    tokens.RDS_EVENT_SUBSCRIPTION: _fake_named_aws("rds", "es"),
    tokens.RDS_SNAPSHOT_COPY: _fake_snapshot_copy,
    **{tls_type: _fake_tls for tls_type in mock_tls.TYPES},
}
# Families, tried in order when a type has no fake of its own.
_FAKES_BY_PREFIX = (
    (tokens.PROVIDER_PREFIX, _fake_provider),
    ("aws:iam/", _fake_iam),
    ("aws:backup/", _fake_backup),
    ("aws:", _fake_aws),
)


def _uuid(seed: str) -> str:
    h = _digest("uuid", seed, length=32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _unwrap(value: Any) -> Any:
    """Inputs as plain values (secret wrappers removed), for the mock's own use."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _unwrap(value.get("value"))
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _envelope(value: Any, secret_keys: set[str] = frozenset()) -> Any:
    """Replace secret wrappers (and `secret_keys` at top level) with the secret envelope.

    Maps come out with their keys sorted at every level, as the plan file has them (the engine's
    JSON: Go maps marshal sorted): the sort happens here, once per value in the process that
    records it (a `--jobs` worker), not in a second walk of the whole plan (to_stack_export)."""

    def walk(v: Any) -> Any:
        t = type(v)
        if t is str or t is int or t is bool or v is None:  # most leaves: as they are (below: the same)
            return v
        if isinstance(v, dict):
            if v.get(rpc._special_sig_key) == rpc._special_secret_sig:
                return dict(SECRET_ENVELOPE)
            if rpc._special_sig_key in v:  # resource reference, asset, ...: keep a readable form
                return {k: walk(v[k]) for k in sorted(v) if k != rpc._special_sig_key}
            return {k: walk(v[k]) for k in sorted(v)}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, float) and v.is_integer():
            return int(v)  # protobuf numbers are doubles; the engine's JSON shows 5432, not 5432.0
        if isinstance(v, (pulumi.Asset, pulumi.Archive)):
            return _asset_state(v)
        if isinstance(v, pulumi.Output) or type(v).__name__ == "Unknown":
            return "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown sentinel
        return v

    out = walk(value)
    if isinstance(out, dict):
        for key in secret_keys:
            if key in out and out[key] is not None:
                out[key] = dict(SECRET_ENVELOPE)  # an existing key: the order stays sorted
    return out


def _nested_secrets_kept(raw_inputs: dict, struct: Any) -> dict:
    """The SDK's deserializer lifts a secret nested in a list or map to the whole property;
    the engine keeps it where it is (only that value is secret in the state). Restore that
    for properties whose secret was nested, from the request's own struct."""
    out = dict(raw_inputs)
    for key, value in raw_inputs.items():
        lifted = isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig
        if not lifted:
            continue
        # Only a secret property's wire form is needed: converting the whole request struct
        # (json_format, pure Python) for every resource, most with no secret, was work thrown away.
        nested = json_format.MessageToDict(struct.fields[key]) if key in struct.fields else None
        if lifted and isinstance(nested, (list, dict)) and not (
            isinstance(nested, dict) and nested.get(rpc._special_sig_key) == rpc._special_secret_sig
        ):
            out[key] = nested
    return out


def _asset_state(value: Any) -> dict:
    """An asset or archive in the readable form of other special values (no signature key):
    its content hash and its path (or text), as `pulumi stack export` shows them."""
    out: dict[str, Any] = {}
    path = getattr(value, "path", None)
    if isinstance(path, str):
        if os.path.isfile(path):
            out["hash"] = _file_sha256(path)
        out["path"] = path
    elif isinstance(getattr(value, "text", None), str):
        out["hash"] = hashlib.sha256(value.text.encode()).hexdigest()
        out["text"] = value.text
    return out


_FILE_HASHES: dict[tuple, str] = {}


def _file_sha256(path: str) -> str:
    """sha256 of a file's content, read once per version of the file (one bootstrap archive is
    the `code` of every database's Lambda, and both its inputs and outputs name it)."""
    st = os.stat(path)
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    digest = _FILE_HASHES.get(key)
    if digest is None:
        with open(path, "rb") as handle:
            digest = _FILE_HASHES[key] = hashlib.sha256(handle.read()).hexdigest()
    return digest


def _secret_leaves(value: Any) -> list[str]:
    out: list[str] = []

    def walk(v: Any, inside: bool) -> None:
        if isinstance(v, dict):
            if v.get(rpc._special_sig_key) == rpc._special_secret_sig:
                walk(v.get("value"), True)
                return
            for x in v.values():
                walk(x, inside)
        elif isinstance(v, list):
            for x in v:
                walk(x, inside)
        elif inside and isinstance(v, str):
            out.append(v)

    walk(value, False)
    return out


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, plus a record of each registration as the engine would keep it."""

    def __init__(self, mocks: RecordingMocks, fast: Optional[sdk_fast_path.FastPath] = None):
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self.secret_values: set[str] = set()
        self._urns: set[str] = set()
        self._urn_lock = threading.Lock()
        self.fast = fast  # set by run_program (bulkhead/offline/sdk_fast_path.py)
        self._urn_prefix: Optional[str] = None

    def _serialize(self, props: dict):
        """The response Struct for `props`, as `_sync_await(rpc.serialize_properties(props, {}))`."""
        fast = self.fast
        if fast is None or not fast.active:
            return _sync_await(rpc.serialize_properties(props, {}))
        try:
            return sdk_fast_path.wire_struct(props)
        except sdk_fast_path.NotPlain:
            fast.fallbacks += 1
        return self._sdk_serialize(props)

    def _register_response(self, urn: str, id_: Any, state: dict):
        """The RegisterResource response: with the fast path, for a plain state, its values as
        they are (sdk_fast_path.PlainResponse: the SDK's `resolve_outputs` reads them without a
        Struct between); otherwise the SDK mock's protobuf response."""
        fast = self.fast
        if fast is not None and fast.active:
            if id_ is None or type(id_) is str:  # what the protobuf field takes (None: "")
                try:
                    values = sdk_fast_path.wire_values(state)
                except sdk_fast_path.NotPlain:
                    fast.fallbacks += 1
                else:
                    return sdk_fast_path.PlainResponse(urn=urn, id=id_ or "", object=sdk_fast_path.PlainStruct(values))
            obj_proto = self._sdk_serialize(state)
        else:
            obj_proto = self._serialize(state)
        return pulumi_mocks.resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj_proto)

    def _sdk_serialize(self, props: dict):
        """`_sync_await(rpc.serialize_properties(props, {}))`, also on the event loop's thread."""
        if asyncio._get_running_loop() is None:
            return _sync_await(rpc.serialize_properties(props, {}))
        # On the event loop's own thread (the inline executor): _sync_await would pump the running
        # loop re-entrantly from inside a registration. Serialize on a thread with its own loop,
        # as the SDK's executor threads did.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(lambda: _sync_await(rpc.serialize_properties(props, {}))).result()

    def Invoke(self, request):
        if self.fast is None or not self.fast.active:
            return super().Invoke(request)
        # pulumi/runtime/mocks.py MockMonitor.Invoke, with the response serialized by _serialize.
        pulumi_mocks._ensure_event_loop()
        args = rpc.deserialize_properties(request.args)
        if request.tok == "pulumi:pulumi:getResource":
            registered = self.resources.get(args["urn"])
            if registered is None:
                raise Exception(f"unknown resource {args['urn']}")
            return pulumi_mocks.resource_pb2.ResourceInvokeResponse(failures=None, **{"return": self._serialize(registered._asdict())})
        result = self.mocks.call(pulumi.runtime.MockCallArgs(token=request.tok, args=args, provider=request.provider))
        if isinstance(result, dict):
            ret, failures = result, None
        else:
            ret, failures = result[0], [pulumi_mocks.provider_pb2.CheckFailure(property=p, reason=r) for p, r in result[1]]
        return pulumi_mocks.resource_pb2.ResourceInvokeResponse(failures=failures, **{"return": self._serialize(ret)})

    def ReadResource(self, request):
        if self.fast is None or not self.fast.active:
            return super().ReadResource(request)
        # pulumi/runtime/mocks.py MockMonitor.ReadResource, with the response serialized by _serialize.
        pulumi_mocks._ensure_event_loop()
        state = rpc.deserialize_properties(request.properties)
        id_, state = self.mocks.new_resource(pulumi.runtime.MockResourceArgs(
            typ=request.type, name=request.name, inputs=state, provider=request.provider, resource_id=request.id))
        props_proto = self._serialize(state)
        urn = self.make_urn(request.parent, request.type, request.name)
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        return pulumi_mocks.resource_pb2.ReadResourceResponse(urn=urn, properties=props_proto)

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # As the engine does: the qualified type chains every ancestor's type except the root stack.
        if parent and "::pulumi:pulumi:Stack::" not in parent:
            type_ = parent.split("::")[2] + "$" + type_
        prefix = self._urn_prefix
        if prefix is None:  # the stack and project of this run (set_mocks), read once
            prefix = self._urn_prefix = "urn:pulumi:" + pulumi.get_stack() + "::" + pulumi.get_project() + "::"
        return prefix + type_ + "::" + name

    def RegisterResource(self, request):
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        # The SDK mock monitor's registration, inlined so the inputs are deserialized once.
        pulumi_mocks._ensure_event_loop()
        urn = self.make_urn(request.parent, request.type, request.name)
        with self._urn_lock:  # registrations run on several executor threads at once
            if urn in self._urns:
                # As the engine does: two resources with one URN is a program error.
                raise ValueError(f"Duplicate resource URN '{urn}'; try giving it a unique name")
            self._urns.add(urn)
        raw_inputs = rpc.deserialize_properties(request.object)
        if request.type.startswith("pulumi:providers:"):
            self.mocks.providers[urn] = _unwrap(raw_inputs).get("region", self.mocks.region)
        id_, state = self.mocks.new_resource(
            pulumi.runtime.MockResourceArgs(
                typ=request.type, name=request.name, inputs=raw_inputs, provider=request.provider,
                resource_id=request.importId, custom=request.custom or False,
            )
        )
        response = self._register_response(urn, id_, state)
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        state = dict(state)
        kept_inputs = _nested_secrets_kept(raw_inputs, request.object)
        for key, value in kept_inputs.items():  # an echoed input keeps its nested secrets too
            if value is not raw_inputs[key] and state.get(key) is raw_inputs[key]:
                state[key] = value
        secret_outputs = set(request.additionalSecretOutputs) | SCHEMA_SECRET_OUTPUTS.get(request.type, set())
        # Secret inputs stay secret in outputs too, as the engine does.
        for key, value in kept_inputs.items():
            if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
                secret_outputs.add(key)
        plain_state = _unwrap(state)
        for key in secret_outputs:
            if key in plain_state:
                self.secret_values.update(_strings(plain_state[key]))
        self.secret_values.update(_secret_leaves(kept_inputs))
        self.recorded.append(
            RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                id=response.id,
                inputs=_envelope(kept_inputs),
                outputs=_envelope(state, secret_outputs),
                parent=request.parent,
                dependencies=list(request.dependencies),
                property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                provider=request.provider,
                secret_outputs=secret_outputs,
                delete_before_replace=bool(request.deleteBeforeReplace),
                ignore_changes=list(request.ignoreChanges),
                replace_on_changes=list(request.replaceOnChanges),
            )
        )
        return response


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@dataclass
class ProgramRun:
    """The result of one mocked run of `__main__.py`."""

    stack: str
    project: str
    resources: list[RecordedResource]
    exports: dict[str, Any]  # plain values, with Secret(...) where a value was secret
    secret_values: set[str]
    error: Optional[BaseException] = None
    fast_path: Optional[sdk_fast_path.FastPath] = None  # what the run skipped of the SDK's work
    # The program took the catalogue a `plan --jobs` parent validated (validated_catalogue).
    reused_catalogue: bool = False

    def by_type(self, typ: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == typ]


async def _resolve(value: Any) -> Any:
    """Resolve an export (Outputs nested in dicts/lists) keeping secretness as Secret(...)."""
    if isinstance(value, pulumi.Output):
        inner = await value.future(with_unknowns=True)
        secret = await value.is_secret()
        resolved = await _resolve(inner)
        return Secret(resolved) if secret else resolved
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [await _resolve(v) for v in value]
    if asyncio.isfuture(value) or asyncio.iscoroutine(value):
        return await _resolve(await value)
    return value


# The databases the running program plans (a `plan --jobs` worker: bulkhead/offline/parallel.py),
# None = all. Read by __main__.py through plan_shard(), only while run_program runs.
_PLAN_SHARD: Optional[frozenset[str]] = None


def plan_shard() -> Optional[frozenset[str]]:
    return _PLAN_SHARD


# The catalogue a `plan --jobs` parent validated before forking its workers (bulkhead/offline/
# parallel.py _prime), with exactly what it was validated from: (raw bulkhead: config as the
# program reads it, stack, aws region, catalogue). A forked worker's program takes it instead of
# validating the whole catalogue again (pydantic, the cross-database checks, every database's
# windows: ~0.6 s CPU per worker at N=500, bench/README.md "p-par2"). Served only for equal
# inputs, and only while a run is in progress (never to a later run of this process).
_VALIDATED: Optional[tuple[dict, str, Optional[str], Any]] = None


def set_validated_catalogue(raw: Optional[dict], stack: str = "", region: Optional[str] = None, catalogue: Any = None) -> None:
    """Remember (or with raw=None forget) the catalogue validated from `raw`, `stack`, `region`."""
    global _VALIDATED
    _VALIDATED = None if raw is None else (raw, stack, region, catalogue)


def validated_catalogue(raw: Any, stack: str, region: Optional[str], cls: type) -> Any:
    """The catalogue already validated from exactly these inputs, an instance of the running
    program's own `cls` (asked by __main__.py), else None."""
    global _REUSED
    memo = _VALIDATED
    if memo is None or not _IN_RUN:
        return None
    if memo[1] != stack or memo[2] != region or not isinstance(memo[3], cls) or memo[0] != raw:
        return None
    _REUSED = True
    return memo[3]


def program_raw_config(config: dict[str, Any], keys) -> dict[str, Any]:
    """The `bulkhead:` config as __main__.py's _read_config reads it from what run_program sets
    (set_all_config: strings as they are, anything else as JSON; then json.loads, a plain string
    kept as it is)."""
    raw: dict[str, Any] = {}
    for key in keys:
        value = config.get(f"bulkhead:{key}")
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            raw[key] = json.loads(text)
        except ValueError:
            raw[key] = text
    return raw


_IN_RUN = False
_REUSED = False


def is_program_module(name: str) -> bool:
    """Whether `name` is one of the program's own modules (its `components` package), which a run
    imports fresh from its `program_dir`."""
    return name == "components" or name.startswith("components.")


def _no_stack_trace():
    return source_pb2.StackTrace()


def run_program(
    program_dir: str,
    stack: str,
    config: dict[str, Any],
    project: str = "bulkhead",
    region: Optional[str] = None,
    entry: str = "__main__.py",
    stack_references: Optional[dict[str, dict]] = None,
    caller_arn: Optional[str] = None,
    shard: Optional[frozenset[str]] = None,
    fresh_import: bool = True,
) -> ProgramRun:
    """Run `entry` of `program_dir` fresh under the mock runtime with `config` (full keys).

    `caller_arn`: who runs the deploy (GetCallerIdentity); by default a session of the first of
    `bulkhead:deployers`, so an offline plan runs as a listed deployer. `shard`: plan only these
    databases' resources besides the stack-wide ones (bulkhead/offline/parallel.py).
    `fresh_import=False`: keep the program's `components` modules already imported (a forked
    `plan --jobs` worker: its parent imported them fresh from `program_dir` and ran nothing)."""
    global _PLAN_SHARD, _IN_RUN, _REUSED
    region = region or config_region(config) or DEFAULT_REGION
    mocks = RecordingMocks(stack=stack, region=region, stack_references=stack_references,
                           caller_arn=caller_arn or _first_deployer_session(config))
    monitor = RecordingMonitor(mocks)
    settings.ROOT.set(None)
    # A failed run leaves its unhandled exception in the RPC manager; never carry it into the next run.
    settings._get_rpc_manager().clear()
    with settings.SETTINGS.lock:
        settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}, []
    )
    # The SDK captures a stack trace per registration (pulumi/runtime/resource.py,
    # _get_stack_trace: traceback.extract_stack, linecache stats and a file URI per frame)
    # only to send it in RegisterResourceRequest.sourcePosition/stackTrace, which the engine
    # shows in diagnostics; the recording monitor never reads them and no plan holds them.
    # An empty trace (what the SDK itself sends when it finds no user frame) for the run
    # (set_mocks registers the stack resource: from there on).
    stack_trace_was = getattr(sdk_resource, "_get_stack_trace", None)
    if stack_trace_was is not None:
        sdk_resource._get_stack_trace = _no_stack_trace
    try:
        pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=_PROGRAM_LOG)
    except BaseException:
        if stack_trace_was is not None:
            sdk_resource._get_stack_trace = stack_trace_was
        raise

    program = os.path.join(program_dir, entry)
    added_path = program_dir not in sys.path
    if added_path:
        sys.path.insert(0, program_dir)
    # A fresh import of the program's own packages each run, as `pulumi up` would have.
    if fresh_import:
        for mod in [m for m in sys.modules if is_program_module(m)]:
            del sys.modules[mod]
    error: Optional[BaseException] = None
    exports: dict[str, Any] = {}
    # The SDK makes ~50 asyncio objects per resource, in reference cycles that stay
    # alive until the run ends; each full GC pass re-walks all of them and the
    # pulumi_aws modules, 50-75% of the run (bench/README.md). Paused for the run;
    # the next automatic collection frees the cycles. Peak RSS barely moves (+5%).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    _PLAN_SHARD = frozenset(shard) if shard is not None else None
    _IN_RUN, _REUSED = True, False
    fast: Optional[sdk_fast_path.FastPath] = None
    try:
        # The registrations' thread hop, async response serialization and per-property futures,
        # skipped for this run (bulkhead/offline/sdk_fast_path.py; the SDK's own path on an SDK
        # version not verified).
        monitor.fast = fast = sdk_fast_path.activate(pulumi_mocks._ensure_event_loop(), _PROGRAM_LOG)
        _sync_await(run_pulumi_func(lambda: runpy.run_path(program, run_name="__main__")))
        root = settings.get_root_resource()
        raw_exports = dict(getattr(root, "outputs", {}) or {})
        exports = _sync_await(_resolve(raw_exports))
    except BaseException as exc:  # noqa: BLE001 - handed to the caller, who reports it
        error = exc
    finally:
        if fast is not None:
            fast.restore()
        _PLAN_SHARD = None
        _IN_RUN = False
        if stack_trace_was is not None:
            sdk_resource._get_stack_trace = stack_trace_was
        if gc_was_enabled:
            gc.enable()
        if added_path:
            sys.path.remove(program_dir)
    secrets = set(monitor.secret_values)
    secrets.update(_secret_plaintexts(exports))
    return ProgramRun(stack=stack, project=project, resources=monitor.recorded, exports=exports,
                      secret_values={s for s in secrets if len(s) >= 8}, error=error, fast_path=fast,
                      reused_catalogue=_REUSED)


def _first_deployer_session(config: dict[str, Any]) -> Optional[str]:
    """A session ARN of the first `bulkhead:deployers` entry (GetCallerIdentity's form), or None."""
    deployers = config.get("bulkhead:deployers")
    if isinstance(deployers, str):
        try:
            deployers = json.loads(deployers)
        except ValueError:
            return None
    if not isinstance(deployers, list) or not deployers or not isinstance(deployers[0], str):
        return None
    first = deployers[0]
    if ":role/" in first:
        head, name = first.split(":role/", 1)
        return f"{head.replace(':iam::', ':sts::')}:assumed-role/{name.rsplit('/', 1)[-1]}/offline-plan"
    return first


def _secret_plaintexts(value: Any, inside: bool = False) -> list[str]:
    if isinstance(value, Secret):
        return _secret_plaintexts(value.value, True)
    if isinstance(value, dict):
        return [s for v in value.values() for s in _secret_plaintexts(v, inside)]
    if isinstance(value, list):
        return [s for v in value for s in _secret_plaintexts(v, inside)]
    return [value] if inside and isinstance(value, str) else []


def exports_as_envelopes(value: Any) -> Any:
    if isinstance(value, Secret):
        return dict(SECRET_ENVELOPE)
    if isinstance(value, dict):
        return {k: exports_as_envelopes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exports_as_envelopes(v) for v in value]
    return value


def exports_plain(value: Any) -> Any:
    """What `pulumi stack output --json --show-secrets` would print."""
    if isinstance(value, Secret):
        return exports_plain(value.value)
    if isinstance(value, dict):
        return {k: exports_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exports_plain(v) for v in value]
    return value


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def _dependency_order(resources: list[RecordedResource]) -> list[RecordedResource]:
    """Parents and dependencies before dependents, as in a stack export, ties broken by URN.

    The SDK registers resources as their inputs resolve, so the recorded order varies
    from run to run; this order does not, so two plans of one program diff cleanly.
    (Kahn's algorithm with a heap of the URNs' ranks: the smallest ready URN first.)"""
    by_urn = {r.urn: r for r in resources}
    urns = sorted(by_urn)
    rank = {u: i for i, u in enumerate(urns)}
    waits = [0] * len(urns)
    dependents: list[list[int]] = [[] for _ in urns]
    for r in by_urn.values():
        i = rank[r.urn]
        before = {r.parent, *r.dependencies}
        for us in r.property_dependencies.values():
            before.update(us)
        for u in before:
            j = rank.get(u)
            if j is not None and j != i:
                dependents[j].append(i)
                waits[i] += 1
    ready = [i for i, w in enumerate(waits) if not w]  # ascending: already a heap
    out: list[RecordedResource] = []
    while ready:
        i = heapq.heappop(ready)
        out.append(by_urn[urns[i]])
        for d in dependents[i]:
            waits[d] -= 1
            if not waits[d]:
                heapq.heappush(ready, d)
    if len(out) != len(by_urn):  # a cycle cannot come from the SDK; keep everything anyway
        seen = {r.urn for r in out}
        out += [by_urn[u] for u in urns if u not in seen]
    return out


def to_stack_export(run: ProgramRun) -> dict:
    """The plan in the shape of `pulumi stack export` (docs/contract.md section 6)."""
    stack_urn = f"urn:pulumi:{run.stack}::{run.project}::pulumi:pulumi:Stack::{run.project}-{run.stack}"
    resources = [
        {
            "urn": stack_urn,
            "custom": False,
            "type": "pulumi:pulumi:Stack",
            "inputs": {},
            "outputs": _sorted_keys(exports_as_envelopes(run.exports)),
        }
    ]
    for r in _dependency_order(run.resources):
        entry = {
            "urn": r.urn,
            "custom": r.custom,
            "id": r.id if r.custom else "",
            "type": r.type,
            # Keys sorted as the engine's JSON has them (Go maps marshal sorted), so plans diff cleanly:
            # recorded so (_envelope).
            "inputs": r.inputs,
            "outputs": r.outputs,
            "parent": r.parent or stack_urn,
            "dependencies": sorted(r.dependencies),
            "propertyDependencies": {k: sorted(v) for k, v in sorted(r.property_dependencies.items())},
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
        }
        if r.provider:
            entry["provider"] = r.provider
        if r.secret_outputs:
            entry["additionalSecretOutputs"] = sorted(r.secret_outputs)
        if r.delete_before_replace:
            entry["deleteBeforeReplace"] = True
        if r.ignore_changes:
            entry["ignoreChanges"] = r.ignore_changes
        if r.replace_on_changes:
            entry["replaceOnChanges"] = r.replace_on_changes
        resources.append(entry)
    return {
        "version": 3,
        "deployment": {
            "manifest": {"time": "1970-01-01T00:00:00Z", "magic": "bulkhead-offline-plan", "version": "bulkhead"},
            "secrets_providers": {"type": "bulkhead-offline-plan"},
            "resources": resources,
        },
    }

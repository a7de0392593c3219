"""The policy pack over Pulumi's real analyzer gRPC protocol, started the way the engine starts it.

The engine runs `python -u -m pulumi.policy <engine-address> <pack-dir>` in the pack
directory with PULUMI_PROJECT / PULUMI_STACK / PULUMI_DRY_RUN / PULUMI_CONFIG set;
`pulumi.policy` runs the pack's `__main__.py`, whose PolicyPack serves the Analyzer
service on 127.0.0.1 and prints the port on its first stdout line.
"""

from __future__ import annotations

import copy
import hashlib
import base64
import json
import os
import subprocess
import sys
import threading

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from bulkhead.commands.check import evaluate, load_pack, resource_props, stack_props
from bulkhead.planfile import SECRET_SIG, SECRET_SIG_KEY
from tests.support.mutations import (
    m_connect_as_master,
    m_key_account_wide_decrypt,
    m_literal_password,
    m_log_group_missing,
    m_managed_master_with_replicas,
    m_other_bootstrap_group_admitted,
    m_output_username_master,
    m_policy_any_user,
    m_policy_grants_master_secret,
    m_other_client_in_ingress,
    m_plaintext_password_env,
    m_policy_two_secrets,
    m_public,
    m_replica_other_key,
    m_restore_selection_removed,
    m_secret_policy_removed,
    m_low_retention,
    m_same_password_value_two_containers,
    m_shared_password,
    m_single_az,
    m_vault_policy_removed,
    show_secrets_export,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POLICIES_DIR = os.path.join(ROOT, "policies")
UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
PROD_CONFIG = load_pack().PROD_POLICY_CONFIG
LEVELS = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory",
          analyzer_pb2.REMEDIATE: "remediate", analyzer_pb2.DISABLED: "disabled"}


@pytest.fixture(scope="module")
def analyzer():
    env = dict(os.environ, PULUMI_PROJECT="bulkhead", PULUMI_STACK="prod", PULUMI_DRY_RUN="true",
               PULUMI_CONFIG="{}", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", POLICIES_DIR],
        cwd=POLICIES_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    channel = None
    try:
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(30)
        if not line or not line[0].strip().isdigit():
            proc.kill()
            raise AssertionError(f"policy pack did not print its port: {line!r} {proc.stderr.read().decode()[-2000:]}")
        port = int(line[0].strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        if channel is not None:
            channel.close()
        proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            stream.close()


def engine_value(value, seed: str = ""):
    """Plan values as the engine marshals them to the analyzer: a secret keeps its real value
    (pulumi_policy unwraps it, so the rules see plain text). An envelope with `plaintext`
    (`pulumi stack export --show-secrets`) carries that value; a plan's bare envelope has none,
    so it gets a distinct realistic one derived from where it is (resource URN + property path)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            if "plaintext" in value:
                plain = json.loads(value["plaintext"])
            elif "value" in value:
                plain = value["value"]
            else:
                plain = "S3cr" + hashlib.sha256(seed.encode()).hexdigest()[:28]
            return {SECRET_SIG_KEY: SECRET_SIG, "value": engine_value(plain, seed)}
        return {k: engine_value(v, f"{seed}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [engine_value(v, f"{seed}[{i}]") for i, v in enumerate(value)]
    return value


def struct(props: dict, urn: str = "") -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(engine_value(props, urn))
    return s


def raw_props(resource: dict, stack: bool) -> dict:
    # The same view as `bulkhead check`, but with secrets as the engine sends them.
    if stack:
        outputs, inputs = resource.get("outputs") or {}, resource.get("inputs") or {}
        props = {**outputs, **inputs}
        if resource.get("id") and resource.get("custom", True):
            props.setdefault("id", resource["id"])
        return props
    return resource.get("inputs") or resource.get("outputs") or {}


def options(resource: dict) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=bool(resource.get("protect")), parent=resource.get("parent") or "",
        additionalSecretOutputs=resource.get("additionalSecretOutputs") or [],
    )


def name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def configure(stub, config: dict) -> None:
    policy_config = {}
    for name, value in config.items():
        props = {k: v for k, v in value.items() if k != "enforcementLevel"}
        cfg = analyzer_pb2.PolicyConfig(enforcementLevel={
            "advisory": analyzer_pb2.ADVISORY, "mandatory": analyzer_pb2.MANDATORY,
            "disabled": analyzer_pb2.DISABLED}[value["enforcementLevel"]])
        cfg.properties.update(props)
        policy_config[name] = cfg
    stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=policy_config))


def analyze_over_grpc(stub, export: dict) -> set[tuple[str, str, str]]:
    resources = export["deployment"]["resources"]
    verdicts = set()
    for r in resources:
        if r["type"] == "pulumi:pulumi:Stack":
            continue
        response = stub.Analyze(analyzer_pb2.AnalyzeRequest(
            type=r["type"], properties=struct(raw_props(r, False), r["urn"]), urn=r["urn"], name=name_of(r["urn"]),
            options=options(r)))
        verdicts |= {(d.policyName, d.urn or r["urn"], LEVELS[d.enforcementLevel]) for d in response.diagnostics}
    stack_resources = []
    for r in resources:
        stack_resources.append(analyzer_pb2.AnalyzerResource(
            type=r["type"], properties=struct(raw_props(r, True), r["urn"]), urn=r["urn"], name=name_of(r["urn"]),
            options=options(r), parent=r.get("parent") or "", dependencies=r.get("dependencies") or [],
            propertyDependencies={k: analyzer_pb2.AnalyzerPropertyDependencies(urns=v)
                                  for k, v in (r.get("propertyDependencies") or {}).items()},
        ))
    response = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=stack_resources))
    verdicts |= {(d.policyName, d.urn, LEVELS[d.enforcementLevel]) for d in response.diagnostics}
    return verdicts


def offline(export: dict, config: dict = PROD_CONFIG) -> set[tuple[str, str, str]]:
    return {(v.policy, v.urn, v.enforcement) for v in evaluate(export, config).violations}


def test_analyzer_info_lists_every_policy(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "bulkhead"
    pack = load_pack()
    served = {p.name: p for p in info.policies}
    assert set(served) == {p.name for p in pack.ALL_POLICIES}
    for policy in pack.ALL_POLICIES:
        assert served[policy.name].description == policy.description
        assert LEVELS[served[policy.name].enforcementLevel] == policy.enforcement_level.value
    assert served["rds-not-public"].policy_type == analyzer_pb2.POLICY_TYPE_RESOURCE
    assert served["db-ingress-owner-only"].policy_type == analyzer_pb2.POLICY_TYPE_STACK
    assert "allowSharedDevServers" in served["one-database-per-server"].configSchema.properties


MUTATIONS = [
    ("clean", lambda e: None),
    ("publicly-accessible", m_public),
    ("other-client-group", m_other_client_in_ingress),
    ("replica-other-key", m_replica_other_key),
    ("policy-two-secrets", m_policy_two_secrets),
    ("low-retention", m_low_retention),
    ("single-az", m_single_az),
    ("literal-master-password", m_literal_password),
    ("managed-master-with-replicas", m_managed_master_with_replicas),
    ("access-policy-any-db-user", m_policy_any_user),
    ("access-policy-grants-master-secret", m_policy_grants_master_secret),
    ("output-username-is-master", m_output_username_master),
    ("connect-as-master-user", m_connect_as_master),
    ("other-databases-bootstrap-group-admitted", m_other_bootstrap_group_admitted),
    ("key-account-wide-decrypt", m_key_account_wide_decrypt),
    ("vault-policy-removed", m_vault_policy_removed),
    ("log-group-missing", m_log_group_missing),
    ("restore-selection-removed", m_restore_selection_removed),
    ("secret-policy-removed", m_secret_policy_removed),
]


def test_new_credential_policies_reach_the_engine(analyzer, prod_export):
    """service-role-not-master and the master-password rule, over gRPC, name what they refuse."""
    configure(analyzer, PROD_CONFIG)
    for mutate, policy in ((m_output_username_master, "service-role-not-master"),
                           (m_connect_as_master, "service-role-not-master"),
                           (m_managed_master_with_replicas, "rds-managed-master-password"),
                           (m_policy_any_user, "access-policy-single-database")):
        export = copy.deepcopy(prod_export)
        mutate(export)
        assert (policy, "mandatory") in {(v[0], v[2]) for v in analyze_over_grpc(analyzer, export)}, policy


@pytest.mark.parametrize("label,mutate", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_grpc_verdicts_equal_offline_check(analyzer, prod_export, label, mutate):
    configure(analyzer, PROD_CONFIG)
    export = copy.deepcopy(prod_export)
    mutate(export)
    over_grpc = analyze_over_grpc(analyzer, export)
    assert over_grpc == offline(export)
    if label == "clean":
        assert over_grpc == set()
    else:
        assert over_grpc, f"{label} produced no diagnostics"


@pytest.fixture(scope="module")
def shown_exports():
    """The repo stacks as `pulumi stack export --show-secrets` shows them: real secret values."""
    mp = pytest.MonkeyPatch()
    try:
        return {stack: show_secrets_export(stack, mp) for stack in ("dev", "prod")}
    finally:
        mp.undo()


def _container_password_values(export: dict) -> list[str]:
    """The values of the password files (uploads under /secrets/) of every container's inputs, as shown."""
    values = []
    for r in export["deployment"]["resources"]:
        if r["type"] == "docker:index/container:Container":
            for upload in r["inputs"]["uploads"]:
                # the server's TLS key sits there too (components/dev/server_tls.py): not a password
                if "/secrets/" in upload["file"] and not upload["file"].endswith(".key"):
                    values.append(json.loads(upload["content"]["plaintext"]))
    return values


def test_shown_secrets_are_real_generated_passwords(shown_exports):
    # The engine's view of the dev stack: every container's password file holds the SCRAM verifier of a
    # RandomPassword result (issue 22: never the password itself), each a different password.
    from components.postgres.role_sql import scram_sha256_verifier

    export = shown_exports["dev"]
    results = {json.loads(r["outputs"]["result"]["plaintext"]) for r in export["deployment"]["resources"]
               if r["type"] == "random:index/randomPassword:RandomPassword"}
    values = _container_password_values(export)
    assert len(results) >= 5 and len(values) >= 5
    assert not set(values) & results, "a password file holds a password, not its verifier"
    for value in values:
        salt = base64.b64decode(value.split("$")[1].split(":")[1])
        assert any(scram_sha256_verifier(pw, salt) == value for pw in results), value
    assert len(values) == len(set(values))


DEV_MUTATIONS = [
    ("clean", lambda e: None),
    ("plaintext-password-env", m_plaintext_password_env),
    ("same-password-value-two-containers", m_same_password_value_two_containers),
    ("shared-password-env", m_shared_password),
]


@pytest.mark.parametrize("label,mutate", DEV_MUTATIONS, ids=[m[0] for m in DEV_MUTATIONS])
def test_engine_plaintext_secrets_dev(analyzer, shown_exports, label, mutate):
    """The engine hands the analyzer secrets in plain text: a compliant stack still passes, and the
    credential rules catch a typed-in or shared password by its source and its value."""
    configure(analyzer, {})
    export = copy.deepcopy(shown_exports["dev"])
    mutate(export)
    over_grpc = analyze_over_grpc(analyzer, export)
    assert over_grpc == offline(export, {})
    if label == "clean":
        assert over_grpc == set()
        return
    caught = {urn for policy, urn, level in over_grpc if policy == "no-shared-credentials" and level == "mandatory"}
    subject = "::auth-admin-password" if label == "shared-password-env" else "::worker-postgres"
    assert any(urn.endswith(subject) for urn in caught), over_grpc


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_show_secrets_export_checks_clean(analyzer, shown_exports, stack):
    # `pulumi stack export --show-secrets | python -m bulkhead check -`: envelopes carry plaintext.
    config = PROD_CONFIG if stack == "prod" else {}
    export = shown_exports[stack]
    result = evaluate(export, config)
    assert [(v.policy, v.urn, v.message) for v in result.violations] == []
    configure(analyzer, config)
    assert analyze_over_grpc(analyzer, export) == set()


def test_unknown_value_reports_could_not_run(analyzer, prod_export):
    configure(analyzer, PROD_CONFIG)
    primary = next(r for r in prod_export["deployment"]["resources"] if r["urn"].endswith("::auth-primary"))
    props = dict(primary["inputs"], publiclyAccessible=UNKNOWN_BOOL)
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(
        type=primary["type"], properties=struct(props, primary["urn"]), urn=primary["urn"], name="auth-primary",
        options=options(primary)))
    diags = [d for d in response.diagnostics if d.policyName == "rds-not-public"]
    assert len(diags) == 1
    assert diags[0].enforcementLevel == analyzer_pb2.ADVISORY
    assert "can't run policy" in diags[0].message and "auth-primary" in diags[0].message
    assert not [d for d in response.diagnostics if d.enforcementLevel == analyzer_pb2.MANDATORY]
    # offline, the same unknown gives the same advisory "could not run"
    export = copy.deepcopy(prod_export)
    for r in export["deployment"]["resources"]:
        if r["urn"] == primary["urn"]:
            r["inputs"]["publiclyAccessible"] = UNKNOWN_BOOL
    result = evaluate(export, PROD_CONFIG)
    assert [(v.policy, v.enforcement) for v in result.violations] == [("rds-not-public", "advisory")]
    assert "auth-primary" in result.violations[0].message


def test_stack_policy_with_unknown_reference_is_advisory(analyzer, prod_export):
    configure(analyzer, PROD_CONFIG)
    export = copy.deepcopy(prod_export)
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    for r in export["deployment"]["resources"]:
        if r["urn"].endswith("::app-replica-1"):
            for side in ("inputs", "outputs"):
                r[side]["replicateSourceDb"] = unknown
            r["propertyDependencies"]["replicateSourceDb"] = []
    verdicts = analyze_over_grpc(analyzer, export)
    assert verdicts == offline(export)
    assert ("replica-matches-primary", "", "advisory") in verdicts
    assert not [v for v in verdicts if v[2] == "mandatory"]


def test_props_helpers_match_engine_view(prod_export):
    # bulkhead check hands rules the same view the test sends over gRPC (secrets aside).
    for r in prod_export["deployment"]["resources"]:
        assert json.dumps(resource_props(r), sort_keys=True).replace('"[secret]"', "S") == \
            json.dumps(raw_props(r, False), sort_keys=True).replace(
                json.dumps({SECRET_SIG_KEY: SECRET_SIG}), "S")
        assert set(stack_props(r)) == set(raw_props(r, True))


def test_a_verifier_counts_only_for_its_own_password():
    """The pack recognises a generated password through its SCRAM verifier, and nothing else."""
    import sys

    sys.path.insert(0, os.path.join(ROOT, "policies"))
    from bulkhead_policies import separation
    from components.postgres.role_sql import scram_sha256_verifier

    verifier = scram_sha256_verifier("generated-Passw0rd-xyz", b"0123456789abcdef")
    assert separation._drawn_from(verifier, ["generated-Passw0rd-xyz"])
    assert not separation._drawn_from(verifier, ["typed-into-the-program"])
    assert not separation._drawn_from("SCRAM-SHA-256$4096:bm90$YmFk:YmFk", ["generated-Passw0rd-xyz"])
    # the dev stack's salts are random (a RandomId per password): recognised whatever the salt,
    # and a typed password's verifier with a random salt is still not a generated one
    for _ in range(3):
        salt = os.urandom(16)
        assert separation._drawn_from(scram_sha256_verifier("generated-Passw0rd-xyz", salt), ["generated-Passw0rd-xyz"])
        assert not separation._drawn_from(scram_sha256_verifier("typed-into-the-program", salt), ["generated-Passw0rd-xyz"])

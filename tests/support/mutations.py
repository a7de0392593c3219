"""The plan mutations of the policy pack's tests: one unsafe change at a time to the
compliant prod and dev plans, each with the policy meant to catch it (MUTATIONS), and the
helpers that edit a plan the way a changed program would."""

from __future__ import annotations

import copy
import json
from typing import Callable

from bulkhead.commands.check import load_pack
from bulkhead.offline import mock_runtime

PROD_CONFIG = load_pack().PROD_POLICY_CONFIG


# --- a stack export with its secrets shown -------------------------------------------------------

def _show_secrets_envelope(value, secret_keys=frozenset()):
    """mock_runtime._envelope, but keeping each secret's value the way `pulumi stack export
    --show-secrets` does: {sig: secret, "plaintext": "<the value as JSON>"}."""
    rpc = mock_runtime.rpc

    def plain(v):
        if isinstance(v, dict):
            if v.get(rpc._special_sig_key) == rpc._special_secret_sig:
                return plain(v.get("value"))
            return {k: plain(x) for k, x in v.items() if k != rpc._special_sig_key}
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, mock_runtime.pulumi.Output) or type(v).__name__ == "Unknown":
            return "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
        if isinstance(v, (mock_runtime.pulumi.Asset, mock_runtime.pulumi.Archive)):
            return mock_runtime._asset_state(v)
        return v

    def shown(v):
        return {**mock_runtime.SECRET_ENVELOPE, "plaintext": json.dumps(plain(v))}

    def walk(v):
        if isinstance(v, dict):
            if v.get(rpc._special_sig_key) == rpc._special_secret_sig:
                return shown(v.get("value"))
            return {k: walk(x) for k, x in v.items() if k != rpc._special_sig_key} \
                if rpc._special_sig_key in v else {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return plain(v)

    out = walk(value)
    if isinstance(out, dict):
        for key in secret_keys:
            if key in out and out[key] is not None and value.get(key) is not None:
                out[key] = shown(value[key])
    return out


def _show_secrets_exports(value):
    if isinstance(value, mock_runtime.Secret):
        return {**mock_runtime.SECRET_ENVELOPE, "plaintext": json.dumps(mock_runtime.exports_plain(value.value))}
    if isinstance(value, dict):
        return {k: _show_secrets_exports(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_show_secrets_exports(v) for v in value]
    return value


def show_secrets_export(stack: str, monkeypatch) -> dict:
    """`pulumi stack export --show-secrets` of a repo stack: every secret envelope carries the
    program's real value (generated passwords, the container envs built from them, URLs)."""
    from tests.support.program import run_stack

    with monkeypatch.context() as m:
        m.setattr(mock_runtime, "_envelope", _show_secrets_envelope)
        m.setattr(mock_runtime, "exports_as_envelopes", _show_secrets_exports)
        export = mock_runtime.to_stack_export(run_stack(stack))
    return export



# --- helpers that edit a plan the way a changed program would -------------------------------------

def res(export: dict, name: str) -> dict:
    for r in export["deployment"]["resources"]:
        if r["urn"].endswith(f"::{name}"):
            return r
    raise KeyError(name)


def urn(export: dict, name: str) -> str:
    return res(export, name)["urn"]


def set_prop(export: dict, name: str, key: str, value, deps: list[str] | None = None) -> None:
    r = res(export, name)
    for side in ("inputs", "outputs"):
        if value is None:
            r[side].pop(key, None)
        else:
            r[side][key] = copy.deepcopy(value)
    if deps is not None:
        r["propertyDependencies"][key] = deps


def edit(export: dict, name: str, fn: Callable[[dict], None]) -> None:
    r = res(export, name)
    for side in ("inputs", "outputs"):
        fn(r[side])


def out(export: dict, name: str, key: str):
    return res(export, name)["outputs"][key]


def set_tag(export: dict, name: str, key: str, value) -> None:
    def fn(props):
        if isinstance(props.get("tags"), dict):
            if value is None:
                props["tags"].pop(key, None)
            else:
                props["tags"][key] = value
        else:
            labels = [l for l in props["labels"] if l["label"] != key]
            if value is not None:
                labels.append({"label": key, "value": value})
            props["labels"] = labels
    edit(export, name, fn)


def add_resource(export: dict, template: str, new_name: str, inputs: dict, deps: dict | None = None) -> None:
    r = copy.deepcopy(res(export, template))
    r["urn"] = r["urn"].rsplit("::", 1)[0] + "::" + new_name
    r["id"] = f"{new_name}-id"
    r["inputs"] = copy.deepcopy(inputs)
    r["outputs"] = copy.deepcopy(inputs)
    r["propertyDependencies"] = deps or {}
    r["dependencies"] = sorted({u for v in (deps or {}).values() for u in v})
    export["deployment"]["resources"].append(r)


def sg_rule_tags(db: str, owner: str, role: str = "database") -> dict:
    return {"bulkhead:stack": "prod", "bulkhead:owner": owner, "bulkhead:role": role, "bulkhead:database": db,
            "bulkhead:tier": "critical"}


def policy_doc(export: dict, name: str) -> dict:
    return json.loads(res(export, name)["inputs"]["policy"])


def set_policy_doc(export: dict, name: str, doc: dict) -> None:
    set_prop(export, name, "policy", json.dumps(doc))


# --- prod mutations ------------------------------------------------------------------------------

def m_public(e):
    set_prop(e, "auth-primary", "publiclyAccessible", True)


def m_public_cidr_rule(e):
    set_prop(e, "auth-db-from-owner", "referencedSecurityGroupId", None, deps=[])
    set_prop(e, "auth-db-from-owner", "cidrIpv4", "0.0.0.0/0")


def m_private_cidr_rule(e):
    set_prop(e, "auth-db-from-owner", "referencedSecurityGroupId", None, deps=[])
    set_prop(e, "auth-db-from-owner", "cidrIpv4", "10.42.0.0/16")


def m_new_public_rule(e):
    add_resource(e, "auth-db-from-owner", "auth-db-from-anywhere", {
        "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrIpv4": "0.0.0.0/0",
        "securityGroupId": res(e, "auth-db")["id"], "tags": sg_rule_tags("auth", "auth-service")},
        deps={"securityGroupId": [urn(e, "auth-db")]})


def m_ipv6_public_rule(e):
    set_prop(e, "worker-db-from-owner", "referencedSecurityGroupId", None, deps=[])
    set_prop(e, "worker-db-from-owner", "cidrIpv6", "::/0")


def m_other_client_in_ingress(e):
    set_prop(e, "auth-db-from-owner", "referencedSecurityGroupId", res(e, "client-app-service-client")["id"],
             deps=[urn(e, "client-app-service-client")])


def m_extra_ingress_from_other_service(e):
    add_resource(e, "auth-db-from-owner", "auth-db-from-worker", {
        "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432,
        "referencedSecurityGroupId": res(e, "client-worker-service-client")["id"],
        "securityGroupId": res(e, "auth-db")["id"], "tags": sg_rule_tags("auth", "auth-service")},
        deps={"securityGroupId": [urn(e, "auth-db")], "referencedSecurityGroupId": [urn(e, "client-worker-service-client")]})


def m_ingress_by_dependency_only(e):
    # At preview the ids are unknown: the rule is found through propertyDependencies.
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    add_resource(e, "auth-db-from-owner", "auth-db-from-app-preview", {
        "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432,
        "referencedSecurityGroupId": unknown, "securityGroupId": unknown,
        "tags": sg_rule_tags("auth", "auth-service")},
        deps={"securityGroupId": [urn(e, "auth-db")], "referencedSecurityGroupId": [urn(e, "client-app-service-client")]})


def m_ingress_all_ports(e):
    set_prop(e, "auth-db-from-owner", "fromPort", 0)
    set_prop(e, "auth-db-from-owner", "toPort", 65535)


def m_egress_to_other_db(e):
    add_resource(e, "auth-owner-to-db", "worker-to-auth-db", {
        "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432,
        "referencedSecurityGroupId": res(e, "auth-db")["id"],
        "securityGroupId": res(e, "client-worker-service-client")["id"],
        "tags": sg_rule_tags("auth", "worker-service", "client")},
        deps={"referencedSecurityGroupId": [urn(e, "auth-db")], "securityGroupId": [urn(e, "client-worker-service-client")]})


def m_literal_password(e):
    # The same secret envelope, but drawn from no RandomPassword: typed into the program.
    res(e, "auth-primary")["propertyDependencies"]["password"] = []


def m_managed_master_with_replicas(e):
    set_prop(e, "auth-primary", "password", None, deps=[])
    set_prop(e, "auth-primary", "manageMasterUserPassword", True)


def typed(export: dict, type_: str, name: str) -> dict:
    (r,) = [r for r in export["deployment"]["resources"] if r["type"] == type_ and r["urn"].endswith(f"::{name}")]
    return r


def m_policy_any_user(e):
    doc = policy_doc(e, "worker-access")
    doc["Statement"][0]["Resource"] = [r.rsplit("/", 1)[0] + "/*" for r in doc["Statement"][0]["Resource"]]
    set_policy_doc(e, "worker-access", doc)


def m_policy_grants_master_secret(e):
    doc = policy_doc(e, "app-access")
    doc["Statement"].append({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                             "Resource": out(e, "app-master-secret", "arn")})
    set_policy_doc(e, "app-access", doc)


def m_output_username_master(e):
    stack = e["deployment"]["resources"][0]
    stack["outputs"]["databases"]["worker"]["username"] = "bulkhead_admin"


def m_output_url_master(e):
    stack = e["deployment"]["resources"][0]
    env = stack["outputs"]["services"]["app-service"]["env"]
    env["APP_DATABASE_URL"] = env["APP_DATABASE_URL"].replace("postgresql://app@", "postgresql://bulkhead_admin@")


def m_connect_as_master(e):
    doc = policy_doc(e, "auth-access")
    doc["Statement"][0]["Resource"] = [r.rsplit("/", 1)[0] + "/bulkhead_admin" for r in doc["Statement"][0]["Resource"]]
    set_policy_doc(e, "auth-access", doc)


def m_bootstrap_reads_other_secret(e):
    r = typed(e, "aws:iam/rolePolicy:RolePolicy", "app-bootstrap-secret")
    doc = json.loads(r["inputs"]["policy"])
    doc["Statement"][0]["Resource"] = out(e, "auth-master-secret", "arn")
    for side in ("inputs", "outputs"):
        r[side]["policy"] = json.dumps(doc)


def m_other_bootstrap_group_admitted(e):
    other = typed(e, "aws:ec2/securityGroup:SecurityGroup", "worker-bootstrap")
    rule = typed(e, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "auth-db-from-bootstrap")
    for side in ("inputs", "outputs"):
        rule[side]["referencedSecurityGroupId"] = other["id"]
    rule["propertyDependencies"]["referencedSecurityGroupId"] = [other["urn"]]


def m_unencrypted(e):
    set_prop(e, "worker-primary", "storageEncrypted", False)


def m_no_cmk(e):
    set_prop(e, "app-primary", "kmsKeyId", None, deps=[])


def m_aws_managed_key(e):
    set_prop(e, "app-primary", "kmsKeyId", "alias/aws/rds", deps=[])


def m_force_ssl_off(e):
    edit(e, "auth-params", lambda p: [x.update(value="0") for x in p["parameters"] if x["name"] == "rds.force_ssl"])


def m_force_ssl_missing(e):
    edit(e, "worker-params", lambda p: p.update(parameters=[x for x in p["parameters"] if x["name"] != "rds.force_ssl"]))


def m_default_parameter_group(e):
    set_prop(e, "worker-primary", "parameterGroupName", None, deps=[])


def m_no_iam_auth(e):
    set_prop(e, "auth-primary", "iamDatabaseAuthenticationEnabled", False)


def m_old_ca(e):
    set_prop(e, "app-primary", "caCertIdentifier", "rds-ca-2019")


def m_admin_postgres(e):
    set_prop(e, "app-primary", "username", "postgres")


def m_kms_rotation_off(e):
    set_prop(e, "auth-key", "enableKeyRotation", False)


def m_secret_default_key(e):
    set_prop(e, "auth-master-secret", "kmsKeyId", None, deps=[])


def m_low_retention(e):
    set_prop(e, "auth-primary", "backupRetentionPeriod", 3)


def m_not_in_backup_plan(e):
    set_tag(e, "worker-primary", "bulkhead:role", "primary-unselected")


def m_backup_plan_short(e):
    edit(e, "backup-critical", lambda p: p["rules"][0]["lifecycle"].update(deleteAfter=3))


def m_deletion_protection_off(e):
    set_prop(e, "auth-primary", "deletionProtection", False)


def m_skip_final_snapshot(e):
    set_prop(e, "app-primary", "skipFinalSnapshot", True)


def m_delete_automated_backups(e):
    set_prop(e, "app-primary", "deleteAutomatedBackups", True)


def m_unprotected_primary(e):
    res(e, "auth-primary")["protect"] = False


def m_unprotected_key(e):
    res(e, "worker-key")["protect"] = False


def m_single_az(e):
    set_prop(e, "app-primary", "multiAz", False)


def m_no_monitoring(e):
    set_prop(e, "app-primary", "monitoringInterval", 0)


def m_no_log_exports(e):
    set_prop(e, "worker-primary", "enabledCloudwatchLogsExports", [])


def m_pi_unencrypted(e):
    set_prop(e, "worker-primary", "performanceInsightsKmsKeyId", None, deps=[])


def m_no_minor_upgrades(e):
    set_prop(e, "worker-primary", "autoMinorVersionUpgrade", False)


def m_no_copy_tags(e):
    set_prop(e, "auth-primary", "copyTagsToSnapshot", False)


def m_replica_other_key(e):
    arn = out(e, "app-key", "arn")
    set_prop(e, "auth-replica-1", "kmsKeyId", arn, deps=[urn(e, "app-key")])
    set_prop(e, "auth-replica-1", "performanceInsightsKmsKeyId", arn, deps=[urn(e, "app-key")])


def m_replica_other_params(e):
    set_prop(e, "auth-replica-2", "parameterGroupName", out(e, "app-params", "name"), deps=[urn(e, "app-params")])


def m_replica_other_sg(e):
    set_prop(e, "app-replica-1", "vpcSecurityGroupIds", [res(e, "worker-db")["id"]], deps=[urn(e, "worker-db")])


def m_replica_of_other_primary(e):
    set_prop(e, "app-replica-1", "replicateSourceDb", "prod-auth", deps=[urn(e, "auth-primary")])


def m_replica_external_source(e):
    set_prop(e, "app-replica-1", "replicateSourceDb", "arn:aws:rds:eu-west-1:999999999999:db:someone-else", deps=[])


def m_policy_two_secrets(e):
    doc = policy_doc(e, "auth-access")
    doc["Statement"].append({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                             "Resource": [out(e, "auth-master-secret", "arn"), out(e, "app-master-secret", "arn")]})
    set_policy_doc(e, "auth-access", doc)


def m_policy_wildcard(e):
    doc = policy_doc(e, "worker-access")
    doc["Statement"][0]["Resource"] = "*"
    set_policy_doc(e, "worker-access", doc)


def m_policy_other_connect(e):
    doc = policy_doc(e, "worker-access")
    rid = out(e, "auth-primary", "resourceId")
    doc["Statement"].append({"Effect": "Allow", "Action": "rds-db:connect",
                             "Resource": f"arn:aws:rds-db:eu-west-1:123456789012:dbuser:{rid}/*"})
    set_policy_doc(e, "worker-access", doc)


def m_missing_owner_rds(e):
    set_tag(e, "worker-primary", "bulkhead:owner", None)


def m_primary_other_key(e):
    arn = out(e, "auth-key", "arn")
    for key in ("kmsKeyId", "masterUserSecretKmsKeyId", "performanceInsightsKmsKeyId"):
        set_prop(e, "app-primary", key, arn, deps=[urn(e, "auth-key")])


def m_two_dbs_one_sg(e):
    set_prop(e, "app-primary", "vpcSecurityGroupIds", [res(e, "auth-db")["id"]], deps=[urn(e, "auth-db")])


def m_rds_two_databases(e):
    set_tag(e, "worker-primary", "bulkhead:database", "app,worker")


def m_wrong_stack_tag(e):
    set_tag(e, "auth-primary", "bulkhead:stack", "dev")


def m_dev_stack_named_shop_prod(e):
    """The dev plan, stack renamed shop-prod (URNs and bulkhead:stack labels): a prod suffix on docker."""
    renamed = json.loads(json.dumps(e["deployment"]).replace("urn:pulumi:dev::", "urn:pulumi:shop-prod::"))
    for r in renamed["resources"]:
        for side in ("inputs", "outputs"):
            for label in (r.get(side) or {}).get("labels") or []:
                if isinstance(label, dict) and label.get("label") == "bulkhead:stack":
                    label["value"] = "shop-prod"
    e["deployment"] = renamed


def m_shared_client_group_output(e):
    stack = e["deployment"]["resources"][0]
    dbs = stack["outputs"]["databases"]
    dbs["app"]["security_group_id"] = dbs["auth"]["security_group_id"]


def m_client_group_two_owners(e):
    set_tag(e, "client-app-service-client", "bulkhead:owner", "app-service,worker-service")


def remove_resource(export: dict, name: str) -> None:
    target = urn(export, name)
    export["deployment"]["resources"] = [r for r in export["deployment"]["resources"] if r["urn"] != target]


def edit_doc(export: dict, name: str, fn: Callable[[dict], None]) -> None:
    doc = policy_doc(export, name)
    fn(doc)
    set_policy_doc(export, name, doc)


def m_key_default_policy(e):
    set_prop(e, "auth-key", "policy", None)


def m_key_account_wide_decrypt(e):
    edit_doc(e, "worker-key", lambda d: d["Statement"].append(
        {"Sid": "EnableIamUserPermissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "kms:*", "Resource": "*"}))


def m_key_via_service_dropped(e):
    def fn(doc):
        for st in doc["Statement"]:
            if st["Sid"] == "UseThroughAwsServices":
                del st["Condition"]["StringEquals"]["kms:ViaService"]
    edit_doc(e, "app-key", fn)


def m_vault_policy_removed(e):
    remove_resource(e, "backup-vault-policy")


def m_vault_policy_allows_delete(e):
    def fn(doc):
        for st in doc["Statement"]:
            st["Action"] = [a for a in st["Action"] if a != "backup:DeleteRecoveryPoint"]
    edit_doc(e, "backup-dr-vault-policy", fn)


def m_log_group_missing(e):
    remove_resource(e, "auth-log-replica-2-postgresql")


def m_log_group_kept_forever(e):
    set_prop(e, "app-log-primary-postgresql", "retentionInDays", None)


def m_log_group_unencrypted(e):
    set_prop(e, "worker-log-primary-upgrade", "kmsKeyId", None)


def m_secret_policy_removed(e):
    remove_resource(e, "app-master-secret-policy")


def m_secret_policy_allows_everyone(e):
    edit_doc(e, "auth-master-secret-policy", lambda d: d["Statement"].append(
        {"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))


def m_restore_selection_removed(e):
    remove_resource(e, "restore-testing-worker")


# --- dev mutations -------------------------------------------------------------------------------

def m_shared_volume(e):
    edit(e, "app-postgres", lambda p: p["volumes"][0].update(volumeName=out(e, "auth-data", "name")))
    res(e, "app-postgres")["propertyDependencies"]["volumes"] = [urn(e, "auth-data")]


def m_bind_mount(e):
    edit(e, "worker-postgres", lambda p: p["volumes"].append({"hostPath": "/srv/pg", "containerPath": "/backup"}))


def m_port_all_interfaces(e):
    edit(e, "auth-postgres", lambda p: p["ports"][0].update(ip="0.0.0.0"))


def m_port_no_ip(e):
    edit(e, "app-postgres", lambda p: p["ports"][0].pop("ip"))


def m_host_network(e):
    set_prop(e, "worker-postgres", "networkMode", "host")


def m_latest_image(e):
    set_prop(e, "auth-image", "name", "postgres:latest")


def m_untagged_image(e):
    set_prop(e, "worker-image", "name", "postgres")


def m_missing_owner_label(e):
    set_tag(e, "auth-postgres", "bulkhead:owner", None)


def m_volume_other_owner(e):
    set_tag(e, "app-data", "bulkhead:owner", "auth-service")


def m_shared_network(e):
    edit(e, "app-postgres", lambda p: p["networksAdvanced"][0].update(name=out(e, "auth-network", "name")))
    res(e, "app-postgres")["propertyDependencies"]["networksAdvanced"] = [urn(e, "auth-network")]


def m_default_bridge(e):
    set_prop(e, "worker-postgres", "networksAdvanced", None, deps=[])


def m_shared_password(e):
    # The password files (uploads) draw on another container's admin password.
    deps = res(e, "app-postgres")["propertyDependencies"]
    deps["uploads"] = [urn(e, "auth-admin-password") if u.endswith("app-admin-password") else u for u in deps["uploads"]]


def m_plaintext_password_env(e):
    # Passwords typed into the program: visible values (distinct, so only their source gives them
    # away) and no RandomPassword behind `envs` or the password files.
    set_prop(e, "worker-postgres", "envs", ["POSTGRES_USER=bulkhead_admin", "POSTGRES_PASSWORD=Adm1nTypedIn2024x",
                                             "BULKHEAD_PASSWORD_WORKER=W0rkerTypedIn2024"], deps=[])
    typed = {"admin": "Adm1nTypedIn2024x", "role-worker": "W0rkerTypedIn2024"}
    uploads = [
        {**u, "content": typed[u["file"].rsplit("/", 1)[1]]} if u["file"].rsplit("/", 1)[1] in typed else u
        for u in res(e, "worker-postgres")["inputs"]["uploads"]
    ]
    set_prop(e, "worker-postgres", "uploads", uploads, deps=[])


def m_same_password_value_two_containers(e):
    # Both containers keep their RandomPassword dependencies, but the visible values (an engine
    # or --show-secrets view) show the same password on two servers.
    for name in ("worker-postgres", "app-postgres"):
        set_prop(e, name, "envs", ["POSTGRES_USER=bulkhead_admin", "POSTGRES_PASSWORD=Sh4redAcrossServers0",
                                   f"BULKHEAD_PASSWORD_{name.split('-')[0].upper()}=Own{name}Passw0rd"])


def m_services_output_cross_owner(e):
    stack = e["deployment"]["resources"][0]
    stack["outputs"]["services"]["app-service"]["databases"].append("auth")


def m_no_memory_limit(e):
    set_prop(e, "app-postgres", "memory", None)


def m_no_swap_limit(e):
    set_prop(e, "auth-postgres", "memorySwap", None)


def m_ssl_off(e):
    command = res(e, "worker-postgres")["inputs"]["command"]
    set_prop(e, "worker-postgres", "command", [("ssl=off" if c == "ssl=on" else c) for c in command])


def m_plain_tcp_hba(e):
    uploads = copy.deepcopy(res(e, "worker-postgres")["inputs"]["uploads"])
    for upload in uploads:
        if upload["file"].endswith("pg_hba.conf"):
            upload["content"] = upload["content"].replace("host all all all reject", "host all all all scram-sha-256")
    set_prop(e, "worker-postgres", "uploads", uploads)


def m_no_healthcheck(e):
    set_prop(e, "worker-postgres", "healthcheck", None)


def m_volume_not_retained(e):
    res(e, "worker-data")["retainOnDelete"] = False


def m_data_in_container(e):
    set_prop(e, "auth-postgres", "volumes", [], deps=[])


def m_rds_in_dev(e):
    prod = e["_prod"]
    r = copy.deepcopy(res(prod, "worker-primary"))
    r["urn"] = r["urn"].replace("urn:pulumi:prod::", "urn:pulumi:dev::")
    for side in ("inputs", "outputs"):
        r[side]["tags"]["bulkhead:stack"] = "dev"
    r["propertyDependencies"] = {}
    e["deployment"]["resources"].append(r)


# --- issue 20: baseline ---------------------------------------------------------------------------

def m_secret_write_open(e):
    """The master secret's write deny without PutSecretValue (the policy before issue 20)."""
    def fn(doc):
        for statement in doc["Statement"]:
            if statement["Effect"] == "Deny" and "secretsmanager:PutSecretValue" in statement["Action"]:
                statement["Action"] = [a for a in statement["Action"] if a != "secretsmanager:PutSecretValue"]
    edit_doc(e, "auth-master-secret-policy", fn)


def m_endpoint_without_policy(e):
    set_prop(e, "endpoints-s3", "policy", None)


def m_s3_gateway_any_bucket(e):
    set_policy_doc(e, "endpoints-s3", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]})


def m_interface_endpoint_any_account(e):
    edit_doc(e, "endpoints-secretsmanager", lambda doc: doc["Statement"][0].pop("Condition"))


def m_default_sg_with_rules(e):
    set_prop(e, "foundation-default-sg", "ingress", [{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}])


def m_default_sg_unmanaged(e):
    remove_resource(e, "foundation-default-sg")


def m_no_flow_log(e):
    remove_resource(e, "foundation-flow-log")


def m_bootstrap_log_group_missing(e):
    remove_resource(e, "app-bootstrap-logs")


def m_bootstrap_log_group_forever(e):
    set_prop(e, "auth-bootstrap-logs", "retentionInDays", None)


def m_alarm_removed(e):
    # Issue 24: the app primary loses its free-storage alarm.
    remove_resource(e, "app-alarms-storage")


def m_alarm_without_action(e):
    set_prop(e, "app-alarms-cpu", "alarmActions", [])


def m_event_subscription_skips_primary(e):
    edit(e, "events-subscription", lambda p: p.__setitem__("sourceIds", [i for i in p["sourceIds"] if i != "prod-app"]))


MUTATIONS = [
    ("secret-put-value-not-denied", "prod", m_secret_write_open, "secret-writes-denied", None),
    ("endpoint-without-policy", "prod", m_endpoint_without_policy, "vpc-endpoint-policy", None),
    ("s3-gateway-any-bucket", "prod", m_s3_gateway_any_bucket, "vpc-endpoint-policy", None),
    ("interface-endpoint-any-account", "prod", m_interface_endpoint_any_account, "vpc-endpoint-policy", None),
    ("default-sg-with-rules", "prod", m_default_sg_with_rules, "default-security-group-closed", None),
    ("default-sg-unmanaged", "prod", m_default_sg_unmanaged, "default-security-group-closed", None),
    ("no-flow-log", "prod", m_no_flow_log, "vpc-flow-logs", None),
    ("bootstrap-log-group-missing", "prod", m_bootstrap_log_group_missing, "function-log-groups-managed", None),
    ("bootstrap-log-group-forever", "prod", m_bootstrap_log_group_forever, "function-log-groups-managed", None),
    # (id, stack, mutate, policy that must catch it, extra pack config)
    ("publicly-accessible", "prod", m_public, "rds-not-public", None),
    ("cidr-0.0.0.0/0-on-5432", "prod", m_public_cidr_rule, "sg-no-public-ingress", None),
    ("cidr-ingress-replaces-client-group", "prod", m_private_cidr_rule, "db-ingress-owner-only", None),
    ("new-public-rule-resource", "prod", m_new_public_rule, "sg-no-public-ingress", None),
    ("ipv6-::/0-ingress", "prod", m_ipv6_public_rule, "sg-no-public-ingress", None),
    ("other-service-client-group-in-ingress", "prod", m_other_client_in_ingress, "db-ingress-owner-only", None),
    ("extra-ingress-from-other-service", "prod", m_extra_ingress_from_other_service, "db-ingress-owner-only", None),
    ("ingress-found-by-property-dependencies", "prod", m_ingress_by_dependency_only, "db-ingress-owner-only", None),
    ("ingress-all-ports", "prod", m_ingress_all_ports, "db-ingress-owner-only", None),
    ("egress-to-other-database", "prod", m_egress_to_other_db, "db-ingress-owner-only", None),
    ("literal-master-password", "prod", m_literal_password, "rds-managed-master-password", None),
    ("managed-master-with-replicas", "prod", m_managed_master_with_replicas, "rds-managed-master-password", None),
    ("access-policy-any-db-user", "prod", m_policy_any_user, "access-policy-single-database", None),
    ("access-policy-grants-master-secret", "prod", m_policy_grants_master_secret, "access-policy-single-database", None),
    ("output-username-is-master", "prod", m_output_username_master, "service-role-not-master", None),
    ("service-env-url-is-master", "prod", m_output_url_master, "service-role-not-master", None),
    ("connect-as-master-user", "prod", m_connect_as_master, "service-role-not-master", None),
    ("master-secret-in-service-policy", "prod", m_policy_grants_master_secret, "service-role-not-master", None),
    ("bootstrap-reads-other-databases-secret", "prod", m_bootstrap_reads_other_secret, "service-role-not-master", None),
    ("other-databases-bootstrap-group-admitted", "prod", m_other_bootstrap_group_admitted, "db-ingress-owner-only", None),
    ("storage-unencrypted", "prod", m_unencrypted, "rds-storage-encrypted", None),
    ("no-customer-managed-key", "prod", m_no_cmk, "rds-customer-managed-key", None),
    ("aws-managed-key-alias", "prod", m_aws_managed_key, "rds-customer-managed-key", None),
    ("force-ssl-0", "prod", m_force_ssl_off, "rds-ssl-enforced", None),
    ("force-ssl-missing", "prod", m_force_ssl_missing, "rds-ssl-enforced", None),
    ("default-parameter-group", "prod", m_default_parameter_group, "rds-ssl-enforced", None),
    ("iam-auth-off", "prod", m_no_iam_auth, "rds-iam-auth", None),
    ("expired-ca", "prod", m_old_ca, "rds-current-ca", None),
    ("admin-username-postgres", "prod", m_admin_postgres, "rds-custom-admin-username", None),
    ("kms-rotation-off", "prod", m_kms_rotation_off, "kms-key-rotation", None),
    ("secret-under-aws-key", "prod", m_secret_default_key, "secret-customer-managed-key", None),
    ("retention-below-tier-minimum", "prod", m_low_retention, "rds-backup-retention", None),
    ("primary-not-selected-for-backup", "prod", m_not_in_backup_plan, "rds-in-backup-plan", None),
    ("backup-plan-retention-too-short", "prod", m_backup_plan_short, "rds-in-backup-plan", None),
    ("deletion-protection-off", "prod", m_deletion_protection_off, "rds-deletion-protection", None),
    ("skip-final-snapshot-on-primary", "prod", m_skip_final_snapshot, "rds-final-snapshot", None),
    ("delete-automated-backups", "prod", m_delete_automated_backups, "rds-final-snapshot", None),
    ("protect-false-primary", "prod", m_unprotected_primary, "rds-protected-resource", None),
    ("protect-false-kms-key", "prod", m_unprotected_key, "rds-protected-resource", None),
    ("single-az", "prod", m_single_az, "rds-multi-az", None),
    ("enhanced-monitoring-off", "prod", m_no_monitoring, "rds-enhanced-monitoring", None),
    ("no-log-exports", "prod", m_no_log_exports, "rds-log-exports", None),
    ("performance-insights-unencrypted", "prod", m_pi_unencrypted, "rds-performance-insights-encrypted", None),
    ("minor-upgrades-off", "prod", m_no_minor_upgrades, "rds-auto-minor-upgrade", None),
    ("copy-tags-off", "prod", m_no_copy_tags, "rds-copy-tags-to-snapshot", None),
    ("replica-on-another-key", "prod", m_replica_other_key, "replica-matches-primary", None),
    ("replica-other-parameter-group", "prod", m_replica_other_params, "replica-matches-primary", None),
    ("replica-other-security-group", "prod", m_replica_other_sg, "replica-matches-primary", None),
    ("replica-of-another-owners-primary", "prod", m_replica_of_other_primary, "replica-matches-primary", None),
    ("replica-of-external-database", "prod", m_replica_external_source, "replica-matches-primary", None),
    ("access-policy-two-secrets", "prod", m_policy_two_secrets, "access-policy-single-database", None),
    ("access-policy-wildcard", "prod", m_policy_wildcard, "access-policy-single-database", None),
    ("access-policy-other-db-connect", "prod", m_policy_other_connect, "access-policy-single-database", None),
    ("missing-owner-tag-rds", "prod", m_missing_owner_rds, "database-single-owner", None),
    ("primary-on-another-databases-key", "prod", m_primary_other_key, "database-single-owner", None),
    ("two-databases-one-security-group", "prod", m_two_dbs_one_sg, "no-shared-networks", None),
    ("rds-hosting-two-databases", "prod", m_rds_two_databases, "one-database-per-server", None),
    ("wrong-stack-tag", "prod", m_wrong_stack_tag, "platform-matches-stack", None),
    ("client-group-shared-in-outputs", "prod", m_shared_client_group_output, "no-shared-credentials", None),
    ("client-group-two-owners", "prod", m_client_group_two_owners, "database-single-owner", None),
    ("key-default-policy", "prod", m_key_default_policy, "kms-key-policy-scoped", None),
    ("key-account-wide-decrypt", "prod", m_key_account_wide_decrypt, "kms-key-policy-scoped", None),
    ("key-via-service-dropped", "prod", m_key_via_service_dropped, "kms-key-policy-scoped", None),
    ("vault-policy-removed", "prod", m_vault_policy_removed, "backup-vault-access-policy", None),
    ("vault-policy-allows-delete", "prod", m_vault_policy_allows_delete, "backup-vault-access-policy", None),
    ("log-group-missing", "prod", m_log_group_missing, "rds-log-groups-managed", None),
    ("log-group-kept-forever", "prod", m_log_group_kept_forever, "rds-log-groups-managed", None),
    ("log-group-unencrypted", "prod", m_log_group_unencrypted, "rds-log-groups-managed", None),
    ("restore-selection-removed", "prod", m_restore_selection_removed, "backup-restore-testing", None),
    ("secret-policy-removed", "prod", m_secret_policy_removed, "secret-resource-policy", None),
    ("secret-policy-allows-everyone", "prod", m_secret_policy_allows_everyone, "secret-resource-policy", None),
    ("two-containers-one-volume", "dev", m_shared_volume, "no-shared-volumes", None),
    ("host-bind-mount", "dev", m_bind_mount, "no-shared-volumes", None),
    ("port-on-0.0.0.0", "dev", m_port_all_interfaces, "dev-ports-loopback-only", None),
    ("port-without-ip", "dev", m_port_no_ip, "dev-ports-loopback-only", None),
    ("host-network-mode", "dev", m_host_network, "dev-ports-loopback-only", None),
    ("latest-image", "dev", m_latest_image, "dev-image-pinned", None),
    ("untagged-image", "dev", m_untagged_image, "dev-image-pinned", None),
    ("missing-owner-label", "dev", m_missing_owner_label, "database-single-owner", None),
    ("volume-of-another-owner", "dev", m_volume_other_owner, "database-single-owner", None),
    ("shared-network", "dev", m_shared_network, "no-shared-networks", None),
    ("default-bridge-network", "dev", m_default_bridge, "no-shared-networks", None),
    ("shared-password-env", "dev", m_shared_password, "no-shared-credentials", None),
    ("plaintext-password-env", "dev", m_plaintext_password_env, "no-shared-credentials", None),
    ("same-password-value-two-containers", "dev", m_same_password_value_two_containers, "no-shared-credentials", None),
    ("services-output-cross-owner", "dev", m_services_output_cross_owner, "no-shared-credentials", None),
    ("no-memory-limit", "dev", m_no_memory_limit, "dev-resource-limits", None),
    ("no-swap-limit", "dev", m_no_swap_limit, "dev-resource-limits", None),
    ("no-healthcheck", "dev", m_no_healthcheck, "dev-healthcheck", None),
    ("ssl-off", "dev", m_ssl_off, "dev-ssl-enforced", None),
    ("plain-tcp-in-hba", "dev", m_plain_tcp_hba, "dev-ssl-enforced", None),
    ("volume-not-retained", "dev", m_volume_not_retained, "dev-volume-retained", None),
    ("data-not-on-volume", "dev", m_data_in_container, "dev-volume-retained", None),
    ("rds-instance-in-dev-stack", "dev", m_rds_in_dev, "platform-matches-stack", None),
    ("docker-stack-named-shop-prod", "dev", m_dev_stack_named_shop_prod, "platform-matches-stack", None),
    ("shared-server-under-prod-config", "dev", lambda e: None, "one-database-per-server", PROD_CONFIG),
    ("alarm-removed", "prod", m_alarm_removed, "database-alarms-and-events", None),
    ("alarm-without-action", "prod", m_alarm_without_action, "database-alarms-and-events", None),
    ("event-subscription-skips-primary", "prod", m_event_subscription_skips_primary, "database-alarms-and-events", None),
]


# --- mutations of a prod plan with `proxy: true` on worker (rds-proxy-owner-only; o-fix review of issue 24) ---
# Applied to the proxied plan of tests/program/test_prod_proxy.py (the example prod stack has no proxy).

def _secret_arn(e: dict, database: str) -> str:
    return res(e, f"{database}-master-secret")["id"]


def m_proxy_targets_other_database(e):
    set_prop(e, "worker-proxy-target", "dbInstanceIdentifier", "prod-app")


def m_proxy_targets_unknown_instance(e):
    set_prop(e, "worker-proxy-target", "dbInstanceIdentifier", "somebody-elses-db")


def m_proxy_role_connects_to_other_database(e):
    doc = policy_doc(e, "worker-proxy-connect")
    doc["Statement"][0]["Resource"] = doc["Statement"][0]["Resource"].replace(
        out(e, "worker-primary", "resourceId"), out(e, "app-primary", "resourceId"))
    set_policy_doc(e, "worker-proxy-connect", doc)


def m_proxy_role_connects_as_anyone(e):
    doc = policy_doc(e, "worker-proxy-connect")
    doc["Statement"][0]["Resource"] = doc["Statement"][0]["Resource"].rsplit("/", 1)[0] + "/*"
    set_policy_doc(e, "worker-proxy-connect", doc)


def m_proxy_role_reads_other_secret(e):
    doc = policy_doc(e, "worker-proxy-connect")
    doc["Statement"].append({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                             "Resource": _secret_arn(e, "app")})
    set_policy_doc(e, "worker-proxy-connect", doc)


def m_proxy_role_extra_action(e):
    doc = policy_doc(e, "worker-proxy-connect")
    doc["Statement"].append({"Effect": "Allow", "Action": "rds:*", "Resource": "*"})
    set_policy_doc(e, "worker-proxy-connect", doc)


def m_proxy_role_managed_policy(e):
    # the role (the proxy, its group and its role share the name `worker-proxy`)
    role = next(r for r in e["deployment"]["resources"]
                if r["type"] == "aws:iam/role:Role" and r["urn"].endswith("::worker-proxy"))
    add_resource(e, "worker-proxy-connect", "worker-proxy-admin", {
        "role": role["id"], "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        deps={"role": [role["urn"]]})
    e["deployment"]["resources"][-1]["type"] = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    e["deployment"]["resources"][-1]["urn"] = e["deployment"]["resources"][-1]["urn"].replace(
        "aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment")


def m_proxy_extra_endpoint(e):
    # review rev-ops2: a read-write endpoint of worker's proxy in app-service's client group
    proxy = next(r for r in e["deployment"]["resources"]
                 if r["type"] == "aws:rds/proxy:Proxy" and r["urn"].endswith("::worker-proxy"))
    add_resource(e, "worker-proxy-target", "worker-proxy-extra-endpoint", {
        "dbProxyName": proxy["outputs"].get("name") or proxy["inputs"].get("name") or proxy["id"],
        "dbProxyEndpointName": "worker-side-door", "targetRole": "READ_WRITE",
        "vpcSubnetIds": ["subnet-elsewhere"], "vpcSecurityGroupIds": [res(e, "client-app-service-client")["id"]]},
        deps={"dbProxyName": [proxy["urn"]]})
    added = e["deployment"]["resources"][-1]
    added["type"] = "aws:rds/proxyEndpoint:ProxyEndpoint"
    added["urn"] = added["urn"].replace("aws:rds/proxyTarget:ProxyTarget", "aws:rds/proxyEndpoint:ProxyEndpoint")


PROXY_MUTATIONS = [
    ("proxy-targets-other-database", m_proxy_targets_other_database, "forward to"),
    ("proxy-targets-unknown-instance", m_proxy_targets_unknown_instance, "no database of this stack"),
    ("proxy-role-connects-to-other-database", m_proxy_role_connects_to_other_database, "connect as"),
    ("proxy-role-connects-as-anyone", m_proxy_role_connects_as_anyone, "connect as"),
    ("proxy-role-reads-other-secret", m_proxy_role_reads_other_secret, "secretsmanager:getsecretvalue"),
    ("proxy-role-extra-action", m_proxy_role_extra_action, "rds:*"),
    ("proxy-role-managed-policy", m_proxy_role_managed_policy, "attaches a managed policy"),
    ("proxy-extra-endpoint", m_proxy_extra_endpoint, "adds an endpoint to RDS Proxy"),
]

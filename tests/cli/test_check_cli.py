"""`python -m bulkhead check`: plans, `pulumi stack export` output, stdin, exit codes, --json."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys

import pytest

from bulkhead.commands.check import defaults_for_stack, evaluate, load_pack
from bulkhead.planfile import SECRET_ENVELOPE, SECRET_SIG, SECRET_SIG_KEY
from bulkhead.cli import main
from tests.support.mutations import (
    m_plaintext_password_env,
    m_public,
    m_shared_volume,
    m_single_az,
    show_secrets_export,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def as_stack_export(plan: dict, show_secrets: bool = False) -> dict:
    """Reshape a plan like a deployed stack's `pulumi stack export`: ciphertext secrets (plaintext
    ones kept with show_secrets, as `--show-secrets` prints them), default providers (with every
    custom resource pointing at one), sequence numbers, timestamps."""
    export = copy.deepcopy(plan)
    stack = export["deployment"]["resources"][0]["urn"].split("::")[0].split(":")[-1]

    def cipher(value):
        if isinstance(value, dict):
            if value.get(SECRET_SIG_KEY) == SECRET_SIG:
                if show_secrets and "plaintext" in value:
                    return dict(value)
                return {SECRET_SIG_KEY: SECRET_SIG, "ciphertext": "v1:AAAAbm90IGEgcmVhbCBjaXBoZXJ0ZXh0"}
            return {k: cipher(v) for k, v in value.items()}
        if isinstance(value, list):
            return [cipher(v) for v in value]
        return value

    resources = []
    providers = {}
    for r in export["deployment"]["resources"]:
        r = cipher(r)
        if r.get("custom") and not r["type"].startswith("pulumi:providers:"):
            pkg = r["type"].split(":")[0]
            if pkg not in providers:
                purn = f"urn:pulumi:{stack}::bulkhead::pulumi:providers:{pkg}::default_1_0_0"
                providers[pkg] = {"urn": purn, "custom": True, "id": f"{pkg}-provider-id",
                                  "type": f"pulumi:providers:{pkg}", "inputs": {"version": "1.0.0"},
                                  "outputs": {"version": "1.0.0"}}
                resources.append(providers[pkg])
            r.setdefault("provider", f"{providers[pkg]['urn']}::{providers[pkg]['id']}")
            r["created"] = r["modified"] = "2025-01-01T00:00:00Z"
        resources.append(r)
    export["deployment"]["resources"] = resources
    export["deployment"]["manifest"] = {"time": "2025-01-01T00:00:00Z", "magic": "0" * 64, "version": "v3.150.0"}
    export["deployment"]["secrets_providers"] = {"type": "passphrase", "state": {"salt": "v1:abc"}}
    return export


def verdicts(result) -> set:
    return {(v.policy, v.urn, v.enforcement) for v in result.violations}


def write(tmp_path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["check", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("mutate", [None, m_public, m_single_az], ids=["clean", "public", "single-az"])
def test_stack_export_gives_the_same_verdicts_as_the_plan(prod_export, mutate):
    plan = copy.deepcopy(prod_export)
    if mutate:
        mutate(plan)
    config = load_pack().PROD_POLICY_CONFIG
    on_plan = evaluate(plan, config)
    on_export = evaluate(as_stack_export(plan), config)
    assert verdicts(on_export) == verdicts(on_plan)
    assert on_export.resources == on_plan.resources + 2  # the two default providers
    if mutate:
        assert on_plan.violations


def test_dev_stack_export_same_verdicts(dev_export):
    plan = copy.deepcopy(dev_export)
    m_shared_volume(plan)
    assert verdicts(evaluate(as_stack_export(plan))) == verdicts(evaluate(plan))
    assert "no-shared-volumes" in {v.policy for v in evaluate(plan).violations}


def _analyzed(export: dict) -> int:
    """Every resource but the stack itself: what check reports it analyzed."""
    return sum(1 for r in export["deployment"]["resources"] if r["type"] != "pulumi:pulumi:Stack")


def test_exit_0_clean_file(tmp_path, capsys, prod_export):
    export = as_stack_export(prod_export)
    code, out, _ = run_cli(capsys, write(tmp_path, "plan.json", export))
    assert code == 0
    # the stack export adds the default providers the plan leaves out
    assert _analyzed(export) > _analyzed(prod_export) > 20
    assert f"0 violations, {_analyzed(export)} resources," in out and "policies" in out


def test_exit_1_on_mandatory_and_grouped_output(tmp_path, capsys, prod_export):
    plan = copy.deepcopy(prod_export)
    m_public(plan)
    code, out, _ = run_cli(capsys, write(tmp_path, "plan.json", plan))
    assert code == 1
    assert "database auth:" in out
    assert "[mandatory] rds-not-public: RDS instance 'auth-primary' is publicly accessible" in out
    assert "1 mandatory" in out


def test_exit_0_on_advisory_only(tmp_path, capsys, prod_export):
    plan = copy.deepcopy(prod_export)
    m_single_az(plan)
    code, out, _ = run_cli(capsys, write(tmp_path, "plan.json", plan))
    assert code == 0
    assert "[advisory] rds-multi-az" in out and "0 mandatory" in out


def test_json_shape(tmp_path, capsys, prod_export):
    plan = copy.deepcopy(prod_export)
    m_public(plan)
    code, out, _ = run_cli(capsys, write(tmp_path, "plan.json", plan), "--json")
    assert code == 1
    data = json.loads(out)
    assert {"violations", "resources", "policies"} <= set(data) <= {"violations", "resources", "policies", "cost"}
    assert data["resources"] == _analyzed(plan) and data["policies"] == len(load_pack().ALL_POLICIES)
    assert data["violations"] and all(set(v) == {"policy", "urn", "message", "enforcement"} for v in data["violations"])
    assert {"policy": "rds-not-public", "enforcement": "mandatory"}.items() <= data["violations"][0].items() or \
        any(v["policy"] == "rds-not-public" for v in data["violations"])


def test_policy_config_can_disable_and_prod_defaults_apply(tmp_path, capsys, prod_export, dev_export):
    plan = copy.deepcopy(prod_export)
    m_public(plan)
    config = write(tmp_path, "config.json", {"rds-not-public": "disabled"})
    code, out, _ = run_cli(capsys, write(tmp_path, "plan.json", plan), "--policy-config", config, "--json")
    assert code == 0 and json.loads(out)["violations"] == []
    # the dev plan's shared server passes under dev defaults, fails with the prod config
    dev = write(tmp_path, "dev.json", dev_export)
    assert run_cli(capsys, dev)[0] == 0
    prod_cfg = load_pack().PROD_POLICY_CONFIG_FILE
    code, out, _ = run_cli(capsys, dev, "--policy-config", prod_cfg)
    assert code == 1 and "one-database-per-server" in out


@pytest.mark.parametrize("content,expected", [
    ("{not json", "is not JSON"),
    ("", "is empty"),
    ("[1, 2]", "is not a plan or `pulumi stack export` file"),
    ('{"deployment": {"resources": [{"urn": 1}]}}', "deployment.resources"),
])
def test_bad_input_exit_2(tmp_path, capsys, content, expected):
    code, out, err = run_cli(capsys, write(tmp_path, "bad.json", content))
    assert code == 2
    assert expected in err and err.startswith("error: ")
    assert "Traceback" not in err + out


def test_missing_file_and_bad_config_exit_2(tmp_path, capsys, prod_export):
    code, _, err = run_cli(capsys, str(tmp_path / "nope.json"))
    assert code == 2 and "does not exist" in err
    plan = write(tmp_path, "plan.json", prod_export)
    code, _, err = run_cli(capsys, plan, "--policy-config", write(tmp_path, "c.json", {"no-such-policy": "mandatory"}))
    assert code == 2 and "not a policy of the pack" in err
    code, _, err = run_cli(capsys, plan, "--policy-config", write(tmp_path, "c2.json", {"rds-not-public": "loud"}))
    assert code == 2 and "enforcementLevel must be one of" in err


def test_stdin_dash(capsys, monkeypatch, prod_export):
    plan = copy.deepcopy(prod_export)
    m_public(plan)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(as_stack_export(plan))))
    code, out, _ = run_cli(capsys, "-", "--json")
    assert code == 1
    assert any(v["policy"] == "rds-not-public" for v in json.loads(out)["violations"])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_show_secrets_export_on_stdin_is_clean(capsys, monkeypatch, stack):
    # `pulumi stack export --show-secrets | python -m bulkhead check -`: every secret envelope carries
    # its plaintext (the generated passwords in the containers' envs): still 0 violations.
    export = as_stack_export(show_secrets_export(stack, monkeypatch), show_secrets=True)
    if stack == "dev":
        assert "POSTGRES_PASSWORD=" in json.dumps(export) and '"plaintext"' in json.dumps(export)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(export)))
    code, out, _ = run_cli(capsys, "-")
    assert code == 0 and "stdin: 0 violations" in out, out
    if stack == "dev":
        # a password typed into the program (no RandomPassword behind envs) still fails
        m_plaintext_password_env(export)
        monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(export)))
        code, out, _ = run_cli(capsys, "-")
        assert code == 1 and "no-shared-credentials" in out and "draws on no RandomPassword" in out, out


@pytest.mark.parametrize("stack,prod", [
    ("prod", True), ("prod-eu", True), ("prod_eu", True), ("production", True), ("production-eu", True),
    ("production_eu", True), ("productionx", False), ("prodx", False), ("preprod", False), ("staging", False),
    ("dev", False), ("dev-prod", True), ("shop-prod", True), ("shop_prod", True), ("shop.production", True),
    ("shopprod", False), ("", False), (None, False),
])
def test_defaults_for_stack_table(stack, prod):
    pack = load_pack()
    assert defaults_for_stack(stack, pack) == (pack.PROD_POLICY_CONFIG if prod else {})
    assert pack.thresholds.is_production_stack(stack) is prod


def test_subprocess_pipe_and_bad_input_have_no_traceback(tmp_path, prod_export):
    export = json.dumps(as_stack_export(prod_export))
    ok = subprocess.run([sys.executable, "-m", "bulkhead", "check", "-"], input=export, capture_output=True,
                        text=True, cwd=ROOT, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "0 violations" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "bulkhead", "check", "-"], input="garbage", capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "stdin is not JSON" in bad.stderr and "Traceback" not in bad.stderr


def test_no_source_is_exit_2(capsys):
    code, _, err = run_cli(capsys)
    assert code == 2 and "--stack" in err


def test_example_workflow_is_valid_yaml():
    import yaml

    with open(os.path.join(ROOT, ".github", "workflows", "bulkhead-policy.yml"), encoding="utf-8") as fh:
        workflow = yaml.safe_load(fh)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    steps = workflow["jobs"]["policy"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "pulumi preview --stack prod" in runs and "--policy-pack policies" in runs
    assert "python -m bulkhead check --stack prod" in runs and "python -m bulkhead check --stack dev" in runs


def test_secret_envelope_is_the_pulumi_sdks():
    """bulkhead.planfile defines the secret envelope once for the CLI, tests and bench; the values are
    the Pulumi SDK's (the engine's wire format), so a change there must fail here, not in a plan."""
    from pulumi.runtime import rpc

    assert (SECRET_SIG_KEY, SECRET_SIG) == (rpc._special_sig_key, rpc._special_secret_sig)
    assert SECRET_ENVELOPE == {rpc._special_sig_key: rpc._special_secret_sig}


def test_prod_pack_config_is_the_file_pulumi_reads():
    """One source: `check`'s production defaults are policies/policy-config.prod.json, the file
    `pulumi preview --policy-config` takes, and it configures only policies of the pack."""
    pack = load_pack()
    assert pack.PROD_POLICY_CONFIG_FILE == os.path.join(ROOT, "policies", "policy-config.prod.json")
    with open(pack.PROD_POLICY_CONFIG_FILE, encoding="utf-8") as fh:
        assert pack.PROD_POLICY_CONFIG == json.load(fh)
    assert pack.PROD_POLICY_CONFIG and set(pack.PROD_POLICY_CONFIG) <= set(pack.POLICIES_BY_NAME)
    for name, config in pack.PROD_POLICY_CONFIG.items():
        allowed = set(pack.POLICIES_BY_NAME[name].config_schema.properties if pack.POLICIES_BY_NAME[name].config_schema else ())
        assert set(config) - {"enforcementLevel"} <= allowed, name

"""Parameter groups settle: every managed parameter is sent with the apply method AWS reads back
(issue 19, finding 5), and temp_file_limit goes into the parameter group on aws (finding 6)."""

from __future__ import annotations

import pytest

from components.prod.rds_postgres import BASE_PARAMETERS, RDS_FAMILY_DEFAULTS, settled_apply_method
from tests.support.program import run_stack

PARAMS = "aws:rds/parameterGroup:ParameterGroup"

# major -> managed parameter -> (apply method sent, why). "default": the value is RDS's engine default
# for that family, which DescribeDBParameters reads back as pending-reboot (terraform-provider-aws
# #39252, #18035); "dynamic": a sighup/superuser setting PostgreSQL applies without a restart.
EXPECTED = {
    13: {"rds.force_ssl": "immediate", "password_encryption": "immediate"},
    14: {"rds.force_ssl": "immediate", "password_encryption": "pending-reboot"},
    15: {"rds.force_ssl": "pending-reboot", "password_encryption": "pending-reboot"},
    16: {"rds.force_ssl": "pending-reboot", "password_encryption": "pending-reboot"},
    17: {"rds.force_ssl": "pending-reboot", "password_encryption": "pending-reboot"},
}
LOGGING = {"log_connections": "immediate", "log_disconnections": "immediate",
           "log_min_duration_statement": "immediate", "log_lock_waits": "immediate"}


@pytest.mark.parametrize("major", sorted(EXPECTED))
def test_every_managed_parameter_has_its_settled_apply_method(major):
    table = {**EXPECTED[major], **LOGGING}
    assert set(table) == set(BASE_PARAMETERS), "every managed parameter is in the table"
    for name, value in BASE_PARAMETERS.items():
        method = settled_apply_method(major, name, value)
        assert method == table[name], (major, name)
        at_default = name in RDS_FAMILY_DEFAULTS and RDS_FAMILY_DEFAULTS[name](major) == value
        assert (method == "pending-reboot") == at_default, "pending-reboot only for values at the family default"


def test_plan_sends_settled_methods_and_temp_file_limit():
    def edit(cfg):
        cfg["bulkhead:databases"]["worker"]["temp_file_limit"] = "5GB"
        cfg["bulkhead:databases"]["app"]["engine_version"] = "14"

    run = run_stack("prod", edit=edit)
    groups = {g.inputs["tags"]["bulkhead:database"]: g for g in run.by_type(PARAMS)}
    for name, major, tfl in (("worker", 17, "5242880"), ("app", 14, "2097152"), ("auth", 16, "2097152")):
        params = {p["name"]: p for p in groups[name].inputs["parameters"]}
        assert params["rds.force_ssl"]["value"] == "1", "the pack's rds-ssl-forced still sees it"
        assert params["rds.force_ssl"]["applyMethod"] == EXPECTED[major]["rds.force_ssl"]
        assert params["password_encryption"]["applyMethod"] == EXPECTED[major]["password_encryption"]
        # temp_file_limit: superuser-only per role, so the instance's group carries it, in kB
        assert params["temp_file_limit"] == {"name": "temp_file_limit", "value": tfl, "applyMethod": "immediate"}
    bootstrap_inputs = [i.inputs["input"] for i in run.by_type("aws:lambda/invocation:Invocation")]
    assert not [i for i in bootstrap_inputs if "temp_file_limit" in i], "never sent to the role (RDS refuses it)"

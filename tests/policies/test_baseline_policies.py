"""Issue 20's policies: the pack's copy of the secret write actions is the program's."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "policies"))

from bulkhead_policies import POLICIES_BY_NAME, baseline  # noqa: E402

from components.prod import key_policies  # noqa: E402


def test_the_pack_denies_the_same_write_actions_as_the_program():
    assert baseline.SECRET_WRITE_ACTIONS == key_policies.SECRET_ADMIN_ACTIONS  # one tuple, in policies/bulkhead_types.py


def test_the_new_policies_are_in_the_pack_at_their_levels():
    levels = {name: POLICIES_BY_NAME[name].enforcement_level.value for name in (
        "secret-writes-denied", "vpc-endpoint-policy", "default-security-group-closed", "vpc-flow-logs",
        "function-log-groups-managed")}
    assert levels == {"secret-writes-denied": "mandatory", "vpc-endpoint-policy": "mandatory",
                      "default-security-group-closed": "mandatory", "vpc-flow-logs": "advisory",
                      "function-log-groups-managed": "mandatory"}

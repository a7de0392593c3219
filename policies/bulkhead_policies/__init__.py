"""The bulkhead policy pack's rules, importable without starting a policy-pack server.

`policies/__main__.py` builds the `PolicyPack` from `ALL_POLICIES`; `python -m
bulkhead check` evaluates the same list offline. Imports only itself and pulumi_policy.
"""

from __future__ import annotations

import json
import os

from . import baseline, boundary, dev, resilience, security, separation, thresholds
from . import operations
from ._resources import SECRET_PLACEHOLDER, check_registered

PACK_NAME = "bulkhead"

ALL_POLICIES = [*separation.POLICIES, *security.POLICIES, *resilience.POLICIES, *dev.POLICIES, *boundary.POLICIES,
                *baseline.POLICIES, *operations.POLICIES]

check_registered(ALL_POLICIES)

POLICIES_BY_NAME = {p.name: p for p in ALL_POLICIES}

# The pack config for production stacks, read from the one file `pulumi preview --policy-config
# policies/policy-config.prod.json` reads (it sits in the pack directory, published with the pack).
PROD_POLICY_CONFIG_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                       "policy-config.prod.json")
with open(PROD_POLICY_CONFIG_FILE, encoding="utf-8") as _fh:
    PROD_POLICY_CONFIG = json.load(_fh)

__all__ = ["SECRET_PLACEHOLDER", "ALL_POLICIES", "POLICIES_BY_NAME", "PACK_NAME", "PROD_POLICY_CONFIG", "PROD_POLICY_CONFIG_FILE", "thresholds"]

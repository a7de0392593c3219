"""The bulkhead policy pack's rules, importable without starting a policy-pack server.

`policies/__main__.py` builds the `PolicyPack` from `ALL_POLICIES`; `python -m
bulkhead check` evaluates the same list offline. Imports only itself and pulumi_policy.
"""

from __future__ import annotations

from . import baseline, boundary, dev, resilience, security, separation, thresholds
from ._resources import SECRET_PLACEHOLDER

PACK_NAME = "bulkhead"

ALL_POLICIES = [*separation.POLICIES, *security.POLICIES, *resilience.POLICIES, *dev.POLICIES, *boundary.POLICIES,
                *baseline.POLICIES]

POLICIES_BY_NAME = {p.name: p for p in ALL_POLICIES}

# The pack config for production stacks: the same JSON as
# `pulumi preview --policy-config policies/policy-config.prod.json`.
PROD_POLICY_CONFIG = {
    "one-database-per-server": {"enforcementLevel": "mandatory", "allowSharedDevServers": False},
}

__all__ = ["SECRET_PLACEHOLDER", "ALL_POLICIES", "POLICIES_BY_NAME", "PACK_NAME", "PROD_POLICY_CONFIG", "thresholds"]

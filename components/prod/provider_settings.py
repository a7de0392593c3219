"""The stack's `aws:` provider settings, for the DR region's second provider.

The list is derived from pulumi-aws's own `ProviderArgs` (its constructor's arguments), never
written by hand: a hand list dropped assumeRoleWithWebIdentity (OIDC from CI), ignoreTags, stsRegion,
customCaBundle, endpoints and useFipsEndpoint, so the DR provider of a CI runner or a FIPS or
proxied setup authenticated differently from the stack's own provider, or not at all.
Only `region` differs: the DR provider's whole point.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Callable, Optional

# Marked secret in pulumi-aws's provider schema: they stay Pulumi secrets in the DR provider's inputs.
SECRET_SETTINGS = frozenset({"access_key", "secret_key", "token"})
NOT_COPIED = frozenset({"region"})
# Settings that name the stack region's own hosts: copied, they would send the DR provider's calls
# (the DR vault, its key policy) to the primary region's endpoints. `endpoints` is the provider's
# per-service URL override ("endpoints: Configuration block for customizing service endpoints",
# terraform-provider-aws docs, "Custom Service Endpoints"; the provider uses a configured URL as is,
# whatever its region). The DR provider takes `bulkhead:dr_endpoints` instead, and a stack with
# `aws:endpoints` and a DR region but without it is refused (dr_endpoints_problem).
REGION_SPECIFIC = frozenset({"endpoints"})


class ProviderSettingsError(Exception):
    """The stack's `aws:` settings cannot be carried to the DR provider as they are."""


def provider_setting_names() -> list[str]:
    """Every argument of pulumi_aws.ProviderArgs (snake_case), in its order."""
    from pulumi_aws import ProviderArgs

    return [p for p in inspect.signature(ProviderArgs.__init__).parameters if not p.startswith("_") and p != "self"]


def config_key(arg: str) -> str:
    """ProviderArgs argument -> its `aws:` config key (Pulumi's camelCase: assume_role_with_web_identity
    -> assumeRoleWithWebIdentity, s3_us_east1_regional_endpoint -> s3UsEast1RegionalEndpoint)."""
    head, *rest = arg.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def dr_provider_settings(get: Callable[[str], Optional[str]], secret: Callable[[Any], Any],
                         dr_region: Optional[str] = None, dr_endpoints: Optional[Any] = None) -> dict[str, Any]:
    """Every set `aws:` provider setting but the region, as ProviderArgs keyword arguments.

    `get(key)`: the raw config text of `aws:<key>` or None; `secret(value)`: wraps a secret.
    Values are JSON where they parse (lists, maps, booleans, numbers), else the text.
    `aws:endpoints` is never copied: `dr_endpoints` (bulkhead:dr_endpoints) takes its place, and
    with a `dr_region`, `aws:endpoints` and no `dr_endpoints` this raises ProviderSettingsError."""
    problem = dr_endpoints_problem(get("endpoints") is not None, dr_region, dr_endpoints)
    if problem:
        raise ProviderSettingsError(problem)
    out: dict[str, Any] = {}
    if dr_endpoints:
        out["endpoints"] = [dict(entry) for entry in dr_endpoints]
    for arg in provider_setting_names():
        if arg in NOT_COPIED or arg in REGION_SPECIFIC:
            continue
        raw = get(config_key(arg))
        if raw is None:
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out[arg] = secret(value) if arg in SECRET_SETTINGS else value
    return out


def dr_endpoints_problem(has_endpoints: bool, dr_region: Optional[str], dr_endpoints: Optional[Any]) -> Optional[str]:
    """The error when the stack region's custom endpoints would have to serve the DR region."""
    if not has_endpoints or not dr_region or dr_endpoints is not None:
        return None
    return (f"aws:endpoints is set and bulkhead:dr_region is {dr_region}: those endpoints are the stack region's, "
            f"and the DR provider (the {dr_region} backup vault) would call them. Set bulkhead:dr_endpoints to the "
            f"{dr_region} endpoints in the same shape (a list of {{service: url}} maps), or to [] for AWS's public "
            f"endpoints of {dr_region}")

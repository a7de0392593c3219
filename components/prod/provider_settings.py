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


def provider_setting_names() -> list[str]:
    """Every argument of pulumi_aws.ProviderArgs (snake_case), in its order."""
    from pulumi_aws import ProviderArgs

    return [p for p in inspect.signature(ProviderArgs.__init__).parameters if not p.startswith("_") and p != "self"]


def config_key(arg: str) -> str:
    """ProviderArgs argument -> its `aws:` config key (Pulumi's camelCase: assume_role_with_web_identity
    -> assumeRoleWithWebIdentity, s3_us_east1_regional_endpoint -> s3UsEast1RegionalEndpoint)."""
    head, *rest = arg.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def dr_provider_settings(get: Callable[[str], Optional[str]], secret: Callable[[Any], Any]) -> dict[str, Any]:
    """Every set `aws:` provider setting but the region, as ProviderArgs keyword arguments.

    `get(key)`: the raw config text of `aws:<key>` or None; `secret(value)`: wraps a secret.
    Values are JSON where they parse (lists, maps, booleans, numbers), else the text."""
    out: dict[str, Any] = {}
    for arg in provider_setting_names():
        if arg in NOT_COPIED:
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

"""The DR provider takes every `aws:` provider setting (issue 19, finding 7): derived from pulumi-aws's
ProviderArgs and cross-checked against the config keys pulumi-aws itself reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pulumi_aws

from bulkhead.planfile import SECRET_ENVELOPE
from components.prod.provider_settings import SECRET_SETTINGS, config_key, provider_setting_names
from tests.support.program import run_stack


def _keys_the_sdk_reads() -> set[str]:
    """The `aws:` keys pulumi_aws/config/vars.py reads (the default provider's configuration)."""
    text = (Path(pulumi_aws.__file__).parent / "config" / "vars.py").read_text()
    return set(re.findall(r"__config__\.get\w*\('(\w+)'\)", text))


def test_every_provider_setting_maps_to_the_config_key_the_sdk_reads():
    keys = {config_key(arg) for arg in provider_setting_names()}
    assert keys == _keys_the_sdk_reads()
    assert {"assumeRoleWithWebIdentity", "ignoreTags", "stsRegion", "customCaBundle", "endpoints",
            "useFipsEndpoint"} <= keys


def test_no_setting_is_dropped_from_the_dr_provider():
    settings = {}
    for arg in provider_setting_names():
        key = config_key(arg)
        if key != "region":
            # a distinct value per key; structured ones as the JSON `pulumi config set --path` writes
            settings[f"aws:{key}"] = {"marker": f"value-of-{key}"} if arg in ("assume_role_with_web_identity", "ignore_tags",
                                                                              "default_tags") else f"value-of-{key}"
    run = run_stack("prod", edit=lambda c: c.update(settings))
    (provider,) = run.by_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "eu-central-1"
    dropped = []
    for key in (k.removeprefix("aws:") for k in settings):
        value = provider.inputs.get(key)
        if value is None:
            dropped.append(key)
        elif key in {config_key(a) for a in SECRET_SETTINGS}:
            assert value == SECRET_ENVELOPE, key
        else:
            assert f"value-of-{key}" in (value if isinstance(value, str) else json.dumps(value)), key
    assert not dropped, f"the DR provider drops {dropped}"
    assert "value-of-secretKey" not in json.dumps(provider.inputs)

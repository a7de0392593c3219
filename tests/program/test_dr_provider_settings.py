"""The DR provider takes every `aws:` provider setting (issue 19, finding 7): derived from pulumi-aws's
ProviderArgs and cross-checked against the config keys pulumi-aws itself reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pulumi_aws
import pytest

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
    # aws:endpoints are the stack region's: the DR provider takes bulkhead:dr_endpoints instead (test below)
    dr_endpoints = [{"backup": "https://value-of-endpoints.eu-central-1.example"}]
    run = run_stack("prod", edit=lambda c: c.update(settings, **{"bulkhead:dr_endpoints": dr_endpoints}))
    (provider,) = run.by_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "eu-central-1"
    # provider inputs travel as JSON text (Pulumi serializes a provider's structured config)
    endpoints = provider.inputs["endpoints"]
    assert (json.loads(endpoints) if isinstance(endpoints, str) else endpoints) == dr_endpoints
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


PRIMARY_ENDPOINTS = [{"backup": "https://backup.eu-west-1.example"}, {"kms": "https://kms.eu-west-1.example"}]


def test_the_stack_regions_endpoints_are_refused_for_dr_without_dr_endpoints():
    """Copied, aws:endpoints sent the DR provider's calls (the DR vault) to the stack region's hosts."""
    with pytest.raises(Exception) as caught:
        run_stack("prod", edit=lambda c: c.update({"aws:endpoints": json.dumps(PRIMARY_ENDPOINTS)}))
    text = str(caught.value)
    assert "bulkhead:dr_endpoints" in text and "aws:endpoints" in text and "eu-central-1" in text
    assert "nothing was created" in text


def test_empty_dr_endpoints_means_the_dr_regions_public_endpoints():
    run = run_stack("prod", edit=lambda c: c.update({"aws:endpoints": json.dumps(PRIMARY_ENDPOINTS),
                                                     "bulkhead:dr_endpoints": []}))
    (provider,) = run.by_type("pulumi:providers:aws")
    assert "endpoints" not in provider.inputs or not provider.inputs["endpoints"]
    assert "eu-west-1.example" not in json.dumps(provider.inputs)


def test_without_a_dr_region_aws_endpoints_need_nothing():
    run = run_stack("prod", edit=lambda c: c.update({"aws:endpoints": json.dumps(PRIMARY_ENDPOINTS)})
                    or c.pop("bulkhead:dr_region", None) or _no_dr_copies(c))
    assert not run.by_type("pulumi:providers:aws")


def _no_dr_copies(config):
    tiers = config.setdefault("bulkhead:backup_tiers", {})
    for name in ("critical", "standard"):
        tiers.setdefault(name, {})
    for tier in tiers.values():
        tier["copy_to_dr"] = False


@pytest.mark.parametrize("value", [{"backup": "https://x"}, [{"backup": 5}], "https://x"])
def test_dr_endpoints_must_have_aws_endpoints_shape(value):
    from components.catalogue.model import CatalogueError, load_catalogue

    raw = {"platform": "aws", "databases": {"app": {"owner": "app-service"}}, "dr_endpoints": value,
           "deployers": ["arn:aws:iam::123456789012:role/deploy"]}
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(raw, "prod", region="eu-west-1")
    assert any(str(p).startswith("bulkhead:dr_endpoints") for p in caught.value.problems)

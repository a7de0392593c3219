"""bulkhead: one isolated PostgreSQL database per service.

Thin on purpose: read the config once, build one component per database (or
shared dev server), export `databases` and `services`. Everything else lives in
`components/`, which never reads config itself.
"""

import json
import os

import pulumi

from components.catalogue.model import STACK_KEYS, Catalogue, CatalogueError, load_catalogue
from components.outputs import services_output, stack_identity


def _read_config() -> dict:
    config = pulumi.Config("bulkhead")
    raw = {}
    for key in STACK_KEYS:
        text = config.get(key)
        if text is None:
            continue
        try:
            raw[key] = json.loads(text)
        except ValueError:
            raw[key] = text  # a plain string such as `docker`
    return raw


def _validated_catalogue(raw: dict, stack: str, region):
    """The catalogue an offline `plan --jobs` parent already validated from exactly these inputs
    with these very modules (bulkhead/offline/parallel.py), else None. Under `pulumi up` the
    offline runtime is never imported: the catalogue is always validated here."""
    import sys

    offline = sys.modules.get("bulkhead.offline.mock_runtime")
    return offline.validated_catalogue(raw, stack, region, Catalogue) if offline is not None else None


try:
    _raw, _region = _read_config(), pulumi.Config("aws").get("region")
    catalogue = _validated_catalogue(_raw, pulumi.get_stack(), _region) or load_catalogue(_raw, pulumi.get_stack(), region=_region)
except CatalogueError as exc:
    # RunError: a clean message and a failed update, no traceback, no resource registered.
    raise pulumi.RunError("bulkhead config is invalid; nothing was created:\n" + str(exc)) from None
for warning in catalogue.warnings:
    pulumi.log.warn(str(warning))


def _check_caller() -> None:
    """The identity running this deploy against `bulkhead:deployers` and `bulkhead:key_admins`
    (components/catalogue/deployers.py), before any resource is registered: GetCallerIdentity
    is a synchronous invoke here, so a refused list creates nothing."""
    import pulumi_aws as aws

    from components.catalogue.deployers import check_caller
    from components.catalogue.model import Problem

    errors, warnings = check_caller(aws.get_caller_identity().arn, catalogue.deployers, catalogue.key_admins)
    if errors:
        raise pulumi.RunError("bulkhead config is invalid; nothing was created:\n"
                              + str(CatalogueError([Problem(path=p, message=m) for p, m in errors])))
    for path, message in warnings:
        pulumi.log.warn(f"{path}: {message}")


if catalogue.platform == "aws":
    _check_caller()

def _aws_provider_settings() -> dict:
    """The default AWS provider's settings for the stack's second (DR) provider: every `aws:`
    setting pulumi-aws's ProviderArgs takes, only another region (components/prod/provider_settings.py;
    `aws:secretKey`, `aws:token`, `aws:accessKey` stay Pulumi secrets)."""
    from components.prod.provider_settings import ProviderSettingsError, dr_provider_settings

    aws_config = pulumi.Config("aws")
    try:
        return dr_provider_settings(aws_config.get, pulumi.Output.secret, catalogue.dr_region, catalogue.dr_endpoints)
    except ProviderSettingsError as exc:  # aws:endpoints without bulkhead:dr_endpoints: nothing registered yet
        raise pulumi.RunError(f"bulkhead config is invalid; nothing was created:\nbulkhead:dr_endpoints: {exc}") from None


def _plan_shard():
    """The databases an offline `bulkhead plan --jobs` worker plans (bulkhead/offline/parallel.py),
    else None (every database). Asked only of the offline runtime when it is loaded: under
    `pulumi up` that module is never imported, so a real deployment always builds everything."""
    import sys

    offline = sys.modules.get("bulkhead.offline.mock_runtime")
    return offline.plan_shard() if offline is not None else None


_shard = _plan_shard()
if catalogue.platform == "docker":
    from components.dev.stack import build_docker_stack

    admin_connections: dict = {}
    connections = build_docker_stack(catalogue, admin_connections, only=_shard)
    if admin_connections:  # only with bulkhead:admin_tcp (docs/contract.md section 5)
        pulumi.export("admin", admin_connections)
else:
    from components.prod.stack import build_aws_stack

    # The bootstrap functions' package is built next to the program (like the plans).
    build_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".bulkhead", "build")
    connections, network = build_aws_stack(catalogue, _aws_provider_settings(), build_dir, only=_shard)
    # Where a consumer places its tasks: the databases' VPC, subnets, and the endpoint group.
    pulumi.export("network", network)
pulumi.export("databases", connections)
if _shard is None:  # a --jobs worker's `services` is computed once from the merged `databases`
    pulumi.export("services", services_output(catalogue, connections))
for _key, _value in stack_identity(pulumi.get_stack(), pulumi.get_project()).items():
    pulumi.export(_key, _value)

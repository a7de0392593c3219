"""boto3 clients with standard retries, and AWS errors as messages a person can act on."""

from __future__ import annotations

import functools
import re
from typing import Optional

from .errors import UserError

RETRIES = {"mode": "standard", "max_attempts": 8}
ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess",
                "AuthorizationError", "NotAuthorized"}
CREDENTIAL_CODES = {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
                    "SignatureDoesNotMatch", "InvalidSignatureException", "AuthFailure", "RequestExpired"}
THROTTLE_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
                  "SlowDown", "PriorRequestNotComplete"}
NOT_FOUND_SUFFIXES = ("NotFound", "NotFoundFault", "NotFoundException")


_LOADER = None


def session(region: Optional[str] = None):
    """A fresh boto3 session (fresh credentials), sharing one model loader so models load once."""
    import boto3
    import botocore.session

    global _LOADER
    core = botocore.session.get_session()
    if _LOADER is None:
        _LOADER = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _LOADER)
    return boto3.Session(botocore_session=core, region_name=region)


def client(sess, service: str, region: Optional[str] = None):
    from botocore.config import Config

    return sess.client(service, region_name=region, config=Config(retries=dict(RETRIES), connect_timeout=10, read_timeout=30))


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


# The services `audit` calls. Their not-found error codes come from botocore's own service models
# (each exception shape's `error.code`, else its name): IAM answers a deleted policy with
# NoSuchEntity, which no suffix rule knew, and audit crashed with "AWS error" instead of reporting drift.
AUDITED_SERVICES = ("backup", "ec2", "iam", "kms", "rds", "secretsmanager", "sts")
_NOT_FOUND_RE = r"(NotFound|NoSuch)"


def not_found_codes(services=AUDITED_SERVICES) -> frozenset[str]:
    """Every modelled error code of `services` that says "no such resource"."""
    return _not_found_codes(tuple(services))


@functools.lru_cache(maxsize=None)
def _not_found_codes(services: tuple[str, ...]) -> frozenset[str]:
    import botocore.session

    loader = botocore.session.get_session().get_component("data_loader")
    codes = set()
    for service in services:
        model = loader.load_service_model(service, "service-2")
        for name, shape in model.get("shapes", {}).items():
            if not shape.get("exception"):
                continue
            code = (shape.get("error") or {}).get("code") or name
            if re.search(_NOT_FOUND_RE, code):
                codes.add(code)
    return frozenset(codes)


def is_not_found(exc: BaseException) -> bool:
    code = error_code(exc)
    # EC2's codes are not in its model (EC2 API reference, "Error codes": InvalidGroup.NotFound, ...).
    return (code in not_found_codes() or code.endswith(NOT_FOUND_SUFFIXES)
            or code in ("ResourceNotFoundException", "InvalidGroup.NotFound"))


def aws_user_error(exc: BaseException, doing: str, exit_code: int = 2) -> Optional[UserError]:
    """A UserError for an AWS failure that stops the command, or None if it is not one."""
    from botocore import exceptions as bex

    if isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError)):
        return UserError(f"no AWS credentials found while {doing}; set AWS_PROFILE (and `aws sso login`) "
                         f"or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then retry", exit_code)
    if isinstance(exc, bex.NoRegionError):
        return UserError(f"no AWS region while {doing}; pass --region or set AWS_REGION", exit_code)
    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ReadTimeoutError)):
        return UserError(f"could not reach AWS while {doing} ({type(exc).__name__}); check the network/proxy and region", exit_code)
    if hasattr(bex, "TokenRetrievalError") and isinstance(exc, bex.TokenRetrievalError):
        return UserError(f"the AWS SSO session has expired while {doing}; run `aws sso login` and retry", exit_code)
    if isinstance(exc, bex.ClientError):
        code = error_code(exc)
        op = getattr(exc, "operation_name", "") or "the call"
        if code in ACCESS_CODES:
            return UserError(f"access denied while {doing}: the AWS identity may not call {op}; "
                             f"grant it read access (e.g. the ReadOnlyAccess managed policy) and retry", exit_code)
        if code in CREDENTIAL_CODES:
            return UserError(f"AWS rejected the credentials while {doing} ({code}); refresh them "
                             f"(`aws sso login`, or new keys) and retry", exit_code)
        if code in THROTTLE_CODES:
            return UserError(f"AWS kept throttling {op} while {doing}, even after retries; retry later", exit_code)
        return UserError(f"AWS error while {doing}: {op} failed with {code or 'an unknown error'}", exit_code)
    if isinstance(exc, bex.BotoCoreError):
        return UserError(f"AWS client error while {doing}: {type(exc).__name__}", exit_code)
    return None

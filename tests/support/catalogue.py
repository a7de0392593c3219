"""Small valid catalogues for table-driven tests, with keys replaced as given."""

from __future__ import annotations

from typing import Any


def docker(databases: dict | None = None, **stack: Any) -> dict:
    """A valid docker catalogue, with `databases` / stack keys replaced as given."""
    raw = {
        "platform": "docker",
        "databases": databases if databases is not None else {"app": {"owner": "app-service", "port": 5433}},
    }
    raw.update(stack)
    return raw


def aws(databases: dict | None = None, **stack: Any) -> dict:
    raw = {"platform": "aws", "databases": databases if databases is not None else {"app": {"owner": "app-service"}}}
    raw.update(stack)
    return raw


def ddb(**keys: Any) -> dict:
    """docker: the `app` database with extra keys."""
    return docker({"app": {"owner": "app-service", "port": 5433, **keys}})


def adb(**keys: Any) -> dict:
    """aws: the `app` database with extra keys."""
    return aws({"app": {"owner": "app-service", **keys}})

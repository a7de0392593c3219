"""Every test here runs a real PostgreSQL server (tests/support/postgres.py): marked `postgres`."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/postgres/" in str(item.fspath):
            item.add_marker(pytest.mark.postgres)

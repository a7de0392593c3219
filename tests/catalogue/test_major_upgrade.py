"""`allow_major_upgrade_to`: a major upgrade is an explicit act (components/catalogue/major_upgrade.py)."""

from __future__ import annotations

from components.catalogue.model import CatalogueError, load_catalogue


def _load(**db):
    raw = {"platform": "aws", "databases": {"app": {"owner": "app-service", **db}}}
    try:
        catalogue = load_catalogue(raw, "prod", region="eu-west-1")
    except CatalogueError as exc:
        return [str(p) for p in exc.problems], []
    return [], [str(w) for w in catalogue.warnings]


KEY = "bulkhead:databases.app.allow_major_upgrade_to"


def test_the_key_must_name_the_declared_major():
    errors, _ = _load(engine_version="16", allow_major_upgrade_to=17)
    assert len(errors) == 1 and errors[0].startswith(KEY)
    assert 'set engine_version: "17"' in errors[0] and "remove allow_major_upgrade_to" in errors[0]


def test_the_key_is_refused_with_replicas_with_the_runbook():
    errors, _ = _load(engine_version="17", allow_major_upgrade_to=17, replicas=2)
    assert len(errors) == 1 and errors[0].startswith(KEY)
    assert "replicas: 0" in errors[0] and "docs/prod-stack.md" in errors[0]


def test_a_matching_key_without_replicas_is_accepted_with_a_warning_to_remove_it():
    errors, warnings = _load(engine_version="17.7", allow_major_upgrade_to=17)
    assert errors == []
    (warning,) = [w for w in warnings if w.startswith(KEY)]
    assert "remove allow_major_upgrade_to" in warning and "apply_immediately" in warning


def test_no_key_no_finding():
    errors, warnings = _load(engine_version="17")
    assert errors == [] and not [w for w in warnings if w.startswith(KEY)]


def test_the_key_is_aws_only():
    raw = {"platform": "docker", "databases": {"app": {"owner": "app-service", "port": 5433,
                                                       "allow_major_upgrade_to": 16}}}
    try:
        load_catalogue(raw, "dev")
    except CatalogueError as exc:
        assert any(str(p).startswith(KEY) and "platform aws" in str(p) for p in exc.problems)
    else:
        raise AssertionError("a docker stack accepted allow_major_upgrade_to")

"""Inputs written the way the Docker provider reads them back, so `up` never sees a diff.

cpus: kreuzwerker/terraform-provider-docker internal/provider/helpers.go
nanoInt64ToDecimalString (its table in helpers_test.go: 1e9 -> "1.0", 1.5e9 -> "1.5",
2e9 -> "2.0", 2.25e9 -> "2.25"); `cpus` is ForceNew, so "1" (what bulkhead sent before)
replaced every container on every `up`. Healthcheck durations: the provider stores
`Healthcheck.Interval.String()`, Go's time.Duration format. The real engine's read-back is
compared with the plan in tests/docker/test_docker_engine.py.
"""

from __future__ import annotations

import pytest

from components.dev.forms import cpus_round_trips, cpus_string, go_duration
from tests.support.docker_engine import UnmappedInput, parse_cpus, parse_go_duration


@pytest.mark.parametrize(
    "cpus, expected",
    [(1, "1.0"), (1.5, "1.5"), (2, "2.0"), (2.25, "2.25"), (0.5, "0.5"), (0.25, "0.25"), (64, "64.0"),
     (10, "10."), (20, "20."), (1.05, "1.05")],
)  # fmt: skip
def test_cpus_as_the_provider_reads_them_back(cpus, expected) -> None:
    assert cpus_string(cpus) == expected
    assert cpus_round_trips(cpus)
    assert parse_cpus(expected.rstrip(".")) == round(cpus * 1e9)  # and docker parses it back exactly


@pytest.mark.parametrize("cpus, read_back", [(0.05, "0.1"), (0.001, "0.0"), (10.05, "10.1"), (0.004, "0.0")])
def test_values_the_provider_mangles_are_known(cpus, read_back) -> None:
    assert cpus_string(cpus) == read_back  # the provider's own quirk, reproduced
    assert not cpus_round_trips(cpus)


@pytest.mark.parametrize("where", ["databases", "servers"])
def test_catalogue_refuses_cpus_that_would_replace_every_up(where) -> None:
    from components.catalogue.model import CatalogueError, load_catalogue

    raw = {"platform": "docker", "databases": {"b": {"owner": "b-service", "server": "s"}}, "servers": {"s": {"port": 5440}}}
    if where == "databases":
        raw["databases"]["a"] = {"owner": "a-service", "port": 5433, "cpus": 0.05}
    else:
        raw["servers"]["s"]["cpus"] = 0.05
    with pytest.raises(CatalogueError) as excinfo:
        load_catalogue(raw, "dev")
    path = "bulkhead:databases.a.cpus" if where == "databases" else "bulkhead:servers.s.cpus"
    assert str(excinfo.value) == (
        f"{path}: 0.05 is read back by the Docker provider as '0.1' and would replace the container on every up;"
        " use a value with one significant decimal such as 0.5, or one like 1.25"
    )


@pytest.mark.parametrize("cpus", [0, -1, 1e-12])
def test_cpus_must_be_positive(cpus) -> None:
    with pytest.raises(ValueError, match="cpus must be positive"):
        cpus_string(cpus)


@pytest.mark.parametrize(
    "seconds, expected", [(0, "0s"), (3, "3s"), (59, "59s"), (60, "1m0s"), (61, "1m1s"), (3600, "1h0m0s"), (3725, "1h2m5s")]
)
def test_durations_in_go_form(seconds, expected) -> None:
    assert go_duration(seconds) == expected
    assert parse_go_duration(expected) == seconds * 1_000_000_000


@pytest.mark.parametrize("text", ["5", "1 m", "1m0", "", "s"])
def test_stand_in_refuses_what_go_would_not_parse(text) -> None:
    with pytest.raises(UnmappedInput, match="is not a Go duration"):
        parse_go_duration(text)


def test_negative_duration_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        go_duration(-1)

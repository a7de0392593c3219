"""`bulkhead plan --jobs` (bulkhead/offline/parallel.py): the databases planned in forked workers,
merged into the plan a single process writes, byte for byte."""

from __future__ import annotations

import os

import pytest

from bench.catalogues import aws_config, docker_config
from bulkhead.commands.plan import build_plan
from bulkhead.offline import mock_runtime, parallel
from bulkhead.offline.mock_runtime import ProgramRun, RecordedResource, run_program
from bulkhead.offline.stack_config import load_catalogue_for, load_stack_config
from policies import bulkhead_types as tokens
from tests.support.plans import plan_bytes, project_with

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_example_stacks_same_plan_serial_and_parallel(stack, tmp_path, capfd):
    # The serial run first: a worker forked from a process that already ran a program needs its
    # own event loop (the parent's executor threads do not survive the fork; it hung without).
    serial = plan_bytes(ROOT, stack, tmp_path / "serial.json", jobs=1)
    merged = plan_bytes(ROOT, stack, tmp_path / "parallel.json", jobs=3)
    assert merged == serial
    # Merged, not the fallback: on prod the RDS event subscription lists every instance and
    # merges as the union of the shards' (parallel.MERGED).
    assert "planned serially" not in capfd.readouterr().err


@pytest.mark.parametrize("platform", ["aws", "docker"])
def test_catalogue_of_50_same_plan_serial_and_parallel(platform, tmp_path, capfd):
    config = aws_config(50) if platform == "aws" else docker_config(50)
    project = project_with(tmp_path, "bench", config)
    serial = plan_bytes(project, "bench", tmp_path / "serial.json", jobs=1)
    merged = plan_bytes(project, "bench", tmp_path / "parallel.json", jobs=2)
    assert b'"svc049"' in serial  # the whole catalogue is in the plan
    assert merged == serial
    # The workers' parts merged, no fallback (aws: the event subscription's union).
    assert "planned serially" not in capfd.readouterr().err


@pytest.mark.parametrize("platform", ["aws", "docker"])
def test_many_small_shards_each_in_a_process_that_exits(platform, tmp_path, capfd, monkeypatch):
    # 4 databases a shard: 30 databases in 7+ shards over 2 jobs, owners (two databases each on
    # aws) and shared servers (five tenants each on docker) cut across the shards' boundaries.
    config = aws_config(30) if platform == "aws" else docker_config(30)
    project = project_with(tmp_path, "bench", config)
    serial = plan_bytes(project, "bench", tmp_path / "serial.json", jobs=1)
    monkeypatch.setattr(parallel, "DATABASES_PER_SHARD", 4)
    merged = plan_bytes(project, "bench", tmp_path / "parallel.json", jobs=2)
    assert merged == serial
    assert "planned serially" not in capfd.readouterr().err
    # Memory bound: each shard planned in a fresh process (more processes than jobs), at most
    # `jobs` of them alive at once, and every one gone (its SDK heap with it) when the plan is.
    pids = parallel.worker_pids
    assert len(set(pids)) == len(pids) >= 5 and os.getpid() not in pids
    assert parallel.most_running[0] == 2
    assert not [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
    # One worker starts cold (validates for itself) while the parent primes; every later one
    # takes the catalogue the parent validated (mock_runtime.validated_catalogue) and still
    # writes the serial plan (above).
    assert sorted(parallel.reused_catalogue) == [False] + [True] * (len(pids) - 1)


def _export_text(run: ProgramRun) -> str:
    import json

    assert run.error is None, run.error
    return json.dumps(mock_runtime.to_stack_export(run), indent=1)


def test_a_primed_catalogue_is_served_only_for_the_exact_config_it_was_validated_from(tmp_path):
    config = aws_config(6)
    project = project_with(tmp_path, "bench", config)
    config = load_stack_config(project, "bench")
    changed = dict(config)
    changed["bulkhead:databases"] = {**config["bulkhead:databases"]}
    first = sorted(changed["bulkhead:databases"])[0]
    changed["bulkhead:databases"][first] = {**changed["bulkhead:databases"][first], "storage_gb": 60}
    assert changed != config
    serial, serial_changed = (_export_text(run_program(project, "bench", c)) for c in (config, changed))
    assert serial != serial_changed

    saved = parallel._prime(project, "bench", config, "aws")
    assert saved is not None
    try:
        # Outside a run the memo answers nothing.
        model = __import__("components.catalogue.model", fromlist=["Catalogue"])
        raw = mock_runtime.program_raw_config(config, model.STACK_KEYS)
        assert mock_runtime.validated_catalogue(raw, "bench", config.get("aws:region"), model.Catalogue) is None
        # The primed modules, the same config: the parent's catalogue, the same plan.
        same = run_program(project, "bench", config, fresh_import=False)
        assert same.reused_catalogue and _export_text(same) == serial
        # A changed config: validated again, its own plan (never the primed catalogue's).
        other = run_program(project, "bench", changed, fresh_import=False)
        assert not other.reused_catalogue and _export_text(other) == serial_changed
        # Another stack name: validated again.
        renamed = run_program(project, "bench2", config, fresh_import=False)
        assert not renamed.reused_catalogue
    finally:
        parallel._unprime(saved)
    # Forgotten once the workers are done: the same config, primed modules gone.
    again = run_program(project, "bench", config)
    assert not again.reused_catalogue and _export_text(again) == serial


def test_a_freshly_imported_program_never_takes_a_catalogue_of_other_modules(tmp_path):
    project = project_with(tmp_path, "bench", aws_config(4))
    config = load_stack_config(project, "bench")
    saved = parallel._prime(project, "bench", config, "aws")
    try:
        # Fresh modules (a serial run): the primed catalogue's classes are not the program's.
        run = run_program(project, "bench", config)
        assert run.error is None and not run.reused_catalogue
    finally:
        parallel._unprime(saved)


def test_bad_config_under_jobs_gives_the_serial_error(tmp_path):
    config = aws_config(40)
    config["bulkhead:databases"]["svc001"]["replicas"] = -1
    project = project_with(tmp_path, "bench", config)
    from bulkhead.errors import UserError

    with pytest.raises(UserError) as parallel_error:
        build_plan(project, "bench", jobs=2)
    with pytest.raises(UserError) as serial_error:
        build_plan(project, "bench", jobs=1)
    assert str(parallel_error.value) == str(serial_error.value)
    assert "bulkhead:databases.svc001.replicas" in str(serial_error.value)


def test_shards_are_small_enough_and_cover_the_catalogue():
    from components.catalogue.model import load_catalogue

    raw = {k.split(":", 1)[1]: v for k, v in aws_config(200).items() if k.startswith("bulkhead:")}
    catalogue = load_catalogue(raw, "prod", region="us-east-1")
    parts = parallel.plan_shards(catalogue, 2, per_shard=30)
    assert sorted(n for p in parts for n in p) == sorted(catalogue.databases)  # each database once
    # ceil(200 / 30) = 7, rounded up to a multiple of the 2 jobs (no worker planning the last shard
    # alone), owners whole
    assert len(parts) == 8 and all(len(p) <= 32 for p in parts)
    assert len(parallel.plan_shards(catalogue, 3, per_shard=30)) == 9  # 7 -> 9
    assert len(parallel.plan_shards(catalogue, 8, per_shard=50)) == 8  # at least one per job


# A stack-wide resource built from the shard (what a future aggregate like the event
# subscription would look like before it gets a merge rule): every worker records it differently.
PROBE_MAIN = """
import runpy
runpy.run_path({main!r}, run_name="__main__")
import pulumi_aws as aws
from bulkhead.offline import mock_runtime
shard = mock_runtime.plan_shard()
aws.ssm.Parameter("shard-probe", type="String", value="probe",
                  description=",".join(sorted(shard)) if shard else "every database")
"""


def test_a_stack_wide_resource_that_depends_on_the_shard_falls_back_to_the_serial_plan(tmp_path, capfd):
    config = load_stack_config(ROOT, "prod")
    project = project_with(tmp_path, "prod", config)
    os.unlink(os.path.join(project, "__main__.py"))
    with open(os.path.join(project, "__main__.py"), "w", encoding="utf-8") as fh:
        fh.write(PROBE_MAIN.format(main=os.path.join(ROOT, "__main__.py")))
    serial = plan_bytes(project, "prod", tmp_path / "serial.json", jobs=1)
    assert b"every database" in serial
    assert plan_bytes(project, "prod", tmp_path / "parallel.json", jobs=2) == serial
    err = capfd.readouterr().err
    assert "warning: planned serially: urn:pulumi:prod::bulkhead::aws:ssm/parameter:Parameter::shard-probe" in err


def test_a_worker_plans_only_its_shard_and_the_stack_wide_resources(tmp_path):
    config = load_stack_config(ROOT, "prod")
    catalogue = load_catalogue_for(ROOT, "prod", config)
    first = sorted(catalogue.databases)[0]
    whole = run_program(ROOT, "prod", config)
    part = run_program(ROOT, "prod", config, shard=frozenset({first}))
    assert part.error is None and whole.error is None
    instances = {r.name for r in part.by_type(tokens.RDS_INSTANCE)}
    assert instances and all(name.startswith(first) for name in instances)
    assert set(part.exports["databases"]) == {first}
    assert "services" not in part.exports  # computed once from the merged `databases`
    whole_by_urn = {r.urn: r for r in whole.resources}
    # Everything a worker plans is in the serial plan, recorded the same (as the plan keeps it).
    differ = [r.urn.rsplit("::", 1)[1] for r in part.resources
              if parallel._as_planned(whole_by_urn[r.urn]) != parallel._as_planned(r)]
    # The one stack-wide aggregate today: issue 24's event subscription (every instance).
    assert differ == ["events-subscription"]
    # ... which merges by its rule: this shard and the rest give the serial resource.
    rest = run_program(ROOT, "prod", config, shard=frozenset(catalogue.databases) - {first})
    merge = parallel._Merge()
    merge.add(part.resources, part.exports, part.secret_values)
    merge.add(rest.resources, rest.exports, rest.secret_values)
    merged = {r.urn: parallel._as_planned(r) for r in merge.resources.values()}
    assert merged == {r.urn: parallel._as_planned(r) for r in whole.resources}
    assert len(part.resources) < len(whole.resources)
    assert mock_runtime.plan_shard() is None  # only while a worker's run_program runs


def _resource(urn: str, inputs: dict) -> RecordedResource:
    return RecordedResource(urn=urn, type="aws:ec2/vpc:Vpc", name=urn, custom=True, id="x", inputs=inputs,
                            outputs=inputs, parent="", dependencies=[], property_dependencies={}, protect=False,
                            retain_on_delete=False, provider="")


def test_a_shared_resource_that_differs_between_workers_is_refused():
    config = load_stack_config(ROOT, "prod")
    catalogue = load_catalogue_for(ROOT, "prod", config)
    a = ProgramRun(stack="prod", project="bulkhead", resources=[_resource("u", {"cidr": "10.0.0.0/16"})],
                   exports={"databases": {}}, secret_values=set())
    b = ProgramRun(stack="prod", project="bulkhead", resources=[_resource("u", {"cidr": "10.1.0.0/16"})],
                   exports={"databases": {}}, secret_values=set())
    with pytest.raises(parallel._Differs, match="u"):
        parallel._merge([a, b], catalogue, "prod", "bulkhead")


def test_shards_keep_owners_and_shared_servers_together():
    from components.catalogue.model import load_catalogue

    def catalogue(config, stack):
        raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("bulkhead:")}
        return load_catalogue(raw, stack, region="us-east-1")

    aws = catalogue(aws_config(40), "prod")
    parts = parallel.shards(aws, 2)
    assert len(parts) == 2 and set().union(*parts) == set(aws.databases) and not parts[0] & parts[1]
    for names in aws.owners().values():
        assert sum(1 for p in parts if set(names) <= p) == 1
    assert parts == parallel.shards(aws, 2)  # deterministic
    dev = catalogue(docker_config(50), "dev")
    parts = parallel.shards(dev, 2)
    for server in dev.servers:
        tenants = set(dev.databases_on(server))
        assert sum(1 for p in parts if tenants <= p) == 1


def test_jobs_on_by_default_only_with_enough_databases_and_cpus():
    assert parallel.auto_jobs(10, cpus=2) == 1
    assert parallel.auto_jobs(19, cpus=2) == 1
    assert parallel.auto_jobs(20, cpus=2) == 2
    assert parallel.auto_jobs(50, cpus=2) == 2
    assert parallel.auto_jobs(500, cpus=2) == 2
    assert parallel.auto_jobs(500, cpus=1) == 1
    assert parallel.auto_jobs(500, cpus=8) == 8

"""`bulkhead plan --jobs`: plan shards of the databases in forked worker processes, one plan.

The databases' component trees are independent of each other: what they share is stack-wide
(provider, VPC, endpoints, backup vaults and plans, restore testing plans, the deployer
lookups, the alert topic), built from the whole catalogue whatever the shard. So each worker
runs the whole program under its own fresh mock runtime (a forked copy of this process: the
SDK and pulumi_aws already imported), building the stack-wide resources and only its shard's
databases (`__main__.py` asks `mock_runtime.plan_shard()`; the stacks take `only=`).

Scheduling (bounded memory): the catalogue is cut into more, smaller shards than workers (at
most about DATABASES_PER_SHARD databases each, at least `jobs`), each planned in a FRESH
forked process that sends its result and exits, at most `jobs` of them alive at once; the
parent plans nothing itself (its heap stays small). The first `jobs - 1` workers start at once;
while they run the parent loads the modules a run imports and primes (_prime: the program's
modules imported, the catalogue validated and its windows derived once), so every later worker
starts warm and validates nothing again. A
shard's SDK objects (~80-110 KiB per resource, live until its run ends: bench/README.md
"Memory") are freed with its process, so the peak is about `jobs` shards' worth, not the
catalogue's. The parent keeps each result as
it arrives as pickled bytes (a fraction of the unpickled records) and merges them, one at a
time, once no worker is left to start (while the last ones run; a worker's error is seen then,
and the stack planned serially).

The merge:
- resources: the union by URN. A resource planned by several workers (the stack-wide ones)
  must be recorded identically by each, except the few stack-wide aggregates of MERGED, whose
  named list fields are the union (sorted, as the program sorts them) and whose dependencies
  are joined; if any other resource differs, the parallel result is dropped and the stack is
  planned serially with a warning naming it, so the plan is always the serial plan;
- outputs: `databases` merged, the rest identical in every worker; `services` computed once
  from the merged `databases` (components/outputs.py services_output, as the program does);
- secret values: the union.

The plan file does not depend on the recorded order (mock_runtime._dependency_order sorts it),
so the merged run writes the same bytes as a serial one (tests/program/test_parallel_plan.py).
A worker that fails sends its error; any error re-runs the stack serially, so the message is
the serial one.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import pickle
import sys
from multiprocessing.connection import wait as wait_for
from typing import Any, Optional

from bulkhead.offline.mock_runtime import ProgramRun, RecordedResource, _secret_plaintexts, is_program_module, run_program
from bulkhead.offline.stack_config import config_region

# Below this many databases per worker, forking and what every worker does again (load the
# SDK's modules, plan the stack-wide resources: ~1.8 s CPU cold) cost more than the shard saves.
# On two free cores the critical path wins from about N=5 on aws; whole processes at a load of ~2
# (this shared machine's usual) break even at N=10 (4.7 s either way, +2.3 s CPU) and win from
# N=20 (6.3 -> 5.4 s, 11.5 -> 8.4 s at 50, 31.4 -> 18.0 s at 100): bench/README.md, "Shards in
# fresh processes".
DATABASES_PER_JOB = 10
# At most about this many databases per shard, so one process's live SDK objects stay bounded
# (~38 resources per aws database at ~110 KiB each: ~4.4 MiB of PSS per database measured).
# Each shard plans the stack-wide resources again (~0.5 s CPU warm): smaller shards cost CPU,
# larger ones memory (bench/README.md "Memory": N=500 peaks 559 MiB PSS with 40, ~470 with 30).
DATABASES_PER_SHARD = 30
# pulumi_aws loads its modules lazily on first use: load them once before forking, or every
# worker pays for it again.
_AWS_MODULES = ("backup", "cloudwatch", "ec2", "iam", "kms", "lambda_", "rds", "secretsmanager", "sns", "vpc")

# Stack-wide resources built from every database of the stack: a shard records only its own
# databases' part. type -> the input/output fields that are the union over the shards.
# aws:rds/eventSubscription:EventSubscription: components/prod/alarms.py RdsEvents, one per stack,
# `source_ids=sorted(...)` of every instance and `depends_on` every instance; the union of the
# shards' sorted lists, sorted, is the serial list, and the dependencies are the union.
MERGED: dict[str, tuple[str, ...]] = {
    "aws:rds/eventSubscription:EventSubscription": ("sourceIds",),
}


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_jobs(n_databases: int, cpus: Optional[int] = None) -> int:
    """`--jobs` when not given: one worker per CPU, each with at least DATABASES_PER_JOB databases."""
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, min(cpus, n_databases // DATABASES_PER_JOB))


def _units(catalogue) -> list[tuple[int, list[str]]]:
    """What must be planned together, with its weight (its resources' share): an owner's databases
    on aws (their client group is planned once), 1 + replicas each; a shared server's tenants on
    docker (one container), 1 per container."""
    if catalogue.platform == "docker":
        own = [[n] for n, db in sorted(catalogue.databases.items()) if db.server is None]
        servers = [sorted(catalogue.databases_on(s)) for s in sorted(catalogue.servers)]
        return [(1, names) for names in own + servers if names]
    return [(sum(1 + catalogue.databases[n].replicas for n in names), names)
            for _owner, names in catalogue.owners().items()]


def _pack(units: list[tuple[int, list[str]]], count: int) -> list[frozenset[str]]:
    """Units into `count` groups of about equal weight, heaviest first (deterministic)."""
    groups: list[list[str]] = [[] for _ in range(max(1, count))]
    loads = [0] * len(groups)
    for weight, names in sorted(units, key=lambda u: (-u[0], u[1])):
        i = loads.index(min(loads))
        groups[i].extend(names)
        loads[i] += weight
    order = sorted(range(len(groups)), key=lambda i: (-loads[i], sorted(groups[i])))
    return [frozenset(groups[i]) for i in order if groups[i]]


def shards(catalogue, jobs: int) -> list[frozenset[str]]:
    """The catalogue's databases in `jobs` groups of about equal work (deterministic)."""
    return _pack(_units(catalogue), jobs)


def plan_shards(catalogue, jobs: int, per_shard: Optional[int] = None) -> list[frozenset[str]]:
    """The workers' shards, heaviest first: a multiple of `jobs`, each of at most about `per_shard`
    databases (units kept whole)."""
    per_shard = per_shard or DATABASES_PER_SHARD
    # A multiple of `jobs`: with 7 equal shards on 2 workers one worker plans the last shard
    # alone (N=200: 13.4-14.9 s against 14.0-15.5 s with 7; N=500 27.9 s against 29.8 s, 2 cores).
    count = math.ceil(max(jobs, math.ceil(len(catalogue.databases) / per_shard)) / jobs) * jobs
    return shards(catalogue, count)


def _prepare(catalogue) -> None:
    """Load the modules a run imports, so that the workers forked after it do not each load them
    (pulumi_aws loads a service's modules on first use: ~1.1 s CPU for these, per process)."""
    if catalogue.platform == "aws":
        import pulumi_aws
        import pulumi_random  # noqa: F401 - the bootstrap's password

        for name in _AWS_MODULES:
            # A lazy module (importlib.util.LazyLoader) loads on its first attribute lookup.
            getattr(getattr(pulumi_aws, name), "__all__", None)
    else:
        import pulumi_docker  # noqa: F401


def _prime(program_dir: str, stack: str, config: dict, platform: str) -> Optional[dict]:
    """Before forking the warm workers: import the program's `components` fresh from `program_dir`
    (as each run would), validate the catalogue once with those very modules and derive its windows,
    and leave both for the workers (mock_runtime.validated_catalogue, components/prod/stack.py
    derive_windows): a worker forked after this imports nothing of the program again and validates
    nothing again (it would cost ~0.7 s CPU each at N=500: bench/README.md "p-par2"). Returns the
    parent's own `components` modules, to put back when the workers are done (_unprime); None when
    nothing was primed (the workers then validate for themselves, as before)."""
    import importlib

    from bulkhead.offline import mock_runtime

    saved = {name: mod for name, mod in sys.modules.items() if is_program_module(name)}
    for name in saved:
        del sys.modules[name]
    added = program_dir not in sys.path
    if added:
        sys.path.insert(0, program_dir)
    try:
        model = importlib.import_module("components.catalogue.model")
        raw = mock_runtime.program_raw_config(config, model.STACK_KEYS)
        region = config_region(config)
        catalogue = model.load_catalogue(raw, stack, region=region)
        importlib.import_module("components.outputs")
        if platform == "aws":
            importlib.import_module("components.prod.stack").derive_windows(catalogue)
        else:
            importlib.import_module("components.dev.stack")
        mock_runtime.set_validated_catalogue(raw, stack, region, catalogue)
    except Exception:  # noqa: BLE001 - the workers validate for themselves (and report the serial error)
        _unprime(saved)
        return None
    finally:
        if added:
            sys.path.remove(program_dir)
    return saved


def _unprime(saved: Optional[dict]) -> None:
    """The parent's `components` modules back, the primed catalogue forgotten."""
    from bulkhead.offline import mock_runtime

    mock_runtime.set_validated_catalogue(None)
    if saved is None:
        return
    for name in [n for n in sys.modules if is_program_module(n)]:
        del sys.modules[name]
    sys.modules.update(saved)


def _worker(conn, program_dir: str, stack: str, config: dict, project: str, shard: frozenset[str],
            primed: bool = False) -> None:
    import asyncio

    try:
        # Its own event loop: the parent's (if it already ran a program, as it has after its
        # warm-up shard) shares its epoll descriptor with the parent and has a default executor
        # whose threads did not survive the fork, so the SDK's registrations (run_in_executor)
        # would wait forever. The parent's loop is left unclosed (closing would join those threads).
        asyncio.set_event_loop(asyncio.new_event_loop())
        # Primed (forked after _prime): the parent's fresh program modules and validated catalogue.
        run = run_program(program_dir, stack, config, project=project, shard=shard, fresh_import=not primed)
        error = run.error
        if error is not None:
            try:
                pickle.dumps(error)
            except Exception:  # noqa: BLE001 - an error that does not pickle: its text
                error = RuntimeError(f"{type(error).__name__}: {error}")
        conn.send((run.resources, run.exports, run.secret_values, error, run.reused_catalogue))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent (which re-runs serially)
        try:
            conn.send(([], {}, set(), RuntimeError(f"{type(exc).__name__}: {exc}"), False))
        except Exception:  # noqa: BLE001
            pass
    finally:
        conn.close()
        sys.stdout.flush()
        sys.stderr.flush()
        # Like the CLI: no teardown of the run's objects (the parent has what it needs); the
        # process ends here, and with it the shard's SDK heap.
        os._exit(0)


class _Differs(Exception):
    pass


def _as_planned(r) -> tuple:
    """What the plan keeps of a recorded resource: dependency lists in the order the SDK resolved
    them vary from run to run, and mock_runtime.to_stack_export sorts them."""
    fields = dataclasses.asdict(r)
    fields["dependencies"] = sorted(r.dependencies)
    fields["property_dependencies"] = {k: sorted(v) for k, v in r.property_dependencies.items()}
    return tuple(sorted(fields.items(), key=lambda kv: kv[0]))


def _union_fields(prev: RecordedResource, r: RecordedResource, fields: tuple[str, ...]) -> RecordedResource:
    """`prev` and `r` as one resource: `fields` of inputs and outputs the sorted union, dependencies
    and property dependencies joined; everything else must be the same, or _Differs."""

    def joined(a: RecordedResource, b: RecordedResource, side: str) -> dict:
        values = dict(getattr(a, side))
        for f in fields:
            x, y = getattr(a, side).get(f), getattr(b, side).get(f)
            if not (isinstance(x, list) and isinstance(y, list)):
                raise _Differs(r.urn)
            values[f] = sorted(set(x) | set(y))
        return values

    def with_union(a: RecordedResource) -> RecordedResource:
        return dataclasses.replace(
            a, inputs=joined(a, r if a is prev else prev, "inputs"), outputs=joined(a, r if a is prev else prev, "outputs"),
            dependencies=sorted(set(prev.dependencies) | set(r.dependencies)),
            property_dependencies={k: sorted(set(prev.property_dependencies.get(k, ())) | set(r.property_dependencies.get(k, ())))
                                   for k in sorted(set(prev.property_dependencies) | set(r.property_dependencies))})

    merged, other = with_union(prev), with_union(r)
    if _as_planned(merged) != _as_planned(other):
        raise _Differs(r.urn)
    return merged


class _Merge:
    """The workers' runs merged as they arrive (each dropped once merged)."""

    def __init__(self):
        self.resources: dict[str, RecordedResource] = {}
        self.secrets: set[str] = set()
        self.databases: dict[str, Any] = {}
        self.exports: dict[str, Any] = {}

    def add(self, resources, exports, secret_values) -> None:
        self.secrets |= secret_values
        seen = self.resources
        for r in resources:
            prev = seen.get(r.urn)
            if prev is None:
                seen[r.urn] = r
            elif prev != r and _as_planned(prev) != _as_planned(r):
                fields = MERGED.get(r.type)
                if fields is None:
                    raise _Differs(r.urn)
                seen[r.urn] = _union_fields(prev, r, fields)
        for key, value in exports.items():
            if key == "databases":
                self.databases.update(value)
            elif key == "admin":  # per container (bulkhead:admin_tcp): each worker has its shard's
                self.exports.setdefault(key, {}).update(value)
            elif key not in self.exports:
                self.exports[key] = value
            elif self.exports[key] != value:
                raise _Differs(f"output {key}")

    def result(self, catalogue, stack: str, project: str) -> ProgramRun:
        from components.outputs import services_output

        databases, exports = self.databases, self.exports
        order = sorted(databases) if catalogue.platform == "docker" else [n for n in catalogue.databases if n in databases]
        if set(order) != set(catalogue.databases):
            raise _Differs("output databases")
        exports["databases"] = {n: databases[n] for n in order}
        exports["services"] = services_output(catalogue, exports["databases"])
        self.secrets.update(s for s in _secret_plaintexts(exports["services"]) if len(s) >= 8)
        return ProgramRun(stack=stack, project=project, resources=list(self.resources.values()), exports=exports,
                          secret_values=self.secrets)


def _merge(runs: list[ProgramRun], catalogue, stack: str, project: str) -> ProgramRun:
    merge = _Merge()
    for run in runs:
        merge.add(run.resources, run.exports, run.secret_values)
    return merge.result(catalogue, stack, project)


# The last parallel run: every worker process's id in the order started, and the most workers
# alive at once (tests: shards are planned in processes that exit, at most `jobs` at a time).
worker_pids: list[int] = []
most_running = [0]
# Per worker result (in the order received): whether its program took the parent's validated
# catalogue (_prime) instead of validating it again.
reused_catalogue: list[bool] = []


def run_program_parallel(program_dir: str, stack: str, config: dict, catalogue, jobs: int,
                         project: str = "bulkhead", per_shard: Optional[int] = None) -> ProgramRun:
    """run_program's result, planned by forked workers, one per shard, at most `jobs` at once; the
    parent plans nothing itself."""
    parts = plan_shards(catalogue, jobs, per_shard)
    if len(parts) < 2 or jobs < 2:
        return run_program(program_dir, stack, config, project=project)
    ctx = multiprocessing.get_context("fork")
    worker_pids.clear()
    reused_catalogue.clear()
    most_running[0] = 0
    running: dict[Any, Any] = {}  # receiving end -> process
    todo = list(parts)

    def start(shard: frozenset[str]) -> None:
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(send, program_dir, stack, config, project, shard, primed is not None),
                           daemon=True)
        proc.start()
        send.close()
        worker_pids.append(proc.pid)
        running[receive] = proc
        most_running[0] = max(most_running[0], len(running))

    failed, received = False, []
    primed: Optional[dict] = None
    try:
        # `jobs - 1` workers start at once, cold (they load the SDK's modules, import the program
        # and validate the catalogue themselves); meanwhile the parent, on the last core, loads the
        # modules and primes (_prime), so every later worker starts warm: a cold worker costs ~1.7 s
        # CPU more than a warm one at N=500 (bench/README.md "p-par2"), and starting all `jobs` cold
        # cost more CPU than the parent's priming holds the last core back.
        while todo and len(running) < jobs - 1:
            start(todo.pop(0))
        if todo:
            _prepare(catalogue)
            primed = _prime(program_dir, stack, config, catalogue.platform)
        while todo and len(running) < jobs:
            start(todo.pop(0))
        merge = _Merge()

        def merge_received() -> bool:
            """Merge the results received so far, one at a time; False once a worker failed."""
            while received:
                resources, exports, secret_values, error, reused = pickle.loads(received.pop(0))
                reused_catalogue.append(reused)
                if error is not None:
                    return False
                merge.add(resources, exports, secret_values)
                del resources, exports, secret_values
            return True

        while running:
            for receive in wait_for(list(running)):
                proc = running.pop(receive)
                try:
                    # Kept as the pickled bytes while workers run: a few KiB per resource, where
                    # the unpickled records take several times that (bench/README.md "Memory").
                    received.append(receive.recv_bytes())
                except EOFError:  # the worker died without a word
                    failed = True
                receive.close()
                proc.join()
                if todo and not failed:
                    start(todo.pop(0))
            if not todo and not failed and running:
                # No worker is left to start, so a core is free while the last ones run: merge
                # what has arrived now rather than after them (the parent's tail: bench/README.md
                # "p-par2"). Before that the results stay pickled (memory, above).
                failed = not merge_received()
        _unprime(primed)  # no more forks: the parent's own modules for the merge
        primed = None
        failed = failed or not merge_received()
        if not failed:
            return merge.result(catalogue, stack, project)
        merge.resources.clear()
    except _Differs as differs:
        print(f"warning: planned serially: {differs} depends on which databases a --jobs worker "
              "planned (bulkhead/offline/parallel.py)", file=sys.stderr)
    finally:
        for receive, proc in running.items():  # an error in the parent: no orphans
            proc.kill()
            proc.join()
            receive.close()
        _unprime(primed)
    received.clear()
    return run_program(program_dir, stack, config, project=project)

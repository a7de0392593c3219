"""`bulkhead plan --jobs`: plan shards of the databases in forked worker processes, one plan.

The databases' component trees are independent of each other: what they share is stack-wide
(provider, VPC, endpoints, backup vaults and plans, restore testing plans, the deployer
lookups), built from the whole catalogue whatever the shard. So each worker runs the whole
program under its own fresh mock runtime (a forked copy of this process: the SDK and
pulumi_aws already imported), building the stack-wide resources and only its shard's
databases (`__main__.py` asks `mock_runtime.plan_shard()`; the stacks take `only=`). The
parent plans the first shard itself, then merges:

- resources: the union by URN. A resource planned by several workers (the stack-wide ones)
  must be recorded identically by each; if one is not (a stack-wide resource that depends on
  which databases a worker planned), the parallel result is dropped and the stack is planned
  serially, so the plan is always the serial plan;
- outputs: `databases` merged, the rest identical in every worker; `services` computed once
  from the merged `databases` (components/outputs.py services_output, as the program does);
- secret values: the union.

The plan file does not depend on the recorded order (mock_runtime._dependency_order sorts it),
so the merged run writes the same bytes as a serial one (tests/program/test_parallel_plan.py).
A worker that fails sends its error; any error re-runs the stack serially, so the message is
the serial one.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
from typing import Any, Optional

from bulkhead.offline.mock_runtime import ProgramRun, _secret_plaintexts, run_program

# Below this many databases per worker, forking and the stack-wide resources every worker
# plans again cost more than the shard saves (bench/README.md, "Parallel planning").
DATABASES_PER_JOB = 25
# pulumi_aws loads its modules lazily on first use: load them once before forking, or every
# worker pays for it again.
_AWS_MODULES = ("backup", "cloudwatch", "ec2", "iam", "kms", "lambda_", "rds", "s3", "secretsmanager", "sns", "ssm")


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_jobs(n_databases: int, cpus: Optional[int] = None) -> int:
    """`--jobs` when not given: one worker per CPU, each with at least DATABASES_PER_JOB databases."""
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, min(cpus, n_databases // DATABASES_PER_JOB))


def shards(catalogue, jobs: int) -> list[frozenset[str]]:
    """The catalogue's databases in `jobs` groups of about equal work (deterministic).

    Units kept together: an owner's databases on aws (their client group is planned once), a
    shared server's tenants on docker (one container). A unit's weight is its resources' share:
    1 + replicas on aws, 1 per container on docker."""
    units: list[tuple[int, list[str]]] = []
    if catalogue.platform == "docker":
        own = [[n] for n, db in sorted(catalogue.databases.items()) if db.server is None]
        servers = [sorted(catalogue.databases_on(s)) for s in sorted(catalogue.servers)]
        units = [(1, names) for names in own + servers if names]
    else:
        for _owner, names in catalogue.owners().items():
            units.append((sum(1 + catalogue.databases[n].replicas for n in names), names))
    groups: list[list[str]] = [[] for _ in range(max(1, jobs))]
    loads = [0] * len(groups)
    for weight, names in sorted(units, key=lambda u: (-u[0], u[1])):
        i = loads.index(min(loads))
        groups[i].extend(names)
        loads[i] += weight
    return [frozenset(g) for g in groups if g]


def _prepare(catalogue) -> None:
    if catalogue.platform == "aws":
        import pulumi_aws

        for name in _AWS_MODULES:
            getattr(pulumi_aws, name, None)


def _worker(conn, program_dir: str, stack: str, config: dict, project: str, shard: frozenset[str]) -> None:
    import asyncio

    try:
        # Its own event loop: the parent's (if it already ran a program, as in a test process)
        # shares its epoll descriptor with the parent and has a default executor whose threads
        # did not survive the fork, so the SDK's registrations (run_in_executor) would wait
        # forever. The parent's loop is left unclosed (closing would join those dead threads).
        asyncio.set_event_loop(asyncio.new_event_loop())
        run = run_program(program_dir, stack, config, project=project, shard=shard)
        error = run.error
        if error is not None:
            try:
                pickle.dumps(error)
            except Exception:  # noqa: BLE001 - an error that does not pickle: its text
                error = RuntimeError(f"{type(error).__name__}: {error}")
        conn.send((run.resources, run.exports, run.secret_values, error))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent (which re-runs serially)
        try:
            conn.send(([], {}, set(), RuntimeError(f"{type(exc).__name__}: {exc}")))
        except Exception:  # noqa: BLE001
            pass
    finally:
        conn.close()
        sys.stdout.flush()
        sys.stderr.flush()
        # Like the CLI: no teardown of the run's objects (the parent has what it needs).
        os._exit(0)


class _Differs(Exception):
    pass


def _as_planned(r) -> tuple:
    """What the plan keeps of a recorded resource: dependency lists in the order the SDK resolved
    them vary from run to run, and mock_runtime.to_stack_export sorts them."""
    import dataclasses

    fields = dataclasses.asdict(r)
    fields["dependencies"] = sorted(r.dependencies)
    fields["property_dependencies"] = {k: sorted(v) for k, v in r.property_dependencies.items()}
    return tuple(sorted(fields.items(), key=lambda kv: kv[0]))


def _merge(runs: list[ProgramRun], catalogue, stack: str, project: str) -> ProgramRun:
    from components.outputs import services_output

    resources = list(runs[0].resources)
    seen = {r.urn: r for r in resources}
    secrets: set[str] = set()
    databases: dict[str, Any] = {}
    exports: dict[str, Any] = {}
    for run in runs:
        secrets |= run.secret_values
        for r in run.resources if run is not runs[0] else ():
            prev = seen.get(r.urn)
            if prev is None:
                seen[r.urn] = r
                resources.append(r)
            elif prev != r and _as_planned(prev) != _as_planned(r):
                raise _Differs(r.urn)
        for key, value in run.exports.items():
            if key == "databases":
                databases.update(value)
            elif key == "admin":  # per container (bulkhead:admin_tcp): each worker has its shard's
                exports.setdefault(key, {}).update(value)
            elif key not in exports:
                exports[key] = value
            elif exports[key] != value:
                raise _Differs(f"output {key}")
    order = sorted(databases) if catalogue.platform == "docker" else [n for n in catalogue.databases if n in databases]
    if set(order) != set(catalogue.databases):
        raise _Differs("output databases")
    exports["databases"] = {n: databases[n] for n in order}
    exports["services"] = services_output(catalogue, exports["databases"])
    secrets.update(s for s in _secret_plaintexts(exports["services"]) if len(s) >= 8)
    return ProgramRun(stack=stack, project=project, resources=resources, exports=exports, secret_values=secrets)


def run_program_parallel(program_dir: str, stack: str, config: dict, catalogue, jobs: int,
                         project: str = "bulkhead") -> ProgramRun:
    """run_program's result, planned by `jobs` processes (the parent and jobs - 1 forked workers)."""
    parts = shards(catalogue, jobs)
    if len(parts) < 2:
        return run_program(program_dir, stack, config, project=project)
    _prepare(catalogue)
    ctx = multiprocessing.get_context("fork")
    workers = []
    for shard in parts[1:]:
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(send, program_dir, stack, config, project, shard), daemon=True)
        proc.start()
        send.close()
        workers.append((proc, receive))
    runs = [run_program(program_dir, stack, config, project=project, shard=parts[0])]
    failed = runs[0].error is not None
    for proc, receive in workers:
        try:
            resources, exports, secret_values, error = receive.recv()
        except EOFError:  # the worker died without a word
            resources, exports, secret_values, error = [], {}, set(), RuntimeError("plan worker exited")
        receive.close()
        proc.join()
        failed = failed or error is not None
        runs.append(ProgramRun(stack=stack, project=project, resources=resources, exports=exports,
                               secret_values=secret_values, error=error))
    if not failed:
        try:
            return _merge(runs, catalogue, stack, project)
        except _Differs as differs:
            print(f"warning: planned serially: {differs} depends on which databases a --jobs worker "
                  "planned (bulkhead/offline/parallel.py)", file=sys.stderr)
    del runs
    return run_program(program_dir, stack, config, project=project)

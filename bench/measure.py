"""Timing and memory of `plan` and of the SDK floor, for one platform and N, in one process.

Run by bench/run.py as a subprocess per (platform, N) so that each N starts from a
fresh interpreter: `python -m bench.measure aws 100 3` prints one JSON line.
"""

from __future__ import annotations

import gc
import importlib
import json
import re
import resource
import statistics
import sys
import time
import tracemalloc

from bench.catalogues import CATALOGUES, ROOT
from bench.critical_path import critical_path

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from bulkhead.offline.mock_runtime import run_program, to_stack_export
from bulkhead.planfile import SECRET_SIG, SECRET_SIG_KEY
from bulkhead.offline.stack_config import load_catalogue_for, project_name


def plan(stack: str, config: dict) -> dict:
    """What `bulkhead plan` does (bulkhead.commands.plan.build_plan), for a config given in memory."""
    load_catalogue_for(ROOT, stack, config)
    run = run_program(ROOT, stack, config, project=project_name(ROOT))
    if run.error is not None:
        raise run.error
    return to_stack_export(run)


class EchoMocks(pulumi.runtime.Mocks):
    """The most trivial provider: every resource's state is its inputs."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def _as_sdk_secret(value):
    """The plan's secret envelope -> the SDK's wire form of a secret (what a secret input sends)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG and len(value) == 1:
            return {SECRET_SIG_KEY: SECRET_SIG, "value": "[secret]"}
        return {k: _as_sdk_secret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_sdk_secret(v) for v in value]
    return value


def floor_resources(export: dict) -> list[tuple[str, str, dict, dict]]:
    """(type, name, inputs, references) of every custom resource of a plan, in registration
    order; references maps an input to the custom resources its value came from."""
    resources = [r for r in export["deployment"]["resources"] if r.get("custom")]
    custom = {r["urn"] for r in resources}
    out = []
    for r in resources:
        refs = {key: [u.rsplit("::", 1)[1] for u in urns if u in custom]
                for key, urns in (r.get("propertyDependencies") or {}).items()}
        out.append((r["type"], r["urn"].rsplit("::", 1)[1], _as_sdk_secret(r["inputs"]),
                    {k: v for k, v in refs.items() if v and k in r["inputs"]}))
    return out


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def typed_class(token: str):
    """The provider SDK's class for a type token: aws:rds/instance:Instance -> pulumi_aws.rds.Instance."""
    package, module, name = token.split(":")
    if package == "pulumi":
        return None
    lib = importlib.import_module(f"pulumi_{package}")
    mod = module.split("/")[0]
    owner = lib if mod == "index" else getattr(lib, mod, None)
    return getattr(owner, name, None) if owner is not None else None


def _typed_kwargs(inputs: dict) -> dict:
    """Top-level camelCase inputs as the classes' snake_case arguments; nested values as recorded."""
    out = {}
    for key, value in inputs.items():
        if isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG and "value" in value:
            value = pulumi.Output.secret(value["value"])
        out[_CAMEL.sub("_", key).lower()] = value
    return out


def floor(resources: list[tuple[str, str, dict]], stack: str, typed: bool = True) -> None:
    """The same custom resources with the same inputs, registered flat on the SDK's plain
    MockMonitor: no components, no config, no recording, no references between resources.

    typed=True uses the provider SDKs' own classes (aws.rds.Instance, docker.Container,
    ...), which register every schema output too; typed=False registers bare
    CustomResources with the inputs only, the lowest floor the SDK has."""
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(EchoMocks(), project="bulkhead", stack=stack, preview=False)

    def program() -> None:
        made: dict[str, pulumi.CustomResource] = {}
        for typ, name, inputs, refs in resources:
            inputs = dict(inputs)
            # The same references as the program: an input that came from another resource's
            # output is an Output of that resource here too, so the SDK awaits it the same way.
            for key, sources in refs.items():
                deps = [made[s].id for s in sources if s in made]
                if deps:
                    inputs[key] = pulumi.Output.all(*deps).apply(lambda _, v=inputs[key]: v)
            cls = typed_class(typ) if typed else None
            if cls is not None:
                made[name] = cls(name, **_typed_kwargs(inputs))
            else:
                made[name] = pulumi.CustomResource(typ, name, inputs)

    # The same GC setting as bulkhead.offline.mock_runtime.run_program (cyclic GC paused for
    # the run), so that plan / floor compares the work done, not the GC's share of it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _sync_await(run_pulumi_func(program))
    finally:
        if gc_was_enabled:
            gc.enable()


def timed(fn) -> float:
    """Wall time of fn with the cyclic GC paused for the whole call, as the CLI runs
    (`bulkhead.cli.main` pauses it for its short-lived process). The same for plan
    and floor: otherwise whichever keeps allocating after its own run pays the
    collection of the run's garbage inside its timing and the other does not."""
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started
    finally:
        if gc_was_enabled:
            gc.enable()


def traced_peak(fn) -> int:
    """Peak bytes of Python allocations made while fn ran (tracemalloc, all threads)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(platform: str, n: int, repeats: int, memory: bool = False, warm_up: bool = True) -> dict:
    stack, make_config = CATALOGUES[platform]
    config = make_config(n)
    # Warm-up: imports (pulumi_aws alone is seconds) and first-call caches, then the baseline RSS.
    if warm_up:  # the smoke run (bench/run.py --smoke) skips it: it measures nothing
        export = plan(stack, make_config(min(5, n)))
        floor(floor_resources(export), stack)
    gc.collect()
    rss_base = maxrss_mib()
    holder = {}
    first = timed(lambda: holder.update(export=plan(stack, config)))
    rss_peak = maxrss_mib()
    export = holder["export"]
    resources = floor_resources(export)
    slow, chain = critical_path(export)
    plan_times, floor_times = [first], []
    for i in range(repeats):  # interleaved: both see the same machine noise
        floor_times.append(timed(lambda: floor(resources, stack)))
        if i < repeats - 1:
            plan_times.append(timed(lambda: plan(stack, config)))
    out = {
        "platform": platform, "n": n, "repeats": repeats,
        "resources": len(export["deployment"]["resources"]), "custom": len(resources),
        "plan_s": statistics.median(plan_times), "floor_s": statistics.median(floor_times),
        "plan_all": plan_times, "floor_all": floor_times,
        "rss_delta_mib": rss_peak - rss_base,
        "critical_path": slow, "critical_chain": [u.rsplit("::", 1)[1] for u in chain],
    }
    if memory:
        out["plan_peak_mib"] = traced_peak(lambda: plan(stack, config)) / 2**20
        out["floor_peak_mib"] = traced_peak(lambda: floor(resources, stack)) / 2**20
    return out


if __name__ == "__main__":
    platform, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(measure(platform, n, repeats, memory="--tracemalloc" in sys.argv,
                             warm_up="--no-warm-up" not in sys.argv)))

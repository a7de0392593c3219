"""Timing and memory of `plan` and of the SDK floor, for one platform and N, in one process.

Run by bench/run.py as a subprocess per (platform, N) so that each N starts from a
fresh interpreter: `python -m bench.measure aws 100 3` prints one JSON line.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import json
import logging
import re
import resource
import statistics
import sys
import time
import tracemalloc
from typing import Optional

from bench.catalogues import CATALOGUES, ROOT
from bench.critical_path import critical_path

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from bulkhead.offline import mock_runtime, mock_tls, sdk_fast_path
from bulkhead.offline.mock_runtime import run_program, to_stack_export
from bulkhead.planfile import SECRET_SIG, SECRET_SIG_KEY
from bulkhead.offline.stack_config import load_catalogue_for, project_name


def plan(stack: str, config: dict) -> dict:
    """What `bulkhead plan` does (bulkhead.commands.plan.build_plan), for a config given in memory."""
    load_catalogue_for(ROOT, stack, config)
    run = run_program(ROOT, stack, config, project=project_name(ROOT))
    if run.error is not None:
        raise run.error
    PLAN_FAST_PATH["active"] = bool(run.fast_path and run.fast_path.active)
    return to_stack_export(run)


# Whether the last plan() ran on the offline SDK fast path (False on an SDK version it was not
# verified against): the like-for-like floor must run the same way.
PLAN_FAST_PATH = {"active": False}


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


def floor_components(export: dict) -> list[tuple[str, str]]:
    """(type, name) of every component resource of a plan but the stack: the SDK registers each
    (RegisterResource, then RegisterResourceOutputs) as it registers a custom resource, so the
    floor registers them too, flat and empty (the lowest a component costs the SDK). Names carry
    their index: components of one type and name under different parents stay distinct flat."""
    return [(r["type"], f"{i}-{r['urn'].rsplit('::', 1)[1]}") for i, r in enumerate(export["deployment"]["resources"])
            if not r.get("custom") and r["type"] != "pulumi:pulumi:Stack"]


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


# The floor's engine logger, configured as the plan's (mock_runtime._PROGRAM_LOG: debug dropped),
# which decides whether the fast path builds the SDK's debug messages.
_FLOOR_LOG = logging.getLogger("bench.floor")
_FLOOR_LOG.addHandler(logging.NullHandler())
_FLOOR_LOG.propagate = False


class FloorMonitor(pulumi_mocks.MockMonitor):
    """The SDK's plain MockMonitor (no recording). With the fast path on, its RegisterResource
    response is built as the plan's monitor builds it (`RecordingMonitor._register_response`:
    the state's plain values handed to the SDK without a Struct between, the SDK's protobuf
    response for anything else), so the floor skips the same SDK work as plan. (The SDK's own
    `_sync_await(serialize_properties(...))` would also pump the running loop from inside a
    registration once the inline executor runs it on the loop's thread.)"""

    fast: Optional[sdk_fast_path.FastPath] = None
    # The plan monitor's response path itself, not a copy (bulkhead/offline/mock_runtime.py).
    _register_response = mock_runtime.RecordingMonitor._register_response
    _serialize = mock_runtime.RecordingMonitor._serialize
    _sdk_serialize = mock_runtime.RecordingMonitor._sdk_serialize

    def RegisterResource(self, request):
        if self.fast is None or not self.fast.active or request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        # pulumi/runtime/mocks.py MockMonitor.RegisterResource (3.272), the response as above; the
        # request's Struct is read by the run's `rpc.deserialize_properties` (the fast path's, as for plan).
        urn = self.make_urn(request.parent, request.type, request.name)
        pulumi_mocks._ensure_event_loop()
        id_, state = self.mocks.new_resource(pulumi.runtime.MockResourceArgs(
            typ=request.type, name=request.name, inputs=rpc.deserialize_properties(request.object),
            provider=request.provider, resource_id=request.importId, custom=request.custom or False))
        response = self._register_response(urn, id_, state)
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        return response


def floor(resources: list[tuple[str, str, dict]], stack: str, typed: bool = True,
          fast: bool = True, components: list[tuple[str, str]] = ()) -> Optional[sdk_fast_path.FastPath]:
    """The same custom resources with the same inputs, registered flat on the SDK's plain
    MockMonitor, and the plan's components (`components`: floor_components) registered flat and
    empty: no component code, no parents, no config, no recording.

    typed=True uses the provider SDKs' own classes (aws.rds.Instance, docker.Container,
    ...), which register every schema output too; typed=False registers bare
    CustomResources with the inputs only, the lowest floor the SDK has.

    fast=True skips the SDK work `run_program` skips for plan, the same way: the offline fast
    path (`sdk_fast_path.activate` ... `FastPath.restore()`, active only on a verified SDK, as
    for plan) and the empty per-registration stack trace (`mock_runtime._no_stack_trace`), so
    plan / floor compares like with like. fast=False is the SDK's own path (the floor before
    the fast path existed). Returns what the fast path skipped (None with fast=False)."""
    settings.ROOT.set(None)
    monitor = FloorMonitor(EchoMocks())
    stack_trace_was = sdk_resource._get_stack_trace
    if fast:  # as run_program: from set_mocks (which registers the stack resource) on
        sdk_resource._get_stack_trace = mock_runtime._no_stack_trace
    fast_path: Optional[sdk_fast_path.FastPath] = None
    try:
        pulumi.runtime.set_mocks(monitor.mocks, project="bulkhead", stack=stack, preview=False, monitor=monitor,
                                 logger=_FLOOR_LOG)
        if fast:
            monitor.fast = fast_path = sdk_fast_path.activate(pulumi_mocks._ensure_event_loop(), _FLOOR_LOG)
        _run_floor_program(resources, typed, components)
    finally:
        if fast_path is not None:
            fast_path.restore()
        sdk_resource._get_stack_trace = stack_trace_was
    return fast_path


def _run_floor_program(resources: list[tuple[str, str, dict]], typed: bool,
                       components: list[tuple[str, str]] = ()) -> None:
    def program() -> None:
        for typ, name in components:
            pulumi.ComponentResource(typ, name).register_outputs({})
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


class CryptoClock:
    """Seconds a plan spends in the program's own cryptography, which `pulumi up` does too and no
    floor has: PBKDF2 for the dev containers' SCRAM verifiers (components/postgres/role_sql.py
    `scram_sha256_verifier` calls `hashlib.pbkdf2_hmac`, 4096 rounds per password, looked up at each
    call so a fresh import of the program still goes through the wrapper) and the mock TLS
    provider's keys and certificates (bulkhead/offline/mock_tls.py `fake`, called by the recording
    mock through the module). Wraps both while in a `with` block; `seconds` accumulates."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def _timed(self, fn):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1
        return wrapper

    def __enter__(self) -> "CryptoClock":
        self._saved = (hashlib.pbkdf2_hmac, mock_tls.fake)
        hashlib.pbkdf2_hmac = self._timed(hashlib.pbkdf2_hmac)
        mock_tls.fake = self._timed(mock_tls.fake)
        return self

    def __exit__(self, *exc) -> None:
        hashlib.pbkdf2_hmac, mock_tls.fake = self._saved


def timed_plan(stack: str, config: dict, holder: Optional[dict] = None) -> tuple[float, float]:
    """(wall seconds of one plan, seconds of it in the program's cryptography: CryptoClock)."""
    with CryptoClock() as clock:
        seconds = timed(lambda: (holder if holder is not None else {}).update(export=plan(stack, config)))
    return seconds, clock.seconds


def measure(platform: str, n: int, repeats: int, memory: bool = False, warm_up: bool = True) -> dict:
    stack, make_config = CATALOGUES[platform]
    config = make_config(n)
    # Warm-up: imports (pulumi_aws alone is seconds) and first-call caches, then the baseline RSS.
    if warm_up:  # the smoke run (bench/run.py --smoke) skips it: it measures nothing
        export = plan(stack, make_config(min(5, n)))
        floor(floor_resources(export), stack, components=floor_components(export))
        floor(floor_resources(export), stack, fast=False, components=floor_components(export))
    gc.collect()
    rss_base = maxrss_mib()
    holder = {}
    first, first_crypto = timed_plan(stack, config, holder)
    rss_peak = maxrss_mib()
    export = holder["export"]
    resources, components = floor_resources(export), floor_components(export)
    slow, chain = critical_path(export)
    plan_fast = PLAN_FAST_PATH["active"]
    floor_fast = floor(resources, stack, components=components)
    # Like for like: both on the fast path or both off, and on it every floor response handed over
    # as plain values (as plan's are: tests/program/test_offline_sdk_work.py), none the SDK's way.
    if bool(floor_fast and floor_fast.active) != plan_fast or (floor_fast and floor_fast.active and (
            floor_fast.fallbacks or floor_fast.plain_responses != len(resources) + len(components))):
        raise SystemExit(f"the floor did not run as plan did: plan fast path {plan_fast}, floor {floor_fast}")
    plan_times, crypto_times, floor_times, sdk_floor_times = [first], [first_crypto], [], []
    for i in range(repeats):  # interleaved: all three see the same machine noise
        floor_times.append(timed(lambda: floor(resources, stack, components=components)))
        sdk_floor_times.append(timed(lambda: floor(resources, stack, fast=False, components=components)))
        if i < repeats - 1:
            seconds, crypto = timed_plan(stack, config)
            plan_times.append(seconds)
            crypto_times.append(crypto)
    # Each plan run against the floor run right after it (the same moment's machine), the median of
    # those ratios: steadier on shared cores than a ratio of two medians taken at different moments.
    pairs = list(zip(plan_times, crypto_times, floor_times, strict=True))  # `repeats` of each
    out = {
        "platform": platform, "n": n, "repeats": repeats,
        "resources": len(export["deployment"]["resources"]), "custom": len(resources), "components": len(components),
        # floor_s: like for like (the fast path on for both, when plan ran on it); sdk_floor_s: the
        # floor on the SDK's own path (bench/README.md "What is measured").
        "fast_path": plan_fast,
        "plan_s": statistics.median(plan_times), "floor_s": statistics.median(floor_times),
        "sdk_floor_s": statistics.median(sdk_floor_times),
        "plan_all": plan_times, "floor_all": floor_times, "sdk_floor_all": sdk_floor_times,
        "crypto_s": statistics.median(crypto_times), "crypto_all": crypto_times,
        "plan_vs_floor": statistics.median(p / f for p, _, f in pairs),
        "plan_less_crypto_vs_floor": statistics.median((p - c) / f for p, c, f in pairs),
        "rss_delta_mib": rss_peak - rss_base,
        "critical_path": slow, "critical_chain": [u.rsplit("::", 1)[1] for u in chain],
    }
    if memory:
        out["plan_peak_mib"] = traced_peak(lambda: plan(stack, config)) / 2**20
        out["floor_peak_mib"] = traced_peak(lambda: floor(resources, stack, components=components)) / 2**20
        out["sdk_floor_peak_mib"] = traced_peak(lambda: floor(resources, stack, fast=False, components=components)) / 2**20
    return out


if __name__ == "__main__":
    platform, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(measure(platform, n, repeats, memory="--tracemalloc" in sys.argv,
                             warm_up="--no-warm-up" not in sys.argv)))

"""Less Pulumi SDK work per resource in an offline plan (issue 23), only inside `run_program`.

An offline plan drives the SDK's registration path under `pulumi.runtime.set_mocks`. Part of
that path exists for the real engine (a gRPC server in another process) and buys an offline
run nothing; this module takes it out, for the duration of one `run_program` call only:

- **the thread hop per RPC**: the SDK sends every RegisterResource, ReadResource, Invoke and
  RegisterResourceOutputs call through `loop.run_in_executor(None, ...)`
  (pulumi/runtime/resource.py `register_resource.do_register`, `read_resource.do_read`,
  `register_resource_outputs`; pulumi/runtime/invoke.py), so that a blocking gRPC call does not
  stall the event loop. The mock monitor answers in microseconds, in Python, under the GIL: the
  hop costs a thread switch, a self-pipe write (`call_soon_threadsafe`) and GIL contention per
  call, and each executor thread spins up its own event loop to serialize the response. The
  run gets a default executor (`loop.set_default_executor`, asyncio's supported hook) that runs
  the call at once on the loop's thread and returns a finished future: the same calls, in the
  same order the SDK makes them, without the threads.
- **the response's async serialization**: the SDK's mock monitor turns the fake provider's state
  into a protobuf Struct with `_sync_await(rpc.serialize_properties(state, {}))` (pulumi/runtime/
  mocks.py `MockMonitor.RegisterResource`), an event-loop pass over values that are plain
  already (they come from `rpc.deserialize_properties` and the fakes). `wire()` gives the
  value `serialize_property` would for those types (None, bool, int, float, str, dict, list,
  tuple, the SDK's assets and archives) synchronously; anything else (a resource reference, a
  subclass of a plain type) goes the SDK's own way (counted in `FastPath.fallbacks`).

Guarded on the SDK version this was read against and measured with (`VERIFIED_SDK`: pulumi
3.272.0, the version requirements.txt resolves to today): with any other version `activate()`
changes nothing and the run is the SDK's own, as before (`FastPath.active` False; a test fails
so that whoever upgrades re-reads the functions named above). A real `pulumi up` never imports
this module: only `bulkhead/offline/mock_runtime.py` does, inside `run_program`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.metadata
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
from pulumi.output import Output, _OutputData
from pulumi.runtime import rpc, settings

# The pulumi SDK versions whose registration path was read and measured for this module
# (pulumi/runtime/resource.py, invoke.py, mocks.py, rpc.py serialize_property).
VERIFIED_SDK = frozenset({"3.272.0"})


def sdk_version() -> Optional[str]:
    try:
        return importlib.metadata.version("pulumi")
    except importlib.metadata.PackageNotFoundError:
        return None


class NotPlain(Exception):
    """A value `wire()` does not serialize itself: the SDK's `serialize_properties` does."""


def wire(value: Any) -> Any:
    """`rpc.serialize_property(value, ...)` (no type metadata, no name translation) for plain
    values, without the event loop: what a mock's state holds. Raises NotPlain otherwise."""
    t = type(value)
    if t is str or t is bool or t is int or t is float or value is None:
        return value
    if t is dict:
        # serialize_property on a Mapping keeps a nested None (only top-level Nones are dropped).
        return {k: wire(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [wire(v) for v in value]
    if isinstance(value, pulumi.Asset):  # rpc.serialize_property: path, then text, then uri
        return _special(value, rpc._special_asset_sig, ("path", "text", "uri"))
    if isinstance(value, pulumi.Archive):  # rpc.serialize_property: assets, then path, then uri
        return _special(value, rpc._special_archive_sig, ("assets", "path", "uri"))
    raise NotPlain(t.__name__)


def _special(value: Any, sig: str, attributes: tuple[str, ...]) -> dict:
    for attribute in attributes:
        if hasattr(value, attribute):
            return {rpc._special_sig_key: sig, attribute: wire(getattr(value, attribute))}
    raise NotPlain(type(value).__name__)


def wire_struct(props: dict) -> Any:
    """`rpc.serialize_properties(props, {})` for plain values: a Struct; top-level Nones dropped,
    as the SDK treats them as absent. Raises NotPlain (nothing half-built is returned)."""
    from google.protobuf import struct_pb2

    values = {}
    for key in props:
        value = wire(props[key])
        if value is not None:
            values[key] = value
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


# --- narrowly scoped replacements of SDK functions, installed only while run_program runs ---------
#
# Each returns what the function it replaces returns for the same arguments (the plan is the
# same byte for byte: tests/program/test_offline_sdk_work.py); it only skips work whose result
# an offline run never looks at, or does the same work with fewer event-loop objects.


def _transfer_properties(res: Any, props: Any, custom: bool) -> dict:
    """pulumi/runtime/rpc.py `transfer_properties`, one future per property instead of four.

    The SDK gives every input property of a new resource an `Output(deps, value, known, secret)`:
    four futures and a Task (`Output.__init__.compute_data`) that awaits them to build the
    Output's one `_OutputData`; the resolver sets the four futures. Here the resolver sets that
    one `_OutputData` future directly, as the SDK itself does for a resource's `urn` and `id`
    (pulumi/runtime/resource.py `resource_output`, `Output._from_data`): the same Output state
    (deps plus the resource, value, known, secret; the resolver's exception on failure), tracked
    the same way (`Output._track`), without the Task and three futures per property (~33
    properties per RDS instance)."""
    resolvers: dict = {}
    # Output._track's bookkeeping (pulumi/output.py), with the run's settings read once per
    # resource instead of twice per property (they are contextvars behind a descriptor).
    outputs, lock = settings.SETTINGS.outputs, settings.SETTINGS.lock

    def cleanup(fut: asyncio.Future) -> None:  # Output._track.cleanup
        if fut.cancelled() or fut.exception() is not None:
            return  # left in the set, to be picked up at program exit
        with lock:
            outputs.discard(fut)

    tracked = []
    for name in props:
        if name == "urn" or (name == "id" and custom):
            continue  # handled elsewhere (the SDK's own skip)
        data: asyncio.Future = asyncio.Future()

        def resolve(value: Any, is_known: bool, is_secret: bool, deps: Any, failed: Optional[Exception],
                    data: asyncio.Future = data) -> None:
            if failed is not None:
                data.set_exception(failed)
                return
            union = set(deps) if deps else set()
            union.add(res)
            t = type(value)
            if t is str or t is int or t is float or t is bool or value is None:
                # _OutputData's __post_init__ only clears is_known for a value holding an Unknown,
                # which a plain scalar never is: the same object, without the walk.
                out_data = object.__new__(_OutputData)
                out_data.resources, out_data.value, out_data.is_known, out_data.is_secret = union, value, is_known, is_secret
            else:
                out_data = _OutputData(resources=union, value=value, is_known=is_known, is_secret=is_secret)
            data.set_result(out_data)

        resolvers[name] = resolve
        out = object.__new__(Output)  # Output._from_data(data), tracked below
        out._data = data
        data.add_done_callback(cleanup)
        tracked.append(data)
        res.__dict__[name] = out
    with lock:
        outputs.update(tracked)
    return resolvers


def _make_create_urn(original):
    def create_urn(name, type_, parent=None, project=None, stack=None):
        """pulumi/runtime/resource.py `create_urn` for plain strings: the same URN as an already
        known Output, without the `Output.all(...).apply(...)` chain (three Outputs, their Tasks).
        `do_register` computes it for every registration only to use it when there is no
        monitor (`mock_urn`); anything else (an Output or a Resource argument, an alias) goes
        the SDK's way."""
        if type(name) is str and type(type_) is str and project is None and stack is None and (
                parent is None or type(parent) is str):
            if parent is not None:
                prefix = parent[0:parent.rfind("::")] + "$"
            else:
                prefix = "urn:pulumi:" + settings.get_stack() + "::" + settings.get_project() + "::"
            return Output.from_input(prefix + type_ + "::" + name)
        return original(name, type_, parent, project, stack)
    return create_urn


def _make_unwrap_type(original):
    cache: dict = {}

    def unwrap_type(val):
        """pulumi/_types.py `unwrap_type`, remembered per type: a pure function of its argument
        (Output[T], Input[T], InputType[T], Optional[T] -> T) that `serialize_property` calls for
        every value it serializes (~46k calls at N=50, each walking typing.get_origin/get_args)."""
        try:
            return cache[val]
        except KeyError:
            result = cache[val] = original(val)
            return result
        except TypeError:  # an unhashable annotation: not remembered
            return original(val)
    return unwrap_type


def _make_serialize_property(original):
    async def serialize_property(value, deps, property_key, resource_obj=None, input_transformer=None, typ=None,
                                 keep_output_values=False, exclude_resource_refs_from_deps=False,
                                 return_protobuf_value=False):
        """pulumi/runtime/rpc.py `serialize_property`: a str, int, float, bool or None serializes to
        itself whatever its type annotation (every branch before the last is for other kinds of
        value; the last, isLegalProtobufValue, returns it), so those return at once; the rest,
        and every call asking for a protobuf Value, go the SDK's way."""
        t = type(value)
        if (t is str or t is int or t is float or t is bool or value is None) and not return_protobuf_value:
            return value
        return await original(value, deps, property_key, resource_obj, input_transformer, typ,
                              keep_output_values, exclude_resource_refs_from_deps, return_protobuf_value)
    return serialize_property


def _make_log_debug(original, logger):
    def debug(msg, resource=None, stream_id=None, ephemeral=None):
        """pulumi/log.py `debug`: under mocks every call builds an engine LogRequest for
        MockEngine.Log, which hands it to the run's logger; when that logger drops debug
        messages (the offline runs' does), there is nothing to build."""
        if logger.isEnabledFor(10):
            original(msg, resource, stream_id, ephemeral)
    return debug


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """An executor that runs each call at once on the caller's thread (the event loop's).

    A ThreadPoolExecutor subclass because `loop.set_default_executor` accepts only those; it
    never starts a thread. The result or exception goes into a finished future, which
    `loop.run_in_executor` wraps as it wraps any executor's."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="bulkhead-inline")
        self.calls = 0

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.calls += 1
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - as ThreadPoolExecutor's work item: into the future
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future


@dataclass
class FastPath:
    """What one run skipped: `active` False means the SDK ran its own way (version not verified)."""

    active: bool
    sdk: Optional[str]
    executor: Optional[InlineExecutor] = None
    fallbacks: int = 0  # responses serialized by the SDK because wire() refused a value
    patched: tuple = ()  # (module, attribute, original), put back by restore()
    _loop: Optional[asyncio.AbstractEventLoop] = None
    _previous: Any = None

    @property
    def inline_calls(self) -> int:
        return self.executor.calls if self.executor is not None else 0

    def restore(self) -> None:
        for module, attribute, original in reversed(self.patched):
            setattr(module, attribute, original)
        self.patched = ()
        if self._loop is not None:
            # asyncio keeps the default executor in `_default_executor` (base_events.py, since 3.4);
            # set_default_executor refuses None, so the previous one (often None: not created yet)
            # is put back directly. Nothing was ever submitted to ours on another thread.
            self._loop._default_executor = self._previous  # type: ignore[attr-defined]
            self._loop = None


def _patches(logger) -> list:
    """(module, attribute, replacement) for the verified SDK."""
    from pulumi import _types, log
    from pulumi.runtime import resource as sdk_resource

    return [
        (rpc, "transfer_properties", _transfer_properties),
        (sdk_resource, "create_urn", _make_create_urn(sdk_resource.create_urn)),
        (_types, "unwrap_type", _make_unwrap_type(_types.unwrap_type)),
        (rpc, "serialize_property", _make_serialize_property(rpc.serialize_property)),
        (log, "debug", _make_log_debug(log.debug, logger)),
    ]


def activate(loop: asyncio.AbstractEventLoop, logger, version: Optional[str] = None) -> FastPath:
    """Turn the fast path on for `loop` if the installed SDK is a verified one; `restore()` after.
    `logger`: the run's (set_mocks) logger, which decides whether SDK debug messages are kept."""
    version = sdk_version() if version is None else version
    if version not in VERIFIED_SDK or not hasattr(loop, "_default_executor"):
        return FastPath(active=False, sdk=version)
    fast = FastPath(active=True, sdk=version)
    patched = []
    try:
        for module, attribute, replacement in _patches(logger):
            original = getattr(module, attribute)
            setattr(module, attribute, replacement)
            patched.append((module, attribute, original))
        fast.patched = tuple(patched)
        fast.executor = InlineExecutor()
        fast._loop, fast._previous = loop, loop._default_executor  # type: ignore[attr-defined]
        loop.set_default_executor(fast.executor)
    except BaseException:
        fast.patched = tuple(patched)
        fast.restore()  # nothing half-installed outlives the call
        raise
    return fast

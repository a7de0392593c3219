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
from pulumi.runtime import rpc

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
    _loop: Optional[asyncio.AbstractEventLoop] = None
    _previous: Any = None

    @property
    def inline_calls(self) -> int:
        return self.executor.calls if self.executor is not None else 0

    def restore(self) -> None:
        if self._loop is not None:
            # asyncio keeps the default executor in `_default_executor` (base_events.py, since 3.4);
            # set_default_executor refuses None, so the previous one (often None: not created yet)
            # is put back directly. Nothing was ever submitted to ours on another thread.
            self._loop._default_executor = self._previous  # type: ignore[attr-defined]
            self._loop = None


def activate(loop: asyncio.AbstractEventLoop, version: Optional[str] = None) -> FastPath:
    """Turn the fast path on for `loop` if the installed SDK is a verified one; `restore()` after."""
    version = sdk_version() if version is None else version
    if version not in VERIFIED_SDK or not hasattr(loop, "_default_executor"):
        return FastPath(active=False, sdk=version)
    executor = InlineExecutor()
    previous = loop._default_executor  # type: ignore[attr-defined]
    loop.set_default_executor(executor)
    return FastPath(active=True, sdk=version, executor=executor, _loop=loop, _previous=previous)

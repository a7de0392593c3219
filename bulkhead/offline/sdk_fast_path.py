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
  same order the SDK makes them, without the threads. The run's loop also gets its own
  `run_in_executor` for that executor: the loop future the SDK awaits is settled by `call_soon`,
  in the turn asyncio's `wrap_future` would settle it with `call_soon_threadsafe`, without the
  concurrent Future, the self-pipe write and the wake-up (the same callbacks in the same order).
- **the response's async serialization**: the SDK's mock monitor turns the fake provider's state
  into a protobuf Struct with `_sync_await(rpc.serialize_properties(state, {}))` (pulumi/runtime/
  mocks.py `MockMonitor.RegisterResource`), an event-loop pass over values that are plain
  already (they come from `rpc.deserialize_properties` and the fakes). `wire()` gives the
  value `serialize_property` would for those types (None, bool, int, float, str, dict, list,
  tuple, the SDK's assets and archives) synchronously; anything else (a resource reference, a
  subclass of a plain type) goes the SDK's own way (counted in `FastPath.fallbacks`).
- **the Struct round trip**: `do_register` hands the response's Struct to `rpc.resolve_outputs`,
  which turns it straight back into Python values (`rpc.deserialize_properties`). For a plain
  state the recording monitor answers with the values themselves (`PlainResponse`, the fields
  `do_register` reads) and the run's `deserialize_properties` gives, from them, what the SDK's
  gives from the Struct (`plain_properties`: numbers as floats, Nones dropped from maps,
  secrets lifted, unknowns, assets, the Struct's key order); a Struct (a request's inputs, an
  invoke's result) is read in one pass (`struct_properties`). A value neither rebuilds (a
  resource reference, an output value) goes the SDK's way, counted in `fallbacks`. And
  `translate_output_properties` returns a str, bool or float at once unless its type is an
  Enum or int (its only changes to a scalar).

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
from pulumi.output import Output, Unknown, _OutputData
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2

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
    values, without the event loop: what a mock's state holds. Raises NotPlain otherwise, and
    for what a Struct cannot hold (a non-str key, a str UTF-8 cannot encode, an int no double
    can), so that the SDK's serializer raises its own error."""
    t = type(value)
    if t is str:
        return _utf8(value)
    if t is bool or t is float or value is None:
        return value
    if t is int:
        try:
            float(value)  # protobuf stores numbers as doubles (struct_pb2 Value.number_value)
        except OverflowError:
            raise NotPlain("int") from None
        return value
    if t is dict:
        # serialize_property on a Mapping keeps a nested None (only top-level Nones are dropped).
        out = {}
        for key in value:
            out[_key(key)] = wire(value[key])
        return out
    if t is list or t is tuple:
        return [wire(v) for v in value]
    if isinstance(value, pulumi.Asset):  # rpc.serialize_property: path, then text, then uri
        return _special(value, rpc._special_asset_sig, ("path", "text", "uri"))
    if isinstance(value, pulumi.Archive):  # rpc.serialize_property: assets, then path, then uri
        return _special(value, rpc._special_archive_sig, ("assets", "path", "uri"))
    raise NotPlain(t.__name__)


def _utf8(text: str) -> str:
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise NotPlain("str") from None
    return text


def _key(key: Any) -> str:
    if type(key) is not str:
        raise NotPlain(type(key).__name__)
    return _utf8(key)


def _special(value: Any, sig: str, attributes: tuple[str, ...]) -> dict:
    for attribute in attributes:
        if hasattr(value, attribute):
            return {rpc._special_sig_key: sig, attribute: wire(getattr(value, attribute))}
    raise NotPlain(type(value).__name__)


def wire_values(props: dict) -> dict:
    """The values `rpc.serialize_properties(props, {})` puts in its Struct, for plain `props`:
    top-level Nones dropped, as the SDK treats them as absent. Raises NotPlain."""
    values = {}
    for key in props:
        value = wire(props[key])
        if value is not None:
            values[_key(key)] = value
    return values


def wire_struct(props: dict) -> Any:
    """`rpc.serialize_properties(props, {})` for plain values: a Struct. Raises NotPlain
    (nothing half-built is returned)."""
    return _struct_of(wire_values(props))


def _struct_of(values: dict) -> Any:
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


# --- the response's Struct round trip ---------------------------------------------------------------
#
# The recording monitor turns a resource's state into a Struct that `do_register` hands straight
# to `rpc.resolve_outputs`, whose first step turns it back into Python values
# (`deserialize_properties(outputs, keep_unknowns)`). For a plain state the monitor answers with
# the wire values themselves (`PlainStruct`), and the run's `rpc.deserialize_properties` gives
# what the SDK's would have given for the Struct holding them (`plain_properties`).


class PlainStruct:
    """A response's `object`: the values a Struct would hold (`wire_values`), not the Struct."""

    __slots__ = ("values",)

    def __init__(self, values: dict) -> None:
        self.values = values


@dataclass(frozen=True)
class PlainResponse:
    """The RegisterResourceResponse fields `do_register` reads (pulumi/runtime/resource.py
    `register_resource.do_register`: result, urn, id, propertyDependencies, unknown, object; nothing
    else reads the response), with `object` a PlainStruct. Field for field what the mock's
    protobuf response holds: no property dependencies, no failure, nothing unknown."""

    urn: str
    id: str
    object: PlainStruct
    propertyDependencies: tuple = ()  # falsy, as an empty protobuf map
    result: int = resource_pb2.Result.SUCCESS
    unknown: bool = False


_ORDERS: dict = {}  # key sequence -> the order a Struct built from it iterates in


def _struct_order(values: dict) -> Any:
    """The keys of `values` in the order a Struct filled from it iterates them: protobuf's map
    iterates in its hash table's order (upb), a function of the keys inserted, in insertion
    order, whatever their values (tests/program/test_offline_sdk_work.py checks it); worked out
    once per key sequence on a Struct of Nones."""
    if len(values) < 2:
        return values
    keys = tuple(values)
    order = _ORDERS.get(keys)
    if order is None:
        if len(_ORDERS) >= 65536:  # a bound, not expected to be reached: a few hundred shapes per plan
            _ORDERS.clear()
        order = _ORDERS[keys] = tuple(_struct_of(dict.fromkeys(keys)).fields)
    return order


def plain_properties(values: dict, keep_unknowns: Optional[bool], keep_internal: Optional[bool],
                     ordered: bool = False) -> dict:
    """pulumi/runtime/rpc.py `deserialize_properties` of the Struct holding `values` (wire values:
    str, bool, int, float, None, dict, list): key for key, value for value what it returns.
    `ordered`: the keys are in the Struct's order already. Raises NotPlain for a special value it
    does not rebuild (a resource reference, an output value, an unknown signature: the SDK's way)."""
    if rpc._special_sig_key in values:
        raise NotPlain("special")  # a top-level special value: deserialize_properties returns no dict
    out = {}
    for key in (values if ordered else _struct_order(values)):
        # keep_internal False drops engine-internal keys, `__provider` excepted (deserialize_properties).
        if keep_internal is False and key.startswith("__") and key != "__provider":
            continue
        value = _plain(values[key], keep_unknowns, keep_internal, ordered)
        if value is not None:  # deserialize_properties: a None is an absent property, at every level
            out[key] = value
    return out


def _plain(value: Any, keep_unknowns: Optional[bool], keep_internal: Optional[bool], ordered: bool) -> Any:
    """pulumi/runtime/rpc.py `deserialize_property` of the protobuf Value holding `value`."""
    t = type(value)
    if t is str:
        if value == rpc.UNKNOWN:
            return Unknown() if settings.is_dry_run() or keep_unknowns else None
        return value
    if t is bool or t is float or value is None:
        return value
    if t is int:
        return float(value)  # a Struct holds numbers as doubles: 5432 comes back 5432.0
    if t is list:
        items = [_plain(v, keep_unknowns, keep_internal, ordered) for v in value]
        # A secret in a list makes the list secret (deserialize_property's ListValue branch).
        if any(rpc.is_rpc_secret(v) for v in items):
            return rpc.wrap_rpc_secret([rpc.unwrap_rpc_secret(v) for v in items])
        return items
    if t is dict:
        if rpc._special_sig_key in value:
            props = _plain_special(value, ordered)
        else:
            props = plain_properties(value, keep_unknowns, keep_internal, ordered)
        # A secret in a map makes the map secret (deserialize_property's Struct branch).
        if isinstance(props, dict) and any(rpc.is_rpc_secret(v) for v in props.values()):
            return rpc.wrap_rpc_secret({k: rpc.unwrap_rpc_secret(v) for k, v in props.items()})
        return props
    raise NotPlain(t.__name__)


def struct_properties(struct: Any, keep_unknowns: Optional[bool] = None, keep_internal: Optional[bool] = True) -> dict:
    """pulumi/runtime/rpc.py `deserialize_properties(struct, ...)`, value for value and key for key
    (Struct.items() iterates `fields`, as here): the Struct read once into wire values, then
    `plain_properties`. Raises NotPlain where that does (and for a Value with no kind set)."""
    return plain_properties(_struct_values(struct), keep_unknowns, keep_internal, ordered=True)


def _struct_values(struct: Any) -> dict:
    return {key: _value_of(value) for key, value in struct.fields.items()}


def _value_of(value: Any) -> Any:
    """well_known_types `_GetStructValue`, with a Struct or ListValue read into a dict or list."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        return _struct_values(value.struct_value)
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "list_value":
        return [_value_of(v) for v in value.list_value.values]
    if kind == "null_value":
        return None
    raise NotPlain("Value not set")  # _GetStructValue raises its ValueError


def _plain_special(value: dict, ordered: bool) -> Any:
    """deserialize_properties' branch for a Struct with the signature key: assets, archives and
    secrets rebuilt as it does (their inner values deserialized with its defaults: no
    keep_unknowns); anything else raises NotPlain."""
    sig = value[rpc._special_sig_key]
    if sig == rpc._special_secret_sig and "value" in value:
        return rpc.wrap_rpc_secret(_plain(value["value"], None, True, ordered))
    if sig == rpc._special_asset_sig:
        kinds = (("path", pulumi.FileAsset), ("text", pulumi.StringAsset), ("uri", pulumi.RemoteAsset))
    elif sig == rpc._special_archive_sig:
        if "assets" in value:
            try:
                return pulumi.AssetArchive(_plain(value["assets"], None, True, ordered))
            except TypeError:  # not a map of assets: the SDK raises it from its own call
                raise NotPlain("assets") from None
        kinds = (("path", pulumi.FileArchive), ("uri", pulumi.RemoteArchive))
    else:
        raise NotPlain("signature")
    for attribute, cls in kinds:  # the first present attribute decides, as in the SDK
        if attribute in value:
            if type(value[attribute]) is not str:
                raise NotPlain(attribute)  # the SDK would str() a non-string
            return cls(value[attribute])
    raise NotPlain("signature")  # the SDK raises its AssertionError


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
    properties per RDS instance).

    Output._track's bookkeeping (pulumi/output.py): each future sits in `SETTINGS.outputs` until
    it has a result (one that fails or is cancelled stays, for `wait_for_rpcs` at program exit,
    the set's only reader). `_track` takes it out with a done callback, a loop turn per property
    (half of all the callbacks a run schedules); the resolver, the one place it gets its result,
    takes it out as it sets it: the same set at every point `wait_for_rpcs` looks, and no other
    callback moves in the loop's queue. The run's settings are read once per resource instead
    of twice per property (contextvars behind a descriptor)."""
    resolvers: dict = {}
    outputs, lock = settings.SETTINGS.outputs, settings.SETTINGS.lock
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
            with lock:  # Output._track's cleanup, for a future with a result
                outputs.discard(data)

        resolvers[name] = resolve
        out = object.__new__(Output)  # Output._from_data(data), tracked below
        out._data = data
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


def _memoized(fn, unhashable):
    """`fn` of one argument, remembered per argument; an unhashable argument (an annotation can
    be) is not remembered: `unhashable(arg)` instead."""
    cache: dict = {}

    def call(arg):
        try:
            return cache[arg]
        except KeyError:
            result = cache[arg] = fn(arg)
            return result
        except TypeError:
            return unhashable(arg)
    return call


def _make_unwrap_type(original):
    memo = _memoized(original, original)

    def unwrap_type(val):
        """pulumi/_types.py `unwrap_type`, remembered per type: a pure function of its argument
        (Output[T], Input[T], InputType[T], Optional[T] -> T) that `serialize_property` calls for
        every value it serializes (~46k calls at N=50, each walking typing.get_origin/get_args)."""
        return memo(val)
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


def _make_deserialize_properties(original, fast: "FastPath"):
    def deserialize_properties(props_struct, keep_unknowns=None, keep_internal=True):
        """pulumi/runtime/rpc.py `deserialize_properties`, the same value from fewer steps: a
        PlainStruct (a recording monitor's response, read by `resolve_outputs`) answered from
        its values by `plain_properties`, a Struct (a request's inputs, an invoke's result) read
        by `struct_properties`. What those do not rebuild goes the SDK's way (from the Struct),
        counted in `fallbacks`."""
        plain = type(props_struct) is PlainStruct
        try:
            if plain:
                out = plain_properties(props_struct.values, keep_unknowns, keep_internal)
            else:
                out = struct_properties(props_struct, keep_unknowns, keep_internal)
        except Exception:  # noqa: BLE001 - NotPlain, or an asset class refusing: the SDK's own outcome
            fast.fallbacks += 1
            return original(_struct_of(props_struct.values) if plain else props_struct, keep_unknowns, keep_internal)
        if plain:
            fast.plain_responses += 1
        else:
            fast.struct_reads += 1
        return out
    return deserialize_properties


def _make_translate_output_properties(original):
    # type -> whether a str, bool or float of that type is returned as is (an unhashable one: not)
    keeps_scalars = _memoized(_keeps_scalars, lambda _typ: False)

    def translate_output_properties(output, output_transformer, typ=None, transform_using_type_metadata=False,
                                    path=None, return_none_on_dict_type_mismatch=False):
        """pulumi/runtime/rpc.py `translate_output_properties`: a None, str, bool or float whose
        target type is neither an Enum nor int comes back as it is (its only changes to a scalar:
        an Enum built from it, a float cast to int); `resolve_outputs` calls it for every output
        value. Everything else the SDK's way."""
        t = type(output)
        if (t is str or t is bool or t is float or output is None) and keeps_scalars(typ):
            return output
        return original(output, output_transformer, typ, transform_using_type_metadata, path,
                        return_none_on_dict_type_mismatch)
    return translate_output_properties


def _keeps_scalars(typ: Any) -> bool:
    """Whether translate_output_properties returns a str, bool or float typed `typ` unchanged:
    `typ` (Optional[...] unwrapped, Any as none) is not an Enum class and not int."""
    import enum
    import inspect
    import typing

    from pulumi import _types

    try:
        target = _types.unwrap_optional_type(typ) if typ else typ
    except Exception:  # noqa: BLE001 - e.g. its assert on Union[None, T]: the SDK raises it itself
        return False
    if target is typing.Any or not target:
        return True
    return target is not int and not (inspect.isclass(target) and issubclass(target, enum.Enum))


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

    def run(self, fn, args: tuple, kwargs: Optional[dict] = None) -> tuple[Any, Optional[BaseException]]:
        """(result, None) or (None, the exception), as ThreadPoolExecutor's work item catches it."""
        self.calls += 1
        try:
            return fn(*args, **(kwargs or {})), None
        except BaseException as exc:  # noqa: BLE001 - as ThreadPoolExecutor's work item: into the future
            return None, exc

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: concurrent.futures.Future = concurrent.futures.Future()
        result, error = self.run(fn, args, kwargs)
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
        return future


# asyncio's conversion of a concurrent future's exception for a loop future (futures.py, 3.7+).
_convert_future_exc = getattr(asyncio.futures, "_convert_future_exc", None)


def _make_run_in_executor(loop: asyncio.AbstractEventLoop, executor: InlineExecutor, original):
    def run_in_executor(pool, func, *args):
        """asyncio `BaseEventLoop.run_in_executor` for the default executor (the SDK's RPCs):
        the call runs at once (`InlineExecutor.run`), and its outcome reaches the loop future the
        SDK awaits through `call_soon`, the turn `wrap_future` would give it with
        `call_soon_threadsafe` (asyncio/futures.py `_chain_future`), so the loop runs the same
        callbacks in the same order, without the concurrent Future, the self-pipe write and
        the wake-up it costs. Another executor: asyncio's own."""
        if pool is not None and pool is not executor:
            return original(pool, func, *args)
        result, error = executor.run(func, args)
        future = loop.create_future()
        loop.call_soon(_settle, future, result, error)
        return future
    return run_in_executor


def _settle(future: asyncio.Future, result: Any, error: Optional[BaseException]) -> None:
    """asyncio/futures.py `_copy_future_state` from a finished call into the loop future."""
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(_convert_future_exc(error))
    else:
        future.set_result(result)


@dataclass
class FastPath:
    """What one run skipped: `active` False means the SDK ran its own way (version not verified)."""

    active: bool
    sdk: Optional[str]
    executor: Optional[InlineExecutor] = None
    # Values whose Struct round trip went the SDK's way after all: a state wire() refused, a
    # value plain_properties or struct_properties does not rebuild.
    fallbacks: int = 0
    plain_responses: int = 0  # responses the SDK's deserialize_properties got as plain values
    struct_reads: int = 0  # Structs deserialize_properties read by struct_properties
    patched: tuple = ()  # (module, attribute, original), put back by restore()
    _loop: Optional[asyncio.AbstractEventLoop] = None
    _previous: Any = None
    _loop_attribute: Any = None  # the loop's own `run_in_executor` instance attribute, if it had one

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
            if self._loop_attribute is not None:
                self._loop.run_in_executor = self._loop_attribute  # type: ignore[method-assign]
            else:
                self._loop.__dict__.pop("run_in_executor", None)  # the class's method again
            self._loop = None


def _patches(logger, fast: FastPath) -> list:
    """(module, attribute, replacement) for the verified SDK."""
    from pulumi import _types, log
    from pulumi.runtime import resource as sdk_resource

    return [
        (rpc, "transfer_properties", _transfer_properties),
        (sdk_resource, "create_urn", _make_create_urn(sdk_resource.create_urn)),
        (_types, "unwrap_type", _make_unwrap_type(_types.unwrap_type)),
        (rpc, "serialize_property", _make_serialize_property(rpc.serialize_property)),
        (rpc, "deserialize_properties", _make_deserialize_properties(rpc.deserialize_properties, fast)),
        (rpc, "translate_output_properties", _make_translate_output_properties(rpc.translate_output_properties)),
        (log, "debug", _make_log_debug(log.debug, logger)),
    ]


def activate(loop: asyncio.AbstractEventLoop, logger, version: Optional[str] = None) -> FastPath:
    """Turn the fast path on for `loop` if the installed SDK is a verified one; `restore()` after.
    `logger`: the run's (set_mocks) logger, which decides whether SDK debug messages are kept."""
    version = sdk_version() if version is None else version
    if version not in VERIFIED_SDK or not hasattr(loop, "_default_executor") or _convert_future_exc is None:
        return FastPath(active=False, sdk=version)
    fast = FastPath(active=True, sdk=version)
    patched = []
    try:
        for module, attribute, replacement in _patches(logger, fast):
            original = getattr(module, attribute)
            setattr(module, attribute, replacement)
            patched.append((module, attribute, original))
        fast.patched = tuple(patched)
        fast.executor = InlineExecutor()
        fast._loop, fast._previous = loop, loop._default_executor  # type: ignore[attr-defined]
        fast._loop_attribute = loop.__dict__.get("run_in_executor")
        loop.set_default_executor(fast.executor)
        # An instance attribute, for this loop only (the SDK calls get_running_loop().run_in_executor).
        loop.run_in_executor = _make_run_in_executor(loop, fast.executor, loop.run_in_executor)  # type: ignore[method-assign]
    except BaseException:
        fast.patched = tuple(patched)
        fast.restore()  # nothing half-installed outlives the call
        raise
    return fast

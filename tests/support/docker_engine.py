"""A stand-in for the Docker provider: a plan's Docker resources made on a real engine.

The real-engine tests (tests/docker/test_docker_engine.py) run `__main__.py` under the mock
runtime, take the plan's RemoteImage, Network, Volume and Container resources with their
inputs (secrets in plain text: they are going into the engine) and create them through
the Docker Engine API (the `docker` PyPI package), mapping each pulumi-docker input the
way kreuzwerker/terraform-provider-docker does in resource_docker_container_funcs.go:

  image            the RemoteImage it refers to; `postgres:<N>-bookworm` runs the local test
                   image `bulkhead-test/postgres:<N>` (scripts/build-test-images) of the SAME
                   major: no image stands in for another major, a missing one is an error
  entrypoints, command, envs        Config.Entrypoint, Config.Cmd, Config.Env
  ports            HostConfig.PortBindings {internal/protocol: [{HostIp: ip, HostPort: external}]}
  networksAdvanced NetworkingConfig of the first network (with its aliases), then the others connected
  volumes          HostConfig.Mounts type volume (volume_name -> container_path)
  uploads          a tar per file put at "/" before the start: mode from `permissions` (octal),
                   else 0744 if executable else 0644; no uid/gid in the header (root)
  healthcheck      Config.Healthcheck, durations parsed like Go's time.ParseDuration
  memory, memorySwap, shmSize       MB -> bytes (HostConfig.Memory, MemorySwap, ShmSize)
  cpus             HostConfig.NanoCPUs (docker's opts.ParseCPUs: the decimal times 1e9, exact)
  restart          HostConfig.RestartPolicy.Name
  logDriver, logOpts                HostConfig.LogConfig {Type, Config}
  labels           [{label, value}] -> Config.Labels
  stopTimeout      Config.StopTimeout
  wait, waitTimeout                 after start, until the healthcheck says healthy
  destroyGraceSeconds               on delete: ContainerStop with that timeout, then remove (force)
  name             the container's name

Any other input is refused (`UnmappedInput`), so the mapping cannot silently drop one.
`read_back` is the other direction: what the provider's Read stores for those inputs, so a
test can prove a second plan with the same config diffs nothing.
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Optional

import docker
from docker.types import Healthcheck, LogConfig, Mount

from bulkhead.offline import mock_runtime
from components.dev.forms import cpus_string, go_duration

TEST_IMAGE = "bulkhead-test/postgres:{major}"
IMAGE_RE = re.compile(r"^postgres:(1[3-9])(\.[0-9]+)?(-[a-z]+)?$")
from policies.bulkhead_types import CONTAINER, NETWORK, REMOTE_IMAGE, VOLUME  # noqa: F401
TEST_LABEL = "bulkhead.test"  # on everything this helper makes, so teardown finds it all

CONTAINER_INPUTS = frozenset(
    {
        "name", "image", "entrypoints", "command", "envs", "ports", "networksAdvanced", "volumes", "uploads",
        "healthcheck", "memory", "memorySwap", "cpus", "shmSize", "restart", "labels", "stopTimeout", "wait",
        "waitTimeout", "destroyGraceSeconds", "logDriver", "logOpts",
    }
)  # fmt: skip
NETWORK_INPUTS = frozenset({"name", "driver", "labels"})
VOLUME_INPUTS = frozenset({"name", "labels"})
IMAGE_INPUTS = frozenset({"name", "keepLocally"})
PORT_KEYS = frozenset({"internal", "external", "ip", "protocol"})
NETWORK_ATTACH_KEYS = frozenset({"name", "aliases"})
VOLUME_MOUNT_KEYS = frozenset({"volumeName", "containerPath"})
UPLOAD_KEYS = frozenset({"file", "content", "executable", "permissions"})
HEALTH_KEYS = frozenset({"tests", "interval", "timeout", "retries", "startPeriod"})


class UnmappedInput(ValueError):
    """An input the stand-in does not map: refused rather than dropped."""


def _only(value: dict, allowed: frozenset, what: str) -> dict:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise UnmappedInput(f"{what}: no mapping for {', '.join(unknown)}; add it to tests/support/docker_engine.py")
    return value


_GO_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
             "h": 3_600_000_000_000}  # fmt: skip


def parse_go_duration(text: str) -> int:
    """Nanoseconds of a Go duration string ("3s", "1m0s", "1.5h")."""
    parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UnmappedInput(f"{text!r} is not a Go duration")
    return int(sum(Fraction(n) * _GO_UNITS[u] for n, u in parts))


def parse_cpus(text: str) -> int:
    """docker's opts.ParseCPUs: the decimal as a rational times 1e9, which must be whole."""
    nano = Fraction(text) * 1_000_000_000
    if nano.denominator != 1:
        raise UnmappedInput(f"cpus {text!r}: value is too precise")
    return int(nano)


def _labels(items: Any) -> dict[str, str]:
    return {item["label"]: item["value"] for item in items or []}


@dataclass
class Planned:
    """One plan resource, inputs in plain text."""

    name: str
    type: str
    inputs: dict
    outputs: dict


def plan_resources(run_program: Callable[[], Any]) -> list[Planned]:
    """Run the program (a callable returning a ProgramRun) with secrets kept as plain values."""
    original = mock_runtime._envelope
    mock_runtime._envelope = lambda value, secret_keys=frozenset(): _plain(value)
    try:
        run = run_program()
    finally:
        mock_runtime._envelope = original
    return [Planned(r.name, r.type, r.inputs, r.outputs) for r in run.resources if r.custom]


def _plain(value: Any) -> Any:
    rpc = mock_runtime.rpc
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items() if k != rpc._special_sig_key}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class Engine:
    """Creates and deletes plan resources on the local engine, as the provider would."""

    client: docker.DockerClient = field(default_factory=docker.from_env)
    run_id: str = "bulkhead-test"
    created_to_healthy: dict[str, float] = field(default_factory=dict)
    first_healthy: dict[str, float] = field(default_factory=dict)

    # -- images
    def image_for(self, name: str) -> str:
        match = IMAGE_RE.match(name)
        if not match:
            raise UnmappedInput(f"image {name!r}: only postgres:<major>[-flavour] maps to a test image")
        local = TEST_IMAGE.format(major=match.group(1))
        try:
            self.client.images.get(local)
        except docker.errors.ImageNotFound:
            raise UnmappedInput(
                f"no test image of PostgreSQL {match.group(1)} ({local}) for {name}; scripts/build-test-images"
                " builds 15 and 17 only, and no image stands in for another major"
            ) from None
        return local

    # -- networks and volumes
    def create_network(self, res: Planned) -> None:
        inputs = _only(res.inputs, NETWORK_INPUTS, res.name)
        labels = {**_labels(inputs.get("labels")), TEST_LABEL: self.run_id}
        self.client.networks.create(inputs["name"], driver=inputs.get("driver", "bridge"), labels=labels)

    def create_volume(self, res: Planned) -> None:
        inputs = _only(res.inputs, VOLUME_INPUTS, res.name)
        try:
            self.client.volumes.get(inputs["name"])  # kept from an earlier run: reused, as Docker does
        except docker.errors.NotFound:
            labels = {**_labels(inputs.get("labels")), TEST_LABEL: self.run_id}
            self.client.volumes.create(inputs["name"], labels=labels)

    # -- containers
    def create_container(self, res: Planned, images: dict[str, str], wait: bool = True) -> Any:
        inputs = _only(res.inputs, CONTAINER_INPUTS, res.name)
        api = self.client.api
        image = self.image_for(images[inputs["image"]])
        ports = [_only(p, PORT_KEYS, f"{res.name}.ports") for p in inputs.get("ports", [])]
        bindings = {f"{p['internal']}/{p.get('protocol', 'tcp')}": [(p.get("ip", ""), p["external"])] for p in ports}
        mounts = []
        for v in inputs.get("volumes", []):
            _only(v, VOLUME_MOUNT_KEYS, f"{res.name}.volumes")
            mounts.append(Mount(target=v["containerPath"], source=v["volumeName"], type="volume"))
        networks = [_only(n, NETWORK_ATTACH_KEYS, f"{res.name}.networksAdvanced") for n in inputs.get("networksAdvanced", [])]
        health = _only(inputs.get("healthcheck") or {}, HEALTH_KEYS, f"{res.name}.healthcheck")
        mb = 1024 * 1024
        host_config = api.create_host_config(
            port_bindings=bindings,
            mounts=mounts,
            mem_limit=inputs["memory"] * mb if inputs.get("memory") else None,
            memswap_limit=inputs["memorySwap"] * mb if inputs.get("memorySwap") else None,
            shm_size=inputs["shmSize"] * mb if inputs.get("shmSize") else None,
            nano_cpus=parse_cpus(inputs["cpus"]) if inputs.get("cpus") else None,
            restart_policy={"Name": inputs["restart"]} if inputs.get("restart") else None,
            network_mode=networks[0]["name"] if networks else None,
            log_config=(
                LogConfig(type=inputs.get("logDriver") or "", config=inputs.get("logOpts") or {})
                if inputs.get("logDriver") or inputs.get("logOpts")
                else None
            ),
        )
        networking = (
            api.create_networking_config({networks[0]["name"]: api.create_endpoint_config(aliases=networks[0].get("aliases"))})
            if networks
            else None
        )
        healthcheck = (
            Healthcheck(
                test=health["tests"],
                interval=parse_go_duration(health.get("interval", "0s")),
                timeout=parse_go_duration(health.get("timeout", "0s")),
                retries=health.get("retries", 0),
                start_period=parse_go_duration(health.get("startPeriod", "0s")),
            )
            if health
            else None
        )
        created = api.create_container(
            image=image,
            name=inputs["name"],
            entrypoint=inputs.get("entrypoints"),
            command=inputs.get("command"),
            environment=inputs.get("envs"),
            labels={**_labels(inputs.get("labels")), TEST_LABEL: self.run_id},
            ports=[(p["internal"], p.get("protocol", "tcp")) for p in ports],
            host_config=host_config,
            networking_config=networking,
            healthcheck=healthcheck,
            stop_timeout=inputs.get("stopTimeout"),
        )
        container = self.client.containers.get(created["Id"])
        for extra in networks[1:]:
            self.client.networks.get(extra["name"]).connect(container, aliases=extra.get("aliases"))
        for upload in inputs.get("uploads", []):
            _only(upload, UPLOAD_KEYS, f"{res.name}.uploads")
            container.put_archive("/", _tar(upload))
        t0 = time.monotonic()
        container.start()
        if wait and inputs.get("wait"):
            self.wait_healthy(container, inputs.get("waitTimeout", 60))
            self.created_to_healthy[inputs["name"]] = time.monotonic() - t0
        return container

    def wait_healthy(self, container: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            container.reload()
            state = container.attrs["State"]
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy":
                return
            if state["Status"] in ("exited", "dead"):
                break
            time.sleep(0.2)
        logs = container.logs(tail=60).decode(errors="replace")
        raise AssertionError(f"{container.name} not healthy ({container.attrs['State']}):\n{logs}")

    def delete_container(self, res: Planned) -> None:
        """The provider's Delete: stop with destroy_grace_seconds (0 if unset), then remove."""
        try:
            container = self.client.containers.get(res.inputs["name"])
        except docker.errors.NotFound:
            return
        container.stop(timeout=res.inputs.get("destroyGraceSeconds", 0))
        container.remove(force=True, v=True)  # the named data volume stays (not anonymous)

    # -- the whole plan
    def apply(self, plan: list[Planned]) -> dict[str, Any]:
        """Create every resource of the plan (networks and volumes reused when they exist)."""
        images = {}
        for res in plan:
            if res.type == REMOTE_IMAGE:
                _only(res.inputs, IMAGE_INPUTS, res.name)
                images[res.outputs["imageId"]] = res.inputs["name"]
        existing = {n.name for n in self.client.networks.list()}
        for res in plan:
            if res.type == NETWORK and res.inputs["name"] not in existing:
                self.create_network(res)
            elif res.type == VOLUME:
                self.create_volume(res)
        containers = {}
        for res in plan:
            if res.type == CONTAINER:
                containers[res.inputs["name"]] = self.create_container(res, images, wait=False)
        for res in plan:  # the provider waits for each; here all start at once, then each is awaited
            if res.type == CONTAINER and res.inputs.get("wait"):
                container = containers[res.inputs["name"]]
                t0 = _started_at(container)
                self.wait_healthy(container, res.inputs.get("waitTimeout", 60))
                self.created_to_healthy[res.inputs["name"]] = _healthy_at(container) - t0
        return containers

    def teardown(self, keep_volumes: bool = False) -> None:
        for c in self.client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={self.run_id}"}):
            c.remove(force=True, v=True)  # v: anonymous volumes only; named ones are handled below
        for n in self.client.networks.list(filters={"label": f"{TEST_LABEL}={self.run_id}"}):
            n.remove()
        if not keep_volumes:
            for v in self.client.volumes.list(filters={"label": f"{TEST_LABEL}={self.run_id}"}):
                v.remove(force=True)


def _tar(upload: dict) -> bytes:
    data = upload["content"].encode()
    if upload.get("permissions"):
        mode = int(upload["permissions"], 8)
    else:
        mode = 0o744 if upload.get("executable") else 0o644
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(upload["file"].lstrip("/"))
        info.size, info.mode, info.mtime = len(data), mode, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _docker_time(text: str) -> float:
    """Seconds since the epoch of a Docker RFC 3339 timestamp (nanoseconds cut to micro)."""
    from datetime import datetime

    main, _, frac = text.rstrip("Z").partition(".")
    frac = (frac + "000000")[:6]
    return datetime.fromisoformat(f"{main}.{frac}+00:00").timestamp()


def _started_at(container: Any) -> float:
    container.reload()
    return _docker_time(container.attrs["Created"])


def _healthy_at(container: Any) -> float:
    """When the first passing probe of the health log ended."""
    container.reload()
    log = container.attrs["State"]["Health"]["Log"]
    ok = [entry for entry in log if entry["ExitCode"] == 0]
    return _docker_time((ok or log)[0]["End"])


def read_back(container: Any) -> dict[str, Any]:
    """What the provider's Read stores for the inputs it reads back (resource_docker_container_funcs.go):
    cpus via nanoInt64ToDecimalString, memory and swap and shm in MB, healthcheck durations via
    time.Duration.String(), ports, restart, stop_timeout, entrypoint, command, log driver and options."""
    container.reload()
    cfg, host = container.attrs["Config"], container.attrs["HostConfig"]
    mb = 1024 * 1024
    health = cfg.get("Healthcheck") or {}
    ports = []
    for key, binds in sorted((host.get("PortBindings") or {}).items()):
        internal, _, protocol = key.partition("/")
        for b in binds:
            ports.append({"internal": int(internal), "external": int(b["HostPort"]), "ip": b["HostIp"], "protocol": protocol})
    return {
        "cpus": cpus_string(host["NanoCpus"] / 1e9),  # the API's spelling
        "memory": host["Memory"] // mb,
        "memorySwap": host["MemorySwap"] // mb if host["MemorySwap"] > 0 else host["MemorySwap"],
        "shmSize": host["ShmSize"] // mb,
        "ports": ports,
        "restart": host["RestartPolicy"]["Name"],
        "stopTimeout": cfg.get("StopTimeout"),
        "entrypoints": cfg.get("Entrypoint"),
        "command": cfg.get("Cmd"),
        "logDriver": host["LogConfig"]["Type"],  # d.Set("log_driver", LogConfig.Type)
        "logOpts": host["LogConfig"]["Config"],  # d.Set("log_opts", LogConfig.Config)
        "healthcheck": {
            "tests": health.get("Test"),
            "interval": go_duration(health.get("Interval", 0) // 1_000_000_000),
            "timeout": go_duration(health.get("Timeout", 0) // 1_000_000_000),
            "startPeriod": go_duration(health.get("StartPeriod", 0) // 1_000_000_000),
            "retries": health.get("Retries"),
        },
    }


def plan_images(plan: list[Planned]) -> dict[str, str]:
    return {r.outputs["imageId"]: r.inputs["name"] for r in plan if r.type == REMOTE_IMAGE}


def by_type(plan: list[Planned], typ: str) -> list[Planned]:
    return [r for r in plan if r.type == typ]


def find(plan: list[Planned], name: str) -> Optional[Planned]:
    return next((r for r in plan if r.name == name), None)

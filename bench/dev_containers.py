"""Dev containers on the real Docker engine: time from `docker create` to healthy, and memory.

    .venv/bin/python bench/dev_containers.py

Needs the engine and the test images (scripts/ensure-docker, scripts/build-test-images).
Creates, through the provider stand-in (tests/support/docker_engine.py), a stack of one own
container (`solo`, PostgreSQL 17) and one shared server with three tenants (PostgreSQL
17), twice over: a fresh volume (first start: initdb) and again on the kept volume. For
each container it prints create-to-healthy seconds, then, after the servers have idled,
the RSS summed over the container's processes (from /proc inside it; shared pages are
counted in each process, so this overstates) and the container's cgroup memory usage.
Everything it made is removed at the end.
"""

from __future__ import annotations

import os
import socket
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bulkhead.offline.mock_runtime import run_program  # noqa: E402
from tests.support.docker_engine import CONTAINER, Engine, by_type, plan_resources  # noqa: E402

STACK = "bench"
IDLE_SECONDS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config() -> dict:
    tenants = {f"tenant{i}": {"owner": f"tenant{i}-service", "server": "shared"} for i in (1, 2, 3)}
    return {
        "bulkhead:platform": "docker",
        "bulkhead:databases": {"solo": {"owner": "solo-service", "port": free_port(), "engine_version": "17"}, **tenants},
        "bulkhead:servers": {"shared": {"port": free_port(), "engine_version": "17"}},
        "bulkhead:keep_volumes": True,
    }


def plan():
    cfg = config()

    def run():
        result = run_program(ROOT, STACK, cfg)
        if result.error is not None:
            raise result.error
        return result

    return plan_resources(run)


def memory(container) -> tuple[int, int]:
    """(summed RSS of the container's processes in KiB, cgroup memory usage in KiB)."""
    rss = container.exec_run(["bash", "-c", "cat /proc/[0-9]*/status 2>/dev/null | awk '/^VmRSS/ {s+=$2} END {print s}'"])
    stats = container.stats(stream=False)
    usage = stats["memory_stats"].get("usage", 0)
    cache = stats["memory_stats"].get("stats", {}).get("inactive_file", 0)
    return int(rss.output.decode().strip() or 0), (usage - cache) // 1024


def main() -> None:
    engine = Engine(run_id="bulkhead-bench")
    engine.teardown()
    try:
        resources = plan()
        for label in ("fresh volume (initdb)", "kept volume"):
            engine.created_to_healthy.clear()
            containers = engine.apply(resources)
            print(f"create-to-healthy, {label}:")
            for name, seconds in sorted(engine.created_to_healthy.items()):
                print(f"  {name:32s} {seconds:6.1f} s")
            if label == "kept volume":
                time.sleep(IDLE_SECONDS)
                print(f"memory after {IDLE_SECONDS} s idle (RSS summed over processes / cgroup usage less inactive file):")
                for name, container in sorted(containers.items()):
                    rss, cgroup = memory(container)
                    print(f"  {name:32s} {rss / 1024:6.1f} MiB RSS  {cgroup / 1024:6.1f} MiB cgroup")
            for res in by_type(resources, CONTAINER):
                engine.delete_container(res)
    finally:
        engine.teardown(keep_volumes=False)


if __name__ == "__main__":
    main()

"""`bulkhead plan`: run the program offline under Pulumi's mock runtime and write the plan."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING

from bulkhead import PROJECT_DIR
from bulkhead.access import access_matrix, render_matrix
from bulkhead.errors import UserError
from bulkhead.planfile import Plan, props
from policies.bulkhead_types import VOLUME as VOLUME_TYPE

if TYPE_CHECKING:
    from bulkhead.offline.mock_runtime import ProgramRun

# pulumi (mock_runtime) and pydantic (stack_config) are imported by build_plan, not here:
# the CLI imports this module to build its parser on every start-up.


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="plan a stack offline (no Pulumi CLI, Docker or AWS needed)")
    p.add_argument("--stack", required=True, help="stack name; reads Pulumi.<stack>.yaml")
    p.add_argument("--out", help="where to write the plan JSON (default .bulkhead/plan-<stack>.json)")
    p.add_argument("--mermaid", action="store_true", help="print a Mermaid diagram of who reaches what instead of the summary")
    p.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="plan the databases in N worker processes, each shard of at most ~30 databases in a fresh "
                        "process (default: one per CPU, each with at least 10 databases; 1 = one process, no "
                        "workers); the plan is the same byte for byte")
    p.add_argument("--project-dir", default=PROJECT_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--jobs takes a whole number of processes >= 1, not {text!r}")
    return value


def build_plan(project_dir: str, stack: str, jobs: int | None = None) -> "tuple[dict, ProgramRun]":
    """Validate the stack's config, run the program under mocks; (stack export, run).

    `jobs`: processes planning the databases (bulkhead/offline/parallel.py); None = auto."""
    from pulumi.errors import RunError

    from bulkhead.offline.mock_runtime import run_program, to_stack_export
    from bulkhead.offline.stack_config import load_catalogue_for, load_stack_config, project_name

    config = load_stack_config(project_dir, stack)
    catalogue = load_catalogue_for(project_dir, stack, config)  # bad config: exit 2 before any resource
    for warning in catalogue.warnings:  # advisory policies, memory tuning, unchecked settings
        print(f"warning: {warning}", file=sys.stderr)
    for path, message in host_port_findings(catalogue):
        print(f"warning: {path}: {message}", file=sys.stderr)
    from bulkhead.offline.parallel import auto_jobs, run_program_parallel

    # Both platforms: auto_jobs (bench/README.md "Parallel planning": when it pays). The RDS
    # event subscription of every aws instance merges as a union (parallel.MERGED).
    jobs = auto_jobs(len(catalogue.databases)) if jobs is None else jobs
    if jobs > 1:
        run = run_program_parallel(project_dir, stack, config, catalogue, jobs, project=project_name(project_dir))
    else:
        run = run_program(project_dir, stack, config, project=project_name(project_dir))
    if isinstance(run.error, RunError):
        raise UserError(str(run.error))
    if run.error is not None:
        raise run.error
    return to_stack_export(run), run


def port_in_use(port: int) -> bool:
    """Whether something on this host already listens on 127.0.0.1:port (where a dev container publishes)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def port_publisher(port: int, stack: str):
    """The container publishing `port` (Docker CLI `docker ps --filter publish=`): True when it is
    this stack's own (bulkhead-<stack>-...: an `up` already ran), its name when another, None when
    unknown (no Docker CLI, or not a container)."""
    import shutil
    import subprocess

    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        proc = subprocess.run([docker, "ps", "--filter", f"publish={port}", "--format", "{{.Names}}"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = proc.stdout.split() if proc.returncode == 0 else []
    if not names:
        return None
    return True if all(n.startswith(f"bulkhead-{stack}-") for n in names) else names[0]


def host_port_findings(catalogue, in_use=port_in_use, publisher=port_publisher) -> list:
    """`plan` warnings for dev ports something on this host already listens on."""
    from components.catalogue.checks import ports_in_use

    if catalogue.platform != "docker":
        return []
    ports = {db.port: f"bulkhead:databases.{n}.port" for n, db in catalogue.databases.items() if db.server is None}
    ports.update({s.port: f"bulkhead:servers.{n}.port" for n, s in catalogue.servers.items()})
    return ports_in_use(ports, in_use, lambda port: publisher(port, catalogue.stack))


def default_plan_path(project_dir: str, stack: str) -> str:
    return os.path.join(project_dir, ".bulkhead", f"plan-{stack}.json")


def plan_text(export: dict) -> str:
    """The plan file's text: JSON, indent 1, ASCII only (non-ASCII escaped), keys in the export's order.

    Written by ujson (the C encoder that writes indented JSON: Python's own json module runs its
    pure-Python encoder whenever `indent` is set, ~8x slower: 1.2 s against 0.16 s for the 55 MB
    plan of 500 databases, bench/README.md). ujson's text equals `json.dumps(export, indent=1)`'s
    except two spellings, both valid JSON (tests/cli/test_plan_text.py): a float below 1e-4 loses
    its exponent's leading zero (`1e-7`, json's `1e-07`) and DEL (U+007F) is not escaped. The same
    export always gives the same bytes."""
    import ujson

    return ujson.dumps(export, indent=1, ensure_ascii=True, escape_forward_slashes=False)


def write_plan(export: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    data = plan_text(export).encode("ascii") + b"\n"  # ASCII: ensure_ascii escaped the rest
    with open(path, "wb") as fh:  # one write of the bytes: a text-mode write of 55 MB took 2-8x longer
        fh.write(data)
        # On disk before the CLI leaves without teardown (bulkhead/__main__.py: os._exit).
        fh.flush()
        os.fsync(fh.fileno())


def run(args) -> int:
    started = time.perf_counter()
    export, _ = build_plan(args.project_dir, args.stack, jobs=args.jobs)
    out = args.out or default_plan_path(args.project_dir, args.stack)
    plan = Plan.from_export(export)
    cost = attach_cost(export, plan)  # before writing: the plan file carries the figures (docs/contract.md)
    write_plan(export, out)
    if args.mermaid:
        from bulkhead.mermaid import render_mermaid

        print(render_mermaid(plan))
        return 0
    print(summary(plan, args.stack))
    if cost is not None:
        from bulkhead.cost import render as render_cost

        print("\n" + render_cost(cost))
    if any(r.get("type") == "docker:index/container:Container" for r in plan.resources):
        from bulkhead.engine_check import engine_version, engine_warning

        warning = engine_warning(engine_version())  # offline by design: no engine, no warning
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    custom = sum(1 for r in plan.resources if r.get("custom"))
    print(f"\nplan written to {os.path.relpath(out)} ({custom} resources, "
          f"{time.perf_counter() - started:.2f}s)", file=sys.stderr)
    return 0


def attach_cost(export: dict, plan: Plan) -> dict | None:
    """An aws plan's monthly cost estimate (bulkhead/cost.py), stored as the export's `bulkhead.cost`
    (a key `pulumi stack import` and the plan readers ignore); None for docker plans."""
    from bulkhead.cost import INSTANCE, estimate

    if not plan.of_type(INSTANCE):
        return None
    cost = estimate(plan)
    export.setdefault("bulkhead", {})["cost"] = cost
    return cost


def _component_of(plan: Plan, resource: dict) -> dict | None:
    """The top-level component a resource belongs to."""
    node = resource
    while node.get("parent") in plan.by_urn and plan.by_urn[node["parent"]]["type"] != "pulumi:pulumi:Stack":
        node = plan.by_urn[node["parent"]]
    return node if node is not resource else None


def summary(plan: Plan, stack: str) -> str:
    outputs = plan.stack_outputs()
    dbs = outputs.get("databases") or {}
    counts: Counter = Counter()
    for r in plan.resources:
        if r.get("custom"):
            comp = _component_of(plan, r)
            counts[comp["urn"].rsplit("::", 1)[1] if comp else "(stack)"] += 1
    lines = [f"stack {stack}: {len(dbs)} databases, {sum(counts.values())} resources"]
    platform = next((d.get("platform") for d in dbs.values()), "?")
    if platform == "docker":
        header = ("database", "owner", "address", "network", "volume", "server", "resources")
        # "<component>-data" -> the volume's name; the first such volume wins, as before.
        volumes: dict[str, object] = {}
        for r in plan.of_type(VOLUME_TYPE):
            volumes.setdefault(r["urn"].rsplit("::", 1)[-1], props(r).get("name"))
        rows = []
        for name, d in dbs.items():
            comp = f"server-{d['server']}" if d.get("server") else name
            volume = volumes.get(f"{comp}-data", "?")
            rows.append((name, d["owner"], f"{d['host']}:{d['port']}", str(d.get("network")), str(volume),
                         d.get("server") or "(own)", str(counts[comp])))
    else:
        header = ("database", "owner", "endpoint", "replicas", "tier", "client group", "resources")
        rows = [(name, d["owner"], f"{d['host']}:{d['port']}", str(len(d.get("reader_hosts") or [])), d["tier"],
                 str(d.get("security_group_id")), str(counts[name])) for name, d in dbs.items()]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)] if rows else [len(h) for h in header]
    lines.append("")
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    shared = sum(n for k, n in counts.items() if k not in dbs and not k.startswith("server-"))
    if shared:
        lines.append(f"(stack-wide resources: {shared})")
    lines.append("")
    lines.append("who reaches what (yes = network path and credentials; PART = only one of them):")
    lines.append(render_matrix(access_matrix(plan)))
    return "\n".join(lines)

"""The docs that are generated from the code are current, and README's layout map is complete.

`tools/generate_docs.py` writes the reference parts of docs/ (between GENERATED markers)
and Pulumi.yaml's config descriptions from the catalogue models, the pack's registry and
the CLI's parser; CI runs it with `--check` before the tests.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "tools" / "generate_docs.py"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_docs", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_docs_are_current():
    run = subprocess.run([sys.executable, str(GENERATOR), "--check"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr + run.stdout


def test_check_names_a_stale_file_and_a_run_fixes_it(tmp_path, monkeypatch, capsys):
    gen = _generator()
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    page = tmp_path / "docs" / "policies.md"
    page.write_text(page.read_text().replace("| `rds-not-public` |", "| `rds-not-public-drifted` |"))
    monkeypatch.setattr(gen, "ROOT", tmp_path)

    assert gen.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "docs/policies.md: stale" in err and "configuration.md" not in err
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    assert (tmp_path / "docs" / "policies.md").read_text() == (ROOT / "docs" / "policies.md").read_text()


def test_pulumi_yaml_keeps_its_keys_and_says_what_the_model_says():
    gen = _generator()
    config = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    fields = dict(gen._documented(gen.model.Catalogue))
    assert sorted(config) == sorted(f"bulkhead:{name}" for name in fields)
    for name, info in fields.items():
        assert config[f"bulkhead:{name}"]["description"] == gen._pulumi_description(name, info)


def _tracked_top_level() -> set[str]:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    names = set()
    for path in files:
        parts = path.split("/")
        if parts[0].startswith("."):
            continue
        if len(parts) == 1:
            if path.endswith(".py"):
                names.add(path)
        else:
            names.add(parts[0] + "/")
            # one level down in the code directories: each subpackage and module
            if parts[0] in ("components", "bulkhead", "tests", "tools") and len(parts) >= 2:
                names.add(f"{parts[0]}/{parts[1]}" + ("/" if len(parts) > 2 else ""))
            # and every module of the program and the CLI, however deep
            if parts[0] in ("components", "bulkhead") and path.endswith(".py"):
                names.add(path)
    return {n for n in names if "__pycache__" not in n and not n.endswith("__init__.py")}


def _layout_map() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Layout\n", 1)[1]
    return re.search(r"```\n(.*?)```", section, re.S).group(1)


def test_readme_layout_map_names_every_top_level_module_and_directory():
    layout = _layout_map()
    missing = []
    for name in sorted(_tracked_top_level()):
        top, _, rest = name.partition("/")
        if not rest:  # a top-level file or directory: at the start of a line
            found = re.search(rf"^{re.escape(name)}\s", layout, re.M) or (
                name.endswith("/") and re.search(rf"^{re.escape(name)}", layout, re.M))
        else:  # deeper: its own name appears in the map (indented, or in its parent's line)
            own = rest.rstrip("/").rsplit("/", 1)[-1]
            stem = own[:-3] if own.endswith(".py") else None
            found = re.search(rf"(?<![\w/]){re.escape(own)}\b", layout) or (
                stem and re.search(rf"\{{[^}}]*\b{re.escape(stem)}\b[^}}]*\}}\.py", layout))
        if not found:
            missing.append(name)
    assert missing == [], f"README.md's layout map does not mention: {missing}"

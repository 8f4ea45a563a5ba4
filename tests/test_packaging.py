"""Packaging: environment.yml stays in step with pyproject.toml, and the core stays headless."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PRESENTATION_MODULES = ("matplotlib", "ipywidgets", "IPython")


def load_generator():
    """Import tools/gen_environment_yml.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_environment_yml", ROOT / "tools/gen_environment_yml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def conda_name_and_spec(entry: str) -> tuple[str, str]:
    """Split a conda match spec such as 'matplotlib-base>=3.8' into ('matplotlib-base', '>=3.8')."""
    name, spec = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", entry).groups()
    return name, spec.replace(" ", "")


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter from the repo root."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_environment_yml_is_what_the_generator_writes():
    assert (ROOT / "environment.yml").read_text() == load_generator().generate(ROOT), (
        "run: python tools/gen_environment_yml.py")


def test_environment_yml_has_only_binder_keys_and_conda_forge_first():
    env = environment()
    assert set(env) <= {"name", "channels", "dependencies"}
    assert env["channels"][0] == "conda-forge"


def test_environment_yml_pins_python_and_installs_the_repo_with_pip():
    deps = environment()["dependencies"]
    assert any(isinstance(d, str) and re.fullmatch(r"python=\d+\.\d+", d) for d in deps)
    pip_lists = [d for d in deps if isinstance(d, dict)]
    assert len(pip_lists) == 1 and set(pip_lists[0]) == {"pip"}
    assert "pip" in deps
    assert "-e ." in pip_lists[0]["pip"]


def test_environment_yml_lists_every_runtime_and_notebook_dependency_with_the_same_specifier():
    project = pyproject()["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["notebooks"]
    listed = dict(conda_name_and_spec(d) for d in environment()["dependencies"] if isinstance(d, str))
    name_map = load_generator().NAME_MAP
    for requirement in map(Requirement, wanted):
        conda_name = name_map.get(requirement.name, requirement.name)
        assert conda_name in listed, f"{conda_name} missing from environment.yml"
        assert listed[conda_name] == str(requirement.specifier), f"{conda_name} specifier differs"


def test_importing_evtsim_loads_no_plotting_or_widget_library():
    probe = f"import sys, evtsim; print(sorted(m for m in {PRESENTATION_MODULES!r} if m in sys.modules))"
    result = run_python(probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_importing_evtsim_prints_nothing():
    result = run_python("import evtsim")
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")


def test_the_core_has_no_third_party_runtime_dependency():
    assert pyproject()["project"]["dependencies"] == []

"""What ``import evtsim`` offers: only evtsim's own names, every one it promises, and README
examples that run as written."""

from __future__ import annotations

import ast
import json
import re
import types
from pathlib import Path

import evtsim
from evtsim import abi

ROOT = Path(__file__).resolve().parents[1]


def test_dir_evtsim_shows_only_evtsim_names():
    """Nothing leaks from the implementation (dataclass, IntEnum, StrEnum, annotations...):
    a name is in __all__, a dunder, or one of evtsim's own submodules."""
    stray = [name for name in dir(evtsim)
             if not name.startswith("__") and name not in evtsim.__all__
             and not (isinstance(getattr(evtsim, name), types.ModuleType)
                      and getattr(evtsim, name).__name__.startswith("evtsim."))]
    assert stray == []


def test_every_name_in_all_exists():
    assert [name for name in evtsim.__all__ if not hasattr(evtsim, name)] == []
    assert len(evtsim.__all__) == len(set(evtsim.__all__))


def test_abi_all_is_exactly_its_public_vocabulary():
    """Every public name abi defines (not ones it imports) is in its __all__, and no other."""
    tree = ast.parse(Path(abi.__file__).read_text())
    imported = {(alias.asname or alias.name) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    public = {name for name in vars(abi) if not name.startswith("_")} - imported
    assert set(abi.__all__) == public


def notebook_core_imports() -> set[str]:
    """Names the notebooks and docs import from evtsim's core submodules (not plots/widgets)."""
    names = set()
    sources = [*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("docs/*.md"), ROOT / "README.md"]
    for path in sources:
        text = path.read_text()
        if path.suffix == ".ipynb":
            text = "\n".join("".join(cell["source"]) for cell in json.loads(text)["cells"])
        for module, imported in re.findall(r"from (evtsim\.[\w.]+) import ([\w, ]+)", text):
            if module.split(".")[1] not in ("plots", "widgets", "cli"):
                names.update(n.strip() for n in imported.split(","))
    return names


def test_what_the_notebooks_import_from_submodules_is_also_at_the_top_level():
    assert sorted(notebook_core_imports() - set(evtsim.__all__)) == []


def test_the_readme_python_examples_run_as_written(capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert blocks
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)
    assert "-ENOSYS 2-level" in capsys.readouterr().out

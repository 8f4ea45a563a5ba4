"""Regenerate tests/golden/ from the scenarios: <name>.txt and <name>.json for each of SCENARIOS.

Usage: python tools/update_golden.py [--check]

Default parameters, exactly what tests/test_golden.py compares against. Files of
scenarios that no longer exist are removed. With --check nothing is written: the script lists
what differs and exits 1 if anything does. Review ``git diff tests/golden`` before committing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from evtsim.scenarios import SCENARIOS, run_scenario  # noqa: E402
from test_golden import GOLDEN, rendered  # noqa: E402  (one definition of the files' contents)


def wanted() -> dict[Path, str]:
    """Every golden file's path and the text it should hold now."""
    files = {}
    for name in SCENARIOS:
        for suffix, text in rendered(run_scenario(name)).items():
            files[GOLDEN / f"{name}{suffix}"] = text
    return files


def _verb(path: Path, check: bool) -> str:
    if check:
        return "differs" if path.exists() else "missing"
    return "writing"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report differences, write nothing")
    args = parser.parse_args(argv)
    files = wanted()
    changed = [p for p, text in files.items() if not p.exists() or p.read_bytes() != text.encode()]
    stale = sorted(p for p in GOLDEN.glob("*") if p.suffix in (".txt", ".json") and p not in files)
    for path in changed:
        print(f"{_verb(path, args.check)}: {path.relative_to(ROOT)}")
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files[path].encode())
    for path in stale:
        print(f"{'stale' if args.check else 'removing'}: {path.relative_to(ROOT)}")
        if not args.check:
            path.unlink()
    if not changed and not stale:
        print(f"tests/golden is up to date ({len(files)} files)")
    return 1 if args.check and (changed or stale) else 0


if __name__ == "__main__":
    sys.exit(main())

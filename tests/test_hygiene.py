"""The committed notebooks are clean and the exported package is in sync with them."""
import filecmp, shutil, subprocess
from pathlib import Path
from conftest import ROOT, BIN, clean_env


def _copy_project(dst: Path):
    for name in ("nbs", "ytempire", "experiments"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", "_runs", ".ipynb_checkpoints"))
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")


def _diff(a: Path, b: Path) -> list[str]:
    out = []
    for p in sorted(a.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            q = b / p.relative_to(a)
            if not q.exists() or not filecmp.cmp(p, q, shallow=False): out.append(str(p.relative_to(a)))
    return out


def test_clean_and_export_change_nothing(tmp_path):
    _copy_project(tmp_path)
    for cmd in (["nbdev-clean"], ["nbdev-clean", "--fname", "experiments"], ["nbdev-export"]):
        r = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=tmp_path, env=clean_env(), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    changed = [f"nbs/{x}" for x in _diff(ROOT / "nbs", tmp_path / "nbs")] + \
              [f"experiments/{x}" for x in _diff(ROOT / "experiments", tmp_path / "experiments")] + \
              [f"ytempire/{x}" for x in _diff(tmp_path / "ytempire", ROOT / "ytempire")]
    assert not changed, f"run nbdev-clean / nbdev-export and commit: {changed}"


def test_parameters_cell_survives_cleaning():
    import json
    nb = json.loads((ROOT / "experiments" / "pipeline.ipynb").read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "duration" in "".join(tagged[0]["source"])


def test_package_has_no_undefined_names_or_dead_imports():
    "pyflakes over the exported package and the tests: catches imports that only a notebook's hidden test cell made."
    r = subprocess.run([str(BIN / "python"), "-m", "pyflakes", "ytempire", "tests"], cwd=ROOT, capture_output=True, text=True)
    problems = [l for l in r.stdout.splitlines() if "_modidx.py" not in l]
    assert not problems, "\n".join(problems)

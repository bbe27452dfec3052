"""Every notebook in nbs/ runs clean (its examples and tests) under nbdev-test: one pytest case per notebook."""
import subprocess
import pytest
from conftest import ROOT, BIN, clean_env

NOTEBOOKS = sorted((ROOT / "nbs").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb, tmp_path):
    r = subprocess.run([str(BIN / "nbdev-test"), str(nb)], cwd=ROOT, env=clean_env(TMPDIR=tmp_path),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]

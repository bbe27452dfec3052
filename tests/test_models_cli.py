"""`ytempire models ...` (45_registry, 43_drift) through the installed command: the drift JSON interface on the bundled
2017 vs 2020 US data, and one-line errors."""
import json
import pytest
from conftest import ROOT, clean_env, ytempire

TRENDING = ROOT / "data" / "trending"


def test_drift_2017_vs_2020_json(tmp_path):
    r = ytempire("models", "drift", "--reference", TRENDING / "2017_US.csv", "--current", TRENDING / "2020_US.csv",
                 "--out", tmp_path / "drift", "--json", "--no-model", cwd=tmp_path, env=clean_env(YTEMPIRE_TRACKING_WANDB="false"))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["drift"] is True
    for name, f in doc["features"].items():
        assert {"statistic", "drift"} <= set(f) and ("p_value" in f or "psi" in f), name
    assert doc["features"]["category"]["drift"] is True and doc["features"]["title_chars"]["drift"] is False
    assert "drift alert: category drifted" in r.stderr
    html = (tmp_path / "drift" / "drift.html").read_text()
    assert "<script" not in html and "category" in html
    assert "ytempire_drift_detected 1.0" in (tmp_path / "drift" / "drift.prom").read_text()


@pytest.mark.parametrize("args,expect", [
    (("drift", "--reference", "nope.csv", "--current", str(TRENDING / "2020_US.csv")), "does not exist"),
    (("promote", "engagement"), "engagement"),
    (("card", "no-such-model"), "no-such-model"),
])
def test_models_errors_are_one_line(tmp_path, args, expect):
    env = clean_env(YTEMPIRE_TRACKING_MLFLOW_URI=f"sqlite:///{tmp_path}/mlruns.db", YTEMPIRE_TRACKING_WANDB="false")
    r = ytempire("models", *args, cwd=tmp_path, env=env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], r.stderr

"""experiments/pipeline.ipynb runs under papermill, and a non-default parameter really takes effect."""
import json
import papermill as pm
from conftest import ROOT, clean_env


def test_pipeline_notebook_parameters(tmp_path, monkeypatch):
    for k, v in clean_env().items(): monkeypatch.setenv(k, v)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-value")
    out_nb = tmp_path / "pipeline-out.ipynb"
    pm.execute_notebook(str(ROOT / "experiments" / "pipeline.ipynb"), str(out_nb), cwd=str(tmp_path), kernel_name="python3",
                        parameters=dict(topic="Why the sky is blue", duration=15.0, aspect="1:1", out=str(tmp_path / "run")),
                        progress_bar=False)
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["brief"]["aspect"] == "1:1" and rec["brief"]["duration"] == 15.0
    from ytempire.pipeline import load_run
    _, parts = load_run(tmp_path / "run")
    assert (parts.video.width, parts.video.height) == (1080, 1080)
    text = out_nb.read_text()
    assert "injected-parameters" in text and "sk-test-secret-value" not in text

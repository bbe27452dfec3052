"""The A/B engine (32_abtest): posteriors against exact integration, the stopping rule and its simulated error rates,
Studio CSV reading, and `ytempire abtest analyze` (text, JSON interface, MLflow record, one-line errors)."""
import json, sqlite3
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from conftest import clean_env, ytempire
from ytempire.abtest import ABConfig, analyze_counts, analyze_means, read_ab_csv, simulate_regret, thompson_probabilities
from ytempire.config import InputError

CFG = ABConfig()          # the dataclass defaults, which equal settings.ini's [abtest]


def test_defaults_match_settings():
    assert ABConfig.from_settings() == CFG


def _exact(ia, ca, ib, cb, a0=1.0, b0=1.0):
    "P(B > A) and E[max(A, B) - A] for Beta posteriors, by numerical integration (no sampling)."
    A, B = stats.beta(a0 + ca, b0 + ia - ca), stats.beta(a0 + cb, b0 + ib - cb)
    lo, hi = min(A.ppf(1e-9), B.ppf(1e-9)), max(A.ppf(1 - 1e-9), B.ppf(1 - 1e-9))
    p = integrate.quad(lambda x: B.pdf(x) * A.cdf(x), lo, hi, limit=200)[0]
    # E[(B - A)+] = ∫ f_B(b) [b F_A(b) - E[A] F_A+(b)] db, where A+ = Beta(alpha_A + 1, beta_A)
    Aplus, mean_a = stats.beta(a0 + ca + 1, b0 + ia - ca), A.mean()
    loss_a = integrate.quad(lambda b: B.pdf(b) * (b * A.cdf(b) - mean_a * Aplus.cdf(b)), lo, hi, limit=200)[0]
    return p, loss_a


@pytest.mark.parametrize("counts", [(12000, 540, 11800, 600), (800, 30, 820, 41), (5000, 250, 5000, 250)])
def test_posterior_matches_exact_integration(counts):
    ia, ca, ib, cb = counts
    r = analyze_counts(pd.DataFrame({"variant": ["A", "B"], "impressions": [ia, ib], "clicks": [ca, cb]}))
    p, loss_a = _exact(ia, ca, ib, cb)
    a, b = r.variants
    assert abs(b.prob_beat_control - p) < 0.01, (b.prob_beat_control, p)
    assert abs(b.prob_best - p) < 0.01
    assert abs(a.expected_loss - loss_a) < 0.02 * max(loss_a, 1e-4) + 2e-5, (a.expected_loss, loss_a)
    post = stats.beta(1 + cb, 1 + ib - cb)
    assert abs(b.ctr_mean - post.mean()) < 3e-4 and abs(b.ctr_low - post.ppf(0.025)) < 5e-4 and abs(b.ctr_high - post.ppf(0.975)) < 5e-4


def test_same_data_same_figures():
    df = pd.DataFrame({"variant": ["A", "B", "C"], "impressions": [3000, 3000, 3000], "clicks": [150, 170, 160]})
    assert analyze_counts(df).to_json() == analyze_counts(df).to_json()


def test_decisions():
    big = lambda ca, cb: pd.DataFrame({"variant": ["A", "B"], "impressions": [200_000, 200_000], "clicks": [ca, cb]})
    r = analyze_counts(big(10_000, 11_000))
    assert (r.decision, r.winner) == ("ship", "B") and "B is best" in r.reason
    r = analyze_counts(big(11_000, 10_000))
    assert (r.decision, r.winner) == ("keep control", "A")
    r = analyze_counts(big(10_000, 10_005))
    assert (r.decision, r.winner) == ("keep control", None) and "no variant is clearly better" in r.reason
    small = pd.DataFrame({"variant": ["A", "B"], "impressions": [900, 5000], "clicks": [10, 400]})
    assert analyze_counts(small).decision == "continue" and "minimum sample" in analyze_counts(small).reason
    mid = pd.DataFrame({"variant": ["A", "B"], "impressions": [4000, 4000], "clicks": [200, 215]})
    assert analyze_counts(mid).decision == "continue" and analyze_counts(mid, final=True).decision == "inconclusive"
    # the control is a choice: with C as control, B is still the one to ship
    three = pd.DataFrame({"variant": ["A", "B", "C"], "impressions": [200_000] * 3, "clicks": [10_000, 11_000, 10_100]})
    r = analyze_counts(three, control="C")
    assert r.control == "C" and r.winner == "B" and r.table().loc["C", "lift"] == 0


def test_days_count_toward_the_minimum():
    days = pd.date_range("2026-11-01", periods=3)
    df = pd.DataFrame({"variant": ["A", "B"] * 3, "impressions": [100_000] * 6, "clicks": [5000, 6000] * 3,
                       "date": np.repeat(days, 2)})
    assert analyze_counts(df).decision == "continue"             # 3 days < min_days 7
    assert analyze_counts(df.drop(columns="date")).decision == "ship"


def test_studio_export(tmp_path):
    f = tmp_path / "Table data.csv"
    f.write_text("\ufeffContent,Video title,Video publish time,Impressions,Impressions click-through rate (%),Views\n"
                 "Total,,,\"36,100\",4.92,\"3,120\"\n"
                 "dQw4w9WgXcQ,Thumbnail A,\"Nov 3, 2026\",\"12,000\",4.50,\"1,010\"\n"
                 "dQw4w9WgXcQ,Thumbnail B,\"Nov 3, 2026\",\"11,800\",5.59%,\"1,140\"\n", encoding="utf-8")
    df = read_ab_csv(f)
    assert list(df.variant) == ["Thumbnail A", "Thumbnail B"]
    assert list(df.impressions) == [12000, 11800] and list(df.clicks) == [540, 660]      # 11,800 x 5.59 % = 659.6


def test_own_format_per_day(tmp_path):
    f = tmp_path / "daily.csv"
    f.write_text("date,variant,impressions,clicks\n2026-11-01,A,1000,50\n2026-11-01,B,1000,61\n2026-11-02,A,900,40\n2026-11-02,B,950,52\n")
    df = read_ab_csv(f)
    assert df.date.nunique() == 2
    r = analyze_counts(df)
    assert [(v.variant, v.impressions, v.clicks) for v in r.variants] == [("A", 1900, 90), ("B", 1950, 113)]


@pytest.mark.parametrize("text,expect", [
    ("name,views\nA,1\n", "needs columns"),
    ("variant,impressions,clicks\nA,100,5\n", "at least 2"),
    ("variant,impressions,clicks\nA,100,5\nB,100,500\n", "more clicks"),
    ("variant,impressions,clicks\nA,100,5\nB,lots,5\n", "is not a count"),
    ("variant,impressions,clicks\n", "no data rows"),
    ("date,variant,impressions,clicks\nsoon,A,100,5\n2026-11-01,B,100,5\n", "is not a date"),
])
def test_bad_csv(tmp_path, text, expect):
    f = tmp_path / "x.csv"
    f.write_text(text)
    with pytest.raises(InputError, match=expect):
        read_ab_csv(f)


def test_means_paired_and_not():
    rng = np.random.default_rng(1)
    units = rng.normal(6, 1.5, 30)
    a, b = units + rng.normal(0, 0.2, 30), units + 0.3 + rng.normal(0, 0.2, 30)
    for method in ("bootstrap", "normal"):
        paired = analyze_means({"v1": a, "v2": b}, paired=True, method=method)
        unpaired = analyze_means({"v1": a, "v2": b}, method=method)
        assert paired.variants[1].prob_best > 0.99 and unpaired.variants[1].prob_best < 0.9
        assert abs(paired.variants[1].ctr_mean - paired.variants[0].ctr_mean - 0.3) < 0.1
        assert paired.method == f"paired {method}"
    with pytest.raises(InputError, match="same length"):
        analyze_means({"v1": a, "v2": b[:-1]}, paired=True)


def test_thompson_regret_and_allocation():
    ctrs = [0.05, 0.052, 0.055, 0.06]
    eq = simulate_regret(ctrs, 112, 1000, 200, CFG, policy="equal", seed=3)
    ts = simulate_regret(ctrs, 112, 1000, 200, CFG, policy="thompson", seed=3)
    assert ts.mean() < 0.5 * eq.mean()
    p = thompson_probabilities([5000, 5000], [250, 300], CFG, np.random.default_rng(0))
    assert abs(p.sum() - 1) < 1e-9 and p[1] > 0.95


# ---------------------------------------------------------------- the command

STUDIO = ("Content,Video title,Video publish time,Impressions,Impressions click-through rate (%),Views\n"
          "Total,,,\"36,100\",4.92,\"3,120\"\n"
          "dQw4w9WgXcQ,Face + question,\"Nov 3, 2026\",\"12,000\",4.50,\"1,010\"\n"
          "dQw4w9WgXcQ,Big number,\"Nov 3, 2026\",\"11,800\",5.59,\"1,140\"\n"
          "dQw4w9WgXcQ,Before/after,\"Nov 3, 2026\",\"12,300\",4.53,970\n")


def test_cli_analyze_studio_csv_text_json_and_mlflow(tmp_path):
    (tmp_path / "studio.csv").write_text(STUDIO)
    env = clean_env(YTEMPIRE_TRACKING_WANDB="false")                 # MLflow is what is checked here
    r = ytempire("abtest", "analyze", "studio.csv", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    for name in ("Face + question (control)", "Big number", "Before/after"):
        assert name in r.stdout
    assert "P(best)" in r.stdout and "decision: ship (Big number)" in r.stdout and "tracked: MLflow run" in r.stdout
    r = ytempire("abtest", "analyze", "studio.csv", "--json", "--control", "Before/after", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert {"variants", "winner", "decision", "reason"} <= set(doc) and doc["winner"] == "Big number" and doc["decision"] == "ship"
    assert doc["control"] == "Before/after"
    for v in doc["variants"]:
        assert {"variant", "impressions", "clicks", "ctr_mean", "ctr_low", "ctr_high", "prob_best", "expected_loss"} <= set(v)
        assert v["ctr_low"] < v["ctr_mean"] < v["ctr_high"]
    assert [v["clicks"] for v in doc["variants"]] == [540, 660, 557]
    assert abs(sum(v["prob_best"] for v in doc["variants"]) - 1) < 1e-9
    # both analyses are MLflow runs of the ytempire-abtest experiment, with the decision, the metrics and the artifacts
    db = sqlite3.connect(tmp_path / "mlruns.db")
    runs = db.execute("select r.run_uuid, r.artifact_uri from runs r join experiments e on r.experiment_id = e.experiment_id "
                      "where e.name = 'ytempire-abtest'").fetchall()
    assert len(runs) == 2
    run_id, art = [x for x in runs if x[0] == doc["mlflow_run_id"]][0]
    tags = dict(db.execute("select key, value from tags where run_uuid = ?", (run_id,)).fetchall())
    assert tags["decision"] == "ship" and tags["winner"] == "Big number"
    metrics = dict(db.execute("select key, value from latest_metrics where run_uuid = ?", (run_id,)).fetchall())
    assert abs(metrics["Big number.prob_best"] - doc["variants"][1]["prob_best"]) < 1e-12
    folder = Path(art.replace("file://", ""))
    assert (folder / "posterior.png").stat().st_size > 10_000 and json.loads((folder / "abtest.json").read_text())["winner"] == "Big number"
    assert (folder / "inputs" / "studio.csv").read_text() == STUDIO


@pytest.mark.parametrize("args,expect", [
    (("missing.csv",), "does not exist"),
    (("bad.csv",), "needs columns"),
    (("studio.csv", "--control", "Nope"), "control 'Nope' is not a variant"),
    (("no-such-test",), "no-such-test"),
])
def test_cli_analyze_errors(tmp_path, args, expect):
    (tmp_path / "studio.csv").write_text(STUDIO)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    r = ytempire("abtest", "analyze", *args, cwd=tmp_path, env=clean_env(YTEMPIRE_TRACKING_ENABLED="false"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], r.stderr


def test_cli_rotation_plan_apply_fetch_analyze(tmp_path):
    "plan -> status --apply (thumbnails.set on the loopback YouTube API) -> status --fetch (Reporting API) -> analyze TEST_ID."
    from datetime import datetime, timedelta, timezone
    from PIL import Image
    from mockyoutube import REACH_HEADER, MockYouTube
    for name, color in (("a", (200, 40, 40)), ("b", (40, 40, 200))):
        Image.new("RGB", (1280, 720), color).save(tmp_path / f"{name}.png")
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=13)
    r = ytempire("abtest", "plan", "abcDEF12345", "--variant", "A=a.png", "--variant", "B=b.png", "--days", "14",
                 "--start", start.strftime("%Y-%m-%dT%H:%M"), "--test-id", "t1", cwd=tmp_path, env=clean_env())
    assert r.returncode == 0, r.stderr
    assert "test t1: thumbnail of video abcDEF12345, 2 variants" in r.stdout and (tmp_path / "abtests" / "t1.json").is_file()
    state = json.loads((tmp_path / "abtests" / "t1.json").read_text())
    assert len(state["slots"]) == 14 and sorted(s["variant"] for s in state["slots"]).count("A") == 7
    # the cron job ran at every slot start until yesterday (what --apply would have recorded)
    for s in state["slots"][:-1]:
        s.update(status="applied", applied_at=s["start"])
    (tmp_path / "abtests" / "t1.json").write_text(json.dumps(state))
    rng = np.random.default_rng(5)
    token = "ya29.mock-access-token-for-the-test-0123456789"
    with MockYouTube(tokens=(token,)) as m:
        env = clean_env(YOUTUBE_OAUTH_TOKEN=token,
                        YTEMPIRE_YOUTUBE_DATA_BASE_URL=m.url, YTEMPIRE_YOUTUBE_REPORTING_BASE_URL=m.url,
                        YTEMPIRE_TRACKING_WANDB="false")
        r = ytempire("abtest", "status", "t1", "--apply", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
        today_variant = state["slots"][-1]["variant"]
        assert f"slot 14: {today_variant} is live on abcDEF12345" in r.stdout and m.count("thumbnails.set") == 1
        assert m.thumbnails["abcDEF12345"][1] == (tmp_path / f"{today_variant.lower()}.png").read_bytes()
        for s in state["slots"][:-1]:
            day = datetime.fromisoformat(s["start"]).date()
            ctr = 0.05 if s["variant"] == "A" else 0.065
            m.add_report(day, REACH_HEADER + f"{day:%Y%m%d},UCmockchannel,abcDEF12345,on_demand,not_subscribed,US,"
                                             f"{int(rng.integers(4000, 4500))},{ctr}\n")
        r = ytempire("abtest", "status", "t1", "--fetch", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
    assert "impressions and clicks of 13 slot(s)" in r.stdout and "decision: ship (B)" in r.stdout, r.stdout
    saved = json.loads((tmp_path / "abtests" / "t1.json").read_text())
    assert len(saved["observations"]) == 13 and saved["analyses"][-1]["decision"] == "ship" and saved["analyses"][-1]["mlflow_run_id"]
    r = ytempire("abtest", "analyze", "t1", "--json", cwd=tmp_path, env=clean_env(YTEMPIRE_TRACKING_WANDB="false"))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["method"] == "slot-adjusted logistic" and doc["winner"] == "B"
    assert sum(v["impressions"] for v in doc["variants"]) == sum(o["impressions"] for o in saved["observations"])
    db = sqlite3.connect(tmp_path / "mlruns.db")
    assert db.execute("select count(*) from tags where key = 'test_id' and value = 't1'").fetchone()[0] == 2
    ledger = sqlite3.connect(tmp_path / "ledger.db")
    units = dict(ledger.execute("select model, sum(units) from calls where provider = 'youtube' group by model").fetchall())
    assert units.get("thumbnails.set") == 50
    for f in (tmp_path / "ledger.db", tmp_path / "mlruns.db", tmp_path / "abtests" / "t1.json"):
        assert token.encode() not in f.read_bytes(), f

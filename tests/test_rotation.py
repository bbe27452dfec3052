"""Rotation A/B tests (33_rotation): plan balance, input errors, state files, switching, attribution, slot-adjusted analysis."""
import dataclasses, errno, json, os
from datetime import datetime, timedelta, timezone
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from ytempire import abtest
from ytempire.config import DiskFullError, InputError, Settings, StageError
from ytempire.rotation import (Slot, analyze_slots, apply_due, attribute, due_slot, load_state, new_test,
                               plan_balance, plan_rotation, save_state, simulate_reach, state_path, status_text)

MONDAY = datetime(2026, 12, 7, tzinfo=timezone.utc)
CFG = dataclasses.replace(abtest.ABConfig.from_settings(Settings(env={})), draws=4000)   # settings.ini's rule


@pytest.fixture
def settings(tmp_path):
    st = Settings(env={})
    st.set("abtest", "state_dir", str(tmp_path / "abtests"))
    return st


class RecordingChannel:
    "Stands in for ytempire.youtube.YouTubeChannel: records the switches asked of it, fails while `fail` is set."
    def __init__(self): self.calls, self.fail = [], None

    def _call(self, *call):
        if self.fail: raise RuntimeError(self.fail)
        self.calls.append(call)
        return {"id": call[1]}

    def set_thumbnail(self, video_id, path): return self._call("thumbnail", video_id, str(path))
    def set_title(self, video_id, title): return self._call("title", video_id, title)


def variant(result, name):
    return next(v for v in result.variants if v.variant == name)


def thumbs(tmp_path, n=2):
    paths = {}
    for i, name in enumerate("ABCDEFGH"[:n]):
        p = tmp_path / f"{name}.png"
        Image.new("RGB", (1280, 720), (40 * i, 90, 200)).save(p)
        paths[name] = str(p)
    return paths


@pytest.mark.parametrize("k,days,hours", [(2, 14, 24), (3, 14, 24), (4, 14, 6), (5, 21, 24), (8, 14, 1), (2, 28, 12)])
def test_plan_balance(k, days, hours):
    names = list("ABCDEFGH"[:k])
    plan = plan_rotation(names, MONDAY, days, hours, seed=0)
    per_day = 24 // hours
    assert len(plan) == days * per_day // k * k
    assert all(s.end - s.start == timedelta(hours=hours) for s in plan) and plan[0].start == MONDAY
    assert all(a.end == b.start for a, b in zip(plan, plan[1:]))
    tab = plan_balance(plan)
    assert set(tab.slots) == {len(plan) // k}
    weekdays = tab[[c for c in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] if c in tab]]
    assert (weekdays.max() - weekdays.min()).max() <= 1, tab              # per weekday, variants differ by <= 1 slot
    spread = tab.mean_day.max() - tab.mean_day.min()
    assert spread <= (1.0 if per_day == 1 else 0.25), tab                # counterbalanced in time
    if per_day > 1:
        blocks = pd.crosstab([s.variant for s in plan], [s.start.hour for s in plan]).to_numpy()
        assert (blocks.max(0) - blocks.min(0)).max() <= 1
    assert plan_rotation(names, MONDAY, days, hours, seed=0) == plan    # seeded: the same plan again


def test_plan_beats_naive_order_on_a_trend():
    "Every variant's mean position equals the others' within a day; first-come-first-served would be k-1 blocks apart."
    plan = plan_rotation(list("ABCD"), MONDAY, 28, 24, seed=5)
    pos = pd.Series([s.index for s in plan]).groupby([s.variant for s in plan]).mean()
    assert pos.max() - pos.min() <= 1.0
    assert len({tuple(s.variant for s in plan_rotation(list("ABCD"), MONDAY, 28, seed=i)[:4]) for i in range(6)}) > 1


@pytest.mark.parametrize("variants,days,hours,start,msg", [
    (["A"], 14, 24, MONDAY, "at least 2 variants"),
    (list("ABCDEFGHI"), 14, 24, MONDAY, "at most 8"),
    (["A", "B", "A"], 14, 24, MONDAY, "used twice"),
    (["A", "B"], 14, 5, MONDAY, "does not divide 24"),
    (["A", "B"], 14, 0, MONDAY, "does not divide 24"),
    (list("ABC"), 2, 24, MONDAY, "at least 3 days"),
    (["A", "B"], 14, 24, MONDAY + timedelta(hours=6), "slot boundary"),
    (["A", "B"], 14, 8, MONDAY + timedelta(hours=4), "multiple of 8 h"),
])
def test_plan_refuses(variants, days, hours, start, msg):
    with pytest.raises(InputError, match=msg) as e:
        plan_rotation(variants, start, days, hours)
    assert "\n" not in str(e.value) and ";" in str(e.value)              # one line, with the fix


def test_new_test_validates_variants(tmp_path, settings):
    p = thumbs(tmp_path)
    st = new_test("thumbnail", "abcDEF12345", p, settings, now=datetime(2026, 12, 1, 14, 23))
    assert st.test_id == "abcDEF12345-thumbnail-202612011423" and st.control == "A"
    assert st.slots[0].start == datetime(2026, 12, 2, tzinfo=timezone.utc) and (st.days, st.slot_hours) == (14, 24)
    assert all(os.path.isabs(v) for v in st.variants.values())
    assert new_test("thumbnail", "abcDEF12345", p, settings, control="B", slot_hours=6, days=7,
                    now=datetime(2026, 12, 1, 14, 23)).slots[0].start == datetime(2026, 12, 1, 18, tzinfo=timezone.utc)
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 2_100_000)
    (tmp_path / "pic.gif").write_bytes(b"GIF89a" + b"\0" * 100)
    cases = [("thumbnail", {"A": p["A"], "B": str(big)}, "over YouTube's 2 MB"),
             ("thumbnail", {"A": p["A"], "B": str(tmp_path / "pic.gif")}, "not a PNG or JPEG"),
             ("thumbnail", {"A": p["A"], "B": str(tmp_path / "missing.png")}, "does not exist"),
             ("title", {"A": "ok", "B": "x" * 101}, "1 to 100"),
             ("title", {"A": "ok", "B": "   "}, "1 to 100"),
             ("title", {"A": "ok", "B": "a <b> title"}, "< or >"),
             ("title", {"A": "ok"}, "at least 2 variants"),
             ("video", {"A": "ok", "B": "ok2"}, "use thumbnail or title")]
    for kind, variants, msg in cases:
        with pytest.raises(InputError, match=msg): new_test(kind, "abcDEF12345", variants, settings)
    with pytest.raises(InputError, match="not one of the variants"):
        new_test("title", "abcDEF12345", {"A": "a", "B": "b"}, settings, control="C")
    with pytest.raises(InputError, match="does not divide 24"):
        new_test("title", "abcDEF12345", {"A": "a", "B": "b"}, settings, slot_hours=7)


def test_state_round_trip_and_atomic_save(tmp_path, settings, monkeypatch):
    st = new_test("title", "abcDEF12345", {"A": "Plain title", "B": "Hook title"}, settings, now=MONDAY)
    path = save_state(st, settings)
    assert path == state_path(st.test_id, settings) and path.parent == tmp_path / "abtests"
    assert load_state(st.test_id, settings) == st == load_state(path, settings)
    assert json.loads(path.read_text())["slots"][0]["status"] == "planned"
    before = path.read_bytes()
    st.slots[0].status = "applied"
    import ytempire.store
    def full_disk(*a): raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(ytempire.store.os, "replace", full_disk)
    with pytest.raises(DiskFullError): save_state(st, settings)
    monkeypatch.undo()
    assert path.read_bytes() == before                                   # the old state is intact
    assert [p.name for p in path.parent.iterdir()] == [path.name]        # and no temp file is left
    path.write_text(before.decode()[:150])
    with pytest.raises(InputError, match="is corrupt"): load_state(st.test_id, settings)
    path.write_text('{"test_id": "x"}')
    with pytest.raises(InputError, match="is corrupt"): load_state(path, settings)
    with pytest.raises(InputError, match="no A/B test state"): load_state("nope", settings)
    with pytest.raises(InputError, match="file name"): state_path("../etc/passwd", settings)


def test_apply_due_idempotent_and_failure(tmp_path, settings):
    st = new_test("thumbnail", "abcDEF12345", thumbs(tmp_path, 3), settings, now=MONDAY, days=6)
    ch = RecordingChannel()
    assert apply_due(st, ch, settings, MONDAY - timedelta(hours=1)) is None and due_slot(st, MONDAY - timedelta(1)) is None
    s0 = apply_due(st, ch, settings, MONDAY + timedelta(minutes=7))
    assert (s0.index, s0.status, s0.applied_at) == (0, "applied", MONDAY + timedelta(minutes=7))
    assert ch.calls == [("thumbnail", "abcDEF12345", st.variants[s0.variant])]
    assert apply_due(st, ch, settings, MONDAY + timedelta(hours=20)) is None and len(ch.calls) == 1   # idempotent
    assert load_state(st.test_id, settings).slots[0].status == "applied"
    # a slot whose variant differs from the one live: the channel fails
    j = next(s.index for s in st.slots if s.variant != s0.variant)
    for s in st.slots[1:j]: apply_due(st, ch, settings, s.start + timedelta(minutes=1))
    calls = len(ch.calls)
    ch.fail = "HttpError 503 backendError"
    t = st.slots[j].start + timedelta(minutes=3)
    with pytest.raises(StageError, match="503") as e: apply_due(st, ch, settings, t)
    assert "\n" not in str(e.value)
    saved = load_state(st.test_id, settings).slots[j]
    assert (saved.status, saved.applied_at, saved.error) == ("failed", None, "HttpError 503 backendError")
    ch.fail = None
    again = apply_due(st, ch, settings, t + timedelta(hours=1))            # retried at the next call
    assert again.status == "applied" and again.error == "" and len(ch.calls) == calls + 1
    # a missing file fails with an InputError that names it
    k = next(s.index for s in st.slots[j + 1:] if s.variant != st.slots[j].variant)
    os.unlink(st.variants[st.slots[k].variant])
    with pytest.raises(InputError, match="no longer exists"): apply_due(st, ch, settings, st.slots[k].start)
    assert st.slots[k].status == "failed"


def test_apply_due_title_skips_repeat(settings):
    st = new_test("title", "abcDEF12345", {"A": "One", "B": "Two"}, settings, now=MONDAY, days=14)
    ch = RecordingChannel()
    for s in st.slots: apply_due(st, ch, settings, s.start + timedelta(minutes=2))
    switches = 1 + sum(a.variant != b.variant for a, b in zip(st.slots, st.slots[1:]))
    assert len(ch.calls) == switches < len(st.slots) and all(c[0] == "title" for c in ch.calls)
    assert all(s.status == "applied" for s in st.slots)


def daily_state(settings, statuses):
    st = new_test("title", "abcDEF12345", {"A": "One", "B": "Two"}, settings, now=MONDAY, days=len(statuses))
    for s, status in zip(st.slots, statuses):
        s.status = status
        s.applied_at = s.start + timedelta(hours=1) if status == "applied" else s.start + timedelta(hours=9) if status == "late" else None
        if status == "late": s.status = "applied"
    return st


def test_attribute_drops_failed_slots(settings):
    st = daily_state(settings, ["applied", "failed", "applied", "planned", "late", "applied"])
    days = pd.date_range("2026-12-06", periods=8, freq="D", tz="UTC")           # one day before, one after the plan
    report = pd.DataFrame({"date": days, "video_id": "abcDEF12345", "impressions": np.arange(8) * 100 + 1000,
                           "clicks": np.arange(8) * 5 + 50, "ctr": 0.05})
    report = pd.concat([report, report.assign(video_id="otherVideo1", impressions=9, clicks=1)])
    obs = attribute(report, st)
    assert list(obs.columns) == ["date", "variant", "impressions", "clicks", "slot"]
    assert obs.slot.tolist() == [0, 2, 5] and obs.impressions.tolist() == [1100, 1300, 1600]
    assert obs.variant.tolist() == [st.slots[i].variant for i in (0, 2, 5)]
    assert obs.date.tolist() == [pd.Timestamp("2026-12-07"), pd.Timestamp("2026-12-09"), pd.Timestamp("2026-12-12")]
    assert obs.attrs["dropped"] == {"failed": 1, "not applied": 1, "late": 1}
    with pytest.raises(InputError, match="lacks the column"): attribute(report.drop(columns="clicks"), st)


def test_attribute_hourly_rows_and_refuses_daily_for_subdaily(settings):
    st = new_test("title", "abcDEF12345", {"A": "One", "B": "Two"}, settings, now=MONDAY, days=2, slot_hours=6)
    for s in st.slots: s.status, s.applied_at = "applied", s.start
    st.slots[3].status, st.slots[3].applied_at = "failed", None
    hours = pd.date_range(MONDAY, periods=48, freq="h")
    report = pd.DataFrame({"date": hours.normalize(), "hour": hours.hour, "video_id": "abcDEF12345",
                           "impressions": 10, "clicks": 1})
    obs = attribute(report, st)
    assert list(obs.columns) == ["date", "variant", "impressions", "clicks", "hour", "slot"]
    assert obs.slot.tolist() == [0, 1, 2, 4, 5, 6, 7] and set(obs.impressions) == {60} and set(obs.clicks) == {6}
    assert obs.hour.tolist() == [0, 6, 12, 0, 6, 12, 18]
    daily = report.groupby(["date", "video_id"], as_index=False)[["impressions", "clicks"]].sum()
    with pytest.raises(InputError, match="daily reach data cannot be split between 6-hour slots"):
        attribute(daily, st)
    st24 = daily_state(settings, ["applied"] * 2)
    assert attribute(report, st24).impressions.tolist() == [240, 240]      # hourly rows of daily slots: summed


@pytest.mark.parametrize("ctr_b,better", [(0.06, True), (0.04, False)])
def test_analyze_slots_recovers_lift_direction(settings, ctr_b, better):
    plan = plan_rotation(["A", "B"], MONDAY, 14, seed=1)
    obs = simulate_reach(plan, {"A": 0.05, "B": ctr_b}, np.random.default_rng(7), impressions=20000)
    r = analyze_slots(obs, settings, control="A", cfg=CFG, final=True)
    assert isinstance(r, abtest.ABResult) and r.method == "slot-adjusted logistic" and r.metric == "ctr"
    b = r.variants[1]
    assert b.variant == "B" and (b.prob_beat_control > 0.95 if better else b.prob_beat_control < 0.05)
    assert (0.05 < b.lift < 0.45) if better else (-0.4 < b.lift < -0.05)
    assert r.decision == ("ship" if better else "keep control") and r.winner == ("B" if better else "A")
    assert b.impressions == obs[obs.variant == "B"].impressions.sum() and b.clicks == obs[obs.variant == "B"].clicks.sum()
    assert r.draws.shape == (CFG.draws, 2)
    js = r.to_json()
    assert {"variants", "winner", "decision", "reason", "control", "method", "metric"} <= set(js)
    assert set(js["variants"][0]) >= {"variant", "impressions", "clicks", "ctr_mean", "ctr_low", "ctr_high", "prob_best",
                                      "expected_loss", "prob_beat_control", "lift"}
    json.dumps(js)


def test_analyze_slots_removes_age_confounding(settings):
    "B live the first week, A the second, no true difference: pooling favours B, the adjusted model does not."
    day = timedelta(days=1)
    plan = [Slot(index=i, start=MONDAY + i * day, end=MONDAY + (i + 1) * day, variant="B" if i < 7 else "A")
            for i in range(14)]
    cfg = dataclasses.replace(CFG, draws=2000)
    pooled, adjusted = [], []
    for seed in range(10):
        obs = simulate_reach(plan, {"A": 0.05, "B": 0.05}, np.random.default_rng(seed), impressions=40000, noise=0.0)
        pooled.append(variant(abtest.analyze_counts(obs[["variant", "impressions", "clicks"]], "A", cfg), "B"))
        adjusted.append(variant(analyze_slots(obs, settings, control="A", cfg=cfg), "B"))
    assert min(v.lift for v in pooled) > 0.08 and min(v.prob_beat_control for v in pooled) > 0.99
    assert abs(np.mean([v.lift for v in adjusted])) < 0.04                 # unbiased (the model's sd is about 0.06)
    assert sum(0.025 < v.prob_beat_control < 0.975 for v in adjusted) >= 8


def test_analyze_slots_hour_blocks_min_days_and_fallback(settings):
    plan = plan_rotation(list("ABC"), MONDAY, 9, slot_hours=8, seed=0)
    obs = simulate_reach(plan, {"A": 0.05, "B": 0.05, "C": 0.05}, np.random.default_rng(2))
    r = analyze_slots(obs, settings, cfg=CFG)
    assert "hour block" in r.reason and [v.variant for v in r.variants][0] == obs.variant.iloc[0]
    short = obs[obs.date < obs.date.min() + pd.Timedelta(days=3)]
    early = analyze_slots(short, settings, cfg=CFG)
    assert early.decision == "continue" and "3 of 7 days" in early.reason
    few = analyze_slots(obs.iloc[:4], settings, cfg=CFG)
    assert few.method == "beta-binomial" and "too few slots" in few.reason and few.decision == "continue"
    with pytest.raises(InputError, match="no observations"): analyze_slots(obs, settings, control="Z", cfg=CFG)
    with pytest.raises(InputError, match="lacks the column"): analyze_slots(obs.drop(columns="clicks"), settings, cfg=CFG)
    with pytest.raises(InputError, match="no hour"): analyze_slots(obs.assign(hour=obs.hour.where(obs.index > 0)), settings, cfg=CFG)
    daily = analyze_slots(obs.assign(hour=None), settings, cfg=CFG)         # an empty hour column: daily rows
    assert "hour block" not in daily.reason


def test_status_text(settings):
    st = daily_state(settings, ["applied", "failed", "applied", "planned", "planned", "planned", "planned", "planned"])
    st.observations = [{"date": "2026-12-07", "variant": st.slots[0].variant, "impressions": 1000, "clicks": 50,
                        "source": "reach"}]
    txt = status_text(st, MONDAY + timedelta(days=4, hours=5))
    assert "2 applied, 1 failed, 1 missed, 3 to come" in txt
    assert f"live now: {st.slots[4].variant} (slot 4, planned)" in txt
    assert f"next switch: 2026-12-12 00:00 UTC to {st.slots[5].variant}" in txt
    assert "observed: 1 days" in txt and "1000 impressions 50 clicks (5.00%)" in txt and "not analysed yet" in txt
    assert "the plan is finished" in status_text(st, MONDAY + timedelta(days=30))
    obs = simulate_reach(st.slots, {"A": 0.05, "B": 0.05}, np.random.default_rng(0))
    r = analyze_slots(obs, settings, cfg=CFG)
    assert f"decision: {r.decision}" in status_text(st, MONDAY, r)


def test_rotation_end_to_end_with_youtube_channel(tmp_path):
    "Plan, switch with the real YouTubeChannel (official client) on the loopback YouTube server, fetch reach, analyse."
    from mockyoutube import REACH_HEADER, MockYouTube
    from ytempire.ledger import Ledger
    from ytempire.youtube import ChannelError, YouTubeChannel
    video = "abcDEF12345"
    st = Settings(env={"YOUTUBE_OAUTH_TOKEN": "mock-access-token"},
                  overrides={"youtube.timeout": "3", "retry.max_wait": "1", "paths.ledger": str(tmp_path / "ledger.db"),
                             "abtest.state_dir": str(tmp_path / "abtests")})
    start = datetime(2026, 11, 9, tzinfo=timezone.utc)                    # a Monday
    state = new_test("thumbnail", video, thumbs(tmp_path, 2), st, start=start, days=8, now=start - timedelta(hours=3))
    switches = [s.index for s in state.slots if s.index == 0 or s.variant != state.slots[s.index - 1].variant]
    fail_at = switches[1]                                                  # the second real switch meets a spent quota
    n_ok = switches.index(fail_at)
    actions = [("ok",)] * n_ok + [("403", "quotaExceeded")]
    with MockYouTube(channel_actions={"thumbnails.set": actions}) as m:
        ch = YouTubeChannel(st, ledger=Ledger(tmp_path / "ledger.db"), data_base_url=m.url, reporting_base_url=m.url)
        for s in state.slots:
            t = s.start + timedelta(minutes=5)
            if s.index == fail_at:
                with pytest.raises(ChannelError, match="quotaExceeded"): apply_due(state, ch, st, t)
                assert load_state(state.test_id, st).slots[s.index].status == "failed"
                assert Image.open(__import__("io").BytesIO(m.thumbnails[video][1])).getpixel((0, 0)) == \
                    Image.open(state.variants[state.slots[s.index - 1].variant]).getpixel((0, 0))   # the old one stays live
            else:
                apply_due(state, ch, st, t)
                assert apply_due(state, ch, st, t + timedelta(hours=2)) is None
        resend = state.slots[fail_at + 1].variant == state.slots[fail_at].variant   # the failed variant is set next slot
        assert m.count("thumbnails.set") == len(switches) + resend
        rng = np.random.default_rng(0)
        for s in state.slots:
            day = s.start.date()
            ctr = 0.05 if s.variant == "A" else 0.06
            m.add_report(day, REACH_HEADER + f"{day:%Y%m%d},UCmockchannel,{video},on_demand,not_subscribed,US,"
                                             f"{int(rng.integers(3000, 3500))},{ctr}\n")
        report = ch.reach_report(state.slots[0].start.date(), state.slots[-1].start.date(), [video])
    obs = attribute(report, state)
    bad = sum(s.status != "applied" for s in state.slots)
    assert bad >= 1 and len(obs) == len(state.slots) - bad and obs.attrs["dropped"].get("failed", 0) >= 1
    assert fail_at not in set(obs.slot)
    r = analyze_slots(obs, st, control="A", cfg=CFG)
    assert r.method == "slot-adjusted logistic" and variant(r, "B").lift > 0
    state.observations = [{**o, "date": o["date"].strftime("%Y-%m-%d"), "source": "youtube-reporting"}
                          for o in obs.to_dict("records")]
    save_state(state, st)
    again = analyze_slots(pd.DataFrame(load_state(state.test_id, st).observations), st, control="A", cfg=CFG)
    assert again.to_json() == r.to_json()                                  # observations survive the state file

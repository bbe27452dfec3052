"""Text providers over the unmodified openai / anthropic SDKs, pointed at loopback servers that speak their wire
formats (tests/mockapi.py): success with token usage into the ledger, 429 + Retry-After, 500, timeouts, malformed
bodies, schema-invalid output (repair round, then fallback), quotas and budgets that stop a request before it leaves."""
import time
import pytest
from mockapi import MockAPI
from ytempire.config import Settings, InputError
from ytempire.ledger import Ledger, Metrics, Guard
from ytempire.schemas import Brief, TrendReport, CostRecord
from ytempire.scripts import write_script, check_script_inputs, OfflineTemplateWriter, DRAFT_SCHEMA, AnthropicWriter

BRIEF = Brief(topic="How coffee roasting works", duration=30)


def payload(brief=BRIEF, **over):
    "A draft that meets the template's rules: the offline writer's script in the draft schema."
    s = OfflineTemplateWriter(Settings(env={})).write(brief, TrendReport())
    d = {"title": s.title, "description": s.description, "tags": s.tags, "hashtags": s.hashtags,
         "scenes": [{"kind": x.kind, "narration": x.narration, "on_screen": x.on_screen, "visual": x.visual} for x in s.scenes]}
    d.update(over)
    return d


def settings(tmp_path, m=None, env=None, **over):
    o = {"paths.ledger": str(tmp_path / "ledger.db"), "retry.attempts": 3, "retry.max_seconds": 20, "text.timeout": 5}
    if m is not None: o.update({"text.openai_base_url": m.openai_base, "text.anthropic_base_url": m.anthropic_base})
    o.update({k.replace("__", "."): v for k, v in over.items()})
    return Settings(env={"OPENAI_API_KEY": "sk-test-openai-key", **(env or {})}, overrides=o)


def run(st, brief=BRIEF, guard=None):
    led = Ledger(st.get("paths", "ledger"))
    script = write_script(brief, TrendReport(), st, ledger=led, run_id="t", guard=guard)
    return script, led.calls(run_id="t")


def test_openai_success_usage_into_ledger(tmp_path):
    with MockAPI([("ok", payload(), {"prompt_tokens": 1200, "completion_tokens": 800})]) as m:
        s, calls = run(settings(tmp_path, m))
    assert (s.provider, s.model, s.fallbacks) == ("openai", "gpt-4.1", [])
    row = calls.iloc[0]
    assert (row.provider, row.outcome, row.units, row.unit) == ("openai", "ok", 2000, "tokens")
    assert row.cost_usd == pytest.approx((1200 * 2.0 + 800 * 8.0) / 1e6)
    req = m.requests[0]
    assert req["headers"]["authorization"] == "Bearer sk-test-openai-key"
    rf = req["json"]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True and rf["json_schema"]["schema"] == DRAFT_SCHEMA
    assert req["json"]["model"] == "gpt-4.1" and req["json"]["max_completion_tokens"] >= 800


def test_anthropic_forced_tool(tmp_path):
    st = settings(tmp_path, None, env={"ANTHROPIC_API_KEY": "sk-ant-test-key"}, text__providers="anthropic")
    with MockAPI([("ok", payload(), {"input_tokens": 1000, "output_tokens": 600})]) as m:
        st.set("text", "anthropic_base_url", m.anthropic_base)
        s, calls = run(st)
    body = m.requests[0]["json"]
    assert s.provider == "anthropic" and body["tools"][0]["input_schema"] == DRAFT_SCHEMA
    assert body["tool_choice"] == {"type": "tool", "name": AnthropicWriter.TOOL}
    assert calls.iloc[0].units == 1600 and calls.iloc[0].cost_usd == pytest.approx((1000 * 3 + 600 * 15) / 1e6)


def test_local_openai_compatible_server_is_free(tmp_path):
    with MockAPI([("ok", payload())]) as m:
        st = Settings(env={}, overrides={"paths.ledger": str(tmp_path / "l.db"), "text.local_base_url": m.openai_base,
                                         "text.local_draft": "whole"})      # the whole-script request (scene mode: tests/test_serving.py)
        s, calls = run(st)
    assert s.provider == "local" and "max_tokens" in m.requests[0]["json"]
    assert calls.iloc[0].cost_usd == 0 and calls.iloc[0].units > 0


def test_429_retry_after_then_fallback(tmp_path):
    with MockAPI(default=("429", 1)) as m:
        t0 = time.monotonic()
        s, calls = run(settings(tmp_path, m))
        elapsed = time.monotonic() - t0
    assert s.provider == "offline-template" and m.count() == 3
    assert [(f.failed, f.served_by) for f in s.fallbacks] == [("openai", "offline-template")]
    assert s.fallbacks[0].reason.startswith("rate_limited")
    assert list(calls.outcome) == ["rate_limited"] * 3 + ["ok"]
    gaps = [b["time"] - a["time"] for a, b in zip(m.requests, m.requests[1:])]
    assert all(g >= 0.95 for g in gaps), gaps            # Retry-After: 1 honoured between attempts
    assert elapsed < 10, elapsed


def test_429_then_success(tmp_path):
    with MockAPI([("429", 1), ("ok", payload())]) as m:
        s, calls = run(settings(tmp_path, m))
    assert s.provider == "openai" and list(calls.outcome) == ["rate_limited", "ok"]


def test_500_retried_then_fallback(tmp_path):
    with MockAPI(default=("500",)) as m:
        s, calls = run(settings(tmp_path, m))
    assert m.count() == 3 and s.fallbacks[0].reason.startswith("server_error")
    assert list(calls.outcome[:3]) == ["server_error"] * 3


def test_timeout_bounded_then_fallback(tmp_path):
    with MockAPI(default=("timeout", 10)) as m:
        t0 = time.monotonic()
        s, calls = run(settings(tmp_path, m, text__timeout=1, retry__attempts=2))
        elapsed = time.monotonic() - t0
    assert s.provider == "offline-template" and s.fallbacks[0].reason.startswith("timeout")
    assert list(calls.outcome[:2]) == ["timeout", "timeout"] and elapsed < 8


def test_malformed_body_then_fallback(tmp_path):
    with MockAPI(default=("malformed",)) as m:
        s, calls = run(settings(tmp_path, m))
    assert s.fallbacks[0].reason.startswith("malformed") and calls.outcome[0] == "malformed"


def test_schema_invalid_repaired(tmp_path):
    with MockAPI([("text", '{"title": "Coffee"}'), ("ok", payload())]) as m:
        s, calls = run(settings(tmp_path, m))
    assert s.provider == "openai" and m.count() == 2
    repair = m.requests[1]["json"]["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"title": "Coffee"}'}
    assert "scenes: Field required" in repair[-1]["content"] and list(calls.outcome) == ["ok", "ok"]


def test_rule_breaking_output_repaired_in_anthropic_conversation(tmp_path):
    st = settings(tmp_path, None, env={"ANTHROPIC_API_KEY": "sk-ant-test-key"}, text__providers="anthropic, offline")
    short = payload(scenes=payload()["scenes"][:2])
    with MockAPI(default=("ok", short)) as m:
        st.set("text", "anthropic_base_url", m.anthropic_base)
        s, calls = run(st)
    assert m.count() == 2 and s.provider == "offline-template"
    assert "invalid after a repair round" in s.fallbacks[0].reason
    last = m.requests[1]["json"]["messages"][-1]["content"][0]
    assert last["type"] == "tool_result" and last["is_error"] is True and "2 scenes" in last["content"]


def test_invalid_key_not_retried_and_not_echoed(tmp_path):
    err = {"error": {"message": "Incorrect API key provided: sk-test-openai-key", "type": "invalid_request_error", "code": "invalid_api_key"}}
    with MockAPI(default=("status", 401, err, {})) as m:
        s, calls = run(settings(tmp_path, m))
    assert m.count() == 1 and s.provider == "offline-template" and "Incorrect API key" in s.fallbacks[0].reason
    assert "sk-test-openai-key" not in s.fallbacks[0].reason and "sk-test-openai-key" not in calls.error[0]


def test_quota_used_up_sends_no_request(tmp_path):
    st = settings(tmp_path)
    Ledger(st.get("paths", "ledger")).record(CostRecord(provider="openai", capability="text", units=99_500, unit="tokens"), "earlier")
    with MockAPI([("ok", payload())]) as m:
        st.set("text", "openai_base_url", m.openai_base)
        s, calls = run(st)
    assert m.count() == 0 and s.provider == "offline-template"
    assert s.fallbacks[0].reason.startswith("quota: openai daily quota: 99,500 of 100,000 tokens")
    assert calls.outcome[0] == "quota" and calls.units[0] == 0


def test_budget_too_small_sends_no_request(tmp_path):
    with MockAPI([("ok", payload())]) as m:
        s, calls = run(settings(tmp_path, m, run__budget=0.0001))
        assert m.count() == 0 and s.fallbacks[0].reason.startswith("budget: run budget") and calls.outcome[0] == "budget"
        only_paid = settings(tmp_path, m, run__budget=0.0001, text__providers="openai")
        with pytest.raises(InputError, match=r"budget \$0.0001 is too small for one openai call"):
            check_script_inputs(BRIEF, only_paid)
    assert m.count() == 0


def test_alert_at_80_percent_of_quota(tmp_path):
    st = settings(tmp_path)
    Ledger(st.get("paths", "ledger")).record(CostRecord(provider="openai", capability="text", units=79_000, unit="tokens"), "earlier")
    metrics = Metrics()
    with MockAPI([("ok", payload(), {"prompt_tokens": 1500, "completion_tokens": 500})]) as m:
        st.set("text", "openai_base_url", m.openai_base)
        s, _ = run(st, guard=Guard(Ledger(st.get("paths", "ledger")), st, "t", metrics=metrics))
    assert s.provider == "openai" and any("81% of its daily quota" in w for w in s.warnings), s.warnings
    assert metrics.alerts.labels("quota", "openai")._value.get() == 1


def test_auto_chain_follows_keys(tmp_path):
    from ytempire.scripts import provider_chain
    assert provider_chain(BRIEF, Settings(env={})) == ["offline"]
    assert provider_chain(BRIEF, Settings(env={"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k"})) == ["openai", "anthropic", "offline"]
    with pytest.raises(InputError, match="no API key; set ANTHROPIC_API_KEY"):
        check_script_inputs(BRIEF, Settings(env={}, overrides={"text.providers": "anthropic, offline"}))


def test_language_only_a_cloud_writer_supports(tmp_path):
    "Swahili: the offline writer has no phrase bank, so OpenAI must serve; without a cloud writer it is a one-line input error."
    sw = Brief(topic="Jinsi kahawa inavyochomwa", language="sw", duration=30)
    with MockAPI([("ok", payload(brief=BRIEF))]) as m:
        st = settings(tmp_path, m)
        check_script_inputs(sw, st)
        led = Ledger(st.get("paths", "ledger"))
        s = write_script(sw, TrendReport(), st, ledger=led, run_id="sw")
    assert s.provider == "openai" and s.language == "sw" and "in Swahili" in m.requests[0]["json"]["messages"][0]["content"]
    with pytest.raises(InputError, match="not supported by the offline writer"):
        check_script_inputs(sw, Settings(env={}))


def test_quality_gate_rewrites_with_feedback(tmp_path):
    from ytempire.quality import write_gated_script
    with MockAPI(default=judge_or_draft(payload())) as m:
        st = settings(tmp_path, m, quality__threshold=9.99, quality__regenerate=1)
        s = write_gated_script(BRIEF, TrendReport(), st, ledger=Ledger(st.get("paths", "ledger")), run_id="g")
    kinds = [r["json"]["response_format"]["json_schema"]["name"] for r in m.requests]
    assert kinds == ["video_script", "script_review", "video_script"] and s.provider == "openai"   # one rubric for two equal drafts
    first, second = (r["json"]["messages"][-1]["content"] for r in m.requests if r["json"]["response_format"]["json_schema"]["name"] == "video_script")
    assert "fell short" not in first and "A previous draft fell short of the channel's quality bar" in second
    assert "lists keywords that are not about roasting" in second                # the judge's finding is part of the feedback
    assert any("rewritten 1 time(s)" in w for w in s.warnings)


# ---------------------------------------------------------------- the LLM judge of the quality score's coherence part

JUDGEMENT = {"on_topic": 4, "coherence": 6, "off_topic": [3], "comment": "Sentence 3 lists keywords that are not about roasting."}


def judge_or_draft(draft, judgement=JUDGEMENT, judge_action=None):
    "A MockAPI action: the rubric (or `judge_action`) for the judge's requests, the draft for the writer's."
    def act(req):
        rf = ((req.get("response_format") or {}).get("json_schema") or {}).get("name")
        tool = (req.get("tool_choice") or {}).get("name")
        if "script_review" in (rf, tool) or tool == "submit_script_review": return judge_action or ("ok", judgement)
        return ("ok", draft)
    return act


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_llm_judge_rubric_in_the_coherence_part(tmp_path, provider):
    from ytempire.languages import split_sentences
    from ytempire.quality import Judgement, score_script
    from ytempire.scripts import strict_schema
    env = {"ANTHROPIC_API_KEY": "sk-ant-test-key"} if provider == "anthropic" else {}
    with MockAPI(default=judge_or_draft(payload())) as m:
        st = settings(tmp_path, m, env=env, text__providers=f"{provider}, offline")
        led = Ledger(st.get("paths", "ledger"))
        script = write_script(BRIEF, TrendReport(), st, ledger=led, run_id="judge")
        q = score_script(script, BRIEF, st, ledger=led, run_id="judge")
        again = score_script(script, BRIEF, st, ledger=led, run_id="judge")     # the gate and the stage ask once
        assert m.count() == 2
    calls = led.calls(run_id="judge")
    assert list(calls.capability) == ["text", "quality"] and set(calls.provider) == {provider} and calls.outcome.eq("ok").all()
    assert calls.units.iloc[1] > 0
    body = m.requests[1]["json"]
    if provider == "openai":
        rf = body["response_format"]["json_schema"]
        assert rf["name"] == "script_review" and rf["strict"] is True and rf["schema"] == strict_schema(Judgement.model_json_schema())
        prompt = body["messages"][1]["content"]
    else:
        assert body["tool_choice"] == {"type": "tool", "name": "submit_script_review"}
        prompt = body["messages"][0]["content"]
    sentences = [x for sc in script.scenes for x in split_sentences(sc.narration, "en")]
    assert "Topic: How coffee roasting works" in prompt and f"3. {sentences[2]}" in prompt
    assert (q.coherence.parts["judge_on_topic"], q.coherence.parts["judge_coherence"]) == (4.0, 6.0)
    assert any(r.startswith("the LLM judge finds sentence 3 off-topic:") and sentences[2] in r for r in q.reasons), q.reasons
    assert any("lists keywords that are not about roasting" in r for r in q.reasons)
    assert "on_topic" in q.coherence.parts and again == q


def test_llm_judge_failure_leaves_the_embedding_part(tmp_path):
    from ytempire.quality import score_script
    with MockAPI(default=judge_or_draft(payload(), judge_action=("500",))) as m:
        st = settings(tmp_path, m, retry__attempts=2)
        led = Ledger(st.get("paths", "ledger"))
        script = write_script(BRIEF, TrendReport(), st, ledger=led, run_id="nojudge")
        q = score_script(script.model_copy(update={"title": "another draft"}), BRIEF, st, ledger=led, run_id="nojudge")
    calls = led.calls(run_id="nojudge")
    assert list(calls.outcome[calls.capability.eq("quality")]) == ["server_error", "server_error"]
    assert set(q.coherence.parts) == {"on_topic"} and q.passed in (True, False)
    off = score_script(script, BRIEF, settings(tmp_path, None, quality__judge="off"))
    assert set(off.coherence.parts) == {"on_topic"}


def test_judge_skips_a_provider_that_failed_the_script(tmp_path):
    "Rate-limited for the script, openai is not asked again for the rubric: the offline script is scored on embeddings only."
    from ytempire.quality import score_script
    with MockAPI(default=("429", 1)) as m:
        st = settings(tmp_path, m, retry__attempts=2)
        led = Ledger(st.get("paths", "ledger"))
        script = write_script(BRIEF, TrendReport(), st, ledger=led, run_id="skip")
        q = score_script(script, BRIEF, st, ledger=led, run_id="skip")
        assert m.count() == 2
    assert script.provider == "offline-template" and set(q.coherence.parts) == {"on_topic"}
    assert list(led.calls(run_id="skip").capability) == ["text", "text", "text"]

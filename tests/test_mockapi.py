"""The loopback MockAPI speaks the OpenAI and Anthropic wire formats well enough for the unmodified official SDKs."""
import json, math, time
import anthropic, openai, pytest
from mockapi import MockAPI

MSGS = [{"role": "user", "content": "Give me a title as JSON."}]
TOOLS = [{"name": "first_tool", "description": "unused", "input_schema": {"type": "object", "properties": {}}},
         {"name": "emit_title", "description": "Return the title.",
          "input_schema": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}]


def oa(m, timeout=2, max_retries=0):
    return openai.OpenAI(api_key="sk-test", base_url=m.openai_base, max_retries=max_retries, timeout=timeout)


def an(m, timeout=2, max_retries=0):
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=m.anthropic_base, max_retries=max_retries, timeout=timeout)


def oa_call(c, **kw):
    return c.chat.completions.create(model="gpt-test", messages=MSGS, **kw)


def an_call(c, **kw):
    return c.messages.create(model="claude-test", max_tokens=256, messages=MSGS, **kw)


def test_binds_loopback_only_and_urls():
    with MockAPI() as m:
        assert m._server.server_address[0] == "127.0.0.1"
        assert m.url == f"http://127.0.0.1:{m.port}" and m.openai_base == m.url + "/v1" and m.anthropic_base == m.url
        assert m.running
    assert not m.running


def test_openai_ok_content_and_usage():
    with MockAPI([("ok", {"title": "Coffee"}, {"prompt_tokens": 1000, "completion_tokens": 500})]) as m:
        r = oa_call(oa(m))
        assert json.loads(r.choices[0].message.content) == {"title": "Coffee"}
        assert r.object == "chat.completion" and r.model == "gpt-test" and r.choices[0].finish_reason == "stop"
        assert r.choices[0].message.role == "assistant"
        assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (1000, 500, 1500)
        # the default action answers {"ok": true} with deterministic token estimates
        r2 = oa_call(oa(m))
        assert json.loads(r2.choices[0].message.content) == {"ok": True}
        assert r2.usage.completion_tokens == math.ceil(len(r2.choices[0].message.content) / 4)
        assert r2.usage.prompt_tokens == math.ceil(len(json.dumps(MSGS)) / 4)


def test_openai_json_schema_response_format():
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"],
              "additionalProperties": False}
    with MockAPI([("ok", {"title": "Roasting"})]) as m:
        r = oa_call(oa(m), response_format={"type": "json_schema",
                                            "json_schema": {"name": "title", "schema": schema, "strict": True}})
        assert json.loads(r.choices[0].message.content) == {"title": "Roasting"}
        assert m.requests[0]["json"]["response_format"]["json_schema"]["name"] == "title"


def test_anthropic_ok_text_and_usage():
    with MockAPI([("ok", {"title": "Beans"}, {"prompt_tokens": 1000, "completion_tokens": 500})]) as m:
        r = an_call(an(m))
        assert r.type == "message" and r.role == "assistant" and r.model == "claude-test" and r.id.startswith("msg_")
        assert r.content[0].type == "text" and json.loads(r.content[0].text) == {"title": "Beans"}
        assert r.stop_reason == "end_turn"
        assert (r.usage.input_tokens, r.usage.output_tokens) == (1000, 500)


def test_anthropic_forced_tool_use():
    payload = {"title": "Why beans crack"}
    with MockAPI([("ok", payload), ("ok", payload)]) as m:
        r = an_call(an(m), tools=TOOLS, tool_choice={"type": "tool", "name": "emit_title"})
        block = r.content[0]
        assert block.type == "tool_use" and block.name == "emit_title" and block.id.startswith("toolu_")
        assert block.input == payload and r.stop_reason == "tool_use"
        assert r.usage.output_tokens == math.ceil(len(json.dumps(payload)) / 4)
        r = an_call(an(m), tools=TOOLS)  # no tool_choice: the first tool
        assert r.content[0].name == "first_tool" and r.content[0].input == payload


def test_text_action_raw_content():
    with MockAPI([("text", '{"title": '), ("text", '{"title": 5}'), ("text", "not json")]) as m:
        assert oa_call(oa(m)).choices[0].message.content == '{"title": '
        r = an_call(an(m), tools=TOOLS, tool_choice={"type": "tool", "name": "emit_title"})
        assert r.content[0].type == "tool_use" and r.content[0].input == {"title": 5}
        r = an_call(an(m), tools=TOOLS, tool_choice={"type": "tool", "name": "emit_title"})
        assert r.content[0].type == "text" and r.content[0].text == "not json" and r.stop_reason == "end_turn"


def test_actions_in_order_then_default_and_callables():
    seen = []
    def echo(req):
        seen.append(req["model"])
        return ("ok", {"model": req["model"]})
    with MockAPI([("500",), echo], default=("ok", {"d": 1})) as m:
        c = oa(m)
        with pytest.raises(openai.InternalServerError): oa_call(c)
        assert json.loads(oa_call(c).choices[0].message.content) == {"model": "gpt-test"}
        assert json.loads(oa_call(c).choices[0].message.content) == {"d": 1}
        assert seen == ["gpt-test"] and m.count() == 3 and m.count("/chat/completions") == 3


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_429_rate_limit(api):
    with MockAPI([("429", 1)]) as m:
        sdk, call = (openai, lambda: oa_call(oa(m))) if api == "openai" else (anthropic, lambda: an_call(an(m)))
        with pytest.raises(sdk.RateLimitError) as ei:
            call()
        e = ei.value
        assert e.status_code == 429 and e.response.headers["retry-after"] == "1"
        assert e.request_id and e.request_id.startswith("req_")
        if api == "openai": assert e.body["code"] == "rate_limit_exceeded" and e.code == "rate_limit_exceeded"
        else: assert e.body["error"]["type"] == "rate_limit_error"


def test_openai_retries_honour_retry_after():
    with MockAPI([("429", 1), ("ok", {"x": 1})]) as m:
        t = time.monotonic()
        r = oa_call(oa(m, max_retries=1))
        assert json.loads(r.choices[0].message.content) == {"x": 1}
        assert m.count() == 2 and 0.9 < time.monotonic() - t < 3
        assert m.requests[1]["headers"]["x-stainless-retry-count"] == "1"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_500_and_529(api):
    with MockAPI([("500",), ("529",)]) as m:
        sdk, call = (openai, lambda: oa_call(oa(m))) if api == "openai" else (anthropic, lambda: an_call(an(m)))
        with pytest.raises(sdk.InternalServerError) as ei: call()
        assert ei.value.status_code == 500
        with pytest.raises(sdk.InternalServerError) as ei: call()
        assert ei.value.status_code == 529
        if api == "anthropic":
            assert type(ei.value) is anthropic.OverloadedError and ei.value.body["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_timeout(api):
    m = MockAPI([("timeout", 5)])
    with m:
        sdk, call = ((openai, lambda: oa_call(oa(m, timeout=1))) if api == "openai"
                     else (anthropic, lambda: an_call(an(m, timeout=1))))
        t = time.monotonic()
        with pytest.raises(sdk.APITimeoutError):
            call()
        assert time.monotonic() - t < 4
        t = time.monotonic()
    assert time.monotonic() - t < 1, "stopping must wake the sleeping request at once"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_malformed_body(api):
    with MockAPI([("malformed",)]) as m:
        call = (lambda: oa_call(oa(m))) if api == "openai" else (lambda: an_call(an(m)))
        with pytest.raises(json.JSONDecodeError):  # both SDKs let the raw decode error through
            call()


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_unknown_path_is_404(api):
    with MockAPI() as m:
        sdk, c = (openai, oa(m)) if api == "openai" else (anthropic, an(m))
        with pytest.raises(sdk.NotFoundError) as ei:
            c.models.list()
        assert ei.value.status_code == 404 and m.count("/models") == 1
        if api == "anthropic": assert ei.value.body["error"]["type"] == "not_found_error"
        else: assert ei.value.body["type"] == "invalid_request_error"


def test_status_action_passes_through():
    body = {"error": {"message": "bad model", "type": "invalid_request_error", "param": "model", "code": None}}
    with MockAPI([("status", 400, body, {"x-extra": "yes"})]) as m:
        with pytest.raises(openai.BadRequestError) as ei:
            oa_call(oa(m))
        assert ei.value.param == "model" and ei.value.response.headers["x-extra"] == "yes"


def test_request_log_has_auth_headers_and_body():
    with MockAPI() as m:
        oa_call(oa(m))
        an_call(an(m))
        o, a = m.requests
        assert o["path"] == "/v1/chat/completions" and a["path"] == "/v1/messages"
        assert o["headers"]["authorization"] == "Bearer sk-test"
        assert o["json"] == {"model": "gpt-test", "messages": MSGS}
        # anthropic 2.x sends the api key as a Bearer token; older SDKs used x-api-key
        assert a["headers"].get("x-api-key") == "sk-ant-test" or a["headers"].get("authorization") == "Bearer sk-ant-test"
        assert "anthropic-version" in a["headers"]
        assert a["json"] == {"model": "claude-test", "max_tokens": 256, "messages": MSGS}
        assert all(isinstance(r["time"], float) for r in m.requests) and o["time"] <= a["time"] <= time.time()
        assert m.count("/v1/messages") == 1 and m.count("/v1/") == 2


def test_refuses_after_max_requests():
    with MockAPI(max_requests=2) as m:
        c = oa(m)
        oa_call(c), oa_call(c)
        with pytest.raises(openai.InternalServerError) as ei:
            oa_call(c)
        assert ei.value.status_code == 503
        with pytest.raises(anthropic.InternalServerError) as ei:
            an_call(an(m))
        assert ei.value.status_code == 503


def test_stops_by_itself_after_max_seconds():
    with MockAPI(max_seconds=1) as m:
        c = oa(m)
        oa_call(c)  # leaves a keep-alive connection open
        t = time.monotonic()
        assert m.wait_stopped(3) and time.monotonic() - t < 2
        assert not m.running
        with pytest.raises(openai.APIConnectionError):
            oa_call(c)
        with pytest.raises(anthropic.APIConnectionError):
            an_call(an(m))

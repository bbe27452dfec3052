"""A loopback HTTP server that speaks the OpenAI Chat Completions and Anthropic Messages wire formats.

Tests point the unmodified official SDKs at it by base URL::

    with MockAPI([("429", 1), ("ok", {"title": "x"})]) as m:
        client = openai.OpenAI(api_key="sk-test", base_url=m.openai_base, max_retries=0, timeout=2)
        ...
        anthropic.Anthropic(api_key="sk-ant-test", base_url=m.anthropic_base, max_retries=0, timeout=2)

Each routed request (POST /v1/chat/completions, POST /v1/messages) takes the next action from `actions`, then
`default` once the list is empty. An action is a tuple or a callable `fn(request_json) -> tuple`:

    ("ok", payload[, usage])   success; content is json.dumps(payload) (Anthropic + tools: a tool_use block)
    ("text", raw)              success with raw assistant content (may be invalid JSON)
    ("429", retry_after)       rate limited, with a Retry-After header
    ("500",) / ("529",)        server error / overloaded
    ("timeout", seconds[, then])  wait (stoppable), then answer `then` (default ("ok", None))
    ("malformed",)             200 with a truncated JSON body
    ("status", code, body, headers)  anything else (body: dict, str, bytes or None)

It binds 127.0.0.1 only, serves from a daemon thread, stops after `max_seconds`, answers 503 after
`max_requests` requests, and stops on leaving the `with` block. Stdlib only; logs nothing.
"""
import itertools, json, math, socket, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["MockAPI", "OPENAI_PATH", "ANTHROPIC_PATH"]

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
_DEFAULT_PAYLOAD = {"ok": True}


def _tokens(text: str) -> int:
    "Deterministic token estimate: one token per 4 characters, at least 1."
    return max(1, math.ceil(len(text) / 4))


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, mock, *a, **kw):
        self.mock = mock
        super().__init__(*a, **kw)

    def handle_error(self, request, client_address):  # no tracebacks on stderr
        pass


def read_body(handler) -> bytes:
    "The request's body as sent (empty when there is none or its length is not a number)."
    try: n = int(handler.headers.get("content-length") or 0)
    except ValueError: n = 0
    return handler.rfile.read(n) if n > 0 else b""


def write_response(handler, status: int, headers: dict, data: bytes, close: bool = False):
    "Status, headers (content-length added) and body; a client that went away only closes the connection."
    try:
        handler.send_response(status)
        for k, v in headers.items(): handler.send_header(k, v)
        handler.send_header("content-length", str(len(data)))
        if close: handler.send_header("connection", "close")
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()
    except OSError:     # BrokenPipeError, ConnectionResetError, ConnectionAbortedError are OSErrors
        handler.close_connection = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MockAPI/1.0"
    sys_version = ""
    timeout = 30  # idle keep-alive connections die eventually
    disable_nagle_algorithm = True  # headers and body go out in separate writes; avoid the 40 ms delayed-ACK stall

    def log_message(self, format, *args):  # silence
        pass

    def setup(self):
        super().setup()
        self.server.mock._track(self.connection, True)

    def finish(self):
        try: super().finish()
        except OSError: pass
        finally: self.server.mock._track(self.connection, False)

    def handle(self):
        try: super().handle()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout, OSError): pass

    def _stopped(self) -> bool:
        "Whether the mock is stopping (then the connection closes without an answer)."
        stopping = self.server.mock._stopping.is_set()
        if stopping: self.close_connection = True
        return stopping

    def _dispatch(self):
        mock = self.server.mock
        if self._stopped(): return
        raw = read_body(self)
        try: body = json.loads(raw) if raw else None
        except ValueError: body = None
        path = urlsplit(self.path).path.rstrip("/") or "/"
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = {"method": self.command, "path": self.path, "headers": headers, "json": body, "time": time.time()}
        api = ("openai" if path == OPENAI_PATH else "anthropic" if path == ANTHROPIC_PATH
               else "anthropic" if ("x-api-key" in headers or "anthropic-version" in headers) else "openai")
        with mock._lock:
            mock._requests.append(rec)
            over = len(mock._requests) > mock.max_requests
        if over:
            status, out, extra = _error(api, 503, "service_unavailable", "mock server: max_requests reached")
        elif self.command != "POST" or path not in (OPENAI_PATH, ANTHROPIC_PATH):
            status, out, extra = _error(api, 404, "not_found", f"Invalid URL ({self.command} {self.path})")
        else:
            action = mock._next_action(body)
            status, out, extra = mock._respond(api, action, body if isinstance(body, dict) else {})
        rec["status"] = status
        if status is None:  # stopped while waiting
            self.close_connection = True
            return
        self._send(api, status, out, extra)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _dispatch

    def do_HEAD(self):
        self.close_connection = True

    def _send(self, api, status, out, extra):
        data = out if isinstance(out, bytes) else (out.encode() if isinstance(out, str) else _dumps(out).encode())
        mock = self.server.mock
        hdrs = {"content-type": "application/json"}
        rid = f"req_mock{next(mock._ids):06d}"
        hdrs["x-request-id" if api == "openai" else "request-id"] = rid
        for k, v in (extra or {}).items():
            if k.lower() != "content-length": hdrs[k.lower()] = str(v)
        if mock._stopping.is_set(): self.close_connection = True
        write_response(self, status, hdrs, data, close=self.close_connection)


def _error(api, status, kind, message, headers=None):
    "An error response body in the API's own format. kind: rate_limit | server | overloaded | not_found | ..."
    if api == "openai":
        typ, code = {"rate_limit": ("requests", "rate_limit_exceeded"), "server": ("server_error", None),
                     "overloaded": ("server_error", "overloaded"), "not_found": ("invalid_request_error", None),
                     "service_unavailable": ("server_error", "service_unavailable")}.get(kind, (kind, None))
        body = {"error": {"message": message, "type": typ, "param": None, "code": code}}
    else:
        typ = {"rate_limit": "rate_limit_error", "server": "api_error", "overloaded": "overloaded_error",
               "not_found": "not_found_error", "service_unavailable": "api_error"}.get(kind, kind)
        body = {"type": "error", "error": {"type": typ, "message": message}, "request_id": None}
    return status, body, dict(headers or {})


class MockAPI:
    """Loopback OpenAI/Anthropic server; see the module docstring. Use as a context manager.

    Properties: url, openai_base (url + "/v1"), anthropic_base (url), requests (list of
    {"path", "headers", "json", "time", "method", "status"}), and count(path_substring=None)."""

    handler_class = _Handler      # tests/mockvoice.py serves other wire formats with its own handler

    def __init__(self, actions=None, default=("ok", None), max_seconds=60, max_requests=200):
        self.actions = list(actions or [])
        self.default = default
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self._requests, self._lock = [], threading.Lock()
        self._stopping, self._stopped = threading.Event(), threading.Event()
        self._conns = set()
        self._ids = itertools.count(1)
        self._server = self._thread = self._timer = self._port = None
        self._stop_lock = threading.Lock()

    # -- lifecycle
    def start(self):
        if self._server is not None: return self
        self._server = _Server(self, ("127.0.0.1", 0), self.handler_class)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="MockAPI", daemon=True)
        self._thread.start()
        if self.max_seconds:
            self._timer = threading.Timer(self.max_seconds, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self):
        "Stop serving now: wakes sleeping 'timeout' actions, closes the listener and every open connection."
        self._stopping.set()
        if self._timer is not None and self._timer is not threading.current_thread(): self._timer.cancel()
        with self._stop_lock: srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
        with self._lock: conns = list(self._conns)
        for c in conns:
            try: c.shutdown(socket.SHUT_RDWR)
            except OSError: pass
        if self._thread is not None and self._thread is not threading.current_thread(): self._thread.join(timeout=5)
        self._stopped.set()

    def __enter__(self): return self.start()
    def __exit__(self, *exc): self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None and not self._stopping.is_set()

    def wait_stopped(self, timeout=None) -> bool:
        "Block until the server has fully stopped (e.g. by max_seconds); True if it did."
        return self._stopped.wait(timeout)

    # -- addresses and log
    @property
    def port(self) -> int:
        if self._port is None: raise RuntimeError("MockAPI not started")
        return self._port

    @property
    def url(self) -> str: return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str: return self.url + "/v1"

    @property
    def anthropic_base(self) -> str: return self.url  # the SDK appends /v1/messages

    @property
    def requests(self) -> list:
        with self._lock: return list(self._requests)

    def count(self, path_substring=None) -> int:
        return sum(1 for r in self.requests if path_substring is None or path_substring in r["path"])

    # -- internals
    def _track(self, conn, add):
        with self._lock:
            if add: self._conns.add(conn)
            else: self._conns.discard(conn)

    def _next_action(self, body):
        with self._lock: action = self.actions.pop(0) if self.actions else self.default
        return action(body) if callable(action) else action

    def _respond(self, api, action, req):
        "(status, body, headers) for one action; status None means the server stopped while waiting."
        kind = str(action[0]) if action else "ok"
        if kind == "ok":
            payload = action[1] if len(action) > 1 and action[1] is not None else _DEFAULT_PAYLOAD
            usage = action[2] if len(action) > 2 else None
            return 200, (_openai_ok if api == "openai" else _anthropic_ok)(req, payload, False, usage), {}
        if kind == "text":
            usage = action[2] if len(action) > 2 else None
            return 200, (_openai_ok if api == "openai" else _anthropic_ok)(req, str(action[1]), True, usage), {}
        if kind == "429":
            secs = action[1] if len(action) > 1 else 1
            msg = ("Rate limit reached for requests (mock). Please try again in %ss." % secs)
            return _error(api, 429, "rate_limit", msg, {"retry-after": secs})
        if kind == "500":
            return _error(api, 500, "server", "The server had an error while processing your request (mock).")
        if kind == "529":
            return _error(api, 529, "overloaded", "Overloaded")
        if kind == "timeout":
            if self._stopping.wait(float(action[1]) if len(action) > 1 else 60.0): return None, None, None
            then = action[2] if len(action) > 2 else ("ok", None)
            return self._respond(api, then(req) if callable(then) else then, req)
        if kind == "malformed":
            return 200, b'{"id": "x", "choices": [', {}
        if kind == "status":
            code = int(action[1])
            body = action[2] if len(action) > 2 else None
            body = b"" if body is None else body
            return code, body, dict(action[3]) if len(action) > 3 and action[3] else {}
        raise ValueError(f"unknown MockAPI action: {action!r}")


def _usage_numbers(req, content: str, usage, anthropic: bool):
    prompt = _dumps(req.get("messages", []))
    if anthropic and req.get("system"): prompt = _dumps(req["system"]) + prompt
    if anthropic and req.get("tools"): prompt += _dumps(req["tools"])
    inp, out = _tokens(prompt), _tokens(content)
    usage = usage or {}
    inp = usage.get("prompt_tokens", usage.get("input_tokens", inp))
    out = usage.get("completion_tokens", usage.get("output_tokens", out))
    return int(inp), int(out)


def _openai_ok(req, payload, raw, usage):
    content = payload if raw else _dumps(payload)
    inp, out = _usage_numbers(req, content, usage, False)
    return {
        "id": f"chatcmpl-mock{int(time.time() * 1e6)}", "object": "chat.completion", "created": int(time.time()),
        "model": req.get("model", "mock-model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out},
        "service_tier": "default", "system_fingerprint": None,
    }


def _forced_tool(req):
    tools = [t for t in (req.get("tools") or []) if isinstance(t, dict) and t.get("name")]
    choice = req.get("tool_choice") or {}
    if not tools or (isinstance(choice, dict) and choice.get("type") == "none"): return None
    if isinstance(choice, dict) and choice.get("type") == "tool" and choice.get("name"): return choice["name"]
    return tools[0]["name"]


def _anthropic_ok(req, payload, raw, usage):
    tool = _forced_tool(req)
    stamp = int(time.time() * 1e6)
    block = None
    if tool is not None:
        if raw:
            try: block = {"type": "tool_use", "id": f"toolu_mock{stamp}", "name": tool, "input": json.loads(payload)}
            except ValueError: block = None
        else:
            block = {"type": "tool_use", "id": f"toolu_mock{stamp}", "name": tool, "input": payload}
    if block is None: block = {"type": "text", "text": payload if raw else _dumps(payload)}
    counted = _dumps(block["input"]) if block["type"] == "tool_use" else block["text"]
    inp, out = _usage_numbers(req, counted, usage, True)
    return {
        "id": f"msg_mock{stamp}", "type": "message", "role": "assistant", "model": req.get("model", "mock-model"),
        "content": [block], "stop_reason": "tool_use" if block["type"] == "tool_use" else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": inp, "output_tokens": out, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "service_tier": "standard"},
    }

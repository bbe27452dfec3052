"""A loopback HTTP server that speaks the Pexels search, Pixabay search and OpenAI images wire formats, and serves the
pictures their answers link to, so tests point ytempire's clients (httpx, the unmodified `openai` SDK) at it:

    with MockImages(pexels=[("429", 1), ("ok",)], pixabay=[("500",)]) as m:
        settings: [visuals] pexels_base_url = m.url, pixabay_base_url = m.url, [image] openai_base_url = m.openai_base

Routes: GET /v1/search (Pexels; the key in `Authorization`), GET /api/ (Pixabay; `key=` in the query), POST
/v1/images/generations (OpenAI; gpt-image-1 answers b64_json, dall-e-3 a URL), GET /img/<name>.<ext> (the picture
bytes: a Pillow-drawn picture, distinct per name; never takes an action).

Each API request takes the next action of its API (`pexels`, `pixabay`, `openai`), then that API's default:

    ("ok",)                  success: the catalog's photos (Pexels, Pixabay), or one picture (OpenAI)
    ("429", retry_after)     rate limited with a Retry-After header, in the API's own error format
    ("500",)                 server error
    ("malformed",)           200 with a truncated JSON body
    ("timeout", seconds)     wait (stoppable), then answer ("ok",)
    ("status", code, body)   anything else

Search answers carry the rate-limit headers each API documents (Pexels X-Ratelimit-Limit/Remaining/Reset, Pixabay
X-RateLimit-*); `remaining` sets what they say is left. A wrong or missing key gets the API's 401/400. It binds
127.0.0.1 only, stops after `max_seconds`, answers 503 after `max_requests` requests (MockAPI's lifecycle)."""
import base64, hashlib, io, json, re, time
from urllib.parse import urlsplit, parse_qs

from mockapi import MockAPI, _Handler, read_body, write_response

__all__ = ["MockImages", "CATALOG", "PEXELS_KEY", "PIXABAY_KEY", "picture"]

PEXELS_KEY, PIXABAY_KEY = "pexels-test-key-0123456789", "pixabay-test-key-9876543210"
# (id, description, author): a small stock library about volcanoes and one unrelated photo
CATALOG = [
    (101, "Red hot lava flowing down a volcano at night", "Ana Ruiz"),
    (102, "Cup of coffee on a wooden table", "Ben Ode"),
    (103, "Grey ash cloud rising from an erupting volcano", "Chen Li"),
    (104, "Aerial view of a crater lake", "Dara Okafor"),
    (105, "Geyser erupting steam and boiling water", "Eli Moss"),
]
API_PATHS = ("/v1/search", "/api", "/v1/images/generations")


def picture(name: str, size=(640, 400), fmt: str = "JPEG") -> bytes:
    "A picture that differs per name: a colour from its hash, a disc and a bar drawn with Pillow."
    from PIL import Image, ImageDraw
    h = hashlib.sha256(name.encode()).digest()
    im = Image.new("RGB", size, (h[0], h[1], h[2]))
    d = ImageDraw.Draw(im)
    w, ht = size
    r = min(w, ht) // 4
    cx, cy = w * (1 + h[3] % 3) // 4, ht // 2
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255 - h[0], 255 - h[1], 255 - h[2]))
    d.rectangle([0, ht - ht // 8, w * (h[4] % 8 + 1) // 9, ht], fill=(h[5], 255 - h[6], h[7]))
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


class _ImagesHandler(_Handler):
    def _dispatch(self):
        mock = self.server.mock
        if self._stopped(): return
        raw = read_body(self)
        url = urlsplit(self.path)
        path, query = url.path.rstrip("/") or "/", {k: v[0] for k, v in parse_qs(url.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        api = ("pexels" if path == "/v1/search" else "pixabay" if path == "/api" else
               "openai" if path.startswith("/v1/images") else "img" if path.startswith("/img/") else "other")
        try: body = json.loads(raw) if raw else None
        except ValueError: body = None
        rec = {"method": self.command, "path": self.path, "api": api, "query": query, "headers": headers, "json": body, "time": time.time()}
        with mock._lock:
            mock._requests.append(rec)
            over = len(mock._requests) > mock.max_requests
        if over: status, out, extra = 503, {"error": "mock server: max_requests reached"}, {}
        else:
            try: status, out, extra = mock._route(self.command, api, path, query, headers, body)
            except Exception as e:       # a bug in the mock shows as a readable 599, not a hung client
                status, out, extra = 599, {"error": f"mock error: {e!r}"}, {}
        rec["status"] = status
        if status is None:               # stopped while waiting
            self.close_connection = True
            return
        data = out if isinstance(out, bytes) else (out.encode() if isinstance(out, str) else json.dumps(out).encode())
        hdrs = {"content-type": "application/json", **{k.lower(): str(v) for k, v in (extra or {}).items()}}
        write_response(self, status, hdrs, data, close=mock._stopping.is_set())

    do_POST = do_GET = _dispatch


class MockImages(MockAPI):
    """Loopback Pexels / Pixabay / OpenAI images server; see the module docstring. Use as a context manager.

    Besides MockAPI's `url`, `openai_base`, `requests`: `api_count(api)` (search or generation requests of one API that
    reached it), `downloads` (picture requests)."""
    handler_class = _ImagesHandler

    def __init__(self, pexels=None, pixabay=None, openai=None, default=("ok",), catalog=None, remaining=199,
                 max_seconds=120, max_requests=400):
        super().__init__(None, default, max_seconds, max_requests)
        self.queues = {"pexels": list(pexels or []), "pixabay": list(pixabay or []), "openai": list(openai or [])}
        self.catalog = list(catalog or CATALOG)
        self.remaining = remaining

    def api_count(self, api: str) -> int:
        return sum(1 for r in self.requests if r["api"] == api)

    @property
    def downloads(self) -> int:
        return sum(1 for r in self.requests if r["api"] == "img")

    def _next(self, api):
        with self._lock:
            q = self.queues[api]
            return q.pop(0) if q else self.default

    def _route(self, method, api, path, query, headers, body):
        if api == "img" and method == "GET":
            name = path.rsplit("/", 1)[-1]
            fmt = "PNG" if name.endswith(".png") else "JPEG"
            wh = re.search(r"-(\d+)x(\d+)\.", name)          # a generated picture: an eighth of the size asked for
            size = (int(wh[1]) // 8, int(wh[2]) // 8) if wh else (640, 400)
            return 200, picture(name, size, fmt), {"content-type": f"image/{fmt.lower()}"}
        if api == "pexels" and method == "GET":
            if headers.get("authorization") != PEXELS_KEY: return 401, {"error": "Unauthorized"}, {}
            return self._act("pexels", lambda: self._pexels(query), {"x-ratelimit-limit": 20000, "x-ratelimit-remaining": self.remaining,
                                                                     "x-ratelimit-reset": int(time.time()) + 3600})
        if api == "pixabay" and method == "GET":
            if query.get("key") != PIXABAY_KEY: return 400, "[ERROR 400] Invalid or missing API key (mock).", {"content-type": "text/plain"}
            return self._act("pixabay", lambda: self._pixabay(query), {"x-ratelimit-limit": 100, "x-ratelimit-remaining": self.remaining,
                                                                       "x-ratelimit-reset": 60})
        if api == "openai" and method == "POST":
            if not headers.get("authorization", "").startswith("Bearer "):
                return 401, {"error": {"message": "No API key provided.", "type": "invalid_request_error", "code": None}}, {}
            return self._act("openai", lambda: self._openai(body or {}), {})
        return 404, {"error": f"not found: {method} {path}"}, {}

    def _act(self, api, ok, limit_headers):
        action = self._next(api)
        kind = action[0]
        if kind == "timeout":
            if self._stopping.wait(float(action[1]) if len(action) > 1 else 60.0): return None, None, None
            kind = "ok"
        if kind == "ok":
            status, out = ok()
            return status, out, limit_headers
        if kind == "429":
            secs = action[1] if len(action) > 1 else 1
            body = {"pexels": {"error": "Rate limit exceeded (mock)"},
                    "pixabay": "[ERROR 429] API rate limit exceeded (mock).",
                    "openai": {"error": {"message": "Rate limit reached for images per minute (mock).", "type": "requests",
                                         "code": "rate_limit_exceeded"}}}[api]
            return 429, body, {**limit_headers, "retry-after": secs, **({"x-ratelimit-remaining": 0} if limit_headers else {})}
        if kind == "500":
            body = {"openai": {"error": {"message": "The server had an error (mock).", "type": "server_error", "code": None}}}.get(
                api, {"error": "Internal Server Error (mock)"})
            return 500, body, {}
        if kind == "malformed": return 200, b'{"photos": [{"id": 1, "src": ', limit_headers
        if kind == "status": return int(action[1]), action[2] if len(action) > 2 else b"", {}
        raise ValueError(f"unknown MockImages action: {action!r}")

    def _ranked(self, terms: str):
        "The catalog, entries sharing a word with the search first (a stock API's own, word-based ranking)."
        words = set(terms.lower().split())
        return sorted(self.catalog, key=lambda c: -len(words & set(c[1].lower().split())))

    def _pexels(self, q):
        n = int(q.get("per_page", 15))
        photos = [{"id": i, "width": 4000, "height": 2667, "url": f"https://www.pexels.com/photo/{i}/",
                   "photographer": who, "photographer_url": f"https://www.pexels.com/@{who.split()[0].lower()}",
                   "photographer_id": i * 7, "avg_color": "#7E5835", "liked": False, "alt": alt,
                   "src": {k: f"{self.url}/img/pexels-{i}-{k}.jpg" for k in
                           ("original", "large2x", "large", "medium", "small", "portrait", "landscape", "tiny")}}
                  for i, alt, who in self._ranked(q.get("query", ""))[:n]]
        return 200, {"page": 1, "per_page": n, "photos": photos, "total_results": len(photos)}

    def _pixabay(self, q):
        n = int(q.get("per_page", 20))
        hits = [{"id": i, "pageURL": f"https://pixabay.com/photos/{i}/", "type": "photo", "tags": alt.lower().replace(" ", ", "),
                 "previewURL": f"{self.url}/img/pixabay-{i}-preview.jpg", "webformatURL": f"{self.url}/img/pixabay-{i}-web.jpg",
                 "largeImageURL": f"{self.url}/img/pixabay-{i}-large.jpg", "imageWidth": 4000, "imageHeight": 2667,
                 "views": 100, "downloads": 10, "likes": 1, "user_id": i * 3, "user": who.replace(" ", ""), "userImageURL": ""}
                for i, alt, who in self._ranked(q.get("q", ""))[:n]]
        return 200, {"total": len(hits), "totalHits": len(hits), "hits": hits}

    def _openai(self, body):
        model, size = body.get("model", "gpt-image-1"), body.get("size", "1024x1024")
        w, h = (int(x) for x in size.split("x"))
        name = f"openai-{len(self.requests)}-{w}x{h}.png"
        item = ({"url": f"{self.url}/img/{name}", "revised_prompt": body.get("prompt", "")} if model.startswith("dall-e")
                else {"b64_json": base64.b64encode(picture(name, (w // 8, h // 8), "PNG")).decode()})
        out = {"created": int(time.time()), "data": [item]}
        if not model.startswith("dall-e"):
            out["usage"] = {"input_tokens": 50, "output_tokens": 1056, "total_tokens": 1106,
                            "input_tokens_details": {"text_tokens": 50, "image_tokens": 0}}
        return 200, out

"""A loopback HTTP server that speaks the YouTube Data API v3 JSON (videos, search, videoCategories) and its errors.

Tests point the unmodified official client (google-api-python-client, bundled discovery document) at it::

    with MockYouTube(videos=120) as m:
        yt = googleapiclient.discovery.build("youtube", "v3", developerKey="k", static_discovery=True,
                                             client_options={"api_endpoint": m.url})

Routes: GET /youtube/v3/videos (chart=mostPopular, paged by maxResults/pageToken), /youtube/v3/search (q, order,
publishedAfter; paged), /youtube/v3/videoCategories (regionCode). Each routed request takes the next action from
`actions`, then `default` once the list is empty:

    ("ok",)                  the route's normal answer
    ("403", reason)          403 with the API's error body, e.g. reason "quotaExceeded" (domain youtube.quota)
    ("500",)                 500 backendError
    ("status", code, body)   anything else (body: dict, str or bytes)

It binds 127.0.0.1 only, serves from a daemon thread, stops after `max_seconds`, answers 503 after `max_requests`
requests, and stops on leaving the `with` block. Stdlib only; logs nothing.
"""
import json, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from mockapi import read_body, write_response

__all__ = ["MockYouTube", "CATEGORIES", "error_body"]

BASE = "/youtube/v3/"
CATEGORIES = {"1": "Film & Animation", "10": "Music", "17": "Sports", "20": "Gaming", "22": "People & Blogs",
              "24": "Entertainment", "25": "News & Politics", "28": "Science & Technology"}
_ERRORS = {"quotaExceeded": ("youtube.quota", "The request cannot be completed because you have exceeded your "
                             "<a href=\"/youtube/v3/getting-started#quota\">quota</a>."),
           "forbidden": ("youtube.common", "Access forbidden."),
           "keyInvalid": ("usageLimits", "API key not valid. Please pass a valid API key."),
           "backendError": ("global", "Backend Error"),
           "serviceUnavailable": ("global", "The service is currently unavailable.")}


def error_body(code: int, reason: str, message: str | None = None) -> dict:
    "An error body in the API's format."
    domain, default = _ERRORS.get(reason, ("global", reason))
    msg = message or default
    status = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 500: "INTERNAL", 503: "UNAVAILABLE"}.get(code, "UNKNOWN")
    return {"error": {"code": code, "message": msg, "errors": [{"message": msg, "domain": domain, "reason": reason}], "status": status}}


def _video(i: int, region: str) -> dict:
    cid = list(CATEGORIES)[i % len(CATEGORIES)]
    stats = {"viewCount": str(100_000 * (i + 1)), "likeCount": str(1_000 * (i + 1)), "favoriteCount": "0", "commentCount": str(50 * (i + 1))}
    if i % 7 == 3: del stats["commentCount"]           # comments disabled: the API leaves the count out
    return {"kind": "youtube#video", "etag": f"etag-v{i}", "id": f"vid{region}{i:05d}",
            "snippet": {"publishedAt": f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:15:00Z", "channelId": f"UCmock{i % 9:020d}",
                        "title": f"Mock trending video {i} about {'minecraft' if i % 2 else 'cooking'}",
                        "description": f"Line one\nLine two of video {i}", "channelTitle": f"Channel {i % 9}",
                        "tags": [f"tag{i % 5}", "mock"] if i % 4 else None, "categoryId": cid, "liveBroadcastContent": "none",
                        "defaultAudioLanguage": "en",
                        "thumbnails": {"default": {"url": f"https://i.ytimg.com/vi/vid{i}/default.jpg", "width": 120, "height": 90}},
                        "localized": {"title": f"Mock trending video {i}", "description": ""}},
            "statistics": stats}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, mock, *a, **kw):
        self.mock = mock
        super().__init__(*a, **kw)

    def handle_error(self, request, client_address):
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MockYouTube/1.0"
    sys_version = ""
    timeout = 30
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def handle(self):
        try: super().handle()
        except OSError: pass

    def _dispatch(self):
        mock = self.server.mock
        if mock._stopping.is_set():
            self.close_connection = True
            return
        read_body(self)
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        route = parts.path[len(BASE):] if parts.path.startswith(BASE) else None
        rec = {"method": self.command, "path": parts.path, "query": query, "time": time.time()}
        with mock._lock:
            mock._requests.append(rec)
            over = len(mock._requests) > mock.max_requests
        if over: status, body = 503, error_body(503, "serviceUnavailable", "mock server: max_requests reached")
        elif self.command != "GET" or route not in ("videos", "search", "videoCategories"):
            status, body = 404, error_body(404, "notFound", f"Not Found ({self.command} {parts.path})")
        elif not query.get("key"): status, body = 403, error_body(403, "forbidden", "The request is missing a valid API key.")
        else: status, body = mock._respond(route, query)
        rec["status"] = status
        data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        write_response(self, status, {"content-type": "application/json; charset=UTF-8"}, data)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch


class MockYouTube:
    """Loopback YouTube Data API v3 server; see the module docstring. Use as a context manager.

    Properties: url (the api_endpoint to give the client), requests (list of {"method", "path", "query", "time",
    "status"}), count(route=None)."""

    def __init__(self, actions=None, default=("ok",), videos: int = 120, max_seconds: float = 60, max_requests: int = 200):
        self.actions, self.default, self.total = list(actions or []), default, videos
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self._requests, self._lock = [], threading.Lock()
        self._stopping = threading.Event()
        self._server = self._thread = self._timer = None

    def start(self):
        if self._server is not None: return self
        self._server = _Server(self, ("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="MockYouTube", daemon=True)
        self._thread.start()
        if self.max_seconds:
            self._timer = threading.Timer(self.max_seconds, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._timer is not None and self._timer is not threading.current_thread(): self._timer.cancel()
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()

    def __enter__(self): return self.start()
    def __exit__(self, *exc): self.stop()

    @property
    def url(self) -> str:
        if self._server is None: raise RuntimeError("MockYouTube not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list:
        with self._lock: return list(self._requests)

    def count(self, route=None) -> int:
        return sum(1 for r in self.requests if route is None or r["path"] == BASE + route)

    def _respond(self, route, q):
        with self._lock: action = self.actions.pop(0) if self.actions else self.default
        kind = action[0]
        if kind == "403": return 403, error_body(403, action[1] if len(action) > 1 else "quotaExceeded")
        if kind == "500": return 500, error_body(500, "backendError")
        if kind == "status": return action[1], action[2]
        body = getattr(self, "_" + route)(q)
        return (body["error"]["code"] if "error" in body else 200), body

    def _page(self, q, kind, items_fn):
        size = max(1, min(50, int(q.get("maxResults", 5))))
        start = int(q.get("pageToken", "CAAQAA")[4:] or 0) if q.get("pageToken") else 0
        end = min(start + size, self.total)
        body = {"kind": kind, "etag": f"etag-{start}", "items": [items_fn(i) for i in range(start, end)],
                "pageInfo": {"totalResults": self.total, "resultsPerPage": size}}
        if end < self.total: body["nextPageToken"] = f"CAAQ{end}"
        if start: body["prevPageToken"] = f"CAAQ{max(0, start - size)}"
        return body

    def _videos(self, q):
        if q.get("chart") != "mostPopular" and not q.get("id"):
            return error_body(400, "missingRequiredParameter", "No filter selected. Expected one of: chart, id, myRating")
        region = q.get("regionCode", "US")
        return self._page(q, "youtube#videoListResponse", lambda i: _video(i, region))

    def _search(self, q):
        def item(i):
            v = _video(i, q.get("regionCode", "US"))
            return {"kind": "youtube#searchResult", "etag": f"etag-s{i}", "id": {"kind": "youtube#video", "videoId": v["id"]},
                    "snippet": {k: v["snippet"][k] for k in ("publishedAt", "channelId", "title", "description", "channelTitle",
                                                             "thumbnails", "liveBroadcastContent")}}
        body = self._page(q, "youtube#searchListResponse", item)
        body["regionCode"] = q.get("regionCode", "US")
        return body

    def _videoCategories(self, q):
        return {"kind": "youtube#videoCategoryListResponse", "etag": "etag-cat",
                "items": [{"kind": "youtube#videoCategory", "etag": f"etag-c{cid}", "id": cid,
                           "snippet": {"title": title, "assignable": True, "channelId": "UCBR8-60-B28hp2BmDPdntcQ"}}
                          for cid, title in CATEGORIES.items()]}

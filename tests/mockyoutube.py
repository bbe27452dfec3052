"""A loopback HTTP server that speaks the YouTube Data API v3 JSON (videos, search, videoCategories), the channel side
(videos.insert resumable uploads, thumbnails.set, captions.insert, videos.list/update of the channel's own videos), the
YouTube Reporting API v1 (jobs, reports, media downloads), an OAuth 2.0 token endpoint, and their errors.

Tests point the unmodified official client (google-api-python-client, bundled discovery document) at it::

    with MockYouTube(videos=120) as m:
        yt = googleapiclient.discovery.build("youtube", "v3", developerKey="k", static_discovery=True,
                                             client_options={"api_endpoint": m.url})

Public routes (API key): GET /youtube/v3/videos (chart=mostPopular, paged by maxResults/pageToken), /youtube/v3/search
(q, order, publishedAfter; paged), /youtube/v3/videoCategories (regionCode). Each takes the next action from `actions`,
then `default` once the list is empty:

    ("ok",)                  the route's normal answer
    ("403", reason)          403 with the API's error body, e.g. reason "quotaExceeded" (domain youtube.quota)
    ("500",)                 500 backendError
    ("status", code, body)   anything else (body: dict, str or bytes)

Channel routes need `Authorization: Bearer <token>` with a token the mock issued or was given (`tokens`); without
one they answer 401 like Google (reason authError, WWW-Authenticate header). They are named like the API's methods:

    videos.insert    POST /upload/youtube/v3/videos?uploadType=resumable&part=  (the metadata; answers the session URI in
                     Location), then PUT session: `Content-Range: bytes A-B/TOTAL` + bytes (308 with `Range: bytes=0-N`
                     until the last byte, then 200 and the video), or `Content-Range: bytes */TOTAL` without a body (the
                     upload's status: 308 with the Range of the bytes kept, no Range when none, 200 when complete)
    thumbnails.set   POST /upload/youtube/v3/thumbnails/set?videoId=  (uploadType media, multipart or resumable + PUT)
    captions.insert  POST /upload/youtube/v3/captions?part=snippet  (uploadType multipart: the snippet and the track)
    videos.list      GET  /youtube/v3/videos?id=  with a Bearer token: the channel's own videos (`channel_videos`)
    videos.update    PUT  /youtube/v3/videos?part=snippet  (the snippet is replaced; title and categoryId required)
    jobs.list        GET  /v1/jobs               jobs.create  POST /v1/jobs
    reports.list     GET  /v1/jobs/{id}/reports  (startTimeAtOrAfter, startTimeBefore; paged by `report_page_size`)
    media.download   GET  /v1/media/{resourceName}?alt=media  (the report's CSV)
    token            POST /token  (grant_type=refresh_token: a new access token for `refresh_token`; no Bearer needed)

Each takes the next action from `channel_actions[name]` (a dict of lists), then ("ok",):

    ("ok",)                      the normal answer
    ("403", reason)              403, e.g. "quotaExceeded" or "forbidden"
    ("500",) / ("503",)          500 backendError / 503 serviceUnavailable
    ("429", retry_after)         429 rateLimitExceeded with a Retry-After header (seconds)
    ("timeout", seconds)         wait (stoppable), then the normal answer
    ("malformed",)               200 with a truncated body (media.download: a damaged CSV)
    ("status", code, body[, headers])  anything else
    ("drop", fraction)           read `fraction` of the request's body (kept, as a server keeps what arrived), then
                                 reset the connection (RST) without an answer: a connection dropped mid-request

What channel routes received is kept: `uploads` (video id -> {"body": the videos.insert metadata, "content_type",
"bytes"}; the video also joins `channel_videos`), `thumbnails` (video id -> (content type, bytes)), `captions` (video id
-> list of (snippet, bytes)), `updates` (videos.update bodies), `jobs`, `reports`, `issued` (access tokens the token
route gave out). `add_report(day, csv, created)` adds a
report of the first job (created if needed) covering that day.

It binds 127.0.0.1 only, serves from a daemon thread, stops after `max_seconds`, answers 503 after `max_requests`
requests, and stops on leaving the `with` block. Stdlib only; logs nothing.
"""
import copy, email.parser, itertools, json, re, socket, struct, threading, time
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit
from mockapi import read_body, write_response

__all__ = ["MockYouTube", "CATEGORIES", "error_body", "channel_video", "REACH_HEADER"]

BASE = "/youtube/v3/"
CATEGORIES = {"1": "Film & Animation", "10": "Music", "17": "Sports", "20": "Gaming", "22": "People & Blogs",
              "24": "Entertainment", "25": "News & Politics", "28": "Science & Technology"}
_ERRORS = {"quotaExceeded": ("youtube.quota", "The request cannot be completed because you have exceeded your "
                             "<a href=\"/youtube/v3/getting-started#quota\">quota</a>."),
           "forbidden": ("youtube.common", "Access forbidden."),
           "keyInvalid": ("usageLimits", "API key not valid. Please pass a valid API key."),
           "backendError": ("global", "Backend Error"),
           "serviceUnavailable": ("global", "The service is currently unavailable."),
           "rateLimitExceeded": ("usageLimits", "Rate Limit Exceeded"),
           "authError": ("global", "Invalid Credentials"),
           "videoNotFound": ("youtube.video", "The video that you are trying to update cannot be found."),
           "invalidCategoryId": ("youtube.video", "The <code>snippet.categoryId</code> property specifies an invalid category ID."),
           "invalidTitle": ("youtube.video", "The request metadata specifies an invalid video title."),
           "invalidImage": ("youtube.thumbnail", "The provided image content is invalid."),
           "mediaBodyRequired": ("youtube.thumbnail", "The request does not include the image content."),
           "uploadLimitExceeded": ("youtube.video", "The user has exceeded the number of videos they may upload."),
           "invalidPublishAt": ("youtube.video", "The request metadata specifies an invalid scheduled publishing time."),
           "invalidPrivacyStatus": ("youtube.video", "The request metadata specifies an invalid privacy status."),
           "invalidTags": ("youtube.video", "The request metadata specifies invalid video keywords."),
           "invalidDescription": ("youtube.video", "The request metadata specifies an invalid video description."),
           "invalidMetadata": ("youtube.caption", "The request contains invalid metadata values."),
           "notFound": ("global", "Not Found")}
REACH_HEADER = ("date,channel_id,video_id,live_or_on_demand,subscribed_status,country_code,video_thumbnail_impressions,"
                "video_thumbnail_impressions_ctr\n")
_CHANNEL_ROUTES = ("videos.insert", "thumbnails.set", "captions.insert", "videos.list", "videos.update", "jobs.list",
                   "jobs.create", "reports.list", "media.download", "token")


def error_body(code: int, reason: str, message: str | None = None) -> dict:
    "An error body in the API's format."
    domain, default = _ERRORS.get(reason, ("global", reason))
    msg = message or default
    status = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
              500: "INTERNAL", 503: "UNAVAILABLE"}.get(code, "UNKNOWN")
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


def channel_video(video_id: str, title: str, category_id: str = "27", description: str = "", tags=None) -> dict:
    "A video of the mock's channel as videos.list returns it (part=snippet)."
    return {"kind": "youtube#video", "etag": f"etag-{video_id}", "id": video_id,
            "snippet": {"publishedAt": "2026-11-01T15:00:00Z", "channelId": "UCmockchannel00000000000", "title": title,
                        "description": description, "channelTitle": "Mock channel", "tags": list(tags or []),
                        "categoryId": category_id, "liveBroadcastContent": "none", "defaultLanguage": "en",
                        "thumbnails": {"default": {"url": f"https://i.ytimg.com/vi/{video_id}/default.jpg", "width": 120, "height": 90}},
                        "localized": {"title": title, "description": description}}}

_READ_ONLY = ("publishedAt", "channelId", "channelTitle", "thumbnails", "liveBroadcastContent", "localized")


def _check_video(body: dict, part: str) -> str | None:
    "The API's reason for refusing a videos.insert's metadata, or None."
    sn, st = body.get("snippet") or {}, body.get("status") or {}
    if "snippet" not in part.split(","): return "unexpectedPart"
    title = str(sn.get("title", ""))
    if not title.strip() or len(title) > 100 or any(c in title for c in "<>"): return "invalidTitle"
    if len(str(sn.get("description", "")).encode()) > 5000 or any(c in str(sn.get("description", "")) for c in "<>"):
        return "invalidDescription"
    if sum(len(t) + (2 if " " in t else 0) for t in sn.get("tags") or []) + max(0, len(sn.get("tags") or []) - 1) > 500:
        return "invalidTags"
    if "categoryId" in sn and str(sn["categoryId"]) not in CATEGORIES and str(sn["categoryId"]) not in ("26", "27"):
        return "invalidCategoryId"
    if st.get("privacyStatus", "public") not in ("public", "unlisted", "private"): return "invalidPrivacyStatus"
    if st.get("publishAt"):
        try: at = datetime.fromisoformat(st["publishAt"].replace("Z", "+00:00"))
        except ValueError: return "invalidPublishAt"
        if st.get("privacyStatus") != "private" or at.tzinfo is None or at <= datetime.now(timezone.utc): return "invalidPublishAt"
    return None


def _rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _content_range(value: str) -> tuple[int | None, int | None, int | None]:
    "(first, last, total) of `bytes A-B/TOTAL`; (None, None, total) for `bytes */TOTAL`; Nones when it is neither."
    m = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", value.strip())
    if not m: return None, None, None
    num = lambda g: int(g) if g and g != "*" else None
    return num(m[1]), num(m[2]), num(m[3])


def _multipart(ctype: str, raw: bytes) -> tuple[dict, str, bytes]:
    "(JSON part, media content type, media bytes) of a multipart/related body."
    msg = email.parser.BytesParser().parsebytes(b"content-type: " + ctype.encode() + b"\r\n\r\n" + raw)
    parts = msg.get_payload() if msg.is_multipart() else []
    meta = next((p for p in parts if p.get_content_type().endswith("json")), None)
    media = [p for p in parts if not p.get_content_type().endswith("json")]
    try: body = json.loads(meta.get_payload(decode=True)) if meta is not None else {}
    except ValueError: body = {}
    return body, *((media[-1].get_content_type(), media[-1].get_payload(decode=True)) if media else ("", b""))


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
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        channel = mock._channel_route(self.command, parts.path, query, headers)
        route = parts.path[len(BASE):] if parts.path.startswith(BASE) else None
        rec = {"method": self.command, "path": parts.path, "query": query, "time": time.time(), "route": channel,
               "auth": headers.get("authorization", "")[:7] == "Bearer ", "content_range": headers.get("content-range")}
        with mock._lock:
            mock._requests.append(rec)
            over = len(mock._requests) > mock.max_requests
        action = mock._next_action(channel, headers) if channel and not over else None
        if action and action[0] == "drop":
            rec["status"] = "dropped"
            mock._drop(self, channel, query, headers, action[1] if len(action) > 1 else 0.5, "close" in action[2:])
            return
        raw = read_body(self)
        extra = {}
        ctype = "application/json; charset=UTF-8"
        if over: status, body = 503, error_body(503, "serviceUnavailable", "mock server: max_requests reached")
        elif channel:
            status, body, extra = mock._channel(channel, action, self.command, parts.path, query, headers, raw)
            if status is None:                       # stopped while waiting
                self.close_connection = True
                return
            if isinstance(body, bytes) and channel == "media.download" and status == 200: ctype = "application/octet-stream"
        elif self.command != "GET" or route not in ("videos", "search", "videoCategories"):
            status, body = 404, error_body(404, "notFound", f"Not Found ({self.command} {parts.path})")
        elif not query.get("key"): status, body = 403, error_body(403, "forbidden", "The request is missing a valid API key.")
        else: status, body = mock._respond(route, query)
        rec["status"] = status
        data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        write_response(self, status, {"content-type": ctype, **extra}, data)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch


class MockYouTube:
    """Loopback YouTube Data API v3 + Reporting API + OAuth token server; see the module docstring. Use as a context manager.

    Properties: url (the api_endpoint to give the client; also the Reporting API's and, + "/token", the token_uri),
    requests (list of {"method", "path", "query", "time", "status", "route", "auth"}), count(route=None)."""

    def __init__(self, actions=None, default=("ok",), videos: int = 120, max_seconds: float = 60, max_requests: int = 200,
                 channel_actions: dict | None = None,
                 tokens=("mock-access-token",),          # access tokens accepted from the start
                 refresh_token: str = "mock-refresh-token",
                 channel_videos: list[dict] | None = None, report_page_size: int = 2):
        self.actions, self.default, self.total = list(actions or []), default, videos
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.channel_actions = {k: list(v) for k, v in (channel_actions or {}).items()}
        unknown = set(self.channel_actions) - set(_CHANNEL_ROUTES)
        if unknown: raise ValueError(f"unknown channel routes {sorted(unknown)}; use {', '.join(_CHANNEL_ROUTES)}")
        self.tokens, self.refresh_token, self.issued = set(tokens), refresh_token, []
        self.channel_videos = {v["id"]: copy.deepcopy(v) for v in (channel_videos if channel_videos is not None else
                               [channel_video("abcDEF12345", "How coffee roasting works", "27", "Beans, heat and time.", ["coffee"]),
                                channel_video("xyzXYZ98765", "Why bread rises", "28", "Yeast at work.", ["bread"])])}
        self.thumbnails, self.updates, self.jobs, self.reports = {}, [], [], []
        self.uploads, self.captions, self._sessions = {}, {}, {}
        self.report_page_size = report_page_size
        self._uploads, self._ids = {}, itertools.count(1)
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
        "Requests to a public route (videos, search, ...) or a channel route (thumbnails.set, ...); all when None."
        return sum(1 for r in self.requests if route is None or r["path"] == BASE + route and not r.get("route") or r.get("route") == route)

    # -- public API-key routes (trends)
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

    # -- channel routes (OAuth)
    def _channel_route(self, method, path, q, headers) -> str | None:
        "The channel route a request is for, or None for the public routes and unknown paths."
        if path == "/token" and method == "POST": return "token"
        if path == "/upload/youtube/v3/videos" and method in ("POST", "PUT"): return "videos.insert"
        if path == "/upload/youtube/v3/captions" and method == "POST": return "captions.insert"
        if path == "/upload/youtube/v3/thumbnails/set" and method in ("POST", "PUT"): return "thumbnails.set"
        if path == BASE + "videos":
            if method == "PUT": return "videos.update"
            if method == "GET" and "authorization" in headers and not q.get("key"): return "videos.list"
        if path == "/v1/jobs": return {"GET": "jobs.list", "POST": "jobs.create"}.get(method)
        if path.startswith("/v1/jobs/") and path.endswith("/reports") and method == "GET": return "reports.list"
        if path.startswith("/v1/media/") and method == "GET": return "media.download"
        return None

    def _authorized(self, route, headers) -> bool:
        auth = headers.get("authorization", "")
        return route == "token" or auth.startswith("Bearer ") and auth[7:] in self.tokens

    def _next_action(self, route, headers) -> tuple | None:
        "The action of an authorised channel request (the route's next, else ok); None for a request that gets 401."
        if not self._authorized(route, headers): return None
        with self._lock:
            queue = self.channel_actions.get(route) or []
            return queue.pop(0) if queue else ("ok",)

    def _drop(self, handler, route, q, headers, fraction: float, graceful: bool = False):
        "Read `fraction` of the body (an upload keeps those bytes), then reset the connection: no answer."
        try: n = int(headers.get("content-length") or 0)
        except ValueError: n = 0
        data = handler.rfile.read(int(n * fraction)) if n else b""
        sid = q.get("upload_id", "")
        if route == "videos.insert" and handler.command == "PUT" and data:
            with self._lock:
                s = self._sessions.get(sid)
                first = _content_range(headers.get("content-range", ""))[0]
                if s is not None and first == len(s["data"]): s["data"] += data
        sock = handler.connection
        if not graceful: sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # close = RST
        handler.close_connection = True
        sock.close()

    def _channel(self, route, action, method, path, q, headers, raw):
        "(status, body, extra headers) of one channel request; status None when the mock stopped meanwhile."
        if action is None:
            body = error_body(401, "authError", "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                              "login cookie or other valid authentication credential.")
            return 401, body, {"www-authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'}
        kind = action[0]
        if kind == "403": return 403, error_body(403, action[1] if len(action) > 1 else "quotaExceeded"), {}
        if kind == "500": return 500, error_body(500, "backendError"), {}
        if kind == "503": return 503, error_body(503, "serviceUnavailable"), {}
        if kind == "429":
            return 429, error_body(429, "rateLimitExceeded"), {"retry-after": str(action[1] if len(action) > 1 else 1)}
        if kind == "status": return action[1], action[2], dict(action[3]) if len(action) > 3 else {}
        if kind == "timeout" and self._stopping.wait(action[1] if len(action) > 1 else 5): return None, b"", {}
        status, body, extra = getattr(self, "_" + route.replace(".", "_"))(method, path, q, headers, raw)
        if kind == "malformed" and status == 200:
            text = body if isinstance(body, bytes) else json.dumps(body).encode()
            body = b"date,channel_id,video_id\n2026111x,UC,\"broken" if route == "media.download" else text[: max(1, len(text) // 2)]
        return status, body, extra

    def _token(self, method, path, q, headers, raw):
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
            return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}, {}
        token = f"mock-issued-token-{next(self._ids):04d}"
        with self._lock:
            self.tokens.add(token)
            self.issued.append(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer",
                     "scope": "https://www.googleapis.com/auth/youtube.force-ssl https://www.googleapis.com/auth/yt-analytics.readonly"}, {}

    def _thumbnails_set(self, method, path, q, headers, raw):
        kind = q.get("uploadType", "")
        if method == "POST" and kind == "resumable":            # session start: the bytes follow in a PUT
            uid = f"upload{next(self._ids)}"
            with self._lock: self._uploads[uid] = (q.get("videoId", ""), headers.get("x-upload-content-type", ""))
            loc = f"{self.url}/upload/youtube/v3/thumbnails/set?uploadType=resumable&upload_id={uid}&videoId={quote(q.get('videoId', ''))}"
            return 200, b"", {"location": loc}
        if method == "PUT":
            with self._lock: vid, ctype = self._uploads.pop(q.get("upload_id", ""), ("", ""))
            if not vid: return 404, error_body(404, "notFound", "No such upload session."), {}
            data = raw
        else:
            vid, ctype, data = q.get("videoId", ""), headers.get("content-type", ""), raw
            if kind == "multipart": _, ctype, data = _multipart(ctype, raw)
        if not data: return 400, error_body(400, "mediaBodyRequired"), {}
        if vid not in self.channel_videos: return 404, error_body(404, "videoNotFound", f"Video {vid} was not found."), {}
        if not (data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")): return 400, error_body(400, "invalidImage"), {}
        with self._lock: self.thumbnails[vid] = (ctype, data)
        sizes = {"default": (120, 90), "medium": (320, 180), "high": (480, 360), "standard": (640, 480), "maxres": (1280, 720)}
        item = {k: {"url": f"https://i.ytimg.com/vi/{vid}/{k}.jpg?mock={len(self.thumbnails)}", "width": w, "height": h}
                for k, (w, h) in sizes.items()}
        return 200, {"kind": "youtube#thumbnailSetResponse", "etag": f"etag-thumb-{vid}", "items": [item]}, {}

    def _videos_insert(self, method, path, q, headers, raw):
        if method == "POST":                                    # session start: the metadata; the bytes follow in PUTs
            if q.get("uploadType") != "resumable":
                return 400, error_body(400, "badRequest", "The mock takes videos.insert as a resumable upload only."), {}
            try: body = json.loads(raw or b"{}")
            except ValueError: return 400, error_body(400, "parseError", "Parse Error"), {}
            bad = _check_video(body, q.get("part", ""))
            if bad: return 400, error_body(400, bad), {}
            try: total = int(headers.get("x-upload-content-length", ""))
            except ValueError: total = None
            uid = f"video-upload{next(self._ids)}"
            with self._lock:
                self._sessions[uid] = {"body": body, "total": total, "type": headers.get("x-upload-content-type", ""),
                                       "data": bytearray(), "video": None}
            return 200, b"", {"location": f"{self.url}/upload/youtube/v3/videos?uploadType=resumable&upload_id={uid}"}
        with self._lock:
            s = self._sessions.get(q.get("upload_id", ""))
            if s is None: return 404, error_body(404, "notFound", "No such upload session."), {}
            first, last, total = _content_range(headers.get("content-range", ""))
            if total is None or s["total"] is not None and total != s["total"]:
                return 400, error_body(400, "badContent", f"Content-Range {headers.get('content-range')!r} does not fit the upload"), {}
            if first is not None:                               # a chunk: it must continue the bytes kept
                have = len(s["data"])
                if first > have or last - first + 1 != len(raw):
                    return 400, error_body(400, "badContent", f"chunk {first}-{last} does not continue the {have} bytes received"), {}
                s["data"] += raw[have - first:]                 # bytes sent again after a resume are kept once
            if len(s["data"]) < total:                          # not complete: 308 and the bytes kept (none: no Range)
                return 308, b"", ({"range": f"bytes=0-{len(s['data']) - 1}"} if s["data"] else {})
            if s["video"] is None:
                vid = f"up{next(self._ids):09d}"
                sn, st = s["body"].get("snippet") or {}, s["body"].get("status") or {}
                video = channel_video(vid, sn.get("title", ""), str(sn.get("categoryId", "22")), sn.get("description", ""), sn.get("tags"))
                video["snippet"].update({k: sn[k] for k in ("defaultLanguage", "defaultAudioLanguage") if k in sn})
                video["status"] = {"uploadStatus": "uploaded", "privacyStatus": st.get("privacyStatus", "public"),
                                   **({"publishAt": st["publishAt"]} if st.get("publishAt") else {}),
                                   "license": "youtube", "embeddable": True, "publicStatsViewable": True}
                s["video"] = video
                self.channel_videos[vid] = copy.deepcopy(video)
                self.uploads[vid] = {"body": s["body"], "content_type": s["type"], "bytes": bytes(s["data"])}
            return 200, copy.deepcopy(s["video"]), {}

    def _captions_insert(self, method, path, q, headers, raw):
        if q.get("uploadType") != "multipart":
            return 400, error_body(400, "badRequest", "The mock takes captions.insert as a multipart upload only."), {}
        body, _, data = _multipart(headers.get("content-type", ""), raw)
        sn = body.get("snippet") or {}
        if not data: return 400, error_body(400, "mediaBodyRequired", "The request does not include the caption track."), {}
        if not sn.get("language") or "name" not in sn: return 400, error_body(400, "invalidMetadata"), {}
        vid = sn.get("videoId", "")
        if vid not in self.channel_videos: return 404, error_body(404, "videoNotFound", f"Video {vid} was not found."), {}
        with self._lock: self.captions.setdefault(vid, []).append((sn, data))
        cid = f"caption{next(self._ids):05d}"
        return 200, {"kind": "youtube#caption", "etag": f"etag-{cid}", "id": cid,
                     "snippet": {**sn, "trackKind": "standard", "isDraft": bool(sn.get("isDraft")), "status": "serving"}}, {}

    def _videos_list(self, method, path, q, headers, raw):
        ids = [i for i in q.get("id", "").split(",") if i]
        items = [copy.deepcopy(self.channel_videos[i]) for i in ids if i in self.channel_videos]
        return 200, {"kind": "youtube#videoListResponse", "etag": "etag-list", "items": items,
                     "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}}, {}

    def _videos_update(self, method, path, q, headers, raw):
        try: body = json.loads(raw)
        except ValueError: return 400, error_body(400, "parseError", "Parse Error"), {}
        vid, sn = body.get("id", ""), body.get("snippet") or {}
        if q.get("part") != "snippet": return 400, error_body(400, "unexpectedPart", f"part {q.get('part')!r}"), {}
        if vid not in self.channel_videos: return 404, error_body(404, "videoNotFound"), {}
        if not str(sn.get("title", "")).strip() or len(sn["title"]) > 100 or any(c in sn["title"] for c in "<>"):
            return 400, error_body(400, "invalidTitle"), {}
        if str(sn.get("categoryId", "")) not in CATEGORIES and str(sn.get("categoryId", "")) not in ("26", "27"):
            return 400, error_body(400, "invalidCategoryId"), {}
        with self._lock:
            self.updates.append(body)
            old = self.channel_videos[vid]["snippet"]
            new = {k: v for k, v in sn.items() if k not in _READ_ONLY}   # what is left out is cleared, as YouTube does
            new.update({k: old[k] for k in _READ_ONLY if k in old})
            new["localized"] = {"title": new["title"], "description": new.get("description", "")}
            self.channel_videos[vid]["snippet"] = new
            return 200, copy.deepcopy(self.channel_videos[vid]), {}

    def _job(self, report_type: str, name: str) -> dict:
        job = {"id": f"job-{next(self._ids):04d}", "reportTypeId": report_type, "name": name,
               "createTime": _rfc3339(datetime.now(timezone.utc))}
        self.jobs.append(job)
        return job

    def _jobs_list(self, method, path, q, headers, raw):
        with self._lock: return 200, ({"jobs": copy.deepcopy(self.jobs)} if self.jobs else {}), {}

    def _jobs_create(self, method, path, q, headers, raw):
        try: body = json.loads(raw)
        except ValueError: return 400, error_body(400, "parseError", "Parse Error"), {}
        if not body.get("reportTypeId"): return 400, error_body(400, "INVALID_ARGUMENT", "reportTypeId is required"), {}
        with self._lock: return 200, self._job(body["reportTypeId"], body.get("name", "")), {}

    def add_report(self, day: date, csv: str, created: datetime | None = None, report_type: str = "channel_reach_basic_a1") -> dict:
        "Add a report covering `day` (Pacific midnight to midnight) of the job for `report_type` (created if missing)."
        with self._lock:
            job = next((j for j in self.jobs if j["reportTypeId"] == report_type), None) or self._job(report_type, "mock")
            start = datetime(day.year, day.month, day.day, 8, tzinfo=timezone.utc)
            created = created or start + timedelta(days=2)
            rid = f"rep{next(self._ids):05d}"
            rep = {"id": rid, "jobId": job["id"], "startTime": _rfc3339(start), "endTime": _rfc3339(start + timedelta(days=1)),
                   "createTime": _rfc3339(created),
                   "downloadUrl": f"https://youtubereporting.googleapis.com/v1/media/CHANNEL/UCmockchannel/jobs/{job['id']}/reports/{rid}?alt=media",
                   "_csv": csv.encode("utf-8")}
            self.reports.append(rep)
            return {k: v for k, v in rep.items() if not k.startswith("_")}

    def _reports_list(self, method, path, q, headers, raw):
        job_id = unquote(path[len("/v1/jobs/"):-len("/reports")])
        if not any(j["id"] == job_id for j in self.jobs): return 404, error_body(404, "NOT_FOUND", f"Job {job_id} not found."), {}
        lo, hi = q.get("startTimeAtOrAfter", ""), q.get("startTimeBefore", "")
        stamp = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
        with self._lock:
            reps = [{k: v for k, v in r.items() if not k.startswith("_")} for r in self.reports if r["jobId"] == job_id
                    and (not lo or stamp(r["startTime"]) >= stamp(lo)) and (not hi or stamp(r["startTime"]) < stamp(hi))]
        start = int(q.get("pageToken") or 0)
        size = int(q.get("pageSize") or self.report_page_size)
        body = {"reports": reps[start:start + size]} if reps else {}
        if start + size < len(reps): body["nextPageToken"] = str(start + size)
        return 200, body, {}

    def _media_download(self, method, path, q, headers, raw):
        name = unquote(path[len("/v1/media/"):])
        rep = next((r for r in self.reports if name.endswith("/reports/" + r["id"])), None)
        if rep is None: return 404, error_body(404, "NOT_FOUND", f"Media {name} not found."), {}
        if q.get("alt") != "media": return 200, {"resourceName": name}, {}
        return 200, rep["_csv"], {}

"""A loopback HTTP server that speaks the ElevenLabs, Google Cloud Text-to-Speech (REST v1beta1) and OpenAI speech wire
formats, so tests point the unmodified official SDKs at it:

    with MockVoice(elevenlabs=[("429", 1), ("ok",)], google=[("500",)]) as m:
        ElevenLabs(api_key="el-test", base_url=m.url)                                    # /v1/text-to-speech/...
        TextToSpeechClient(transport="rest", client_options={"api_endpoint": m.url}, credentials=...)   # /v1beta1/...
        openai.OpenAI(api_key="sk-test", base_url=m.openai_base)                         # /v1/audio/speech
        m.google_credentials(tmp_path)     # a service-account key JSON whose token_uri is this server (POST /token)

The speech is real: every successful request is spoken by espeak-ng (ytempire's offline engine), and the timings the
server reports (ElevenLabs character alignment, Google `<mark>` timepoints) are espeak-ng's own word events, so a test
can compare the words a client derives with the words the server spoke (`m.spoken[-1]`).

Each routed request takes the next action of its API (`elevenlabs`, `google`, `openai`), then that API's default:

    ("ok",)                  success (Google: timepoints for every <mark>)
    ("no_marks",)            Google success without timepoints (a voice that ignores marks)
    ("429", retry_after)     rate limited, with a Retry-After header, in the API's error format
    ("500",)                 server error
    ("malformed",)           200 with a truncated JSON body (ElevenLabs, Google) or an empty body (OpenAI)
    ("voice_not_found",)     ElevenLabs 404 {"detail": {"status": "voice_not_found", ...}}
    ("invalid_voice",)       ElevenLabs 422 validation body naming voice_id
    ("quota_exceeded",)      ElevenLabs 401 {"detail": {"status": "quota_exceeded", ...}}
    ("status", code, body)   anything else

Voice lists (GET /v1/voices, GET /v1beta1/voices), cloning (POST /v1/voices/add: multipart; a sample that does not
decode, or is silent, gets ElevenLabs' 400 body) and the token endpoint answer without taking an action. It binds
127.0.0.1 only, stops after `max_seconds`, answers 503 after `max_requests` requests (MockAPI's lifecycle)."""
import base64, io, json, subprocess, time, xml.etree.ElementTree as ET
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from urllib.parse import urlsplit, parse_qs

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from mockapi import MockAPI, _Handler, read_body, write_response

__all__ = ["MockVoice", "ELEVEN_VOICES", "GOOGLE_VOICES"]

ELEVEN_VOICES = [
    {"voice_id": "21m00Tcm4TlvDq8ikWAM", "name": "Rachel", "category": "premade",
     "labels": {"accent": "american", "gender": "female", "age": "young", "description": "calm", "use_case": "narration"}},
    {"voice_id": "JBFqnCBsd6RMkjVDRZzb", "name": "George", "category": "premade",
     "labels": {"accent": "british", "gender": "male", "age": "middle aged", "description": "warm", "use_case": "narration"},
     "verified_languages": [{"language": "en", "model_id": "eleven_multilingual_v2", "accent": "british", "locale": "en-GB"},
                            {"language": "es", "model_id": "eleven_multilingual_v2", "accent": "peninsular", "locale": "es-ES"}]}]
GOOGLE_VOICES = [
    {"languageCodes": ["en-US"], "name": "en-US-Chirp3-HD-Charon", "ssmlGender": "MALE", "naturalSampleRateHertz": 24000},
    {"languageCodes": ["en-US"], "name": "en-US-Neural2-F", "ssmlGender": "FEMALE", "naturalSampleRateHertz": 24000},
    {"languageCodes": ["en-US"], "name": "en-US-Wavenet-D", "ssmlGender": "MALE", "naturalSampleRateHertz": 24000},
    {"languageCodes": ["en-GB"], "name": "en-GB-Neural2-B", "ssmlGender": "MALE", "naturalSampleRateHertz": 24000},
    {"languageCodes": ["es-ES"], "name": "es-ES-Neural2-A", "ssmlGender": "FEMALE", "naturalSampleRateHertz": 24000}]
TTS_PATHS = ("/v1/text-to-speech/", "/v1beta1/text:synthesize", "/v1/audio/speech")


def _speak(text: str):
    "(float32 audio at 22050 Hz, [(word, offset, start, end)]) spoken by espeak-ng, timings in seconds."
    from ytempire.config import Settings
    from ytempire.voice import EspeakSynthesizer, tokens
    sp = EspeakSynthesizer(Settings(env={}), "en").speak(text)
    words = [(w.text, off, w.start, w.end) for w, (_, off) in zip(sp.words, tokens(text, "en"))]
    return sp.audio, sp.sample_rate, words


def _encode(audio: np.ndarray, sr: int, fmt: str) -> bytes:
    "Audio bytes as an API sends them: pcm (raw int16 LE), wav, or mp3 (encoded with ffmpeg)."
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    if fmt == "pcm": return pcm.tobytes()
    if fmt == "wav":
        buf = io.BytesIO(); sf.write(buf, pcm, sr, subtype="PCM_16", format="WAV"); return buf.getvalue()
    import imageio_ffmpeg
    r = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "s16le", "-ar", str(sr), "-ac", "1", "-i", "pipe:0",
                        "-f", "mp3", "-b:a", "64k", "pipe:1"], input=pcm.tobytes(), capture_output=True, check=True)
    return r.stdout


def _resampled(audio, sr, to):
    return (resample_poly(audio, to, sr).astype(np.float32), to) if to and to != sr else (audio, sr)


def _char_alignment(text: str, words, total: float) -> dict:
    "ElevenLabs' alignment: every character of `text` with a start and end time (a word's letters share its span)."
    starts, ends = [0.0] * len(text), [0.0] * len(text)
    spans = [(off, off + len(w), a, b) for w, off, a, b in words]
    prev_end = 0.0
    for i in range(len(text)):
        hit = next((s for s in spans if s[0] <= i < s[1]), None)
        if hit:
            o, e, a, b = hit
            step = (b - a) / max(1, e - o)
            starts[i], ends[i] = a + step * (i - o), a + step * (i - o + 1)
            prev_end = ends[i]
        else:
            nxt = next((s[2] for s in spans if s[0] > i), total)
            starts[i], ends[i] = prev_end, max(prev_end, nxt)
    r = lambda x: round(x, 3)
    return {"characters": list(text), "character_start_times_seconds": [r(x) for x in starts],
            "character_end_times_seconds": [r(x) for x in ends]}


def _ssml_text_and_marks(ssml: str):
    "(plain text, [(mark name, character offset)]) of an SSML document, in document order."
    root = ET.fromstring(ssml)
    text, marks = [], []
    def walk(el):
        if el.tag == "mark": marks.append((el.get("name"), len("".join(text))))
        if el.text: text.append(el.text)
        for ch in el: walk(ch); text.append(ch.tail or "")
    walk(root)
    return "".join(text), marks


class _VoiceHandler(_Handler):
    def _dispatch(self):
        mock = self.server.mock
        if self._stopped(): return
        raw = read_body(self)
        ctype = self.headers.get("content-type", "")
        try: body = json.loads(raw) if raw and "json" in ctype else None
        except ValueError: body = None
        url = urlsplit(self.path)
        path, query = url.path.rstrip("/") or "/", {k: v[0] for k, v in parse_qs(url.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        api = ("google" if path.startswith("/v1beta1") or path == "/token" else
               "openai" if path.startswith("/v1/audio") or "authorization" in headers else "elevenlabs")
        rec = {"method": self.command, "path": self.path, "api": api, "headers": headers, "json": body, "time": time.time()}
        with mock._lock:
            mock._requests.append(rec)
            over = len(mock._requests) > mock.max_requests
        if over: status, out, extra = 503, {"detail": "mock server: max_requests reached"}, {}
        else:
            try: status, out, extra = mock._route(self.command, path, query, body, raw, ctype, api)
            except Exception as e:     # a bug in the mock must show as a readable 599, not a hung client
                status, out, extra = 599, {"detail": f"mock error: {e!r}"}, {}
        rec["status"] = status
        self._send(api, status, out, extra)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _send(self, api, status, out, extra):
        data = out if isinstance(out, bytes) else (out.encode() if isinstance(out, str) else json.dumps(out).encode())
        hdrs = {"content-type": "application/json", **{k.lower(): str(v) for k, v in (extra or {}).items()}}
        write_response(self, status, hdrs, data)


class MockVoice(MockAPI):
    """Loopback ElevenLabs / Google TTS / OpenAI speech server; see the module docstring. Use as a context manager.

    Besides MockAPI's `url`, `requests`, `count(path_substring)`: `tts_count(api)` (speech requests of one API that
    reached the server), `spoken` (one dict per successful speech request: api, text, words [(word, start, end)],
    seconds), `clones` (the cloning requests' form fields and file sizes)."""
    handler_class = _VoiceHandler

    def __init__(self, elevenlabs=None, google=None, openai=None, default=("ok",), max_seconds=120, max_requests=400):
        super().__init__(None, default, max_seconds, max_requests)
        self.queues = {"elevenlabs": list(elevenlabs or []), "google": list(google or []), "openai": list(openai or [])}
        self.defaults = {}
        self.spoken, self.clones = [], []

    def set_default(self, api: str, action: tuple):
        "The action an API answers once its queue is empty."
        self.defaults[api] = action

    def tts_count(self, api: str) -> int:
        return sum(1 for r in self.requests if r["api"] == api and any(p in r["path"] for p in TTS_PATHS))

    def google_credentials(self, folder) -> Path:
        """A service-account key file (a fresh RSA key) whose token endpoint is this server, for
        GOOGLE_APPLICATION_CREDENTIALS. The REST client signs its own JWT with it (or trades one at POST /token)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        p = Path(folder) / "google-credentials.json"
        p.write_text(json.dumps({"type": "service_account", "project_id": "mock-project", "private_key_id": "mock-key-1",
                                 "private_key": pem, "client_email": "tts@mock-project.iam.gserviceaccount.com",
                                 "client_id": "1234567890", "token_uri": f"{self.url}/token"}))
        return p

    def _next(self, api):
        with self._lock:
            q = self.queues[api]
            return q.pop(0) if q else self.defaults.get(api, self.default)

    # -- routing
    def _route(self, method, path, query, body, raw, ctype, api):
        if path == "/token": return 200, {"access_token": "ya29.mock-access-token", "expires_in": 3600, "token_type": "Bearer"}, {}
        if method == "GET" and path == "/v1/voices": return 200, {"voices": ELEVEN_VOICES}, {}
        if method == "GET" and path == "/v1beta1/voices":
            lang = query.get("languageCode", "")
            return 200, {"voices": [v for v in GOOGLE_VOICES if any(c.startswith(lang) for c in v["languageCodes"])]}, {}
        if method == "POST" and path == "/v1/voices/add": return self._clone(raw, ctype)
        if method == "POST" and path.startswith("/v1/text-to-speech/") and path.endswith("/with-timestamps"):
            return self._eleven(path.split("/")[3], query, body or {})
        if method == "POST" and path == "/v1beta1/text:synthesize": return self._google(body or {})
        if method == "POST" and path == "/v1/audio/speech": return self._openai(body or {})
        return 404, {"detail": {"status": "not_found", "message": f"{method} {path}"}}, {}

    def _error(self, api, action):
        "(status, body, headers) of an error action in the API's own format, or None for a success action."
        kind = action[0]
        if kind == "429":
            secs = action[1] if len(action) > 1 else 1
            body = {"elevenlabs": {"detail": {"status": "too_many_concurrent_requests", "message": "Too many concurrent requests (mock)."}},
                    "google": {"error": {"code": 429, "message": "Quota exceeded for quota metric (mock).", "status": "RESOURCE_EXHAUSTED"}},
                    "openai": {"error": {"message": "Rate limit reached (mock).", "type": "requests", "code": "rate_limit_exceeded"}}}[api]
            return 429, body, {"retry-after": secs}
        if kind == "500":
            body = {"elevenlabs": {"detail": {"status": "internal_error", "message": "Internal server error (mock)."}},
                    "google": {"error": {"code": 500, "message": "Internal error encountered (mock).", "status": "INTERNAL"}},
                    "openai": {"error": {"message": "The server had an error (mock).", "type": "server_error", "code": None}}}[api]
            return 500, body, {}
        if kind == "malformed": return 200, (b"" if api == "openai" else b'{"audio_base64": "UklGR'), {}
        if kind == "voice_not_found":
            return 404, {"detail": {"status": "voice_not_found", "message": "A voice with the voice_id was not found."}}, {}
        if kind == "invalid_voice":
            return 422, {"detail": [{"loc": ["path", "voice_id"], "msg": "Invalid voice id (mock).", "type": "value_error"}]}, {}
        if kind == "quota_exceeded":
            return 401, {"detail": {"status": "quota_exceeded", "message": "This request exceeds your quota of 10000 (mock)."}}, {}
        if kind == "status": return int(action[1]), action[2] if len(action) > 2 else b"", {}
        return None

    def _eleven(self, voice_id, query, body):
        action = self._next("elevenlabs")
        if (err := self._error("elevenlabs", action)) is not None: return err
        text = body.get("text", "")
        audio, sr, words = _speak(text)
        codec, rate = (query.get("output_format") or "mp3_44100_128").split("_")[:2]
        audio, sr = _resampled(audio, sr, int(rate))
        total = len(audio) / sr
        self.spoken.append({"api": "elevenlabs", "text": text, "voice": voice_id, "body": body, "seconds": total,
                            "words": [(w, a, b) for w, _, a, b in words]})
        align = _char_alignment(text, words, total)
        return 200, {"audio_base64": base64.b64encode(_encode(audio, sr, codec)).decode(), "alignment": align,
                     "normalized_alignment": align}, {"character-cost": str(len(text)), "request-id": f"req{len(self.spoken)}"}

    def _google(self, body):
        action = self._next("google")
        if (err := self._error("google", action)) is not None: return err
        inp = body.get("input", {})
        if "ssml" in inp: text, marks = _ssml_text_and_marks(inp["ssml"])
        else: text, marks = inp.get("text", ""), []
        audio, sr, words = _speak(text)
        cfg = body.get("audioConfig", {})
        audio, sr = _resampled(audio, sr, int(cfg.get("sampleRateHertz") or 24000))
        self.spoken.append({"api": "google", "text": text, "voice": body.get("voice", {}).get("name"), "body": body,
                            "seconds": len(audio) / sr, "words": [(w, a, b) for w, _, a, b in words]})
        timepoints = []
        if action[0] != "no_marks" and {"SSML_MARK", 1} & set(body.get("enableTimePointing", [])):   # REST sends enums as ints
            for name, off in marks:
                start = next((a for _, o, a, _ in words if o >= off), len(audio) / sr)
                timepoints.append({"markName": name, "timeSeconds": round(start, 3)})
        fmt = {"LINEAR16": "wav", 1: "wav", "MP3": "mp3", 2: "mp3"}.get(cfg.get("audioEncoding", "LINEAR16"), "wav")
        return 200, {"audioContent": base64.b64encode(_encode(audio, sr, fmt)).decode(), "timepoints": timepoints,
                     "audioConfig": cfg}, {}

    def _openai(self, body):
        action = self._next("openai")
        if (err := self._error("openai", action)) is not None: return err
        text = body.get("input", "")
        audio, sr, words = _speak(text)
        audio, sr = _resampled(audio, sr, 24000)          # OpenAI's pcm and wav are 24 kHz mono
        self.spoken.append({"api": "openai", "text": text, "voice": body.get("voice"), "body": body, "seconds": len(audio) / sr,
                            "words": [(w, a, b) for w, _, a, b in words]})
        fmt = body.get("response_format", "mp3")
        return 200, _encode(audio, sr, fmt), {"content-type": "audio/pcm" if fmt == "pcm" else f"audio/{fmt}"}

    def _clone(self, raw, ctype):
        msg = BytesParser(policy=HTTP).parsebytes(f"content-type: {ctype}\r\n\r\n".encode() + raw)
        fields, files = {}, []
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            if part.get_filename(): files.append((part.get_filename(), data))
            else: fields[name] = data.decode()
        self.clones.append({"fields": fields, "files": [(n, len(d)) for n, d in files]})
        for name, data in files:
            try: audio, _ = sf.read(io.BytesIO(data), dtype="float32")
            except Exception: audio = None
            if audio is None or not len(audio) or float(np.max(np.abs(audio))) < 1e-4:
                return 400, {"detail": {"status": "invalid_audio", "message": f"The sample {name} could not be processed (mock)."}}, {}
        return 200, {"voice_id": f"cloned{len(self.clones):04d}", "requires_verification": False}, {}

"""How cassettes are recorded and matched: deterministic, and safe to commit.

- A request matches on method, path, and its JSON body and query *without* ``session_hash``, so
  neither the session hash nor the event id ever decides a match.
- While recording, session hashes are replaced by a fixed placeholder, credentials and cookies
  are filtered out, and heartbeat requests or requests to any other host than the Space (such as
  telemetry) are not recorded at all.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = Path(os.environ.get("QWEN_GRADIO_CASSETTES", ROOT / "cassettes"))
RECORD_URL_ENV = "QWEN_GRADIO_RECORD_URL"
RECORD_GENERATION_ENV = "QWEN_GRADIO_RECORD_GENERATION"
SESSION_PLACEHOLDER = "cassette0000"
SECRET_HEADERS = [
    "authorization",
    "x-hf-authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
]
TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{20,}|Bearer\s+\S+", re.IGNORECASE)
_SESSION = re.compile(r"(session_hash=)[0-9a-f]+")


def _json_without_session(body: Any) -> Any:
    if not body:
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict):
        data.pop("session_hash", None)
    return data


def gradio_matcher(r1: Any, r2: Any) -> None:
    """vcrpy matcher: equal bodies and queries, the session hash left out."""
    q1 = sorted((k, v) for k, v in parse_qsl(urlsplit(r1.uri).query) if k != "session_hash")
    q2 = sorted((k, v) for k, v in parse_qsl(urlsplit(r2.uri).query) if k != "session_hash")
    assert q1 == q2, f"queries differ: {q1} != {q2}"
    b1, b2 = _json_without_session(r1.body), _json_without_session(r2.body)
    assert b1 == b2, f"bodies differ: {b1} != {b2}"


def scrub_request(request: Any) -> Any:
    """Drop what must not be recorded; give session hashes a fixed value."""
    record_url = os.environ.get(RECORD_URL_ENV)
    if record_url and urlsplit(request.uri).netloc != urlsplit(record_url).netloc:
        return None  # not the Space: never recorded
    if "/heartbeat/" in request.uri:
        return None
    request.uri = _SESSION.sub(rf"\g<1>{SESSION_PLACEHOLDER}", request.uri)
    body = _json_without_session(request.body)
    if isinstance(body, dict) and request.body:
        original = json.loads(request.body)
        if "session_hash" in original:
            original["session_hash"] = SESSION_PLACEHOLDER
            request.body = json.dumps(original).encode()
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in SECRET_HEADERS:
            del headers[name]
    return response


def vcr_settings() -> dict[str, Any]:
    return {
        "match_on": ["method", "path", "gradio"],
        "filter_headers": SECRET_HEADERS,
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
        "allow_playback_repeats": False,
    }

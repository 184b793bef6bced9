"""A scriptable OpenAI-compatible chat-completions server for testing the LLM writer (reference §3).

It listens on 127.0.0.1 (port 0) in a background thread and answers ``POST /v1/chat/completions`` with
``{"choices": [{"message": {"role": "assistant", "content": ...}}]}``. Each request is matched to a clip by
the frame count in its last (user) message ("(N frames)"): clip ``i`` has ``frame_count`` 60 + i
(:func:`fake_codes`). A script maps a clip to the actions of its successive requests; once the script runs
out (or for unscripted clips) the server answers with five valid descriptions naming the clip.

Actions: ``"ok"``, ``"fenced"`` (valid JSON inside a ```json fence), ``("429", retry_after_s)``, ``"500"``,
``("stall", seconds)`` (sleep, then answer), ``("hold", event)`` (answer once the test sets ``event``; after
:data:`HOLD_LIMIT_S` anyway, so a broken writer fails a test instead of hanging it), ``"not_json"``,
``"missing_field"``, ``"three"`` (3 variants), ``("status", code, message)`` (an OpenAI-style error body),
``("text", content)`` (any content), ``("raw", status, body_bytes)`` (any response body),
``("redirect", code, location)``, ``("trickle", "head" | "body")`` (one byte every :data:`TRICKLE_S` seconds
of the status line and headers, or of a body that declares a megabyte, until the client hangs up or the server
closes).

Server features, as llama.cpp and vLLM have them: ``props`` / ``models`` are served at ``GET /props`` and
``GET /v1/models`` when given (else 404); ``tokenize=True`` answers ``POST /tokenize`` with one token per
word-or-symbol (else 404); ``usage=(prompt, completion)`` adds that ``usage`` to every reply;
``schema="accept"`` (default) answers a request carrying ``response_format`` with the ``{"descriptions": [...]}``
object the schema asks for, ``schema="reject"`` refuses such a request with HTTP 400 naming response_format, as
servers without structured output do (no script action is used up).

Every chat request is recorded in ``calls`` (:class:`Call`), other GETs too (answered 405), so a test can check
what a server that should never have been contacted received; the probes of ``/props``, ``/v1/models`` and
``/tokenize`` are recorded in ``probes``.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import re
import threading
import time
from typing import Any

from handx.annotate.base import WriteRequest, codes_hash

Action = Any  # a string or a tuple, see the module docstring
HOLD_LIMIT_S = 60.0
TRICKLE_S = 0.3
_FRAME_COUNT = re.compile(r"\((\d+) frames\)")
_PROBES = ("/props", "/v1/models", "/tokenize")


def fake_codes(i: int) -> dict[str, Any]:
    """Small motion codes in the shape of reference §2.5, distinct per clip (``frame_count`` = 60 + i)."""
    t = 60 + i
    return {
        "frame_count": t,
        "left_hand_events": {
            "finger_flexing": {"index_pip": [{"start": 3, "end": 15, "start_des": "Fully extended",
                                              "end_des": "Fully bent", "v_des": "Fast"}]},
            "finger_spacing": {"index, middle": [{"start": 0, "end": t, "constant_des": "Closed"}]},
            "finger_tip_contact": {"index_tip, thumb_tip": [{"start": 20, "end": 25, "constant_des": "Contact"}]},
            "wrist_trajectory": {"down-up": [{"start": 0, "end": 30, "direction": "down-to-up", "v_des": "Slow"}]},
        },
        "right_hand_events": {
            "finger_flexing": {"thumb_ip": [{"start": 0, "end": t, "constant_des": "Partially bent"}]},
            "finger_spacing": {"ring, pinky": [{"start": 0, "end": t, "constant_des": "Open"}]},
            "finger_tip_contact": {},
            "wrist_trajectory": {},
        },
        "two_hand_relationships": {
            "finger_tip_contact": {},
            "finger_palm_distance": {"left_index_tip, right_palm": [{"start": 0, "end": t, "constant_des": "Far"}]},
            "palm_palm_distance": {"left_palm, right_palm": [{"start": 0, "end": t, "constant_des": "Far"}]},
            "palm_palm_relative_position": {
                "left-right": [{"start": 0, "end": t,
                                "constant_des": "The right hand is to the RIGHT of the left hand."}]},
        },
    }


def fake_request(i: int) -> WriteRequest:
    codes = fake_codes(i)
    return WriteRequest(clip_id=f"clip-{i:02d}", codes=codes, content_hash=codes_hash(codes))


def fake_descriptions(i: int, count: int = 5) -> list[dict[str, str]]:
    return [{"left": f"clip {i} variant {k}: the left index finger curls and touches the thumb.",
             "right": f"clip {i} variant {k}: the right hand stays still.",
             "two_hands_relation": f"clip {i} variant {k}: the hands stay apart."} for k in range(1, count + 1)]


@dataclasses.dataclass
class Call:
    """One request the server received."""

    clip: int | None
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeChatServer:
    """The server; use as a context manager. ``base_url`` ends in ``/v1``."""

    def __init__(self, script: dict[int, list[Action]] | None = None, delay_s: float = 0.0, *,
                 props: dict[str, Any] | None = None, models: dict[str, Any] | None = None, tokenize: bool = False,
                 usage: tuple[int, int] | None = None, schema: str = "accept"):
        if schema not in ("accept", "reject", "json_object"):
            raise ValueError(f"schema must be 'accept', 'reject' or 'json_object', got {schema!r}")
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.delay_s = delay_s
        self.props, self.models, self.tokenize, self.usage, self.schema = props, models, tokenize, usage, schema
        self.calls: list[Call] = []
        self.probes: list[Call] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def calls_for(self, clip: int) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.clip == clip]

    def __enter__(self) -> FakeChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()

    def _next_action(self, clip: int | None) -> Action:
        with self._lock:
            queue = self.script.get(clip) if clip is not None else None
            return queue.pop(0) if queue else "ok"

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                with server._lock:
                    (server.probes if self.path in _PROBES else server.calls).append(
                        Call(None, self.path, dict(self.headers.items()), {}))
                answer = {"/props": server.props, "/v1/models": server.models}.get(self.path)
                if answer is not None:
                    self._send(200, answer)
                elif self.path in _PROBES:
                    self._error(404, f"no route {self.path}")
                else:
                    self._error(405, "only POST is served")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/tokenize":
                    with server._lock:
                        server.probes.append(Call(None, self.path, dict(self.headers.items()), body))
                    if not server.tokenize:
                        self._error(404, "no route /tokenize")
                        return
                    pieces = re.findall(r"\w+|[^\w\s]", str(body.get("content", "")))
                    self._send(200, {"tokens": list(range(len(pieces)))})
                    return
                messages = body.get("messages") or [{}]
                match = _FRAME_COUNT.search(str(messages[-1].get("content", "")))
                clip = int(match.group(1)) - 60 if match else None
                with server._lock:
                    server.calls.append(Call(clip, self.path, dict(self.headers.items()), body))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                self._in_flight = True
                try:
                    if server.delay_s:
                        time.sleep(server.delay_s)
                    self._schema = "response_format" in body
                    if self.path != "/v1/chat/completions":
                        self._error(404, f"no route {self.path}")
                    elif self._schema and server.schema == "reject":
                        self._error(400, "'response_format' of type 'json_schema' is not supported")
                    elif (self._schema and server.schema == "json_object"
                          and body["response_format"].get("type") != "json_object"):
                        # llama-cpp-python's server: a 500 whose message names the field and the types it takes
                        self._error(500, "1 validation error: ('body', 'response_format', 'type'): Input should be "
                                         "'text' or 'json_object'")
                    else:
                        self._act(server._next_action(clip), clip)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to answer
                finally:
                    self._release()

            def _release(self) -> None:
                """The request stops counting as in flight once its answer starts going out: the client may send
                its next request as soon as it has read the answer, before this thread finishes."""
                if getattr(self, "_in_flight", False):
                    self._in_flight = False
                    with server._lock:
                        server.in_flight -= 1

            def _act(self, action: Action, clip: int | None) -> None:
                kind = action[0] if isinstance(action, tuple) else action
                valid = fake_descriptions(clip if clip is not None else -1)
                if kind == "ok":
                    self._reply(json.dumps({"descriptions": valid} if self._schema else valid))
                elif kind == "fenced":
                    self._reply("```json\n" + json.dumps(valid, indent=2) + "\n```")
                elif kind == "429":
                    self._error(429, "rate limited", {"Retry-After": str(action[1])})
                elif kind == "500":
                    self._error(500, "internal error")
                elif kind == "stall":
                    time.sleep(action[1])
                    self._reply(json.dumps(valid))
                elif kind == "hold":
                    action[1].wait(HOLD_LIMIT_S)
                    self._reply(json.dumps(valid))
                elif kind == "not_json":
                    self._reply("Sure! The left hand curls its index finger while the right hand rests.")
                elif kind == "missing_field":
                    broken = [dict(d) for d in valid]
                    del broken[2]["right"]
                    self._reply(json.dumps(broken))
                elif kind == "three":
                    self._reply(json.dumps(valid[:3]))
                elif kind == "status":
                    self._error(action[1], action[2])
                elif kind == "text":
                    self._reply(action[1])
                elif kind == "raw":
                    self._send_bytes(action[1], action[2])
                elif kind == "redirect":
                    self._send(action[1], {}, {"Location": action[2]})
                elif kind == "trickle":
                    self._trickle(action[1])
                else:
                    raise ValueError(f"unknown fake server action {action!r}")

            def _trickle(self, where: str) -> None:
                self._release()
                if where == "head":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Trickle: ")
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(10 ** 6))
                    self.end_headers()
                while not server.closing.wait(TRICKLE_S):
                    self.wfile.write(b"a" if where == "head" else b" ")

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self._send_bytes(status, json.dumps(payload).encode(), headers)

            def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self._release()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _reply(self, content: str) -> None:
                answer: dict[str, Any] = {"id": "chatcmpl-test", "object": "chat.completion",
                                          "choices": [{"index": 0, "finish_reason": "stop",
                                                       "message": {"role": "assistant", "content": content}}]}
                if server.usage is not None:
                    answer["usage"] = {"prompt_tokens": server.usage[0], "completion_tokens": server.usage[1],
                                       "total_tokens": sum(server.usage)}
                self._send(200, answer)

            def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
                self._send(status, {"error": {"message": message, "type": "test"}}, headers)

        return Handler

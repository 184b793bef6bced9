"""The LLM writer's HTTP transport: one deadline per request, and no redirects (reference §3).

:mod:`urllib.request` applies its ``timeout`` to each socket operation, so a server that sends one byte every
few seconds keeps a request alive for ever. Here a :class:`DeadlineRequest` carries a monotonic deadline, and
every connect, send and read of the status line, headers and body gets the time that is left as its socket
timeout; once it is spent the next read raises :class:`TimeoutError`.

:func:`build_opener` also refuses redirects: a 3xx answer reaches the caller as an
:class:`urllib.error.HTTPError` instead of being followed, so the API key is never sent to another address (and
a POST is never turned into a body-less GET). Proxies from the environment (``https_proxy``) still apply.
"""

from __future__ import annotations

import functools
import http.client
import io
import socket
import time
import urllib.request
from typing import Any


class DeadlineRequest(urllib.request.Request):
    """A POST (or, without ``data``, a GET) that must be connected, sent, answered and read within ``timeout_s``
    of its creation."""

    def __init__(self, url: str, *, data: bytes | None, headers: dict[str, str], timeout_s: float):
        super().__init__(url, data=data, headers=headers, method="GET" if data is None else "POST")
        self.deadline = time.monotonic() + timeout_s


def build_opener() -> urllib.request.OpenerDirector:
    """An opener that keeps each :class:`DeadlineRequest`'s deadline and refuses every redirect."""
    return urllib.request.build_opener(_DeadlineHTTPHandler(), _DeadlineHTTPSHandler(), _RefuseRedirects())


def _time_left(deadline: float) -> float:
    """Seconds until ``deadline``; raises :class:`TimeoutError` once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("request deadline passed")
    return left


class _DeadlineReader(io.RawIOBase):
    """The socket reader of a response, with the time left as the timeout of every read."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, deadline: float):
        super().__init__()
        self._raw, self._sock, self._deadline = raw, sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(_time_left(self._deadline))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any):
        super().__init__(sock, *args, **kwargs)
        # The socket's own reader (it keeps the socket open after urllib drops the connection) under a deadline.
        self.fp = io.BufferedReader(_DeadlineReader(self.fp.detach(), sock, deadline))


class _DeadlineConnection:
    """Mixed into :class:`http.client.HTTPConnection` and ``HTTPSConnection``."""

    def __init__(self, *args: Any, deadline: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._deadline = deadline
        self.response_class = functools.partial(_DeadlineResponse, deadline=deadline)

    def connect(self) -> None:
        self.timeout = _time_left(self._deadline)  # connecting (and the TLS handshake)
        super().connect()

    def send(self, data: Any) -> None:
        if self.sock is not None:
            self.sock.settimeout(_time_left(self._deadline))
        super().send(data)


class _HTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


def _deadline_of(request: urllib.request.Request) -> float:
    if not isinstance(request, DeadlineRequest):
        raise TypeError(f"the LLM writer's opener needs a DeadlineRequest, got {type(request).__name__}")
    return request.deadline


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPConnection, deadline=_deadline_of(req)), req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPSConnection, deadline=_deadline_of(req)), req,
                            context=self._context)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None  # not followed: urllib raises HTTPError(code) with the Location header

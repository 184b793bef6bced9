"""The local web viewer (``handx view``): a small HTTP server over one store, clip file or directory of clips.

Reference §9.1 lists the original project's web demo, a Gradio page that showed random noise; this viewer shows
the real motion: a list with search over the texts, 3D playback of both hands, the text variants and the
motion-code events (reference §2.5) on a timeline. What is served is decided by :mod:`handx.viz.viewer_api`;
this module is the HTTP side, built on the standard library only.

Endpoints (GET and HEAD)::

    /                      the page (static/index.html)
    /static/<name>         the packaged page files, from an allow-list made at start
    /api/meta              what is served: name, kind, clip count, fps, skeleton, files skipped, generate panel
    /api/clips?q=&offset=&limit=   ids and first texts; q: case-insensitive substring of id, file or any text
    /api/clip?id=[&file=]  one clip: motion (base64 float32), skeleton, texts, motion codes, timeline rows

and, only when started with a generator (``handx view --generate``; else 404), one POST endpoint::

    /api/generate          JSON body {texts: {left, right, relation}, clip?, file?, mode?, seed?, steps?,
                           guidance?} → the generated motion (:class:`handx.viz.viewer_api.ViewerGenerator`)

Security (DESIGN.md: servers bind 127.0.0.1 unless told otherwise): loopback by default, with a warning for any
other address; nothing outside the served path is ever opened (names from clients are checked and must be
known); request lines over 4 KiB get 414, request bodies 413, other methods 405; on loopback, a ``Host`` header
that is not a loopback name gets 403 (DNS rebinding); every response carries ``Content-Security-Policy:
default-src 'self'`` and ``X-Content-Type-Options: nosniff``. Requests are logged to the ``logging`` module.
A generate request must have a ``Content-Length`` (411) of at most 16 KiB (413), ``Content-Type:
application/json`` (415; a cross-site form cannot send it without a preflight, which is refused) and, when it
has an ``Origin``, this server's (403); a bad body gets 400, an unknown clip 404, a request while another
generation runs 429, and an unexpected failure a JSON 500 (the traceback goes to the log only, at debug level).

Load: a bounded pool of :data:`WORKERS` threads answers requests; while all are busy, further connections wait in
the kernel's listen queue (:data:`REQUEST_QUEUE` deep) instead of getting a thread each or being dropped. A client
that goes away before its answer is written (broken pipe, reset) is logged at debug level, not as a traceback.

Bound to an address other than loopback, every answer (JSON, error messages) shows the served path, the model's
run directory, the working directory and the home directory by name only (``store/...``, ``~/...``), so no
absolute path of the server's file system reaches the network.
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import json
import logging
import os
import queue
import re
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from handx import __version__
from handx.errors import HandxInputError
from handx.viz.viewer_api import (MAX_GENERATE_BODY, Catalog, GeneratorBusyError, UnsafeNameError, ViewerGenerator,
                                  open_catalog)

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
MAX_REQUEST_LINE = 4096  # bytes, method and HTTP version included
MAX_QUERY_FIELDS = 16
MAX_SEARCH = 256  # characters
MAX_PAGE = 500
DEFAULT_PAGE = 100
DRAIN_LIMIT = 65536  # a refused body up to this size is read and dropped, so the client gets the answer
WORKERS = 16  # threads answering requests
REQUEST_QUEUE = 128  # connections the kernel holds while every worker is busy (listen backlog)
#: Errors that mean the client closed its connection: not the server's problem, logged at debug level.
DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
GENERATE_PATH = "/api/generate"


def static_files() -> dict[str, tuple[bytes, str]]:
    """The page files shipped in ``handx/viz/static``: ``{name: (bytes, content type)}``, read once."""
    folder = importlib.resources.files("handx.viz") / "static"
    files = {}
    for entry in folder.iterdir():
        suffix = PurePosixPath(entry.name).suffix
        if entry.is_file() and suffix in STATIC_TYPES and not entry.name.startswith("."):
            files[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    if "index.html" not in files:
        raise RuntimeError(f"{folder}: the viewer's index.html is missing from the handx package")
    return files


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers


class _HTTPServer(HTTPServer):
    """An HTTP server whose requests are answered by a fixed pool of ``workers`` threads.

    The accepting thread hands each connection to the pool through a queue as deep as the pool; when that is
    full it waits, and new connections wait in the listen queue (``request_queue_size``) until a worker is free.
    """

    request_queue_size = REQUEST_QUEUE
    viewer: ViewerServer

    def __init__(self, address: tuple, handler: type[BaseHTTPRequestHandler], workers: int = WORKERS):
        super().__init__(address, handler)
        self._pending: queue.Queue = queue.Queue(maxsize=workers)
        self._workers = [threading.Thread(target=self._work, name=f"handx-viewer-worker-{k}", daemon=True)
                         for k in range(workers)]
        for worker in self._workers:
            worker.start()

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        self._pending.put((request, client_address))

    def _work(self) -> None:
        while (item := self._pending.get()) is not None:
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 (one request failed; the worker goes on)
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def handle_error(self, request: socket.socket, client_address: Any) -> None:
        """A request that raised: a client that went away at debug level, anything else as one line (the
        traceback at debug level), never printed to stderr by :mod:`socketserver`."""
        exc = sys.exc_info()[1]
        peer = client_address[0] if isinstance(client_address, tuple) else client_address
        if isinstance(exc, DISCONNECTS + (TimeoutError,)):
            log.debug("%s: the client went away (%s)", peer, type(exc).__name__)
            return
        log.error("%s: request failed: %s: %s", peer, type(exc).__name__, exc)
        log.debug("traceback of the failed request", exc_info=exc)

    def server_close(self) -> None:
        super().server_close()
        for _ in self._workers:  # each worker ends at its stop mark, after the requests queued before it
            self._pending.put(None)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    """One request. HTTP/1.0: every connection carries one request and closes."""

    server: _HTTPServer
    server_version = "handx-viewer"
    sys_version = ""
    timeout = 30  # seconds a client may take to send its request

    # -- framing ---------------------------------------------------------------------------------------------
    def handle_one_request(self) -> None:
        """:meth:`BaseHTTPRequestHandler.handle_one_request` with a 4 KiB request line instead of 64 KiB."""
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline, self.request_version, self.command = "", "", ""
                self._discard_head(self.raw_requestline)
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG, f"request line over {MAX_REQUEST_LINE} bytes")
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"unsupported method {self.command!r}")
                return
            method()
            self.wfile.flush()
        except TimeoutError as exc:
            self.log_error("request timed out: %r", exc)
            self.close_connection = True

    def _discard_head(self, line: bytes) -> None:
        """Read and drop the rest of a refused request's head (bounded), so that closing the connection does not
        reset it before the client has read the answer."""
        budget = DRAIN_LIMIT
        while not line.endswith(b"\n") and budget > 0:
            line = self.rfile.readline(min(budget, 8192))
            budget -= len(line)
            if not line:
                return
        while budget > 0:
            line = self.rfile.readline(min(budget, 8192))
            budget -= len(line)
            if line in (b"\r\n", b"\n", b""):
                return

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None,
                   headers: dict[str, str] | None = None) -> None:
        """Errors as JSON ``{"error": message, "status": code}`` with the security headers; closes."""
        status = HTTPStatus(code)
        self.log_error("%d %s", status.value, message or status.phrase)
        message = self.server.viewer.public(message or status.phrase)
        body = json.dumps({"error": message, "status": status.value}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    # -- methods ---------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def _refuse_method(self) -> None:
        self._drain_body()
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed; the viewer is read-only",
                        headers={"Allow": "GET, HEAD"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse_method

    def do_POST(self) -> None:
        """``/api/generate`` when a generator is loaded (404 when not); 405 anywhere else."""
        if self.path.partition("?")[0] != GENERATE_PATH:
            self._refuse_method()
            return
        try:
            generator = self.server.viewer.generator
            if generator is None:
                self._drain_body()
                raise _BadRequest(HTTPStatus.NOT_FOUND, "generation is off; start the viewer with handx view "
                                                        "--generate")
            body = self._read_body(MAX_GENERATE_BODY)
            if not self._host_allowed():
                raise _BadRequest(HTTPStatus.FORBIDDEN, "Host header is not a loopback name")
            if not self._same_origin():
                raise _BadRequest(HTTPStatus.FORBIDDEN, "Origin is not this viewer")
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type != "application/json":
                raise _BadRequest(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the request as Content-Type: "
                                                                     "application/json")
            self._json(self._generate(generator, body), head=False)
        except _BadRequest as exc:
            self.send_error(exc.status, str(exc), headers=exc.headers)
        except DISCONNECTS:
            raise
        except Exception as exc:  # noqa: BLE001 (answered as JSON; the traceback goes to the log at debug level)
            self._internal_error(exc)

    def _read_body(self, limit: int) -> bytes:
        """The request body, which must have a Content-Length of 1 to ``limit`` bytes."""
        if self.headers.get("Transfer-Encoding"):
            raise _BadRequest(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length, not chunked")
        raw = (self.headers.get("Content-Length") or "").strip()
        if not (raw.isascii() and raw.isdigit()) or int(raw) == 0:
            raise _BadRequest(HTTPStatus.LENGTH_REQUIRED, "send a JSON body with a Content-Length")
        if int(raw) > limit:
            self._drain_body()
            raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body over {limit} bytes")
        body = self.rfile.read(int(raw))
        if len(body) != int(raw):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "the body is shorter than its Content-Length")
        return body

    def _same_origin(self) -> bool:
        """True without an ``Origin`` header (not a browser), else when it names this server's address."""
        origin = self.headers.get("Origin")
        if origin is None:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        parts = urlsplit(origin.strip().lower())
        return parts.scheme == "http" and bool(host) and parts.netloc == host

    def _drain_body(self) -> int:
        """Read and drop a small request body (so the client reads the refusal); returns its declared size."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 < length <= DRAIN_LIMIT:
            self.rfile.read(length)
        return length

    # -- routing ---------------------------------------------------------------------------------------------
    def _handle(self, head: bool) -> None:
        try:
            if self.headers.get("Transfer-Encoding") or self._drain_body() != 0:
                raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request bodies are not accepted")
            if not self._host_allowed():
                raise _BadRequest(HTTPStatus.FORBIDDEN, "Host header is not a loopback name")
            if not self.path.startswith("/"):
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "request target must be a path")
            raw_path, _, raw_query = self.path.partition("?")
            path = unquote(raw_path, errors="strict")
            if "\x00" in path or "\\" in path or ".." in path.split("/"):
                raise _BadRequest(HTTPStatus.FORBIDDEN, "path contains '..', a NUL or a backslash")
            try:
                query = parse_qs(raw_query.partition("#")[0], keep_blank_values=True,
                                 max_num_fields=MAX_QUERY_FIELDS, errors="strict")
            except (ValueError, UnicodeDecodeError) as exc:
                raise _BadRequest(HTTPStatus.BAD_REQUEST, f"bad query string ({exc})") from None
            params = {k: v[0] for k, v in query.items()}
            self._route(path, params, head)
        except _BadRequest as exc:
            self.send_error(exc.status, str(exc), headers=exc.headers)
        except UnicodeDecodeError:
            self.send_error(HTTPStatus.BAD_REQUEST, "path is not UTF-8")
        except DISCONNECTS:
            raise  # nothing can be answered; the server logs it at debug level
        except Exception as exc:  # noqa: BLE001 (answered as JSON; the traceback goes to the log at debug level)
            self._internal_error(exc)

    def _internal_error(self, exc: Exception) -> None:
        log.error("viewer: %s %s failed: %s: %s", self.command, self.path[:200], type(exc).__name__, exc)
        log.debug("traceback of the failed request", exc_info=exc)
        self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR,
                        f"the viewer failed to answer ({type(exc).__name__}); see its log")

    def _host_allowed(self) -> bool:
        if not self.server.viewer.check_host:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        if not host:
            return True  # HTTP/1.0 clients may leave it out; browsers always send it
        name = host[: host.index("]") + 1] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
        return name in LOOPBACK_NAMES or name == self.server.viewer.host.lower()

    def _route(self, path: str, params: dict[str, str], head: bool) -> None:
        viewer = self.server.viewer
        if path in ("/", "/index.html"):
            self._static("index.html", head)
        elif path.startswith("/static/"):
            self._static(path[len("/static/"):], head)
        elif path == "/api/meta":
            generate = viewer.generator.info() if viewer.generator is not None else None
            self._json({**viewer.catalog.meta(), "version": __version__, "generate": generate}, head)
        elif path == "/api/clips":
            self._json(self._clips(viewer.catalog, params), head)
        elif path == "/api/clip":
            self._json(self._clip(viewer.catalog, params), head)
        elif path == GENERATE_PATH and viewer.generator is not None:
            raise _BadRequest(HTTPStatus.METHOD_NOT_ALLOWED, "POST a JSON body to generate", {"Allow": "POST"})
        else:
            raise _BadRequest(HTTPStatus.NOT_FOUND, "not found")

    def _static(self, name: str, head: bool) -> None:
        entry = self.server.viewer.static.get(name)  # only the packaged files: no path is ever built from name
        if entry is None:
            raise _BadRequest(HTTPStatus.NOT_FOUND, "not found")
        body, content_type = entry
        self._send(body, content_type, head, cache="no-cache")

    def _json(self, data: Any, head: bool) -> None:
        data = self.server.viewer.public(data)
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        self._send(body, "application/json; charset=utf-8", head, cache="no-store")

    def _send(self, body: bytes, content_type: str, head: bool, cache: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    # -- API -------------------------------------------------------------------------------------------------
    @staticmethod
    def _int(params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
        raw = params.get(name, "")
        if raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"{name} must be an integer, got {raw[:40]!r}") from None
        if not lo <= value <= hi:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"{name} must be in [{lo}, {hi}], got {value}")
        return value

    def _clips(self, catalog: Catalog, params: dict[str, str]) -> dict[str, Any]:
        query = params.get("q", "")
        if len(query) > MAX_SEARCH:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"search text over {MAX_SEARCH} characters")
        offset = self._int(params, "offset", 0, 0, 2**62)
        limit = self._int(params, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        try:
            found = catalog.search(query)
        except ValueError as exc:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, str(exc)) from None
        return {"query": query, "total": len(found), "count": len(catalog), "offset": offset, "limit": limit,
                "items": [catalog.summary(i) for i in found[offset:offset + limit]]}

    def _clip(self, catalog: Catalog, params: dict[str, str]) -> dict[str, Any]:
        if not params.get("id"):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "give the clip as id=...")
        try:
            index = catalog.find(params["id"], params.get("file") or None)
            return catalog.payload(index)
        except UnsafeNameError as exc:
            raise _BadRequest(HTTPStatus.FORBIDDEN, str(exc)) from None
        except KeyError as exc:
            raise _BadRequest(HTTPStatus.NOT_FOUND, str(exc.args[0])) from None
        except HandxInputError as exc:
            log.warning("viewer: %s", exc)
            raise _BadRequest(HTTPStatus.INTERNAL_SERVER_ERROR, f"cannot read the clip: {exc.problem}") from None

    @staticmethod
    def _generate(generator: ViewerGenerator, body: bytes) -> dict[str, Any]:
        try:
            return generator.generate(generator.parse(body))
        except GeneratorBusyError as exc:
            raise _BadRequest(HTTPStatus.TOO_MANY_REQUESTS, str(exc), {"Retry-After": "1"}) from None
        except UnsafeNameError as exc:
            raise _BadRequest(HTTPStatus.FORBIDDEN, str(exc)) from None
        except KeyError as exc:
            raise _BadRequest(HTTPStatus.NOT_FOUND, str(exc.args[0])) from None
        except HandxInputError as exc:  # the clip or the run cannot serve this request; no paths in the answer
            log.warning("viewer: %s", exc)
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"cannot generate: {exc.problem}") from None
        except ValueError as exc:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 (answered as JSON; the traceback goes to the log, not the page)
            log.exception("viewer: generation failed")
            raise _BadRequest(HTTPStatus.INTERNAL_SERVER_ERROR,
                              f"generation failed ({type(exc).__name__}); see the viewer's log") from None


class ViewerServer:
    """The viewer over ``path``, bound to ``host:port`` (port 0: a free one) when created.

    ``start()`` serves from a background thread (tests, notebooks); ``serve_forever()`` serves in the calling
    thread until Ctrl-C; ``close()`` stops and releases the port. ``url`` is the address to open.

    ``generate``: load a generator run of any family (:mod:`handx.pipelines`) at start (``ckpt``: a run directory
    or a built-in model's name; None: the default built-in generator, :data:`handx.assets.DEFAULT_GENERATOR`) and
    serve ``/api/generate``; a missing run raises :class:`HandxInputError` here, before the port is bound.
    """

    def __init__(self, path: str | os.PathLike, host: str = DEFAULT_HOST, port: int = 0, *, generate: bool = False,
                 ckpt: str | os.PathLike | None = None, device: str = "cpu"):
        if ckpt is not None and not generate:
            raise ValueError("ViewerServer: ckpt names the model of generate=True; it is given without it")
        self.catalog = open_catalog(path)
        self.generator = ViewerGenerator.load(self.catalog, ckpt, device) if generate else None
        self.static = static_files()
        self.check_host = is_loopback(host)
        if not self.check_host:
            log.warning("serving %s on %s: other machines on the network can read it (use 127.0.0.1 to keep it "
                        "local)", self.catalog.root, host or "all interfaces")
        self._hide = None if self.check_host else _path_hider(self._private_paths())
        server_class = _HTTPServer6 if ":" in host else _HTTPServer
        self.httpd = server_class((host.strip("[]"), port), _Handler)
        self.httpd.viewer = self
        self.host = host
        self._thread: threading.Thread | None = None
        # Build the search index while the user looks at the first page, so the first search is quick.
        threading.Thread(target=self.catalog.search_index, name="handx-viewer-index", daemon=True).start()

    def _private_paths(self) -> dict[str, str]:
        """Absolute paths of this machine that an answer may contain, each with the name it is shown as."""
        named = {self.catalog.root: self.catalog.root.name}
        if self.generator is not None:
            named[self.generator.run] = self.generator.run.name
        named[Path.cwd()] = "."
        named[Path.home()] = "~"
        paths: dict[str, str] = {}
        for path, name in named.items():
            for form in (path.absolute(), path.resolve()):
                if len(form.parts) > 1:  # never the root directory itself
                    paths.setdefault(str(form), name)
        return paths

    def public(self, value: Any) -> Any:
        """``value`` (JSON-ready: dicts, lists, strings, numbers) as it may be sent: unchanged on loopback; else
        with every absolute path of :meth:`_private_paths` replaced by its name."""
        if self._hide is None:
            return value
        if isinstance(value, str):
            return self._hide(value)
        if isinstance(value, dict):
            return {self.public(k): self.public(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.public(v) for v in value]
        return value

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1" if host != "::" else "::1"
        return f"http://[{host}]:{self.port}/" if ":" in host else f"http://{host}:{self.port}/"

    def start(self) -> ViewerServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="handx-viewer", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.25)

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> ViewerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _path_hider(paths: dict[str, str]):
    """A function that replaces each of ``paths`` (longest first) in a text by its name, where the path ends: at a
    separator, a space, a sentence's full stop or the end, not inside a longer name (``store2``, ``store.bak``)."""
    names = dict(sorted(paths.items(), key=lambda item: -len(item[0])))
    pattern = re.compile("(?:" + "|".join(map(re.escape, names)) + r")(?![\w-]|\.[\w.-])")
    return lambda text: pattern.sub(lambda m: names[m.group(0)], text) if names else text


def serve(path: str | os.PathLike, host: str = DEFAULT_HOST, port: int = 0, *, generate: bool = False,
          ckpt: str | os.PathLike | None = None, device: str = "cpu") -> ViewerServer:
    """Serve ``path`` (store, clip file or directory of clip files) from a background thread; returns the
    running :class:`ViewerServer` (``.url``, ``.close()``). ``generate``, ``ckpt``, ``device``: as there."""
    return ViewerServer(path, host, port, generate=generate, ckpt=ckpt, device=device).start()

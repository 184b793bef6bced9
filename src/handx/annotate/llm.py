"""The LLM description writer: any OpenAI-compatible chat-completions server (reference §3).

One chat call per clip turns its motion codes (reference §2.5) into five descriptions, with the prompt of
:mod:`handx.annotate.prompt`. It works with vLLM, the llama.cpp server, Ollama (``/v1``) and hosted
OpenAI-compatible APIs: the client POSTs ``{base_url}/chat/completions`` with the standard library only
(``urllib.request``), sending ``Authorization: Bearer <key>`` when a key is configured.

Scaling and robustness (DESIGN.md, "Where users outgrow one machine"):

- **bounded concurrency**: ``concurrency`` worker threads; results are yielded as they complete;
- **retries** with exponential backoff and full jitter (``uniform(0, min(max, base·2^attempt))``) on HTTP 408,
  429 (honouring ``Retry-After``, capped at ``backoff_max_s``) and 5xx, connection errors, timeouts, replies
  that do not parse (:class:`InvalidReply`) and validator rejections; any other 4xx fails fast with the
  server's message;
- **an on-disk cache**, one JSON file per key in ``cache_dir/ab/abcdef….json`` (key = SHA-256 of the clip's
  content hash, the prompt version, the model and the sampling settings), written atomically *before* the
  result is yielded, so an interrupted run loses nothing already done and a repeated run sends no request.

A clip that still fails after every retry becomes a :class:`WriteResult` whose ``error`` names the last problem;
the writer never raises for one bad clip.
"""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import datetime
import email.utils
import hashlib
import http.client
import json
import logging
import math
import os
import random
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from handx.annotate import prompt
from handx.annotate.base import MAX_TEXT_CHARS, NUM_VARIANTS, TEXT_KEYS, Description, WriteRequest, WriteResult
from handx.io.atomic import write_json

logger = logging.getLogger(__name__)

CACHE_FORMAT = "handx-llm-cache-v1"
#: Keys the writer sets itself; ``extra_body`` may not override them.
RESERVED_BODY_KEYS = ("model", "messages", "temperature", "max_tokens", "stream", "n")
_ERROR_DETAIL_CHARS = 500

#: ``validator(codes, descriptions)`` → problems; a non-empty list rejects the reply (and retries).
Validator = Callable[[dict[str, Any], tuple[Description, ...]], Sequence[str]]


class InvalidReply(ValueError):
    """The model's reply is not a JSON array of five ``{left, right, two_hands_relation}`` objects."""


@dataclasses.dataclass(frozen=True)
class LLMConfig:
    """How to reach an OpenAI-compatible chat-completions server and how to call it.

    Attributes:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (vLLM), ``http://127.0.0.1:11434/v1``
            (Ollama); the writer POSTs ``{base_url}/chat/completions``.
        model: the model name the server expects.
        api_key: sent as ``Authorization: Bearer <key>`` when given (never shown in ``repr``).
        temperature, max_tokens: sampling settings of every request.
        timeout_s: socket timeout of one request, in seconds.
        max_retries: retries after the first attempt (``max_retries + 1`` attempts in all).
        backoff_base_s, backoff_max_s: the retry delay before retry k (k = 0, 1, ...) is drawn from
            ``uniform(0, min(backoff_max_s, backoff_base_s · 2^k))``; a ``Retry-After`` header replaces it,
            capped at ``backoff_max_s``.
        concurrency: requests in flight at once.
        cache_dir: folder of the on-disk cache; ``None`` disables caching.
        extra_body: extra JSON fields merged into every request (e.g. vLLM's ``{"top_p": 0.9}`` or
            ``{"guided_json": ...}``); may not set the keys in :data:`RESERVED_BODY_KEYS`.
    """

    base_url: str
    model: str
    api_key: str | None = dataclasses.field(default=None, repr=False)
    temperature: float = 0.7
    max_tokens: int = 2048
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    concurrency: int = 4
    cache_dir: Path | None = None
    extra_body: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not re.match(r"^https?://[^/\s]+", self.base_url):
            raise ValueError(f"LLMConfig.base_url must be an http:// or https:// URL such as "
                             f"'http://127.0.0.1:8000/v1', got {self.base_url!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"LLMConfig.model must be a non-empty model name, got {self.model!r}")
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key.strip()):
            raise ValueError("LLMConfig.api_key must be None or a non-empty string")
        _check_number("temperature", self.temperature, low=0.0, high=2.0)
        _check_int("max_tokens", self.max_tokens, low=1)
        _check_number("timeout_s", self.timeout_s, low=0.0, low_open=True)
        _check_int("max_retries", self.max_retries, low=0)
        _check_number("backoff_base_s", self.backoff_base_s, low=0.0)
        _check_number("backoff_max_s", self.backoff_max_s, low=0.0)
        _check_int("concurrency", self.concurrency, low=1)
        if self.cache_dir is not None:
            if not isinstance(self.cache_dir, (str, os.PathLike)):
                raise ValueError(f"LLMConfig.cache_dir must be a path or None, got {type(self.cache_dir).__name__}")
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if self.extra_body is not None:
            if not isinstance(self.extra_body, Mapping) or not all(isinstance(k, str) for k in self.extra_body):
                raise ValueError(f"LLMConfig.extra_body must be a dict with string keys, got {self.extra_body!r}")
            reserved = sorted(set(self.extra_body) & set(RESERVED_BODY_KEYS))
            if reserved:
                raise ValueError(f"LLMConfig.extra_body may not set {reserved}: use the LLMConfig fields "
                                 f"(reserved keys: {', '.join(RESERVED_BODY_KEYS)})")
            try:
                json.dumps(self.extra_body)
            except (TypeError, ValueError) as err:
                raise ValueError(f"LLMConfig.extra_body must be JSON-serialisable: {err}") from None
            object.__setattr__(self, "extra_body", copy.deepcopy(dict(self.extra_body)))

    @property
    def url(self) -> str:
        """The endpoint every request is POSTed to."""
        return f"{self.base_url.rstrip('/')}/chat/completions"

    def settings(self) -> dict[str, Any]:
        """The sampling settings that change a reply (part of the cache key and the cache record)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "extra_body": self.extra_body}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LLMConfig:
        """A config from the environment; ``overrides`` (LLMConfig field names) win over it.

        ``HANDX_LLM_BASE_URL`` (else ``OPENAI_BASE_URL``), ``HANDX_LLM_MODEL`` and ``HANDX_LLM_API_KEY`` (else
        ``OPENAI_API_KEY``). ``environ`` defaults to ``os.environ``.
        """
        env = os.environ if environ is None else environ
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"LLMConfig.from_env: unknown field(s) {unknown}; fields are {sorted(fields)}")
        values: dict[str, Any] = {
            "base_url": env.get("HANDX_LLM_BASE_URL") or env.get("OPENAI_BASE_URL"),
            "model": env.get("HANDX_LLM_MODEL"),
            "api_key": env.get("HANDX_LLM_API_KEY") or env.get("OPENAI_API_KEY") or None,
        }
        values.update(overrides)
        if not values["base_url"]:
            raise ValueError("LLMConfig.base_url is not set: set HANDX_LLM_BASE_URL (or OPENAI_BASE_URL), "
                             "e.g. http://127.0.0.1:8000/v1, or pass base_url=")
        if not values["model"]:
            raise ValueError("LLMConfig.model is not set: set HANDX_LLM_MODEL or pass model=")
        return cls(**values)


def _check_number(name: str, value: Any, *, low: float, high: float | None = None, low_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        if high is not None:
            bound += f" and <= {high}"
        raise ValueError(f"LLMConfig.{name} must be a number {bound}, got {value!r}")


def _check_int(name: str, value: Any, *, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"LLMConfig.{name} must be an integer >= {low}, got {value!r}")


# ----------------------------------------------------------------------------------------------------- replies

_FENCE = re.compile(r"\A```[ \t]*(?:json|JSON)?[ \t]*\n(?P<body>.*?)\n?[ \t]*```\Z", re.DOTALL)


def parse_reply(text: str) -> tuple[Description, ...]:
    """The model's reply → five descriptions, strictly (reference §3 output format).

    One optional surrounding ```` ```json ... ``` ```` fence is removed; the rest must be a JSON array of
    exactly five objects with exactly the keys ``left``, ``right`` and ``two_hands_relation``, each a non-empty
    string of at most ``MAX_TEXT_CHARS`` characters. Raises :class:`InvalidReply` saying what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidReply(f"reply must be text, got {type(text).__name__}")
    body = text.strip()
    fence = _FENCE.match(body)
    if fence:
        body = fence.group("body")
    if not body:
        raise InvalidReply("reply is empty")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        raise InvalidReply(f"reply is not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); "
                           f"it starts {body[:80]!r}") from None
    if not isinstance(data, list):
        raise InvalidReply(f"reply must be a JSON array of {NUM_VARIANTS} objects, got a JSON "
                           f"{_json_type(data)}")
    if len(data) != NUM_VARIANTS:
        raise InvalidReply(f"reply must hold exactly {NUM_VARIANTS} descriptions, got {len(data)}")
    descriptions = []
    for n, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise InvalidReply(f"description {n} must be a JSON object, got a JSON {_json_type(item)}")
        missing = [k for k in TEXT_KEYS if k not in item]
        if missing:
            raise InvalidReply(f"description {n} lacks key(s) {missing}; expected exactly {list(TEXT_KEYS)}")
        extra = sorted(set(item) - set(TEXT_KEYS))
        if extra:
            raise InvalidReply(f"description {n} has unexpected key(s) {extra}; expected exactly {list(TEXT_KEYS)}")
        for key in TEXT_KEYS:
            value = item[key]
            if not isinstance(value, str):
                raise InvalidReply(f"description {n}: {key!r} must be a string, got a JSON {_json_type(value)}")
            if not value.strip():
                raise InvalidReply(f"description {n}: {key!r} is empty")
            if len(value) > MAX_TEXT_CHARS:
                raise InvalidReply(f"description {n}: {key!r} is {len(value)} characters long "
                                   f"(limit {MAX_TEXT_CHARS})")
        descriptions.append(Description(left=item["left"], right=item["right"],
                                        two_hands_relation=item["two_hands_relation"]))
    return tuple(descriptions)


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


_THINK = re.compile(r"\A\s*<think>.*?</think>\s*", re.DOTALL)


def reply_content(raw: bytes) -> str:
    """The assistant text of a chat-completions response body.

    A leading ``<think>…</think>`` block (reasoning models served by llama.cpp or Ollama) is dropped.
    Raises :class:`InvalidReply` when the body is not a chat completion or the reply was cut at ``max_tokens``.
    """
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidReply(f"server response is not JSON; it starts {raw[:80]!r}") from None
    if isinstance(data, dict) and "error" in data and "choices" not in data:
        raise InvalidReply(f"server answered with an error: {_error_message(data)}")
    try:
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise InvalidReply(f"server response has no choices[0].message.content; it starts {raw[:120]!r}") from None
    if choice.get("finish_reason") == "length":
        raise InvalidReply("reply was cut off at max_tokens (finish_reason 'length'); raise LLMConfig.max_tokens")
    if not isinstance(content, str):
        raise InvalidReply(f"choices[0].message.content must be text, got {content!r}")
    return _THINK.sub("", content, count=1)


def _error_message(data: Any) -> str:
    """The human-readable message of an OpenAI-style error body (``{"error": {"message": ...}}``)."""
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(error.get(key), str):
                    return error[key]
        if isinstance(error, str):
            return error
        if isinstance(data.get("detail"), str):
            return data["detail"]
    return json.dumps(data)[:_ERROR_DETAIL_CHARS]


# ------------------------------------------------------------------------------------------------------ writer


@dataclasses.dataclass(frozen=True)
class _Problem:
    """Why one attempt failed: ``retry`` says whether another attempt may help."""

    message: str
    retry: bool
    retry_after: float | None = None


def _retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) → seconds to wait, or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


class LLMWriter:
    """Writes five descriptions per clip with an OpenAI-compatible chat-completions server (reference §3).

    ``validator(codes, descriptions)`` may reject a parsed reply with a list of problems (it is then retried
    like an invalid reply). ``sleep`` and ``rng`` are injectable so tests run without real waits.
    ``requests_sent`` counts HTTP requests across all calls.
    """

    def __init__(self, config: LLMConfig, *, validator: Validator | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None):
        if not isinstance(config, LLMConfig):
            raise TypeError(f"LLMWriter needs an LLMConfig, got {type(config).__name__}")
        self.config = config
        self.validator = validator
        self.name = f"llm:{config.model}"
        self.prompt_version = prompt.PROMPT_VERSION
        self.requests_sent = 0
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._opener = urllib.request.build_opener()
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "User-Agent": "handx-annotate"}
        if config.api_key:
            self._headers["Authorization"] = f"Bearer {config.api_key}"

    # -------------------------------------------------------------------------------------------- caching
    def cache_key(self, request: WriteRequest) -> str:
        """SHA-256 of the clip content hash, prompt version, model and sampling settings."""
        identity = {"content_hash": request.content_hash, "prompt_version": self.prompt_version,
                    "model": self.config.model, **self.config.settings()}
        return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def cache_path(self, key: str) -> Path | None:
        """``cache_dir/ab/abcdef….json`` for key ``abcdef…``, or None without a cache."""
        if self.config.cache_dir is None:
            return None
        return self.config.cache_dir / key[:2] / f"{key}.json"

    def _cache_read(self, request: WriteRequest, path: Path | None) -> tuple[Description, ...] | None:
        if path is None or not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("format") != CACHE_FORMAT:
                raise InvalidReply(f"format {record.get('format')!r}, expected {CACHE_FORMAT!r}")
            return parse_reply(json.dumps(record["descriptions"]))
        except (OSError, ValueError, KeyError, AttributeError) as err:
            logger.warning("%s: ignoring unreadable cache file %s (%s); asking the model again",
                           request.clip_id, path, err)
            return None

    def _cache_write(self, request: WriteRequest, key: str, path: Path | None,
                     descriptions: tuple[Description, ...]) -> None:
        if path is None:
            return
        write_json(path, {
            "format": CACHE_FORMAT,
            "key": key,
            "content_hash": request.content_hash,
            "clip_id": request.clip_id,
            "model": self.config.model,
            "prompt_version": self.prompt_version,
            "settings": self.config.settings(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "descriptions": [d.to_json() for d in descriptions],
        })

    # ----------------------------------------------------------------------------------------------- HTTP
    def _post(self, body: bytes) -> str | _Problem:
        """One HTTP request → the assistant text, or the problem that stopped it."""
        request = urllib.request.Request(self.config.url, data=body, headers=self._headers, method="POST")
        with self._lock:
            self.requests_sent += 1
        try:
            with self._opener.open(request, timeout=self.config.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            return self._http_problem(err)
        except TimeoutError:
            return _Problem(f"no response within timeout_s={self.config.timeout_s:g} s", retry=True)
        except urllib.error.URLError as err:
            if isinstance(err.reason, TimeoutError):
                return _Problem(f"no response within timeout_s={self.config.timeout_s:g} s", retry=True)
            if isinstance(err.reason, ssl.SSLCertVerificationError):
                return _Problem(f"TLS certificate of {self.config.url} not trusted: {err.reason}", retry=False)
            return _Problem(f"cannot connect to {self.config.url}: {err.reason}", retry=True)
        except (http.client.HTTPException, OSError) as err:
            return _Problem(f"connection to {self.config.url} failed: {type(err).__name__}: {err}", retry=True)
        try:
            return reply_content(raw)
        except InvalidReply as err:
            return _Problem(f"invalid reply: {err}", retry=True)

    def _http_problem(self, err: urllib.error.HTTPError) -> _Problem:
        try:
            raw = err.read()
        except (OSError, http.client.HTTPException):
            raw = b""
        try:
            detail = _error_message(json.loads(raw))
        except (UnicodeDecodeError, json.JSONDecodeError):
            detail = raw.decode("utf-8", "replace").strip()[:_ERROR_DETAIL_CHARS]
        message = f"HTTP {err.code} {err.reason} from {self.config.url}" + (f": {detail}" if detail else "")
        if err.code in (408, 429) or err.code >= 500:
            retry_after = _retry_after_seconds(err.headers.get("Retry-After")) if err.headers else None
            return _Problem(message, retry=True, retry_after=retry_after)
        if err.code in (401, 403):
            message += " (check LLMConfig.api_key / HANDX_LLM_API_KEY)"
        elif err.code == 404:
            message += " (check LLMConfig.base_url, which should end in /v1, and LLMConfig.model)"
        return _Problem(message, retry=False)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0-based)."""
        cap = self.config.backoff_max_s
        if retry_after is not None:
            return min(retry_after, cap)
        return self._rng.uniform(0.0, min(cap, self.config.backoff_base_s * 2.0 ** attempt))

    # -------------------------------------------------------------------------------------------- writing
    def write_one(self, request: WriteRequest) -> WriteResult:
        """Describe one clip: from the cache, or by asking the model (with retries); never raises for the clip."""
        key = self.cache_key(request)
        path = self.cache_path(key)
        cached = self._cache_read(request, path)
        if cached is not None:
            return WriteResult(request.clip_id, descriptions=cached)
        try:
            body = json.dumps({
                **(self.config.extra_body or {}),
                "model": self.config.model,
                "messages": prompt.build_messages(request.codes),
                "temperature": self.config.temperature,
                "max_tokens": self.config.max_tokens,
                "stream": False,
            }).encode("utf-8")
        except (TypeError, ValueError) as err:
            return WriteResult(request.clip_id, error=f"motion codes cannot be sent as JSON: {err}")

        attempts = self.config.max_retries + 1
        problem = _Problem("no attempt made", retry=False)
        for attempt in range(attempts):
            if attempt:
                delay = self._delay(attempt - 1, problem.retry_after)
                logger.info("%s: retry %d/%d in %.2f s after: %s", request.clip_id, attempt,
                            self.config.max_retries, delay, problem.message)
                self._sleep(delay)
            outcome = self._post(body)
            if isinstance(outcome, _Problem):
                problem = outcome
            else:
                try:
                    descriptions = parse_reply(outcome)
                except InvalidReply as err:
                    problem = _Problem(f"invalid reply: {err}", retry=True)
                else:
                    rejected = list(self.validator(request.codes, descriptions)) if self.validator else []
                    if not rejected:
                        self._cache_write(request, key, path, descriptions)
                        return WriteResult(request.clip_id, descriptions=descriptions)
                    problem = _Problem("validator rejected the reply: " + "; ".join(map(str, rejected)),
                                       retry=True)
            if not problem.retry:
                break
        if not problem.retry:
            error = f"request refused, not retried: {problem.message}"
        else:
            error = f"gave up after {attempt + 1} attempt{'s' if attempt else ''}: {problem.message}"
        logger.warning("%s: %s", request.clip_id, error)
        return WriteResult(request.clip_id, error=error)

    def write_many(self, requests: Iterable[WriteRequest]) -> Iterator[WriteResult]:
        """One result per request, yielded as each completes; at most ``concurrency`` requests in flight.

        Requests are drawn from ``requests`` lazily (a bounded number ahead of the workers), so an iterator
        over a million clips is fine. Closing the generator early cancels the clips not yet started.
        """
        workers = self.config.concurrency
        pending: set[concurrent.futures.Future[WriteResult]] = set()
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="handx-llm") as pool:
            try:
                for request in requests:
                    pending.add(pool.submit(self.write_one, request))
                    if len(pending) >= 2 * workers:
                        done, pending = concurrent.futures.wait(
                            pending, return_when=concurrent.futures.FIRST_COMPLETED)
                        for future in done:
                            yield future.result()
                for future in concurrent.futures.as_completed(pending):
                    pending.discard(future)
                    yield future.result()
            finally:
                for future in pending:
                    future.cancel()

"""The LLM description writer: any OpenAI-compatible chat-completions server (reference §3).

One chat call per clip turns its motion codes (reference §2.5) into five descriptions, with the prompt of
:mod:`handx.annotate.prompt`. It works with vLLM, the llama.cpp server, Ollama (``/v1``) and hosted
OpenAI-compatible APIs: the client POSTs ``{base_url}/chat/completions`` with the standard library only
(``urllib.request``, through :mod:`handx.annotate.llm_http`), sending ``Authorization: Bearer <key>`` when a
key is configured.

Scaling and robustness (DESIGN.md, "Where users outgrow one machine"):

- **bounded concurrency**: ``concurrency`` worker threads; results are yielded as they complete;
- **retries** with exponential backoff and full jitter (``uniform(0, min(max, base·2^attempt))``) on HTTP 408,
  429 (honouring ``Retry-After``, capped at ``backoff_max_s``) and 5xx, connection errors, timeouts, replies
  that do not parse (:class:`InvalidReply`) and validator rejections; any other 4xx fails fast with the
  server's message;
- **an on-disk cache**, one JSON file per key in ``cache_dir/ab/abcdef….json`` (key = SHA-256 of the clip's
  content hash, the prompt version, the model and the sampling settings), written atomically *before* the
  result is yielded, so an interrupted run loses nothing already done and a repeated run sends no request.

Fitting the model (docs/annotation.md, "Prompt budget and cost"):

- **the context**: on the first clip that is not cached the writer asks the server for its context size
  (llama.cpp ``GET /props``: ``default_generation_settings.n_ctx``; vLLM ``GET /v1/models``: ``max_model_len``),
  takes the smaller of that and ``context_tokens`` when both are known, else whichever is, else
  :data:`~handx.annotate.prompt.DEFAULT_CONTEXT`, and plans the prompt (:func:`handx.annotate.prompt.plan_prompt`:
  as many worked examples as fit). Where the server has ``POST /tokenize`` (llama.cpp, vLLM) the system message
  is counted by the server's tokenizer, else estimated. A clip whose prompt and reply budget would not fit is
  failed without a request;
- **structured output**: requests carry ``response_format`` with the reply's JSON schema (``json_schema``); a
  server that refuses it (HTTP 400/422/500 naming ``response_format`` or ``json_schema``) is asked again at once
  with a ``json_object`` response_format carrying the schema (llama-cpp-python's server constrains the reply by
  it), and one that refuses that too, without any; later requests of the writer keep the style that worked;
- **cost**: prompt and completion tokens per clip (the server's ``usage`` when it gives one, else
  :func:`~handx.annotate.prompt.estimate_tokens`), cache hits and requests are counted for the run's report
  (:meth:`LLMWriter.cost_report`).

A clip that still fails after every retry becomes a :class:`WriteResult` whose ``error`` names the last problem;
the writer never raises for one bad clip.

Hostile or broken servers (docs/security.md):

- **the API key stays with** ``base_url``: redirects are never followed (a 3xx is reported, not retried, naming
  where it pointed), and the key's text is replaced by ``***`` in every reply, description, cache record, log
  line and error the writer produces, should a server echo it back;
- **a deadline per request**: ``timeout_s`` bounds the whole request (connect, send, status line, headers,
  body), so a server trickling bytes cannot hold a worker for ever;
- **bounded replies**: a body over ``max_reply_bytes`` is refused (not retried); JSON nested past the
  recursion limit or holding an integer of too many digits is an invalid reply like any other.
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from handx.annotate import llm_http, prompt
from handx.annotate.base import MAX_TEXT_CHARS, NUM_VARIANTS, TEXT_KEYS, Description, WriteRequest, WriteResult
from handx.io.atomic import write_json

logger = logging.getLogger(__name__)

CACHE_FORMAT = "handx-llm-cache-v1"
#: Keys the writer sets itself; ``extra_body`` may not override them.
RESERVED_BODY_KEYS = ("model", "messages", "temperature", "max_tokens", "stream", "n")
_ERROR_DETAIL_CHARS = 500
REDACTED = "***"

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
        timeout_s: the whole budget of one request (connecting, sending, and reading the status line, headers
            and body), in seconds; a retry gets a fresh budget.
        max_retries: retries after the first attempt (``max_retries + 1`` attempts in all).
        backoff_base_s, backoff_max_s: the retry delay before retry k (k = 0, 1, ...) is drawn from
            ``uniform(0, min(backoff_max_s, backoff_base_s · 2^k))``; a ``Retry-After`` header replaces it,
            capped at ``backoff_max_s``.
        concurrency: requests in flight at once.
        cache_dir: folder of the on-disk cache; ``None`` disables caching.
        extra_body: extra JSON fields merged into every request (e.g. vLLM's ``{"top_p": 0.9}`` or
            ``{"guided_json": ...}``); may not set the keys in :data:`RESERVED_BODY_KEYS`.
        max_reply_bytes: the largest response body accepted (default 4 MiB); a larger one is refused.
        context_tokens: the model's context size (prompt + reply) as the user knows it; the smaller of it and
            the size the server reports is used. ``None``: the server's, else
            :data:`~handx.annotate.prompt.DEFAULT_CONTEXT`.
        structured_output: send the reply's JSON schema as ``response_format`` (falling back to plain JSON when
            the server refuses it); ``False`` never sends it. Ignored when ``extra_body`` sets its own
            ``response_format``.
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
    max_reply_bytes: int = 4 * 2 ** 20
    context_tokens: int | None = None
    structured_output: bool = True

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
        _check_int("max_reply_bytes", self.max_reply_bytes, low=1)
        if self.context_tokens is not None:
            _check_int("context_tokens", self.context_tokens, low=1)
        if not isinstance(self.structured_output, bool):
            raise ValueError(f"LLMConfig.structured_output must be True or False, got {self.structured_output!r}")
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

    One optional surrounding ```` ```json ... ``` ```` fence is removed; the rest must be a JSON object
    ``{"descriptions": [...]}`` (the form the prompt and the schema ask for) or a bare JSON array, holding exactly
    five objects with exactly the keys ``left``, ``right`` and ``two_hands_relation``, each a non-empty
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
    data = _load_json(body, "reply")
    if isinstance(data, dict) and set(data) == {"descriptions"}:
        data = data["descriptions"]
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


def _load_json(text: str | bytes, what: str) -> Any:
    """``json.loads`` for text from the server: every way it can fail becomes :class:`InvalidReply`.

    Besides syntax errors these are nesting past the interpreter's recursion limit (``"[" * 100000``), an
    integer of more digits than Python converts, and bytes that are not UTF-8.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        reason = f"{err.msg} at line {err.lineno} column {err.colno}"
    except RecursionError:
        reason = "nested too deeply"
    except ValueError as err:
        reason = str(err)
    raise InvalidReply(f"{what} is not valid JSON ({reason}); it starts {text[:80]!r}")


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


_THINK = re.compile(r"\A\s*<think>.*?</think>\s*", re.DOTALL)


def reply_content(raw: bytes) -> str:
    """The assistant text of a chat-completions response body.

    A leading ``<think>…</think>`` block (reasoning models served by llama.cpp or Ollama) is dropped.
    Raises :class:`InvalidReply` when the body is not a chat completion or the reply was cut at ``max_tokens``.
    """
    return _completion(raw)[0]


def _usage(data: Any) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` of a response's ``usage``, or None when it has none."""
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None
    numbers = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        return None
    return numbers[0], numbers[1]


def _completion(raw: bytes) -> tuple[str, tuple[int, int] | None]:
    """The assistant text of a chat-completions body (see :func:`reply_content`) and its ``usage``."""
    data = _load_json(raw, "server response")
    if isinstance(data, dict) and "error" in data and "choices" not in data:
        raise InvalidReply(f"server answered with an error: {_error_message(data, raw)}")
    try:
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise InvalidReply(f"server response has no choices[0].message.content; it starts {raw[:120]!r}") from None
    if choice.get("finish_reason") == "length":
        raise InvalidReply("reply was cut off at max_tokens (finish_reason 'length'); raise LLMConfig.max_tokens")
    if not isinstance(content, str):
        raise InvalidReply(f"choices[0].message.content must be text, got {content!r}")
    return _THINK.sub("", content, count=1), _usage(data)


def _error_message(data: Any, raw: bytes) -> str:
    """The human-readable message of an OpenAI-style error body (``{"error": {"message": ...}}``), else the
    start of the body ``raw`` it was parsed from."""
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
    return raw.decode("utf-8", "replace").strip()[:_ERROR_DETAIL_CHARS]


# ------------------------------------------------------------------------------------------------------ writer


@dataclasses.dataclass(frozen=True)
class _Problem:
    """Why one attempt failed: ``retry`` says whether another attempt may help."""

    message: str
    retry: bool
    retry_after: float | None = None
    schema_refused: bool = False  # the server refused the request's response_format


@dataclasses.dataclass(frozen=True)
class _Reply:
    """The assistant text of one answered request and the server's ``(prompt, completion)`` usage, if given."""

    text: str
    usage: tuple[int, int] | None


_SCHEMA_WORDS = re.compile(r"response_format|json_schema|json schema|structured output|guided", re.IGNORECASE)
_PROBE_TIMEOUT_S = 10.0


def _int_field(data: Any, *path: str) -> int | None:
    """``data[path[0]][path[1]]…`` when it is a positive integer, else None."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data if isinstance(data, int) and not isinstance(data, bool) and data > 0 else None


@dataclasses.dataclass
class _Usage:
    """Token and request counts of one writer (updated under its lock)."""

    cache_hits: int = 0
    prompt_tokens: list[int] = dataclasses.field(default_factory=list)  # per clip answered by the server
    completion_tokens: list[int] = dataclasses.field(default_factory=list)
    from_server: int = 0  # replies whose tokens the server reported
    estimated: int = 0  # replies whose tokens were estimated


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
    like an invalid reply); it sees the descriptions with the API key redacted. ``sleep`` and ``rng`` are
    injectable so tests run without real waits. ``requests_sent`` counts HTTP requests across all calls.
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
        self._opener = llm_http.build_opener()
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "User-Agent": "handx-annotate"}
        self._plan: prompt.PromptPlan | None = None
        self._plan_lock = threading.Lock()
        self.context_source = "not asked yet"
        own_format = "response_format" in (config.extra_body or {})
        #: "json_schema" (asked for), "json_object" (a json_object response_format with the schema, after a
        #: server refused json_schema), "plain JSON" (off or both refused) or "extra_body" (the caller's own).
        self.structured_output = "extra_body" if own_format else "json_schema" if config.structured_output \
            else "plain JSON"
        self.structured_output_note = "" if config.structured_output or own_format else "turned off"
        self._usage = _Usage()

    # ------------------------------------------------------------------------------------- fitting the model
    @property
    def api_root(self) -> str:
        """``base_url`` without its trailing ``/v1``: where llama.cpp and vLLM serve ``/props`` and ``/tokenize``."""
        root = self.config.base_url.rstrip("/")
        return root[:-3] if root.endswith("/v1") else root

    def _request_json(self, url: str, payload: dict[str, Any] | None = None) -> Any:
        """GET (or POST ``payload`` to) ``url`` → the JSON body, or None on any failure (a probe may fail)."""
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = llm_http.DeadlineRequest(url, data=data, headers=self._headers,
                                           timeout_s=min(self.config.timeout_s, _PROBE_TIMEOUT_S))
        if self.config.api_key:
            request.add_unredirected_header("Authorization", f"Bearer {self.config.api_key}")
        try:
            with self._opener.open(request, timeout=self.config.timeout_s) as response:
                raw = self._read_body(response)
            return None if raw is None else json.loads(raw)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError, RecursionError):
            return None

    def server_context(self) -> tuple[int | None, str]:
        """The context size the server reports, and where it came from (llama.cpp ``/props``, vLLM
        ``/v1/models``), or ``(None, "")``."""
        n_ctx = self._request_json(f"{self.api_root}/props")
        found = _int_field(n_ctx, "default_generation_settings", "n_ctx") or _int_field(n_ctx, "n_ctx")
        if found:
            return found, "server /props"
        models = self._request_json(f"{self.config.base_url.rstrip('/')}/models")
        entries = models.get("data") if isinstance(models, dict) else None
        if isinstance(entries, list):
            mine = [e for e in entries if isinstance(e, dict) and e.get("id") == self.config.model]
            for entry in mine or entries[:1]:
                found = _int_field(entry, "max_model_len")
                if found:
                    return found, "server /v1/models"
        return None, ""

    def server_token_count(self, text: str) -> int | None:
        """Tokens of ``text`` by the server's own tokenizer (``POST /tokenize``: llama.cpp answers
        ``{"tokens": [...]}``, vLLM ``{"count": n, ...}``), or None where it has none."""
        data = self._request_json(f"{self.api_root}/tokenize",
                                  {"content": text, "prompt": text, "model": self.config.model})
        if not isinstance(data, dict):
            return None
        if isinstance(data.get("tokens"), list):
            return len(data["tokens"])
        return _int_field(data, "count")

    def prepare(self) -> prompt.PromptPlan:
        """The prompt plan of this writer, made once: the context (asked of the server, see the module
        docstring) and the worked examples that fit it. Raises ``ValueError`` when no prompt fits."""
        with self._plan_lock:
            if self._plan is not None:
                return self._plan
            reported, source = self.server_context()
            user = self.config.context_tokens
            if reported and user:
                context = min(reported, user)
                source = f"{source} ({reported}) and context_tokens ({user}): the smaller"
            elif reported:
                context = reported
            elif user:
                context, source = user, "context_tokens"
            else:
                context, source = prompt.DEFAULT_CONTEXT, "default (the server reports none)"
            counted_by, count = "estimate", prompt.estimate_tokens
            if self.server_token_count("hand") is not None:
                def count(text: str) -> int:
                    return self.server_token_count(text) or prompt.estimate_tokens(text)
                counted_by = "server"
            self._plan = prompt.plan_prompt(context, self.config.max_tokens, count=count, counted_by=counted_by)
            self.context_source = source
            logger.info("prompt plan: context %d tokens (%s), %d worked example(s), system message %d tokens "
                        "(%s)", context, source, self._plan.n_examples, self._plan.system_tokens, counted_by)
            return self._plan

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
    def _redact(self, text: str) -> str:
        """``text`` with every occurrence of the API key's text replaced by ``***`` (applied to every reply,
        description and problem, so a server that echoes the key cannot get it stored, logged or reported)."""
        return text.replace(self.config.api_key, REDACTED) if self.config.api_key else text

    def _read_body(self, response: Any) -> bytes | None:
        """At most ``max_reply_bytes`` of a response body, the API key redacted; None when the body is larger."""
        raw = response.read(self.config.max_reply_bytes + 1)
        if len(raw) > self.config.max_reply_bytes:
            return None
        return raw.replace(self.config.api_key.encode(), REDACTED.encode()) if self.config.api_key else raw

    def _post(self, body: bytes) -> _Reply | _Problem:
        """One HTTP request → the assistant text and usage, or the problem that stopped it."""
        timeout = f"no complete response within timeout_s={self.config.timeout_s:g} s"
        request = llm_http.DeadlineRequest(self.config.url, data=body, headers=self._headers,
                                           timeout_s=self.config.timeout_s)
        if self.config.api_key:  # never copied onto a redirected request (none is followed anyway)
            request.add_unredirected_header("Authorization", f"Bearer {self.config.api_key}")
        with self._lock:
            self.requests_sent += 1
        try:
            with self._opener.open(request, timeout=self.config.timeout_s) as response:
                raw = self._read_body(response)
        except urllib.error.HTTPError as err:
            return self._http_problem(err)
        except TimeoutError:
            return _Problem(timeout, retry=True)
        except urllib.error.URLError as err:
            if isinstance(err.reason, TimeoutError):
                return _Problem(timeout, retry=True)
            if isinstance(err.reason, ssl.SSLCertVerificationError):
                return _Problem(f"TLS certificate of {self.config.url} not trusted: {err.reason}", retry=False)
            return _Problem(f"cannot connect to {self.config.url}: {err.reason}", retry=True)
        except (http.client.HTTPException, OSError) as err:
            return _Problem(f"connection to {self.config.url} failed: {type(err).__name__}: {err}", retry=True)
        if raw is None:
            return _Problem(f"the response from {self.config.url} is larger than max_reply_bytes="
                            f"{self.config.max_reply_bytes} bytes (raise LLMConfig.max_reply_bytes if the server "
                            f"is trusted)", retry=False)
        try:
            text, usage = _completion(raw)
        except InvalidReply as err:
            return _Problem(f"invalid reply: {err}", retry=True)
        return _Reply(self._redact(text), usage)

    def _http_problem(self, err: urllib.error.HTTPError) -> _Problem:
        message = f"HTTP {err.code} {err.reason} from {self.config.url}"
        if 300 <= err.code < 400:
            location = err.headers.get("Location") if err.headers else None
            return _Problem(f"{message}: the server redirects to {location!r}; redirects are not followed, so "
                            f"the API key never goes to another address: set LLMConfig.base_url "
                            f"(HANDX_LLM_BASE_URL) to the address it should be", retry=False)
        try:
            raw = self._read_body(err) or b""
        except (OSError, http.client.HTTPException):
            raw = b""
        try:
            detail = _error_message(_load_json(raw, "error body"), raw)
        except InvalidReply:
            detail = raw.decode("utf-8", "replace").strip()[:_ERROR_DETAIL_CHARS]
        message += f": {detail}" if detail else ""
        if err.code in (400, 422, 500) and _SCHEMA_WORDS.search(detail or ""):
            # llama-cpp-python's server answers an unknown response_format type with a 500 naming it
            return _Problem(message, retry=False, schema_refused=True)
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
    def _body(self, messages: list[dict[str, str]]) -> bytes:
        """The request body; ``response_format`` with the reply's schema while the server accepts it."""
        body = {**(self.config.extra_body or {}), "model": self.config.model, "messages": messages,
                "temperature": self.config.temperature, "max_tokens": self.config.max_tokens, "stream": False}
        if self.structured_output in ("json_schema", "json_object"):
            body["response_format"] = prompt.response_format(self.structured_output)
        return json.dumps(body).encode("utf-8")

    def _schema_refused(self, problem: _Problem, asked: str) -> None:
        """The server refused the ``asked`` response_format: try the next style (``json_schema`` → a
        ``json_object`` with the schema → plain JSON) for the rest of this writer's life."""
        with self._lock:
            if self.structured_output != asked:
                return  # another request moved on already
            self.structured_output = "json_object" if asked == "json_schema" else "plain JSON"
            self.structured_output_note = f"the server refused a {asked} response_format: {problem.message}"
            logger.warning("%s; asking for %s from now on", self.structured_output_note, self.structured_output)

    def _attempt(self, request: WriteRequest, messages: list[dict[str, str]],
                 tokens: list[int]) -> tuple[Description, ...] | _Problem:
        """One request → descriptions the validator accepts, or the problem; the API key redacted in both.
        A refused ``response_format`` is dropped and the request sent again at once. ``tokens`` (prompt,
        completion) grows by the reply's usage, the server's or estimated."""
        asked = self.structured_output
        reply = self._post(self._body(messages))
        while isinstance(reply, _Problem) and reply.schema_refused and asked in ("json_schema", "json_object"):
            self._schema_refused(reply, asked)
            asked = self.structured_output
            reply = self._post(self._body(messages))
        if isinstance(reply, _Reply):
            if reply.usage is not None:
                used, from_server = reply.usage, True
            else:
                used = (prompt.message_tokens(messages), prompt.estimate_tokens(reply.text))
                from_server = False
            tokens[0] += used[0]
            tokens[1] += used[1]
            with self._lock:
                self._usage.from_server += from_server
                self._usage.estimated += not from_server
        if isinstance(reply, _Problem):
            problem = reply
        else:
            try:  # redacted again: the reply's JSON may spell the key with escapes
                descriptions = tuple(dataclasses.replace(d, **{k: self._redact(getattr(d, k)) for k in TEXT_KEYS})
                                     for d in parse_reply(reply.text))
            except ValueError as err:  # InvalidReply, or a redacted text that Description refuses
                problem = _Problem(f"invalid reply: {err}", retry=True)
            else:
                rejected = list(self.validator(request.codes, descriptions)) if self.validator else []
                if not rejected:
                    return descriptions
                problem = _Problem("validator rejected the reply: " + "; ".join(map(str, rejected)), retry=True)
        return dataclasses.replace(problem, message=self._redact(problem.message))

    def write_one(self, request: WriteRequest) -> WriteResult:
        """Describe one clip: from the cache, or by asking the model (with retries); never raises for the clip."""
        key = self.cache_key(request)
        path = self.cache_path(key)
        cached = self._cache_read(request, path)
        if cached is not None:
            with self._lock:
                self._usage.cache_hits += 1
            return WriteResult(request.clip_id, descriptions=cached)
        try:
            plan = self.prepare()
        except ValueError as err:
            return WriteResult(request.clip_id, error=f"request not sent: {err}")
        try:
            messages = [{"role": "system", "content": plan.system},
                        {"role": "user", "content": prompt.user_prompt(request.codes)}]
            json.dumps(messages)
        except (TypeError, ValueError, AttributeError) as err:
            return WriteResult(request.clip_id, error=f"motion codes cannot be sent: {err}")
        clip_tokens = prompt.estimate_tokens(messages[1]["content"]) + prompt.MESSAGE_OVERHEAD
        if plan.system_tokens + clip_tokens > plan.prompt_limit:
            return WriteResult(request.clip_id, error=(
                f"request not sent: its prompt takes about {plan.system_tokens + clip_tokens} tokens "
                f"({plan.system_tokens} system, {clip_tokens} clip), more than the {plan.prompt_limit} that a "
                f"context of {plan.context_tokens} leaves after max_tokens={plan.reply_tokens}"))
        tokens = [0, 0]

        attempts = self.config.max_retries + 1
        problem = _Problem("no attempt made", retry=False)
        for attempt in range(attempts):
            if attempt:
                delay = self._delay(attempt - 1, problem.retry_after)
                logger.info("%s: retry %d/%d in %.2f s after: %s", request.clip_id, attempt,
                            self.config.max_retries, delay, problem.message)
                self._sleep(delay)
            outcome = self._attempt(request, messages, tokens)
            if not isinstance(outcome, _Problem):
                self._record(tokens)
                self._cache_write(request, key, path, outcome)
                return WriteResult(request.clip_id, descriptions=outcome)
            problem = outcome
            if not problem.retry:
                break
        self._record(tokens)
        if not problem.retry:
            error = f"request refused, not retried: {problem.message}"
        else:
            error = f"gave up after {attempt + 1} attempt{'s' if attempt else ''}: {problem.message}"
        logger.warning("%s: %s", request.clip_id, error)
        return WriteResult(request.clip_id, error=error)

    def _record(self, tokens: list[int]) -> None:
        if tokens[0] or tokens[1]:
            with self._lock:
                self._usage.prompt_tokens.append(tokens[0])
                self._usage.completion_tokens.append(tokens[1])

    def cost_report(self, *, store_clips: int, seconds: float) -> dict[str, Any]:
        """What this writer's clips cost, for the run's report: the prompt plan, structured output, tokens per
        clip answered by the server (prompt and completion, retries included; mean, median, max, total),
        where the numbers come from, cache hits, and, at the same means and rate, the estimate for
        ``store_clips`` clips. ``seconds``: wall time of the run."""
        with self._lock:
            usage = copy.deepcopy(self._usage)
        sent = len(usage.prompt_tokens)

        def stats(values: list[int]) -> dict[str, float]:
            ordered = sorted(values)
            if not ordered:
                return {"mean": 0.0, "median": 0.0, "max": 0, "total": 0}
            middle = len(ordered) // 2
            median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
            return {"mean": round(sum(ordered) / len(ordered), 1), "median": median, "max": ordered[-1],
                    "total": sum(ordered)}

        prompt_stats, completion_stats = stats(usage.prompt_tokens), stats(usage.completion_tokens)
        rate = sent / seconds if sent and seconds > 0 else None
        return {
            "structured_output": self.structured_output,
            "structured_output_note": self.structured_output_note,
            "context_tokens": self._plan.context_tokens if self._plan else None,
            "context_source": self.context_source,
            "prompt_plan": self._plan.to_json() if self._plan else None,
            "requests": self.requests_sent,
            "clips_sent": sent,
            "cache_hits": usage.cache_hits,
            "tokens_per_clip": {"prompt": prompt_stats, "completion": completion_stats},
            "token_source": {"server_usage": usage.from_server, "estimate": usage.estimated},
            "server_clips_per_s": round(rate, 3) if rate else None,
            "store_estimate": {
                "clips": store_clips,
                "prompt_tokens": round(prompt_stats["mean"] * store_clips),
                "completion_tokens": round(completion_stats["mean"] * store_clips),
                "seconds": round(store_clips / rate, 1) if rate else None,
            },
        }

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

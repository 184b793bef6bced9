"""``handx codes`` and ``handx annotate``: motion codes and descriptions for a store or one clip."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from handx.errors import HandxInputError


def register(groups: argparse._SubParsersAction) -> None:
    p = groups.add_parser(
        "codes", help="extract motion codes (kinematic events)",
        description="Extract the motion codes of reference §2 (finger flexion and spacing, fingertip contacts, "
                    "wrist trajectory, finger-palm and palm-palm relations) for every clip of a store into "
                    "DIR/codes.jsonl (resumable), or print them for one clip with --clip.")
    p.add_argument("store", nargs="?", type=Path, metavar="DIR", help="store directory")
    p.add_argument("--clip", type=Path, metavar="FILE",
                   help="one clip instead of a store: .npy holding (T, 2, 21, 3), or .npz with 'motion' or 'joints'")
    p.add_argument("--index", type=int, default=0, help="which clip of FILE when it holds several (default 0)")
    p.add_argument("--json", action="store_true", help="print the codes as JSON (with --clip)")
    p.add_argument("--workers", type=int, default=1, help="processes for a store (default 1)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_codes)

    p = groups.add_parser(
        "annotate", help="write five descriptions per clip into a store",
        description="Describe every clip of a store (five {left, right, two_hands_relation} variants, concise to "
                    "detailed) from its motion codes, and save them as the clips' texts. --writer template works "
                    "offline; --writer llm uses any OpenAI-compatible chat-completions server (vLLM, llama.cpp "
                    "server, Ollama, hosted APIs), with retries, bounded concurrency and an on-disk cache so an "
                    "interrupted run resumes and a repeated run sends no request. Clips that fail are reported "
                    "in DIR/reports/ and keep their old texts; the report also gives clips/s and, for llm, the "
                    "tokens per clip, cache hits and an estimate for the whole store.")
    p.add_argument("store", type=Path, metavar="DIR")
    p.add_argument("--writer", choices=["template", "llm"], default="template", help="description writer")
    p.add_argument("--overwrite", action="store_true", help="re-describe clips that already have texts")
    p.add_argument("--append", action="store_true",
                   help="add this writer's five variants after the texts a clip already has (once per writer): "
                        "more phrasings for training, e.g. the template writer's on top of a synthetic corpus's; "
                        "the first variants, which benchmarks score with, are unchanged")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="only the first N clips of the store (re-running adds nothing more)")
    p.add_argument("--seed", type=int, default=0, help="template writer: phrasing seed (default 0)")
    p.add_argument("--base-url", help="llm: server URL ending in /v1 (default $HANDX_LLM_BASE_URL or $OPENAI_BASE_URL)")
    p.add_argument("--model", help="llm: model name (default $HANDX_LLM_MODEL)")
    p.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="llm: environment variable holding the API key (default HANDX_LLM_API_KEY, then "
                        "OPENAI_API_KEY); keys are never taken on the command line")
    p.add_argument("--concurrency", type=int, help="llm: requests in flight (default 4)")
    p.add_argument("--temperature", type=float, help="llm: sampling temperature (default 0.7)")
    p.add_argument("--timeout", type=float, help="llm: seconds per request (default 120)")
    p.add_argument("--max-tokens", type=int, metavar="N",
                   help="llm: reply budget per request in tokens (default 2048; a reply cut at it is retried)")
    p.add_argument("--retries", type=int, metavar="N",
                   help="llm: retries of a clip after its first request (default 5)")
    p.add_argument("--cache", type=Path, help="llm: reply cache directory (default DIR/annotation-cache)")
    p.add_argument("--context", type=int, metavar="TOKENS",
                   help="llm: the model's context size in tokens (prompt + reply); the server's own figure "
                        "(llama.cpp /props, vLLM /v1/models) is used when it reports one, the smaller of the two "
                        "when both are known, else 8192. Fewer worked examples are sent when the context is small")
    p.add_argument("--no-json-schema", action="store_true",
                   help="llm: do not send the reply's JSON schema as response_format (by default it is sent, and "
                        "dropped automatically when the server refuses it)")
    p.add_argument("--no-verify", action="store_true",
                   help="llm: accept replies that the faithfulness check rejects (default: retry them)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_annotate)


def _load_clip(path: Path, index: int) -> np.ndarray:
    if not path.is_file():
        raise HandxInputError(path, "no such file")
    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False)
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            key = next((k for k in ("motion", "joints") if k in data.files), None)
            if key is None:
                raise HandxInputError(path, f"no 'motion' or 'joints' array (found: {', '.join(data.files)})")
            array = data[key]
    else:
        raise HandxInputError(path, "expected a .npy or .npz file")
    if array.ndim == 5:
        if not 0 <= index < array.shape[0]:
            raise HandxInputError(path, f"--index {index} out of range for {array.shape[0]} clips")
        array = array[index]
    from handx.motion import validate_clip

    return validate_clip(array, path=str(path))


def _codes(args: argparse.Namespace) -> int:
    if (args.store is None) == (args.clip is None):
        raise HandxInputError(None, "give either a store directory or --clip FILE")
    if args.clip is not None:
        from handx.features.codes import motion_codes

        codes = motion_codes(_load_clip(args.clip, args.index))
        print(json.dumps(codes, indent=2 if args.json else None))
        return 0
    from handx.annotate.pipeline import CODES_FILE, compute_codes

    report = compute_codes(args.store, workers=args.workers, progress=not args.no_progress)
    print(f"computed motion codes for {report.computed} clip(s) ({report.existing} already done) "
          f"in {args.store / CODES_FILE}")
    return 0


def _annotate(args: argparse.Namespace) -> int:
    from handx.annotate.pipeline import annotate_store

    if args.writer == "template":
        from handx.annotate.template import TemplateWriter

        writer = TemplateWriter(seed=args.seed)
    else:
        import os

        from handx.annotate.llm import LLMConfig, LLMWriter
        from handx.annotate.verify import as_validator

        overrides = {k: v for k, v in {"base_url": args.base_url, "model": args.model,
                                       "concurrency": args.concurrency, "temperature": args.temperature,
                                       "timeout_s": args.timeout, "context_tokens": args.context,
                                       "max_tokens": args.max_tokens, "max_retries": args.retries}.items()
                     if v is not None}
        if args.no_json_schema:
            overrides["structured_output"] = False
        if args.api_key_env:
            if args.api_key_env not in os.environ:
                raise HandxInputError(None, f"environment variable {args.api_key_env} is not set")
            overrides["api_key"] = os.environ[args.api_key_env]
        overrides["cache_dir"] = args.cache or args.store / "annotation-cache"
        try:
            config = LLMConfig.from_env(**overrides)
        except ValueError as exc:
            raise HandxInputError(None, f"LLM settings: {exc}") from exc
        writer = LLMWriter(config, validator=None if args.no_verify else as_validator())
    report = annotate_store(args.store, writer, overwrite=args.overwrite, append=args.append, limit=args.limit, progress=not args.no_progress)
    print(f"annotated {report.annotated} clip(s) with {writer.name} ({report.skipped} already had texts, "
          f"{len(report.failed)} failed)")
    print(report.cost_line())
    for failure in report.failed[:20]:
        print(f"  failed {failure['id']}: {failure['error']}", file=sys.stderr)
    if len(report.failed) > 20:
        print(f"  ... and {len(report.failed) - 20} more in {args.store}/reports/", file=sys.stderr)
    return 0 if not report.failed else 1

"""KV-cached against uncached decoding of the text-prefix AR model (``handx.sampling.ar_decode.decode``).

One whole clip (batch 1) is decoded greedily with ``use_cache=True`` (the prefix encoded once by ``prefill``, then
one position per code) and with ``use_cache=False`` (the full sequence re-run for every code, the reference's
way), at the ``small`` and ``111M`` (12 × 768) presets with random weights (codebook 4375, float32, CPU, torch
threads = all cores), guidance 1 (one row) and 2.5 (conditional and unconditional rows together). ``min_tokens``
= ``max_tokens`` = 30 forces the full 30 codes of a 60-frame clip (decoding stops at the limit, so END is not
decoded), and both paths run 30 forwards: one prefill and 29 one-position steps against 30 full forwards over
the prefix and the codes so far. The text is shaped like MiniLM's features of a triplet: three branches of 22, 27
and 25 real tokens (random 384-d features) padded to 30, i.e. a 93-position prefix of which 77 are real.

Each setting is a short warm-up (3 codes each way) and then ``--reps`` repetitions of both paths, interleaved
(so a load change on the machine hits both alike); the figures are medians, and the codes of the two paths are
compared on every repetition. The parts are also timed alone (medians of a few calls): the prefill, one cached
step at the last position, and one uncached forward at the last position.

    python benchmarks/ar_decoding.py            # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from handx.models.ar import ARConfig, PrefixLM  # noqa: E402
from handx.sampling.ar_decode import DecodeSettings, _guidance_rows, decode  # noqa: E402

TOKENS = 30  # codes per clip (60 frames)
TEXT_LENGTHS = (22, 27, 25)  # real tokens of the left, right and relation texts
TEXT_PAD = 30
TEXT_DIM = 384
PRESETS = ("small", "111M")
GUIDANCE = (1.0, 2.5)
REPS = {"small": 7, "111M": 3}


def texts(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One triplet's token features ``(3, 1, L, 384)`` and mask ``(3, 1, L)``."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(TEXT_PAD)[None, None, :] < torch.tensor(TEXT_LENGTHS)[:, None, None]  # (3, 1, L)
    tokens = torch.randn(3, 1, TEXT_PAD, TEXT_DIM, generator=g) / TEXT_DIM ** 0.5 * mask[..., None]
    return tokens, mask


def _median_call(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def bench_setting(model: PrefixLM, tokens: torch.Tensor, mask: torch.Tensor, guidance: float, reps: int) -> dict:
    def settings(cache: bool) -> DecodeSettings:
        return DecodeSettings(guidance=guidance, max_tokens=TOKENS, min_tokens=TOKENS, use_cache=cache)

    cached_settings, full_settings = settings(True), settings(False)
    for cache in (True, False):  # warm-up: both paths on a few codes
        decode(model, tokens, mask, settings=DecodeSettings(guidance=guidance, max_tokens=3, min_tokens=3,
                                                            use_cache=cache))
    cached, full, identical = [], [], True
    for _ in range(reps):
        t0 = time.perf_counter()
        a = decode(model, tokens, mask, settings=full_settings)
        full.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = decode(model, tokens, mask, settings=cached_settings)
        cached.append(time.perf_counter() - t0)
        identical &= bool(torch.equal(a.codes, b.codes) and torch.equal(a.lengths, b.lengths))
    assert int(b.lengths[0]) == TOKENS, b.lengths
    # The cached path's parts: the prefill and one step at the last position (the longest cache).
    rows_tokens, rows_mask, drop = _guidance_rows(tokens, mask, guidance)
    codes = b.codes.repeat(rows_tokens.shape[1], 1)  # (rows, 30)
    prefill_s = _median_call(lambda: model.prefill(rows_tokens, rows_mask, drop), 3)
    _, cache = model.prefill(rows_tokens, rows_mask, drop, codes=codes[:, :-1])
    step_s = _median_call(lambda: model.step(codes[:, -1], cache), 5)
    full_last_s = _median_call(lambda: model(rows_tokens, rows_mask, codes[:, :-1], drop), 3)
    return {"guidance": guidance, "rows": int(rows_tokens.shape[1]), "reps": reps,
            "uncached_s_per_clip": statistics.median(full), "cached_s_per_clip": statistics.median(cached),
            "speedup": statistics.median(full) / statistics.median(cached), "identical_codes": identical,
            "prefill_s": prefill_s, "cached_last_step_s": step_s, "uncached_last_forward_s": full_last_s,
            "uncached_all_s": full, "cached_all_s": cached}


def run(presets=PRESETS, guidances=GUIDANCE, reps: dict | None = None) -> dict:
    """Every preset × guidance setting; a dict of results (what ``main`` prints)."""
    torch.set_num_threads(os.cpu_count() or 1)
    tokens, mask = texts()
    out = {"benchmark": "ar_decoding", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "machine": platform.machine(), "precision": "fp32", "device": "cpu", "tokens": TOKENS,
           "text_lengths": list(TEXT_LENGTHS), "text_pad": TEXT_PAD,
           "prefix_positions": 3 * (TEXT_PAD + 1), "prefix_real": sum(TEXT_LENGTHS) + 3, "presets": {}}
    for name in presets:
        torch.manual_seed(0)
        config = ARConfig.preset(name, text_dim=TEXT_DIM, max_tokens=TOKENS)
        model = PrefixLM(config).eval()
        out["presets"][name] = {
            "layers": config.layers, "width": config.width, "codebook": config.codebook,
            "parameters": config.parameter_count(),
            "settings": [bench_setting(model, tokens, mask, g, (reps or REPS).get(name, 3)) for g in guidances]}
        del model
    out["all_identical"] = all(s["identical_codes"] for p in out["presets"].values() for s in p["settings"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--reps", type=int, help="repetitions for every preset (default: small 7, 111M 3)")
    args = parser.parse_args(argv)
    presets = [p for p in args.presets.split(",") if p]
    reps = {p: args.reps for p in presets} if args.reps else None
    t0 = time.perf_counter()
    result = run(presets, reps=reps)
    result["wall_s"] = time.perf_counter() - t0
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

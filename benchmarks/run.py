"""handx benchmarks: `make bench` runs them all and writes docs/benchmarks.md.

Measured side by side in one run, so ratios compare like with like on the same machine:

1. Import of a HandX-format npz of N clips (default 100,000; made here with random motion and texts) into a
   store, against numpy's own (unsafe) ``np.load(allow_pickle=True)`` reading the same file.
2. Peak memory while reading every clip of that store through the memory map, against loading the shards
   into memory. Each reader runs in its own process; memory is the peak anonymous (non-file-backed) RSS.
3. Synthesising 10,000 clips into a store (clips/s), and the generator alone.
4. Motion codes on one core: ``motion_codes_batch`` against the plain per-clip implementation of the same
   definitions (``handx.features.naive``), and the template writer's throughput. Run in a subprocess with
   BLAS limited to one thread.
5. Diffusion sampling and training (benchmarks/diffusion.py).
6. Evaluation: the whole protocol on 10,000 clips and evaluator training throughput (benchmarks/evaluation.py).
7. Evaluator quality on the synthetic corpus: train and score on a held-out split (benchmarks/evaluator_synth.py,
   about 10 minutes on 2 cores).
8. Resident memory of CPU training with and without returning freed memory to the OS (benchmarks/train_memory.py).
9. The training data path: training throughput from a store's precomputed side files against the bare network
   step (benchmarks/train_data.py).
10. The built-in generator: sampling time per clip at its defaults (benchmarks/builtin_sampling.py), its
    recorded benchmark scores, and the paraphrase check (benchmarks/paraphrase.py).
11. AR decoding: one whole clip decoded greedily by the prefix LM with and without the KV cache at the ``small``
    and ``111M`` presets, guidance 1 and 2.5 (benchmarks/ar_decoding.py, about 2 minutes on 2 cores).
12. AR training: tokenizer and prefix-LM training throughput through the shared runner on the real captures,
    against the bare network step (benchmarks/ar_training.py, a few minutes on 2 cores).

Each section records the machine, date and command of the run that measured it (``measured`` in the JSON file),
and the report shows them under its heading, so an ``--only`` run on another machine does not relabel the others.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_release(path: Path, n: int, seed: int = 0) -> None:
    """A HandX-format motion file with ``n`` random clips, written with numpy's pickling like the release."""
    from handx.io.handx_npz import HandxNpzWriter

    rng = np.random.default_rng(seed)
    base = rng.normal(scale=0.05, size=(60, 2, 21, 3)).astype(np.float32)
    base[:, 0, :, 0] -= 0.2
    with HandxNpzWriter(path) as writer:
        for i in range(n):
            writer.add({
                "motion": base + np.float32(0.001) * (i % 97),
                "left_annotation": [f"The left hand does thing {i % 13} variant {k}." for k in range(5)],
                "right_annotation": [f"The right hand does thing {i % 11} variant {k}." for k in range(5)],
                "interaction_annotation": [f"The hands relate in way {i % 7} variant {k}." for k in range(5)],
            })


def bench_import(work: Path, n: int) -> dict:
    from handx.io.importer import import_paths

    release = work / "train_can_pos_all_wotextfeat.npz"
    t0 = time.perf_counter()
    make_release(release, n)
    made = time.perf_counter() - t0

    t0 = time.perf_counter()
    with np.load(release, allow_pickle=True) as data:
        count = 0
        for key in data.files:
            entry = data[key].item()
            count += entry["motion"].shape[0] > 0
    numpy_s = time.perf_counter() - t0

    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    report = import_paths([release], "handx-npz", store, progress=False)
    ours_s = time.perf_counter() - t0
    assert report.added == n, report.errors[:3]
    return {"clips": n, "file_gb": release.stat().st_size / 1e9, "make_s": made, "numpy_load_s": numpy_s,
            "handx_import_s": ours_s, "numpy_clips_per_s": n / numpy_s, "handx_clips_per_s": n / ours_s}


READER = r"""
import sys, json, time, numpy as np
from handx.io.store import Store
mode, root = sys.argv[1], sys.argv[2]

def anon_kb():
    for line in open('/proc/self/status'):
        if line.startswith('RssAnon:'):
            return int(line.split()[1])

store = Store(root)
base, peak, total = anon_kb(), 0, 0.0
t0 = time.perf_counter()
if mode == 'mmap':
    for i in range(len(store)):
        total += float(store.motion(i).sum())
        if i % 2000 == 0:
            peak = max(peak, anon_kb())
else:
    shards = [np.load(store.root / s['file']) for s in store.manifest['shards']]
    for i in range(len(store)):
        shard, row = store.locate(i)
        total += float(shards[shard][row].sum())
        if i % 2000 == 0:
            peak = max(peak, anon_kb())
peak = max(peak, anon_kb())
print(json.dumps({'mode': mode, 'base_mb': base / 1024, 'peak_mb': peak / 1024,
                  'growth_mb': (peak - base) / 1024, 'seconds': time.perf_counter() - t0, 'clips': len(store)}))
"""


def bench_read(work: Path) -> dict:
    store = work / "store"
    size_gb = sum(f.stat().st_size for f in store.glob("motion-*.npy")) / 1e9
    out = {"motion_gb": size_gb}
    for mode in ("mmap", "eager"):
        result = subprocess.run([sys.executable, "-c", READER, mode, str(store)], capture_output=True, text=True,
                                check=True)
        out[mode] = json.loads(result.stdout)
    return out


def bench_synth(work: Path, n: int) -> dict:
    from handx.synth import generate_clip
    from handx.synth.corpus import write_synthetic

    t0 = time.perf_counter()
    for i in range(min(n, 2000)):
        generate_clip(1, i)
    gen_s = time.perf_counter() - t0
    store = work / "synth"
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    write_synthetic(n, 0, store, progress=False)
    store_s = time.perf_counter() - t0
    return {"clips": n, "generator_clips_per_s": min(n, 2000) / gen_s, "store_clips_per_s": n / store_s,
            "store_s": store_s}


CODES = r"""
import json, sys, time
import numpy as np
from handx.synth import generate_clip
from handx.features.codes import motion_codes_batch
from handx.features.naive import motion_codes_naive
from handx.annotate.base import WriteRequest, codes_hash
from handx.annotate.template import TemplateWriter

n, n_naive = int(sys.argv[1]), int(sys.argv[2])
motions = np.stack([generate_clip(5, i).motion for i in range(n)])
motion_codes_batch(motions[:64])  # warm-up
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    codes = [c for lo in range(0, n, 256) for c in motion_codes_batch(motions[lo:lo + 256])]
    best = min(best, time.perf_counter() - t0)
t0 = time.perf_counter()
plain = [motion_codes_naive(m) for m in motions[:n_naive]]
naive_s = time.perf_counter() - t0
assert plain == codes[:n_naive]
requests = [WriteRequest(str(i), c, codes_hash(c)) for i, c in enumerate(codes)]
t0 = time.perf_counter()
written = list(TemplateWriter(seed=0).write_many(requests))
template_s = time.perf_counter() - t0
assert all(r.descriptions and len(r.descriptions) == 5 for r in written)
print(json.dumps({"clips": n, "batch_clips_per_s": n / best, "naive_clips": n_naive,
                  "naive_clips_per_s": n_naive / naive_s, "template_clips_per_s": n / template_s}))
"""


def bench_codes(n: int = 2048, n_naive: int = 40) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", CODES, str(n), str(n_naive)],
                            capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout)


def bench_diffusion() -> dict:
    """CPU figures from benchmarks/diffusion.py (GPU figures are added by running it on a GPU machine)."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "diffusion.py"), "--device", "cpu",
                             "--clips", "4", "--ddpm-steps", "20", "--train-steps", "3"],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _script(name: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_eval() -> dict:
    return _script("evaluation.py", "--items", "10000")


def bench_evaluator_synth(work: Path) -> dict:
    return _script("evaluator_synth.py", "--work", str(work / "evaluator-synth"))


def bench_train_memory() -> dict:
    return _script("train_memory.py")


def bench_train_data() -> dict:
    return _script("train_data.py")


def bench_ar_decoding() -> dict:
    return _script("ar_decoding.py")


def bench_ar_training() -> dict:
    return _script("ar_training.py")


def bench_builtin() -> dict:
    from handx.assets import builtin

    sampling = _script("builtin_sampling.py")
    paraphrase = _script("paraphrase.py")
    model = builtin("handx-cpu")
    return {"sampling": sampling, "paraphrase": paraphrase, "manifest": model.manifest if model else None}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def _render_import(imp: dict) -> list[str]:
    return [
        "## Import of a HandX-format npz",
        "",
        f"A {imp['clips']:,}-clip `train_can_pos_all_wotextfeat.npz` ({imp['file_gb']:.2f} GB, random motion, five",
        "text variants per side) made by the benchmark.",
        "",
        "| reader | seconds | clips/s |",
        "|---|---|---|",
        f"| `np.load(allow_pickle=True)`, entries decoded only (unsafe baseline) | {imp['numpy_load_s']:.1f} | "
        f"{imp['numpy_clips_per_s']:,.0f} |",
        f"| `handx data import --format handx-npz` (restricted unpickler, validation, store writes) | "
        f"{imp['handx_import_s']:.1f} | {imp['handx_clips_per_s']:,.0f} |",
        "",
        f"Ratio handx / numpy-only throughput: {imp['handx_clips_per_s'] / imp['numpy_clips_per_s']:.2f}. The handx",
        "figure includes what the baseline does not do: checking every entry (shape, finite values, both hands,",
        "texts) and writing the store (motion shards, records, manifest commits), while never running code from",
        "the file.",
        "",
    ]


def _render_read(read: dict) -> list[str]:
    mm, eager = read["mmap"], read["eager"]
    return [
        "## Reading every clip of the store",
        "",
        f"{mm['clips']:,} clips, {read['motion_gb']:.2f} GB of motion shards. Peak anonymous RSS (memory not backed",
        "by a file) while touching every clip, each reader in a fresh process.",
        "",
        "| reader | start MB | peak MB | growth MB | seconds |",
        "|---|---|---|---|---|",
        f"| `Store.motion(i)` (mmap) | {mm['base_mb']:.0f} | {mm['peak_mb']:.0f} | {mm['growth_mb']:.0f} | "
        f"{mm['seconds']:.1f} |",
        f"| shards loaded into memory | {eager['base_mb']:.0f} | {eager['peak_mb']:.0f} | {eager['growth_mb']:.0f} | "
        f"{eager['seconds']:.1f} |",
        "",
        f"Memory growth mmap / eager: {max(mm['growth_mb'], 1) / max(eager['growth_mb'], 1):.4f}. Reading through",
        "the memory map needs no per-clip memory (the clip index comes from the manifest's shard counts; the page",
        "cache holds the file pages and the kernel can drop them), so it stays flat; the eager reader grows with",
        "the data.",
        "",
    ]


def _render_synth(syn: dict) -> list[str]:
    return [
        "## Synthetic motion",
        "",
        "| job | clips/s |",
        "|---|---|",
        f"| `generate_clip` alone (2,000 clips) | {syn['generator_clips_per_s']:,.0f} |",
        f"| `handx data synth --n {syn['clips']:,}` (generate + store) | {syn['store_clips_per_s']:,.0f} |",
        "",
    ]


def _render_codes(cod: dict) -> list[str]:
    return [
        "## Motion codes and template annotation (one core)",
        "",
        f"{cod['clips']:,} synthetic 60-frame clips, one process pinned to one core with BLAS limited to one",
        "thread. `motion_codes_batch` in batches of 256 (best of three runs) against the plain per-clip",
        f"implementation of the same definitions (`handx.features.naive`, first {cod['naive_clips']} clips;",
        "its output is checked equal).",
        "",
        "| job | clips/s |",
        "|---|---|",
        f"| plain per-clip motion codes (`motion_codes_naive`) | {cod['naive_clips_per_s']:,.1f} |",
        f"| `motion_codes_batch` | {cod['batch_clips_per_s']:,.0f} |",
        f"| template writer (codes → five triplets) | {cod['template_clips_per_s']:,.0f} |",
        "",
        f"Speed-up of the batched codes over the plain loop: {cod['batch_clips_per_s'] / cod['naive_clips_per_s']:.0f}×.",
        "",
    ]


def _render_diffusion(cpu: dict, gpu: dict | None) -> list[str]:
    rows = [("CPU (this machine, fp32)", cpu)] + ([(f"GPU: {gpu['device']} (bf16 autocast)", gpu)] if gpu else [])
    lines = [
        "## Diffusion generator",
        "",
        "`benchmarks/diffusion.py`, the `base` preset (12 × 512, 38.8 M parameters), classifier-free guidance 2.5",
        "(two denoiser passes per step), random text features of the encoder's width (the frozen encoder's features",
        "are cached, so it is not part of the per-step cost). DDPM's steps cost what DDIM's do; on CPU DDPM-1000 is",
        "timed on its first steps and scaled to 1000 (the step count measured is in the table). Training throughput",
        "is the network step (forward, loss, backward, clipping, AdamW, EMA) on random batches.",
        "",
        "| device | clips per call | DDIM-50 s/clip | DDPM-1000 s/clip | ratio | DDPM steps timed | train tiny samples/s "
        "(batch) | train base samples/s (batch) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(f"| {name} | {r['clips']} | {r['ddim50_s_per_clip']:.3f} | {r['ddpm1000_s_per_clip']:.3f} | "
                     f"{r['ddpm1000_s_per_clip'] / r['ddim50_s_per_clip']:.1f}× | {r['ddpm_measured_steps']} | "
                     f"{r['train_tiny_samples_per_s']:,.0f} ({r['train_batch']['tiny']}) | "
                     f"{r['train_base_samples_per_s']:,.1f} ({r['train_batch']['base']}) |")
    return lines + [""]


def _render_eval(ev: dict) -> list[str]:
    p, t = ev["protocol"], ev["training"]
    return [
        "## Evaluation",
        "",
        f"`benchmarks/evaluation.py`: the whole protocol (`handx.eval.protocol.evaluate`, every metric, 20",
        f"replications) on {p['items']:,} test items with one generator of one group, i.e. {2 * p['items']:,} clips",
        "scored (the Real row and the generator), with the `base` evaluator (256-d, 4 layers; random weights, which",
        "do not change the cost), on CPU.",
        "",
        "| stage | seconds |",
        "|---|---|",
        f"| embed {p['items']:,} text triplets (GloVe + text transformer) | {p['embed_text_s']:.1f} |",
        f"| embed {p['items']:,} motions | {p['embed_motion_s']:.1f} |",
        f"| clip contact labels of {p['items']:,} clips | {p['contact_labels_s']:.1f} |",
        f"| plausibility of {p['items']:,} clips (capsules, jerk, drift, sliding) | {p['plausibility_s']:.1f} |",
        f"| MPJPE | {p['mpjpe_s']:.2f} |",
        f"| 20 rounds of R-precision, FID, matching score, diversity | {p['twenty_rounds_s']:.1f} |",
        f"| **the whole evaluation** (Real row + generator) | **{p['evaluate_s']:.0f}** |",
        "",
        "Evaluator training, one optimiser step (forward, §7.4 loss, backward, clipping, AdamW) on random batches:",
        "",
        "| preset | parameters | batch | samples/s |",
        "|---|---|---|---|",
    ] + [f"| {name} | {r['parameters'] / 1e6:.2f} M | {r['batch']} | {r['samples_per_s']:,.0f} |"
         for name, r in t.items()] + [""]


def _render_evaluator_synth(ev: dict) -> list[str]:
    s, test, tr = ev["settings"], ev["test"], ev["training"]
    rp = test["r_precision"]
    return [
        "## Evaluator on the synthetic corpus",
        "",
        f"`benchmarks/evaluator_synth.py`: {ev['corpus']['clips']:,} synthetic clips (split "
        f"{ev['corpus']['splits']['train']:,} train / {ev['corpus']['splits']['test']:,} test), the `{s['preset']}`",
        f"evaluator trained {s['steps']} steps at batch {s['batch_size']}, lr {s['lr']} ({tr['wall_s'] / 60:.1f} min, "
        f"{tr['samples_per_s']:.0f} samples/s), scored on the test split with each clip's first text variant.",
        "",
        "| real motion, pools of 32 | R@1 | R@2 | R@3 | matched distance | shuffled distance | matched closer |",
        "|---|---|---|---|---|---|---|",
        f"| mean over {test['orders']} pool draws | {rp['top1']:.3f} | {rp['top2']:.3f} | {rp['top3']:.3f} | "
        f"{test['matched_distance']:.2f} | {test['shuffled_distance']:.2f} | {test['matched_closer_fraction']:.1%} |",
        "",
    ]


def _render_train_memory(mem: dict) -> list[str]:
    never, trim = mem["never"], mem["every_25"]
    steps = [25 * (i + 1) for i in range(len(never["rss_gb_every_25_steps"]))]
    return [
        "## Memory of CPU training",
        "",
        f"`benchmarks/train_memory.py`: `train_evaluator`, `{mem['preset']}` preset, batch {mem['batch']}, "
        f"{mem['clips']:,} synthetic clips, {mem['steps']} steps,",
        "each setting in a fresh process. Resident size (GB) after each 25 steps and wall time; `trim_every` hands",
        "the allocator's freed memory back to the OS (`handx.train.memory`, default every 25 steps).",
        "",
        "| `trim_every` | " + " | ".join(f"step {s}" for s in steps) + " | seconds |",
        "|---|" + "---|" * len(steps) + "---|",
        "| 0 (never) | " + " | ".join(f"{x:.2f}" for x in never["rss_gb_every_25_steps"])
        + f" | {never['seconds']:.0f} |",
        "| 25 | " + " | ".join(f"{x:.2f}" for x in trim["rss_gb_every_25_steps"]) + f" | {trim['seconds']:.0f} |",
        "",
        "What remains of the growth with trimming is the text-feature cache filling up (bounded at 20,000 texts).",
        "",
    ]


def _render_train_data(td: dict) -> list[str]:
    lines = [
        "## Training data path",
        "",
        f"`benchmarks/train_data.py` on {td['store']} ({td['items']:,} items; computing the side files took "
        f"{td['prepare_s']:.0f} s): samples/s of a full training step at batch {td['batch']} when batches come",
        "from random tensors (the bare network), from the store's precomputed side files (`handx train diffusion`),",
        "or from running MiniLM on each batch's texts (the old path whenever a corpus outgrew the text cache).",
        "Interleaved blocks in one process.",
        "",
        "| preset | bare network | store (side files) | MiniLM per batch | store / bare |",
        "|---|---|---|---|---|",
    ]
    for preset in ("tiny", "cpu"):
        if preset in td:
            r = td[preset]
            encode = f"{r['encode_samples_per_s']:.0f}" if "encode_samples_per_s" in r else "–"
            lines.append(f"| {preset} | {r['bare_samples_per_s']:.0f} | {r['store_samples_per_s']:.0f} | {encode} | "
                         f"{r['store_over_bare']:.2f} |")
    return lines + [""]


def _render_builtin(b: dict) -> list[str]:
    s, p = b["sampling"], b["paraphrase"]
    lines = ["## The built-in generator", ""]
    manifest = b.get("manifest") or {}
    scores = manifest.get("scores", {})
    if scores.get("generated"):
        keys = [("r_precision_top3", "R@3"), ("fid", "FID"), ("diversity", "diversity"),
                ("multimodality", "multimodality"), ("contact_f1", "contact F1"), ("jerk", "jerk (m/s³)"),
                ("bone_drift_pct", "bone drift (%)")]
        lines += [f"Scores recorded by the recipe (`recipes/builtin.sh`) in its `model.json`: {scores['benchmark']}.",
                  "", "| | " + " | ".join(k[1] for k in keys) + " |", "|---|" + "---|" * len(keys)]
        for row in ("real", "generated"):
            lines.append(f"| {'Real' if row == 'real' else manifest['name']} | " + " | ".join(
                (f"{scores[row][k][0]:.3f} ± {scores[row][k][1] or 0:.3f}" if k in scores[row] else "–")
                for k, _ in keys)
                + " |")
        lines.append("")
    lines += [f"`benchmarks/builtin_sampling.py`: {s['seconds_per_clip']:.3f} s per clip ({s['settings']}; "
              f"{s['clips']} clips in batches of {s['batch']}, {s['threads']} threads).", "",
              f"`benchmarks/paraphrase.py` (hand-written descriptions of the six interactions, never trained on; "
              f"{p['samples_per_interaction']} clips each; nearest-interaction accuracy by the evaluator, chance "
              f"{p['chance']}):", "",
              "| texts | accuracy | " + " | ".join(f"contact {k}" for k in p["real"]["contact_fraction"]) + " |",
              "|---|---|" + "---|" * len(p["real"]["contact_fraction"])]
    for row, name in (("real", "real clips"), ("corpus_texts", "generated from corpus texts"),
                      ("paraphrases", "generated from paraphrases")):
        lines.append(f"| {name} | {p[row]['accuracy']:.3f} | " + " | ".join(
            f"{v:.3f}" for v in p[row]["contact_fraction"].values()) + " |")
    return lines + [""]


def _render_ar_decoding(ar: dict) -> list[str]:
    text = "/".join(map(str, ar["text_lengths"]))
    lines = [
        "## AR decoding with and without the KV cache",
        "",
        f"`benchmarks/ar_decoding.py`: one clip (batch 1) of {ar['tokens']} codes decoded greedily by the prefix LM",
        "(`handx.sampling.ar_decode.decode`, `min_tokens` = `max_tokens`, so every run decodes the whole clip),",
        f"random weights, {ar['precision']}, CPU, {ar['threads']} threads; texts of {text} real tokens padded to "
        f"{ar['text_pad']}",
        f"({ar['prefix_positions']} prefix positions, {ar['prefix_real']} real). Uncached re-runs the whole sequence "
        "for every code",
        "(the reference's way); cached runs one prefill and then one position per code. Guidance 2.5 runs the",
        "conditional and unconditional rows as one batch of two. Median seconds per clip over interleaved",
        "repetitions; the parts (prefill, one cached step and one uncached forward at the last position) are medians",
        "of a few calls.",
        "",
        "| preset | parameters | guidance | uncached s/clip | cached s/clip | speed-up | same codes | prefill s | "
        "cached step s | uncached forward s | reps |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, p in ar["presets"].items():
        for r in p["settings"]:
            lines.append(f"| {name} ({p['layers']} × {p['width']}) | {p['parameters'] / 1e6:.1f} M | "
                         f"{r['guidance']:g} | {r['uncached_s_per_clip']:.3f} | {r['cached_s_per_clip']:.3f} | "
                         f"{r['speedup']:.1f}× | {'yes' if r['identical_codes'] else '**no**'} | "
                         f"{r['prefill_s']:.3f} | {r['cached_last_step_s']:.4f} | {r['uncached_last_forward_s']:.3f} | "
                         f"{r['reps']} |")
    return lines + [""]


def _render_ar_training(at: dict) -> list[str]:
    tok_steps = at["ar_tokenizer"]["steps"]
    lines = [
        "## AR training data path",
        "",
        f"`benchmarks/ar_training.py` on {at['store']} ({at['clips']:,} training clips, {at['items']:,} items; "
        f"computing the side files took {at['prepare_s']:.0f} s):",
        "training throughput through the shared runner (`train_tokenizer` and `train_ar` on a fresh run directory,",
        "batches from the store's `local288` and MiniLM side files; setup, the first step and the last are not",
        "timed) against the bare network step (the family's step function, backward, clipping, AdamW) on a random",
        "batch of the same shape, for as many steps as are timed of the run, half before it and half after. The",
        f"prefix LM learns the codes of the `{at['ar_tokenizer']['preset']}` tokenizer trained {tok_steps} steps "
        "above; the bare step's texts are as",
        f"long as the run's padded batches (median {_ar_text_length(at)} tokens per branch). {at['threads']} "
        f"threads, `OMP_WAIT_POLICY={at['omp_wait_policy']}`, whole section {at['wall_s']:.0f} s.",
        "",
        "| model | preset | parameters | batch | bare network | runner (store) | runner / bare | steps timed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in at["tokenizer"].items():
        lines.append(f"| tokenizer | {name} | {r['parameters'] / 1e6:.2f} M | {at['tokenizer_batch']} × "
                     f"{at['window']} frames | {r['bare_windows_per_s']:,.0f} windows/s | "
                     f"{r['runner_windows_per_s']:,.0f} windows/s | {r['runner_over_bare']:.2f} | "
                     f"{r['timed_steps']} |")
    for name, r in at["ar"].items():
        lines.append(f"| prefix LM | {name} ({r['layers']} × {r['width']}) | {r['parameters'] / 1e6:.2f} M | "
                     f"{at['ar_batch']} × {r['codes']} codes | {r['bare_samples_per_s']:,.1f} samples/s | "
                     f"{r['runner_samples_per_s']:,.1f} samples/s | {r['runner_over_bare']:.2f} | "
                     f"{r['timed_steps']} |")
    return lines + [""]


def _ar_text_length(at: dict) -> str:
    lengths = sorted({r["text_length_median"] for r in at["ar"].values()})
    return "/".join(map(str, lengths)) or "–"


def _provenance(results: dict, key: str) -> str:
    """The line under a section's heading: where and when it was measured, by which command."""
    record = results.get("measured", {}).get(key)
    if not record:
        return "*Machine and date not recorded (measured before each section kept its own).*"
    return f"*Measured {record['date']} on {record['machine']}: `{record['command']}`.*"


def _legacy_measured(results: dict) -> dict:
    """Per-section records for a results file written before sections kept their own: the single header named the
    machine and date of its last command, which measured only the sections that command ran."""
    if "machine" not in results or "command" not in results:
        return {}
    words = results["command"].split()
    named: list[str] = list(SECTIONS)  # make bench, or run.py without --only: every section
    for i, word in enumerate(words):
        if word == "--only" and i + 1 < len(words):
            named = words[i + 1].split(",")
        elif word.startswith("--only="):
            named = word.split("=", 1)[1].split(",")
    return {key: {"machine": results["machine"], "date": results["date"], "command": results["command"]}
            for key in named if key in results}


def render(results: dict) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Last command: `{results['command']}` ({results['date']}); `make bench` runs every section, and",
        "`--only SECTION` reruns one and keeps the others, so sections may come from different machines and days:",
        "each names its own under its heading. Each section is one run of the script it names; ratios compare",
        "measurements made side by side within that run.",
        "",
    ]
    renderers = {
        "import": _render_import, "read": _render_read, "synth": _render_synth, "codes": _render_codes,
        "diffusion": lambda r: _render_diffusion(r, results.get("diffusion_gpu")), "eval": _render_eval,
        "evaluator_synth": _render_evaluator_synth, "train_memory": _render_train_memory,
        "train_data": _render_train_data, "builtin": _render_builtin, "ar_decoding": _render_ar_decoding,
        "ar_training": _render_ar_training,
    }
    for key in SECTIONS:
        if key in results:
            section = renderers[key](results[key])  # "## heading", "", body...
            lines += section[:2] + [_provenance(results, key), ""] + section[2:]
    recorded = ROOT / "benchmarks" / "recorded.md"  # numbers of runs too long for make bench, kept by hand
    if recorded.is_file():
        lines += [recorded.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(lines)


SECTIONS = ("import", "read", "synth", "codes", "diffusion", "eval", "evaluator_synth", "train_memory", "train_data",
            "builtin", "ar_decoding", "ar_training")  # also the report's order


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=100_000, help="clips in the import/read benchmark")
    parser.add_argument("--synth", type=int, default=10_000, help="clips in the synthesis benchmark")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)}); the others keep "
                             "their previous results from the JSON file beside --out")
    parser.add_argument("--work", type=Path, default=ROOT / ".bench", help="scratch directory (deleted after)")
    parser.add_argument("--out", type=Path, help="write the Markdown report here (and the raw results as .json)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    only = [s for s in args.only.split(",") if s]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if "read" in only and "import" not in only:
        parser.error("the read benchmark reads the store the import benchmark writes: add 'import'")
    stored = args.out.with_suffix(".json") if args.out else None
    results = json.loads(stored.read_text()) if stored and stored.exists() else {}
    if "measured" not in results:  # a file from before per-section records
        results["measured"] = _legacy_measured(results)
    results.pop("machine", None)  # each section names its own (results["measured"])
    command = ("make bench" if len(only) == len(SECTIONS) and args.clips == 100_000
               else " ".join(["python", *sys.argv]))
    results.update({"date": time.strftime("%Y-%m-%d"), "command": command})
    this_machine = machine()

    def measured(*keys: str) -> None:
        for key in keys:
            results["measured"][key] = {"machine": this_machine, "date": time.strftime("%Y-%m-%d"),
                                        "command": command}

    args.work.mkdir(parents=True, exist_ok=True)
    try:
        if "import" in only:
            results["import"] = bench_import(args.work, args.clips)
            measured("import")
            print(json.dumps(results["import"]), flush=True)
        if "read" in only:
            results["read"] = bench_read(args.work)
            measured("read")
            print(json.dumps(results["read"]), flush=True)
        if "synth" in only:
            results["synth"] = bench_synth(args.work, args.synth)
            measured("synth")
            print(json.dumps(results["synth"]), flush=True)
        if "codes" in only:
            results["codes"] = bench_codes()
            measured("codes")
            print(json.dumps(results["codes"]), flush=True)
        if "diffusion" in only:
            results["diffusion"] = bench_diffusion()
            measured("diffusion")
            print(json.dumps(results["diffusion"]), flush=True)
        if "eval" in only:
            results["eval"] = bench_eval()
            measured("eval")
            print(json.dumps(results["eval"]), flush=True)
        if "train_memory" in only:
            results["train_memory"] = bench_train_memory()
            measured("train_memory")
            print(json.dumps(results["train_memory"]), flush=True)
        if "train_data" in only:
            results["train_data"] = bench_train_data()
            measured("train_data")
            print(json.dumps(results["train_data"]), flush=True)
        if "builtin" in only:
            results["builtin"] = bench_builtin()
            measured("builtin")
            print(json.dumps(results["builtin"]["sampling"]), flush=True)
        if "ar_decoding" in only:
            results["ar_decoding"] = bench_ar_decoding()
            measured("ar_decoding")
            print(json.dumps(results["ar_decoding"]), flush=True)
        if "ar_training" in only:
            results["ar_training"] = bench_ar_training()
            measured("ar_training")
            print(json.dumps(results["ar_training"]), flush=True)
        if "evaluator_synth" in only:
            results["evaluator_synth"] = bench_evaluator_synth(args.work)
            measured("evaluator_synth")
            print(json.dumps(results["evaluator_synth"]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
    text = render(results)
    if args.out:
        args.out.write_text(text)
        stored.write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

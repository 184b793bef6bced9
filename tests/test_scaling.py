"""Scaling sweeps (handx.scaling.sweep, handx.scaling.report): a grid of tiny cells trained and scored, a killed
sweep that finishes only its missing cells, FLOP budgets, and fits checked against known lines."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from handx.cli.main import main
from handx.io.store_ops import split_store
from handx.scaling.report import fit_line, fits, write_report
from handx.scaling.sweep import SweepConfig, load_rows, run_sweep
from handx.synth.corpus import write_synthetic
from handx.train.data import TextMotionData


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    store = root / "store"
    write_synthetic(24, 3, store, progress=False)
    split_store(store, {"train": 0.5, "test": 0.5}, by="clip", seed=0)
    assert main(["train", "evaluator", "--data", str(store), "--out", str(root / "evaluator"), "--preset", "tiny",
                 "--steps", "10", "--batch-size", "8", "--save-every", "10", "--no-progress"]) == 0
    return root, store


def _cfg(root, store, out, **fields):
    settings = dict(data=(str(store),), out=str(out), family="diffusion", presets=("tiny", "cpu-2x64"),
                    fractions=(0.5, 1.0), steps=3, batch_size=4, evaluator=str(root / "evaluator"), eval_items=8,
                    replications=2, text_encoder="glove", device="cpu")
    return SweepConfig(**{**settings, **fields})


def test_a_sweep_trains_scores_and_tabulates_every_cell(setup, tmp_path):
    root, store = setup
    cfg = _cfg(root, store, tmp_path / "sweep")
    rows = run_sweep(cfg, progress=False)
    train_clips = len(TextMotionData(str(store), split="train").clip_keys)
    assert sorted((r["preset"], r["fraction"]) for r in rows) == [("cpu-2x64", 0.5), ("cpu-2x64", 1.0),
                                                                  ("tiny", 0.5), ("tiny", 1.0)]
    for row in rows:
        assert row["family"] == "diffusion" and row["steps"] == 3 and row["samples"] == 12
        assert row["train_flops"] > 0 and 0 <= row["r3"] <= 1 and row["fid"] >= 0
        assert row["clips"] == (math.ceil(train_clips / 2) if row["fraction"] == 0.5 else train_clips)
    by_preset = {r["preset"]: r for r in rows if r["fraction"] == 1.0}
    assert by_preset["tiny"]["parameters"] != by_preset["cpu-2x64"]["parameters"]
    # FLOPs scale with samples: same preset, same steps → the same training FLOPs whatever the fraction
    assert len({r["train_flops"] for r in rows if r["preset"] == "tiny"}) == 1
    table = (tmp_path / "sweep" / "table.md").read_text()
    assert table.count("| diffusion |") == 4
    report = write_report(tmp_path / "sweep")
    text = report.read_text()
    assert "## Fits against log10(training FLOPs)" in text and "r3_vs_train_flops.png" in text
    assert (report.parent / "r3_vs_train_flops.png").stat().st_size > 1000


def test_a_flops_budget_buys_steps_in_proportion(setup, tmp_path):
    root, store = setup
    cfg = _cfg(root, store, tmp_path / "b", steps=None, flops_budget=1e12)
    small, large = cfg.sample_flops("cpu-2x64"), cfg.sample_flops("tiny")
    assert cfg.steps_for("cpu-2x64") == int(1e12 // (small * 4))
    assert cfg.steps_for("tiny") == int(1e12 // (large * 4))
    with pytest.raises(ValueError, match="exactly one of steps and flops_budget"):
        _cfg(root, store, tmp_path / "c", flops_budget=1e12)  # and steps=3
    with pytest.raises(ValueError, match="unknown"):
        _cfg(root, store, tmp_path / "d", presets=("nope",))


def test_a_killed_sweep_finishes_only_the_missing_cells(setup, tmp_path):
    root, store = setup
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "handx.cli.main", "scale", "run", "--data", str(store), "--family", "diffusion",
               "--presets", "tiny", "--fractions", "0.5,1", "--steps", "40", "--batch-size", "4",
               "--evaluator", str(root / "evaluator"), "--eval-items", "8", "--replications", "2",
               "--device", "cpu", "--out", str(out), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = out / "cells" / "diffusion-tiny-f0.5" / "cell.json"
    second = out / "cells" / "diffusion-tiny-f1" / "run"
    proc = subprocess.Popen(command + ["--lr", "1e-3"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and not (first.is_file() and (second / "latest").is_file()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.is_file(), proc.stderr.read().decode()[-2000:]
    assert not (second.parent / "cell.json").exists()  # killed inside the second cell, after a checkpoint
    finished = first.read_bytes()
    stamp = first.stat().st_mtime_ns
    resumed_from = (second / "latest").read_text().strip()
    assert subprocess.run(command + ["--lr", "1e-3"], env=env, capture_output=True).returncode == 0
    assert first.read_bytes() == finished and first.stat().st_mtime_ns == stamp  # not run again
    rows = load_rows(out)
    assert [r["fraction"] for r in rows] == [0.5, 1.0]
    lines = [json.loads(line) for line in (second / "metrics.jsonl").read_text().splitlines()]
    logged = [line["step"] for line in lines if "total" in line]
    checkpoint = int(resumed_from.split("-")[1])
    assert 0 < checkpoint < 40 and logged[-1] == 40
    assert logged.count(1) == 1 and checkpoint + 1 in logged  # continued from its checkpoint, not restarted


def test_fits_recover_a_known_line_and_refuse_a_flat_one():
    x = np.log10([1e9, 1e10, 1e11, 1e12, 1e13])
    y = 0.4391 * x - 3.87 + np.array([0.001, -0.002, 0.0, 0.002, -0.001])
    slope, intercept, r, low, high = fit_line(x, y)
    assert abs(slope - 0.4391) < 0.002 and abs(intercept + 3.87) < 0.03 and r > 0.999 and low < 0.4391 < high
    rows = [{"family": "diffusion", "parameters": p, "fraction": 1.0, "train_flops": f, "r3": v, "fid": 1.0,
             "contact_f1": 0.5}
            for p, f, v in zip([1, 2, 3, 4, 5], [1e9, 1e10, 1e11, 1e12, 1e13], y)]
    found = {(f.metric, f.axis): f for f in fits(rows)}
    assert found[("r3", "all")].shown and found[("r3", "model")].shown
    assert not found[("fid", "all")].shown  # a flat metric shows no trend
    assert found[("r3", "data")].n == 1 and not found[("r3", "data")].shown

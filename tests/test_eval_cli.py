"""``handx eval`` end to end: a tiny diffusion run and a tiny evaluator trained here, the full table with
intervals from a run and from its generation files, and byte-identical output for the same seed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handx.cli.main import main
from handx.eval.protocol import METRICS, REAL
from handx.io.store_ops import split_store
from handx.synth.corpus import write_synthetic


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalcli")
    store = root / "store"
    write_synthetic(40, 5, store, progress=False)
    split_store(store, {"train": 0.5, "test": 0.5}, by="clip", seed=0)
    assert main(["train", "diffusion", "--data", str(store), "--out", str(root / "diffusion"), "--steps", "20",
                 "--batch-size", "8", "--save-every", "20", "--no-progress"]) == 0
    assert main(["train", "evaluator", "--data", str(store), "--out", str(root / "evaluator"), "--preset", "tiny",
                 "--steps", "20", "--batch-size", "16", "--save-every", "20", "--no-progress"]) == 0
    return root, store


def _eval(root, store, out, *extra):
    return main(["eval", "--evaluator", str(root / "evaluator"), "--data", str(store), "--out", str(out),
                 "--replications", "4", "--no-progress", *extra])


def test_eval_of_a_run_gives_the_full_table_and_is_reproducible(runs, capsys):
    root, store = runs
    first, second = root / "first", root / "second"
    assert _eval(root, store, first, "--ckpt", str(root / "diffusion"), "--groups", "2", "--steps", "4") == 0
    table = capsys.readouterr().out
    assert _eval(root, store, second, "--ckpt", str(root / "diffusion"), "--groups", "2", "--steps", "4") == 0
    for name in ("results.json", "results.md"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name

    results = json.loads((first / "results.json").read_text())
    assert list(results["rows"]) == [REAL, "diffusion"]
    row = results["rows"]["diffusion"]
    assert set(row) == set(METRICS)
    for key, value in row.items():
        if key != "sliding_mm_s":  # NaN (null) when no contact lasts two frames
            assert value["mean"] is not None and value["ci95"] is not None and len(value["values"]) == 4, key
    assert results["rows"][REAL]["mpjpe_mm"]["mean"] == 0.0
    assert row["mpjpe_mm"]["mean"] > 0
    assert "| diffusion |" in table and "| Real |" in table and " ± " in table

    saved = np.load(first / "generated" / "diffusion.npz")
    assert saved["joints"].shape[:2] == (len(saved["ids"]), 2)

    # the saved generations score exactly like the run they came from
    third = root / "third"
    assert _eval(root, store, third, "--generated", str(first / "generated" / "diffusion.npz")) == 0
    again = json.loads((third / "results.json").read_text())["rows"]["diffusion"]
    assert again == row


def test_eval_reports_bad_inputs_without_a_traceback(runs, capsys, tmp_path):
    root, store = runs
    assert _eval(root, store, tmp_path / "x", "--split", "val") == 2
    assert "no split 'val'" in capsys.readouterr().err
    assert main(["eval", "--evaluator", str(root / "diffusion"), "--data", str(store), "--out",
                 str(tmp_path / "y"), "--no-progress"]) == 2
    assert "evaluator" in capsys.readouterr().err
    assert _eval(root, store, tmp_path / "z", "--generated", str(tmp_path / "missing.npz")) == 2
    assert "no such file" in capsys.readouterr().err


def test_one_eval_call_scores_both_generator_families_in_one_table(runs, capsys):
    root, store = runs
    assert main(["train", "tokenizer", "--data", str(store), "--out", str(root / "tokenizer"), "--preset", "tiny",
                 "--steps", "10", "--batch-size", "8", "--window", "16", "--no-progress"]) == 0
    assert main(["train", "ar", "--data", str(store), "--tokenizer", str(root / "tokenizer"), "--out",
                 str(root / "ar"), "--steps", "10", "--batch-size", "8", "--text-encoder", "glove",
                 "--no-progress"]) == 0
    out = root / "both"
    assert _eval(root, store, out, "--ckpt", str(root / "diffusion"), "--ckpt", str(root / "ar"), "--groups", "2",
                 "--steps", "4") == 0
    table = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert list(results["rows"]) == [REAL, "diffusion", "ar"]
    assert set(results["rows"]["ar"]) == set(METRICS)
    assert results["rows"]["ar"]["r_precision_top3"]["mean"] is not None
    assert "| diffusion |" in table and "| ar |" in table
    notes = json.dumps(results)
    assert '"family": "ar"' in notes and '"family": "diffusion"' in notes
    saved = np.load(out / "generated" / "ar.npz")
    assert saved["joints"].shape[1:] == (2, 60, 2, 21, 3)

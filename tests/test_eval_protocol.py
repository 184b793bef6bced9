"""The benchmark protocol and the generation files it reads: exact ground-truth row, replications and their
intervals, reproducibility, and every file layout with its errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from handx.errors import HandxInputError
from handx.eval.protocol import METRICS, REAL, Estimate, EvalSettings, evaluate
from handx.eval.report import to_markdown, write_report
from handx.eval.submission import load_eval_set, load_generated, save_generated
from handx.io.handx_npz import HandxNpzWriter, motion_entry
from handx.io.store_ops import split_store
from handx.motion import Texts
from handx.synth.corpus import write_synthetic


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval") / "store"
    write_synthetic(48, 3, root, progress=False)
    split_store(root, {"train": 0.4, "test": 0.6}, by="clip", seed=1)
    return root


@pytest.fixture(scope="module")
def eval_set(store):
    return load_eval_set(store, split="test")


class PoseEmbedder:
    """A fixed, deterministic embedding for testing the protocol's bookkeeping: motion → a fixed random projection
    of the clip's joints; text → the embedding of the ground-truth clip it describes (so the ground truth is
    retrieved perfectly and any deviation of a generation shows up)."""

    def __init__(self, eval_set, dim: int = 16):
        self.projection = np.random.default_rng(0).normal(size=(60 * 2 * 21 * 3, dim)) / 50
        self.by_text = {t: self.embed_motion(m[None])[0] for t, m in zip(zip(*eval_set.texts), eval_set.motion)}

    def embed_motion(self, motions):
        return np.asarray(motions, dtype=np.float64).reshape(len(motions), -1) @ self.projection

    def embed_text(self, left, right, relation):
        return np.stack([self.by_text[t] for t in zip(left, right, relation)])

    def describe(self):
        return {"run": "pose-projection", "step": 0, "centring": "none", "text_encoder": "lookup"}


def _noisy(eval_set, groups, scale, seed=0):
    rng = np.random.default_rng(seed)
    base = np.repeat(eval_set.motion[:, None], groups, axis=1)  # (N, G, T, 2, 21, 3)
    return (base + rng.normal(scale=scale, size=base.shape)).astype(np.float32)


def test_eval_set_takes_the_split_with_one_variant(store, eval_set):
    from handx.io.store import Store

    records = {r.id: r for r in Store(store).records}
    assert set(eval_set.ids) == set(Store(store).ids("test"))
    assert eval_set.motion.shape == (len(eval_set), 60, 2, 21, 3)
    for cid, left, right, rel in zip(eval_set.ids, *eval_set.texts):
        t = records[cid].texts
        assert (left, right, rel) == (t["left"][0], t["right"][0], t["two_hands_relation"][0])
    other = load_eval_set(store, split="test", variant=2)
    assert other.texts[0][0] == records[other.ids[0]].texts["left"][2]
    with pytest.raises(HandxInputError, match="no split 'val'"):
        load_eval_set(store, split="val")
    with pytest.raises(HandxInputError, match="variant 9"):
        load_eval_set(store, split="test", variant=9)


def test_ground_truth_scores_exactly_against_itself(eval_set):
    embedder = PoseEmbedder(eval_set)
    copy = np.repeat(eval_set.motion[:, None], 2, axis=1)
    report = evaluate(embedder, eval_set, {"copy": copy}, settings=EvalSettings(replications=3), progress=False)
    real, gen = report.rows[REAL], report.rows["copy"]
    assert list(report.rows) == [REAL, "copy"]
    assert abs(real["fid"].mean) < 1e-6 and real["mpjpe_mm"].mean == 0
    for key in ("contact_f1", "intra_f1", "inter_f1", "r_precision_top1", "r_precision_top3"):
        assert real[key].mean == pytest.approx(1.0), key
    for key in METRICS:  # a generator that returns the ground truth scores exactly like it
        if key != "multimodality":
            assert gen[key].values == pytest.approx(real[key].values, abs=1e-6, nan_ok=True), key
    assert gen["multimodality"].mean == pytest.approx(0.0, abs=1e-9)  # two identical generations per item
    assert math.isnan(real["multimodality"].mean)  # one "generation" per item


def test_replications_cycle_groups_and_intervals_follow_the_formula(eval_set):
    embedder = PoseEmbedder(eval_set)
    exact, noisy = eval_set.motion[:, None], _noisy(eval_set, 1, 0.01)
    both = np.concatenate([exact, noisy], axis=1)  # group 0 exact, group 1 noisy
    report = evaluate(embedder, eval_set, {"g": both}, settings=EvalSettings(replications=5), progress=False)
    mpjpe = report.rows["g"]["mpjpe_mm"].values
    assert mpjpe[0] == mpjpe[2] == mpjpe[4] == 0 and mpjpe[1] == mpjpe[3] > 5  # rounds r use group r mod 2
    values = np.array(mpjpe)
    estimate = Estimate.of(list(values))
    assert estimate.mean == pytest.approx(values.mean())
    assert estimate.ci95 == pytest.approx(1.96 * values.std(ddof=1) / np.sqrt(5))
    assert Estimate.of([2.0]).ci95 == 0.0


def test_worse_generations_score_worse(eval_set):
    embedder = PoseEmbedder(eval_set)
    report = evaluate(embedder, eval_set, {"close": _noisy(eval_set, 2, 0.002), "far": _noisy(eval_set, 2, 0.03)},
                      settings=EvalSettings(replications=4), progress=False)
    close, far = report.rows["close"], report.rows["far"]
    assert close["mpjpe_mm"].mean < far["mpjpe_mm"].mean
    assert close["fid"].mean < far["fid"].mean
    assert close["r_precision_top1"].mean >= far["r_precision_top1"].mean
    assert close["jerk"].mean < far["jerk"].mean  # white noise on joints is jerky
    assert far["bone_drift_pct"].mean > report.rows[REAL]["bone_drift_pct"].mean


def test_a_fixed_seed_reproduces_the_report_exactly(eval_set, tmp_path):
    embedder = PoseEmbedder(eval_set)
    generated = {"noisy": _noisy(eval_set, 3, 0.01)}
    first = evaluate(embedder, eval_set, generated, settings=EvalSettings(replications=6, seed=4), progress=False)
    second = evaluate(embedder, eval_set, generated, settings=EvalSettings(replications=6, seed=4), progress=False)
    other = evaluate(embedder, eval_set, generated, settings=EvalSettings(replications=6, seed=5), progress=False)
    a = write_report(first, tmp_path / "a")
    b = write_report(second, tmp_path / "b")
    assert a[0].read_bytes() == b[0].read_bytes() and a[1].read_bytes() == b[1].read_bytes()
    assert first.rows["noisy"]["diversity"].values != other.rows["noisy"]["diversity"].values
    data = json.loads(a[0].read_text())
    assert data["format"] == "handx-eval" and len(data["rows"]["noisy"]["fid"]["values"]) == 6
    table = to_markdown(first)
    for name in ("R@3", "FID", "MPJPE", "Inter-F1", "Penetration", "| Real |", "| noisy |", " ± "):
        assert name in table


def test_generation_files_in_every_layout_load_in_item_order(eval_set, tmp_path):
    n = len(eval_set)
    joints = _noisy(eval_set, 2, 0.01)
    order = np.random.default_rng(0).permutation(n)
    save_generated(tmp_path / "ids.npz", [eval_set.ids[i] for i in order], joints[order])
    loaded, notes = load_generated([tmp_path / "ids.npz"], eval_set)
    np.testing.assert_array_equal(loaded, joints)
    assert notes["groups"] == 2 and notes["dropped_generations"] == 0

    release = tmp_path / "release" / "test_can_pos_all_wotextfeat.npz"  # entry k = group k // n of item k % n
    release.parent.mkdir()
    with HandxNpzWriter(release) as writer:
        for g in range(2):
            for i in range(n):
                texts = Texts([eval_set.texts[0][i]], [eval_set.texts[1][i]], [eval_set.texts[2][i]])
                writer.add(motion_entry(joints[i, g], texts))
    loaded, _ = load_generated([release.parent], eval_set)
    np.testing.assert_array_equal(loaded, joints)

    folder = tmp_path / "generate-outputs"  # handx generate outputs matched by their texts
    folder.mkdir()
    unique = [i for i in range(n) if sum(v == eval_set.variants[i][0] for vs in eval_set.variants for v in vs) == 1]
    assert unique, "the synthetic test set should have items with unique texts"
    for i in range(n):
        np.savez(folder / f"{i}.npz", joints=joints[i], left=np.array([eval_set.texts[0][i]]),
                 right=np.array([eval_set.texts[1][i]]), two_hands_relation=np.array([eval_set.texts[2][i]]))
    if len(unique) == n:
        loaded, _ = load_generated([folder], eval_set)
        np.testing.assert_array_equal(loaded, joints)
    else:
        with pytest.raises(HandxInputError, match="share the texts"):
            load_generated([folder], eval_set)


def test_bad_generation_files_are_named_with_their_problem(eval_set, tmp_path):
    n = len(eval_set)
    joints = _noisy(eval_set, 1, 0.01)
    save_generated(tmp_path / "part.npz", eval_set.ids[:-1], joints[:-1])
    with pytest.raises(HandxInputError, match="1 of .* items have no generation"):
        load_generated([tmp_path / "part.npz"], eval_set)
    save_generated(tmp_path / "unknown.npz", ["nope", *eval_set.ids[1:]], joints)
    with pytest.raises(HandxInputError, match="not in the evaluation set"):
        load_generated([tmp_path / "unknown.npz"], eval_set)
    bad = joints.copy()
    bad[3, 0, 10, 1, 5, 0] = np.nan
    save_generated(tmp_path / "nan.npz", eval_set.ids, bad)
    with pytest.raises(HandxInputError, match="NaN"):
        load_generated([tmp_path / "nan.npz"], eval_set)
    np.savez(tmp_path / "shape.npz", ids=np.array(eval_set.ids), joints=np.zeros((n, 1, 30, 2, 21, 3)))
    with pytest.raises(HandxInputError, match=r"expected \(\.\.\., 60, 2, 21, 3\)"):
        load_generated([tmp_path / "shape.npz"], eval_set)
    np.savez(tmp_path / "keys.npz", motion=np.zeros((60, 2, 21, 3)))
    with pytest.raises(HandxInputError, match="unknown layout"):
        load_generated([tmp_path / "keys.npz"], eval_set)
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "part.npz").read_bytes()[:100])
    with pytest.raises(HandxInputError, match="trunc.npz"):
        load_generated([tmp_path / "trunc.npz"], eval_set)
    with pytest.raises(HandxInputError, match="no such file"):
        load_generated([tmp_path / "missing.npz"], eval_set)

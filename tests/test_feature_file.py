"""Text features computed once per (store, encoder) into memory-mapped side files, and the training data path
that gathers batches from them: agreement with the encoder, resumable and incremental builds, identical batches
on the fast and the slow path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handx.representations.joints168 import encode
from handx.text import encode_branches, load_text_encoder
from handx.text.feature_file import TextFeatureFile, feature_dir
from handx.train.data import TextMotionData, motion_feature_file, step_loader
from handx.synth.corpus import write_synthetic

TEXTS = ["the left hand makes a fist", "", "both palms meet in one clap", "the right index finger points",
         "a much longer description of a hand that opens, closes, turns over and taps the other palm twice"]


@pytest.fixture(scope="module")
def glove():
    return load_text_encoder("glove")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("ff") / "store"
    write_synthetic(12, 3, root, progress=False)
    return root


def test_gathered_features_equal_the_encoder_to_half_precision(tmp_path, glove):
    features = TextFeatureFile.build(tmp_path / "f", TEXTS, glove, progress=False)
    rows = features.rows([TEXTS[3], TEXTS[0], TEXTS[4]])
    got = features.gather(rows)
    want = glove.encode([TEXTS[3], TEXTS[0], TEXTS[4]])
    assert torch.equal(got.mask, want.mask)
    np.testing.assert_allclose(got.tokens.numpy(), want.tokens.numpy(), rtol=2e-3, atol=2e-3)
    padded = features.gather(rows, length=want.length + 3)
    assert padded.length == want.length + 3 and not padded.mask[:, want.length:].any()
    assert float(padded.tokens[:, want.length:].abs().sum()) == 0.0


def test_incremental_build_keeps_rows_and_encodes_only_new_texts(tmp_path, glove):
    class Counting:
        name, dim = glove.name, glove.dim
        seen: list[str] = []

        def encode(self, texts):
            self.seen += list(texts)
            return glove.encode(texts)

    counting = Counting()
    first = TextFeatureFile.build(tmp_path / "f", TEXTS[:3], counting, progress=False)
    rows = first.rows(TEXTS[:3]).tolist()
    second = TextFeatureFile.build(tmp_path / "f", TEXTS + TEXTS[:2], counting, progress=False)
    assert second.rows(TEXTS[:3]).tolist() == rows
    assert sorted(counting.seen) == sorted(TEXTS)  # every text encoded exactly once
    assert len(second) == len(TEXTS)
    with pytest.raises(KeyError, match="no features for text"):
        second.rows(["never encoded"])


def test_a_killed_build_resumes_from_its_finished_parts(tmp_path, glove, monkeypatch):
    import handx.text.feature_file as ff

    monkeypatch.setattr(ff, "PART_SIZE", 2)
    calls = {"n": 0}

    class Failing:
        name, dim = glove.name, glove.dim

        def encode(self, texts):
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("killed")
            return glove.encode(texts)

    with pytest.raises(RuntimeError):
        TextFeatureFile.build(tmp_path / "f", TEXTS, Failing(), progress=False)
    assert len(list((tmp_path / "f" / "parts").glob("part-*.npz"))) == 1
    done = TextFeatureFile.build(tmp_path / "f", TEXTS, Failing(), progress=False)  # part 1 is not re-encoded
    assert calls["n"] == 4 and len(done) == len(TEXTS)
    assert not (tmp_path / "f" / "parts").exists()


def test_features_of_another_encoder_are_refused(tmp_path, glove):
    TextFeatureFile.build(tmp_path / "f", TEXTS, glove, progress=False)

    class Other:
        name, dim = "other", glove.dim

        def encode(self, texts):
            return glove.encode(texts)

    with pytest.raises(ValueError, match="not of other"):
        TextFeatureFile.build(tmp_path / "f", TEXTS + ["x"], Other(), progress=False)


def test_motion_features_equal_the_representation_and_grow_with_the_store(store):
    from handx.io.store import Store

    s = Store(store)
    features = motion_feature_file(s)
    want = encode(np.stack([s.motion(i) for i in range(len(s))]))[0]
    np.testing.assert_array_equal(np.asarray(features), want)
    write_synthetic(15, 3, store, progress=False)  # three more clips appended
    grown = motion_feature_file(Store(store))
    assert grown.shape[0] == 15
    np.testing.assert_array_equal(np.asarray(grown[:12]), want)


def test_prepared_batches_equal_the_slow_path(store, glove):
    data = TextMotionData(store)
    slow = TextMotionData(store)
    stats = data.fit_stats()
    data.prepare(glove, progress=False)
    rows = data.step_rows(3, 8, seed=1)
    fast, reference = data.batch(rows, stats), slow.batch(data.items[rows], stats)
    np.testing.assert_allclose(fast.features, reference.features, rtol=1e-5, atol=1e-5)
    assert fast.texts == reference.texts
    tokens, mask = encode_branches(glove, reference.texts)
    assert torch.equal(fast.mask[:, :, :mask.shape[2]], mask)
    np.testing.assert_allclose(fast.tokens[:, :, :mask.shape[2]].numpy(), tokens.numpy(), rtol=2e-3, atol=2e-3)
    assert feature_dir(store, glove.name).is_dir()


def test_loader_workers_give_the_same_batches(store, glove):
    data = TextMotionData(store)
    data.prepare(glove, progress=False)
    stats = data.fit_stats()
    inline = list(step_loader(data, stats, batch_size=4, seed=0, start=2, steps=5))
    threaded = list(step_loader(data, stats, batch_size=4, seed=0, start=2, steps=5, workers=1))
    assert len(inline) == len(threaded) == 3
    for a, b in zip(inline, threaded):
        np.testing.assert_array_equal(a.items, b.items)
        assert torch.equal(a.tokens, b.tokens)


def test_several_stores_pool_their_items(store, tmp_path, glove):
    other = tmp_path / "other"
    write_synthetic(4, 9, other, progress=False)
    data = TextMotionData([store, other])
    assert set(np.unique(data.items[:, 0])) == {0, 1}
    data.prepare(glove, progress=False)
    stats = data.fit_stats()
    rows = np.flatnonzero(data.items[:, 0] == 1)[:3]
    batch = data.batch(rows, stats)
    want = encode(np.stack([data.motion(1, int(c)) for c in data.items[rows, 1]]))[0]
    np.testing.assert_allclose(batch.features, stats.normalize(want), rtol=1e-5, atol=1e-5)


def test_a_data_fraction_keeps_nested_subsets_of_whole_clips(tmp_path):
    write_synthetic(20, 0, tmp_path / "s", progress=False)
    full = TextMotionData(tmp_path / "s")
    parts = {f: TextMotionData(tmp_path / "s", fraction=f) for f in (0.05, 0.3, 0.5, 1.0)}
    assert [len(parts[f].clip_keys) for f in parts] == [1, 6, 10, 20]
    assert np.array_equal(parts[1.0].items, full.items)
    for small, large in ((0.05, 0.3), (0.3, 0.5), (0.5, 1.0)):
        assert {tuple(k) for k in parts[small].clip_keys} <= {tuple(k) for k in parts[large].clip_keys}
    for data in parts.values():  # every variant of a kept clip stays, no item of another clip
        kept = {tuple(k) for k in data.clip_keys}
        assert {(s, c) for s, c, _ in data.items} == kept
        assert len(data.items) == sum(len(full.stores[0].records[c].texts["left"]) for _, c in kept)
    with pytest.raises(ValueError, match="fraction"):
        TextMotionData(tmp_path / "s", fraction=0)

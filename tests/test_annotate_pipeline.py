"""Store-level motion codes and annotation: resumable codes.jsonl, texts written into the store, failures reported,
the LLM writer's cache, real captures through codes and the template writer, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handx.annotate.base import NUM_VARIANTS, Description
from handx.annotate.llm import LLMConfig, LLMWriter
from handx.annotate.pipeline import CODES_FILE, annotate_store, compute_codes, read_codes
from handx.annotate.template import TemplateWriter
from handx.annotate.verify import verify_all
from handx.cli.main import main
from handx.features.codes import motion_codes
from handx.io.store import Store
from handx.synth.corpus import write_synthetic

from fake_llm_server import FakeChatServer


@pytest.fixture()
def store(tmp_path):
    root = tmp_path / "synth"
    write_synthetic(24, 4, root, progress=False)
    return root


def _clear_texts(root):
    import dataclasses

    from handx.io.store import rewrite_records

    rewrite_records(root, lambda r: dataclasses.replace(r, texts={"left": [], "right": [], "two_hands_relation": []}))


def test_codes_file_matches_per_clip_codes_and_resumes(store):
    report = compute_codes(store, batch_size=5, progress=False)
    assert report.computed == 24
    s = Store(store)
    codes = read_codes(store)
    for i in (0, 7, 23):
        assert codes[s.records[i].id] == motion_codes(s.motion(i))
    # Simulate an interrupted run: keep 10 complete lines and a torn one.
    path = store / CODES_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:10]) + lines[10][: len(lines[10]) // 2])
    again = compute_codes(store, batch_size=5, progress=False)
    assert (again.existing, again.computed) == (10, 14)
    assert read_codes(store) == codes


def test_parallel_codes_equal_serial(store, tmp_path):
    compute_codes(store, workers=2, batch_size=4, progress=False)
    parallel = read_codes(store)
    (store / CODES_FILE).unlink()
    compute_codes(store, workers=1, progress=False)
    assert read_codes(store) == parallel


def test_template_annotation_fills_every_clip(store):
    _clear_texts(store)
    report = annotate_store(store, TemplateWriter(seed=1), progress=False, commit_every=7)
    assert report.annotated == 24 and not report.failed
    s = Store(store)
    codes = read_codes(store)
    for record in s.records:
        assert all(len(record.texts[k]) == NUM_VARIANTS for k in ("left", "right", "two_hands_relation"))
        assert record.extra["annotation"] == {"writer": "template"}
        assert record.extra["program"]  # other fields survive the rewrite
        descriptions = [Description(*t) for t in zip(*(record.texts[k] for k in
                                                       ("left", "right", "two_hands_relation")))]
        assert verify_all(codes[record.id], descriptions) == []
    # Clips with texts are skipped unless --overwrite.
    assert annotate_store(store, TemplateWriter(seed=1), progress=False).skipped == 24


def test_llm_annotation_reports_failures_and_caches(store, tmp_path):
    _clear_texts(store)
    # Every clip's codes have frame_count 60, which the fake server maps to script key 0: the first requests
    # fail in different ways, one clip exhausts its retries on "three variants".
    script = {0: ["500", ("429", 0), "not_json", "three", "three", "three"]}
    cache = tmp_path / "cache"
    with FakeChatServer(script) as server:
        config = LLMConfig(base_url=server.base_url, model="m", max_retries=2, backoff_base_s=0.01,
                           backoff_max_s=0.02, concurrency=1, timeout_s=5.0, cache_dir=cache)
        report = annotate_store(store, LLMWriter(config), progress=False)
        assert report.annotated + len(report.failed) == 24 and len(report.failed) >= 1
        assert all("attempts" in f["error"] for f in report.failed)
        failed = {f["id"] for f in report.failed}
        s = Store(store)
        for record in s.records:
            assert (record.texts["left"] == []) == (record.id in failed)
        sent = len(server.calls)
        # A second run re-describes everything: cached clips cost nothing, only the failed ones are asked again.
        again = annotate_store(store, LLMWriter(config), overwrite=True, progress=False)
        assert len(server.calls) - sent == len(failed) and not again.failed
    reports = sorted((store / "reports").glob("annotate-*.json"))
    assert json.loads(reports[0].read_text())["failed"]


def test_real_capture_gets_five_valid_triplets_per_clip(shared_data, tmp_path):
    root = tmp_path / "real"
    assert main(["data", "import", str(shared_data / "manipnet"), "--format", "bvh", "--out", str(root),
                 "--no-progress"]) == 0
    assert main(["data", "import", str(shared_data / "leap"), "--format", "leap", "--out", str(root),
                 "--no-progress"]) == 0
    assert main(["annotate", str(root), "--writer", "template", "--no-progress"]) == 0
    s = Store(root)
    codes = read_codes(root)
    assert len(s) > 80
    for record in s.records:
        texts = record.texts
        assert all(len(texts[k]) == NUM_VARIANTS and all(t.strip() for t in texts[k])
                   for k in ("left", "right", "two_hands_relation"))
        descriptions = [Description(*t) for t in zip(texts["left"], texts["right"], texts["two_hands_relation"])]
        assert verify_all(codes[record.id], descriptions) == [], record.id


def test_codes_cli_for_one_clip_and_a_store(store, tmp_path, capsys):
    clip = Store(store).motion(3)
    np.save(tmp_path / "clip.npy", clip)
    assert main(["codes", "--clip", str(tmp_path / "clip.npy"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == motion_codes(clip)
    np.save(tmp_path / "bad.npy", clip[:, :, :20])
    assert main(["codes", "--clip", str(tmp_path / "bad.npy")]) == 2
    assert "bad.npy" in capsys.readouterr().err
    assert main(["codes", str(store), "--no-progress"]) == 0
    assert "24 clip(s)" in capsys.readouterr().out
    assert main(["codes"]) == 2


def test_append_adds_the_writers_variants_after_the_clips_own_once(tmp_path):
    from handx.annotate.pipeline import annotate_store
    from handx.annotate.template import TemplateWriter
    from handx.io.store import Store
    from handx.synth.corpus import write_synthetic

    root = tmp_path / "store"
    write_synthetic(3, 0, root, progress=False)
    before = [r.texts for r in Store(root).records]
    report = annotate_store(root, TemplateWriter(), append=True, progress=False)
    assert report.annotated == 3
    after = [r.texts for r in Store(root).records]
    for old, new in zip(before, after):
        for key in old:
            assert new[key][:len(old[key])] == old[key]  # the clip's own variants first, unchanged
            assert len(new[key]) == len(old[key]) + 5
    again = annotate_store(root, TemplateWriter(), append=True, progress=False)
    assert again.annotated == 0 and [r.texts for r in Store(root).records] == after


def test_limit_restricts_the_job_to_the_first_clips_even_when_rerun(tmp_path):
    from handx.annotate.pipeline import annotate_store
    from handx.annotate.template import TemplateWriter
    from handx.io.store import Store
    from handx.synth.corpus import write_synthetic

    root = tmp_path / "store"
    write_synthetic(4, 1, root, progress=False)
    for _ in range(2):
        annotate_store(root, TemplateWriter(), append=True, limit=2, progress=False)
    counts = [len(r.texts["left"]) for r in Store(root).records]
    assert counts == [10, 10, 5, 5]


def test_the_run_report_gives_tokens_speed_cache_hits_and_the_store_estimate(store, tmp_path, capsys):
    _clear_texts(store)
    cache = tmp_path / "cache"
    with FakeChatServer(usage=(900, 250), props={"default_generation_settings": {"n_ctx": 16384}}) as server:
        assert main(["annotate", str(store), "--writer", "llm", "--base-url", server.base_url, "--model", "m",
                     "--cache", str(cache), "--context", "12000", "--no-verify", "--no-progress"]) == 0
        first = capsys.readouterr().out
        assert main(["annotate", str(store), "--writer", "llm", "--base-url", server.base_url, "--model", "m",
                     "--cache", str(cache), "--overwrite", "--no-verify", "--no-progress"]) == 0
        second = capsys.readouterr().out
        sent = len(server.calls)
    distinct = sent  # clips with identical codes may share a cache entry
    assert 0 < sent <= 24
    reports = sorted((store / "reports").glob("annotate-*.json"))
    one, two = (json.loads(p.read_text()) for p in reports[-2:])
    cost = one["cost"]
    assert one["annotated"] == 24 and one["seconds"] > 0 and one["clips_per_s"] == pytest.approx(24 / one["seconds"],
                                                                                                rel=0.01)
    assert cost["clips_sent"] == distinct and cost["cache_hits"] == 24 - distinct
    assert cost["tokens_per_clip"]["prompt"]["mean"] == 900 and cost["tokens_per_clip"]["completion"]["max"] == 250
    assert cost["token_source"] == {"server_usage": distinct, "estimate": 0}
    assert cost["store_estimate"]["clips"] == 24 and cost["store_estimate"]["prompt_tokens"] == 24 * 900
    assert cost["context_tokens"] == 12000 and cost["structured_output"] == "json_schema"
    assert two["cost"]["cache_hits"] == 24 and two["cost"]["clips_sent"] == 0 and two["cost"]["requests"] == 0
    assert "prompt 900, completion 250 (mean)" in first and "whole store (24 clips): ~21,600 prompt" in first
    assert "output: json_schema" in first and "context 12000" in first
    assert "0 clip(s) sent, 24 cache hit(s)" in second

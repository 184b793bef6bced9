"""The web viewer (``handx view``): its HTTP API, what it refuses, generation from it (``--generate``, with a tiny
diffusion run trained here), and the page in headless Chromium."""

from __future__ import annotations

import dataclasses
import http.client
import importlib.util
import json
import os
import signal
import re
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from handx.cli.main import build_parser, main
from handx.features.codes import motion_codes
from handx.io.sources import BRANCHES
from handx.io.store import Store
from handx.models.diffusion import DiffusionConfig
from handx.motion import Triplet
from handx.pipelines import make_settings
from handx.sampling.condition import MODES, Condition
from handx.skeleton import BONES, JOINT_NAMES
from handx.synth.corpus import write_synthetic
from handx.train.diffusion import TrainConfig, train_diffusion
from handx.viz.viewer import MAX_PAGE, is_loopback, serve
from handx.viz.viewer_api import (MAX_GENERATE_BODY, MAX_TEXT, UnsafeNameError, ViewerGenerator,
                                  check_relative_name, code_rows, decode_motion)

SECRET = "TOP-SECRET-MARKER-3141"  # content of a file beside the served path: must never come back
REPO = Path(__file__).resolve().parents[1]
STATIC = REPO / "src" / "handx" / "viz" / "static"


# ---------------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("viewer")
    (base / "secret.txt").write_text(SECRET)
    root = base / "store"
    write_synthetic(6, 0, root, progress=False)
    return root


@pytest.fixture(scope="module")
def store(store_dir) -> Store:
    return Store(store_dir)


@pytest.fixture(scope="module")
def server(store_dir):
    viewer = serve(store_dir)
    yield viewer
    viewer.close()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A diffusion run trained for 30 steps on 8 synthetic clips: enough to load and sample, not to be good."""
    base = tmp_path_factory.mktemp("generator")
    data, run = base / "store", base / "run"
    write_synthetic(8, 0, data, progress=False)
    cfg = TrainConfig(data=str(data), out=str(run), steps=30, batch_size=8, lr=3e-3, warmup=10, save_every=30,
                      log_every=30, split=None, ema_decay=0.0)
    train_diffusion(cfg, progress=False, model_config=DiffusionConfig(layers=2, width=64, heads=2, ff=128,
                                                                      dropout=0.0))
    return run


@pytest.fixture(scope="module")
def gen_server(store_dir, tiny_run):
    viewer = serve(store_dir, generate=True, ckpt=tiny_run)
    yield viewer
    viewer.close()


def request(server, target: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    """A raw request (the target is sent as given, not normalised): ``(status, headers, body bytes)``."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def get_json(server, target: str):
    status, _, body = request(server, target)
    assert status == 200, (target, status, body[:300])
    return json.loads(body)


TEXTS = {"left": "the left hand waves slowly", "right": "the right hand makes a fist",
         "relation": "the hands stay apart"}
FIRST_CLIP = "handx-synth/0/0000000"


def post_generate(server, body, headers: dict | None = None):
    """POST ``body`` (an object, sent as JSON, or raw bytes) to /api/generate: ``(status, headers, bytes)``."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request(server, "/api/generate", method="POST", body=data,
                   headers={"Content-Type": "application/json", **(headers or {})})


def generated_joints(server, body) -> tuple[dict, np.ndarray]:
    status, _, raw = post_generate(server, body)
    assert status == 200, (status, raw[:300])
    answer = json.loads(raw)
    return answer, decode_motion(answer["motion"], answer["frames"])


def assert_json_error(status: int, body: bytes, expected_status: int, words: str = "") -> None:
    """A refusal: the expected 4xx/5xx status with a JSON ``{"error", "status"}`` that says ``words``."""
    assert status == expected_status, (status, body[:300])
    answer = json.loads(body)
    assert answer["status"] == expected_status and words in answer["error"], answer
    assert "Traceback" not in answer["error"]


def haystack(record) -> str:
    return "\n".join([record.id, *(t for b in BRANCHES for t in record.texts[b])]).casefold()


def write_generated(path: Path, motions: np.ndarray, texts=("left text", "right text", "relation text")) -> None:
    """An ``.npz`` shaped like ``handx generate`` output: joints (K, T, 2, 21, 3), one text per segment."""
    np.savez(path, joints=motions, left=np.array([texts[0]]), right=np.array([texts[1]]),
             two_hands_relation=np.array([texts[2]]), settings=np.array(json.dumps({"sampler": "ddim"})))


# ---------------------------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------------------------

def test_binds_loopback_by_default(server):
    assert server.httpd.server_address[0] == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}/"
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("")


def test_lists_every_clip_with_its_first_texts(server, store):
    page = get_json(server, "/api/clips")
    assert page["total"] == page["count"] == len(store) == 6
    assert [item["id"] for item in page["items"]] == store.ids()
    for item, record in zip(page["items"], store.records):
        assert item["left"] == record.texts["left"][0]
        assert item["right"] == record.texts["right"][0]
        assert item["relation"] == record.texts["two_hands_relation"][0]
        assert item["variants"] == len(record.texts["left"]) and item["frames"] == 60 and item["file"] is None
    meta = get_json(server, "/api/meta")
    assert meta["kind"] == "store" and meta["count"] == 6 and meta["bones"] == BONES.tolist()


def test_pages_concatenate_to_the_whole_list(server, store):
    ids = []
    for offset in range(0, 8, 4):
        page = get_json(server, f"/api/clips?offset={offset}&limit=4")
        assert page["total"] == 6 and page["offset"] == offset and page["limit"] == 4
        ids += [item["id"] for item in page["items"]]
    assert ids == store.ids()
    assert get_json(server, "/api/clips?offset=100")["items"] == []


def test_search_is_a_case_insensitive_substring_over_ids_and_all_variants(server, store):
    records = store.records
    # A phrase from a late (detailed) variant of one clip, in upper case: all clips containing it must come back.
    phrase = records[2].texts["right"][-1].split(",")[0][-20:]
    expected = [r.id for r in records if phrase.casefold() in haystack(r)]
    page = get_json(server, "/api/clips?" + urllib.parse.urlencode({"q": phrase.upper()}))
    assert records[2].id in expected
    assert [item["id"] for item in page["items"]] == expected and page["total"] == len(expected)
    by_id = get_json(server, "/api/clips?q=0000003")
    assert [item["id"] for item in by_id["items"]] == [records[3].id]
    assert get_json(server, "/api/clips?q=no-such-text-anywhere")["total"] == 0


def test_listing_and_search_never_read_motion(store_dir, monkeypatch):
    def refuse(self, index):
        raise AssertionError("listing read a motion shard")

    monkeypatch.setattr(Store, "shard", refuse)
    with serve(store_dir) as viewer:
        assert get_json(viewer, "/api/clips")["total"] == 6
        assert get_json(viewer, "/api/clips?q=fist")["total"] >= 0


def test_clip_payload_is_the_store_motion_with_texts_skeleton_and_codes(server, store):
    for i in (0, 4):
        record = store.records[i]
        payload = get_json(server, "/api/clip?" + urllib.parse.urlencode({"id": record.id}))
        assert payload["id"] == record.id and payload["frames"] == 60 and payload["fps"] == 30
        motion = decode_motion(payload["motion"], payload["frames"])
        np.testing.assert_array_equal(motion, store.motion(i))  # float32 bytes: exact
        assert payload["bones"] == BONES.tolist() and payload["joint_names"] == list(JOINT_NAMES)
        assert payload["hands"] == ["left", "right"] and len(payload["bone_fingers"]) == len(BONES)
        assert payload["texts"] == record.texts
        codes = json.loads(json.dumps(motion_codes(store.motion(i))))
        assert payload["codes"] == codes and payload["codes_error"] is None
        assert payload["timeline"] == code_rows(codes)
        assert payload["timeline"] and all(0 <= e["start"] < e["end"] <= 60
                                           for row in payload["timeline"] for e in row["events"])


def test_bad_parameters_get_400_and_unknown_clips_404(server):
    for target in (f"/api/clips?limit={MAX_PAGE + 1}", "/api/clips?limit=0", "/api/clips?offset=-1",
                   "/api/clips?limit=ten", "/api/clip", "/api/clips?" + "&".join(f"k{i}=1" for i in range(40)),
                   "/api/clips?q=" + "a" * 300):
        status, _, body = request(server, target)
        assert status == 400, target
        assert "error" in json.loads(body)
    assert get_json(server, f"/api/clips?limit={MAX_PAGE}")["limit"] == MAX_PAGE
    assert request(server, "/api/clip?id=handx-synth/0/9999999")[0] == 404
    assert request(server, "/nothing-here")[0] == 404


TRAVERSALS = [
    "/static/../viewer.py",
    "/static/..%2fviewer.py",
    "/static/..%2f..%2fpyproject.toml",
    "/static/..%2F..%2F..%2F..%2Fsecret.txt",
    "/static/%2e%2e/%2e%2e/secret.txt",
    "/static/..\\..\\secret.txt",
    "/static/%2Fetc%2Fpasswd",
    "/static//etc/passwd",
    "/static/viewer.js%00.html",
    "/../secret.txt",
    "//etc/passwd",
    "/api/clip?id=../../etc/passwd",
    "/api/clip?id=..%2F..%2Fsecret.txt",
    "/api/clip?id=/etc/passwd",
    "/api/clip?id=%2Fetc%2Fpasswd",
    "/api/clip?id=C:%5Cwindows%5Cwin.ini",
    "/api/clip?id=handx-synth%2F0%2F0000000%00",
    "/api/clip?id=..%5C..%5Csecret.txt",
    "/api/clip?id=handx-synth/0/0000000&file=../secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_is_refused_and_leaks_nothing(server, target):
    status, _, body = request(server, target)
    assert status in (403, 404), (target, status)
    text = body.decode("utf-8", "replace")
    for leak in (SECRET, "root:", "[build-system]", "def serve", "import "):
        assert leak not in text, (target, leak)


def test_request_size_and_method_limits(server):
    status, _, _ = request(server, "/api/clips?q=" + "a" * 5000)
    assert status == 414
    status, headers, _ = request(server, "/api/clips", method="POST", body=b"x=1")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    for method in ("PUT", "DELETE", "OPTIONS"):
        assert request(server, "/", method=method)[0] == 405
    assert request(server, "/api/clips", body=b"0123456789")[0] == 413  # GET with a body
    assert request(server, "/api/clips", headers={"Transfer-Encoding": "chunked"}, body=b"0\r\n\r\n")[0] == 413
    status, _, body = request(server, "/", method="HEAD")
    assert status == 200 and body == b""


def test_foreign_host_header_is_refused_on_loopback(server):
    assert request(server, "/api/meta", headers={"Host": "attacker.example"})[0] == 403
    assert request(server, "/api/meta", headers={"Host": f"localhost:{server.port}"})[0] == 200
    assert request(server, "/api/meta", headers={"Host": f"127.0.0.1:{server.port}"})[0] == 200


def test_security_headers_on_every_response(server):
    for target in ("/", "/static/viewer.js", "/api/meta", "/api/clips", "/no-such-page", "/static/../x"):
        _, headers, _ = request(server, target)
        assert headers["content-security-policy"].startswith("default-src 'self'"), target
        assert headers["x-content-type-options"] == "nosniff", target


def test_static_files_come_from_the_package_only(server):
    status, headers, body = request(server, "/static/viewer.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert body == (STATIC / "viewer.js").read_bytes()
    status, headers, body = request(server, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert body == (STATIC / "index.html").read_bytes()
    for target in ("/static/", "/static/missing.js", "/static/__init__.py", "/static/viewer_api.py"):
        assert request(server, target)[0] == 404, target


def test_page_files_reference_nothing_outside_the_server():
    for name in ("index.html", "viewer.js", "viewer.css"):
        text = (STATIC / name).read_text()
        assert "http://" not in text and "https://" not in text, name
        assert "@import" not in text and "fonts." not in text, name
    html = (STATIC / "index.html").read_text()
    assert "<style" not in html and " style=" not in html and "<script>" not in html  # CSP: no inline code


def test_generated_file_is_served_with_its_segments(tmp_path, store):
    motions = np.stack([store.motion(0), store.motion(1)])  # (2, 60, 2, 21, 3)
    write_generated(tmp_path / "gen.npz", motions)
    with serve(tmp_path / "gen.npz") as viewer:
        page = get_json(viewer, "/api/clips")
        assert [item["id"] for item in page["items"]] == ["gen/0", "gen/1"]
        assert page["items"][0]["left"] == "left text" and get_json(viewer, "/api/meta")["kind"] == "file"
        payload = get_json(viewer, "/api/clip?id=gen/1")
        np.testing.assert_array_equal(decode_motion(payload["motion"], 60), store.motion(1))
        assert payload["texts"] == {"left": ["left text"], "right": ["right text"],
                                    "two_hands_relation": ["relation text"]}


def test_directory_of_files_serves_only_files_inside_it(tmp_path, store):
    root = tmp_path / "outputs"
    for sub in ("a", "b"):
        (root / sub).mkdir(parents=True)
        write_generated(root / sub / "gen.npz", np.stack([store.motion(2)]), texts=(f"{sub} left", "r", "x"))
    (root / "broken.npz").write_bytes(b"not an npz")
    write_generated(tmp_path / "outside.npz", np.stack([store.motion(3)]), texts=(SECRET, SECRET, SECRET))
    (root / "link.npz").symlink_to(tmp_path / "outside.npz")
    with serve(root) as viewer:
        meta = get_json(viewer, "/api/meta")
        assert meta["kind"] == "directory" and meta["count"] == 2 and len(meta["skipped"]) == 1
        assert "broken.npz" in meta["skipped"][0]
        page = get_json(viewer, "/api/clips")
        assert [(i["file"], i["id"]) for i in page["items"]] == [("a/gen.npz", "gen/0"), ("b/gen.npz", "gen/0")]
        assert SECRET not in json.dumps(page)
        assert get_json(viewer, "/api/clips?q=B%20LEFT")["items"][0]["file"] == "b/gen.npz"
        payload = get_json(viewer, "/api/clip?id=gen/0&file=b/gen.npz")
        assert payload["texts"]["left"] == ["b left"] and payload["file"] == "b/gen.npz"
        assert request(viewer, "/api/clip?id=gen/0")[0] == 404  # ambiguous without its file
        for target in ("/api/clip?id=gen/0&file=../outside.npz", "/api/clip?id=gen/0&file=%2Ftmp%2Fx.npz",
                       "/api/clip?id=gen/0&file=a/../../outside.npz", "/api/clip?id=outside&file=link.npz",
                       "/api/clip?id=gen/0&file=a%5Cgen.npz"):
            status, _, body = request(viewer, target)
            assert status in (403, 404) and SECRET.encode() not in body, target


def test_a_store_whose_manifest_names_an_outside_shard_is_refused(tmp_path, store_dir):
    import shutil

    from handx.errors import HandxInputError

    copy = tmp_path / "copy"
    shutil.copytree(store_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["shards"][0]["file"] = "../elsewhere.npy"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HandxInputError, match="outside the store|not a plain file name inside the store"):
        serve(copy)  # refused by the viewer, or already by the store when it reads the manifest


def test_code_rows_flatten_events_with_exclusive_ends():
    codes = {
        "frame_count": 10,
        "left_hand_events": {
            "finger_tip_contact": {"index_tip, thumb_tip": [{"start": 2, "end": 4, "constant_des": "Contact"}]},
            "wrist_trajectory": {"left-right": [{"start": 0, "end": 5, "direction": "left-to-right",
                                                 "v_des": "Slow"}]},
        },
        "right_hand_events": {"finger_flexing": {"index_mcp": [{"start": 0, "end": 10,
                                                                "constant_des": "Fully extended"}]}},
        "two_hand_relationships": {"palm_palm_distance": {"left_palm, right_palm": [
            {"start": 0, "end": 6, "start_des": "Far", "end_des": "Near", "v_des": "Fast"}]}},
    }
    assert code_rows(codes) == [
        {"group": "left hand", "family": "finger tip contact", "signal": "index_tip, thumb_tip", "changes": True,
         "events": [{"start": 2, "end": 5, "label": "Contact", "kind": "contact"}]},
        {"group": "left hand", "family": "wrist trajectory", "signal": "left-right", "changes": True,
         "events": [{"start": 0, "end": 5, "label": "left-to-right (Slow)", "kind": "move"}]},
        {"group": "right hand", "family": "finger flexing", "signal": "index_mcp", "changes": False,
         "events": [{"start": 0, "end": 10, "label": "Fully extended", "kind": "constant"}]},
        {"group": "two hands", "family": "palm palm distance", "signal": "left_palm, right_palm", "changes": True,
         "events": [{"start": 0, "end": 6, "label": "Far → Near (Fast)", "kind": "change"}]},
    ]


def test_check_relative_name():
    for good in ("handx-synth/0/0000001", "a/gen.npz", "clip..v2", "x"):
        assert check_relative_name(good) == good
    for bad in ("", "../x", "a/../b", "..", "./a", "/etc/passwd", "C:x", "a\\b", "a\x00b", "a\nb", "x" * 2000):
        with pytest.raises(UnsafeNameError):
            check_relative_name(bad)


# ---------------------------------------------------------------------------------------------------------------
# Load, disconnects and a viewer on the network
# ---------------------------------------------------------------------------------------------------------------

def test_200_concurrent_requests_are_all_answered_and_disconnects_stay_quiet(store_dir, capfd):
    """200 clients connect at once (the old listen backlog of 5 made them wait up to a minute for SYN retries);
    one in ten sends its request and resets the connection before the answer (a broken pipe for the server)."""
    import socket
    import struct
    import time

    clients = 200
    capfd.readouterr()
    with serve(store_dir) as viewer:
        start = threading.Barrier(clients)
        answers, failures = [], []

        def polite(k: int) -> None:
            start.wait()
            try:
                status, _, body = request(viewer, "/api/meta" if k % 2 else f"/api/clip?id={FIRST_CLIP}")
                answers.append((status, len(body)))
            except OSError as exc:
                failures.append(repr(exc))

        def rude(k: int) -> None:
            start.wait()
            with socket.create_connection(("127.0.0.1", viewer.port), timeout=10) as sock:
                sock.sendall(f"GET /api/clip?id={FIRST_CLIP} HTTP/1.0\r\n\r\n".encode())
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a RST

        threads = [threading.Thread(target=rude if k % 10 == 0 else polite, args=(k,)) for k in range(clients)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        elapsed = time.monotonic() - began
        assert not failures and len(answers) == clients - clients // 10, failures[:3]
        assert all(status == 200 and size > 0 for status, size in answers)
        assert elapsed < 15, f"{clients} requests took {elapsed:.1f} s"
        assert get_json(viewer, "/api/meta")["count"] == 6  # still serving
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err, err[-2000:]


def test_an_unexpected_failure_is_a_json_500_and_the_server_goes_on(store_dir, monkeypatch, capfd):
    capfd.readouterr()
    with serve(store_dir) as viewer:
        def broken(i):
            raise RuntimeError(f"boom in {store_dir}")

        monkeypatch.setattr(viewer.catalog, "payload", broken)
        status, _, body = request(viewer, f"/api/clip?id={FIRST_CLIP}")
        assert_json_error(status, body, 500, "the viewer failed to answer (RuntimeError)")
        assert str(store_dir).encode() not in body
        assert get_json(viewer, "/api/meta")["count"] == 6
    assert "Traceback" not in capfd.readouterr().err


def test_a_viewer_on_the_network_reveals_no_absolute_path(tmp_path, store):
    """Bound to 0.0.0.0, no answer names a path of the server's file system; files are named relative to the
    served folder. On loopback the full path is shown (it helps the user on this machine)."""
    root = tmp_path / "outputs"
    (root / "a").mkdir(parents=True)
    write_generated(root / "a" / "gen.npz", np.stack([store.motion(2)]))
    (root / "broken.npz").write_bytes(b"not an npz")
    targets = ["/api/meta", "/api/clips", "/api/clips?q=left", "/api/clip?id=gen/0",
               "/api/clip?id=gen/0&file=a/gen.npz", "/api/clip?id=nope", "/api/clip?id=gen/0&file=../x.npz", "/api/clips?limit=x", "/nope", "/",
               "/static/nope.js"]
    private = [str(tmp_path), str(tmp_path.resolve()), str(Path.cwd()), str(Path.home())]
    with serve(root, host="0.0.0.0") as viewer:
        answers = [request(viewer, target) for target in targets]
        answers.append(request(viewer, "/api/clips", method="POST", body=b"{}"))
        meta = json.loads(answers[0][2])
        assert meta["skipped"] and meta["skipped"][0].startswith("outputs/broken.npz: ")  # still says which file
        for target, (status, _, body) in zip(targets + ["POST"], answers):
            if "motion" in (text := body.decode("utf-8")):
                text = json.dumps({k: v for k, v in json.loads(text).items() if k != "motion"})
            assert not [p for p in private if p in text], (target, status, text[:400])
    with serve(root) as local:
        assert get_json(local, "/api/meta")["skipped"][0].startswith(str(root.resolve()))


# ---------------------------------------------------------------------------------------------------------------
# Generate (handx view --generate)
# ---------------------------------------------------------------------------------------------------------------

def test_generate_returns_one_window_made_by_the_loaded_run(gen_server):
    info = get_json(gen_server, "/api/meta")["generate"]
    assert [m["name"] for m in info["modes"]] == ["text", *MODES] and info["frames"] == 60
    assert info["max_text"] == MAX_TEXT == 1000 and info["run"] == "run"
    answer, joints = generated_joints(gen_server, {"texts": TEXTS, "seed": 3, "steps": 5})
    assert answer["shape"] == [60, 2, 21, 3] and joints.shape == (60, 2, 21, 3) and np.isfinite(joints).all()
    assert answer["texts"] == {"left": TEXTS["left"], "right": TEXTS["right"],
                               "two_hands_relation": TEXTS["relation"]}
    assert answer["mode"] == "text" and answer["clip"] is None and answer["seed"] == 3 and answer["steps"] == 5
    assert answer["seconds"] > 0 and answer["settings"]["steps"] == 5 and answer["settings"]["family"] == "diffusion"
    # What the library makes for the same request; the same request again is the same motion, another seed is not.
    pipeline = gen_server.generator.pipeline
    direct = pipeline.generate((Triplet(TEXTS["left"], TEXTS["right"], TEXTS["relation"]),), seed=3,
                               settings=make_settings(pipeline, steps=5))[0]
    np.testing.assert_array_equal(joints, direct)
    np.testing.assert_array_equal(generated_joints(gen_server, {"texts": TEXTS, "seed": 3, "steps": 5})[1], joints)
    assert not np.allclose(generated_joints(gen_server, {"texts": TEXTS, "seed": 4, "steps": 5})[1], joints)
    # In text mode a clip is only shown beside the result: it does not change it.
    beside, same = generated_joints(gen_server, {"texts": TEXTS, "seed": 3, "steps": 5, "clip": FIRST_CLIP})
    assert beside["clip"] == FIRST_CLIP and beside["file"] is None
    np.testing.assert_array_equal(same, joints)
    # One non-empty text of exactly the longest length is enough.
    longest = {"left": "x" * MAX_TEXT, "right": "", "relation": ""}
    assert generated_joints(gen_server, {"texts": longest, "steps": 1})[1].shape == (60, 2, 21, 3)


@pytest.mark.parametrize("mode, kept", [("left-hand", 0), ("right-hand", 1)])
def test_hand_reaction_keeps_the_given_hand_of_the_clip(gen_server, store, mode, kept):
    index = 2
    clip_id = store.ids()[index]
    answer, joints = generated_joints(gen_server, {"texts": TEXTS, "clip": clip_id, "mode": mode, "steps": 5})
    motion = np.asarray(store.motion(index))  # (60, 2, 21, 3)
    assert answer["clip"] == clip_id and answer["mode"] == mode
    np.testing.assert_allclose(joints[:, kept], motion[:, kept], atol=1e-5)
    assert np.abs(joints[:, 1 - kept] - motion[:, 1 - kept]).max() > 1e-3  # the other hand is generated


def test_every_mode_runs_and_keeps_what_it_promises(gen_server, store):
    motion = np.asarray(store.motion(1))
    info = get_json(gen_server, "/api/meta")["generate"]
    for mode in MODES:
        _, joints = generated_joints(gen_server, {"texts": TEXTS, "clip": store.ids()[1], "mode": mode, "steps": 3})
        condition = Condition(mode, motion, frames=gen_server.generator.keyframes if mode == "keyframes" else ())
        fixed = gen_server.generator.pipeline.constrained_joints(condition) == 1  # (60, 2, 21) joints kept
        assert fixed.any(), mode
        np.testing.assert_allclose(joints[fixed], motion[fixed], atol=1e-5, err_msg=mode)
    labels = {m["name"]: m["label"] for m in info["modes"]}
    assert labels["keyframes"] == "frames 0, 30, 59 from the clip"


class _SecondFamily:
    """A stand-in for another generator family: no sampler steps or guidance, only the left-hand mode."""

    @dataclasses.dataclass(frozen=True)
    class Settings:
        temperature: float = 0.9

        def describe(self) -> dict:
            return dataclasses.asdict(self)

    family = "second"
    modes = frozenset({"left-hand"})
    frames = 60

    def __init__(self, motion: np.ndarray):
        self.motion = motion  # what every generation returns
        self.calls: list = []

    def generate(self, triplets, *, num=1, seed=0, constraints=None, settings=None, batch_size=64, progress=False):
        self.calls.append((tuple(triplets), num, seed, constraints, settings))
        return np.broadcast_to(self.motion, (len(triplets) * num, *self.motion.shape)).copy()


def test_the_panel_offers_what_the_family_has_and_refuses_the_rest(store_dir, store):
    family = _SecondFamily(np.asarray(store.motion(3), dtype=np.float32))
    with serve(store_dir) as viewer:
        viewer.generator = ViewerGenerator(family, Path("second-run"), viewer.catalog)
        info = get_json(viewer, "/api/meta")["generate"]
        assert [m["name"] for m in info["modes"]] == ["text", "left-hand"] and info["family"] == "second"
        assert info["steps"] is None and info["guidance"] is None
        for body, words in (({"texts": TEXTS, "clip": FIRST_CLIP, "mode": "wrists"},
                             "mode must be one of text, left-hand, got \"wrists\" (the second family does not "
                             "support 'wrists')"),
                            ({"texts": TEXTS, "steps": 5}, "steps does not apply to the second family"),
                            ({"texts": TEXTS, "guidance": 2.0}, "guidance does not apply to the second family")):
            assert_json_error(*post_generate(viewer, body)[::2], 400, words)
        assert family.calls == []
        answer, joints = generated_joints(viewer, {"texts": TEXTS, "clip": FIRST_CLIP, "mode": "left-hand",
                                                   "seed": 7})
        np.testing.assert_array_equal(joints, family.motion)
        (triplets, num, seed, constraints, settings), = family.calls
        assert triplets == (Triplet(TEXTS["left"], TEXTS["right"], TEXTS["relation"]),) and num == 1 and seed == 7
        assert constraints.mode == "left-hand" and settings == _SecondFamily.Settings()
        np.testing.assert_array_equal(constraints.motion, store.motion(0))
        assert answer["steps"] is None and answer["guidance"] is None and answer["family"] == "second"
        assert answer["settings"] == {"family": "second", "temperature": 0.9, "seed": 7, "num": 1, "length": 60,
                                      "mode": "left-hand"}


BAD_BODIES = [
    ("unknown key", {"texts": TEXTS, "temperature": 0.7}, 400, "unknown key(s) 'temperature'"),
    ("text too long", {"texts": {**TEXTS, "left": "x" * (MAX_TEXT + 1)}}, 400, "at most 1000"),
    ("text not a string", {"texts": {**TEXTS, "right": 5}}, 400, "texts.right must be a string"),
    ("texts missing", {"mode": "text"}, 400, "texts must be an object"),
    ("a text missing", {"texts": {"left": "a", "right": "b"}}, 400, "exactly the keys"),
    ("a text too many", {"texts": {**TEXTS, "both": "c"}}, 400, "exactly the keys"),
    ("texts not an object", {"texts": ["a", "b", "c"]}, 400, "texts must be an object"),
    ("all texts empty", {"texts": {"left": " ", "right": "", "relation": "\n"}}, 400, "all three texts are empty"),
    ("bad mode", {"texts": TEXTS, "mode": "both-hands", "clip": FIRST_CLIP}, 400, "mode must be one of"),
    ("mode not a string", {"texts": TEXTS, "mode": ["text"]}, 400, "mode must be one of"),
    ("mode without clip", {"texts": TEXTS, "mode": "left-hand"}, 400, "give the clip"),
    ("unknown clip", {"texts": TEXTS, "clip": "handx-synth/0/9999999", "mode": "wrists"}, 404, "no clip"),
    ("clip outside", {"texts": TEXTS, "clip": "../../secret.txt"}, 403, "'..'"),
    ("clip not a string", {"texts": TEXTS, "clip": 3}, 400, "clip must be a string"),
    ("file without clip", {"texts": TEXTS, "file": "a.npz"}, 400, "file is given without clip"),
    ("steps zero", {"texts": TEXTS, "steps": 0}, 400, "steps must be in [1, 200]"),
    ("steps too many", {"texts": TEXTS, "steps": 100000}, 400, "steps must be in [1, 200]"),
    ("steps fractional", {"texts": TEXTS, "steps": 5.5}, 400, "steps must be an integer"),
    ("seed a boolean", {"texts": TEXTS, "seed": True}, 400, "seed must be an integer"),
    ("seed negative", {"texts": TEXTS, "seed": -1}, 400, "seed must be in"),
    ("guidance a string", {"texts": TEXTS, "guidance": "high"}, 400, "guidance must be a number"),
    ("not an object", [TEXTS], 400, "must be a JSON object"),
    ("not JSON", b"texts=hello", 400, "not JSON"),
    ("cut JSON", b'{"texts": {"left": "a"', 400, "not JSON"),
    ("not UTF-8", b'{"texts": "\xff\xfe"}', 400, "not UTF-8"),
    ("NaN", b'{"texts": {"left": "a", "right": "", "relation": ""}, "guidance": NaN}', 400, "NaN"),
    ("key twice", b'{"texts": {"left": "a", "right": "", "relation": ""}, "seed": 1, "seed": 2}', 400, "twice"),
]


@pytest.mark.parametrize("name, body, status, words", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_generate_bodies_get_a_json_4xx(gen_server, name, body, status, words):
    assert_json_error(*post_generate(gen_server, body)[::2], status, words)


def test_generate_requests_are_refused_before_the_body_is_read(gen_server):
    body = json.dumps({"texts": TEXTS, "steps": 1}).encode()
    port = gen_server.port
    cases = [
        ({"Content-Type": "text/plain"}, body, 415, "application/json"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"texts=a", 415, "application/json"),
        ({"Origin": "http://attacker.example"}, body, 403, "Origin"),
        ({"Origin": "null"}, body, 403, "Origin"),
        ({"Host": "attacker.example"}, body, 403, "Host"),
        ({}, b"", 411, "Content-Length"),
        ({"Transfer-Encoding": "chunked"}, b"0\r\n\r\n", 411, "Content-Length"),
        ({}, b"x" * (MAX_GENERATE_BODY + 1), 413, "request body over"),
    ]
    for headers, data, status, words in cases:
        sent = request(gen_server, "/api/generate", method="POST", body=data,
                       headers={"Content-Type": "application/json", **headers})
        assert_json_error(sent[0], sent[2], status, words)
        assert sent[1]["content-security-policy"].startswith("default-src 'self'")
    assert post_generate(gen_server, body, {"Origin": f"http://127.0.0.1:{port}"})[0] == 200  # the page itself
    status, headers, raw = request(gen_server, "/api/generate")
    assert_json_error(status, raw, 405, "POST")
    assert headers["allow"] == "POST"


def test_without_generate_the_endpoint_is_absent(server):
    assert get_json(server, "/api/meta")["generate"] is None
    status, _, raw = post_generate(server, {"texts": TEXTS})
    assert_json_error(status, raw, 404, "--generate")
    assert request(server, "/api/generate")[0] == 404
    assert server.generator is None


def test_one_generation_at_a_time(gen_server, monkeypatch):
    pipeline = gen_server.generator.pipeline
    real, started, release = pipeline.generate, threading.Event(), threading.Event()

    def slow(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "generate", slow)
    body = {"texts": TEXTS, "steps": 1}
    first: list = []
    thread = threading.Thread(target=lambda: first.append(post_generate(gen_server, body)))
    thread.start()
    try:
        assert started.wait(30)
        status, headers, raw = post_generate(gen_server, body)
        assert_json_error(status, raw, 429, "running already")
        assert headers["retry-after"] == "1"
    finally:
        release.set()
        thread.join(60)
    assert first[0][0] == 200
    assert post_generate(gen_server, body)[0] == 200  # free again


def test_a_failing_generation_is_a_json_500_without_details(gen_server, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom in /private/path")

    monkeypatch.setattr(gen_server.generator.pipeline, "generate", broken)
    status, _, raw = post_generate(gen_server, {"texts": TEXTS, "steps": 1})
    assert_json_error(status, raw, 500, "generation failed (RuntimeError)")
    assert b"/private/path" not in raw
    assert not gen_server.generator.busy


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------

def test_cli_parses_and_reports_a_missing_path(tmp_path, capsys):
    args = build_parser().parse_args(["view", str(tmp_path), "--port", "0"])
    assert args.port == 0 and args.host == "127.0.0.1" and not args.open
    assert main(["view", str(tmp_path / "missing"), "--port", "0"]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_cli_generate_flags(tmp_path, store_dir, tiny_run, capsys, monkeypatch):
    args = build_parser().parse_args(["view", str(tmp_path), "--generate", "--ckpt", str(tiny_run)])
    assert args.generate and args.ckpt == str(tiny_run) and args.device is None
    assert not build_parser().parse_args(["view", str(tmp_path)]).generate
    with pytest.raises(SystemExit):
        main(["view", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--generate" in help_text and "built-in model's name" in help_text
    assert main(["view", str(store_dir), "--ckpt", str(tiny_run), "--port", "0"]) == 2
    assert "add --generate" in capsys.readouterr().err
    assert main(["view", str(store_dir), "--generate", "--ckpt", str(tmp_path / "missing"), "--port", "0"]) == 2
    assert "no such run directory, and not a built-in model" in capsys.readouterr().err
    import handx.assets

    monkeypatch.setattr(handx.assets, "builtin", lambda name: None)  # as if no built-in model were installed
    assert main(["view", str(store_dir), "--generate", "--port", "0"]) == 2
    assert "the default built-in generator is not installed" in capsys.readouterr().err


def test_cli_serves_until_interrupted(store_dir):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "handx.cli.main", "view", str(store_dir), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert "http://127.0.0.1:" in line, line + process.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]
        port = urllib.parse.urlsplit(url).port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/meta")
        assert json.loads(conn.getresponse().read())["count"] == 6
        conn.close()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
        assert "stopped" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------------------------------------------------
# The page in headless Chromium
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium driven over DevTools; skips without one, fails instead with HANDX_REQUIRE_BROWSER=1."""
    from browser import Chromium, find_chromium

    required = os.environ.get("HANDX_REQUIRE_BROWSER") == "1"
    binary = find_chromium()
    problem = None
    if binary is None:
        problem = ("no Chromium found on PATH (chromium, chromium-browser or google-chrome); install Debian's "
                   "'chromium' package to run the viewer's browser test")
    else:
        if importlib.util.find_spec("websocket") is None:  # websocket-client, a dev dependency
            problem = "websocket-client is not installed (pip install websocket-client) for the browser test"
    if problem:
        if required:
            pytest.fail(problem + " (HANDX_REQUIRE_BROWSER=1)")
        pytest.skip(problem)
    chromium = Chromium.launch(binary, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


def test_page_lists_searches_plays_and_shows_texts(browser, server, store):
    viewer = "window.handxViewer"
    browser.navigate(server.url)
    browser.wait_for(f"{viewer} && {viewer}.ready", timeout=15)
    state = browser.evaluate(viewer)
    assert state["error"] is None, state
    records = store.records

    def shown_ids() -> list[str]:
        return browser.evaluate("Array.from(document.querySelectorAll('#clip-list li'), li => li.dataset.id)")

    def shown_texts() -> dict:
        return browser.evaluate(
            "({left: Array.from(document.querySelectorAll('#texts-left li'), li => li.textContent),"
            " right: Array.from(document.querySelectorAll('#texts-right li'), li => li.textContent),"
            " two_hands_relation: Array.from(document.querySelectorAll('#texts-relation li'), li => li.textContent)})")

    def canvas() -> str:
        return browser.evaluate("document.getElementById('view').toDataURL()")

    # The list holds every clip; the first one is open with all its text variants.
    assert shown_ids() == store.ids()
    assert state["clipId"] == records[0].id and state["frames"] == 60
    assert shown_texts() == records[0].texts

    # Search narrows the list to the clips whose texts contain the phrase (as the API computes it).
    phrase = next(w for w in ("fist", "point", "flick", "tap", "count", "touch", "open", "0000003")
                  if 0 < sum(w in haystack(r) for r in records) < len(records))
    expected = [r.id for r in records if phrase in haystack(r)]
    browser.evaluate(f"(() => {{ const s = document.getElementById('search'); s.value = {json.dumps(phrase)};"
                     " s.dispatchEvent(new Event('input')); })()")
    browser.wait_for(f"{viewer}.query === {json.dumps(phrase)} && !{viewer}.listLoading")
    assert shown_ids() == expected and len(expected) < len(records)

    # Clicking a listed clip loads it and shows its texts.
    target = expected[-1]
    index = store.index_of(target)
    browser.evaluate("Array.from(document.querySelectorAll('#clip-list li'))"
                     f".find(li => li.dataset.id === {json.dumps(target)}).querySelector('button').click()")
    browser.wait_for(f"{viewer}.clipId === {json.dumps(target)} && !{viewer}.loading")
    assert shown_texts() == records[index].texts
    timeline_rows = browser.evaluate("document.querySelectorAll('#timeline .tl-row').length")
    assert timeline_rows == len(code_rows(motion_codes(store.motion(index))))

    # Playing advances the frame counter and changes the picture.
    before_image, before_counter = canvas(), browser.evaluate("document.getElementById('frame-counter').textContent")
    browser.evaluate("document.getElementById('play').click()")
    browser.wait_for(f"{viewer}.playing && {viewer}.frame >= 6", timeout=10)
    assert canvas() != before_image
    assert browser.evaluate("document.getElementById('frame-counter').textContent") != before_counter
    browser.evaluate("document.getElementById('play').click()")
    assert browser.evaluate(f"{viewer}.playing") is False

    # Scrubbing sets the frame (and pauses).
    def scrub(frame: int) -> str:
        browser.evaluate(f"(() => {{ const s = document.getElementById('scrub'); s.value = '{frame}';"
                         " s.dispatchEvent(new Event('input')); })()")
        assert browser.evaluate(f"{viewer}.frame") == frame
        return canvas()

    at_40, at_17 = scrub(40), scrub(17)
    assert at_17 != at_40
    assert "frame 18 / 60" in browser.evaluate("document.getElementById('frame-counter').textContent")

    # Dragging on the canvas orbits the camera: same frame, another picture.
    box = browser.evaluate("(() => { const r = document.getElementById('view').getBoundingClientRect();"
                           " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
    for kind, dx in (("mousePressed", 0), ("mouseMoved", 60), ("mouseMoved", 120), ("mouseReleased", 120)):
        browser.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0] + dx, "y": box[1], "button": "left",
                                                  "buttons": 0 if kind == "mouseReleased" else 1, "clickCount": 1})
    assert browser.evaluate(f"{viewer}.frame") == 17 and canvas() != at_17

    # Choosing a variant highlights it in all three branches.
    browser.evaluate("document.querySelectorAll('#texts-left li')[2].click()")
    assert browser.evaluate(f"{viewer}.variant") == 2
    assert browser.evaluate("Array.from(document.querySelectorAll('.variants li.selected'),"
                            " li => li.dataset.variant)") == ["2", "2", "2"]

    browser.pump(0.2)
    assert browser.problems == [], browser.problems


def test_page_generates_and_plays_the_motion_beside_the_clip(browser, gen_server, store):
    viewer = "window.handxViewer"
    browser.problems.clear()
    browser.navigate(gen_server.url)
    browser.wait_for(f"{viewer} && {viewer}.ready", timeout=15)
    assert browser.evaluate(f"{viewer}.error") is None
    assert browser.evaluate("document.getElementById('generate').hidden") is False
    modes = browser.evaluate("Array.from(document.querySelectorAll('#gen-mode option'), o => o.value)")
    assert modes == ["text", *MODES]
    first = store.ids()[0]
    assert browser.evaluate(f"{viewer}.clipId") == first

    def status() -> str:
        return browser.evaluate("document.getElementById('gen-status').textContent")

    def click_generate() -> str:
        """Click Generate; returns the status line right after the click (before the answer can arrive)."""
        return browser.evaluate("(() => { document.getElementById('gen-run').click();"
                                " return document.getElementById('gen-status').textContent; })()")

    # Nothing typed: the server refuses, and its message shows on the status line.
    assert click_generate() == "generating…"
    browser.wait_for(f"!{viewer}.generating && document.getElementById('gen-status').classList.contains('error')")
    assert "all three texts are empty" in status() and browser.evaluate(f"{viewer}.generated") is None

    # Type the three texts, keep the left hand of the open clip, 5 steps.
    for box, text in (("gen-left", TEXTS["left"]), ("gen-right", TEXTS["right"]), ("gen-relation", TEXTS["relation"])):
        browser.evaluate(f"document.getElementById({json.dumps(box)}).focus()")
        browser.send("Input.insertText", {"text": text})
    browser.evaluate("(() => { const m = document.getElementById('gen-mode'); m.value = 'left-hand';"
                     " m.dispatchEvent(new Event('change'));"
                     " document.getElementById('gen-steps').value = '5'; })()")
    assert click_generate() == "generating…"
    browser.wait_for(f"{viewer}.generated && !{viewer}.generating", timeout=60)
    assert re.fullmatch(r"generated in \d+\.\d\d s · left-hand · seed 0 · 5 steps", status()), status()
    assert browser.evaluate(f"{viewer}.generated") == {
        "frames": 60, "seconds": browser.evaluate(f"{viewer}.generated.seconds"), "mode": "left-hand",
        "clipId": first, "file": None, "seed": 0, "steps": 5}
    # The page asked for exactly this: the same request from here gives the motion it shows.
    _, expected = generated_joints(gen_server, {"texts": TEXTS, "mode": "left-hand", "clip": first, "steps": 5})

    # It plays at once, both motions in step.
    browser.wait_for(f"{viewer}.playing && {viewer}.drawn.generated && {viewer}.drawn.generated.frame >= 6")
    drawn = browser.evaluate(f"{viewer}.drawn")
    assert drawn["generated"]["frame"] == drawn["data"]["frame"]
    browser.evaluate("document.getElementById('play').click()")
    assert browser.evaluate(f"{viewer}.playing") is False

    def canvas() -> str:
        return browser.evaluate("document.getElementById('view').toDataURL()")

    def scrub(frame: int) -> tuple[str, dict]:
        browser.evaluate(f"(() => {{ const s = document.getElementById('scrub'); s.value = '{frame}';"
                         " s.dispatchEvent(new Event('input')); })()")
        return canvas(), browser.evaluate(f"{viewer}.drawn")

    motion = np.asarray(store.motion(0))
    pictures = {}
    for frame in (10, 40):
        pictures[frame], drawn = scrub(frame)
        assert drawn["generated"]["frame"] == drawn["data"]["frame"] == frame
        np.testing.assert_allclose(drawn["generated"]["wrists"], expected[frame, :, 0], atol=1e-6)
        np.testing.assert_allclose(drawn["data"]["wrists"], motion[frame, :, 0], atol=1e-6)
        np.testing.assert_allclose(drawn["generated"]["wrists"][0], drawn["data"]["wrists"][0], atol=1e-5)  # kept
        assert drawn["generated"]["offset"][0] > 0 and drawn["data"]["offset"] == [0, 0, 0]  # beside, to the right
    assert pictures[10] != pictures[40]

    # "On the clip" draws it where it was generated; hiding it leaves the clip alone (another picture).
    browser.evaluate("document.getElementById('gen-overlay').click()")
    assert browser.evaluate(f"{viewer}.drawn.generated.offset") == [0, 0, 0]
    browser.evaluate("document.getElementById('gen-overlay').click()")
    with_generated, _ = scrub(10)
    browser.evaluate("document.getElementById('gen-hide').click()")
    assert browser.evaluate(f"{viewer}.generated") is None
    without, drawn = scrub(10)
    assert list(drawn) == ["data"] and without != with_generated

    # "Texts of the clip" fills the boxes with the open clip's first variant.
    browser.evaluate("document.getElementById('gen-fill').click()")
    filled = browser.evaluate("['gen-left', 'gen-right', 'gen-relation'].map(id => document.getElementById(id).value)")
    record = store.records[0]
    assert filled == [record.texts["left"][0], record.texts["right"][0], record.texts["two_hands_relation"][0]]

    browser.pump(0.2)
    expected_refusal = [p for p in browser.problems if "status of 400" in p]  # the empty request above
    assert len(expected_refusal) <= 1
    assert [p for p in browser.problems if p not in expected_refusal] == [], browser.problems


def test_page_for_a_family_without_steps_has_no_steps_box_and_sends_none(browser, store_dir, store):
    viewer = "window.handxViewer"
    family = _SecondFamily(np.asarray(store.motion(3), dtype=np.float32))
    with serve(store_dir) as server:
        server.generator = ViewerGenerator(family, Path("second-run"), server.catalog)
        browser.problems.clear()
        browser.navigate(server.url)
        browser.wait_for(f"{viewer} && {viewer}.ready", timeout=15)
        assert browser.evaluate("document.getElementById('gen-steps').closest('label').hidden") is True
        modes = browser.evaluate("Array.from(document.querySelectorAll('#gen-mode option'), o => o.value)")
        assert modes == ["text", "left-hand"]
        browser.evaluate("document.getElementById('gen-left').focus()")
        browser.send("Input.insertText", {"text": TEXTS["left"]})
        browser.evaluate("document.getElementById('gen-run').click()")
        browser.wait_for(f"{viewer}.generated && !{viewer}.generating", timeout=30)
        status = browser.evaluate("document.getElementById('gen-status').textContent")
        assert re.fullmatch(r"generated in \d+\.\d\d s · text · seed 0", status), status
        assert len(family.calls) == 1 and family.calls[0][4] == _SecondFamily.Settings()
        browser.pump(0.2)
        assert browser.problems == [], browser.problems

"""Tests of the LLM description writer and its prompt (reference §3) against a real local HTTP server."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from fake_llm_server import FakeChatServer, fake_codes, fake_descriptions, fake_request

from handx.annotate import prompt
from handx.annotate.base import MAX_TEXT_CHARS, WriteRequest, codes_hash
from handx.annotate.llm import InvalidReply, LLMConfig, LLMWriter, parse_reply
from handx.features import signals

TESTS_DIR = Path(__file__).resolve().parent


class SleepRecorder:
    """An injected ``sleep`` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_config(server: FakeChatServer, **changes) -> LLMConfig:
    settings = {"base_url": server.base_url, "model": "test-model", "timeout_s": 5.0, "max_retries": 3,
                "backoff_base_s": 0.5, "backoff_max_s": 4.0, "concurrency": 4}
    settings.update(changes)
    return LLMConfig(**settings)


def run(writer: LLMWriter, clips) -> dict[str, object]:
    return {r.clip_id: r for r in writer.write_many(fake_request(i) for i in clips)}


def expected(i: int):
    return parse_reply(json.dumps(fake_descriptions(i)))


# ------------------------------------------------------------------------------------------------ the prompt

def test_prompt_version_pins_the_prompt_text():
    """Any edit to the prompt (rules, examples or the rendering of the codes) must come with a new PROMPT_VERSION
    (it keys the cache)."""
    digest = hashlib.sha256((prompt.SYSTEM_PROMPT + prompt.user_prompt(fake_codes(0))).encode()).hexdigest()
    pinned = ("handx-annotate-v3", "be017c16b8171d045e6ce74240e152f845c7a975d6176c0acb7716f9bdd86409")
    assert (prompt.PROMPT_VERSION, digest) == pinned, f"prompt changed: bump PROMPT_VERSION and pin sha256 {digest}"


def test_build_messages_inserts_the_codes_and_explains_every_field():
    codes = fake_codes(3)
    messages = prompt.build_messages(codes)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert prompt.render_codes(codes) in messages[1]["content"] and "(63 frames)" in messages[1]["content"]
    system = messages[0]["content"]
    # The legend names every line title and state word the rendering uses.
    for word in ("LEFT HAND", "RIGHT HAND", "TWO HANDS", "fingers", "spread", "thumb touches", "wrist",
                 "tips touch", "tip to palm", "palms", "right hand vs left", "side", "depth", "height", "level",
                 '"a-b"', '"x>y"', '"held x"', "slow", "medium", "fast", "mcp", "pip", "dip", "ip",
                 "hyperextended", "extended", "half-bent", "bent", "closed", "open", "contact", "near", "far",
                 "inclusive", "default", '{"descriptions"', "exactly three", "two_hands_relation", "Never swap"):
        assert word in prompt.SYSTEM_PROMPT_HEAD, word
    assert system == prompt.SYSTEM_PROMPT
    with pytest.raises(TypeError, match="codes must be a dict"):
        prompt.build_messages([codes])


def test_few_shot_examples_follow_the_schema_and_the_output_format():
    assert len(prompt.EXAMPLES) == 2
    for codes, reply in prompt.EXAMPLES:
        assert set(codes) == {"frame_count", "left_hand_events", "right_hand_events", "two_hand_relationships"}
        for hand in ("left_hand_events", "right_hand_events"):
            events = codes[hand]
            assert set(events) == {"finger_flexing", "finger_spacing", "finger_tip_contact", "wrist_trajectory"}
            assert tuple(events["finger_flexing"]) == signals.FLEXION_KEYS
            assert tuple(events["finger_spacing"]) == signals.SPACING_KEYS
            assert set(events["finger_tip_contact"]) <= set(signals.INTRA_TIP_KEYS)
            assert set(events["wrist_trajectory"]) <= {"left-right", "front-back", "down-up"}
        relations = codes["two_hand_relationships"]
        assert set(relations) == {"finger_tip_contact", "finger_palm_distance", "palm_palm_distance",
                                  "palm_palm_relative_position"}
        assert set(relations["palm_palm_relative_position"]) == {"left-right", "front-back", "up-down"}
        frames = codes["frame_count"]
        for group in ("left_hand_events", "right_hand_events", "two_hand_relationships"):
            for feature in codes[group].values():
                for event_list in feature.values():
                    for event in event_list:
                        assert 0 <= event["start"] <= event["end"] <= frames
                        assert set(event) <= {"start", "end", "start_des", "end_des", "constant_des", "v_des",
                                              "direction"}
        descriptions = parse_reply(json.dumps(reply))
        assert len(descriptions) == 5
        assert "frame" in descriptions[4].right and "frame" not in descriptions[0].right  # detail grows
        assert len(descriptions[4].left) > len(descriptions[0].left)
        assert json.dumps({"descriptions": reply}) in prompt.SYSTEM_PROMPT
        assert prompt.render_codes(codes) in prompt.SYSTEM_PROMPT
    assert "Hyper extend" in json.dumps(prompt.EXAMPLES[0][0]["right_hand_events"])  # hyperextension shown
    assert "hyperextended" in prompt.EXAMPLES[0][1][2]["right"]  # ... and reported


# ------------------------------------------------------------------------------------------------ parse_reply

def test_parse_reply_accepts_plain_and_fenced_json():
    text = json.dumps(fake_descriptions(1))
    plain = parse_reply(text)
    assert parse_reply(f"```json\n{text}\n```") == plain
    assert parse_reply(f"  ```\n{text}\n```\n") == plain
    assert plain[0].left.startswith("clip 1 variant 1")


@pytest.mark.parametrize("reply, message", [
    ("Sure, here you go.", "not valid JSON"),
    ("", "empty"),
    ('{"left": "a", "right": "b", "two_hands_relation": "c"}', "JSON array of 5 objects, got a JSON object"),
    (json.dumps(fake_descriptions(1, count=3)), "exactly 5 descriptions, got 3"),
    (json.dumps(fake_descriptions(1) + ["x"]), "exactly 5 descriptions, got 6"),
    (json.dumps([*fake_descriptions(1)[:4], "text"]), "description 5 must be a JSON object"),
    (json.dumps([{**d, "extra": "x"} for d in fake_descriptions(1)]), "unexpected key(s) ['extra']"),
    (json.dumps([{k: v for k, v in d.items() if k != "right"} for d in fake_descriptions(1)]),
     "description 1 lacks key(s) ['right']"),
    (json.dumps([{**d, "left": " "} for d in fake_descriptions(1)]), "'left' is empty"),
    (json.dumps([{**d, "left": 3} for d in fake_descriptions(1)]), "'left' must be a string"),
    (json.dumps([{**d, "left": "x" * (MAX_TEXT_CHARS + 1)} for d in fake_descriptions(1)]), "limit"),
    ("```json\n```json\n[]\n```\n```", "not valid JSON"),  # only one fence is removed
])
def test_parse_reply_rejects_with_a_reason(reply, message):
    with pytest.raises(InvalidReply) as info:
        parse_reply(reply)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------------------------------------ the config

def test_config_validation_names_the_field():
    for changes, field in [({"base_url": "127.0.0.1:8000"}, "base_url"), ({"model": ""}, "model"),
                           ({"temperature": -1}, "temperature"), ({"max_tokens": 0}, "max_tokens"),
                           ({"timeout_s": 0}, "timeout_s"), ({"max_retries": -1}, "max_retries"),
                           ({"concurrency": 0}, "concurrency"), ({"concurrency": True}, "concurrency"),
                           ({"backoff_max_s": -2}, "backoff_max_s"), ({"extra_body": {"model": "x"}}, "extra_body"),
                           ({"extra_body": {"x": object()}}, "extra_body"), ({"api_key": ""}, "api_key"),
                           ({"max_reply_bytes": 0}, "max_reply_bytes")]:
        settings = {"base_url": "http://127.0.0.1:8000/v1", "model": "m", **changes}
        with pytest.raises(ValueError, match=f"LLMConfig.{field}"):
            LLMConfig(**settings)
    config = LLMConfig(base_url="http://h/v1/", model="m", api_key="sk-secret", cache_dir="c")
    assert config.url == "http://h/v1/chat/completions"
    assert config.cache_dir == Path("c")
    assert config.max_reply_bytes == 4 * 2 ** 20
    assert "sk-secret" not in repr(config)


def test_config_from_env_with_fallbacks_and_overrides():
    env = {"OPENAI_BASE_URL": "http://a/v1", "HANDX_LLM_MODEL": "qwen", "OPENAI_API_KEY": "k1"}
    config = LLMConfig.from_env(env)
    assert (config.base_url, config.model, config.api_key) == ("http://a/v1", "qwen", "k1")
    env.update(HANDX_LLM_BASE_URL="http://b/v1", HANDX_LLM_API_KEY="k2")
    config = LLMConfig.from_env(env, model="llama", concurrency=16)
    assert (config.base_url, config.model, config.api_key, config.concurrency) == ("http://b/v1", "llama", "k2", 16)
    with pytest.raises(ValueError, match="HANDX_LLM_BASE_URL"):
        LLMConfig.from_env({"HANDX_LLM_MODEL": "m"})
    with pytest.raises(ValueError, match="HANDX_LLM_MODEL"):
        LLMConfig.from_env({"HANDX_LLM_BASE_URL": "http://b/v1"})
    with pytest.raises(ValueError, match="unknown field"):
        LLMConfig.from_env(env, modle="x")


# ------------------------------------------------------------------------------------------------ the writer

def test_faults_are_retried_and_hopeless_clips_reported(tmp_path, caplog):
    script = {
        0: [("429", 2), "ok"],
        1: ["500", "500", "fenced"],
        2: [("stall", 3.0), "ok"],
        3: ["not_json", "missing_field", "ok"],
        4: ["three"] * 10,
        5: ["fenced"],
        6: [("status", 400, "model 'test-model' does not exist")],
        7: ["500"] * 10,
    }
    sleep = SleepRecorder()
    with FakeChatServer(script) as server, caplog.at_level("INFO", logger="handx.annotate.llm"):
        writer = LLMWriter(make_config(server, timeout_s=1.0, cache_dir=tmp_path), sleep=sleep)
        results = run(writer, range(9))
        assert set(results) == {f"clip-{i:02d}" for i in range(9)}
        for i in (0, 1, 2, 3, 5, 8):
            result = results[f"clip-{i:02d}"]
            assert result.error is None and result.descriptions == expected(i), (i, result.error)
        assert "exactly 5 descriptions, got 3" in results["clip-04"].error
        assert "gave up after 4 attempts" in results["clip-04"].error
        assert "HTTP 400" in results["clip-06"].error and "does not exist" in results["clip-06"].error
        assert "not retried" in results["clip-06"].error
        assert "HTTP 500" in results["clip-07"].error
        assert all(r.descriptions is None for i, r in results.items() if i in ("clip-04", "clip-06", "clip-07"))
        assert [len(server.calls_for(i)) for i in range(9)] == [2, 3, 2, 3, 4, 1, 1, 4, 1]
        assert writer.requests_sent == len(server.calls) == 21
    assert 2.0 in sleep.delays  # Retry-After: 2 honoured exactly (it is below backoff_max_s)
    assert all(0 <= d <= 4.0 for d in sleep.delays)
    assert any("retry 1/3" in r.getMessage() for r in caplog.records)
    assert {r.levelname for r in caplog.records} <= {"INFO", "WARNING"}
    cached = sorted(tmp_path.glob("*/*.json"))
    assert len(cached) == 6  # the successes only
    assert not list(tmp_path.rglob("*.tmp"))


def test_retry_after_is_capped_and_backoff_grows_with_full_jitter():
    sleep = SleepRecorder()
    with FakeChatServer({0: [("429", 100), "500", "500", "500", "ok"]}) as server:
        writer = LLMWriter(make_config(server, max_retries=4, backoff_base_s=1.0, backoff_max_s=3.0), sleep=sleep)
        result = run(writer, [0])["clip-00"]
    assert result.error is None
    assert sleep.delays[0] == 3.0  # Retry-After 100 s capped at backoff_max_s
    assert 0 <= sleep.delays[1] <= 2.0 and 0 <= sleep.delays[2] <= 3.0 and 0 <= sleep.delays[3] <= 3.0


def test_connection_errors_are_retried_then_reported():
    with FakeChatServer() as server:
        url = server.base_url
    sleep = SleepRecorder()  # the server is closed now: connections are refused
    writer = LLMWriter(LLMConfig(base_url=url, model="m", max_retries=2, timeout_s=1.0), sleep=sleep)
    (result,) = list(writer.write_many([fake_request(0)]))
    assert result.descriptions is None and "gave up after 3 attempts" in result.error
    assert "cannot connect" in result.error
    assert writer.requests_sent == 3 and len(sleep.delays) == 2


def test_validator_rejections_are_retried_then_reported():
    bad = json.dumps([{**d, "left": "REJECT " + d["left"]} for d in fake_descriptions(0)])

    def validator(codes, descriptions):
        assert codes["frame_count"] in (60, 61)
        return [f"variant {n} is rejected" for n, d in enumerate(descriptions, 1) if d.left.startswith("REJECT")]

    with FakeChatServer({0: [("text", bad), "ok"], 1: [("text", bad)] * 10}) as server:
        writer = LLMWriter(make_config(server, max_retries=2), validator=validator, sleep=SleepRecorder())
        results = run(writer, [0, 1])
    assert results["clip-00"].descriptions == expected(0)
    assert "validator rejected the reply: variant 1 is rejected" in results["clip-01"].error
    assert writer.requests_sent == 2 + 3


def test_request_body_and_authorization_header():
    with FakeChatServer() as server:
        keyed = LLMWriter(make_config(server, api_key="sk-test", extra_body={"top_p": 0.9}, temperature=0.2,
                                      max_tokens=777))
        run(keyed, [0])
        anonymous = LLMWriter(make_config(server))
        run(anonymous, [1])
        first, second = server.calls_for(0)[0], server.calls_for(1)[0]
    assert first.path == "/v1/chat/completions"
    assert first.headers["Authorization"] == "Bearer sk-test"
    assert "Authorization" not in second.headers
    assert first.body["model"] == "test-model" and first.body["top_p"] == 0.9
    assert (first.body["temperature"], first.body["max_tokens"], first.body["stream"]) == (0.2, 777, False)
    assert first.body["messages"] == prompt.build_messages(fake_codes(0))
    assert keyed.name == "llm:test-model"


def test_cache_second_run_sends_nothing_and_settings_miss(tmp_path, monkeypatch):
    clips = range(6)
    with FakeChatServer() as server:
        first = LLMWriter(make_config(server, cache_dir=tmp_path))
        before = run(first, clips)
        assert first.requests_sent == 6
        again = LLMWriter(make_config(server, cache_dir=tmp_path))
        after = run(again, clips)
        assert again.requests_sent == 0
        assert {k: r.descriptions for k, r in after.items()} == {k: r.descriptions for k, r in before.items()}

        other_model = LLMWriter(make_config(server, cache_dir=tmp_path, model="other-model"))
        run(other_model, clips)
        assert other_model.requests_sent == 6
        other_temperature = LLMWriter(make_config(server, cache_dir=tmp_path, temperature=0.1))
        run(other_temperature, clips[:2])
        assert other_temperature.requests_sent == 2

        monkeypatch.setattr(prompt, "PROMPT_VERSION", "handx-annotate-test")
        new_prompt = LLMWriter(make_config(server, cache_dir=tmp_path))
        run(new_prompt, clips[:3])
        assert new_prompt.requests_sent == 3

    files = sorted(tmp_path.glob("*/*.json"))
    assert len(files) == 6 + 6 + 2 + 3
    record = json.loads(files[0].read_text())
    assert files[0].parent.name == files[0].stem[:2] and len(files[0].stem) == 64
    assert {"descriptions", "model", "prompt_version", "settings", "created", "content_hash"} <= set(record)
    assert len(record["descriptions"]) == 5


def test_identical_codes_share_a_cache_entry_and_corrupt_entries_are_refetched(tmp_path):
    codes = fake_codes(2)
    twin = WriteRequest("twin", codes, codes_hash(codes))
    with FakeChatServer() as server:
        writer = LLMWriter(make_config(server, cache_dir=tmp_path))
        list(writer.write_many([fake_request(2)]))
        (result,) = list(writer.write_many([twin]))
        assert writer.requests_sent == 1 and result.descriptions == expected(2)
        (path,) = tmp_path.glob("*/*.json")
        path.write_text('{"format": "handx-llm-cache-v1", "descriptions": [')
        list(writer.write_many([twin]))
        assert writer.requests_sent == 2
        assert len(json.loads(path.read_text())["descriptions"]) == 5


def test_concurrency_is_bounded_and_used():
    with FakeChatServer(delay_s=0.15) as server:
        writer = LLMWriter(make_config(server, concurrency=3))
        results = run(writer, range(9))
        assert all(r.error is None for r in results.values())
        assert 1 < server.max_in_flight <= 3
    with FakeChatServer(delay_s=0.05) as server:
        run(LLMWriter(make_config(server, concurrency=1)), range(3))
        assert server.max_in_flight == 1


def test_results_stream_as_they_complete():
    """A slow clip does not hold back the results of faster ones: clip 0's answer is held by the server until
    the other three results have reached the caller."""
    release = threading.Event()
    order = []
    with FakeChatServer({0: [("hold", release)]}) as server:
        try:
            for result in LLMWriter(make_config(server, concurrency=2)).write_many(fake_request(i) for i in range(4)):
                order.append(result.clip_id)
                if len(order) == 3:
                    release.set()
        finally:
            release.set()
    assert order[-1] == "clip-00" and sorted(order) == [f"clip-{i:02d}" for i in range(4)]


def test_killed_run_loses_nothing_and_resumes(tmp_path):
    """The server answers clips 0-2 and holds the rest, so exactly three replies exist when the run is killed."""
    cache = tmp_path / "cache"
    release = threading.Event()
    with FakeChatServer({i: [("hold", release)] for i in range(3, 12)}) as server:
        code = textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(TESTS_DIR)!r})
            from fake_llm_server import fake_request
            from handx.annotate.llm import LLMConfig, LLMWriter
            config = LLMConfig(base_url={server.base_url!r}, model="test-model", concurrency=2,
                               cache_dir={str(cache)!r})
            for result in LLMWriter(config).write_many(fake_request(i) for i in range(12)):
                print(result.clip_id, flush=True)
        """)
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            reported = [child.stdout.readline().decode().strip() for _ in range(3)]
            assert all(reported), child.communicate(timeout=10)[1].decode()
            os.kill(child.pid, signal.SIGKILL)
            stdout, stderr = child.communicate(timeout=10)
        finally:
            release.set()
        assert child.returncode == -signal.SIGKILL, stderr.decode()
        assert not stdout.split()  # the held clips never finished

        files = list(cache.glob("*/*.json"))
        assert len(files) == 3
        for path in files:
            record = json.loads(path.read_text())  # complete JSON, never half-written
            assert len(record["descriptions"]) == 5
        leftovers = [p for p in cache.rglob("*") if p.is_file() and p.suffix != ".json"]
        assert all(p.name.startswith(".") and p.suffix == ".tmp" for p in leftovers)  # never read as a cache entry
        assert set(reported) == {json.loads(p.read_text())["clip_id"] for p in files}  # yielded ⇒ cached

        resumed = LLMWriter(LLMConfig(base_url=server.base_url, model="test-model", concurrency=4, cache_dir=cache))
        results = run(resumed, range(12))
        assert resumed.requests_sent == 12 - len(files)
        assert all(r.descriptions == expected(int(k[-2:])) for k, r in results.items())


def test_closing_the_results_early_cancels_clips_not_started():
    with FakeChatServer(delay_s=0.05) as server:
        writer = LLMWriter(make_config(server, concurrency=1))
        results = writer.write_many(fake_request(i) for i in range(10))
        first = next(results)
        results.close()
        assert first.error is None
        assert writer.requests_sent <= 2  # the finished clip and at most the one already in flight


def test_few_shot_examples_pass_the_faithfulness_check():
    """The prompt's own examples must obey its rules, as the verifier reads them."""
    from handx.annotate.base import Description
    from handx.annotate.verify import verify_all

    for example in prompt.EXAMPLES:
        codes, annotations = example if isinstance(example, tuple) else (example["codes"], example["annotations"])
        assert verify_all(codes, [Description(**a) for a in annotations]) == []


# ------------------------------------------------------------------------------------------- hostile servers

KEY = "sk-handx-test-0123456789abcdef"


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_never_carries_the_api_key_to_another_server(code):
    with FakeChatServer() as elsewhere:
        target = f"{elsewhere.base_url}/chat/completions"
        with FakeChatServer({0: [("redirect", code, target)]}) as server:
            writer = LLMWriter(make_config(server, api_key=KEY), sleep=SleepRecorder())
            (result,) = list(writer.write_many([fake_request(0)]))
        seen = json.dumps([call.headers for call in elsewhere.calls])
    assert KEY not in seen
    assert result.descriptions is None
    assert f"redirects to {target!r}" in result.error and "LLMConfig.base_url" in result.error
    assert writer.requests_sent == 1  # refused, not retried


def _files_text(*folders: Path) -> str:
    return "".join(p.read_bytes().decode("utf-8", "replace") for f in folders for p in f.rglob("*") if p.is_file())


def test_an_echoed_api_key_is_redacted_everywhere(tmp_path, caplog):
    """A server echoing the key in error bodies, replies and redirects: the key reaches no stored text, cache,
    report, log record or error message; "***" stands in its place."""
    from handx.annotate.pipeline import annotate_store
    from handx.io.store import Store
    from handx.synth.corpus import write_synthetic

    root = tmp_path / "store"
    write_synthetic(4, 4, root, progress=False)
    escaped = KEY.replace("s", "\\u0073", 1)  # the key spelt with a JSON escape inside the reply's JSON
    echoing = [{**d, "left": f"{d['left']} {KEY}", "right": f"{d['right']} {{}}"} for d in fake_descriptions(0)]
    reply = json.dumps(echoing).replace("{}", escaped)
    # Every synthetic clip has frame_count 60 (script key 0); one worker takes the clips in store order.
    script = {0: [("status", 500, f"key {KEY} is over quota"), ("text", f"Your key is {KEY}; no descriptions."),
                  ("status", 401, f"invalid api key {KEY}"),
                  ("raw", 502, f"<html>bad gateway for Bearer {KEY}</html>".encode()),
                  ("redirect", 302, f"http://127.0.0.1:9/v1/chat/completions?key={KEY}"),
                  ("text", reply)]}
    cache = tmp_path / "cache"
    with FakeChatServer(script) as server, caplog.at_level("INFO", logger="handx"):
        config = make_config(server, api_key=KEY, max_retries=1, concurrency=1, cache_dir=cache)
        report = annotate_store(root, LLMWriter(config, sleep=SleepRecorder()), overwrite=True, progress=False)
    assert report.annotated == 1 and len(report.failed) == 3
    errors = " ".join(f["error"] for f in report.failed)
    assert "Your key is ***" in errors and "invalid api key ***" in errors and "key=***" in errors
    assert "key *** is over quota" in caplog.text and "Bearer ***" in caplog.text  # retried problems are logged
    texts = [t for record in Store(root).records for key in ("left", "right") for t in record.texts[key]]
    assert any(t.endswith(" ***") for t in texts)
    for where, text in [("errors", errors), ("texts", json.dumps(texts)), ("files", _files_text(root, cache)),
                        ("log", caplog.text), ("log", " ".join(str(r.args) for r in caplog.records))]:
        assert KEY not in text, where


def test_a_deeply_nested_reply_fails_only_its_clip():
    deep = "[" * 100_000
    bad = {0: ("raw", 200, deep.encode()), 1: ("text", deep), 2: ("raw", 500, deep.encode()),
           3: ("text", "[" + "1" * 5000 + "]")}  # an integer past Python's digit limit: a ValueError
    with FakeChatServer({i: [action] * 2 for i, action in bad.items()}) as server:
        writer = LLMWriter(make_config(server, max_retries=1), sleep=SleepRecorder())
        results = run(writer, range(6))
    assert [results[f"clip-{i:02d}"].descriptions for i in (4, 5)] == [expected(4), expected(5)]
    for i in bad:
        error = results[f"clip-{i:02d}"].error
        assert "gave up after 2 attempts" in error, error
    assert "nested too deeply" in results["clip-00"].error and "nested too deeply" in results["clip-01"].error
    assert "HTTP 500" in results["clip-02"].error
    assert "not valid JSON" in results["clip-03"].error


def test_an_oversized_reply_is_refused():
    with FakeChatServer({0: [("text", "x" * 5000)], 1: [("raw", 500, b"e" * 5000)] * 2}) as server:
        writer = LLMWriter(make_config(server, max_reply_bytes=4096, max_retries=1), sleep=SleepRecorder())
        results = run(writer, range(3))
        assert len(server.calls_for(0)) == 1  # refused, not retried
    assert "larger than max_reply_bytes=4096" in results["clip-00"].error
    assert "not retried" in results["clip-00"].error
    assert "HTTP 500" in results["clip-01"].error and len(results["clip-01"].error) < 1000
    assert results["clip-02"].descriptions == expected(2)


@pytest.mark.parametrize("where", ["head", "body"])
def test_a_trickling_server_cannot_stretch_a_request_past_timeout_s(where):
    """One byte every 0.3 s, forever: each read is quick, but the request as a whole must end near timeout_s."""
    results = []
    with FakeChatServer({0: [("trickle", where)]}) as server:
        writer = LLMWriter(make_config(server, timeout_s=1.0, max_retries=0))
        worker = threading.Thread(target=lambda: results.extend(writer.write_many([fake_request(0)])), daemon=True)
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive(), "the request outlived its 1 s budget by 9 s"
    (result,) = results
    assert "timeout_s=1 s" in result.error


# ------------------------------------------------------------------ structured output, context, token usage

def test_requests_carry_the_reply_schema_and_the_object_reply_is_read():
    with FakeChatServer() as server:
        writer = LLMWriter(make_config(server))
        results = run(writer, [0, 1])
        body = server.calls_for(0)[0].body
    assert body["response_format"] == prompt.response_format()
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True and schema["schema"]["properties"]["descriptions"]["minItems"] == 5
    assert results["clip-00"].descriptions == expected(0)  # the server answered {"descriptions": [...]}
    assert writer.structured_output == "json_schema"
    assert parse_reply(json.dumps({"descriptions": fake_descriptions(2)})) == expected(2)
    with pytest.raises(InvalidReply, match="JSON array of 5 objects, got a JSON object"):
        parse_reply(json.dumps({"descriptions": fake_descriptions(2), "note": "x"}))


def test_a_server_refusing_response_format_gets_plain_json_from_then_on(caplog):
    with FakeChatServer(schema="reject") as server, caplog.at_level("WARNING", logger="handx.annotate.llm"):
        writer = LLMWriter(make_config(server, concurrency=1), sleep=SleepRecorder())
        results = run(writer, range(4))
        bodies = [c.body for c in server.calls]
    assert all(r.descriptions == expected(int(k[-2:])) for k, r in results.items())
    formats = [b.get("response_format", {}).get("type") for b in bodies]
    assert formats == ["json_schema", "json_object", None, None, None, None]  # each style tried once, then plain
    assert writer.requests_sent == 6 and writer.structured_output == "plain JSON"
    assert "response_format" in writer.structured_output_note
    assert sum("plain JSON" in r.getMessage() for r in caplog.records) == 1
    with FakeChatServer() as server:
        off = LLMWriter(make_config(server, structured_output=False))
        run(off, [0])
        own = LLMWriter(make_config(server, extra_body={"response_format": {"type": "json_object"}}))
        run(own, [1])
        assert "response_format" not in server.calls_for(0)[0].body
        assert server.calls_for(1)[0].body["response_format"] == {"type": "json_object"}
    assert (off.structured_output, own.structured_output) == ("plain JSON", "extra_body")


def test_a_server_taking_only_json_object_gets_the_schema_that_way():
    """llama-cpp-python's server refuses the json_schema type with a 500 but constrains a json_object reply to a
    given schema: the writer moves to that at once (no retries of the 500) and keeps it."""
    with FakeChatServer(schema="json_object") as server:
        writer = LLMWriter(make_config(server, concurrency=1), sleep=SleepRecorder())
        results = run(writer, range(3))
        bodies = [c.body for c in server.calls]
    assert all(r.descriptions == expected(int(k[-2:])) for k, r in results.items())
    assert [b["response_format"]["type"] for b in bodies] == ["json_schema", "json_object", "json_object",
                                                              "json_object"]
    assert bodies[1]["response_format"]["schema"] == prompt.REPLY_SCHEMA
    assert writer.structured_output == "json_object"
    assert writer.cost_report(store_clips=3, seconds=1.0)["structured_output"] == "json_object"


def _system(call):
    return call.body["messages"][0]["content"]


def test_the_context_comes_from_the_server_and_drops_examples():
    small = prompt.estimate_tokens(prompt.system_prompt(1)) + prompt.CLIP_ALLOWANCE + 2 * prompt.MESSAGE_OVERHEAD
    props = {"default_generation_settings": {"n_ctx": small + 2048}}
    with FakeChatServer(props=props) as server:
        writer = LLMWriter(make_config(server))
        run(writer, [0, 1])
        assert {_system(c) for c in server.calls} == {prompt.system_prompt(1)}
        assert [p.path for p in server.probes][:1] == ["/props"]
    assert writer.cost_report(store_clips=2, seconds=1.0)["context_source"] == "server /props"
    models = {"object": "list", "data": [{"id": "other", "max_model_len": 100000},
                                         {"id": "test-model", "max_model_len": 32768}]}
    with FakeChatServer(models=models) as server:
        vllm = LLMWriter(make_config(server))
        run(vllm, [0])
        user_smaller = LLMWriter(make_config(server, context_tokens=small + 2048))
        run(user_smaller, [1])
        assert _system(server.calls_for(0)[0]) == prompt.SYSTEM_PROMPT
        assert _system(server.calls_for(1)[0]) == prompt.system_prompt(1)
    assert vllm.prepare().context_tokens == 32768 and vllm.context_source == "server /v1/models"
    assert user_smaller.prepare().context_tokens == small + 2048 and "the smaller" in user_smaller.context_source
    with FakeChatServer() as server:
        default = LLMWriter(make_config(server))
        assert default.prepare().context_tokens == prompt.DEFAULT_CONTEXT
        assert default.prepare().counted_by == "estimate"
    with FakeChatServer(tokenize=True) as server:
        assert LLMWriter(make_config(server)).prepare().counted_by == "server"
        assert any(p.path == "/tokenize" for p in server.probes)


def test_a_clip_that_cannot_fit_is_failed_without_a_request():
    with FakeChatServer() as server:
        tiny = LLMWriter(make_config(server, context_tokens=1500, max_tokens=512))
        (result,) = run(tiny, [0]).values()
        assert "context of 1500 tokens is too small" in result.error and not server.calls
        codes = fake_codes(0)
        codes["left_hand_events"]["wrist_trajectory"]["down-up"] = [
            {"start": k, "end": k + 1, "direction": "down-to-up", "v_des": "Slow"} for k in range(800)]
        huge = WriteRequest("huge", codes, codes_hash(codes))
        (result,) = LLMWriter(make_config(server)).write_many([huge])
        assert "request not sent" in result.error and "context of 8192" in result.error and not server.calls


def test_token_usage_comes_from_the_server_or_the_estimate(tmp_path):
    with FakeChatServer({1: ["500", "ok"]}, usage=(1234, 321)) as server:
        writer = LLMWriter(make_config(server, cache_dir=tmp_path), sleep=SleepRecorder())
        run(writer, range(3))
        run(writer, range(3))  # all cached now
        report = writer.cost_report(store_clips=300, seconds=2.0)
    assert report["clips_sent"] == 3 and report["cache_hits"] == 3 and report["requests"] == 4
    assert report["token_source"] == {"server_usage": 3, "estimate": 0}  # the HTTP 500 had no reply
    assert report["tokens_per_clip"]["prompt"] == {"mean": 1234, "median": 1234, "max": 1234, "total": 3 * 1234}
    assert report["tokens_per_clip"]["completion"]["total"] == 3 * 321
    assert report["server_clips_per_s"] == 1.5
    assert report["store_estimate"] == {"clips": 300, "prompt_tokens": 300 * 1234, "completion_tokens": 300 * 321,
                                        "seconds": 200.0}
    assert report["structured_output"] == "json_schema" and report["prompt_plan"]["n_examples"] == 2

    with FakeChatServer({0: ["three", "ok"]}) as server:  # no usage: estimated, the invalid reply included
        writer = LLMWriter(make_config(server), sleep=SleepRecorder())
        run(writer, [0])
        report = writer.cost_report(store_clips=1, seconds=1.0)
    messages = prompt.build_messages(fake_codes(0))
    reply = json.dumps({"descriptions": fake_descriptions(0)})
    three = json.dumps(fake_descriptions(0)[:3])  # the fake's 'three' answer
    assert report["token_source"] == {"server_usage": 0, "estimate": 2}
    assert report["tokens_per_clip"]["prompt"]["total"] == 2 * prompt.message_tokens(messages)
    assert report["tokens_per_clip"]["completion"]["total"] == (prompt.estimate_tokens(reply)
                                                                + prompt.estimate_tokens(three))

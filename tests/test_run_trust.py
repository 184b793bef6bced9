"""Run folders are untrusted input: no code from model directories, bounded configs, confined pointers, finite
weights and outputs (docs/security.md)."""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from handx.assets import resolve_run
from handx.cli.main import main
from handx.errors import HandxInputError
from handx.models.diffusion import DiffusionConfig
from handx.models.evaluator import EvaluatorConfig
from handx.motion import Triplet
from handx.sampling.generate import Generator
from handx.runs import latest_checkpoint, load_checkpoint

CUSTOM_CONFIG = """
import pathlib
pathlib.Path({marker!r}).write_text("custom code ran")
from transformers import PretrainedConfig
class EvilConfig(PretrainedConfig):
    model_type = "evil"
"""


def test_a_model_directory_with_custom_code_is_refused_not_run(tmp_path, monkeypatch):
    """transformers asks whether to run a model's own code; answering yes used to run it."""
    from handx.text import load_text_encoder

    model = tmp_path / "model"
    model.mkdir()
    marker = tmp_path / "ran.txt"
    (model / "configuration_evil.py").write_text(CUSTOM_CONFIG.format(marker=str(marker)))
    (model / "config.json").write_text(json.dumps({
        "model_type": "evil", "hidden_size": 8,
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "configuration_evil.EvilConfig"},
    }))
    monkeypatch.setattr(builtins, "input", lambda *a, **k: "y")  # a user who answers yes to every prompt
    with pytest.raises(Exception) as info:
        load_text_encoder(f"hf:{model}").encode(["a hand waves"])
    assert not marker.exists(), "the model directory's own code was run"
    assert "trust_remote_code" in str(info.value) or "custom code" in str(info.value)


@pytest.fixture
def run(tmp_path) -> Path:
    path = tmp_path / "run"
    shutil.copytree(resolve_run("handx-cpu"), path)
    return path


def _edit_config(run: Path, edit) -> None:
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("field, value", [("layers", 10**9), ("width", 2**40), ("ff", 10**12), ("heads", -1)])
def test_a_config_asking_for_a_huge_network_fails_before_allocating(run, field, value, capsys):
    _edit_config(run, lambda c: c["model"].__setitem__(field, value))
    with pytest.raises(HandxInputError, match=f"config.json.*DiffusionConfig.{field}"):
        Generator.load(run)
    assert main(["generate", "--ckpt", str(run), "--left", "waves", "--right", "rests", "--relation", "apart", "--out", str(run.parent / "o.npz")]) != 0
    assert f"DiffusionConfig.{field}" in capsys.readouterr().err


def test_parameter_count_bound_holds_for_fields_each_within_bounds():
    with pytest.raises(ValueError, match="parameters"):
        DiffusionConfig(layers=256, width=16384, heads=16, ff=65536)
    with pytest.raises(ValueError, match="parameters"):
        EvaluatorConfig(latent=16384, layers=256, heads=16, ff=65536)
    DiffusionConfig.preset("16x768")  # every preset stays far below


@pytest.mark.parametrize("pointer", ["../../../etc", "/etc", "builtin/../../..", "step-1\nstep-2"])
def test_the_latest_pointer_cannot_leave_the_run(run, pointer):
    (run / "latest").write_text(pointer)
    with pytest.raises(HandxInputError, match="latest"):
        latest_checkpoint(run)


def test_a_latest_link_leaving_the_run_is_refused(run, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(run / "checkpoints" / "builtin", outside)
    (run / "checkpoints" / "evil").symlink_to(outside)
    (run / "latest").write_text("evil")
    with pytest.raises(HandxInputError, match="outside"):
        latest_checkpoint(run)


def _weights(run: Path) -> Path:
    return latest_checkpoint(run) / "ema.safetensors"


def test_non_finite_weights_are_refused_with_a_clear_error(run):
    weights = load_file(_weights(run))
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = weights[name].clone()
    weights[name].view(-1)[0] = float("nan")
    save_file(weights, _weights(run))
    with pytest.raises(HandxInputError, match=f"{name.removeprefix('__int8_scale__.')} holds NaN"):
        load_checkpoint(latest_checkpoint(run))


def test_non_finite_samples_are_refused_not_saved(run, capsys):
    """Finite but absurd weights overflow to inf in float32: generation fails with an error naming the run
    instead of writing an all-NaN file with exit code 0."""
    generator = Generator.load(run)
    generator.model.output_proj.weight.data.fill_(1e38)
    with pytest.raises(HandxInputError, match="NaN or infinite motion"):
        generator.generate_batch([Triplet("a fist", "waves", "apart")], steps=2)
    save_file({k: v.contiguous() for k, v in generator.model.state_dict().items()}, _weights(run))
    out = run.parent / "o.npz"
    code = main(["generate", "--ckpt", str(run), "--left", "a fist", "--right", "waves", "--relation", "apart",
                 "--steps", "2", "--out", str(out)])
    assert code != 0 and not out.exists()
    assert "NaN or infinite motion" in capsys.readouterr().err

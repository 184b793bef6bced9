"""The built-in models: listed by ``handx models``, accepted by name wherever a run is expected, and carried by a
built wheel of the package (not only by the editable checkout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from handx.assets import DEFAULT_EVALUATOR, DEFAULT_GENERATOR, builtin_models, default_run, resolve_run
from handx.cli.main import main
from handx.errors import HandxInputError

ROOT = Path(__file__).resolve().parents[1]
LIMIT_BYTES = 10 * 1024 * 1024  # the built-ins' budget in the package


def test_the_builtins_are_installed_small_and_self_describing():
    models = {m.name: m for m in builtin_models()}
    assert {DEFAULT_GENERATOR, DEFAULT_EVALUATOR} <= set(models)
    assert models[DEFAULT_GENERATOR].kind == "generator" and models[DEFAULT_EVALUATOR].kind == "evaluator"
    assert sum(m.size_bytes for m in models.values()) <= LIMIT_BYTES
    for model in models.values():
        summary = model.summary()
        for key in ("training_data", "licence", "recipe"):
            assert summary[key], (model.name, key)
        config = json.loads((model.path / "config.json").read_text())
        assert config["kind"] == ("diffusion" if model.kind == "generator" else "evaluator")
        assert "out" not in config.get("train", {})  # no path of the machine that trained it


def test_names_resolve_wherever_a_run_is_expected(tmp_path):
    assert resolve_run(DEFAULT_GENERATOR, kind="generator") == default_run("generator")
    assert resolve_run(tmp_path) == tmp_path  # a directory is taken as given
    with pytest.raises(HandxInputError, match="built-in generators: handx-cpu"):
        resolve_run("no-such-model", kind="generator")
    with pytest.raises(HandxInputError, match="not a built-in"):
        resolve_run(DEFAULT_EVALUATOR, kind="generator")


def test_handx_models_lists_them_as_json(capsys):
    assert main(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed[DEFAULT_GENERATOR]["kind"] == "generator" and listed[DEFAULT_GENERATOR]["default"]
    assert listed[DEFAULT_GENERATOR]["parameters"] > 0 and listed[DEFAULT_GENERATOR]["size_bytes"] > 0
    assert main(["models"]) == 0
    assert DEFAULT_EVALUATOR in capsys.readouterr().out


def test_generate_without_a_run_uses_the_builtin_and_says_so(tmp_path, capsys):
    out = tmp_path / "gen.npz"
    assert main(["generate", "--left", "The left hand makes a fist.", "--right", "The right hand opens.",
                 "--relation", "The hands move independently.", "--steps", "4", "--out", str(out)]) == 0
    assert DEFAULT_GENERATOR in capsys.readouterr().out
    with np.load(out) as data:
        assert data["joints"].shape == (1, 60, 2, 21, 3) and np.isfinite(data["joints"]).all()


@pytest.mark.slow
def test_a_built_wheel_carries_and_loads_the_builtins(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, cwd=tmp_path,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    wheel = next((tmp_path / "dist").glob("handx-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for model in (DEFAULT_GENERATOR, DEFAULT_EVALUATOR):
            for part in ("model.json", "config.json", "latest", "checkpoints/builtin/ema.safetensors",
                         "checkpoints/builtin/state.json"):
                assert f"handx/assets/{model}/{part}" in names, (model, part)
        archive.extractall(tmp_path / "unpacked")
    script = (
        "import sys, handx, numpy as np\n"
        "from pathlib import Path\n"
        "assert Path(handx.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), handx.__file__\n"
        "from handx.assets import default_run\n"
        "from handx.motion import Triplet\nfrom handx.sampling.generate import Generator\n"
        "from handx.evaluator import Evaluator\n"
        "g = Generator.load(default_run('generator'))\n"
        "x = g.generate_batch([Triplet('The left hand makes a fist.', 'The right hand waves.', 'Apart.')], steps=3)\n"
        "e = Evaluator.load(default_run('evaluator'))\n"
        "assert np.isfinite(e.embed_motion(x)).all()\n"
        "print('loaded', default_run('generator'))\n"
    )
    unpacked = tmp_path / "unpacked"
    env = {**os.environ, "PYTHONPATH": str(unpacked)}  # the wheel's files come before the editable checkout
    done = subprocess.run([sys.executable, "-c", script, str(unpacked)], cwd=tmp_path, capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert str(unpacked) in done.stdout


def test_int8_packing_round_trips_within_half_a_step_and_loads_like_the_run(tmp_path):
    import torch

    from handx.assets import package_run
    from handx.runs import QUANT_PREFIX, dequantize, load_checkpoint, quantize_int8

    torch.manual_seed(0)
    weights = {"w": torch.randn(64, 128), "conv": torch.randn(8, 4, 300), "b": torch.randn(64),
               "steps": torch.tensor([3])}
    packed = quantize_int8(weights)
    assert packed["w"].dtype == torch.int8 and packed["b"].dtype == torch.float16
    back = dequantize(packed)
    for name in ("w", "conv"):
        step = packed[QUANT_PREFIX + name].float().reshape(-1, *[1] * (weights[name].dim() - 1))
        assert bool(((back[name] - weights[name]).abs() <= step / 2 + 1e-6).all())
    assert torch.equal(back["steps"], weights["steps"])
    # a packaged run loads with the same keys and shapes, float32, close to the original weights
    from handx.models.diffusion import DiffusionConfig
    from handx.synth.corpus import write_synthetic
    from handx.train.diffusion import TrainConfig, train_diffusion

    store = tmp_path / "store"
    write_synthetic(6, 2, store, progress=False)
    run = tmp_path / "run"
    train_diffusion(TrainConfig(data=str(store), out=str(run), steps=2, batch_size=4, split=None),
                    progress=False, model_config=DiffusionConfig(layers=1, width=64, heads=2, ff=128))
    dest = package_run(run, tmp_path / "pkg", {"name": "x", "kind": "generator"}, weights="int8")
    original = load_checkpoint(run / "best" if (run / "best").is_dir() else run / "checkpoints" / "step-00000002")
    loaded = load_checkpoint(dest / "checkpoints" / "builtin", optimizer=False)
    assert set(loaded.ema) == set(original.ema)
    for name, value in original.ema.items():
        assert loaded.ema[name].dtype == value.dtype and loaded.ema[name].shape == value.shape
        assert float((loaded.ema[name] - value).abs().max()) <= float(value.abs().max()) / 127 + 1e-3
    assert json.loads((dest / "model.json").read_text())["weights"] == "int8"

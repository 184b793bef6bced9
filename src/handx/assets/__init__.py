"""The built-in models: small networks trained by handx's own recipe (``recipes/builtin.sh``), shipped inside
the package so the main job works the moment handx is installed.

Each built-in is a folder ``handx/assets/<name>/`` laid out as a run directory (``config.json``, ``latest``,
``checkpoints/<step>/ema.safetensors`` in float16, ``state.json``) plus ``model.json``: what it is (``kind``:
``generator`` or ``evaluator``), what it was trained on, its licence, the recipe that made it and its measured
scores. Wherever a run directory is expected (``--ckpt``, ``--evaluator``), a built-in's name is accepted
(:func:`resolve_run`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from handx.errors import HandxInputError

MANIFEST = "model.json"
DEFAULT_GENERATOR = "handx-cpu"
DEFAULT_EVALUATOR = "handx-eval-synth"


@dataclasses.dataclass(frozen=True)
class BuiltinModel:
    """One built-in model (see the module docstring); ``path`` is its run directory inside the package."""

    name: str
    kind: str
    path: Path
    manifest: dict[str, Any]

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {"name": self.name, "kind": self.kind, "description": m.get("description", ""),
                "training_data": m.get("training_data", ""), "licence": m.get("licence", ""),
                "size_bytes": self.size_bytes, "parameters": m.get("parameters"), "scores": m.get("scores", {}),
                "recipe": m.get("recipe", ""), "default": bool(m.get("default", False)), "path": str(self.path)}


def assets_dir() -> Path:
    return Path(str(resources.files("handx.assets")))


def builtin_models() -> list[BuiltinModel]:
    """Every built-in model found in the installed package, by name."""
    models = []
    for folder in sorted(assets_dir().iterdir()):
        manifest = folder / MANIFEST
        if folder.is_dir() and manifest.is_file():
            data = json.loads(manifest.read_text(encoding="utf-8"))
            models.append(BuiltinModel(data.get("name", folder.name), data["kind"], folder, data))
    return models


def builtin(name: str) -> BuiltinModel | None:
    return next((m for m in builtin_models() if m.name == name), None)


def resolve_run(spec: str | os.PathLike, *, kind: str | None = None) -> Path:
    """A run directory for ``spec``: an existing directory as given, else the built-in model of that name.

    An error lists the built-ins (of ``kind``, when given) when ``spec`` is neither.
    """
    path = Path(spec)
    if path.is_dir():
        return path
    found = builtin(str(spec))
    if found is not None and (kind is None or found.kind == kind):
        return found.path
    names = [m.name for m in builtin_models() if kind is None or m.kind == kind]
    raise HandxInputError(spec, "no such run directory, and not a built-in model"
                          + (f" (built-in {kind}s: {', '.join(names)})" if names else " (no built-in models are "
                                                                                       "installed)"))


def default_run(kind: str) -> Path:
    """The default built-in of ``kind`` (``generator`` or ``evaluator``)."""
    name = DEFAULT_GENERATOR if kind == "generator" else DEFAULT_EVALUATOR
    found = builtin(name)
    if found is None:
        raise HandxInputError(name, f"the default built-in {kind} is not installed; give a run directory")
    return found.path


def package_run(run: str | os.PathLike, dest: str | os.PathLike, manifest: dict[str, Any], *,
                checkpoint: str | os.PathLike | None = None, weights: str = "float16") -> Path:
    """Copy a trained run into a built-in model folder ``dest``: its config, the EMA weights of ``checkpoint``
    (default: ``RUN/best`` when the run kept one, else the newest) as ``weights`` (``float32``, ``float16``, or
    ``int8``: row-wise int8 matrices with float16 scales, :func:`handx.runs.quantize_int8`, a quarter
    of float32; loading dequantises), and ``manifest`` (written as ``model.json``; needs ``name`` and
    ``kind``). The optimiser state is left behind."""
    import shutil

    from safetensors.torch import load_file, save_file

    from handx.io.atomic import write_json
    from handx.runs import latest_checkpoint, quantize_int8, read_config

    run, dest = Path(run), Path(dest)
    for key in ("name", "kind"):
        if key not in manifest:
            raise ValueError(f"package_run: manifest needs {key!r}")
    source = Path(checkpoint) if checkpoint else (run / "best" if (run / "best").is_dir() else latest_checkpoint(run))
    if source is None or not (source / "ema.safetensors").is_file():
        raise HandxInputError(run, "no checkpoint with EMA weights to package")
    saved_state = json.loads((source / "state.json").read_text(encoding="utf-8"))
    config = read_config(run)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    folder = tmp / "checkpoints" / "builtin"
    folder.mkdir(parents=True)
    if weights not in ("float32", "float16", "int8"):
        raise ValueError(f"package_run: weights must be float32, float16 or int8, got {weights!r}")
    state = load_file(os.fspath(source / "ema.safetensors"))
    params = int(sum(v.numel() for v in state.values()))
    if weights == "float16":
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    elif weights == "int8":
        state = quantize_int8(state)
    save_file(state, os.fspath(folder / "ema.safetensors"))
    write_json(folder / "state.json", {"step": int(saved_state["step"]), "best": saved_state.get("best", {})})
    (tmp / "latest").write_text("builtin\n")
    train = dict(config.get("train", {}))
    train.pop("out", None)
    write_json(tmp / "config.json", {**config, "train": train})
    write_json(tmp / MANIFEST, {**manifest, "parameters": params, "step": int(saved_state["step"]),
                                "weights": weights})
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest

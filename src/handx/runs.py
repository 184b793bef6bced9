"""Run directories: a typed, validated config beside safetensors checkpoints (DESIGN.md, "runs.py").

Every generator family, the evaluator and training read runs through this module: :func:`open_run` validates
a run's ``config.json`` into a :class:`RunConfig` (kind, model config, representation, statistics, text encoder,
noise schedule, training settings), accepts a built-in model's name (``handx models``) wherever a directory is
expected, and resolves the checkpoint to load (newest, ``best``, or one named). What a run recorded is what
loading uses: the noise schedule written at training time is the one sampling builds
(:meth:`RunConfig.noise_schedule`).

Layout of a run directory::

    config.json                      everything needed to rebuild the model: model config, normalisation
                                     statistics, text encoder, noise schedule, training settings
    checkpoints/step-00000500/       model.safetensors, ema.safetensors, optimizer.pt, state.json
    latest                           the name of the newest complete checkpoint
    metrics.jsonl                    one JSON line per logged step

A checkpoint is written to a temporary directory and renamed into place, then ``latest`` is replaced
atomically, so an interrupted save never leaves a half checkpoint behind. Loading never unpickles arbitrary
objects: weights are safetensors and the optimiser state is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from handx.errors import HandxInputError
from handx.io.atomic import atomic_open, write_json

CONFIG = "config.json"
LATEST = "latest"
MAX_CONFIG_BYTES = 1 << 20  # a run's config.json is a few KB; anything near this is not one
FORMAT = "handx-run"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: weights, EMA weights, optimiser state (may be None) and the step it ended."""

    step: int
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    state: dict[str, Any]


def read_config(run: str | os.PathLike) -> dict[str, Any]:
    path = Path(run) / CONFIG
    if not path.is_file():
        raise HandxInputError(run, f"not a handx run: {CONFIG} not found")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise HandxInputError(path, f"{path.stat().st_size} bytes; a run config is at most {MAX_CONFIG_BYTES}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:
        raise HandxInputError(path, f"invalid JSON ({str(exc)[:200]})") from None
    if not isinstance(config, dict):
        raise HandxInputError(path, f"must hold a JSON object, got {type(config).__name__}")
    if config.get("format") != FORMAT:
        raise HandxInputError(path, f"format is {config.get('format')!r}, expected {FORMAT!r}")
    return config


def write_config(run: str | os.PathLike, config: dict[str, Any]) -> None:
    write_json(Path(run) / CONFIG, {"format": FORMAT, "version": 1, **config})


def latest_checkpoint(run: str | os.PathLike) -> Path | None:
    """The checkpoint ``latest`` names, or ``None`` before the first one. The pointer is untrusted: it must name
    a directory inside ``run/checkpoints`` by a plain name (no path, no link leaving the run)."""
    pointer = Path(run) / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8", errors="replace")[:64].strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise HandxInputError(pointer, f"names {name!r}, expected a checkpoint directory name like step-00001000")
    folder = (Path(run) / "checkpoints").resolve()
    path = Path(run) / "checkpoints" / name
    if not path.resolve().is_relative_to(folder):
        raise HandxInputError(pointer, f"{name} links outside the run's checkpoints")
    return path if path.is_dir() else None


def _state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def save_checkpoint(run: str | os.PathLike, step: int, model: torch.nn.Module, ema: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None, state: dict[str, Any], keep: int = 3) -> Path:
    """Write ``checkpoints/step-NNNNNNNN`` atomically and point ``latest`` at it; keep the newest ``keep``."""
    folder = Path(run) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    tmp = folder / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_state_dict(model), os.fspath(tmp / "model.safetensors"))
    save_file(_state_dict(ema), os.fspath(tmp / "ema.safetensors"))
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    write_json(tmp / "state.json", {"step": step, **state})
    final = folder / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    with atomic_open(Path(run) / LATEST, "w") as handle:
        handle.write(name + "\n")
    for old in sorted(p for p in folder.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


QUANT_PREFIX = "__int8_scale__."  # a quantised weight's per-row scales (handx.assets.package_run)


def quantize_int8(weights: dict[str, torch.Tensor], min_size: int = 4096) -> dict[str, torch.Tensor]:
    """Row-wise symmetric int8 quantisation of every float matrix of at least ``min_size`` values:
    ``q = round(w / s)`` with ``s = max|w_row| / 127`` (stored as float16 under ``QUANT_PREFIX + name``); other
    float tensors become float16. :func:`dequantize` inverts it to within ``s / 2`` per value."""
    out: dict[str, torch.Tensor] = {}
    for name, w in weights.items():
        if not w.is_floating_point():
            out[name] = w
        elif w.dim() >= 2 and w.numel() >= min_size:
            rows = w.float().reshape(w.shape[0], -1)  # (rows, cols)
            scale = (rows.abs().amax(dim=1) / 127).clamp(min=1e-12).half()  # (rows,)
            out[name] = torch.round(rows / scale.float()[:, None]).clamp(-127, 127).to(torch.int8).reshape(w.shape)
            out[QUANT_PREFIX + name] = scale
        else:
            out[name] = w.half()
    return out


def dequantize(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float32 weights from :func:`quantize_int8`'s output (or any state dict: float tensors become float32)."""
    out = {}
    for name, w in weights.items():
        if name.startswith(QUANT_PREFIX):
            continue
        scale = weights.get(QUANT_PREFIX + name)
        if scale is not None:
            shape = (w.shape[0],) + (1,) * (w.dim() - 1)
            out[name] = w.float() * scale.float().reshape(shape)
        else:
            out[name] = w.float() if w.is_floating_point() else w
    return out


def load_checkpoint(path: str | os.PathLike, *, optimizer: bool = True) -> Checkpoint:
    """Load a checkpoint directory (weights as safetensors, optimiser with ``weights_only=True``)."""
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
        ema = load_file(os.fspath(path / "ema.safetensors"))
        if any(name.startswith(QUANT_PREFIX) for name in ema):  # a packaged built-in model
            ema = dequantize(ema)
        # a packaged model (handx.assets) ships only its EMA weights, which then serve as the model weights too
        model = (load_file(os.fspath(path / "model.safetensors")) if (path / "model.safetensors").is_file()
                 else ema)
        opt = (torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
               if optimizer and (path / "optimizer.pt").exists() else None)
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise HandxInputError(path, f"unreadable checkpoint ({exc})") from exc
    for kind, weights in (("ema", ema), ("model", model)):
        for name, tensor in weights.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise HandxInputError(path, f"{kind} weight {name} holds NaN or infinite values; refusing to "
                                            "sample or train from it", "weights")
    return Checkpoint(int(state["step"]), model, ema, opt, state)


# ---- the typed view of a run ---------------------------------------------------------------------------------

#: kinds of runs handx writes, with the families that generate motion
KINDS = ("diffusion", "evaluator", "tokenizer", "ar")
GENERATOR_KINDS = ("diffusion", "ar")
SCHEDULE_KINDS = ("cosine",)
_KNOWN = {"format", "version", "kind", "model", "representation", "stats", "text_encoder", "text_encoder_name",
          "schedule", "train"}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A run's ``config.json``, checked.

    Attributes:
        kind: what the run trains (:data:`KINDS`).
        model: the family's model config (validated by the family when it builds the network).
        representation: the per-frame motion representation the model reads and writes (``joints168``).
        stats: the representation's normalisation statistics (``mean``, ``std``), or ``None``.
        text_encoder: the text encoder spec (``minilm``, ``glove``, ``hf:<dir>``).
        schedule: the noise schedule (``{"kind": "cosine", "steps": 1000}``) of a diffusion run, else ``None``.
        train: the training settings the run was made with.
        extra: every other recorded field (a family's own: the skeleton of a generator, the evaluator's
            preprocessing, ...), verbatim.
    """

    kind: str
    model: dict[str, Any]
    representation: str = "joints168"
    stats: dict[str, Any] | None = None
    text_encoder: str = "minilm"
    schedule: dict[str, Any] | None = None
    train: dict[str, Any] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any], path: str | os.PathLike = CONFIG) -> "RunConfig":
        """Check the fields every run shares; errors name the file and the field."""
        def need(name: str, kind: type | tuple[type, ...], value: Any) -> Any:
            if not isinstance(value, kind):
                expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
                raise HandxInputError(path, f"must be {expected}, got {type(value).__name__}", name)
            return value

        kind = need("kind", str, data.get("kind"))
        if kind not in KINDS:
            raise HandxInputError(path, f"unknown run kind {kind!r}; expected one of {', '.join(KINDS)}", "kind")
        schedule = data.get("schedule")
        if schedule is not None:
            need("schedule", dict, schedule)
            if schedule.get("kind") not in SCHEDULE_KINDS:
                raise HandxInputError(path, f"unknown noise schedule {schedule.get('kind')!r}", "schedule.kind")
            steps = schedule.get("steps")
            if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 100_000:
                raise HandxInputError(path, f"must be an integer in [1, 100000], got {steps!r}", "schedule.steps")
        elif kind == "diffusion":
            schedule = {"kind": "cosine", "steps": 1000}  # runs written before the schedule was recorded
        return cls(
            kind=kind,
            model=need("model", dict, data.get("model")),
            representation=need("representation", str, data.get("representation", "joints168")),
            stats=need("stats", (dict, type(None)), data.get("stats")),
            text_encoder=need("text_encoder", str, data.get("text_encoder", "minilm")),
            schedule=schedule,
            train=need("train", dict, data.get("train", {})),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )

    def noise_schedule(self):
        """The :class:`handx.sampling.schedule.NoiseSchedule` the run was trained with."""
        from handx.sampling.schedule import NoiseSchedule

        if self.schedule is None:
            raise ValueError(f"a {self.kind} run has no noise schedule")
        return NoiseSchedule.cosine(self.schedule["steps"])


@dataclasses.dataclass(frozen=True)
class Run:
    """An opened run: its directory and checked config."""

    path: Path
    config: RunConfig

    def checkpoint(self, which: str | os.PathLike | None = None) -> Path:
        """The checkpoint directory to load: ``which`` (a path, or a name under ``checkpoints/``, or ``best``),
        else the newest (``latest``)."""
        if which is None:
            found = latest_checkpoint(self.path)
            if found is None:
                raise HandxInputError(self.path, "no checkpoint yet (train first)")
            return found
        if str(which) == "best":
            path = self.path / "best"
        else:
            path = Path(which)
            if not path.is_dir() and (self.path / "checkpoints" / path).is_dir():
                path = self.path / "checkpoints" / path
        if not path.is_dir():
            raise HandxInputError(path, "checkpoint directory not found")
        return path


def open_run(run: str | os.PathLike, *, kind: str | tuple[str, ...] | None = None) -> Run:
    """Open the run directory ``run`` (or a built-in model's name) and check its config; with ``kind``, the run
    must be of that kind (or one of those kinds)."""
    from handx.assets import resolve_run

    path = Path(resolve_run(run))
    config = RunConfig.from_json(read_config(path), path / CONFIG)
    if kind is not None:
        kinds = (kind,) if isinstance(kind, str) else kind
        if config.kind not in kinds:
            article = lambda word: ("an " if word[0] in "aeiou" else "a ") + word  # noqa: E731
            raise HandxInputError(path, f"is {article(config.kind)} run, not {' or '.join(map(article, kinds))} run")
    return Run(path, config)

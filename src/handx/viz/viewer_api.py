"""What the web viewer shows: the clips under one path, searchable, and one clip as a JSON payload.

A :class:`Catalog` is opened on the path given to ``handx view``:

* a dataset **store** directory (``manifest.json``): ids and texts come from ``clips.jsonl``; listing and search
  never touch the motion shards, so a 100k-clip store lists at once; a clip's motion is read from its
  memory-mapped shard when it is opened;
* a single ``.npz`` / ``.npy`` file that :func:`handx.io.sources.iter_clips` reads (``handx generate`` output,
  a HandX release file, a bare clip or batch);
* a **directory of such files** (e.g. generated outputs), searched recursively; a clip is named by its file
  (relative to the directory) and its id inside the file. Files that cannot be read are skipped and reported.

Whatever the path, nothing outside it is ever opened: file names are taken only from the directory walk made at
start (files that resolve outside the directory are left out), and a name that a client sends is checked
(:func:`check_relative_name`) and must be one of those files.

The clip payload (:meth:`Catalog.payload`) holds the motion (base64 of little-endian float32 ``(T, 2, 21, 3)``
metres, exact), the skeleton (bones from :mod:`handx.skeleton`, so the page never hard-codes it), all text
variants, and the motion codes of reference §2.5 (computed on demand with :func:`motion_codes`, cached) with
:func:`code_rows`, their events flattened into timeline rows.

With ``handx view --generate``, a :class:`ViewerGenerator` holds one run of any generator family (a
:class:`handx.pipelines.TextToMotion`) loaded at start and turns a checked request of the page's generate panel
(three texts, optionally a clip of the catalog and one of the family's conditioning modes,
:data:`handx.sampling.condition.MODES`) into generated motion, one request at a time.
"""

from __future__ import annotations

import base64
import bisect
import collections
import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handx.errors import HandxInputError
from handx.io.sources import BRANCHES, Clip, iter_clips, load_clips
from handx.io.store import MANIFEST, Store
from handx.motion import FPS, Texts
from handx.skeleton import BONES, CHAINS, FINGERS, HAND_NAMES, JOINT_NAMES

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 1024
CLIP_SUFFIXES = (".npz", ".npy")
#: Families whose events are contacts, with ``end`` the last frame *in* contact (reference §2.5).
CONTACT_FAMILIES = ("finger_tip_contact",)
CODE_GROUPS = (("left_hand_events", "left hand"), ("right_hand_events", "right hand"),
               ("two_hand_relationships", "two hands"))


class UnsafeNameError(PermissionError):
    """A clip id or file name that could point outside the served path (``..``, absolute, NUL, backslash)."""


def check_relative_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is a safe relative POSIX name, else raise :class:`UnsafeNameError`.

    Refused: empty or over-long names, NUL or other control characters, backslashes, absolute paths (``/x``,
    ``C:x``), and ``.`` or ``..`` path segments.
    """
    if not name or len(name) > MAX_NAME_LENGTH:
        raise UnsafeNameError(f"{what} is empty or longer than {MAX_NAME_LENGTH} characters")
    if any(ord(c) < 32 or c == "\x7f" for c in name) or "\\" in name:
        raise UnsafeNameError(f"{what} contains a control character or a backslash")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeNameError(f"{what} is an absolute path")
    if any(part in (".", "..") for part in name.split("/")):
        raise UnsafeNameError(f"{what} contains a '.' or '..' segment")
    return name


def skeleton_json() -> dict[str, Any]:
    """The skeleton as the page needs it: joint names, bones, and the finger (or ``"palm"``) of each bone."""
    finger_of_joint = {j: f for f, chain in CHAINS.items() for j in chain[1:]}
    return {
        "hands": list(HAND_NAMES),
        "joint_names": list(JOINT_NAMES),
        "bones": BONES.tolist(),
        "bone_fingers": [finger_of_joint.get(int(child), "palm") for _, child in BONES],
        "fingers": list(FINGERS),
    }


def encode_motion(motion: np.ndarray) -> str:
    """``(T, 2, 21, 3)`` → base64 of its little-endian float32 bytes (C order)."""
    return base64.b64encode(np.ascontiguousarray(motion, dtype="<f4").tobytes()).decode("ascii")


def decode_motion(data: str, frames: int) -> np.ndarray:
    """Inverse of :func:`encode_motion`: ``(frames, 2, 21, 3)`` float32."""
    return np.frombuffer(base64.b64decode(data), dtype="<f4").reshape(frames, 2, len(JOINT_NAMES), 3)


def code_rows(codes: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten motion codes (reference §2.5) into timeline rows, one per signal, in schema order.

    Each row is ``{group, family, signal, changes, events}``; each event ``{start, end, label, kind}`` spans the
    frames ``start ≤ t < end`` (contact events, whose ``end`` is inclusive in the codes, get ``end + 1``).
    ``kind`` is ``"change"`` (a state change), ``"move"`` (a wrist movement), ``"contact"`` or ``"constant"``;
    ``changes`` says whether the row has any event that is not constant.
    """
    frames = int(codes["frame_count"])
    rows = []
    for group_key, group in CODE_GROUPS:
        for family, signals in codes.get(group_key, {}).items():
            for signal, events in signals.items():
                out = []
                for ev in events:
                    start, end = int(ev["start"]), int(ev["end"])
                    if "direction" in ev:
                        kind, label = "move", f"{ev['direction']} ({ev['v_des']})"
                    elif "start_des" in ev:
                        kind, label = "change", f"{ev['start_des']} → {ev['end_des']} ({ev['v_des']})"
                    elif family in CONTACT_FAMILIES:
                        kind, label, end = "contact", str(ev["constant_des"]), end + 1
                    else:
                        kind, label = "constant", str(ev["constant_des"])
                    out.append({"start": max(start, 0), "end": min(end, frames), "label": label, "kind": kind})
                rows.append({"group": group, "family": family.replace("_", " "), "signal": signal,
                             "changes": any(e["kind"] != "constant" for e in out), "events": out})
    return rows


class Catalog:
    """The clips under one path: listing, search, and payloads (see the module docstring).

    Subclasses provide ``_ids``, ``_files`` (file of each clip relative to the root, or None), ``_frames``,
    ``texts(i)`` and ``_load(i)``. Thread-safe: the HTTP server calls it from several threads.
    """

    kind = "?"

    def __init__(self, root: Path, fps: float, *, cache_size: int = 64):
        self.root = root
        self.fps = float(fps)
        self.skipped: list[str] = []
        self._ids: list[str] = []
        self._files: list[str | None] = []
        self._frames: list[int] = []
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._haystack: tuple[str, list[int]] | None = None
        self._cache: collections.OrderedDict[int, dict[str, Any]] = collections.OrderedDict()
        self._cache_size = cache_size
        self._by_key: dict[tuple[str | None, str], int] | None = None
        self._by_id: dict[str, list[int]] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def texts(self, i: int) -> dict[str, list[str]]:
        raise NotImplementedError

    def _load(self, i: int) -> Clip:
        raise NotImplementedError

    def text_kind(self, i: int) -> str:
        """``"variants"`` (several descriptions of the whole clip) or ``"segments"`` (one per generated window)."""
        return "variants"

    def meta(self) -> dict[str, Any]:
        return {"name": self.root.name, "kind": self.kind, "count": len(self), "fps": self.fps,
                "skipped": list(self.skipped), **skeleton_json()}

    def summary(self, i: int) -> dict[str, Any]:
        """One list entry: id, file, frames and the first variant of each text branch."""
        texts = self.texts(i)
        first = {b: (texts.get(b) or [""])[0] for b in BRANCHES}
        return {"id": self._ids[i], "file": self._files[i], "frames": self._frames[i],
                "left": first["left"], "right": first["right"], "relation": first["two_hands_relation"],
                "variants": len(texts.get("left") or ())}

    def search(self, query: str) -> Sequence[int]:
        """Indices of the clips whose id, file or any text variant contains ``query`` (case-insensitive).

        Searches :meth:`search_index`, one case-folded string of all clips separated by NUL (which a query may
        not hold), in one ``str.find`` pass that jumps to the next clip after every hit.
        """
        needle = query.casefold()
        if "\x00" in needle:
            raise ValueError("the search text contains a NUL character")
        if not needle.strip():
            return range(len(self))
        haystack, starts = self.search_index()
        found = []
        pos = haystack.find(needle)
        while pos != -1:
            i = bisect.bisect_right(starts, pos) - 1
            found.append(i)
            pos = haystack.find(needle, starts[i + 1])
        return found

    def search_index(self) -> tuple[str, list[int]]:
        """The case-folded text of all clips, NUL-separated, and where each clip starts (built once, ~1 s per
        30k clips; the server builds it in the background at start)."""
        with self._index_lock:  # its own lock: opening clips goes on while the index is built
            if self._haystack is None:
                parts, starts, offset = [], [], 0
                for i in range(len(self)):
                    texts = self.texts(i)
                    part = "\n".join([self._ids[i], self._files[i] or "", *(t for b in BRANCHES
                                                                            for t in texts.get(b) or ())])
                    part = part.casefold() + "\x00"
                    parts.append(part)
                    starts.append(offset)
                    offset += len(part)
                starts.append(offset)
                self._haystack = ("".join(parts), starts)
            return self._haystack

    def find(self, clip_id: str, file: str | None = None) -> int:
        """Index of the clip ``clip_id`` (in ``file`` for a directory). Raises :class:`UnsafeNameError` for a
        name that could escape the root and :class:`KeyError` for one that is not there."""
        check_relative_name(clip_id, "clip id")
        if file is not None:
            check_relative_name(file, "file")
        with self._lock:
            if self._by_key is None:
                self._by_key = {(f, c): i for i, (f, c) in enumerate(zip(self._files, self._ids))}
                self._by_id = collections.defaultdict(list)
                for i, c in enumerate(self._ids):
                    self._by_id[c].append(i)
        if file is not None or self.kind != "directory":
            i = self._by_key.get((file, clip_id))
            if i is None:
                raise KeyError(f"no clip {clip_id!r}" + (f" in {file!r}" if file else ""))
            return i
        matches = self._by_id.get(clip_id, [])
        if len(matches) != 1:
            raise KeyError(f"no clip {clip_id!r}" if not matches else
                           f"clip id {clip_id!r} is in {len(matches)} files; say which with file=")
        return matches[0]

    def frames(self, i: int) -> int:
        """Frame count of clip ``i`` (known from the listing; no motion is read)."""
        return self._frames[i]

    def clip_name(self, i: int) -> tuple[str, str | None]:
        """``(id, file)`` of clip ``i``."""
        return self._ids[i], self._files[i]

    def motion(self, i: int) -> np.ndarray:
        """The motion ``(T, 2, 21, 3)`` metres of clip ``i``, as stored (not cached)."""
        return np.asarray(self._load(i).motion)

    def payload(self, i: int) -> dict[str, Any]:
        """Everything the page needs to show clip ``i``, JSON-ready (cached, least recently used dropped)."""
        with self._lock:
            if i in self._cache:
                self._cache.move_to_end(i)
                return self._cache[i]
        clip = self._load(i)
        motion = np.asarray(clip.motion, dtype=np.float32)  # (T, 2, 21, 3)
        codes, codes_error = None, None
        try:
            from handx.features.codes import motion_codes

            codes = motion_codes(motion, fps=self.fps)
        except ValueError as exc:  # e.g. a clip too short to segment: show the motion anyway
            codes_error = str(exc)
            log.info("%s: motion codes of %s failed: %s", self.root, self._ids[i], exc)
        payload = {
            "id": self._ids[i], "file": self._files[i], "frames": int(motion.shape[0]), "fps": self.fps,
            "shape": list(motion.shape), "encoding": "base64-float32-le", "motion": encode_motion(motion),
            **skeleton_json(), "texts": self.texts(i), "text_kind": self.text_kind(i),
            "source": _jsonable(clip.extra.get("source", {})),
            "codes": codes, "codes_error": codes_error, "timeline": code_rows(codes) if codes else [],
        }
        with self._lock:
            self._cache[i] = payload
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return payload


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


class StoreCatalog(Catalog):
    """A dataset store: records for listing and search, memory-mapped shards for motion."""

    kind = "store"

    def __init__(self, root: Path):
        self.store = Store(root)
        super().__init__(root, self.store.manifest.get("fps", FPS))
        for entry in self.store.manifest["shards"]:  # the manifest names the shards: they too must stay inside
            try:
                inside = (root / check_relative_name(str(entry["file"]), "shard")).resolve().is_relative_to(root)
            except UnsafeNameError:
                inside = False
            if not inside:
                raise HandxInputError(root / MANIFEST, f"shard {entry['file']!r} lies outside the store; not served")
        records = self.store.records  # parses clips.jsonl once; motion stays on disk
        self._ids = [r.id for r in records]
        self._files = [None] * len(records)
        self._frames = [int(self.store.manifest.get("window", 60))] * len(records)

    def texts(self, i: int) -> dict[str, list[str]]:
        return self.store.records[i].texts

    def _load(self, i: int) -> Clip:
        record = self.store.records[i]
        return Clip(record.id, np.array(self.store.motion(i)), Texts.from_json(record.texts), str(self.root),
                    {"source": record.source})


class FileCatalog(Catalog):
    """One clip file, or every clip file under a directory (found once, at start)."""

    def __init__(self, root: Path, files: Sequence[Path] | None):
        super().__init__(root, FPS)
        self.kind = "file" if files is None else "directory"
        self._texts: list[dict[str, list[str]]] = []
        self._kinds: list[str] = []
        for path in [root] if files is None else files:
            rel = None if files is None else path.relative_to(root).as_posix()
            try:
                clips = list(_index_file(path))
            except HandxInputError as exc:
                if files is None:
                    raise
                log.warning("skipping %s", exc)
                self.skipped.append(str(exc))
                continue
            for cid, texts, frames, kind in clips:
                self._ids.append(cid)
                self._files.append(rel)
                self._texts.append(texts)
                self._frames.append(frames)
                self._kinds.append(kind)

    def texts(self, i: int) -> dict[str, list[str]]:
        return self._texts[i]

    def text_kind(self, i: int) -> str:
        return self._kinds[i]

    def path_of(self, i: int) -> Path:
        """The file of clip ``i``, checked to lie under the root (the root itself for a single file)."""
        rel = self._files[i]
        path = self.root if rel is None else (self.root / check_relative_name(rel, "file")).resolve()
        if path != self.root and not path.is_relative_to(self.root):
            raise UnsafeNameError(f"{rel!r} resolves outside the served directory")
        return path

    def _load(self, i: int) -> Clip:
        return load_clips(self.path_of(i), [self._ids[i]])[0]


def _index_file(path: Path):
    """``(id, texts, frames, text_kind)`` of every clip in one file (motion is read, then dropped)."""
    for clip in iter_clips(path):
        texts = clip.texts.to_json()
        generated = bool(clip.extra.get("settings")) and len(texts["left"]) > 1
        yield clip.id, texts, int(clip.motion.shape[0]), "segments" if generated else "variants"


def _clip_files(root: Path) -> list[Path]:
    """``.npz``/``.npy`` files under ``root`` (sorted, hidden entries and nested stores left out), each resolving
    inside ``root``; symlinked directories are not followed."""
    found = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        here = Path(folder)
        if here != root and (here / MANIFEST).is_file():
            log.info("%s: a nested store is not listed (open it with handx view %s)", here, here)
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or not name.endswith(CLIP_SUFFIXES):
                continue
            path = (here / name).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                log.warning("%s: leaves %s or is not a file; not served", here / name, root)
                continue
            found.append(here / name)
    return found


def open_catalog(path: str | os.PathLike) -> Catalog:
    """Open a store directory, a clip file, or a directory of clip files (see the module docstring)."""
    root = Path(path).resolve()
    if root.is_dir():
        if (root / MANIFEST).is_file():
            return StoreCatalog(root)
        files = _clip_files(root)
        if not files:
            raise HandxInputError(path, "not a handx store and holds no .npz or .npy files")
        return FileCatalog(root, files)
    if root.is_file():
        if root.suffix not in CLIP_SUFFIXES:
            raise HandxInputError(path, "expected a store directory, a directory of .npz/.npy files, or one such "
                                        "file")
        return FileCatalog(root, None)
    raise HandxInputError(path, "no such file or directory")


# ---------------------------------------------------------------------------------------------------------------
# Generation (handx view --generate)
# ---------------------------------------------------------------------------------------------------------------

TEXT_MODE = "text"  # no condition: the texts alone
MAX_TEXT = 1000  # characters per text
MAX_STEPS = 200  # sampler steps a request may ask for
MAX_SEED = 2**31 - 1
MAX_GUIDANCE = 20.0
MAX_GENERATE_BODY = 16384  # bytes: three texts of MAX_TEXT characters fit even when every one is escaped
GENERATE_KEYS = ("texts", "clip", "file", "mode", "seed", "steps", "guidance")
TEXT_KEYS = ("left", "right", "relation")


class GeneratorBusyError(RuntimeError):
    """A generation is running already; the viewer runs one at a time."""


@dataclasses.dataclass(frozen=True)
class GenerateAsk:
    """A checked request of the generate panel: the three texts; ``clip``, the catalog index of the clip shown
    beside the result (and its condition unless ``mode`` is ``"text"``), or None; the sampler settings
    (``steps`` and ``guidance`` None for a family without them)."""

    left: str
    right: str
    relation: str
    clip: int | None
    mode: str
    seed: int
    steps: int | None
    guidance: float | None


def _field_default(cls: type, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name``, or None when it has no such field."""
    return next((f.default for f in dataclasses.fields(cls) if f.name == name), None)


def _strict_json(body: bytes) -> Any:
    """Parse a request body as JSON, refusing what :func:`json.loads` lets through: bytes that are not UTF-8,
    ``NaN``/``Infinity`` and an object with a key twice. Raises :class:`ValueError` saying what was wrong."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"key {next(k for k in keys if keys.count(k) > 1)!r} appears twice")
        return dict(pairs)

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the request body is not UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=unique, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the request body is not JSON ({exc.msg} at character {exc.pos})") from None
    except ValueError as exc:
        raise ValueError(f"the request body is not acceptable JSON ({exc})") from None


def _integer(body: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = body.get(name, default)
    if type(value) is not int:  # bool is an int subclass: refused too
        raise ValueError(f"{name} must be an integer, got {json.dumps(value)[:40]}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


class ViewerGenerator:
    """A generator run loaded once (a :class:`handx.pipelines.TextToMotion` of any family), serving the viewer's
    generate panel over ``catalog``, one request at a time.

    The panel offers the family's conditioning modes and its sampler defaults (``steps`` and ``guidance`` of its
    ``Settings``, where it has them). :meth:`parse` checks a request body (JSON; see ``docs/viz.md``) against the
    catalog and the family and raises :class:`ValueError` (bad request, or a mode or setting the family does not
    have), :class:`KeyError` (no such clip) or :class:`UnsafeNameError`; :meth:`generate` runs it and raises
    :class:`GeneratorBusyError` while another generation runs.
    """

    def __init__(self, pipeline: Any, run: Path, catalog: Catalog):
        from handx.sampling.condition import MODES, Condition

        self.pipeline = pipeline  # handx.pipelines.TextToMotion
        self.run = Path(run)
        self.catalog = catalog
        self.frames = int(pipeline.frames)
        self.modes = (TEXT_MODE, *(m for m in MODES if m in pipeline.modes))
        self.unsupported = tuple(m for m in MODES if m not in pipeline.modes)  # refused naming the family
        self.keyframes = (0, self.frames // 2, self.frames - 1)  # the keyframes mode keeps these frames
        self.inbetween = int(_field_default(Condition, "k"))  # the inbetween mode keeps this many at each end
        steps, guidance = (_field_default(pipeline.Settings, name) for name in ("steps", "guidance"))
        self.default_steps = None if steps is None else int(steps)
        self.default_guidance = None if guidance is None else float(guidance)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, catalog: Catalog, ckpt: str | os.PathLike | None = None, device: str = "cpu") -> ViewerGenerator:
        """Load the run ``ckpt`` (a run directory or a built-in model's name; None: the default built-in
        generator). Raises :class:`HandxInputError` when there is none."""
        from handx.assets import default_run, resolve_run
        from handx.pipelines import load_pipeline

        run = resolve_run(ckpt, kind="generator") if ckpt is not None else default_run("generator")
        try:
            pipeline = load_pipeline(run, device=device)
        except OSError as exc:
            raise HandxInputError(run, f"cannot load the model ({exc})") from exc
        return cls(pipeline, run, catalog)

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def info(self) -> dict[str, Any]:
        """What the page needs to build the panel (``/api/meta`` ``generate``)."""
        k, keys = self.inbetween, ", ".join(str(f) for f in self.keyframes)
        labels = {TEXT_MODE: "text only", "left-hand": "left hand from the clip, right hand reacts",
                  "right-hand": "right hand from the clip, left hand reacts",
                  "wrists": "both wrist paths from the clip", "inbetween": f"first and last {k} frames from the clip",
                  "continue": f"first {k} frames from the clip, then continued",
                  "keyframes": f"frames {keys} from the clip"}
        return {"run": self.run.name, "family": self.pipeline.family, "frames": self.frames, "fps": FPS,
                "max_text": MAX_TEXT,
                "modes": [{"name": m, "label": labels.get(m, m)} for m in self.modes],
                "steps": self.default_steps, "max_steps": MAX_STEPS, "guidance": self.default_guidance,
                "max_guidance": MAX_GUIDANCE, "max_seed": MAX_SEED}

    def parse(self, body: bytes) -> GenerateAsk:
        """Check a request body (see the class docstring for what it raises)."""
        data = _strict_json(body)
        if not isinstance(data, dict):
            raise ValueError("the request body must be a JSON object")
        unknown = sorted(set(data) - set(GENERATE_KEYS))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(GENERATE_KEYS)}")
        texts = data.get("texts")
        if not isinstance(texts, dict) or set(texts) != set(TEXT_KEYS):
            raise ValueError(f"texts must be an object with exactly the keys {', '.join(TEXT_KEYS)}")
        for key in TEXT_KEYS:
            if not isinstance(texts[key], str):
                raise ValueError(f"texts.{key} must be a string")
            if len(texts[key]) > MAX_TEXT:
                raise ValueError(f"texts.{key} has {len(texts[key])} characters; at most {MAX_TEXT} are allowed")
        if not any(texts[key].strip() for key in TEXT_KEYS):
            raise ValueError("all three texts are empty; describe at least one of them")
        mode = data.get("mode", TEXT_MODE)
        if mode not in self.modes:
            raise ValueError(f"mode must be one of {', '.join(self.modes)}, got {json.dumps(mode)[:60]}"
                             + (f" (the {self.pipeline.family} family does not support {mode!r})"
                                if mode in self.unsupported else ""))
        clip_id, file = data.get("clip"), data.get("file")
        for name, value in (("clip", clip_id), ("file", file)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string or null")
        if file is not None and clip_id is None:
            raise ValueError("file is given without clip")
        index = None if clip_id is None else self.catalog.find(clip_id, file)
        if mode != TEXT_MODE:
            if index is None:
                raise ValueError(f"mode {mode!r} keeps part of a clip: give the clip")
            if self.catalog.frames(index) != self.frames:
                raise ValueError(f"clip {clip_id!r} has {self.catalog.frames(index)} frames; the model's condition "
                                 f"clips have {self.frames}")
        for name, default in (("steps", self.default_steps), ("guidance", self.default_guidance)):
            if default is None and name in data:
                raise ValueError(f"{name} does not apply to the {self.pipeline.family} family")
        guidance = None
        if self.default_guidance is not None:
            guidance = data.get("guidance", self.default_guidance)
            if type(guidance) not in (int, float) or not 0 <= guidance <= MAX_GUIDANCE:
                raise ValueError(f"guidance must be a number in [0, {MAX_GUIDANCE:g}], "
                                 f"got {json.dumps(guidance)[:40]}")
            guidance = float(guidance)
        seed = _integer(data, "seed", 0, 0, MAX_SEED)
        steps = None if self.default_steps is None else _integer(data, "steps", self.default_steps, 1, MAX_STEPS)
        return GenerateAsk(texts["left"], texts["right"], texts["relation"], index, mode, seed, steps, guidance)

    def generate(self, ask: GenerateAsk) -> dict[str, Any]:
        """Run ``ask``: the generated motion (base64 float32 ``(T, 2, 21, 3)`` metres, as in a clip payload), the
        seconds it took, and what was asked. Raises :class:`GeneratorBusyError` if a generation is running."""
        from handx.motion import Triplet
        from handx.pipelines import make_settings
        from handx.pipelines.io import generation_record
        from handx.sampling.condition import Condition

        if not self._lock.acquire(blocking=False):
            raise GeneratorBusyError("a generation is running already; try again when it has finished")
        try:
            condition = None
            if ask.mode != TEXT_MODE:
                motion = self.catalog.motion(ask.clip)  # (T, 2, 21, 3)
                condition = Condition(ask.mode, motion, frames=self.keyframes if ask.mode == "keyframes" else ())
            settings = make_settings(self.pipeline, steps=ask.steps, guidance=ask.guidance)
            start = time.perf_counter()
            joints = self.pipeline.generate((Triplet(ask.left, ask.right, ask.relation),), num=1, seed=ask.seed,
                                            constraints=condition, settings=settings)  # (1, T, 2, 21, 3)
            seconds = time.perf_counter() - start
        finally:
            self._lock.release()
        record = generation_record(self.pipeline.family, settings, joints, seed=ask.seed, constraints=condition)
        joints = np.asarray(joints[0], dtype=np.float32)  # (T, 2, 21, 3)
        clip_id, file = self.catalog.clip_name(ask.clip) if ask.clip is not None else (None, None)
        log.info("generated %d frames (%s, seed %d, %s steps) in %.2f s", joints.shape[0], ask.mode, ask.seed,
                 ask.steps, seconds)
        return {"frames": int(joints.shape[0]), "fps": FPS, "shape": list(joints.shape),
                "encoding": "base64-float32-le", "motion": encode_motion(joints), "seconds": round(seconds, 3),
                "texts": {"left": ask.left, "right": ask.right, "two_hands_relation": ask.relation},
                "mode": ask.mode, "clip": clip_id, "file": file, "seed": ask.seed, "steps": ask.steps,
                "guidance": ask.guidance, "run": self.run.name, "family": self.pipeline.family,
                "settings": _jsonable(record)}

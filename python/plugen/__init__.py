"""plugen from Python: attribute-conditioned face generation with PluGeN plugins.

The same Rust engine as the ``plugen`` command line, in numpy terms::

    import plugen
    m = plugen.Model()                        # the bundled default model, offline
    s = m.sample(16, seed=1, set={"smile": "on"})
    s.images.shape                            # (16, 64, 64, 3) uint8
    m.fill("my-dataset.csv", by=["smile", "male"], total=500, out="fill")

Faces are ``uint8`` arrays of shape (n, H, W, 3); latents ``float32`` arrays of
shape (n, latent_dim). Attribute values are in the units of ``--set``: binary
attributes in flow units (-1 and +1 are the class means; ``"on"``/``"off"``
take a judged attribute's calibrated ends), continuous ones in label units.
Every computation releases the GIL. Errors raise ``ValueError`` (or
``FileNotFoundError`` for a missing file or folder) with the CLI's message.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _native

__all__ = [
    "Attribute",
    "Edited",
    "Model",
    "Projected",
    "Samples",
    "default_model_dir",
    "judge",
    "png_bytes",
    "save_png",
]

PathLike = Union[str, "os.PathLike[str]"]
Progress = Union[None, bool, Callable[[int, int], Any]]
Value = Union[float, int, str]

# A wheel built by tools/python/build-wheel.sh carries the default bundle here.
_CARRIED = Path(__file__).resolve().parent / "models" / "dcgan-digiface64"


def default_model_dir() -> Path:
    """The model folder used when none is given: ``$PLUGEN_MODEL``, the bundle
    this package carries, else the ``models/`` of the checkout it was built from."""
    if os.environ.get("PLUGEN_MODEL"):
        return Path(os.environ["PLUGEN_MODEL"]).resolve()
    if _native.is_model_dir(str(_CARRIED)):
        return _CARRIED
    return Path(_native.default_model_dir()).resolve()


@dataclass(frozen=True)
class Attribute:
    """One attribute a plugin controls."""

    name: str
    """Identifier used by ``set=``, tables and the editor (e.g. ``"smile"``)."""
    kind: str
    """``"binary"`` or ``"continuous"``."""
    display_name: str
    description: str
    ends: Optional[List[str]]
    """Names of a binary attribute's two ends (e.g. ``["neutral", "smiling"]``)."""
    label_min: float
    label_max: float
    judged_by: Optional[str]
    """The judge reading that decides it, or ``None`` where it is unjudged."""
    calibrated: Optional[Dict[str, float]]
    """``{"on": v, "off": v}``: where the judges agree with its ends, if measured."""


@dataclass
class Samples:
    """Faces from :meth:`Model.sample`, image for image those of
    ``plugen sample`` with the same seed and settings."""

    images: np.ndarray
    """(n, H, W, 3) uint8."""
    latents: np.ndarray
    """(n, latent_dim) float32."""
    indices: np.ndarray
    """Index of each face in the run (the CLI's file ``{index:06}.png``);
    faces that no draw could make pass their check are left out."""
    requested: Dict[str, np.ndarray]
    """Per attribute, the value asked of each face (NaN where none was)."""
    readouts: Dict[str, np.ndarray]
    """Per attribute, the plugin's readout of each face."""
    judged: List[Optional[Dict[str, float]]]
    """What the judges read off each face, where the check used them."""
    cells: List[Dict[str, Any]] = field(default_factory=list)
    """Per kind of face asked, with a check: written, draws, given up."""

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class Edited:
    """Faces from :meth:`Model.edit`."""

    latents: np.ndarray
    """(n, latent_dim) float32, the edited latents."""
    images: np.ndarray
    """(n, H, W, 3) uint8, their faces."""
    used: List[Dict[str, float]]
    """Per face, the values set (with ``until_judged``: where each edit stopped)."""


@dataclass
class Projected:
    """Latents found for images by :meth:`Model.project`."""

    latents: np.ndarray
    """(n, latent_dim) float32."""
    mse: np.ndarray
    """(n,) pixel mean squared error of each reconstruction, [-1, 1] units."""


def _progress(progress: Progress) -> Optional[Callable[[int, int], Any]]:
    """A ``(done, total)`` callback: the user's, tqdm's (``True``, where tqdm
    is installed; else a line on stderr) or none."""
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    try:
        from tqdm.auto import tqdm
    except ImportError:
        def line(done: int, total: int) -> None:
            print(f"\rplugen: {done}/{total}", end="\n" if done >= total else "", file=sys.stderr)
        return line
    bar: Dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit="face")
        b = bar["bar"]
        b.update(done - b.n)
        if done >= total:
            b.close()
    return update


def _latents(latents: Any, dim: int) -> np.ndarray:
    a = np.asarray(latents, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != dim:
        raise ValueError(f"latents: expected shape (n, {dim}), got {tuple(np.shape(latents))}")
    return np.ascontiguousarray(a, dtype="<f4")


def _images(images: Any) -> np.ndarray:
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[3] != 3:
        raise ValueError(f"images: expected shape (n, H, W, 3), got {tuple(np.shape(images))}")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
            raise ValueError("images: expected uint8 pixels (or finite numbers in 0..255)")
        if a.min() < 0 or a.max() > 255:
            raise ValueError("images: pixel values outside 0..255")
        a = a.astype(np.uint8)
    return np.ascontiguousarray(a)


def _sets(values: Optional[Mapping[str, Value]]) -> List[str]:
    out = []
    for name, v in (values or {}).items():
        if isinstance(v, bool) or not isinstance(v, (int, float, str, np.number)):
            raise ValueError(f"set: {name}={v!r}: expected a number, 'on' or 'off'")
        out.append(f"{name}={v}")
    return out


def _as_image_array(data: bytes, n: int, size: int) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).reshape(n, size, size, 3).copy()


def _as_f32(data: bytes, n: int, dim: int) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").reshape(n, dim).astype(np.float32)


class Model:
    """A generator and its plugin, loaded on a device.

    ``model``: a model folder (default: :func:`default_model_dir`); ``plugin``:
    a ``plugin.json`` or its folder (default: the folder's own; ``None`` with
    ``no_plugin=True`` for the generator alone); ``device``: ``"auto"``,
    ``"cpu"``, ``"wgpu"``, ``"cuda"``, ``"cuda:N"`` or ``"metal"``.
    """

    def __init__(
        self,
        model: Optional[PathLike] = None,
        plugin: Optional[PathLike] = None,
        *,
        device: str = "auto",
        no_plugin: bool = False,
    ) -> None:
        folder = Path(model) if model is not None else default_model_dir()
        self._native = _native.NativeModel(
            str(folder), None if plugin is None else str(plugin), no_plugin, device
        )
        info = json.loads(self._native.info())
        self.model_dir: Path = Path(info["model_dir"])
        """The model folder."""
        self.device: str = info["device"]
        """The device computing, in words (e.g. ``"CPU (plugen engine)"``)."""
        self.latent_dim: int = info["latent_dim"]
        """Numbers per latent."""
        self.image_size: int = info["image_size"]
        """Side of the generated faces in pixels."""
        self.plugin: Optional[Path] = Path(info["plugin"]) if info["plugin"] else None
        """The plugin's ``plugin.json``, or ``None``."""
        self.judges_dir: Path = Path(info["judges_dir"])
        """The judges folder beside the model."""
        self.attributes: List[Attribute] = [Attribute(**a) for a in info["attributes"]]
        """The plugin's attributes, in its order."""
        if info.get("device_note"):
            print(f"plugen: {info['device_note']}", file=sys.stderr)

    @property
    def attribute_names(self) -> List[str]:
        """The attributes' names, in the plugin's order (the readout's columns)."""
        return [a.name for a in self.attributes]

    def __repr__(self) -> str:
        return (
            f"plugen.Model({str(self.model_dir)!r}, plugin={str(self.plugin) if self.plugin else None!r}, "
            f"device={self.device!r}, attributes={self.attribute_names})"
        )

    def sample(
        self,
        n: int = 16,
        *,
        seed: int = 0,
        set: Optional[Mapping[str, Value]] = None,
        balance: Optional[Sequence[str]] = None,
        bins: int = 5,
        temperature: float = 1.0,
        verify: str = "auto",
        judges: Optional[PathLike] = None,
        progress: Progress = None,
    ) -> Samples:
        """``n`` faces, as ``plugen sample -n N --seed S [--set …] [--balance …]``
        makes them (same faces, same order).

        ``set``: values fixed for every face, e.g. ``{"smile": "on", "male": -1}``;
        ``balance``: attributes whose joint values are split evenly across the
        faces; ``verify``: ``"auto"`` (the judges where the plugin has a judge
        map), ``"judge"``, ``"plugin"`` or ``"off"``: a face that fails the
        check is redrawn, and left out if no draw passes; with the judges, a
        judged continuous value asked (yaw, pitch) is steered until read within
        5 % of its label range.
        """
        if isinstance(balance, str):
            balance = [balance]
        indices, z, images, extra = self._native.sample(
            int(n), int(seed), _sets(set), ",".join(balance) if balance else None, int(bins),
            float(temperature), verify, None if judges is None else str(judges), _progress(progress),
        )
        extra = json.loads(extra)
        k = len(indices)
        names = self.attribute_names
        requested = {
            a: np.array([np.nan if r[i] is None else r[i] for r in extra["requested"]], dtype=np.float32)
            for i, a in enumerate(names)
        }
        readouts = {a: np.array([r[i] for r in extra["readouts"]], dtype=np.float32) for i, a in enumerate(names)}
        if extra.get("note"):
            print(f"plugen: {extra['note']}", file=sys.stderr)
        return Samples(
            images=_as_image_array(images, k, self.image_size),
            latents=_as_f32(z, k, self.latent_dim),
            indices=np.asarray(indices, dtype=np.int64),
            requested=requested,
            readouts=readouts,
            judged=extra["judged"],
            cells=extra["cells"],
        )

    def render(self, latents: Any) -> np.ndarray:
        """The faces of latents ((n, latent_dim) or one row): (n, H, W, 3) uint8."""
        z = _latents(latents, self.latent_dim)
        return _as_image_array(self._native.render(z.tobytes(), len(z)), len(z), self.image_size)

    def edit(
        self,
        latents: Any,
        set: Mapping[str, Value],
        *,
        mode: str = "flow",
        until_judged: bool = False,
        judges: Optional[PathLike] = None,
    ) -> Edited:
        """Sets attributes of existing faces, as ``plugen edit --set …`` does.

        ``mode``: ``"flow"`` (PluGeN's edit: forward flow, set, inverse) or
        ``"minimal"`` (the nearest latent with the asked readout);
        ``until_judged``: stop each judged binary attribute's flow edit at the
        weakest strength at which the judges read the asked side, keeping the
        judged attributes not asked on the side read on the original face,
        and set each judged continuous attribute (yaw, pitch, …) again until
        the judges read it within 5 % of its label range of the value asked.
        """
        z = _latents(latents, self.latent_dim)
        out, used = self._native.edit(
            z.tobytes(), len(z), _sets(set), mode, bool(until_judged),
            None if judges is None else str(judges),
        )
        edited = _as_f32(out, len(z), self.latent_dim)
        return Edited(latents=edited, images=self.render(edited), used=json.loads(used))

    def readout(self, latents: Any) -> np.ndarray:
        """The plugin's estimate of every attribute for each latent (its
        forward flow as a classifier): (n, K) float32, columns
        :attr:`attribute_names`, user units."""
        z = _latents(latents, self.latent_dim)
        data = self._native.readout(z.tobytes(), len(z))
        return _as_f32(data, len(z), len(self.attributes))

    def project(
        self,
        images: Any,
        *,
        use_encoder: bool = True,
        seed: int = 0,
        steps: Optional[int] = None,
        progress: Progress = None,
    ) -> Projected:
        """Latents whose faces match photos ((n, H, W, 3) uint8, each
        centre-cropped to a square), as ``plugen project`` finds them: the
        encoder's guess plus refinement, or ``steps`` from a random start."""
        a = _images(images)
        z, mse = self._native.project(
            a.tobytes(), a.shape[0], a.shape[1], a.shape[2], bool(use_encoder), int(seed),
            None if steps is None else int(steps), _progress(progress),
        )
        return Projected(latents=_as_f32(z, a.shape[0], self.latent_dim), mse=np.asarray(mse, dtype=np.float32))

    def judge(self, images: Any) -> List[Dict[str, float]]:
        """What this model's judges read off faces (see :func:`judge`)."""
        return judge(images, judges=self.judges_dir)

    def fill(
        self,
        have: Any,
        by: Union[str, Sequence[str]],
        *,
        out: PathLike,
        per_cell: Optional[int] = None,
        total: Optional[int] = None,
        seed: int = 0,
        verify: str = "auto",
        judges: Optional[PathLike] = None,
        temperature: float = 1.0,
        scale: int = 1,
        shard: Optional[str] = None,
        progress: Progress = None,
    ) -> Any:
        """Fills the rare joint cells of a dataset's label table, as ``plugen
        fill --have … --by …`` does: the same folder, byte for byte.

        ``have``: a pandas DataFrame or a CSV path (0/1 for binary attributes,
        label units for continuous ones, empty/NaN = unknown); ``by``:
        attributes (``"skin_tone:3"`` for bins of a continuous one); ``total``
        faces in all, or every cell up to ``per_cell`` (default: the largest
        cell's count). Returns the folder's ``metadata.jsonl`` as a DataFrame
        (a list of dicts where pandas is not installed); the per-cell report
        is in its ``attrs["report"]``.
        """
        by_list = [b.strip() for b in by.split(",")] if isinstance(by, str) else list(by)
        by_text = ",".join(by_list)
        with tempfile.TemporaryDirectory(prefix="plugen-have-") as tmp:
            if isinstance(have, (str, os.PathLike)):
                have_path = str(have)
            else:
                have_path = os.path.join(tmp, "have.csv")
                _write_table(have, [b.split(":")[0] for b in by_list], have_path)
            report = json.loads(self._native.fill(
                have_path, by_text, per_cell, total, int(seed), verify,
                None if judges is None else str(judges), float(temperature), int(scale),
                str(out), shard, _progress(progress),
            ))
        if report.get("note"):
            print(f"plugen: {report['note']}", file=sys.stderr)
        rows = _read_jsonl(Path(out) / "metadata.jsonl")
        try:
            import pandas as pd
        except ImportError:
            return rows
        frame = pd.DataFrame(rows)
        frame.attrs["report"] = report
        return frame


def _write_table(have: Any, columns: Iterable[str], path: str) -> None:
    """A DataFrame's ``columns`` as the CSV ``fill`` reads: 0/1, numbers, empty for unknown."""
    try:
        import pandas as pd
    except ImportError as e:
        raise ValueError("have: pass a CSV path, or install pandas to pass a DataFrame") from e
    if not isinstance(have, pd.DataFrame):
        raise ValueError(f"have: expected a pandas DataFrame or a CSV path, got {type(have).__name__}")
    missing = [c for c in columns if c not in have.columns]
    if missing:
        raise ValueError(f"have: no column {missing[0]!r} (the table has: {', '.join(map(str, have.columns[:12]))})")
    lines = [",".join(columns)]
    table = have[list(columns)]
    for row in table.itertuples(index=False):
        cells = []
        for v in row:
            if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
                cells.append("")
            elif isinstance(v, (bool, np.bool_)):
                cells.append("1" if v else "0")
            else:
                cells.append(str(v).strip())
        lines.append(",".join(cells))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _read_jsonl(path: Path) -> List[Dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def judge(images: Any, *, judges: Optional[PathLike] = None) -> List[Dict[str, float]]:
    """What the judges (independent face-analysis models shipped beside the
    bundle) read off faces ((n, H, W, 3) uint8; anything but 64×64 is
    centre-cropped and resized, as ``plugen judge`` does): per face, the seven
    emotion probabilities, ``male``, ``background`` and the face mesh's
    ``face_score``, ``yaw``, ``pitch``, ``mouth`` and ``eye_gap`` (the last
    four only where it found the face; ``mouth`` and ``eye_gap`` only on faces
    near frontal, as the labeller takes them)."""
    a = _images(images)
    folder = Path(judges) if judges is not None else default_model_dir().parent / "judges"
    return json.loads(_native.judge(a.tobytes(), a.shape[0], a.shape[1], a.shape[2], str(folder)))


def png_bytes(image: Any, *, scale: int = 1) -> bytes:
    """An (H, W, 3) uint8 face as the PNG bytes ``plugen`` writes for it."""
    a = _images(image)
    if a.shape[0] != 1:
        raise ValueError("png_bytes: one image at a time")
    return _native.png_bytes(a.tobytes(), a.shape[1], a.shape[2], int(scale))


def save_png(image: Any, path: PathLike, *, scale: int = 1) -> None:
    """Writes a face as ``plugen`` would (same bytes); the file appears whole or not at all."""
    data = png_bytes(image, scale=scale)
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".plugen-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

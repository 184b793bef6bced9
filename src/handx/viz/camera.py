"""A fixed camera for rendering two-hand motion in the canonical frame (reference §1.2).

The camera stands behind and above the subject and looks forward (+y) and down, so the subject's left hand
(−x) appears on the left of the image, the fingers (which point +y in tabletop capture) reach up the image,
and flexion shows as fingers curling towards the viewer. ``elevation`` tilts the view down from horizontal;
``azimuth`` turns the camera about +z (positive: towards the subject's right) for a 3/4 view.

:meth:`Camera.fit` frames *every* frame of a clip (or of several clips, one camera each with a shared scale) with
a margin, so both hands stay in frame for the whole clip. Projection is pure, vectorised numpy.

Camera coordinates: ``right`` (image +u), ``up`` (image −v) and ``forward`` (depth). Perspective projection
divides by depth measured from the camera, which stands ``distance`` in front of the fitted centre; ``focal``
is pixels per metre at the centre's depth (orthographic: everywhere).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

#: Camera distance as a multiple of the largest scene radius (mild perspective).
DISTANCE_FACTOR = 3.0
MIN_RADIUS = 0.05  # metres: a still, tiny scene is still framed at a readable size


def view_rotation(elevation: float, azimuth: float) -> np.ndarray:
    """Rows ``right, up, forward`` ``(3, 3)`` of a camera looking along +y turned by ``azimuth`` degrees about +z
    and tilted down by ``elevation`` degrees."""
    el, az = math.radians(elevation), math.radians(azimuth)
    forward = np.array([math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), -math.sin(el)])
    right = np.array([math.cos(az), -math.sin(az), 0.0])  # forward × z, normalised
    up = np.cross(right, forward)
    return np.stack([right, up, forward])


@dataclasses.dataclass(frozen=True)
class Camera:
    """A pinhole (or orthographic) camera for an image of ``width`` × ``height`` pixels.

    Attributes:
        rotation: ``(3, 3)`` rows right, up, forward (world → camera).
        centre: ``(3,)`` world point the camera looks at (metres).
        distance: metres from the camera to ``centre`` along ``forward``.
        focal: pixels per metre at the depth of ``centre``.
        principal: ``(2,)`` pixel position of a point on the viewing axis.
        width, height: image size in pixels.
        perspective: False for an orthographic projection.
    """

    rotation: np.ndarray
    centre: np.ndarray
    distance: float
    focal: float
    principal: np.ndarray
    width: int
    height: int
    perspective: bool = True

    def camera_coordinates(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` → camera coordinates ``(..., 3)`` (right, up, depth from the camera)."""
        q = (np.asarray(points, dtype=np.float64) - self.centre) @ self.rotation.T  # (..., 3)
        q[..., 2] += self.distance
        return q

    def _normalised(self, q: np.ndarray) -> np.ndarray:
        """Camera coordinates ``(..., 3)`` → image-plane metres at the centre's depth ``(..., 2)``."""
        if not self.perspective:
            return q[..., :2]
        return q[..., :2] * (self.distance / np.maximum(q[..., 2:3], 1e-6))

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` → pixel coordinates ``(..., 2)`` (u right, v down)."""
        ab = self._normalised(self.camera_coordinates(points))  # (..., 2)
        return np.stack([self.principal[0] + self.focal * ab[..., 0],
                         self.principal[1] - self.focal * ab[..., 1]], axis=-1)

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance along the viewing axis ``(...)``: larger is farther."""
        return self.camera_coordinates(points)[..., 2]

    def scale(self, points: np.ndarray) -> np.ndarray:
        """Apparent size factor of each point ``(...)`` (1 at the centre's depth; 1 everywhere when orthographic)."""
        if not self.perspective:
            return np.ones(np.shape(points)[:-1])
        return self.distance / np.maximum(self.depth(points), 1e-6)

    def scaled(self, factor: int) -> "Camera":
        """The same view for an image ``factor`` times larger (supersampling)."""
        return dataclasses.replace(self, focal=self.focal * factor, principal=self.principal * factor,
                                   width=self.width * factor, height=self.height * factor)

    @classmethod
    def fit(cls, points: np.ndarray, width: int, height: int, **kwargs) -> "Camera":
        """One camera framing all ``points`` ``(..., 3)`` (e.g. a whole clip ``(T, 2, 21, 3)``); keyword arguments
        as :meth:`fit_many`."""
        return cls.fit_many([points], width, height, **kwargs)[0]

    @classmethod
    def fit_many(cls, point_sets: Sequence[np.ndarray], width: int, height: int, *, elevation: float = 30.0,
                 azimuth: float = 0.0, margin: float = 0.06, perspective: bool = True) -> list["Camera"]:
        """One camera per point set, each centred on its own set, all with the same distance and scale.

        Every point of every set projects inside the image, at least ``margin`` × the image size from its
        border. Sets are e.g. whole clips ``(T, 2, 21, 3)``; non-finite points are ignored.
        """
        if width < 8 or height < 8:
            raise ValueError(f"camera image must be at least 8×8 pixels, got {width}×{height}")
        if not 0 <= margin < 0.5:
            raise ValueError(f"margin must be in [0, 0.5), got {margin}")
        rotation = view_rotation(elevation, azimuth)
        flat = []
        for points in point_sets:
            p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
            p = p[np.isfinite(p).all(axis=1)]
            if len(p) == 0:
                raise ValueError("cannot frame a clip without finite joints")
            flat.append(p)  # (N, 3)
        centres = [(p.min(axis=0) + p.max(axis=0)) / 2 for p in flat]
        radius = max(max(np.linalg.norm(p - c, axis=1).max() for p, c in zip(flat, centres)), MIN_RADIUS)
        distance = DISTANCE_FACTOR * radius
        cams = [cls(rotation, c, distance, 1.0, np.zeros(2), width, height, perspective) for c in centres]
        bounds = []
        for cam, p in zip(cams, flat):
            ab = cam._normalised(cam.camera_coordinates(p))  # (N, 2)
            bounds.append((ab.min(axis=0), ab.max(axis=0)))
        usable = np.array([width, height], dtype=np.float64) * (1 - 2 * margin)
        extent = np.maximum(np.max([hi - lo for lo, hi in bounds], axis=0), MIN_RADIUS)  # (2,) metres
        focal = float(np.min(usable / extent))
        out = []
        for cam, (lo, hi) in zip(cams, bounds):
            mid = (lo + hi) / 2
            principal = np.array([width / 2 - focal * mid[0], height / 2 + focal * mid[1]])
            out.append(dataclasses.replace(cam, focal=focal, principal=principal))
        return out

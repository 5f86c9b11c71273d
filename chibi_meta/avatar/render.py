"""Headless PNG renders of any skinned glTF / VRM avatar (pyrender over EGL, CPU skinning).

* :func:`render_views`: turntable views (``front``, ``three_quarter``, ``side``, ``back``: the camera
  at yaw 0 / 45 / 90 / 180 degrees around the avatar, yaw measured from +Z toward +X, the avatar's
  left, so ``side`` shows its left side) and posed views (any name of
  ``chibi_meta.avatar.poses.pose_names()``, seen from ``pose_view``), perspective, soft
  three-point lighting, textured, alpha ``MASK`` honoured (pyrender's shaders do not cut masks, so
  this module patches the two it uses), 4x MSAA.
* :func:`render_front_unlit`: orthographic, unlit (the texture's own colours), transparent
  background, framing a world-space XY box exactly (pixel column j spans
  ``x0 + [j, j+1] (x1 - x0) / W``, row i spans ``y1 - [i, i+1] (y1 - y0) / H``), of the rest pose,
  optionally only some mesh nodes: what the 3D fidelity metric compares with the 2D texture.

pyrender and PyOpenGL are an optional dependency (``pip install 'chibi-meta[render]'``, plus the
EGL/Mesa libraries ``libegl1 libgl1-mesa-dri``); ``PYOPENGL_PLATFORM=egl`` is set when a
:class:`Renderer` starts, never at import time. Reuse one :class:`Renderer` for many images: its
GL context, shaders and uploaded textures are kept between calls; the module-level functions
share one per process (:func:`shared_renderer`).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chibi_meta.avatar.poses import Pose, get_poses, pose_names
from chibi_meta.avatar.skinning import Avatar, Part
from chibi_meta.errors import MissingDependency, UsageError

log = logging.getLogger(__name__)

VIEWS: dict[str, float] = {"front": 0.0, "three_quarter": 45.0, "side": 90.0, "back": 180.0}
MIN_SIZE, MAX_SIZE = 16, 4096
DEFAULT_SIZE = 512
THUMBNAIL_SIZE = 256
BACKGROUND = (0.93, 0.94, 0.96, 1.0)
FOV_DEG = 30.0
_INSTALL = ("pip install 'chibi-meta[render]' (pyrender, PyOpenGL) and the EGL/Mesa libraries "
            "(Debian/Ubuntu: apt-get install libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri)")  # fmt: skip
# (direction the light shines from, in camera coordinates: +x right, +y up, +z toward the viewer; intensity)
_LIGHTS = (((-0.5, 0.7, 1.0), 2.6), ((0.8, 0.1, 0.6), 1.1), ((0.0, 0.6, -1.0), 1.6))
_AMBIENT = 0.45
# MASK materials reach the patched shaders as base-colour alpha 2 + cutoff (a value no real material has)
_MASK_OFFSET = 2.0
_MASK_INIT = ("    float chibi_cutoff = -1.0;\n    if (base_color.a > 1.5) { chibi_cutoff = base_color.a - 2.0; "
              "base_color.a = 1.0; }\n")  # fmt: skip
_MASK_TEST = "    if (chibi_cutoff >= 0.0) { if (base_color.a < chibi_cutoff) discard; base_color.a = 1.0; }\n"
_INIT = "vec4 base_color = material.base_color_factor;\n"
_TEX = {
    "mesh.frag": "base_color = base_color * srgb_to_linear(texture(material.base_color_texture, uv_0));\n#endif\n",
    "flat.frag": "base_color = base_color * texture(material.base_color_texture, uv_0);\n#endif\n",
}
# (file, text, replacement): each text must occur once. Centroid UVs: with MSAA an edge pixel's shader
# runs inside the triangle, so a UV past the edge cannot wrap round the texture (a seam line on cut-outs).
_PATCHES = [
    *((f, _INIT, _INIT + _MASK_INIT) for f in _TEX),
    *((f, t, t + _MASK_TEST) for f, t in _TEX.items()),
    *((f, "in vec2 uv_0;\n", "centroid in vec2 uv_0;\n") for f in _TEX),
    *((f, "out vec2 uv_0;\n", "centroid out vec2 uv_0;\n") for f in ("mesh.vert", "flat.vert")),
]


def check_size(size: object) -> int:
    """A render size in pixels: an integer in [MIN_SIZE, MAX_SIZE], else UsageError."""
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(f"size must be an integer in [{MIN_SIZE}, {MAX_SIZE}] pixels, got {size!r}")
    return size


def check_views(views: Iterable[str]) -> list[str]:
    views = list(views)
    bad = [v for v in views if v not in VIEWS]
    if bad or not views:
        raise UsageError(f"unknown view {bad[0] if bad else '(none)'!r}; allowed: {', '.join(VIEWS)}")
    return views


def check_poses(poses: Iterable[str]) -> list[str]:
    poses = list(poses)
    bad = [p for p in poses if p not in pose_names()]
    if bad:
        raise UsageError(f"unknown pose {bad[0]!r}; allowed: {', '.join(pose_names())}, or all")
    return poses


def _as_avatar(glb: bytes | Avatar) -> Avatar:
    return glb if isinstance(glb, Avatar) else Avatar(glb)


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    z = eye - target
    z /= np.linalg.norm(z)
    x = np.cross((0.0, 1.0, 0.0), z)
    x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-9 else np.array([1.0, 0.0, 0.0])
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, np.cross(z, x), z, eye
    return m


def _unpremultiply(rgba: np.ndarray) -> np.ndarray:
    a = rgba[..., 3:4].astype(np.float32)
    rgb = np.where(a > 0, rgba[..., :3] * (255.0 / np.maximum(a, 1)), 0)
    return np.concatenate([np.clip(rgb + 0.5, 0, 255).astype(np.uint8), rgba[..., 3:4]], axis=-1)


class Renderer:
    """An offscreen EGL context with pyrender, reused across images (``with Renderer() as r: ...``)."""

    def __init__(self) -> None:
        self._gl: Any = None
        self._shader_dir: str | None = None
        self._pyrender: Any = None
        self._materials: dict[int, object] = {}  # id(Material) -> pyrender material, for self._avatar only
        self._avatar: Avatar | None = None  # held, so that the ids of its materials cannot be reused
        self._mask = False  # the shaders are patched to cut alpha MASK

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Renderer:
        """Open the GL context now (a missing dependency fails here, before any work); returns self."""
        self._context(MIN_SIZE, MIN_SIZE)
        return self

    def close(self) -> None:
        """Free the GL context (idempotent)."""
        if self._gl is not None:
            try:
                _delete(self._gl)
            except Exception as e:  # noqa: BLE001 - freeing a dying context must not mask the real error
                log.debug("freeing the GL context failed: %s", e)
            self._gl = None
        if self._shader_dir:
            shutil.rmtree(self._shader_dir, ignore_errors=True)
            self._shader_dir = None
        self._materials.clear()
        self._avatar = None

    # --- setup ---
    def _import(self) -> object:
        if self._pyrender is None:
            if os.environ.get("PYOPENGL_PLATFORM") not in ("egl", "osmesa"):
                if "OpenGL" in sys.modules:
                    log.warning("PyOpenGL was imported before the renderer; PYOPENGL_PLATFORM=egl may not apply")
                os.environ["PYOPENGL_PLATFORM"] = "egl"
            logging.getLogger("OpenGL").setLevel(logging.WARNING)  # it logs at INFO that it is not accelerated
            try:
                import pyrender
            except ImportError as e:
                raise MissingDependency(f"rendering needs pyrender ({e}); {_INSTALL}") from None
            self._pyrender = pyrender
        return self._pyrender

    def _context(self, width: int, height: int) -> object:
        pr = self._import()
        if self._gl is None:
            try:
                self._gl = pr.OffscreenRenderer(width, height)
            except Exception as e:  # noqa: BLE001 - EGL/GL failures come as many exception types
                raise MissingDependency(f"cannot open a headless OpenGL (EGL) context: {e}; {_INSTALL}") from None
            self._patch_shaders()
            _release(self._gl)  # created current in this thread; the next draw may come from another
        self._gl.viewport_width, self._gl.viewport_height = width, height
        return self._gl

    def _patch_shaders(self) -> None:
        """Copy pyrender's shaders: the alpha-MASK test in the two that draw materials, centroid UVs."""
        pr = self._pyrender
        src = Path(pr.__file__).parent / "shaders"
        self._shader_dir = tempfile.mkdtemp(prefix="chibi-shaders-")
        shutil.copytree(src, self._shader_dir, dirs_exist_ok=True)
        texts = {f: (Path(self._shader_dir) / f).read_text() for f in {f for f, _, _ in _PATCHES}}
        for f, old, new in _PATCHES:
            if texts[f].count(old) != 1:
                log.warning("this pyrender's shaders are not the ones chibi_meta patches; alpha MASK is drawn opaque")
                return
            texts[f] = texts[f].replace(old, new)
        for f, text in texts.items():
            (Path(self._shader_dir) / f).write_text(text)
        from pyrender.shader_program import ShaderProgramCache

        self._gl._renderer._program_cache = ShaderProgramCache(shader_dir=self._shader_dir)
        self._mask = True

    # --- scene building ---
    def _material(self, part: Part) -> object | None:
        m = part.material
        key = id(m)
        if key in self._materials:
            return self._materials[key]
        if self._gl is None:  # the context patches the shaders, and MASK materials depend on that
            self.start()
        pr = self._pyrender
        factor = np.asarray(m.base_color, dtype=np.float32)
        image, tex, mode = m.image, None, m.alpha_mode.upper()
        if mode == "MASK" and self._mask:
            if image is None and factor[3] < m.alpha_cutoff:
                self._materials[key] = None  # the whole primitive is cut away
                return None
            if image is not None and factor[3] != 1.0:
                image = image.copy()
                image[..., 3] = np.clip(image[..., 3] * factor[3], 0, 255).astype(np.uint8)
            factor[3] = _MASK_OFFSET + float(np.clip(m.alpha_cutoff, 0.0, 1.0))
        elif mode != "BLEND":
            mode, factor[3] = "OPAQUE", 1.0
        if image is not None:
            channels = "RGB" if mode == "OPAQUE" else "RGBA"
            img = np.ascontiguousarray(image[..., :3] if channels == "RGB" else image)
            s = {k: m.sampler[k] for k in ("magFilter", "minFilter", "wrapS", "wrapT") if k in m.sampler}
            tex = pr.Texture(source=img, source_channels=channels, sampler=pr.Sampler(**s))
        mat = pr.MetallicRoughnessMaterial(
            name=m.name or None,
            baseColorFactor=factor,
            baseColorTexture=tex,
            metallicFactor=float(np.clip(m.metallic, 0, 1)),
            roughnessFactor=float(np.clip(m.roughness, 0, 1)),
            alphaMode=mode,
            alphaCutoff=float(m.alpha_cutoff),
            doubleSided=bool(m.double_sided),
        )
        self._materials[key] = mat
        return mat

    def _use(self, avatar: Avatar) -> None:
        """Keep the pyrender materials (uploaded textures) while the same avatar is drawn again."""
        if avatar is not self._avatar:
            self._materials.clear()
            self._avatar = avatar

    def _scene(self, parts: Sequence[Part], background: Sequence[float], ambient: float) -> object:
        """One pyrender mesh holding every part in file order (blended parts last): pyrender orders its
        nodes through a set, so separate nodes would make coincident surfaces z-fight differently per run."""
        pr = self._pyrender
        scene = pr.Scene(bg_color=np.asarray(background, np.float32), ambient_light=np.full(3, ambient))
        prims = []
        for part in sorted(parts, key=lambda p: p.material.alpha_mode.upper() == "BLEND"):
            mat = self._material(part)
            if mat is None or len(part.indices) == 0:
                continue
            uv = None
            if part.uvs is not None and part.material.image is not None:
                uv = np.column_stack([part.uvs[:, 0], 1.0 - part.uvs[:, 1]])  # glTF UV origin is top-left
            prims.append(pr.Primitive(
                positions=part.positions, normals=part.normals, texcoord_0=uv, color_0=part.colors,
                indices=part.indices, material=mat, mode=4,
            ))  # fmt: skip
        if prims:
            scene.add(pr.Mesh(primitives=prims))
        return scene

    def _draw(self, scene: object, width: int, height: int, flags: int) -> np.ndarray:
        gl = self._context(width, height)
        try:
            color, _ = gl.render(scene, flags=flags | self._pyrender.RenderFlags.RGBA)
        finally:
            _release(gl)
        return np.ascontiguousarray(color)

    # --- public ---
    def render_views(
        self,
        glb: bytes | Avatar,
        views: Iterable[str] = tuple(VIEWS),
        poses: Iterable[str] = (),
        *,
        size: int = DEFAULT_SIZE,
        pose_view: str = "three_quarter",
        background: Sequence[float] = BACKGROUND,
        morphs: Mapping[str, float] | None = None,
    ) -> dict[str, np.ndarray]:
        """Lit RGBA uint8 images (size, size, 4): one per view (rest pose), then one per pose name."""
        size = check_size(size)
        views, poses = check_views(views) if views else [], check_poses(poses)
        check_views([pose_view])
        avatar = _as_avatar(glb)
        self._use(avatar)
        out: dict[str, np.ndarray] = {}
        if views:
            out.update(self._render_pose(avatar, None, views, size, background, morphs))
        for name, pose in get_poses(poses).items():
            out[name] = self._render_pose(avatar, pose, [pose_view], size, background, morphs)[pose_view]
        return out

    def _render_pose(
        self,
        avatar: Avatar,
        pose: Pose | None,
        views: list[str],
        size: int,
        background: Sequence[float],
        morphs: Mapping[str, float] | None,
    ) -> dict[str, np.ndarray]:
        self._import()
        t0 = time.perf_counter()
        parts = [p for ps in avatar.skin(pose, morphs).values() for p in ps]
        pts = np.concatenate([p.positions for p in parts]) if parts else np.zeros((0, 3))
        if len(pts) == 0:
            from chibi_meta.errors import MeshError

            raise MeshError("the file has no mesh to draw")
        lo, hi = pts.min(0).astype(np.float64), pts.max(0).astype(np.float64)
        centre = (lo + hi) / 2
        radius = float(np.sqrt(((pts[:, [0, 2]] - centre[[0, 2]]) ** 2).sum(1)).max())
        half_h = float(hi[1] - lo[1]) / 2
        tan = math.tan(math.radians(FOV_DEG) / 2)
        dist = max(radius, half_h) * 1.06 / tan + radius
        pr = self._pyrender
        scene = self._scene(parts, background, _AMBIENT)
        near, far = max(dist - 3 * radius - half_h, 0.01), dist + 3 * radius + 1
        cam = scene.add(pr.PerspectiveCamera(yfov=math.radians(FOV_DEG), aspectRatio=1.0, znear=near, zfar=far))
        lights = [(scene.add(pr.DirectionalLight(color=np.ones(3), intensity=k)), np.asarray(d, float))
                  for d, k in _LIGHTS]  # fmt: skip
        out = {}
        for view in views:
            yaw = math.radians(VIEWS[view])
            eye = centre + dist * np.array([math.sin(yaw), 0.0, math.cos(yaw)])
            cpose = _look_at(eye, centre)
            scene.set_pose(cam, cpose)
            for node, d in lights:
                back = cpose[:3, :3] @ (d / np.linalg.norm(d))  # light shines along -back
                scene.set_pose(node, _look_at(centre + back, centre))
            img = self._draw(scene, size, size, 0)
            out[view] = img if background[3] >= 1 else _unpremultiply(img)
        log.debug("rendered %d views in %.3f s", len(views), time.perf_counter() - t0)
        return out

    def render_front_unlit(
        self,
        glb: bytes | Avatar,
        size: int | tuple[int, int],
        box: Sequence[float],
        nodes: Iterable[str] | None = None,
        morphs: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """Orthographic unlit front view of the rest pose framing ``box`` = (x0, y0, x1, y1) in metres.

        Returns straight-alpha RGBA uint8 (H, W, 4) on a transparent background; ``size`` is an int
        (square) or (width, height); ``nodes`` limits the drawing to those mesh nodes (e.g. the head);
        ``morphs`` sets morph-target weights by name (others keep the file's default weights).
        """
        w, h = (size, size) if isinstance(size, int) and not isinstance(size, bool) else tuple(size)
        check_size(w)
        check_size(h)
        try:
            x0, y0, x1, y1 = (float(v) for v in box)
        except (TypeError, ValueError):
            raise UsageError(f"box must be 4 numbers (x0, y0, x1, y1), got {box!r}") from None
        if not all(map(math.isfinite, (x0, y0, x1, y1))) or x1 <= x0 or y1 <= y0:
            raise UsageError(f"box must be finite with x1 > x0 and y1 > y0, got {tuple(box)!r}")
        avatar = _as_avatar(glb)
        self._use(avatar)
        pr = self._import()
        parts = [p for ps in avatar.skin(None, morphs, nodes=nodes).values() for p in ps]
        zs = np.concatenate([p.positions[:, 2] for p in parts]) if parts else np.zeros(1)
        zmin, zmax = float(zs.min()), float(zs.max())
        scene = self._scene(parts, (0.0, 0.0, 0.0, 0.0), 0.0)
        cam = pr.OrthographicCamera(xmag=(x1 - x0) / 2, ymag=(y1 - y0) / 2, znear=0.01, zfar=zmax - zmin + 1.02)
        pose = np.eye(4)
        pose[:3, 3] = ((x0 + x1) / 2, (y0 + y1) / 2, zmax + 1.0)
        scene.add(cam, pose=pose)
        return _unpremultiply(self._draw(scene, w, h, pr.RenderFlags.FLAT))


_shared: Renderer | None = None
_shared_lock = threading.Lock()


def _release(gl: object) -> None:
    """Make a pyrender EGL context current in no thread: a context current in one thread cannot be
    made current in another (EGL_BAD_ACCESS), and the shared renderer serves whichever thread asks
    (pyrender's own ``make_uncurrent`` does nothing on EGL)."""
    display = getattr(getattr(gl, "_platform", None), "_egl_display", None)
    if display is not None:
        from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglMakeCurrent

        eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)


def _delete(gl: object) -> None:
    """Free a pyrender offscreen context without ``eglTerminate``: the EGL display is one per device
    and process, so pyrender's own ``delete`` would break every other renderer's context too."""
    platform = getattr(gl, "_platform", None)
    display, context = getattr(platform, "_egl_display", None), getattr(platform, "_egl_context", None)
    if display is None or context is None:
        gl.delete()  # type: ignore[attr-defined]
        return
    from OpenGL.EGL import eglDestroyContext

    platform.make_current()  # type: ignore[union-attr]
    gl._renderer.delete()  # type: ignore[attr-defined]
    _release(gl)
    eglDestroyContext(display, context)
    # and pyrender's __del__ (which would eglTerminate the display) finds nothing left to free
    platform._egl_context = platform._egl_display = None  # type: ignore[union-attr]


def shared_renderer() -> Renderer:
    """One process-wide renderer for the module-level functions (its GL context starts once; closed at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Renderer()
            atexit.register(_shared.close)
        return _shared


def render_views(glb: bytes | Avatar, views: Iterable[str] = tuple(VIEWS), poses: Iterable[str] = (),
                 **kw: object) -> dict[str, np.ndarray]:  # fmt: skip
    """:meth:`Renderer.render_views` on the shared renderer."""
    r = shared_renderer()
    with _shared_lock:
        return r.render_views(glb, views, poses, **kw)  # type: ignore[arg-type]


def render_front_unlit(glb: bytes | Avatar, size: int | tuple[int, int], box: Sequence[float],
                       nodes: Iterable[str] | None = None,
                       morphs: Mapping[str, float] | None = None) -> np.ndarray:  # fmt: skip
    """:meth:`Renderer.render_front_unlit` on the shared renderer."""
    r = shared_renderer()
    with _shared_lock:
        return r.render_front_unlit(glb, size, box, nodes, morphs)


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGBA/RGB uint8 image as PNG atomically (opaque RGBA is stored RGB)."""
    from chibi_meta.atomic import atomic_write_bytes
    from chibi_meta.avatar.png import encode_png

    img = image[..., :3] if image.shape[-1] == 4 and (image[..., 3] == 255).all() else image
    atomic_write_bytes(path, encode_png(np.ascontiguousarray(img), level=6))


def thumbnail_path(path: str | os.PathLike) -> Path:
    """Where ``export --thumbnails`` puts the front view of an exported file: beside it, ``.png``."""
    return Path(path).with_suffix(".png")


def write_thumbnail(renderer: Renderer, data: bytes, path: str | os.PathLike, size: int = THUMBNAIL_SIZE) -> Path:
    """Render the front view of the avatar ``data`` and write it beside ``path`` (atomically)."""
    out = thumbnail_path(path)
    write_png(out, renderer.render_views(data, ["front"], size=size)["front"])
    return out

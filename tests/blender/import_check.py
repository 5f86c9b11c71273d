"""Import glTF files with Blender's own glTF importer and write what it made as JSON.

Runs inside Blender, headless (no display needed)::

    blender -b --factory-startup --python-exit-code 1 --python tests/blender/import_check.py -- \
        --out report.json a.glb b.vrm ...

or with the PyPI ``bpy`` module: ``python tests/blender/import_check.py --out report.json a.glb ...``.

Each file is imported into an empty scene with ``bpy.ops.import_scene.gltf`` (default options).
The report has, per file: whether the import finished, the importer's error and the warnings and
errors it printed, the objects, each armature with its bone names (in Blender's order) and parents,
each mesh with its shape keys (``key_blocks`` minus the reference key "Basis"), vertex groups,
parent and armature modifiers, and the images. A file that fails to import is reported, not
raised: the script itself exits non-zero only when it is broken.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import tempfile
import time
import traceback

import bpy

_LIBC = ctypes.CDLL(None)


def _args(argv: list[str]) -> argparse.Namespace:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    else:  # python import_check.py ... (the bpy module)
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="import_check.py")
    p.add_argument("--out", required=True, help="where to write the JSON report")
    p.add_argument("files", nargs="+")
    return p.parse_args(argv)


class _Capture:
    """Capture everything written to fds 1 and 2 (Python and C: Blender prints its reports in C)."""

    def __enter__(self) -> _Capture:
        sys.stdout.flush()
        sys.stderr.flush()
        _LIBC.fflush(None)
        self._tmp = tempfile.TemporaryFile(mode="w+b")
        self._saved = [os.dup(1), os.dup(2)]
        os.dup2(self._tmp.fileno(), 1)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        _LIBC.fflush(None)
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        self._tmp.seek(0)
        self.text = self._tmp.read().decode("utf-8", "replace")
        self._tmp.close()


def _numpy_compat() -> bool:
    """Let Blender < 3.5's glTF importer run with numpy >= 1.24 (Debian 12 ships Blender 3.4.1 with numpy 1.24).

    That importer uses ``np.bool`` (in ``set_poly_smoothing``), an alias of the builtin ``bool`` that
    numpy deprecated in 1.20 and removed in 1.24, so every mesh import fails with AttributeError.
    Upstream fixed it in 3.5 and did not backport it (glTF-Blender-IO issues 1844 and 1885);
    Blender's own 3.4 builds bundle numpy 1.23, where the alias still exists. Restoring the alias
    gives exactly that behaviour. Returns whether it was restored.
    """
    import numpy as np

    if bpy.app.version >= (3, 5, 0) or "bool" in np.__dict__:
        return False
    np.bool = bool
    return True


def _empty_scene() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _gltf_addon_version() -> list[int] | None:
    import addon_utils

    for mod in addon_utils.modules():
        if mod.__name__ == "io_scene_gltf2":
            return list(mod.bl_info.get("version", ()))
    return None


def _armature(obj: bpy.types.Object) -> dict:
    bones = obj.data.bones
    return {
        "name": obj.name,
        "data": obj.data.name,
        "parent": obj.parent.name if obj.parent else None,
        "bones": [b.name for b in bones],
        "bone_parents": {b.name: (b.parent.name if b.parent else None) for b in bones},
        # Blender >= 4.2 draws bones with a helper mesh (an icosphere in a hidden collection)
        "bone_custom_shapes": sorted({pb.custom_shape.name for pb in obj.pose.bones if pb.custom_shape}),
    }


def _mesh(obj: bpy.types.Object) -> dict:
    me = obj.data
    keys = me.shape_keys
    ref = keys.reference_key.name if keys else None
    blocks = [k.name for k in keys.key_blocks] if keys else []
    return {
        "name": obj.name,
        "data": me.name,
        "vertices": len(me.vertices),
        "parent": obj.parent.name if obj.parent else None,
        "parent_type": obj.parent_type,
        "parent_bone": obj.parent_bone or None,
        "armature_modifiers": [m.object.name if m.object else None for m in obj.modifiers if m.type == "ARMATURE"],
        "modifiers": [m.type for m in obj.modifiers],
        "vertex_groups": len(obj.vertex_groups),
        "vertex_group_names": [g.name for g in obj.vertex_groups],
        "reference_key": ref,
        "key_blocks": blocks,
        "shape_keys": [n for n in blocks if n != ref],
        "materials": [m.name for m in me.materials if m],
    }


def _problems(log: str) -> tuple[list[str], list[str]]:
    """Warning and error lines the importer (Python logging or Blender reports) printed."""
    warnings, errors = [], []
    for line in log.splitlines():
        s = line.strip()
        low = s.lower()
        if low.startswith(("error", "critical")) or "| error" in low or ": error:" in low or "traceback" in low:
            errors.append(s)
        elif low.startswith("warning") or "| warning" in low or ": warning:" in low:
            warnings.append(s)
    return warnings, errors


def check_file(path: str) -> dict:
    _empty_scene()
    rep: dict = {"file": path, "ok": False, "error": None}
    t0 = time.perf_counter()
    with _Capture() as cap:
        try:
            result = bpy.ops.import_scene.gltf(filepath=path)
            rep["result"] = sorted(result)
            rep["ok"] = "FINISHED" in result
        except Exception as e:  # noqa: BLE001 - an operator's ERROR report is a RuntimeError
            rep["error"] = str(e).strip()
            rep["exception"] = type(e).__name__
    rep["seconds"] = round(time.perf_counter() - t0, 3)
    rep["log"] = cap.text.splitlines()
    rep["warnings"], rep["errors"] = _problems(cap.text)
    objs = list(bpy.context.scene.objects)
    rep["objects"] = [
        {"name": o.name, "type": o.type, "parent": o.parent.name if o.parent else None,
         "collections": [c.name for c in o.users_collection]}
        for o in objs
    ]  # fmt: skip
    rep["armatures"] = [_armature(o) for o in objs if o.type == "ARMATURE"]
    rep["meshes"] = [_mesh(o) for o in objs if o.type == "MESH"]
    rep["images"] = [
        {"name": im.name, "size": list(im.size), "file_format": im.file_format, "has_data": bool(im.has_data)}
        for im in bpy.data.images
    ]
    return rep


def main() -> int:
    a = _args(sys.argv)
    t0 = time.perf_counter()
    report = {
        "blender": bpy.app.version_string,
        "blender_version": list(bpy.app.version),
        "gltf_addon": _gltf_addon_version(),
        "background": bool(bpy.app.background),
        "display": os.environ.get("DISPLAY"),
        "numpy_bool_alias_restored": _numpy_compat(),
        "files": [],
    }
    for f in a.files:
        try:
            report["files"].append(check_file(os.path.abspath(f)))
        except Exception:  # noqa: BLE001 - report it; the test fails on it with the traceback
            report["files"].append({"file": os.path.abspath(f), "ok": False, "error": traceback.format_exc()})
    report["seconds"] = round(time.perf_counter() - t0, 3)
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1, sort_keys=True)
    os.replace(tmp, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Deformation check of a skinned avatar over a pose set: triangle area change and head-body contact.

For each pose, :func:`deformation_report` skins the avatar (``chibi_meta.avatar.skinning``) and
compares every triangle of every mesh with the rest pose: the share of triangles whose area
ratio posed / rest lies within ``[RATIO_LO, RATIO_HI]`` (triangles whose rest area is below
``DEGENERATE_AREA`` m^2 are left out and counted), and the worst ones. When the avatar has a
head mesh node (``AvatarHead``) and a body mesh node (``AvatarBody``), it also counts the head
vertices that are inside the posed body: ``trimesh`` ``contains`` when the (vertex-merged) body is
watertight, else its signed distance (positive inside) past ``INSIDE_TOLERANCE`` metres.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import numpy as np

from chibi_meta.avatar.poses import Pose, pose_set
from chibi_meta.avatar.skinning import Avatar, Part
from chibi_meta.errors import MissingDependency

log = logging.getLogger(__name__)

RATIO_LO, RATIO_HI = 0.5, 2.0
DEGENERATE_AREA = 1e-10  # m^2 (a triangle of 10 um sides); such rest triangles are left out
INSIDE_TOLERANCE = 1e-4  # m: a head vertex counts as inside the body past this depth (signed distance)
HEAD_NODE, BODY_NODE = "AvatarHead", "AvatarBody"
WORST = 10


def _areas(parts: list[Part]) -> np.ndarray:
    out = []
    for p in parts:
        t = p.positions.astype(np.float64)[p.indices]
        out.append(0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1))
    return np.concatenate(out) if out else np.zeros(0)


def _trimesh() -> object:
    try:
        import trimesh
    except ImportError as e:
        raise MissingDependency(f"the head/body check needs trimesh ({e}): pip install 'chibi-meta[render]'") from None
    return trimesh


def _body_mesh(parts: list[Part]) -> object:
    trimesh = _trimesh()
    verts, faces, off = [], [], 0
    for p in parts:
        verts.append(p.positions.astype(np.float64))
        faces.append(p.indices.astype(np.int64) + off)
        off += len(p.positions)
    mesh = trimesh.Trimesh(np.concatenate(verts), np.concatenate(faces), process=False)  # type: ignore[attr-defined]
    mesh.merge_vertices(merge_tex=True, merge_norm=True)  # UV / normal seams split vertices; join by position
    return mesh


def head_inside_body(points: np.ndarray, body: list[Part]) -> tuple[np.ndarray, str, float]:
    """(which points are inside the body, method "contains" or "signed_distance", deepest depth in m)."""
    mesh = _body_mesh(body)
    pts = np.asarray(points, dtype=np.float64)
    from trimesh.proximity import signed_distance

    if mesh.is_watertight:  # type: ignore[attr-defined]
        inside = np.asarray(mesh.contains(pts), bool)  # type: ignore[attr-defined]
        depth = float(signed_distance(mesh, pts[inside]).max()) if inside.any() else 0.0
        return inside, "contains", max(depth, 0.0)
    sd = signed_distance(mesh, pts)
    return sd > INSIDE_TOLERANCE, "signed_distance", float(max(sd.max(), 0.0))


def _head_points(parts: list[Part], keep: np.ndarray) -> np.ndarray:
    return np.concatenate([p.positions.astype(np.float64) for p in parts])[keep]


def deformation_report(glb_bytes: bytes | Avatar, poses: Mapping[str, Pose] | None = None) -> dict:
    """Per pose: the share of triangles with area ratio in [0.5, 2], the worst ones, head vertices in the body.

    Returns ``{"triangles", "degenerate", "meshes", "head_check", "poses": {name: {...}}}`` where each
    pose has ``within`` (share of the non-degenerate triangles), ``outside`` (their count),
    ``min_ratio``, ``max_ratio``, ``worst`` (up to 10: node, triangle, rest area, ratio),
    ``head_inside`` (head vertices inside the posed body, or None without separate head and body
    meshes), ``head_entered`` (of those, the ones that were not inside at rest), ``head_method``,
    ``head_depth`` (deepest inside, m) and ``seconds``; ``head_inside_rest`` counts them at rest.
    Head vertices are counted once per position (seams split them in the file).
    """
    avatar = glb_bytes if isinstance(glb_bytes, Avatar) else Avatar(glb_bytes)
    poses = pose_set() if poses is None else poses
    rest = avatar.skin(None)
    order = list(rest)
    rest_parts = [p for k in order for p in rest[k]]
    labels = np.concatenate([np.full(len(p.indices), k, dtype=object) for k in order for p in rest[k]] or [[]])
    tri_ids = np.concatenate([np.arange(len(p.indices)) for p in rest_parts] or [[]]).astype(np.int64)
    a0 = _areas(rest_parts)
    ok = a0 > DEGENERATE_AREA
    head_check = HEAD_NODE in rest and BODY_NODE in rest
    report: dict = {
        "triangles": int(len(a0)),
        "degenerate": int((~ok).sum()),
        "meshes": {k: int(sum(len(p.indices) for p in rest[k])) for k in order},
        "head_check": head_check,
        "head_inside_rest": None,
        "poses": {},
    }
    if head_check:
        rest_head = np.concatenate([p.positions.astype(np.float64) for p in rest[HEAD_NODE]])
        _, keep = np.unique(rest_head, axis=0, return_index=True)
        keep = np.sort(keep)
        rest_inside, _, _ = head_inside_body(rest_head[keep], rest[BODY_NODE])
        report["head_inside_rest"] = int(rest_inside.sum())
    if not head_check:
        log.info("no %s and %s mesh nodes (mesh nodes: %s): the head/body check is skipped",
                 HEAD_NODE, BODY_NODE, ", ".join(order))  # fmt: skip
    for name, pose in poses.items():
        t0 = time.perf_counter()
        posed = avatar.skin(pose)
        ratio = _areas([p for k in order for p in posed[k]])[ok] / a0[ok]
        within = (ratio >= RATIO_LO) & (ratio <= RATIO_HI)
        bad = np.abs(np.log(np.maximum(ratio, 1e-30)))
        worst = np.argsort(-bad)[: min(WORST, int((~within).sum()))]
        idx = np.flatnonzero(ok)
        entry = {
            "within": float(within.mean()) if len(ratio) else 1.0,
            "outside": int((~within).sum()),
            "min_ratio": float(ratio.min()) if len(ratio) else 1.0,
            "max_ratio": float(ratio.max()) if len(ratio) else 1.0,
            "worst": [
                {"node": str(labels[idx[w]]), "triangle": int(tri_ids[idx[w]]), "rest_area": float(a0[idx[w]]),
                 "ratio": float(ratio[w])}
                for w in worst
            ],  # fmt: skip
            "head_inside": None,
            "head_entered": None,
            "head_method": None,
            "head_depth": None,
        }
        if head_check:
            inside, method, depth = head_inside_body(_head_points(posed[HEAD_NODE], keep), posed[BODY_NODE])
            entry.update(head_inside=int(inside.sum()), head_entered=int((inside & ~rest_inside).sum()),
                         head_method=method, head_depth=depth)  # fmt: skip
        entry["seconds"] = time.perf_counter() - t0
        report["poses"][name] = entry
    return report


def summary(report: Mapping) -> str:
    """One line per pose: share within [0.5, 2], ratio range, head vertices inside the body."""
    lines = [f"{report['triangles']} triangles ({report['degenerate']} degenerate at rest, left out); "
             f"head vertices inside the body at rest: {report['head_inside_rest']}"]  # fmt: skip
    for name, e in report["poses"].items():
        head = "-" if e["head_inside"] is None else f"{e['head_inside']} ({e['head_entered']} new, {e['head_method']})"
        share = f"{100 * e['within']:7.3f} % within [{RATIO_LO}, {RATIO_HI}]"
        lines.append(f"{name:>12}: {share} (ratio {e['min_ratio']:.3f}..{e['max_ratio']:.3f}), head in body: {head}")
    return "\n".join(lines)

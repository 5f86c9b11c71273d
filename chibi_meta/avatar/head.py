"""A head mesh built from each avatar's own texture: the drawing's silhouette, inflated.

Seen from the front the head *is* the drawing (planar UVs, the rim snapped onto the alpha contour);
from the sides and back it is round: the silhouette is inflated by the Poisson + square-root method
of Monster Mash (Dvorožňák et al. 2020; Baran & Lehtinen, "Notes on inflating curves"): solve
``laplacian f = -C`` on a grid of the cells the mask touches with ``f = 0`` on its boundary (holes too), and
take ``h = sqrt(f)``. A disc becomes a sphere, a strip a cylinder, a strand one cell wide a thin card.

Mesh layout (one closed manifold surface per island of the mask, once positions are welded):
a front sheet at ``z = +(T0 + h)``, a back sheet at ``z = -(T0 + h)`` with reversed winding, and a
wall along every boundary edge from the front rim down to a mid ring at ``z = 0`` and on to the back
rim. The front half of the wall samples the front image 3.5 px inside the contour (past the
drawing's outline, which the front sheet's flat lip carries), the back half the back image; the mid
ring's two copies share position and normal, so no seam shows. Normals are area-weighted over the
welded mesh; rim and mid ring get the in-plane outward normal of the contour, so the silhouette
shades like the edge of a ball.

An alpha that cannot be a silhouette gets the documented fallback (``FALLBACK``): an empty alpha is
an error; a full square or a fragmented mask (noise) uses an ellipse inscribed in the texture.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from chibi_meta.errors import TextureError

log = logging.getLogger(__name__)

GRID = 64  # cells across the texture (2 px cells at 128 px)
POISSON_C = 3.2  # 4 makes a disc a hemisphere; a little less is plusher
LIP_PX = 2.5  # px inside the contour where the head is still flat (the outline's width)
LIP_RAMP_PX = 2.0  # px over which it then rises to the inflated height
WALL_INSET_PX = 3.5  # px inside the contour where the front wall samples (past the drawing's outline)
T0 = 0.6  # half-thickness of the rim, in cells (thin strands become cards 2*T0 thick)
MIN_ISLAND_PX = 24  # islands of the mask smaller than this (at 128 px) are dropped (stray specks)
MAX_ISLANDS = 24  # more islands than this after dropping small ones: the mask is noise
MIN_COVERAGE = 0.04  # largest island below this share of the square: unusable
FULL_COVERAGE = 0.97  # at or above this share of the square: no silhouette to use
FALLBACK = "ellipse"  # what a full or fragmented alpha gets
JACOBI_SWEEPS = 8  # relaxation sweeps after each prolongation
COARSE_GRID = 16  # the grid solved exactly
DRAPE_SLOPE = 0.3  # px back per px down, below drape_below: long hair hangs, tilted a little back;
# procedural.clear_of_body moves it just clear of the body (1.3 made every long hair a fin in side views)
DRAPE_SOFT = 10.0  # px over which the bend eases in
DRAPE_THIN = 0.55  # how much thinner the hanging parts get
SNAP_MAX = 0.8  # cells: how far a rim node may move onto the contour
EDGE_SIGMA = 1.5  # px: blur of the mask whose 0.5 isoline the rim is snapped onto


@dataclass(frozen=True)
class HeadMesh:
    """The head in texture space: x, y in texture pixels of a 128 px texture (y down), z toward the viewer."""

    positions: np.ndarray  # (V, 3) float64, pixel units
    normals: np.ndarray  # (V, 3) float64, unit
    uvs: np.ndarray  # (V, 2) float64, ~[0, 1] of the front/back image (origin top-left; the atlas clamps)
    back: np.ndarray  # (V,) bool: the uv refers to the back image
    faces: np.ndarray  # (T, 3) int64, counter-clockwise seen from outside
    weld: np.ndarray  # (V,) int64: vertices with the same weld id share a position
    mask: np.ndarray  # (128, 128) bool: the silhouette used (after cleaning / fallback)
    fallback: str | None  # None, or why the fallback silhouette was used
    front_node: np.ndarray  # (GRID+1, GRID+1) int64: the front-sheet vertex of each grid node, -1 if none
    interior: np.ndarray  # (GRID+1, GRID+1) bool: nodes away from the rim (the smooth inside of the front)


def silhouette(alpha: np.ndarray) -> tuple[np.ndarray, str | None]:
    """The cleaned 128x128 silhouette of an alpha channel, or the fallback ellipse (with the reason).

    Raises TextureError when the alpha is empty (nothing is drawn).
    """
    from scipy import ndimage

    a = _resample(alpha.astype(np.float32), 128) >= 127.5
    cover = float(a.mean())
    if cover == 0.0:
        raise TextureError("texture alpha is empty (no pixel with alpha >= 128); a head needs a silhouette: "
                           "pixels with alpha >= 128 (a tiny or fragmented one gets the ellipse fallback)")
    if cover >= FULL_COVERAGE:
        return _ellipse(), f"alpha covers {cover:.0%} of the texture (>= {FULL_COVERAGE:.0%}): no silhouette"
    lab, n = ndimage.label(a)
    sizes = np.bincount(lab.ravel())[1:] if n else np.zeros(0, np.int64)
    keep = np.flatnonzero(sizes >= MIN_ISLAND_PX) + 1
    if len(keep) == 0 or sizes.max() < MIN_COVERAGE * a.size:
        return _ellipse(), f"largest island of the alpha covers {sizes.max() / a.size:.1%} (< {MIN_COVERAGE:.0%})"
    if len(keep) > MAX_ISLANDS:
        return _ellipse(), f"alpha is fragmented: {len(keep)} islands (> {MAX_ISLANDS})"
    mask = np.isin(lab, keep)
    holes = ndimage.label(~mask)[1] - 1  # background pieces less the outside (noise has hundreds)
    if holes > MAX_ISLANDS:
        return _ellipse(), f"alpha is fragmented: {holes} holes (> {MAX_ISLANDS})"
    return mask, None  # a few holes stay holes (rings)


def _ellipse() -> np.ndarray:
    yy, xx = np.mgrid[0:128, 0:128] + 0.5
    return ((xx - 64) / 60) ** 2 + ((yy - 64) / 60) ** 2 <= 1.0


def _resample(img: np.ndarray, n: int) -> np.ndarray:
    if img.shape[0] == n:
        return img
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((n, n), Image.Resampling.BILINEAR))


def _cells(mask: np.ndarray) -> np.ndarray:
    """Grid cells (GRID x GRID) holding any pixel of the mask, without diagonal-only contacts."""
    k = 128 // GRID
    cells = mask.reshape(GRID, k, GRID, k).any(axis=(1, 3))
    # two cells touching only at a corner would share a vertex that is not manifold: join them
    for _ in range(4):
        a, b, c, d = cells[:-1, :-1], cells[:-1, 1:], cells[1:, :-1], cells[1:, 1:]
        p1, p2 = a & d & ~b & ~c, b & c & ~a & ~d
        if not (p1.any() or p2.any()):
            break
        i, j = np.nonzero(p1)
        cells[i, j + 1] = True  # fill one of the two empty cells of each pinch
        i, j = np.nonzero(p2)
        cells[i, j] = True
    return cells


def _nodes(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid nodes (GRID+1 square) that touch a cell, and those of them that touch all four."""
    pad = np.zeros((cells.shape[0] + 2, cells.shape[1] + 2), bool)
    pad[1:-1, 1:-1] = cells
    touch = np.stack([pad[:-1, :-1], pad[:-1, 1:], pad[1:, :-1], pad[1:, 1:]])  # node (i,j): cells i-1..i, j-1..j
    return touch.any(0), touch.all(0)


def _solve(interior: np.ndarray, c: float) -> np.ndarray:
    """f on the nodes with laplacian f = -c on ``interior`` and f = 0 elsewhere (sparse LU)."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    f = np.zeros(interior.shape)
    m = int(interior.sum())
    if not m:
        return f
    idx = -np.ones(interior.shape, np.int64)
    idx[interior] = np.arange(m)
    ii, jj = np.nonzero(interior)
    rows, cols, vals = [np.arange(m)], [np.arange(m)], [np.full(m, 4.0)]
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        nb = idx[ii + di, jj + dj]  # interior nodes never sit on the grid's border
        ok = nb >= 0
        rows.append(np.flatnonzero(ok))
        cols.append(nb[ok])
        vals.append(np.full(int(ok.sum()), -1.0))
    A = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m, m))
    f[interior] = np.maximum(spla.spsolve(A, np.full(m, c), permc_spec="MMD_AT_PLUS_A"), 0.0)
    return f


def _poisson(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Height field on grid nodes: (used, boundary, f), f = 0 on boundary nodes.

    Nested iteration: solved exactly (sparse LU) on a grid a quarter as fine, then prolonged to each
    finer grid and relaxed there with Jacobi sweeps (``JACOBI_SWEEPS``), so thin parts that the
    coarse grids miss still get their own small height. About 1 ms instead of ~10 for the direct
    solve on the full grid, within a few per cent of it on the head's bulk.
    """
    levels = [cells]
    while levels[-1].shape[0] > COARSE_GRID:
        g = levels[-1].shape[0] // 2
        levels.append(levels[-1].reshape(g, 2, g, 2).mean(axis=(1, 3)) >= 0.75)
    _, interior = _nodes(levels[-1])
    f = _solve(interior, POISSON_C)
    for lev in reversed(levels[:-1]):
        f = _prolong(f) * 4.0  # cells half as wide: f (in cells squared) scales by 4
        _, interior = _nodes(lev)
        f[~interior] = 0.0
        for _ in range(JACOBI_SWEEPS):
            nb = np.zeros_like(f)
            nb[1:-1, 1:-1] = f[:-2, 1:-1] + f[2:, 1:-1] + f[1:-1, :-2] + f[1:-1, 2:]
            f = np.where(interior, (nb + POISSON_C) * 0.25, 0.0)
    used, interior = _nodes(cells)
    return used, used & ~interior, f


def _prolong(f: np.ndarray) -> np.ndarray:
    """Bilinear prolongation of node values from a grid of g cells to one of 2g cells."""
    g = f.shape[0] - 1
    t = np.arange(2 * g + 1) / 2.0
    i0 = np.minimum(t.astype(np.int64), g - 1)
    w = t - i0
    rows = f[i0] * (1 - w)[:, None] + f[i0 + 1] * w[:, None]
    return rows[:, i0] * (1 - w)[None, :] + rows[:, i0 + 1] * w[None, :]


def _edge_field(mask: np.ndarray) -> np.ndarray:
    """The mask blurred (sigma 1.5 px): its 0.5 isoline follows the contour, its gradient the normal."""
    from scipy import ndimage

    return ndimage.gaussian_filter(mask.astype(np.float32), EDGE_SIGMA, mode="constant")


def _sample(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear sample of a pixel-centred field at pixel coordinates (x right, y down)."""
    h, w = field.shape
    fx = np.clip(x - 0.5, 0, w - 1.001)
    fy = np.clip(y - 0.5, 0, h - 1.001)
    x0, y0 = fx.astype(np.int64), fy.astype(np.int64)
    tx, ty = fx - x0, fy - y0
    return (field[y0, x0] * (1 - tx) * (1 - ty) + field[y0, x0 + 1] * tx * (1 - ty)
            + field[y0 + 1, x0] * (1 - tx) * ty + field[y0 + 1, x0 + 1] * tx * ty)  # fmt: skip


def build_head(alpha: np.ndarray, drape_below: float | None = None) -> HeadMesh:
    """The head mesh of a texture's alpha channel ((R, R) uint8; any R): see the module docstring.

    ``drape_below`` (pixel row at 128 px, e.g. the chin): parts of the drawing below it (long hair)
    bend back behind the neck and thin out, as hair falls down a back, instead of standing around
    the neck; the front view does not change.
    """
    mask, why = silhouette(alpha)
    if why:
        log.warning("head: %s; using the %s fallback silhouette", why, FALLBACK)
    cells = _cells(mask)
    used, boundary, f = _poisson(cells)
    k = 128 / GRID
    n = GRID + 1
    node_id = -np.ones((n, n), np.int64)
    ii, jj = np.nonzero(used)
    nu = len(ii)
    node_id[ii, jj] = np.arange(nu)
    px, py = jj * k, ii * k  # node pixel coordinates
    is_b = boundary[ii, jj]
    # snap rim nodes onto the contour: Newton steps toward the 0.5 isoline of the blurred mask
    field = _edge_field(mask)
    gy, gx = np.gradient(field)
    x = px.astype(np.float64)
    y = py.astype(np.float64)
    bx, by = x[is_b], y[is_b]
    for _ in range(2):
        v = _sample(field, bx, by) - 0.5
        g = np.stack([_sample(gx, bx, by), _sample(gy, bx, by)], 1)
        g2 = np.maximum((g**2).sum(1), 1e-4)
        step = (-v / g2)[:, None] * g
        bx = np.clip(bx + step[:, 0], px[is_b] - SNAP_MAX * k, px[is_b] + SNAP_MAX * k)
        by = np.clip(by + step[:, 1], py[is_b] - SNAP_MAX * k, py[is_b] + SNAP_MAX * k)
    x[is_b], y[is_b] = bx, by
    g = -np.stack([_sample(gx, bx, by), _sample(gy, bx, by)], 1)  # outward
    gn = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-9)
    # a flat lip LIP_PX wide carries the drawing's outline; the head rises inside it, so seen from
    # the side the outline is a thin line and the steep flank shows the fill colour
    from scipy import ndimage

    edt = ndimage.distance_transform_edt(mask)
    inside = _sample(edt, x, y)
    ramp = np.clip((inside - LIP_PX) / LIP_RAMP_PX, 0.0, 1.0)
    h = np.sqrt(f[ii, jj]) * k * ramp + T0 * k
    # vertices: front (nu), back (nu), mid-front, mid-back and the front wall's own copy of the
    # front rim (nb each)
    b_nodes = np.flatnonzero(is_b)
    nb = len(b_nodes)
    pos = np.concatenate([
        np.stack([x, y, h], 1),
        np.stack([x, y, -h], 1),
        np.stack([x[b_nodes], y[b_nodes], np.zeros(nb)], 1),
        np.stack([x[b_nodes], y[b_nodes], np.zeros(nb)], 1),
        np.stack([x[b_nodes], y[b_nodes], h[b_nodes]], 1),
    ])  # fmt: skip
    if drape_below is not None:
        t = np.maximum(pos[:, 1] - drape_below, 0.0)
        ramp = np.where(t < DRAPE_SOFT, t * t / (2 * DRAPE_SOFT), t - DRAPE_SOFT / 2)
        pos[:, 2] = pos[:, 2] * (1.0 - DRAPE_THIN * np.clip(ramp / 24.0, 0.0, 1.0)) - DRAPE_SLOPE * ramp
    back = np.concatenate([np.zeros(nu, bool), np.ones(nu, bool), np.zeros(nb, bool), np.ones(nb, bool),
                           np.zeros(nb, bool)])  # fmt: skip
    mid_of = -np.ones(nu, np.int64)
    mid_of[b_nodes] = np.arange(nb)
    weld = np.concatenate([np.arange(nu), nu + np.arange(nu), 2 * nu + np.arange(nb), 2 * nu + np.arange(nb),
                           b_nodes])  # fmt: skip
    # faces: two triangles per cell, front counter-clockwise seen from +Z (y grows downward in pixels)
    ci, cj = np.nonzero(cells)
    a = node_id[ci, cj]
    b = node_id[ci, cj + 1]
    c = node_id[ci + 1, cj + 1]
    dd = node_id[ci + 1, cj]
    # pixel y down = world -y: (a, dd, c) is counter-clockwise seen from +Z in world space
    front = np.concatenate([np.stack([a, dd, c], 1), np.stack([a, c, b], 1)])
    _unflip(pos, front, nu, b_nodes, px, py)
    pos[2 * nu + 2 * nb :] = pos[b_nodes]  # the wall's rim copy follows the front rim
    uvs = pos[:, :2] / 128.0  # planar: the front view is the drawing, undistorted
    # The front wall (its own copy of the front rim, and the mid ring) samples the fill just inside
    # the outline: the front sheet's flat lip carries the outline, seen edge-on from the side, so a
    # side view shows no dark band down the head.
    inset = _wall_inset(edt, x[b_nodes], y[b_nodes], gn)
    uvs[2 * nu : 2 * nu + nb] -= inset / 128.0
    uvs[2 * nu + 2 * nb :] -= inset / 128.0
    backf = front[:, ::-1] + nu
    walls = _walls(cells, node_id, mid_of, nu, nb)
    faces = np.concatenate([front, backf, walls]).astype(np.int64)
    normals = _normals(pos, faces, weld)
    # rim and mid ring: the contour's in-plane outward normal (world: x right, y up)
    rim_n = np.stack([gn[:, 0], -gn[:, 1], np.zeros(nb)], 1)
    weak = np.linalg.norm(g, axis=1) < 1e-6  # no gradient (a texture border, a corner): the mesh's own
    rim_n[weak] = normals[2 * nu + np.flatnonzero(weak)]
    rim_n = rim_n / np.maximum(np.linalg.norm(rim_n, axis=1, keepdims=True), 1e-9)
    normals[2 * nu : 2 * nu + nb] = rim_n
    normals[2 * nu + nb : 2 * nu + 2 * nb] = rim_n
    for off in (0, nu):  # rim of each sheet: between the sheet's normal and the wall's
        v = normals[off + b_nodes] + rim_n * 1.5
        normals[off + b_nodes] = v / np.linalg.norm(v, axis=1, keepdims=True)
    normals[2 * nu + 2 * nb :] = normals[b_nodes]
    return HeadMesh(pos, normals, uvs, back, faces, weld, mask, why, node_id, used & ~boundary)


def _wall_inset(edt: np.ndarray, bx: np.ndarray, by: np.ndarray, gn: np.ndarray) -> np.ndarray:
    """(nb, 2) px: how far the front wall's UVs move inward (-gn) from each rim node: WALL_INSET_PX,
    or less where a strand is too thin for that to land 1.5 px inside the silhouette (then 2.5,
    1.5 or 0 px: a thin strand's wall keeps its outline)."""
    out = np.zeros((len(bx), 2))
    todo = np.ones(len(bx), bool)
    for t in (WALL_INSET_PX, 2.5, 1.5):
        qx, qy = bx - gn[:, 0] * t, by - gn[:, 1] * t
        inb = (qx >= 0.5) & (qx <= 127.5) & (qy >= 0.5) & (qy <= 127.5)  # _sample clamps past the edge
        ok = todo & inb & (_sample(edt, qx, qy) >= 1.5)
        out[ok] = gn[ok] * t
        todo &= ~ok
    return out


def _unflip(pos: np.ndarray, front: np.ndarray, nu: int, b_nodes: np.ndarray, px: np.ndarray,
            py: np.ndarray) -> None:  # fmt: skip
    """Pull snapped rim nodes back toward the grid until no front triangle is flipped (in place)."""
    mid = 2 * nu + np.arange(len(b_nodes))
    for _ in range(6):
        t = pos[front][:, :, :2]
        e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
        area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]  # pixel y down: front faces have area < 0
        bad = np.unique(front[area > -1e-6])
        bad = bad[np.isin(bad, b_nodes)]
        if not len(bad):
            return
        for v in (bad, bad + nu):
            pos[v, 0] = 0.5 * (pos[v, 0] + px[bad])
            pos[v, 1] = 0.5 * (pos[v, 1] + py[bad])
        m = mid[np.searchsorted(b_nodes, bad)]
        for v in (m, m + len(b_nodes)):
            pos[v, :2] = pos[bad, :2]


def _walls(cells: np.ndarray, node_id: np.ndarray, mid_of: np.ndarray, nu: int, nb: int) -> np.ndarray:
    """Two bands of quads along every boundary edge: front rim (the wall's copy) -> mid ring (front
    UVs), mid ring -> back rim (back UVs)."""
    pad = np.zeros((GRID + 2, GRID + 2), bool)
    pad[1:-1, 1:-1] = cells
    out = []
    ci, cj = np.nonzero(cells)
    # for each side of an in-cell whose neighbour is out: the edge (p, q) with the cell on its left,
    # walking counter-clockwise around the cell as seen from +Z world (pixel y is down)
    sides = (
        (-1, 0, (0, 1), (0, 0)),  # top neighbour out: edge from top-right to top-left
        (0, -1, (0, 0), (1, 0)),  # left: top-left -> bottom-left
        (1, 0, (1, 0), (1, 1)),  # bottom: bottom-left -> bottom-right
        (0, 1, (1, 1), (0, 1)),  # right: bottom-right -> top-right
    )
    for di, dj, (pi, pj), (qi, qj) in sides:
        sel = ~pad[ci + 1 + di, cj + 1 + dj]
        i, j = ci[sel], cj[sel]
        p = node_id[i + pi, j + pj]
        q = node_id[i + qi, j + qj]
        mp, mq = mid_of[p], mid_of[q]
        fm, bm, wr = 2 * nu, 2 * nu + nb, 2 * nu + 2 * nb  # first mid-front / mid-back / wall-rim vertex
        # outward faces: front rim (p, q; the wall's copy) above the mid ring; normals point out
        out.append(np.stack([wr + mp, fm + mp, fm + mq], 1))
        out.append(np.stack([wr + mp, fm + mq, wr + mq], 1))
        out.append(np.stack([bm + mp, nu + p, nu + q], 1))
        out.append(np.stack([bm + mp, nu + q, bm + mq], 1))
    return np.concatenate(out) if out else np.zeros((0, 3), np.int64)


def _normals(pos: np.ndarray, faces: np.ndarray, weld: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals over the welded mesh (vertices sharing a position share a normal)."""
    p = pos.copy()
    p[:, 1] *= -1  # pixel y down -> world y up, so cross products point outward
    n = np.cross(p[faces[:, 1]] - p[faces[:, 0]], p[faces[:, 2]] - p[faces[:, 0]])
    w = weld[faces]
    m = int(weld.max()) + 1
    acc = np.stack([np.bincount(w.ravel(), weights=np.repeat(n[:, k], 3), minlength=m) for k in range(3)], 1)
    acc /= np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-12)
    return acc[weld]

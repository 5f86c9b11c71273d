"""Regenerate docs/img/avatars_strip.png: four exported VRM avatars (textures from the shipped model)
rendered by three-vrm in headless Chromium.

python docs/img/make_strip.py        (needs: npm ci --prefix tests/js, /usr/bin/chromium)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from chibi_meta.avatar import build_avatar
from chibi_meta.avatar.export import DicebearSource, open_texture_source, provenance

ROOT = Path(__file__).resolve().parents[2]
SEEDS = (3, 11, 26, 40)
EXPRESSIONS = (None, "happy", None, "blink")


def main() -> None:
    ap = argparse.ArgumentParser(description="four exported avatars rendered by three-vrm")
    ap.add_argument("--source", choices=("model", "dicebear"), default="model",
                    help="textures from the shipped model (default) or DiceBear renders")
    src = open_texture_source() if ap.parse_args().source == "model" else DicebearSource()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        jobs = []
        for i, (seed, expr) in enumerate(zip(SEEDS, EXPRESSIONS, strict=True)):
            attrs = src.resolve(seed)
            tex = src.generate([seed], [attrs])[0]
            data = build_avatar(tex, attrs, fmt="vrm", texture_size=512, provenance=provenance(src, seed, attrs))
            (d / f"{seed}.vrm").write_bytes(data)
            jobs.append({"file": f"{seed}.vrm", "vrm": True, "yaw": (-20, 15, -10, 25)[i], "expr": expr,
                         "shot": str(d / f"{seed}.png")})  # fmt: skip
        spec = d / "jobs.json"
        spec.write_text(json.dumps({"files_dir": str(d), "jobs": jobs, "width": 320, "height": 400}))
        subprocess.run(["node", str(ROOT / "tests/js/render.mjs"), str(spec)], check=True, stdout=subprocess.DEVNULL)
        shots = [np.asarray(Image.open(j["shot"]).convert("RGB")) for j in jobs]
    strip = Image.fromarray(np.concatenate(shots, axis=1))
    out = ROOT / "docs/img/avatars_strip.png"
    strip.save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

"""Unity .meta files for plugin_unity_bridge/.

A package installed from git is read-only to Unity, which then ignores every file or folder without a
.meta file. This writes the missing ones with GUIDs derived from the package name and path (stable,
unique), and lists what is missing or wrong for tests/test_unity_client.py.

    python tests/unity/unity_meta.py          # write missing .meta files
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "plugin_unity_bridge"
PACKAGE_NAME = "dev.chibimeta.bridge"

_TAIL = "  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
_IMPORTERS = {
    ".cs": "MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n  defaultReferences: []\n"
           "  executionOrder: 0\n  icon: {instanceID: 0}\n" + _TAIL[len("  externalObjects: {}\n"):],
    ".asmdef": "AssemblyDefinitionImporter:\n" + _TAIL,
    ".md": "TextScriptImporter:\n" + _TAIL,
    "package.json": "PackageManifestImporter:\n" + _TAIL,
}


def unity_assets(root: Path = PKG) -> list[Path]:
    """Files and folders Unity imports: not hidden (.name), not in or named name~, not .meta files."""
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.suffix == ".meta":
            continue
        if any(part.startswith(".") or part.endswith("~") for part in rel.parts):
            continue
        out.append(p)
    return out


def guid_for(path: Path, root: Path = PKG) -> str:
    rel = path.relative_to(root).as_posix()
    return hashlib.md5(f"{PACKAGE_NAME}/{rel}".encode()).hexdigest()


def meta_text(path: Path, root: Path = PKG) -> str:
    head = f"fileFormatVersion: 2\nguid: {guid_for(path, root)}\n"
    if path.is_dir():
        return head + "folderAsset: yes\nDefaultImporter:\n" + _TAIL
    importer = _IMPORTERS.get(path.name) or _IMPORTERS.get(path.suffix) or "DefaultImporter:\n" + _TAIL
    return head + importer


def problems(root: Path = PKG) -> list[str]:
    """Assets without a .meta, .meta files without an asset, and duplicate GUIDs."""
    found = []
    guids: dict[str, Path] = {}
    assets = unity_assets(root)
    for p in assets:
        meta = p.with_name(p.name + ".meta")
        if not meta.is_file():
            found.append(f"missing {meta.relative_to(root)}")
            continue
        m = re.search(r"^guid: ([0-9a-f]{32})$", meta.read_text("utf-8"), re.MULTILINE)
        if not m:
            found.append(f"no guid in {meta.relative_to(root)}")
        elif m.group(1) in guids:
            found.append(f"duplicate guid in {meta.relative_to(root)} and {guids[m.group(1)]}")
        else:
            guids[m.group(1)] = meta.relative_to(root)
    wanted = {p.with_name(p.name + ".meta") for p in assets}
    for meta in root.rglob("*.meta"):
        rel = meta.relative_to(root)
        if meta not in wanted and not any(part.endswith("~") or part.startswith(".") for part in rel.parts[:-1]):
            found.append(f"orphan {rel}")
    return found


def write_missing(root: Path = PKG) -> list[Path]:
    written = []
    for p in unity_assets(root):
        meta = p.with_name(p.name + ".meta")
        if not meta.exists():
            meta.write_text(meta_text(p, root), "utf-8")
            written.append(meta)
    return written


if __name__ == "__main__":
    for m in write_missing():
        print(f"wrote {m.relative_to(PKG)}")
    left = problems()
    print("\n".join(left) if left else "all assets have .meta files")
    sys.exit(1 if left else 0)

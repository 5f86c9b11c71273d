"""Compile plugin_unity_bridge's Unity glue with Mono's `mcs` the way Unity would, against facades.

The facades (tests/unity/facades/*.cs) hold the declarations the glue uses of UnityEngine, UnityEditor,
glTFast and UniVRM, transcribed from pinned upstream versions; each is built into a DLL named after the
real assembly. A `Project` is a simulated Unity project: installed packages (name -> version), the
assemblies present (name -> DLL), the enabled built-in modules and the scripting define symbols.
`Project.compile_asmdef` then does what Unity's compilation pipeline does for one .asmdef: the sources
of its folder (minus subfolders with their own .asmdef), a reference for each name in `references`
that exists in the project (missing ones are left out, as Unity does), the engine modules, and the
defines from `versionDefines` plus the scripting symbols; warnings are errors.

Facade DLLs are built once per process (and cached by content in the given folder).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "plugin_unity_bridge"
FACADES = Path(__file__).resolve().parent / "facades"

# glTFast pins: label -> (package name, version). 5.0.0 is the last com.atteneder.gltfast; from 5.1.0
# the package is com.unity.cloud.gltfast (package.json at the tags v5.0.0, v5.1.0, release/6.x).
GLTFAST = {
    "5.0.0": ("com.atteneder.gltfast", "5.0.0"),
    "5.1.0": ("com.unity.cloud.gltfast", "5.1.0"),
    "6.10.0": ("com.unity.cloud.gltfast", "6.10.0"),
    "6.14.1": ("com.unity.cloud.gltfast", "6.14.1"),
    "6.15.0": ("com.unity.cloud.gltfast", "6.15.0"),
}
# UniVRM pins: the three places of IAwaitCaller (VRMShaders.GLTF.IO.Runtime <= 0.124, UniGLTF
# 0.125-0.131.0, UniGLTF.Utils 0.131.1). "+unitypackage": the same assemblies under Assets/, no package.
UNIVRM = ["0.110.0", "0.124.2", "0.130.1", "0.131.1", "0.131.1+unitypackage"]

ENGINE_MODULES = {  # built-in package -> facade assembly
    "com.unity.modules.imageconversion": "UnityEngine.ImageConversionModule",
    "com.unity.modules.imgui": "UnityEngine.IMGUIModule",
}


def parse_version(v: str) -> tuple[int, ...]:
    """'6.14.1' -> (6, 14, 1); pre-release suffixes are ignored."""
    return tuple(int(x) for x in re.findall(r"\d+", v.split("-")[0])[:3])


def version_matches(expression: str, version: str) -> bool:
    """Unity's versionDefines expression: 'x.y.z' means >= x.y.z; '[a,b]', '(a,b)', '[a,b)', '(a,b]',
    with either side empty for no bound, and '[x]' for exactly x."""
    v = parse_version(version)
    e = expression.strip()
    if not e:
        return True
    if e[0] not in "[(":
        return v >= parse_version(e)
    lo_inc, hi_inc = e[0] == "[", e[-1] == "]"
    body = e[1:-1]
    if "," not in body:
        return v == parse_version(body)
    lo, hi = (s.strip() for s in body.split(",", 1))
    if lo and (v < parse_version(lo) or (v == parse_version(lo) and not lo_inc)):
        return False
    return not (hi and (v > parse_version(hi) or (v == parse_version(hi) and not hi_inc)))


def version_defines(asmdef: dict, packages: dict[str, str]) -> list[str]:
    """The symbols `versionDefines` of an .asmdef sets in a project with these packages."""
    out = []
    for d in asmdef.get("versionDefines", []):
        have = packages.get(d["name"])
        if have is not None and version_matches(d.get("expression", ""), have) and d["define"] not in out:
            out.append(d["define"])
    return out


def gltfast_symbols(version: str) -> list[str]:
    v = parse_version(version)
    return [s for s, since in (("GLTFAST_6_0_OR_NEWER", (6, 0)), ("GLTFAST_6_11_OR_NEWER", (6, 11))) if v >= since]


def univrm_symbols(version: str) -> list[str]:
    v = parse_version(version)
    since = (("UNIVRM_0_125_OR_NEWER", (0, 125)), ("UNIVRM_0_126_OR_NEWER", (0, 126)),
             ("UNIVRM_0_128_2_OR_NEWER", (0, 128, 2)), ("UNIVRM_0_131_1_OR_NEWER", (0, 131, 1)))
    return [s for s, at in since if v >= at]


def univrm_assemblies(version: str) -> list[str]:
    """UniVRM's assemblies the facades model, in build order (VRMShaders.GLTF.IO.Runtime is gone from 0.125)."""
    base = ["UniGLTF.Utils", "UniGLTF", "VRM10"]
    return (["VRMShaders.GLTF.IO.Runtime"] if parse_version(version) < (0, 125) else []) + base


def read_asmdef(path: Path) -> dict:
    return json.loads(path.read_text("utf-8"))


def asmdef_sources(asmdef_path: Path) -> list[Path]:
    """The .cs files Unity puts in this assembly: its folder and below, minus folders with their own .asmdef."""
    folder = asmdef_path.parent
    others = [p.parent for p in folder.rglob("*.asmdef") if p.parent != folder]
    return sorted(p for p in folder.rglob("*.cs") if not any(o == p.parent or o in p.parents for o in others))


def mcs(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["mcs", *args], capture_output=True, text=True, timeout=timeout)


class FacadeBuilder:
    """Builds facade and helper DLLs once, keyed by sources, defines and references."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self.builds = 0

    def build(self, name: str, sources: list[Path], refs: list[Path] = (), defines: list[str] = (),
              extra: list[str] = (), target: str = "library") -> Path:
        h = hashlib.sha256()
        for s in sources:
            h.update(s.read_bytes())
        h.update(repr((name, sorted(map(str, refs)), sorted(defines), list(extra), target)).encode())
        key = h.hexdigest()[:16]
        out = self.root / key / (name + (".exe" if target == "exe" else ".dll"))
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if out.is_file():
                return out
            out.parent.mkdir(parents=True, exist_ok=True)
            args = [f"-target:{target}", f"-out:{out}", "-langversion:7.2", "-nowarn:660,661",
                    *(f"-r:{r}" for r in refs), *extra]
            if defines:
                args.append("-define:" + ";".join(defines))
            proc = mcs(*args, *map(str, sources))
            if proc.returncode != 0:
                shutil.rmtree(out.parent, ignore_errors=True)
                raise RuntimeError(f"building {name} failed:\n{proc.stdout}{proc.stderr}")
            self.builds += 1
            return out

    # --- the facades -----------------------------------------------------------------------
    def unity(self) -> dict[str, Path]:
        core = self.build("UnityEngine.CoreModule", [FACADES / "UnityEngine.CoreModule.cs"])
        imgui = self.build("UnityEngine.IMGUIModule", [FACADES / "UnityEngine.IMGUIModule.cs"], [core])
        image = self.build("UnityEngine.ImageConversionModule", [FACADES / "UnityEngine.ImageConversionModule.cs"],
                           [core])
        editor = self.build("UnityEditor", [FACADES / "UnityEditor.cs"], [core, imgui])
        return {"UnityEngine.CoreModule": core, "UnityEngine.IMGUIModule": imgui,
                "UnityEngine.ImageConversionModule": image, "UnityEditor": editor}

    def gltfast(self, version: str) -> dict[str, Path]:
        core = self.unity()["UnityEngine.CoreModule"]
        return {"glTFast": self.build("glTFast", [FACADES / "glTFast.cs"], [core], gltfast_symbols(version))}

    def univrm(self, version: str) -> dict[str, Path]:
        version = version.split("+")[0]
        core = self.unity()["UnityEngine.CoreModule"]
        built: dict[str, Path] = {}
        for asm in univrm_assemblies(version):
            refs = [core, *built.values()]
            built[asm] = self.build(asm, [FACADES / f"{asm}.cs"], refs, univrm_symbols(version))
        return built

    def runtime(self) -> Path:
        """ChibiMeta.Bridge (plugin_unity_bridge/Runtime), the plain C# client."""
        return self.build("ChibiMeta.Bridge", asmdef_sources(PKG / "Runtime" / "ChibiMeta.Bridge.asmdef"))


@dataclass
class Project:
    """A simulated Unity project that has plugin_unity_bridge (from `pkg`) installed."""

    facades: FacadeBuilder
    gltfast: str | None = None
    univrm: str | None = None
    symbols: list[str] = field(default_factory=list)
    pkg: Path = PKG
    packages: dict[str, str] = field(default_factory=dict)
    assemblies: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unity = self.facades.unity()
        self.assemblies.update(unity)
        if self.gltfast:
            name, version = GLTFAST[self.gltfast]
            self.packages[name] = version
            self.assemblies.update(self.facades.gltfast(version))
        if self.univrm:
            version, _, how = self.univrm.partition("+")
            if how != "unitypackage":
                self.packages["com.vrmc.vrm"] = version
                self.packages["com.vrmc.gltf"] = version
            self.assemblies.update(self.facades.univrm(version))
        self.assemblies["ChibiMeta.Bridge"] = self.facades.runtime()
        manifest = json.loads((self.pkg / "package.json").read_text("utf-8"))
        # built-in modules: only those some installed package depends on (ours here); CoreModule always
        self.modules = ["UnityEngine.CoreModule"] + [ENGINE_MODULES[m] for m in manifest.get("dependencies", {})
                                                      if m in ENGINE_MODULES]

    @property
    def label(self) -> str:
        return f"glTFast {self.gltfast or '-'} x UniVRM {self.univrm or '-'}"

    def defines_for(self, asmdef: dict) -> list[str]:
        return version_defines(asmdef, self.packages) + [s for s in self.symbols if s]

    def compile_asmdef(self, asmdef_path: Path, out_dir: Path) -> tuple[subprocess.CompletedProcess, Path]:
        asmdef = read_asmdef(asmdef_path)
        name = asmdef["name"]
        editor_only = asmdef.get("includePlatforms") == ["Editor"]
        refs = [self.assemblies[r] for r in asmdef.get("references", []) if r in self.assemblies]
        if not asmdef.get("noEngineReferences"):
            refs += [self.assemblies[m] for m in self.modules]
            if editor_only:
                refs.append(self.assemblies["UnityEditor"])
        return self._compile(name, asmdef_sources(asmdef_path), refs, self.defines_for(asmdef), out_dir)

    def compile_samples(self, out_dir: Path) -> tuple[subprocess.CompletedProcess, Path]:
        """Samples~ as Unity compiles imported samples: into Assembly-CSharp, which references the
        auto-referenced assemblies (ours) and the engine modules."""
        refs = [self.assemblies[n] for n in ("ChibiMeta.Bridge", "ChibiMeta.Bridge.Unity") if n in self.assemblies]
        refs += [self.assemblies[m] for m in self.modules]
        sources = sorted((self.pkg / "Samples~").rglob("*.cs"))
        return self._compile("Assembly-CSharp", sources, refs, list(self.symbols), out_dir)

    def _compile(self, name: str, sources: list[Path], refs: list[Path], defines: list[str],
                 out_dir: Path) -> tuple[subprocess.CompletedProcess, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / f"{name}.dll"
        args = ["-target:library", f"-out:{out}", "-warnaserror", "-r:System.Core.dll",
                *(f"-r:{r}" for r in refs)]
        if defines:
            args.append("-define:" + ";".join(defines))
        proc = mcs(*args, *map(str, sources))
        if proc.returncode == 0:
            self.assemblies[name] = out
        return proc, out

    def compile_glue(self, out_dir: Path) -> tuple[subprocess.CompletedProcess, Path]:
        """Runtime/Unity (ChibiMeta.Bridge.Unity), the only assembly that references glTFast and UniVRM."""
        return self.compile_asmdef(self.pkg / "Runtime" / "Unity" / "ChibiMeta.Bridge.Unity.asmdef", out_dir)

    def compile_dependents(self, out_dir: Path) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
        """Editor and the sample, against this project's compiled glue (call compile_glue first)."""
        return {"ChibiMeta.Bridge.Editor": self.compile_asmdef(self.pkg / "Editor" / "ChibiMeta.Bridge.Editor.asmdef",
                                                              out_dir),
                "Assembly-CSharp": self.compile_samples(out_dir)}

    def glue_defines(self) -> tuple[str, ...]:
        """The CHIBI_META_* symbols the glue is compiled with here: its only conditional code."""
        glue = read_asmdef(self.pkg / "Runtime" / "Unity" / "ChibiMeta.Bridge.Unity.asmdef")
        return tuple(sorted(d for d in self.defines_for(glue) if d.startswith("CHIBI_META_")))


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    """The `error CSxxxx` lines of a compiler run."""
    return [ln for ln in (proc.stdout + proc.stderr).splitlines() if re.search(r"error CS\d{4}", ln)]

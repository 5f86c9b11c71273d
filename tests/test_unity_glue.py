"""The Unity glue of plugin_unity_bridge (Runtime/Unity, Editor, Editor/Setup, Samples~) compiled with Mono's
`mcs` against facades of the real glTFast, UniVRM, UnityEngine and UnityEditor assemblies
(tests/unity/facades, transcribed from pinned upstream tags), as Unity would compile it: only the
references its .asmdef names, defines from its versionDefines, warnings as errors; over the matrix of
glTFast and UniVRM versions. Then the defects this check exists for are put back into a copy of the
package, one at a time, and the compile must fail with the compiler's own error.

Not a Unity build: what this proves and what it does not is in docs/unity.md#tests."""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "unity"))
import unity_compile as uc  # noqa: E402

PKG = uc.PKG
HERE = Path(__file__).parent / "unity"
GLUE_ASMDEF = PKG / "Runtime" / "Unity" / "ChibiMeta.Bridge.Unity.asmdef"

# The matrix: four glTFast lines x UniVRM 0.110.0 and 0.124.2 (IAwaitCaller in VRMShaders.GLTF.IO.Runtime) and
# 0.131.1 (in UniGLTF.Utils), plus the edges: no optional package, one of them alone, the com.atteneder name,
# UniVRM 0.130.1 (IAwaitCaller in UniGLTF) and UniVRM installed from its .unitypackage.
MATRIX = [(g, v) for g in ("5.1.0", "6.10.0", "6.14.1", "6.15.0") for v in ("0.110.0", "0.124.2", "0.131.1")]
MATRIX += [(None, None), ("6.15.0", None), (None, "0.131.1"), ("5.0.0", "0.110.0"), ("6.14.1", "0.130.1"),
           ("6.14.1", "0.131.1+unitypackage"), (None, "0.110.0+unitypackage")]


def _need_mono() -> None:
    if shutil.which("mcs") is None or shutil.which("mono") is None:
        pytest.skip("mcs and mono not installed; install Mono with: apt-get install -y mono-devel")


@pytest.fixture(scope="module")
def facades(tmp_path_factory) -> uc.FacadeBuilder:
    _need_mono()
    return uc.FacadeBuilder(tmp_path_factory.getbasetemp() / "unity-facades")


def project_for(facades: uc.FacadeBuilder, g: str | None, v: str | None, pkg: Path = PKG) -> uc.Project:
    symbols = []
    if v and v.endswith("+unitypackage"):
        # Editor/Setup's decision for UniVRM under Assets/ (run under Mono in test_univrm_define_setup)
        symbols = ["CHIBI_META_UNIVRM"]
    return uc.Project(facades, gltfast=g, univrm=v, symbols=symbols, pkg=pkg)


@pytest.fixture(scope="module")
def matrix(facades, tmp_path_factory) -> dict:
    """The glue compiled for every combination (two at a time), with the assemblies each glue DLL references;
    Editor and the sample compiled once per set of CHIBI_META_* defines; Editor/Setup once.

    Editor and the sample reference only ChibiMeta.Bridge and ChibiMeta.Bridge.Unity (their .asmdef / the
    Assembly-CSharp rules), never glTFast or UniVRM, and the glue's source varies only with the CHIBI_META_*
    defines: so two combinations with the same defines give them the same glue API, and one compile per
    define set covers the matrix (a glTFast or UniVRM type leaking into what they use fails with CS0012)."""
    out = tmp_path_factory.mktemp("matrix")
    t0, cpu0 = time.monotonic(), _children_cpu()

    def glue(combo):  # builds the facades it needs on first use (each one once: FacadeBuilder locks per build)
        g, v = combo
        project = project_for(facades, g, v)
        return combo, project, project.compile_glue(out / f"{g}_{v}".replace("+", "_"))

    def dependents(item):
        defines, project = item
        return defines, project.compile_dependents(out / ("dep_" + ("_".join(defines) or "none")))

    with ThreadPoolExecutor(max_workers=2) as pool:
        glues = {combo: (project, res) for combo, project, res in pool.map(glue, MATRIX)}
        by_defines: dict[tuple, uc.Project] = {}
        for project, (proc, _) in glues.values():
            if proc.returncode == 0:
                by_defines.setdefault(project.glue_defines(), project)
        setup = pool.submit(uc.Project(facades).compile_asmdef,
                            PKG / "Editor" / "Setup" / "ChibiMeta.Bridge.Editor.Setup.asmdef", out / "setup")
        deps = dict(pool.map(dependents, by_defines.items()))
        setup = setup.result()
    refs = assembly_refs(facades, out, [dll for _, (proc, dll) in glues.values() if proc.returncode == 0])
    timing = {"matrix_s": round(time.monotonic() - t0, 1), "cpu_s": round(_children_cpu() - cpu0, 1),
              "facade_builds": facades.builds,
              "glue_compiles": len(MATRIX), "define_sets": len(deps)}
    print(f"\nunity glue matrix: {timing}")
    return {"glue": glues, "dependents": deps, "setup": setup, "refs": refs, "timing": timing}


def _children_cpu() -> float:
    """CPU seconds used by finished child processes (mcs, mono): the matrix's cost whatever the load."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def assembly_refs(facades: uc.FacadeBuilder, work: Path, dlls: list[Path]) -> dict[Path, list[str]]:
    """The assemblies each DLL references (System.Reflection under Mono, one process for all)."""
    exe = facades.build("AssemblyRefs", [HERE / "AssemblyRefs.cs"], target="exe")
    listing = work / "dlls.txt"
    listing.write_text("\n".join(map(str, dlls)))
    proc = subprocess.run(["mono", str(exe), str(listing)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {Path(k): v for k, v in json.loads(proc.stdout).items()}


@pytest.mark.parametrize("combo", MATRIX, ids=[f"gltfast-{g or 'none'}_univrm-{v or 'none'}" for g, v in MATRIX])
def test_glue_compiles(matrix, combo) -> None:
    """Runtime/Unity compiles with warnings as errors and uses glTFast exactly when glTFast is installed
    and UniVRM exactly when UniVRM is; Editor and the sample compile against it."""
    g, v = combo
    project, (proc, dll) = matrix["glue"][combo]
    assert proc.returncode == 0, f"{project.label}: Runtime/Unity does not compile:\n{proc.stdout}{proc.stderr}"
    glue_refs = matrix["refs"][dll]
    assert ("glTFast" in glue_refs) == (g is not None), (project.label, glue_refs)
    assert ("VRM10" in glue_refs) == (v is not None), (project.label, glue_refs)
    if v and uc.parse_version(v) >= (0, 131, 1):
        assert "UniGLTF.Utils" in glue_refs  # IAwaitCaller, a parameter type of Vrm10.LoadBytesAsync
    for name, (dproc, _) in matrix["dependents"][project.glue_defines()].items():
        assert dproc.returncode == 0, f"{project.label}: {name} does not compile:\n{dproc.stdout}{dproc.stderr}"


def test_every_define_set_and_setup_compile(matrix) -> None:
    assert set(matrix["dependents"]) == {(), ("CHIBI_META_GLTFAST",), ("CHIBI_META_UNIVRM",),
                                         ("CHIBI_META_GLTFAST", "CHIBI_META_UNIVRM")}
    proc, _ = matrix["setup"]
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_matrix_is_fast(matrix) -> None:
    """The whole matrix (facades included) stays a small part of the suite: CPU time, as the 2 cores are shared."""
    assert matrix["timing"]["cpu_s"] < 60, matrix["timing"]


def test_version_defines_follow_unity_rules() -> None:
    assert uc.version_matches("5.0.0", "5.1.0") and not uc.version_matches("6.0.0", "5.2.0")
    assert uc.version_matches("[5.0,6.0)", "5.9.1") and not uc.version_matches("[5.0,6.0)", "6.0.0")
    assert uc.version_matches("(0.110,]", "0.131.1") and not uc.version_matches("(0.110.0,]", "0.110.0")
    assert uc.version_matches("[1.2.3]", "1.2.3") and not uc.version_matches("[1.2.3]", "1.2.4")
    asmdef = uc.read_asmdef(GLUE_ASMDEF)
    for label, (name, version) in uc.GLTFAST.items():  # every glTFast pin turns the glTFast code on
        assert "CHIBI_META_GLTFAST" in uc.version_defines(asmdef, {name: version}), label
    assert uc.version_defines(asmdef, {"com.vrmc.vrm": "0.110.0"}) == ["CHIBI_META_UNIVRM"]
    assert uc.version_defines(asmdef, {"com.vrmc.vrm": "0.109.0"}) == []


# --- the defects, put back one at a time into a copy of the package ---------------------------------

def mutated(tmp_path: Path, edit) -> Path:
    copy = tmp_path / "plugin_unity_bridge"
    shutil.copytree(PKG, copy)
    edit(copy)
    return copy


def compile_glue(facades, g, v, pkg: Path, out: Path):
    project = project_for(facades, g, v, pkg=pkg)
    return project.compile_asmdef(pkg / GLUE_ASMDEF.relative_to(PKG), out)


def test_without_unigltf_utils_reference_cs0012(facades, tmp_path) -> None:
    """Row 1: IAwaitCaller lives in UniGLTF.Utils in UniVRM 0.131.1; without the reference the glue fails."""
    def drop(copy: Path) -> None:
        path = copy / GLUE_ASMDEF.relative_to(PKG)
        asmdef = json.loads(path.read_text("utf-8"))
        asmdef["references"].remove("UniGLTF.Utils")
        path.write_text(json.dumps(asmdef, indent=4), "utf-8")

    copy = mutated(tmp_path, drop)
    proc, _ = compile_glue(facades, "6.14.1", "0.131.1", copy, tmp_path / "o1")
    errs = uc.errors(proc)
    assert proc.returncode != 0 and any("error CS0012" in e and "UniGLTF.IAwaitCaller" in e and "UniGLTF.Utils" in e
                                        for e in errs), proc.stdout
    # UniVRM 0.130.1 had IAwaitCaller in UniGLTF: the same copy compiles there (the facades model both)
    proc, _ = compile_glue(facades, "6.14.1", "0.130.1", copy, tmp_path / "o2")
    assert proc.returncode == 0, proc.stdout


def test_load_gltf_binary_is_obsolete_cs0618(facades, tmp_path) -> None:
    """Row 2: calling LoadGltfBinary again fails with glTFast 6.11+ (obsolete) and warnings as errors."""
    def call_old(copy: Path) -> None:
        src = copy / "Runtime" / "Unity" / "ChibiAvatarInstantiator.cs"
        text = src.read_text("utf-8")
        assert "import.Load(result.Data," in text
        src.write_text(text.replace("import.Load(result.Data,", "import.LoadGltfBinary(result.Data,"), "utf-8")

    copy = mutated(tmp_path, call_old)
    for g in ("6.14.1", "6.15.0"):
        proc, _ = compile_glue(facades, g, None, copy, tmp_path / g)
        assert proc.returncode != 0 and any("CS0618" in e and "LoadGltfBinary" in e and "Use the generic Load instead"
                                            in e for e in uc.errors(proc)), (g, proc.stdout)
    proc, _ = compile_glue(facades, "6.10.0", None, copy, tmp_path / "6.10")  # not obsolete before 6.11
    assert proc.returncode == 0, proc.stdout


def test_old_gltfast_define_expression_skips_5_1(facades, tmp_path) -> None:
    """Row 4: with the old expression 6.0.0, com.unity.cloud.gltfast 5.1 leaves the glTFast code out."""
    def old_expression(copy: Path) -> None:
        path = copy / GLUE_ASMDEF.relative_to(PKG)
        asmdef = json.loads(path.read_text("utf-8"))
        for d in asmdef["versionDefines"]:
            if d["name"] == "com.unity.cloud.gltfast":
                d["expression"] = "6.0.0"
        path.write_text(json.dumps(asmdef, indent=4), "utf-8")

    copy = mutated(tmp_path, old_expression)
    project = project_for(facades, "5.1.0", None, pkg=copy)
    assert "CHIBI_META_GLTFAST" not in project.defines_for(uc.read_asmdef(copy / GLUE_ASMDEF.relative_to(PKG)))
    assert "CHIBI_META_GLTFAST" in project_for(facades, "5.1.0", None).defines_for(uc.read_asmdef(GLUE_ASMDEF))


def test_without_imageconversion_dependency(facades, tmp_path) -> None:
    """Row 6: Texture2D.LoadImage is in the Image Conversion module; package.json must declare it."""
    def drop(copy: Path) -> None:
        manifest = json.loads((copy / "package.json").read_text("utf-8"))
        del manifest["dependencies"]["com.unity.modules.imageconversion"]
        (copy / "package.json").write_text(json.dumps(manifest, indent=2), "utf-8")

    proc, _ = compile_glue(facades, None, None, mutated(tmp_path, drop), tmp_path / "o")
    assert proc.returncode != 0 and any("LoadImage" in e for e in uc.errors(proc)), proc.stdout


def test_every_component_is_in_a_file_of_its_name() -> None:
    """Row 7: Unity finds a MonoBehaviour / EditorWindow only in a script file named after it."""
    found = []
    for src in sorted(PKG.rglob("*.cs")):
        text = src.read_text("utf-8")
        for m in re.finditer(r"class\s+(\w+)\s*:\s*(?:UnityEngine\.)?(MonoBehaviour|EditorWindow|ScriptableObject)\b",
                             text):
            found.append(m.group(1))
            assert m.group(1) == src.stem, f"{m.group(1)} is in {src.relative_to(PKG)}"
    assert {"ChibiAvatarLoader", "GltfImportOwner", "ChibiAvatarExpressions", "ChibiBridgeWindow"} <= set(found)


GLUE_CHECKS = ["glb_loads_with_expressions", "glb_cancelled_during_load", "glb_cancelled_during_instantiate",
               "glb_parent_destroyed_during_load", "glb_load_fails", "vrm_expressions_through_univrm",
               "png_that_does_not_decode_leaks_no_texture", "sample_context_menu_in_edit_mode", "univrm_define_setup"]


@pytest.fixture(scope="module")
def glue_checks(matrix, facades, tmp_path_factory) -> dict:
    """tests/unity/GlueChecks.cs run under Mono on the glue of glTFast 6.14.1 x UniVRM 0.131.1."""
    project, (proc, _) = matrix["glue"][("6.14.1", "0.131.1")]
    deps = matrix["dependents"][project.glue_defines()]
    assert proc.returncode == 0 and all(p.returncode == 0 for p, _ in deps.values())
    run = tmp_path_factory.mktemp("glue-run")
    dlls = {*project.assemblies.values(), deps["Assembly-CSharp"][1], matrix["setup"][1]}
    for p in dlls:
        shutil.copy(p, run / p.name)
    exe = facades.build("GlueChecks", [HERE / "GlueChecks.cs"], [run / p.name for p in sorted(dlls)], target="exe")
    shutil.copy(exe, run / exe.name)
    proc = subprocess.run(["mono", "--debug", str(run / exe.name)], capture_output=True, text=True, timeout=120,
                          cwd=run)
    out = {json.loads(ln)["check"]: json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")}
    out["_proc"] = proc
    return out


@pytest.mark.parametrize("name", GLUE_CHECKS)
def test_glue_runs_under_mono(glue_checks, name) -> None:
    """Behaviour, not just compilation: row 3 (a load cancelled, or its parent destroyed, while glTFast
    works leaves nothing behind and disposes the import), expressions on both paths, row 6 (a PNG that
    does not decode leaks no texture), row 8 (the sample's [ContextMenu] in Edit mode warns instead of
    throwing) and row 5 (Editor/Setup adds CHIBI_META_UNIVRM for UniVRM under Assets/, the .unitypackage
    install, and leaves the package install to versionDefines)."""
    rec = glue_checks.get(name)
    proc = glue_checks["_proc"]
    assert rec is not None, f"{name} did not run (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    assert rec["ok"], rec["detail"]


def test_all_glue_checks_ran(glue_checks) -> None:
    proc = glue_checks["_proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {k for k in glue_checks if not k.startswith("_")} == set(GLUE_CHECKS)

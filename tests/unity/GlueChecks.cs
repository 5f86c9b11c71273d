// Runs the Unity glue under Mono against the facades (tests/unity/facades), whose stand-in bodies it
// drives through their internals (glTFast's FacadeHooks, Vrm10.Loader, the GameObject hierarchy).
// Built by tests/test_unity_glue.py against the glue of one matrix combination (glTFast 6.14.1, UniVRM
// 0.131.1), the sample (Assembly-CSharp) and Editor/Setup:
//   mono GlueChecks.exe
// Prints one JSON line per check: {"check": NAME, "ok": BOOL, "detail": ...}; exit code 0 when all pass.
using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;
using ChibiMeta.Bridge;
using ChibiMeta.Bridge.Unity;
using GLTFast;
using UnityEngine;
using UniVRM10;

static class GlueChecks
{
    static int _failures;

    static int Main()
    {
        Check("glb_loads_with_expressions", GlbLoads);
        Check("glb_cancelled_during_load", () => GlbCancelled("Load"));
        Check("glb_cancelled_during_instantiate", () => GlbCancelled("Instantiate"));
        Check("glb_parent_destroyed_during_load", GlbParentDestroyed);
        Check("glb_load_fails", GlbLoadFails);
        Check("vrm_expressions_through_univrm", VrmExpressions);
        Check("png_that_does_not_decode_leaks_no_texture", PngLeak);
        Check("sample_context_menu_in_edit_mode", ContextMenuInEditMode);
        Check("univrm_define_setup", DefineSetup);
        return _failures == 0 ? 0 : 1;
    }

    static GenerateResult Result(string format, byte[] data)
    {
        var header = new Dictionary<string, object>
        {
            { "id", "r-" + format }, { "seed", 7L }, { "format", format }, { "byte_length", (long)data.Length },
            { "sha256", Hashing.Sha256Hex(data) }, { "media_type", format == "png" ? "image/png" : "model/gltf-binary" },
        };
        return GenerateResult.Verified(header, data);
    }

    static GameObject Instantiate(GenerateResult r, Transform parent, CancellationToken ct)
    {
        return ChibiAvatarInstantiator.InstantiateAsync(r, parent, ct).GetAwaiter().GetResult();
    }

    // the GameObjects named chibi-* that are still alive
    static List<string> LiveAvatars()
    {
        var live = new List<string>();
        lock (UnityEngine.Object.created)
            foreach (UnityEngine.Object o in UnityEngine.Object.created)
                if (o is GameObject && o.name != null && o.name.StartsWith("chibi-") && !o.destroyed) live.Add(o.name);
        return live;
    }

    static void DestroyAll()
    {
        lock (UnityEngine.Object.created)
            foreach (UnityEngine.Object o in UnityEngine.Object.created.ToArray()) if (o is GameObject) UnityEngine.Object.Destroy(o);
    }

    // glTFast's instantiation as the real one does it for our avatars: a child with a SkinnedMeshRenderer
    // whose mesh has the file's morph targets as blend shapes (frame weight 1)
    static bool AddBody(Transform parent, params string[] shapes)
    {
        var body = new GameObject("Body");
        body.transform.SetParent(parent, false);
        var mesh = new Mesh();
        mesh.shapes.AddRange(shapes);
        mesh.frameWeight = 1f;
        body.AddComponent<SkinnedMeshRenderer>().sharedMesh = mesh;
        return true;
    }

    static object GlbLoads()
    {
        DestroyAll();
        FacadeHooks.Disposed = 0;
        FacadeHooks.Step = (step, parent) => step != "Instantiate" || AddBody(parent, "blinkLeft", "happy", "viseme_aa", "eyeBlinkRight");
        var parentGo = new GameObject("parent");
        GameObject root = Instantiate(Result("glb", new byte[] { 1, 2, 3 }), parentGo.transform, CancellationToken.None);
        Expect(root != null && root.name == "chibi-7-glb", "root " + (root == null ? "null" : root.name));
        Expect(root.transform.parent == parentGo.transform, "not parented");
        Expect(root.GetComponent<GltfImportOwner>() != null && root.GetComponent<GltfImportOwner>().Import != null, "no GltfImportOwner");
        var face = root.GetComponent<ChibiAvatarExpressions>();
        Expect(face != null, "no ChibiAvatarExpressions");
        SkinnedMeshRenderer smr = root.transform.GetComponentsInChildren<SkinnedMeshRenderer>(true)[0];
        Expect(face.SetExpression("happy", 0.5f) && smr.GetBlendShapeWeight(1) == 0.5f, "happy 0.5: " + smr.GetBlendShapeWeight(1));
        Expect(face.SetViseme("aa", 2f) && smr.GetBlendShapeWeight(2) == 1f, "viseme aa clamped to 1: " + smr.GetBlendShapeWeight(2));
        Expect(face.SetExpression("blinkRight", 1f) && smr.GetBlendShapeWeight(3) == 1f, "blinkRight -> eyeBlinkRight");
        Expect(!face.SetExpression("blink", 1f), "blink needs blink, eyesClosed or both eyeBlink*; only eyeBlinkRight is there");
        Expect(!face.SetViseme("happy", 1f) && !face.SetExpression("nope", 1f), "non-visemes / unknown names");
        face.ResetAll();
        Expect(smr.GetBlendShapeWeight(1) == 0f && smr.GetBlendShapeWeight(2) == 0f && smr.GetBlendShapeWeight(3) == 0f, "ResetAll");
        UnityEngine.Object.Destroy(root);
        Expect(FacadeHooks.Disposed == 1, "destroying the avatar disposes the import once: " + FacadeHooks.Disposed);
        return face.Map.Names;
    }

    static object GlbCancelled(string atStep)
    {
        DestroyAll();
        FacadeHooks.Disposed = 0;
        var cts = new CancellationTokenSource();
        FacadeHooks.Step = (step, parent) =>
        {
            if (step == "Instantiate") AddBody(parent, "happy");
            if (step == atStep) cts.Cancel(); // glTFast goes on regardless, and reports success
            return true;
        };
        try
        {
            Instantiate(Result("glb", new byte[] { 1 }), new GameObject("parent").transform, cts.Token);
            throw new Exception("no OperationCanceledException");
        }
        catch (OperationCanceledException) { }
        Expect(FacadeHooks.Disposed == 1, "the import is disposed: " + FacadeHooks.Disposed);
        Expect(LiveAvatars().Count == 0, "avatars left in the scene: " + string.Join(", ", LiveAvatars().ToArray()));
        return "cancelled at " + atStep;
    }

    static object GlbParentDestroyed()
    {
        DestroyAll();
        FacadeHooks.Disposed = 0;
        var parentGo = new GameObject("parent");
        FacadeHooks.Step = (step, parent) =>
        {
            if (step == "Load") UnityEngine.Object.Destroy(parentGo); // e.g. the loader's GameObject
            return step != "Instantiate" || AddBody(parent, "happy");
        };
        try
        {
            Instantiate(Result("glb", new byte[] { 1 }), parentGo.transform, CancellationToken.None);
            throw new Exception("no OperationCanceledException");
        }
        catch (OperationCanceledException) { }
        Expect(LiveAvatars().Count == 0, "orphaned avatars: " + string.Join(", ", LiveAvatars().ToArray()));
        return "ok";
    }

    static object GlbLoadFails()
    {
        DestroyAll();
        FacadeHooks.Disposed = 0;
        FacadeHooks.Step = (step, parent) => step != "Load";
        try
        {
            Instantiate(Result("glb", new byte[] { 1 }), null, CancellationToken.None);
            throw new Exception("no InvalidOperationException");
        }
        catch (InvalidOperationException e) { Expect(e.Message.Contains("could not load"), e.Message); }
        Expect(FacadeHooks.Disposed == 1 && LiveAvatars().Count == 0, "disposed " + FacadeHooks.Disposed);
        return "ok";
    }

    static object VrmExpressions()
    {
        DestroyAll();
        Vrm10Instance vrm = null;
        Vrm10.Loader = () =>
        {
            var go = new GameObject("VRM");
            vrm = go.AddComponent<Vrm10Instance>();
            AddBody(go.transform, "happy", "blinkLeft", "viseme_PP", "mouthSmileLeft");
            foreach (ExpressionPreset p in new[] { ExpressionPreset.happy, ExpressionPreset.blinkLeft, ExpressionPreset.aa })
                vrm.Runtime.Expression.keys.Add(ExpressionKey.CreateFromPreset(p));
            vrm.Runtime.Expression.keys.Add(ExpressionKey.CreateCustom("wink_star"));
            return vrm;
        };
        GameObject root = Instantiate(Result("vrm", new byte[] { 1 }), null, CancellationToken.None);
        Expect(root == vrm.gameObject && root.name == "chibi-7-vrm", "root is the Vrm10Instance's GameObject");
        var face = root.GetComponent<ChibiAvatarExpressions>();
        SkinnedMeshRenderer smr = root.transform.GetComponentsInChildren<SkinnedMeshRenderer>(true)[0];
        Dictionary<ExpressionKey, float> w = vrm.Runtime.Expression.weights;
        Expect(face.SetExpression("happy", 0.75f) && w[ExpressionKey.CreateFromPreset(ExpressionPreset.happy)] == 0.75f
               && smr.GetBlendShapeWeight(0) == 0f, "happy goes through UniVRM, not the blend shape");
        Expect(face.SetExpression("eyeBlinkLeft", 1f) && w[ExpressionKey.CreateFromPreset(ExpressionPreset.blinkLeft)] == 1f,
               "eyeBlinkLeft (absent) -> the VRM's blinkLeft");
        Expect(face.SetViseme("viseme_aa", 1f) && w[ExpressionKey.CreateFromPreset(ExpressionPreset.aa)] == 1f, "viseme_aa -> VRM aa");
        Expect(face.SetViseme("PP", 1f) && smr.GetBlendShapeWeight(2) == 1f, "PP -> blend shape viseme_PP (UniVRM has no preset)");
        Expect(face.SetExpression("wink_star", 1f) && w[ExpressionKey.CreateCustom("wink_star")] == 1f, "custom expression");
        Expect(face.SetExpression("mouthSmileLeft", 1f) && smr.GetBlendShapeWeight(3) == 1f, "other names: blend shapes");
        Expect(!face.SetExpression("sad", 1f), "sad: neither an expression nor a blend shape of this avatar");
        Vrm10.Loader = null;
        return face.Map.Names;
    }

    static object PngLeak()
    {
        DestroyAll();
        try
        {
            ChibiUnityAssets.LoadTexture(Result("png", new byte[0]));
            throw new Exception("no InvalidDataException");
        }
        catch (InvalidDataException) { }
        var live = new List<string>();
        lock (UnityEngine.Object.created)
            foreach (UnityEngine.Object o in UnityEngine.Object.created)
                if (o is Texture2D && !o.destroyed) live.Add(o.name);
        Expect(live.Count == 0, "textures left: " + string.Join(", ", live.ToArray()));
        return "ok";
    }

    // [ContextMenu] methods also run in Edit mode, where Awake has not run
    static object ContextMenuInEditMode()
    {
        Application.playing = false;
        Type type = Type.GetType("ChibiMeta.Bridge.Samples.LoadAvatarSample, Assembly-CSharp", true);
        var component = (Component)Activator.CreateInstance(type);
        FieldInfo seed = type.GetField("seed");
        long before = (long)seed.GetValue(component);
        MethodInfo menu = type.GetMethod("LoadNextSeed", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public);
        TextWriter stdout = Console.Out;
        var captured = new StringWriter();
        Console.SetOut(captured);
        try { menu.Invoke(component, null); }
        finally { Console.SetOut(stdout); }
        long after = (long)seed.GetValue(component);
        Expect(after == before, "the seed changed in Edit mode: " + before + " -> " + after);
        Expect(captured.ToString().Contains("[LogWarning]"), "no warning logged: " + captured);
        return captured.ToString().Trim();
    }

    static object DefineSetup()
    {
        Type type = Type.GetType("ChibiMeta.Bridge.Editor.UniVrmDefineSetup, ChibiMeta.Bridge.Editor.Setup", true);
        MethodInfo decide = type.GetMethod("Decide", BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public);
        var cases = new[]
        {
            // VRM10 asmdef path, current symbols, expected symbols
            new[] { "Assets/VRM10/Runtime/VRM10.asmdef", "", "CHIBI_META_UNIVRM" },
            new[] { "Assets/VRM10/Runtime/VRM10.asmdef", "FOO;BAR", "FOO;BAR;CHIBI_META_UNIVRM" },
            new[] { "Assets/VRM10/Runtime/VRM10.asmdef", "FOO;CHIBI_META_UNIVRM", "FOO;CHIBI_META_UNIVRM" },
            new[] { "Assets\\VRM10\\Runtime\\VRM10.asmdef", null, "CHIBI_META_UNIVRM" },
            new[] { "Packages/com.vrmc.vrm/Runtime/VRM10.asmdef", "FOO", "FOO" },
            new[] { "Packages/com.vrmc.vrm/Runtime/VRM10.asmdef", "CHIBI_META_UNIVRM", "CHIBI_META_UNIVRM" },
            new[] { null, "FOO;CHIBI_META_UNIVRM;BAR", "FOO;BAR" },
            new[] { null, "FOO", "FOO" },
        };
        var results = new List<object>();
        foreach (string[] c in cases)
        {
            var got = (string)decide.Invoke(null, new object[] { c[0], c[1] });
            results.Add(new List<object> { c[0], c[1], got });
            Expect(got == c[2], "Decide(" + c[0] + ", " + c[1] + ") = " + got + ", expected " + c[2]);
        }
        return results;
    }

    static void Expect(bool condition, string what)
    {
        if (!condition) throw new Exception(what);
    }

    static void Check(string name, Func<object> body)
    {
        object detail;
        bool ok;
        try
        {
            detail = body();
            ok = true;
        }
        catch (Exception e)
        {
            ok = false;
            detail = (e is TargetInvocationException && e.InnerException != null ? e.InnerException : e).ToString();
            _failures++;
        }
        Console.WriteLine(MiniJson.Serialize(new Dictionary<string, object> { { "check", name }, { "ok", ok }, { "detail", detail } }));
    }
}

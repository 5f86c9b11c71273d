// Console checks of the package's plain-C# expression code (plugin_unity_bridge/Runtime: MorphTargetNames,
// ExpressionMap, GenerateRequest.MorphTargets). Run by tests/test_unity_expressions.py:
//   mono ExpressionChecks.exe INPUT.json
// INPUT: {"cases": {NAME: {"meshes": [[blend-shape names of mesh 0], ...], "vrm_expressions": [...] or null,
//         "expressions": [names], "visemes": [names]}}, "morph_targets": [[sets], ...]}
// Prints one JSON object: the name tables, each case's resolutions, and what requests with each
// morph_targets value serialise to.
using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using ChibiMeta.Bridge;

static class ExpressionChecks
{
    static int Main(string[] args)
    {
        if (args.Length != 1)
        {
            Console.Error.WriteLine("usage: ExpressionChecks.exe INPUT.json");
            return 2;
        }
        Dictionary<string, object> input = MiniJson.ParseObject(File.ReadAllText(args[0]));
        var output = new Dictionary<string, object>
        {
            { "tables", Tables() },
            { "cases", Cases((Dictionary<string, object>)input["cases"]) },
            { "requests", Requests((List<object>)input["morph_targets"]) },
        };
        Console.WriteLine(MiniJson.Serialize(output));
        return 0;
    }

    static Dictionary<string, object> Tables()
    {
        var sets = new Dictionary<string, object>();
        foreach (var kv in MorphTargetNames.Sets) sets[kv.Key] = new List<object>(kv.Value);
        var setOrder = new List<object>();
        foreach (string k in MorphTargetNames.Sets.Keys) setOrder.Add(k);
        return new Dictionary<string, object>
        {
            { "VRM_PRESETS", new List<object>(MorphTargetNames.VrmPresets) },
            { "OCULUS_VISEMES", new List<object>(MorphTargetNames.OculusVisemes) },
            { "ARKIT", new List<object>(MorphTargetNames.Arkit) },
            { "RPM_EXTRA", new List<object>(MorphTargetNames.RpmExtra) },
            { "MORPH_SETS", sets },
            { "MORPH_SET_ORDER", setOrder },
            { "DEFAULT_MORPH_SETS", new List<object>(MorphTargetNames.DefaultSets) },
        };
    }

    static Dictionary<string, object> Cases(Dictionary<string, object> cases)
    {
        var results = new Dictionary<string, object>();
        foreach (var kv in cases)
        {
            var c = (Dictionary<string, object>)kv.Value;
            var meshes = new List<List<string>>();
            foreach (object m in (List<object>)c["meshes"]) meshes.Add(Strings(m));
            object vrm;
            c.TryGetValue("vrm_expressions", out vrm);
            var map = new ExpressionMap(meshes, vrm == null ? null : Strings(vrm));
            var expressions = new Dictionary<string, object>();
            foreach (string n in Strings(c["expressions"])) expressions[n] = Describe(map.ResolveExpression(n));
            var visemes = new Dictionary<string, object>();
            foreach (string n in Strings(c["visemes"])) visemes[n] = Describe(map.ResolveViseme(n));
            results[kv.Key] = new Dictionary<string, object>
            {
                { "names", new List<object>(map.Names) },
                { "has_vrm", map.HasVrmExpressions },
                { "expressions", expressions },
                { "visemes", visemes },
            };
        }
        return results;
    }

    static object Describe(ExpressionTarget t)
    {
        if (t == null) return null;
        var shapes = new List<object>();
        foreach (BlendShapeRef b in t.BlendShapes) shapes.Add(new List<object> { b.Mesh, b.Index, b.Name });
        return new Dictionary<string, object> { { "via", t.Via }, { "vrm", t.VrmExpression }, { "shapes", shapes } };
    }

    static Dictionary<string, object> Requests(List<object> values)
    {
        MethodInfo toMessage = typeof(GenerateRequest).GetMethod("ToMessage", BindingFlags.NonPublic | BindingFlags.Instance);
        var cases = new List<object>();
        foreach (object v in values)
        {
            var request = new GenerateRequest { Seed = 5, Format = GenerateRequest.Glb };
            if (v != null) request.WithMorphTargets(Strings(v).ToArray());
            object targets;
            try { targets = new List<object>(MorphTargetNames.TargetsOf(request.MorphTargets)); }
            catch (ArgumentException e) { targets = "error: " + e.Message; }
            var msg = (Dictionary<string, object>)toMessage.Invoke(request, new object[] { "r1" });
            var png = new GenerateRequest { Seed = 5, Format = GenerateRequest.Png, MorphTargets = request.MorphTargets };
            var pngMsg = (Dictionary<string, object>)toMessage.Invoke(png, new object[] { "r2" });
            cases.Add(new Dictionary<string, object>
            {
                { "value", v },
                { "message", MiniJson.Serialize(msg) },
                { "canonical", request.CanonicalForm("model-x") },
                { "clone_canonical", request.Clone().CanonicalForm("model-x") },
                { "png_message", MiniJson.Serialize(pngMsg) },
                { "targets", targets },
            });
        }
        return new Dictionary<string, object> { { "cases", cases } };
    }

    static List<string> Strings(object list)
    {
        var result = new List<string>();
        foreach (object o in (List<object>)list) result.Add((string)o);
        return result;
    }
}

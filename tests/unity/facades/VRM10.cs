// FACADE, NOT UniVRM. Transcribed from vrm-c/UniVRM (MIT) at the pinned tags v0.110.0, v0.124.2, v0.130.1 and
// v0.131.1: only the declarations plugin_unity_bridge's glue uses (and the types of their parameters), each
// in the assembly it lives in at that tag. Paths start at Assets/ (up to 0.131.0) or Packages/ (0.131.x);
// "0.110.0:86" is the line at that tag. Version symbols (tests/unity/unity_compile.py): UNIVRM_0_125_OR_NEWER
// (IAwaitCaller/ITextureDeserializer moved from VRMShaders.GLTF.IO.Runtime to UniGLTF),
// UNIVRM_0_126_OR_NEWER, UNIVRM_0_128_2_OR_NEWER (new LoadBytesAsync parameters),
// UNIVRM_0_131_1_OR_NEWER (IAwaitCaller moved to UniGLTF.Utils). Bodies are inert stand-ins (VRM10: driven by tests/unity/GlueChecks.cs through internals).
// Assembly VRM10 (VRM10/Runtime/VRM10.asmdef).
using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using UniGLTF;
using UnityEngine;
#if !UNIVRM_0_125_OR_NEWER
using VRMShaders;
#endif

// stand-in state (Vrm10.Loader, Runtime, ExpressionKeys, weights) is internal, for tests/unity/GlueChecks.cs
[assembly: InternalsVisibleTo("GlueChecks")]

namespace UniGLTF.Extensions.VRMC_vrm
{
    // VRM10/Runtime/Format/Vrm/Format.g.cs:40
    public class Meta {}
}

namespace UniVRM10.Migration
{
    // VRM10/Runtime/Migration/Vrm0Meta.cs:35 (0.110.0, 0.124.2), :36 (0.130.1, 0.131.1)
    public class Vrm0Meta {}
}

namespace UniVRM10
{
    // VRM10/Runtime/Components/Vrm10Runtime/ControlRig/ControlRigGenerationOption.cs:3
    public enum ControlRigGenerationOption
    {
        None = 0,
        Generate = 1,
        Vrm0XCompatibleRig = 1,
    }

#if UNIVRM_0_128_2_OR_NEWER
    // VRM10/Runtime/Components/Vrm10Runtime/Springbone/IVrm10SpringBoneRuntime.cs:10 (0.130.1, 0.131.1)
    public interface IVrm10SpringBoneRuntime {}
#endif

    // VRM10/Runtime/IO/Vrm10.cs:14 (0.110.0), :15 (0.124.2), :13 (0.130.1, 0.131.1)
    public static class Vrm10
    {
        // :21 (0.110.0), :22 (0.124.2), :20 (0.130.1, 0.131.1)
        public delegate void VrmMetaInformationCallback(Texture2D thumbnail, UniGLTF.Extensions.VRMC_vrm.Meta vrm10Meta, Migration.Vrm0Meta vrm0Meta);

        // :86 (0.110.0), :88 (0.124.2), :92 (0.130.1, 0.131.1)
        public static Task<Vrm10Instance> LoadBytesAsync(
            byte[] bytes,
            bool canLoadVrm0X = true,
            ControlRigGenerationOption controlRigGenerationOption = ControlRigGenerationOption.Generate,
            bool showMeshes = true,
            IAwaitCaller awaitCaller = null,
            ITextureDeserializer textureDeserializer = null,
            IMaterialDescriptorGenerator materialGenerator = null,
            VrmMetaInformationCallback vrmMetaInformationCallback = null,
            CancellationToken ct = default(CancellationToken)
#if UNIVRM_0_126_OR_NEWER
            , ImporterContextSettings importerContextSettings = null
#endif
#if UNIVRM_0_128_2_OR_NEWER
            , IVrm10SpringBoneRuntime springboneRuntime = null
#endif
            ) { return Task.FromResult(Loader == null ? null : Loader()); }

        internal static Func<Vrm10Instance> Loader;
    }

    // VRM10/Runtime/Components/Vrm10Instance/Vrm10Instance.cs:19 (0.110.0), :20 (0.124.2), :23 (0.130.1, 0.131.1)
    public class Vrm10Instance : MonoBehaviour
    {
        // :92 (0.110.0), :93 (0.124.2), :151 (0.130.1, 0.131.1)
        public Vrm10Runtime Runtime { get { return runtime; } }
        internal Vrm10Runtime runtime = new Vrm10Runtime();
    }

    // VRM10/Runtime/Components/Vrm10Runtime/Vrm10Runtime.cs:22 (0.110.0), :16 (0.124.2), :20 (0.130.1, 0.131.1)
    public class Vrm10Runtime : IDisposable
    {
        // :39 (0.110.0), :28 (0.124.2), :32 (0.130.1, 0.131.1)
        public Vrm10RuntimeExpression Expression { get; } = new Vrm10RuntimeExpression();
        public void Dispose() {}
    }

    // VRM10/Runtime/Components/Vrm10Runtime/Vrm10RuntimeExpression.cs:6 (0.110.0, 0.124.2), :7 (0.130.1), :9 (0.131.1)
    public sealed class Vrm10RuntimeExpression
    {
        // :20 (0.110.0), :18 (0.124.2), :19 (0.130.1), :21 (0.131.1)
        public IReadOnlyList<ExpressionKey> ExpressionKeys { get { return keys; } }
        // :94 (0.110.0), :106 (0.124.2), :103 (0.130.1), :109 (0.131.1); unknown keys are ignored
        public void SetWeight(ExpressionKey expressionKey, float weight) { if (keys.Contains(expressionKey)) weights[expressionKey] = weight; }
        internal readonly List<ExpressionKey> keys = new List<ExpressionKey>();
        internal readonly Dictionary<ExpressionKey, float> weights = new Dictionary<ExpressionKey, float>();
    }

    // VRM10/Runtime/Components/Expression/ExpressionPreset.cs:3
    public enum ExpressionPreset
    {
        custom, happy, angry, sad, relaxed, surprised, aa, ih, ou, ee, oh,
        blink, blinkLeft, blinkRight, lookUp, lookDown, lookLeft, lookRight, neutral,
    }

    // VRM10/Runtime/Components/Expression/ExpressionKey.cs:9 (0.110.0), :8 (0.124.2, 0.130.1, 0.131.1)
    public readonly struct ExpressionKey : IEquatable<ExpressionKey>, IComparable<ExpressionKey>
    {
        // :25 (0.110.0), :24 (others)
        public readonly ExpressionPreset Preset;
        // :31 (0.110.0), :30 (others)
        public readonly string Name;

        // :88 (0.110.0), :87 (others)
        public ExpressionKey(ExpressionPreset preset, string customName = null) { Preset = preset; Name = customName; }
        // :116 (0.110.0), :117 (others)
        public static ExpressionKey CreateCustom(String key) { return new ExpressionKey(ExpressionPreset.custom, key); }
        // :121 (0.110.0), :122 (others)
        public static ExpressionKey CreateFromPreset(ExpressionPreset preset) { return new ExpressionKey(preset); }

        public bool Equals(ExpressionKey other) { return Preset == other.Preset && Name == other.Name; }
        public override bool Equals(object obj) { return obj is ExpressionKey && Equals((ExpressionKey)obj); }
        public override int GetHashCode() { return (int)Preset; }
        public int CompareTo(ExpressionKey other) { return Preset.CompareTo(other.Preset); }
    }
}

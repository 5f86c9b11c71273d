// FACADE, NOT UniVRM. Transcribed from vrm-c/UniVRM (MIT) at the pinned tags v0.110.0, v0.124.2, v0.130.1 and
// v0.131.1: only the declarations plugin_unity_bridge's glue uses (and the types of their parameters), each
// in the assembly it lives in at that tag. Paths start at Assets/ (up to 0.131.0) or Packages/ (0.131.x);
// "0.110.0:86" is the line at that tag. Version symbols (tests/unity/unity_compile.py): UNIVRM_0_125_OR_NEWER
// (IAwaitCaller/ITextureDeserializer moved from VRMShaders.GLTF.IO.Runtime to UniGLTF),
// UNIVRM_0_126_OR_NEWER, UNIVRM_0_128_2_OR_NEWER (new LoadBytesAsync parameters),
// UNIVRM_0_131_1_OR_NEWER (IAwaitCaller moved to UniGLTF.Utils). Bodies are inert stand-ins (VRM10: driven by tests/unity/GlueChecks.cs through internals).
// Assembly VRMShaders.GLTF.IO.Runtime (VRMShaders/GLTF/IO/Runtime/VRMShaders.GLTF.IO.Runtime.asmdef), up to 0.124.x.
using System;
using System.Threading.Tasks;

namespace VRMShaders
{
#if !UNIVRM_0_125_OR_NEWER
    // VRMShaders/GLTF/IO/Runtime/AwaitCaller/IAwaitCaller.cs:12 (0.110.0, 0.124.2)
    public interface IAwaitCaller
    {
        Task NextFrame();
        Task Run(Action action);
        Task<T> Run<T>(Func<T> action);
        Task NextFrameIfTimedOut();
    }

    // VRMShaders/GLTF/IO/Runtime/Texture/Importer/ITextureDeserializer.cs:10 (0.110.0, 0.124.2)
    public interface ITextureDeserializer {}
#endif
}

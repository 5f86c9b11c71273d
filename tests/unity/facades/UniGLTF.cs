// FACADE, NOT UniVRM. Transcribed from vrm-c/UniVRM (MIT) at the pinned tags v0.110.0, v0.124.2, v0.130.1 and
// v0.131.1: only the declarations plugin_unity_bridge's glue uses (and the types of their parameters), each
// in the assembly it lives in at that tag. Paths start at Assets/ (up to 0.131.0) or Packages/ (0.131.x);
// "0.110.0:86" is the line at that tag. Version symbols (tests/unity/unity_compile.py): UNIVRM_0_125_OR_NEWER
// (IAwaitCaller/ITextureDeserializer moved from VRMShaders.GLTF.IO.Runtime to UniGLTF),
// UNIVRM_0_126_OR_NEWER, UNIVRM_0_128_2_OR_NEWER (new LoadBytesAsync parameters),
// UNIVRM_0_131_1_OR_NEWER (IAwaitCaller moved to UniGLTF.Utils). Bodies are inert stand-ins (VRM10: driven by tests/unity/GlueChecks.cs through internals).
// Assembly UniGLTF (UniGLTF/Runtime/UniGLTF.asmdef).
using System;
using System.Threading.Tasks;

namespace UniGLTF
{
#if UNIVRM_0_125_OR_NEWER && !UNIVRM_0_131_1_OR_NEWER
    // Assets/UniGLTF/Runtime/UniGLTF/IO/AwaitCaller/IAwaitCaller.cs:12 (0.125.0 to 0.131.0; 0.130.1 pinned)
    public interface IAwaitCaller
    {
        Task NextFrame();
        Task Run(Action action);
        Task<T> Run<T>(Func<T> action);
        Task NextFrameIfTimedOut();
    }
#endif

#if UNIVRM_0_125_OR_NEWER
    // UniGLTF/Runtime/UniGLTF/IO/TextureIO/Import/ITextureDeserializer.cs:10 (0.130.1, 0.131.1)
    public interface ITextureDeserializer {}
#endif

    // UniGLTF/Runtime/UniGLTF/IO/MaterialIO/IMaterialDescriptorGenerator.cs:9 (0.110.0, 0.124.2),
    // UniGLTF/Runtime/UniGLTF/IO/MaterialIO/Import/IMaterialDescriptorGenerator.cs:9 (0.130.1, 0.131.1)
    public interface IMaterialDescriptorGenerator {}

#if UNIVRM_0_126_OR_NEWER
    // UniGLTF/Runtime/UniGLTF/IO/ImporterContextSettings.cs:9 (0.130.1, 0.131.1)
    public class ImporterContextSettings {}
#endif
}

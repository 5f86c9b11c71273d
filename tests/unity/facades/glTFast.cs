// FACADE, NOT glTFast. The declarations of the glTFast assembly that plugin_unity_bridge's glue uses
// (plus the overloads that take part in resolving its calls), transcribed from
// Unity-Technologies/com.unity.cloud.gltfast at the pinned tags v5.0.0, v5.1.0, release/6.10.0,
// release/6.14.1 and release/6.15.0 (Apache-2.0). Paths are relative to Runtime/Scripts/ (5.x) or
// Packages/com.unity.cloud.gltfast/Runtime/Scripts/ (6.x); "5.1.0:350" is the line at that tag.
// Version symbols, set by tests/unity/unity_compile.py: GLTFAST_6_0_OR_NEWER (GltfImportBase
// hierarchy), GLTFAST_6_11_OR_NEWER (Load(NativeArray<byte>.ReadOnly), LoadGltfBinary obsolete).
// Bodies are stand-ins that ask FacadeHooks (internal, set by tests/unity/GlueChecks.cs) what to do; like
// the real ones they ignore the cancellation token. Compiled into glTFast.dll (glTFast.asmdef's name).
using System;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using UnityEngine;
#if GLTFAST_6_11_OR_NEWER
using Unity.Collections;
#endif

[assembly: InternalsVisibleTo("GlueChecks")]

namespace GLTFast.Loading
{
    // Loading/IDownload.cs:15 (5.0.0-6.10.0), Loading/IDownloadProvider.cs:12 (6.14.1, 6.15.0)
    public interface IDownloadProvider {}
}

namespace GLTFast.Logging
{
    // Logging/ICodeLogger.cs:13
    public interface ICodeLogger {}
}

namespace GLTFast.Materials
{
    // Material/IMaterialGenerator.cs:14
    public interface IMaterialGenerator {}
}

namespace GLTFast.Schema
{
#if GLTFAST_6_0_OR_NEWER
    // Schema/Root.cs: RootBase 6.10.0:54, 6.14.1:52, 6.15.0:52; Root 6.10.0:18, 6.14.1:16, 6.15.0:16
    public abstract class RootBase {}
    public class Root : RootBase {}
#else
    // Schema/Root.cs 5.0.0/5.1.0:17
    public class Root {}
#endif
}

namespace GLTFast
{
    using Loading;
    using Logging;
    using Materials;
    using Schema;

    // stand-in only: what the import steps return, and how often Dispose ran
    internal static class FacadeHooks
    {
        internal static Func<string, Transform, bool> Step;
        internal static int Disposed;
        internal static bool Run(string step, Transform parent) { return Step == null || Step(step, parent); }
    }

    // IDeferAgent.cs:15
    public interface IDeferAgent {}

    // IInstantiator.cs:16
    public interface IInstantiator {}

    // ImportSettings.cs:16
    public class ImportSettings {}

#if GLTFAST_6_0_OR_NEWER
    // GltfImport.cs 6.10.0:62, 6.14.1:68, 6.15.0:65
    public class GltfImport : GltfImportBase<Root>
    {
        // 6.10.0:67, 6.14.1:73, 6.15.0:70
        public GltfImport(
            IDownloadProvider downloadProvider = null,
            IDeferAgent deferAgent = null,
            IMaterialGenerator materialGenerator = null,
            ICodeLogger logger = null
        ) : base(downloadProvider, deferAgent, materialGenerator, logger) {}
    }

    // GltfImport.cs 6.10.0:84, 6.14.1:90, 6.15.0:87
    public abstract class GltfImportBase<TRoot> : GltfImportBase where TRoot : RootBase
    {
        // 6.10.0:88, 6.14.1:94, 6.15.0:91
        public GltfImportBase(
            IDownloadProvider downloadProvider = null,
            IDeferAgent deferAgent = null,
            IMaterialGenerator materialGenerator = null,
            ICodeLogger logger = null
        ) : base(downloadProvider, deferAgent, materialGenerator, logger) {}
    }

    // GltfImport.cs 6.10.0:115, 6.14.1:121, 6.15.0:118
    public abstract class GltfImportBase : IDisposable
    {
        // 6.10.0:300, 6.14.1:297, 6.15.0:295
        public GltfImportBase(
            IDownloadProvider downloadProvider = null,
            IDeferAgent deferAgent = null,
            IMaterialGenerator materialGenerator = null,
            ICodeLogger logger = null
        ) {}
#else
    // GltfImport.cs 5.0.0:77, 5.1.0:65
    public class GltfImport : IDisposable
    {
        // 5.0.0:255, 5.1.0:243
        public GltfImport(
            IDownloadProvider downloadProvider = null,
            IDeferAgent deferAgent = null,
            IMaterialGenerator materialGenerator = null,
            ICodeLogger logger = null
        ) {}
#endif

        // 5.0.0:324, 5.1.0:312, 6.10.0:403, 6.14.1:400, 6.15.0:398
        public Task<bool> Load(
            string url,
            ImportSettings importSettings = null,
            CancellationToken cancellationToken = default(CancellationToken)
        ) { return Task.FromResult(false); }

        // 5.0.0:341, 5.1.0:329, 6.10.0:420, 6.14.1:417, 6.15.0:415
        public Task<bool> Load(
            Uri url,
            ImportSettings importSettings = null,
            CancellationToken cancellationToken = default(CancellationToken)
        ) { return Task.FromResult(false); }

        // 5.0.0:362, 5.1.0:350, 6.10.0:441, 6.14.1:435, 6.15.0:433
        public Task<bool> Load(
            byte[] data,
            Uri uri = null,
            ImportSettings importSettings = null,
            CancellationToken cancellationToken = default(CancellationToken)
        ) { return Task.FromResult(FacadeHooks.Run("Load", null)); }

#if GLTFAST_6_11_OR_NEWER
        // 6.14.1:461, 6.15.0:459 (from 6.11.0)
        public Task<bool> Load(
            NativeArray<byte>.ReadOnly data,
            Uri uri = null,
            ImportSettings importSettings = null,
            CancellationToken cancellationToken = default(CancellationToken)
        ) { return Task.FromResult(false); }

        // 6.14.1:597-598, 6.15.0:590-591 (obsolete from 6.11.0)
        [Obsolete("Use the generic Load instead.")]
#endif
        // 5.0.0:448, 5.1.0:436, 6.10.0:573
        public Task<bool> LoadGltfBinary(
            byte[] bytes,
            Uri uri = null,
            ImportSettings importSettings = null,
            CancellationToken cancellationToken = default(CancellationToken)
        ) { return Task.FromResult(false); }

        // 5.0.0:525, 5.1.0:513, 6.10.0:651, 6.14.1:677, 6.15.0:671
        public Task<bool> InstantiateMainSceneAsync(
            Transform parent,
            CancellationToken cancellationToken = default(CancellationToken)
        ) { return Task.FromResult(FacadeHooks.Run("Instantiate", parent)); }

        // 5.0.0:542, 5.1.0:530, 6.10.0:669, 6.14.1:695, 6.15.0:689
        public Task<bool> InstantiateMainSceneAsync(
            IInstantiator instantiator,
            CancellationToken cancellationToken = default(CancellationToken)
        ) { return Task.FromResult(false); }

        // 5.0.0:607, 5.1.0:595, 6.10.0:734, 6.14.1:760, 6.15.0:772
        public void Dispose() { FacadeHooks.Disposed++; }
    }
}

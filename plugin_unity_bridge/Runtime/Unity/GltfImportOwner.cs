#if CHIBI_META_GLTFAST
using GLTFast;
using UnityEngine;

namespace ChibiMeta.Bridge.Unity
{
    /// <summary>Disposes a glTFast import (its meshes, materials, textures) when the avatar is destroyed.</summary>
    [AddComponentMenu("")]
    public sealed class GltfImportOwner : MonoBehaviour
    {
        /// <summary>The import that created this avatar.</summary>
        public GltfImport Import { get; set; }

        void OnDestroy()
        {
            if (Import != null) Import.Dispose();
            Import = null;
        }
    }
}
#endif

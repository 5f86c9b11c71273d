using System;
using System.Threading;
using System.Threading.Tasks;
using UnityEngine;
#if CHIBI_META_GLTFAST
using GLTFast;
#endif
#if CHIBI_META_UNIVRM
using UniVRM10;
#endif

namespace ChibiMeta.Bridge.Unity
{
    /// <summary>
    /// Turns a <see cref="GenerateResult"/> into scene objects: GLB with glTFast
    /// (<c>GltfImport.LoadGltfBinary</c> + <c>InstantiateMainSceneAsync</c>), VRM with UniVRM
    /// (<c>Vrm10.LoadBytesAsync</c>) when <c>com.vrmc.vrm</c> is installed, else as plain glTF with
    /// glTFast; PNG as a sprite. Main thread only.
    /// </summary>
    public static class ChibiAvatarInstantiator
    {
        /// <summary>True when a glTFast package (com.unity.cloud.gltfast or com.atteneder.gltfast) is installed.</summary>
        public const bool HasGltfast =
#if CHIBI_META_GLTFAST
            true;
#else
            false;
#endif

        /// <summary>True when UniVRM (com.vrmc.vrm) is installed.</summary>
        public const bool HasUniVrm =
#if CHIBI_META_UNIVRM
            true;
#else
            false;
#endif

        /// <summary>Instantiates <paramref name="result"/> under <paramref name="parent"/> and returns its root.</summary>
        public static async Task<GameObject> InstantiateAsync(GenerateResult result, Transform parent,
                                                              CancellationToken cancellationToken = default(CancellationToken))
        {
            if (result == null) throw new ArgumentNullException(nameof(result));
            string name = "chibi-" + result.Seed + "-" + result.Format;
            if (result.Format == GenerateRequest.Png) return FaceSprite(result, parent, name);
#if CHIBI_META_UNIVRM
            if (result.Format == GenerateRequest.Vrm)
            {
                Vrm10Instance vrm = await Vrm10.LoadBytesAsync(result.Data, canLoadVrm0X: false, showMeshes: true, ct: cancellationToken);
                if (vrm == null) throw new InvalidOperationException("UniVRM could not load '" + result.Id + "'");
                vrm.gameObject.name = name;
                vrm.transform.SetParent(parent, false);
                return vrm.gameObject;
            }
#else
            if (result.Format == GenerateRequest.Vrm)
                Debug.LogWarning("chibi_meta: UniVRM (com.vrmc.vrm) is not installed; loading the VRM as plain glTF " +
                                 "(no humanoid, expressions or spring bones).");
#endif
#if CHIBI_META_GLTFAST
            var import = new GltfImport();
            bool ok = await import.LoadGltfBinary(result.Data, cancellationToken: cancellationToken);
            if (!ok)
            {
                import.Dispose();
                throw new InvalidOperationException("glTFast could not load '" + result.Id + "'");
            }
            var root = new GameObject(name);
            root.transform.SetParent(parent, false);
            ok = await import.InstantiateMainSceneAsync(root.transform);
            if (!ok)
            {
                UnityEngine.Object.Destroy(root);
                import.Dispose();
                throw new InvalidOperationException("glTFast could not instantiate '" + result.Id + "'");
            }
            // glTFast owns the meshes, materials and textures: release them with the avatar
            root.AddComponent<GltfImportOwner>().Import = import;
            return root;
#else
            await Task.Yield();
            throw new NotSupportedException("install glTFast (com.unity.cloud.gltfast) to load GLB avatars");
#endif
        }

        static GameObject FaceSprite(GenerateResult result, Transform parent, string name)
        {
            Texture2D texture = ChibiUnityAssets.LoadTexture(result);
            var go = new GameObject(name);
            go.transform.SetParent(parent, false);
            var sprite = Sprite.Create(texture, new Rect(0, 0, texture.width, texture.height), new Vector2(0.5f, 0.5f), texture.width);
            go.AddComponent<SpriteRenderer>().sprite = sprite;
            return go;
        }
    }

#if CHIBI_META_GLTFAST
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
#endif
}

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
    /// (<c>GltfImport.Load</c> + <c>InstantiateMainSceneAsync</c>), VRM with UniVRM
    /// (<c>Vrm10.LoadBytesAsync</c>) when it is installed, else as plain glTF with glTFast; PNG as a
    /// sprite. GLB and VRM avatars get a <see cref="ChibiAvatarExpressions"/>. Main thread only.
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

        /// <summary>True when UniVRM (com.vrmc.vrm, or its .unitypackage with the CHIBI_META_UNIVRM symbol) is installed.</summary>
        public const bool HasUniVrm =
#if CHIBI_META_UNIVRM
            true;
#else
            false;
#endif

        /// <summary>
        /// Instantiates <paramref name="result"/> under <paramref name="parent"/> and returns its root.
        /// When <paramref name="cancellationToken"/> is cancelled, or <paramref name="parent"/> is destroyed,
        /// before the avatar is in the scene, everything loaded so far is destroyed and the task ends as
        /// cancelled (glTFast itself does not stop loading bytes when asked to).
        /// </summary>
        public static async Task<GameObject> InstantiateAsync(GenerateResult result, Transform parent,
                                                              CancellationToken cancellationToken = default(CancellationToken))
        {
            if (result == null) throw new ArgumentNullException(nameof(result));
            cancellationToken.ThrowIfCancellationRequested();
            bool hadParent = parent != null;
            string name = "chibi-" + result.Seed + "-" + result.Format;
            if (result.Format == GenerateRequest.Png) return FaceSprite(result, parent, name);
            GameObject root;
#if CHIBI_META_UNIVRM
            if (result.Format == GenerateRequest.Vrm) root = await LoadVrmAsync(result, name, cancellationToken);
            else root = await LoadGltfAsync(result, name, cancellationToken);
#else
            if (result.Format == GenerateRequest.Vrm)
                Debug.LogWarning("chibi_meta: UniVRM (com.vrmc.vrm) is not installed; loading the VRM as plain glTF " +
                                 "(no humanoid, expressions or spring bones).");
            root = await LoadGltfAsync(result, name, cancellationToken);
#endif
            if (cancellationToken.IsCancellationRequested || (hadParent && parent == null))
            {
                DestroySafely(root);
                throw new OperationCanceledException("the avatar load was cancelled (or its parent destroyed) while loading",
                                                     cancellationToken);
            }
            root.transform.SetParent(parent, false);
            root.AddComponent<ChibiAvatarExpressions>();
            return root;
        }

#if CHIBI_META_GLTFAST
        static async Task<GameObject> LoadGltfAsync(GenerateResult result, string name, CancellationToken ct)
        {
            var import = new GltfImport();
            GameObject root = null;
            try
            {
                // Load(byte[], ...) is the same call from glTFast 5.0 to 6.15; LoadGltfBinary is obsolete from 6.11.
                // Neither looks at the token while it loads bytes, so it is checked after every step.
                bool ok = await import.Load(result.Data, cancellationToken: ct);
                ct.ThrowIfCancellationRequested();
                if (!ok) throw new InvalidOperationException("glTFast could not load '" + result.Id + "'");
                root = new GameObject(name);
                ok = await import.InstantiateMainSceneAsync(root.transform, ct);
                ct.ThrowIfCancellationRequested();
                if (!ok) throw new InvalidOperationException("glTFast could not instantiate '" + result.Id + "'");
                // glTFast owns the meshes, materials and textures: release them with the avatar
                root.AddComponent<GltfImportOwner>().Import = import;
                import = null;
                GameObject done = root;
                root = null;
                return done;
            }
            finally
            {
                if (root != null) DestroySafely(root);
                if (import != null) import.Dispose();
            }
        }
#else
        static Task<GameObject> LoadGltfAsync(GenerateResult result, string name, CancellationToken ct)
        {
            return Task.FromException<GameObject>(new NotSupportedException(
                "install glTFast (com.unity.cloud.gltfast) to load GLB avatars ('" + result.Id + "')"));
        }
#endif

#if CHIBI_META_UNIVRM
        static async Task<GameObject> LoadVrmAsync(GenerateResult result, string name, CancellationToken ct)
        {
            Vrm10Instance vrm = await Vrm10.LoadBytesAsync(result.Data, canLoadVrm0X: false, showMeshes: true, ct: ct);
            if (vrm == null) throw new InvalidOperationException("UniVRM could not load '" + result.Id + "'");
            vrm.gameObject.name = name;
            return vrm.gameObject;
        }
#endif

        static GameObject FaceSprite(GenerateResult result, Transform parent, string name)
        {
            Texture2D texture = ChibiUnityAssets.LoadTexture(result);
            var go = new GameObject(name);
            go.transform.SetParent(parent, false);
            var sprite = Sprite.Create(texture, new Rect(0, 0, texture.width, texture.height), new Vector2(0.5f, 0.5f), texture.width);
            go.AddComponent<SpriteRenderer>().sprite = sprite;
            return go;
        }

        /// <summary>Destroy in Play mode, DestroyImmediate in Edit mode (where Destroy is an error).</summary>
        internal static void DestroySafely(UnityEngine.Object obj)
        {
            if (obj == null) return;
            if (Application.isPlaying) UnityEngine.Object.Destroy(obj);
            else UnityEngine.Object.DestroyImmediate(obj);
        }
    }
}

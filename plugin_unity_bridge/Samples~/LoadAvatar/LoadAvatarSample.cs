using ChibiMeta.Bridge;
using ChibiMeta.Bridge.Unity;
using UnityEngine;

namespace ChibiMeta.Bridge.Samples
{
    /// <summary>
    /// Sample: put this on an empty GameObject, press Play. It adds a <see cref="ChibiAvatarLoader"/>,
    /// asks for a pink-haired avatar with the seed below, and logs what the server resolved.
    /// Right-click the component header > "Load next seed" for another avatar (in Play mode).
    /// </summary>
    public sealed class LoadAvatarSample : MonoBehaviour
    {
        /// <summary>Address of `chibi-meta serve`.</summary>
        public string serverUrl = "ws://127.0.0.1:8765";
        /// <summary>The server's token, if it has one.</summary>
        public string token = "";
        /// <summary>The avatar's identity.</summary>
        public long seed = 7;
        /// <summary>glb, vrm or png.</summary>
        public string format = GenerateRequest.Glb;

        ChibiAvatarLoader _loader;

        void Awake()
        {
            EnsureLoader();
        }

        ChibiAvatarLoader EnsureLoader()
        {
            if (_loader != null) return _loader;
            _loader = gameObject.AddComponent<ChibiAvatarLoader>();
            _loader.loadOnStart = false;
            _loader.serverUrl = serverUrl;
            _loader.token = token;
            _loader.Loaded += (result, avatar) =>
            {
                Debug.Log("chibi_meta: seed " + result.Seed + " (" + result.ByteLength + " bytes, " +
                          (result.FromClientCache ? "from the local cache" : "from the server") + ")", avatar);
                // a smile, by name: works for GLB (glTFast blend shapes) and VRM (UniVRM expressions)
                ChibiAvatarExpressions face = _loader.Expressions;
                if (face != null) face.SetExpression("happy", 1f);
            };
            return _loader;
        }

        async void Start()
        {
            await Load();
        }

        async System.Threading.Tasks.Task Load()
        {
            var request = new GenerateRequest { Seed = seed, Format = format }.With("hair_color", "pink");
            try { await EnsureLoader().LoadAsync(request); }
            catch (ChibiBridgeException e) { Debug.LogWarning("chibi_meta: " + e.Code + ": " + e.Message); }
            catch (System.OperationCanceledException) { }
        }

        // Context menus also run in Edit mode, where Awake has not run and nothing should load into the scene.
        [ContextMenu("Load next seed")]
        async void LoadNextSeed()
        {
            if (!Application.isPlaying)
            {
                Debug.LogWarning("chibi_meta: enter Play mode to load avatars");
                return;
            }
            seed++;
            await Load();
        }
    }
}

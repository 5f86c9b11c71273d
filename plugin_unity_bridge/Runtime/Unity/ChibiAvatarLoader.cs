using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using UnityEngine;

namespace ChibiMeta.Bridge.Unity
{
    /// <summary>
    /// Requests an avatar from a chibi_meta bridge and instantiates it as a child of this GameObject
    /// (see <see cref="ChibiAvatarInstantiator"/>). Set up in the Inspector and tick
    /// <c>Load On Start</c>, or call <see cref="LoadAsync"/> from code.
    /// </summary>
    [AddComponentMenu("chibi_meta/Chibi Avatar Loader")]
    public sealed class ChibiAvatarLoader : MonoBehaviour
    {
        /// <summary>One fixed attribute of the request (name and value from the server's hello).</summary>
        [Serializable]
        public sealed class AttributeChoice
        {
            /// <summary>Attribute name, e.g. hair_color.</summary>
            public string name;
            /// <summary>Attribute value, e.g. pink.</summary>
            public string value;
        }

        [Tooltip("ws:// or wss:// address of `chibi-meta serve`")]
        public string serverUrl = "ws://127.0.0.1:8765";
        [Tooltip("The server's token. Prefer setting it from code (e.g. from your backend) over saving it in a scene.")]
        public string token = "";
        [Tooltip("Request and instantiate the avatar in Start()")]
        public bool loadOnStart = true;
        [Tooltip("The avatar's identity (0..4294967295); ignored when Random Seed is on")]
        public long seed = 7;
        [Tooltip("Let the server pick a seed (such requests are not cached)")]
        public bool randomSeed;
        [Tooltip("glb, vrm or png")]
        public string format = GenerateRequest.Glb;
        [Tooltip("Atlas size inside GLB/VRM: 256, 512 or 1024")]
        public int textureSize = 512;
        [Tooltip("Attributes to fix; the others follow from the seed")]
        public List<AttributeChoice> attributes = new List<AttributeChoice>();
        [Tooltip("Keep assets in Application.persistentDataPath/chibi_meta/assets")]
        public bool useCache = true;
        [Tooltip("Morph-target sets in the avatar: vrm, oculus, arkit, or none alone; empty: all (the server default)")]
        public List<string> morphTargets = new List<string>();

        /// <summary>Raised on the main thread when an avatar is in the scene.</summary>
        public event Action<GenerateResult, GameObject> Loaded;
        /// <summary>Raised on the main thread when a load fails (a <see cref="ChibiBridgeException"/> carries the server's code).</summary>
        public event Action<Exception> Failed;

        /// <summary>The current avatar instance, or null.</summary>
        public GameObject Avatar { get; private set; }
        /// <summary>The expressions of <see cref="Avatar"/> (null for PNG results and before the first load).</summary>
        public ChibiAvatarExpressions Expressions
        {
            get { return Avatar == null ? null : Avatar.GetComponent<ChibiAvatarExpressions>(); }
        }
        /// <summary>The result behind <see cref="Avatar"/>.</summary>
        public GenerateResult Result { get; private set; }

        /// <summary>
        /// The connection to use. When null, the loader opens its own from <see cref="serverUrl"/> and
        /// <see cref="token"/> and closes it when destroyed; one you assign is shared and left open.
        /// </summary>
        public ChibiBridgeClient Client
        {
            get { return _client; }
            set
            {
                if (_client != null && _ownsClient && _client != value) _client.Dispose();
                _client = value;
                _ownsClient = false;
            }
        }

        ChibiBridgeClient _client;
        bool _ownsClient;
        readonly CancellationTokenSource _lifetime = new CancellationTokenSource();

        async void Start()
        {
            if (!loadOnStart) return;
            try { await LoadAsync(); }
            catch (OperationCanceledException) { } // destroyed while loading
            catch (Exception) { } // already reported through Failed and the console
        }

        /// <summary>
        /// Requests <paramref name="request"/> (or the Inspector settings when null), replaces the current
        /// avatar with it and returns the new instance.
        /// </summary>
        public async Task<GameObject> LoadAsync(GenerateRequest request = null)
        {
            CancellationToken ct = _lifetime.Token;
            try
            {
                ChibiBridgeClient client = await EnsureClientAsync(ct);
                GenerateResult result = await client.GenerateAsync(request ?? BuildRequest(), ct);
                ct.ThrowIfCancellationRequested();
                // InstantiateAsync ends as cancelled when this loader is destroyed (ct, and its parent, go with it)
                GameObject instance = await ChibiAvatarInstantiator.InstantiateAsync(result, transform, ct);
                if (this == null || ct.IsCancellationRequested)
                {
                    ChibiAvatarInstantiator.DestroySafely(instance);
                    throw new OperationCanceledException("the loader was destroyed while loading", ct);
                }
                if (Avatar != null) ChibiAvatarInstantiator.DestroySafely(Avatar);
                Avatar = instance;
                Result = result;
                if (Loaded != null) Loaded(result, instance);
                return instance;
            }
            catch (Exception e) when (!(e is OperationCanceledException))
            {
                Debug.LogError("chibi_meta: avatar load failed: " + e.Message, this);
                if (Failed != null) Failed(e);
                throw;
            }
        }

        /// <summary>The request described by the Inspector fields.</summary>
        public GenerateRequest BuildRequest()
        {
            var request = new GenerateRequest
            {
                Seed = randomSeed ? (long?)null : seed,
                Format = string.IsNullOrEmpty(format) ? GenerateRequest.Glb : format,
                TextureSize = format == GenerateRequest.Png ? (int?)null : textureSize,
            };
            if (morphTargets != null && morphTargets.Count > 0) request.MorphTargets = new List<string>(morphTargets);
            foreach (AttributeChoice a in attributes)
                if (!string.IsNullOrEmpty(a.name) && !string.IsNullOrEmpty(a.value)) request.Attributes[a.name] = a.value;
            return request;
        }

        async Task<ChibiBridgeClient> EnsureClientAsync(CancellationToken ct)
        {
            if (_client != null && _client.IsConnected) return _client;
            if (_client != null && !_ownsClient) throw _client.CloseError ?? new ChibiBridgeException(ChibiErrorCodes.ConnectionFailed, "the assigned client is closed");
            if (_client != null) _client.Dispose();
            var options = new ChibiBridgeOptions
            {
                Token = string.IsNullOrEmpty(token) ? null : token,
                ClientName = "chibi_meta.unity/" + ChibiBridgeClient.Version + " (" + Application.unityVersion + ")",
                Cache = useCache ? ChibiUnityAssets.CreateDefaultCache() : null,
            };
            _client = await ChibiBridgeClient.ConnectAsync(new Uri(serverUrl), options, ct);
            _ownsClient = true;
            return _client;
        }

        void OnDestroy()
        {
            _lifetime.Cancel();
            if (_client != null && _ownsClient) _client.Dispose();
            _client = null;
        }
    }
}

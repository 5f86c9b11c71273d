using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using ChibiMeta.Bridge.Unity;
using UnityEditor;
using UnityEngine;

namespace ChibiMeta.Bridge.Editor
{
    /// <summary>
    /// Window &gt; chibi_meta &gt; Bridge: connect to a bridge, pick attributes from the server's
    /// capabilities, preview the face texture and save GLB / VRM / PNG assets into the project
    /// (glTFast and UniVRM import them).
    /// </summary>
    public sealed class ChibiBridgeWindow : EditorWindow
    {
        const string UrlPref = "ChibiMeta.Bridge.Url";
        const string TokenKey = "ChibiMeta.Bridge.Token"; // SessionState: not written to disk
        const string FromSeed = "(from seed)";
        const string SaveFolder = "Assets/ChibiMeta/Avatars";

        string _url;
        string _token;
        ChibiBridgeClient _client;
        bool _busy;
        string _status = "not connected";
        long _seed = 7;
        int _formatIndex;
        int _sizeIndex;
        int _textureFormatIndex;
        readonly Dictionary<string, int> _choice = new Dictionary<string, int>();
        GenerateResult _result;
        GenerateResult _face;
        Texture2D _preview;
        Vector2 _scroll;

        /// <summary>Opens the window.</summary>
        [MenuItem("Window/chibi_meta/Bridge")]
        public static void Open()
        {
            GetWindow<ChibiBridgeWindow>("chibi_meta Bridge").Show();
        }

        void OnEnable()
        {
            _url = EditorPrefs.GetString(UrlPref, "ws://127.0.0.1:8765");
            _token = SessionState.GetString(TokenKey, "");
        }

        void OnDisable()
        {
            if (_client != null) _client.Dispose();
            _client = null;
            if (_preview != null) DestroyImmediate(_preview);
        }

        void OnGUI()
        {
            _scroll = EditorGUILayout.BeginScrollView(_scroll);
            DrawConnection();
            if (_client != null && _client.IsConnected)
            {
                EditorGUILayout.Space();
                DrawRequest();
                EditorGUILayout.Space();
                DrawResult();
            }
            EditorGUILayout.HelpBox(_status, MessageType.None);
            EditorGUILayout.EndScrollView();
        }

        void DrawConnection()
        {
            EditorGUILayout.LabelField("Server", EditorStyles.boldLabel);
            using (new EditorGUI.DisabledScope(_busy))
            {
                _url = EditorGUILayout.TextField("URL", _url);
                _token = EditorGUILayout.PasswordField("Token", _token);
                if (GUILayout.Button(_client != null && _client.IsConnected ? "Reconnect" : "Connect")) Connect();
            }
            if (_client != null && _client.IsConnected)
            {
                ServerCapabilities caps = _client.Capabilities;
                EditorGUILayout.LabelField("Server", caps.Server + ", model " + caps.ModelId);
                EditorGUILayout.HelpBox("Show with the avatars: " + caps.Attribution, MessageType.Info);
            }
        }

        void DrawRequest()
        {
            ServerCapabilities caps = _client.Capabilities;
            EditorGUILayout.LabelField("Avatar", EditorStyles.boldLabel);
            using (new EditorGUILayout.HorizontalScope())
            {
                _seed = EditorGUILayout.LongField("Seed", _seed);
                long maxSeed = (long)caps.Limit("max_seed", 4294967295);
                _seed = Math.Max(0, Math.Min(maxSeed, _seed));
                if (GUILayout.Button("Random", GUILayout.Width(70))) _seed = (long)(UnityEngine.Random.value * maxSeed);
            }
            foreach (var attr in caps.Attributes)
            {
                string[] options = new[] { FromSeed }.Concat(attr.Value).ToArray();
                int current;
                _choice.TryGetValue(attr.Key, out current);
                _choice[attr.Key] = EditorGUILayout.Popup(attr.Key, current, options);
            }
            _formatIndex = EditorGUILayout.Popup("Format", _formatIndex, caps.Formats.ToArray());
            if (Format != GenerateRequest.Png)
            {
                _sizeIndex = EditorGUILayout.Popup("Texture size", _sizeIndex, caps.TextureSizes.Select(s => s.ToString()).ToArray());
                _textureFormatIndex = EditorGUILayout.Popup("Texture format", _textureFormatIndex, caps.TextureFormats.ToArray());
            }
            using (new EditorGUI.DisabledScope(_busy))
                if (GUILayout.Button("Generate")) Generate();
        }

        void DrawResult()
        {
            if (_result == null) return;
            EditorGUILayout.LabelField("Result", EditorStyles.boldLabel);
            EditorGUILayout.LabelField("Seed", _result.Seed.ToString());
            foreach (var kv in _result.Attributes) EditorGUILayout.LabelField(kv.Key, kv.Value);
            EditorGUILayout.LabelField("Asset", _result.Format + ", " + _result.ByteLength + " bytes" +
                                                (_result.FromClientCache ? " (local cache)" : _result.ServerCached ? " (server cache)" : ""));
            EditorGUILayout.SelectableLabel("sha256 " + _result.Sha256, GUILayout.Height(EditorGUIUtility.singleLineHeight));
            if (_preview != null)
            {
                GUILayout.Label("Face texture", EditorStyles.miniLabel);
                Rect r = GUILayoutUtility.GetRect(128, 128, GUILayout.ExpandWidth(false));
                EditorGUI.DrawTextureTransparent(r, _preview, ScaleMode.ScaleToFit);
            }
            if (GUILayout.Button("Save to " + SaveFolder)) Save(_result);
        }

        string Format
        {
            get
            {
                var formats = _client.Capabilities.Formats;
                return formats.Count == 0 ? GenerateRequest.Glb : formats[Mathf.Clamp(_formatIndex, 0, formats.Count - 1)];
            }
        }

        GenerateRequest BuildRequest(string format)
        {
            ServerCapabilities caps = _client.Capabilities;
            var request = new GenerateRequest { Seed = _seed, Format = format };
            foreach (var attr in caps.Attributes)
            {
                int i;
                if (_choice.TryGetValue(attr.Key, out i) && i > 0) request.Attributes[attr.Key] = attr.Value[i - 1];
            }
            if (format != GenerateRequest.Png)
            {
                request.TextureSize = caps.TextureSizes[Mathf.Clamp(_sizeIndex, 0, caps.TextureSizes.Count - 1)];
                request.TextureFormat = caps.TextureFormats[Mathf.Clamp(_textureFormatIndex, 0, caps.TextureFormats.Count - 1)];
            }
            return request;
        }

        async void Connect()
        {
            EditorPrefs.SetString(UrlPref, _url);
            SessionState.SetString(TokenKey, _token);
            if (_client != null) _client.Dispose();
            _client = null;
            _busy = true;
            _status = "connecting to " + _url + " ...";
            try
            {
                var options = new ChibiBridgeOptions
                {
                    Token = string.IsNullOrEmpty(_token) ? null : _token,
                    ClientName = "chibi_meta.unity-editor/" + ChibiBridgeClient.Version + " (" + Application.unityVersion + ")",
                    Cache = ChibiUnityAssets.CreateDefaultCache(),
                };
                _client = await ChibiBridgeClient.ConnectAsync(new Uri(_url), options);
                _choice.Clear();
                _status = "connected: " + _client.Capabilities.Attributes.Count + " attributes, formats " +
                          string.Join(", ", _client.Capabilities.Formats.ToArray());
            }
            catch (Exception e)
            {
                _status = Describe(e);
            }
            finally
            {
                _busy = false;
                Repaint();
            }
        }

        async void Generate()
        {
            _busy = true;
            _status = "generating ...";
            try
            {
                // the PNG (the bare face texture) is the preview; a GLB/VRM of the same request wears it
                var face = _client.GenerateAsync(BuildRequest(GenerateRequest.Png));
                string format = Format;
                GenerateResult result = format == GenerateRequest.Png ? await face : await _client.GenerateAsync(BuildRequest(format));
                _face = await face;
                _result = result;
                if (_preview != null) DestroyImmediate(_preview);
                _preview = ChibiUnityAssets.LoadTexture(_face);
                _status = "generated " + result.Format + " for seed " + result.Seed;
            }
            catch (Exception e)
            {
                _status = Describe(e);
            }
            finally
            {
                _busy = false;
                Repaint();
            }
        }

        void Save(GenerateResult result)
        {
            Directory.CreateDirectory(SaveFolder);
            string path = SaveFolder + "/chibi_" + result.Seed + "_" + result.Sha256.Substring(0, 8) + result.FileExtension;
            File.WriteAllBytes(path, result.Data);
            AssetDatabase.ImportAsset(path);
            UnityEngine.Object asset = AssetDatabase.LoadMainAssetAtPath(path);
            if (asset != null) EditorGUIUtility.PingObject(asset);
            _status = "saved " + path + (asset == null && result.Format != GenerateRequest.Png
                ? " (no importer for it: install glTFast for .glb, UniVRM for .vrm)" : "");
        }

        static string Describe(Exception e)
        {
            var bridge = e as ChibiBridgeException;
            return bridge != null ? bridge.Code + ": " + bridge.Message : e.GetType().Name + ": " + e.Message;
        }
    }
}

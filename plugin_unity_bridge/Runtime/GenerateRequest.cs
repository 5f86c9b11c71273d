using System;
using System.Collections.Generic;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ChibiMeta.Bridge
{
    /// <summary>
    /// One avatar request (the protocol's <c>generate</c> message). Unset optional fields use the
    /// server defaults: format glb, texture 256 px png, truncation 1.0.
    /// </summary>
    public sealed class GenerateRequest
    {
        /// <summary>Rigged glTF binary.</summary>
        public const string Glb = "glb";
        /// <summary>VRM 1.0 (a GLB with the VRMC_vrm extension).</summary>
        public const string Vrm = "vrm";
        /// <summary>The bare 128x128 RGBA face texture.</summary>
        public const string Png = "png";

        /// <summary>Request id, unique among this connection's requests in flight; null: the client picks one.</summary>
        public string Id { get; set; }
        /// <summary>The avatar's identity, 0..4294967295; null: the server picks one (and such requests are never cached).</summary>
        public long? Seed { get; set; }
        /// <summary>Any subset of the server's attributes (name to value); the rest follows from the seed.</summary>
        public Dictionary<string, string> Attributes { get; } = new Dictionary<string, string>(StringComparer.Ordinal);
        /// <summary>"glb", "vrm" or "png".</summary>
        public string Format { get; set; } = Glb;
        /// <summary>Atlas size inside GLB/VRM (256, 512, 1024); null: server default (256). Ignored for png.</summary>
        public int? TextureSize { get; set; }
        /// <summary>"png", "jpeg" or "webp" inside GLB/VRM; null: server default (png). Ignored for png.</summary>
        public string TextureFormat { get; set; }
        /// <summary>Latent truncation in [0, 2]; null: server default (1.0).</summary>
        public double? Truncation { get; set; }
        /// <summary>
        /// Which morph-target sets the GLB/VRM carries (the <c>morph_targets</c> field): any of
        /// <c>"vrm"</c>, <c>"oculus"</c>, <c>"arkit"</c> (<see cref="MorphTargetNames.Sets"/>), or <c>"none"</c>
        /// alone; null: the server default (all sets). Fewer sets give smaller files. The server checks it for
        /// png too, and ignores it there.
        /// </summary>
        public IList<string> MorphTargets { get; set; }

        /// <summary>Sets <see cref="MorphTargets"/> and returns this request (for chaining).</summary>
        public GenerateRequest WithMorphTargets(params string[] sets)
        {
            MorphTargets = sets == null ? null : new List<string>(sets);
            return this;
        }

        /// <summary>Sets one attribute and returns this request (for chaining).</summary>
        public GenerateRequest With(string attribute, string value)
        {
            Attributes[attribute] = value;
            return this;
        }

        /// <summary>The <c>generate</c> message for request id <paramref name="id"/>.</summary>
        internal Dictionary<string, object> ToMessage(string id)
        {
            var msg = new Dictionary<string, object>(StringComparer.Ordinal)
            {
                { "type", "generate" },
                { "id", id },
                { "seed", Seed },
                { "format", Format ?? Glb },
            };
            if (Attributes.Count > 0)
            {
                var attrs = new SortedDictionary<string, object>(StringComparer.Ordinal);
                foreach (var kv in Attributes) attrs[kv.Key] = kv.Value;
                msg["attributes"] = attrs;
            }
            if (TextureSize.HasValue) msg["texture_size"] = TextureSize.Value;
            if (TextureFormat != null) msg["texture_format"] = TextureFormat;
            if (Truncation.HasValue) msg["truncation"] = Truncation.Value;
            if (MorphTargets != null) msg["morph_targets"] = new List<object>(MorphTargets);
            return msg;
        }

        /// <summary>
        /// The canonical form of this request for model <paramref name="modelId"/>: a JSON text with
        /// sorted keys and the server defaults filled in (texture fields dropped for png, which
        /// ignores them; <c>morph_targets</c> in canonical order, only when it is not the default).
        /// Equal canonical forms give identical bytes from the server.
        /// Null when <see cref="Seed"/> is null (the server would pick a new seed every time).
        /// </summary>
        public string CanonicalForm(string modelId)
        {
            if (!Seed.HasValue) return null;
            string format = Format ?? Glb;
            bool png = format == Png;
            var canon = new SortedDictionary<string, object>(StringComparer.Ordinal)
            {
                { "model_id", modelId ?? "" },
                { "seed", Seed.Value },
                { "format", format },
                { "texture_size", png ? (object)null : TextureSize ?? 256 },
                { "texture_format", png ? null : TextureFormat ?? "png" },
                { "truncation", (Truncation ?? 1.0).ToString("R", CultureInfo.InvariantCulture) },
            };
            var attrs = new SortedDictionary<string, object>(StringComparer.Ordinal);
            foreach (var kv in Attributes) attrs[kv.Key] = kv.Value;
            canon["attributes"] = attrs;
            // canonical sets, as the server reads them; absent for the default (all sets), so that keys of
            // requests without the field stay what they were and equal choices give equal keys
            if (MorphTargets != null && !png)
            {
                var sets = CanonicalMorphTargets(MorphTargets);
                if (!SameSets(sets, MorphTargetNames.DefaultSets)) canon["morph_targets"] = new List<object>(sets);
            }
            return MiniJson.Serialize(canon);
        }

        static IReadOnlyList<string> CanonicalMorphTargets(IList<string> sets)
        {
            try { return MorphTargetNames.Canonical(sets); }
            catch (ArgumentException) { return new List<string>(sets); } // the server will refuse it; no cache entry
        }

        static bool SameSets(IReadOnlyList<string> a, IReadOnlyList<string> b)
        {
            if (a.Count != b.Count) return false;
            for (int i = 0; i < a.Count; i++)
                if (a[i] != b[i]) return false;
            return true;
        }

        /// <summary>SHA-256 (hex) of <see cref="CanonicalForm"/>, used as the cache key; null when not cacheable.</summary>
        public string CacheKey(string modelId)
        {
            string canon = CanonicalForm(modelId);
            return canon == null ? null : Hashing.Sha256Hex(Encoding.UTF8.GetBytes(canon));
        }

        /// <summary>A copy of this request (Id included).</summary>
        public GenerateRequest Clone()
        {
            var r = new GenerateRequest
            {
                Id = Id, Seed = Seed, Format = Format, TextureSize = TextureSize,
                TextureFormat = TextureFormat, Truncation = Truncation,
            };
            foreach (var kv in Attributes) r.Attributes[kv.Key] = kv.Value;
            if (MorphTargets != null) r.MorphTargets = new List<string>(MorphTargets);
            return r;
        }
    }

    /// <summary>SHA-256 helpers.</summary>
    public static class Hashing
    {
        /// <summary>Lower-case hex SHA-256 of <paramref name="data"/>.</summary>
        public static string Sha256Hex(byte[] data)
        {
            using (var sha = SHA256.Create())
            {
                byte[] digest = sha.ComputeHash(data);
                var sb = new StringBuilder(64);
                foreach (byte b in digest) sb.Append(b.ToString("x2", CultureInfo.InvariantCulture));
                return sb.ToString();
            }
        }
    }
}

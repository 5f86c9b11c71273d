using System;
using System.Collections.Generic;

namespace ChibiMeta.Bridge
{
    /// <summary>
    /// A generated asset and its <c>result</c> header. <see cref="Data"/> has been checked against
    /// <see cref="Sha256"/> and <see cref="ByteLength"/>.
    /// </summary>
    public sealed class GenerateResult
    {
        /// <summary>The request id.</summary>
        public string Id { get; }
        /// <summary>The seed actually used (the server's pick when the request had none).</summary>
        public long Seed { get; }
        /// <summary>The full resolved attribute set.</summary>
        public IReadOnlyDictionary<string, string> Attributes { get; }
        /// <summary>"glb", "vrm" or "png".</summary>
        public string Format { get; }
        /// <summary>Atlas size (native 128 for png).</summary>
        public int TextureSize { get; }
        /// <summary>Image format inside the asset.</summary>
        public string TextureFormat { get; }
        /// <summary>Latent truncation used.</summary>
        public double Truncation { get; }
        /// <summary>The model that made the asset.</summary>
        public string ModelId { get; }
        /// <summary>"model/gltf-binary" (glb, vrm) or "image/png".</summary>
        public string MediaType { get; }
        /// <summary>Lower-case hex SHA-256 of <see cref="Data"/>.</summary>
        public string Sha256 { get; }
        /// <summary>Length of <see cref="Data"/> in bytes.</summary>
        public long ByteLength { get; }
        /// <summary>True when the server answered from its own cache.</summary>
        public bool ServerCached { get; }
        /// <summary>True when this result came from the client-side <see cref="IAssetCache"/> (no server round trip).</summary>
        public bool FromClientCache { get; }
        /// <summary>The asset: GLB / VRM (glTF binary) or PNG bytes.</summary>
        public byte[] Data { get; }
        /// <summary>The morph-target sets in the asset, as the server echoes them (canonical order; <c>["none"]</c> for none); null for png and older servers.</summary>
        public IReadOnlyList<string> MorphTargets { get; }
        /// <summary>The result header as received (for fields newer than this client).</summary>
        public IReadOnlyDictionary<string, object> Header { get; }

        GenerateResult(Dictionary<string, object> header, byte[] data, bool fromClientCache)
        {
            Header = header;
            Id = JsonFields.String(header, "id");
            Seed = JsonFields.Long(header, "seed") ?? -1;
            Attributes = JsonFields.StringMap(header, "attributes");
            Format = JsonFields.String(header, "format");
            TextureSize = (int)(JsonFields.Long(header, "texture_size") ?? 0);
            TextureFormat = JsonFields.String(header, "texture_format");
            Truncation = JsonFields.Double(header, "truncation") ?? 1.0;
            ModelId = JsonFields.String(header, "model_id");
            MediaType = JsonFields.String(header, "media_type");
            Sha256 = JsonFields.String(header, "sha256");
            ByteLength = JsonFields.Long(header, "byte_length") ?? -1;
            ServerCached = JsonFields.Bool(header, "cached");
            FromClientCache = fromClientCache;
            Data = data;
            object morphs;
            if (header.TryGetValue("morph_targets", out morphs) && morphs is List<object>)
            {
                var sets = new List<string>();
                foreach (object o in (List<object>)morphs)
                    if (o is string) sets.Add((string)o);
                MorphTargets = sets.AsReadOnly();
            }
        }

        /// <summary>
        /// Builds a result from a header and its asset, checking the asset's length and SHA-256;
        /// throws <see cref="ChibiBridgeException"/> with code "integrity" on a mismatch.
        /// </summary>
        public static GenerateResult Verified(Dictionary<string, object> header, byte[] data, bool fromClientCache = false)
        {
            if (header == null) throw new ArgumentNullException(nameof(header));
            if (data == null) throw new ArgumentNullException(nameof(data));
            var r = new GenerateResult(header, data, fromClientCache);
            if (r.ByteLength != data.LongLength)
                throw new ChibiBridgeException(ChibiErrorCodes.Integrity,
                    "asset of '" + r.Id + "' has " + data.LongLength + " bytes, header says " + r.ByteLength, r.Id);
            string actual = Hashing.Sha256Hex(data);
            if (!string.Equals(actual, r.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new ChibiBridgeException(ChibiErrorCodes.Integrity,
                    "asset of '" + r.Id + "' has sha256 " + actual + ", header says " + r.Sha256, r.Id);
            return r;
        }

        /// <summary>The same result under another request id (a cache hit answers the new request's id).</summary>
        internal GenerateResult WithId(string id, bool fromClientCache)
        {
            var header = new Dictionary<string, object>(StringComparer.Ordinal);
            foreach (var kv in Header) header[kv.Key] = kv.Value;
            header["id"] = id;
            return new GenerateResult(header, Data, fromClientCache);
        }

        /// <summary>File extension for saving: ".glb", ".vrm" or ".png".</summary>
        public string FileExtension
        {
            get { return Format == "vrm" ? ".vrm" : Format == "png" ? ".png" : ".glb"; }
        }
    }
}

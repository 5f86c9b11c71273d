using System;
using System.Collections.Generic;

namespace ChibiMeta.Bridge
{
    /// <summary>The server's <c>hello</c> reply: what it can generate and its limits.</summary>
    public sealed class ServerCapabilities
    {
        /// <summary>Protocol version (1).</summary>
        public int Protocol { get; }
        /// <summary>Server name and version, e.g. "chibi-meta/0.1.0".</summary>
        public string Server { get; }
        /// <summary>The generator model; part of every cache key.</summary>
        public string ModelId { get; }
        /// <summary>Credit for the training art (CC BY 4.0): show it wherever you show the avatars.</summary>
        public string Attribution { get; }
        /// <summary>Attribute name to its allowed values, in the server's order.</summary>
        public IReadOnlyDictionary<string, IReadOnlyList<string>> Attributes { get; }
        /// <summary>Asset formats, e.g. glb, vrm, png.</summary>
        public IReadOnlyList<string> Formats { get; }
        /// <summary>Allowed atlas sizes, e.g. 256, 512, 1024.</summary>
        public IReadOnlyList<int> TextureSizes { get; }
        /// <summary>Allowed image formats inside GLB/VRM.</summary>
        public IReadOnlyList<string> TextureFormats { get; }
        /// <summary>Native resolution of the face texture (the png format's size).</summary>
        public int TextureResolution { get; }
        /// <summary>"none" or "token".</summary>
        public string Auth { get; }
        /// <summary>Limits by name (max_in_flight, max_seed, rate_per_s, ...).</summary>
        public IReadOnlyDictionary<string, double> Limits { get; }
        /// <summary>The <c>morph_targets</c> values the server takes (vrm, oculus, arkit, none); empty for servers without the field.</summary>
        public IReadOnlyList<string> MorphTargetSets { get; }
        /// <summary>The sets a request without <c>morph_targets</c> gets; empty for servers without the field.</summary>
        public IReadOnlyList<string> DefaultMorphTargets { get; }
        /// <summary>The message as received.</summary>
        public IReadOnlyDictionary<string, object> Raw { get; }

        internal ServerCapabilities(Dictionary<string, object> msg)
        {
            Raw = msg;
            Protocol = (int)(JsonFields.Long(msg, "protocol") ?? 0);
            Server = JsonFields.String(msg, "server");
            ModelId = JsonFields.String(msg, "model_id");
            Attribution = JsonFields.String(msg, "attribution");
            TextureResolution = (int)(JsonFields.Long(msg, "texture_resolution") ?? 0);
            Auth = JsonFields.String(msg, "auth");

            var attrs = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            foreach (var kv in JsonFields.Object(msg, "attributes"))
                attrs[kv.Key] = Strings(kv.Value as List<object>, "attributes." + kv.Key);
            Attributes = attrs;
            Formats = Strings(JsonFields.Array(msg, "formats"), "formats");
            TextureFormats = Strings(JsonFields.Array(msg, "texture_formats"), "texture_formats");
            MorphTargetSets = Strings(JsonFields.Array(msg, "morph_target_sets"), "morph_target_sets");
            DefaultMorphTargets = Strings(JsonFields.Array(msg, "default_morph_targets"), "default_morph_targets");
            var sizes = new List<int>();
            foreach (object o in JsonFields.Array(msg, "texture_sizes"))
            {
                if (!(o is long)) throw new FormatException("texture_sizes holds a non-integer");
                sizes.Add((int)(long)o);
            }
            TextureSizes = sizes;
            var limits = new Dictionary<string, double>(StringComparer.Ordinal);
            var rawLimits = JsonFields.Object(msg, "limits");
            foreach (var kv in rawLimits) limits[kv.Key] = JsonFields.Double(rawLimits, kv.Key) ?? 0;
            Limits = limits;
        }

        /// <summary>A limit by name, or <paramref name="fallback"/> when the server did not send it.</summary>
        public double Limit(string name, double fallback)
        {
            double v;
            return Limits.TryGetValue(name, out v) ? v : fallback;
        }

        static IReadOnlyList<string> Strings(List<object> list, string what)
        {
            if (list == null) throw new FormatException(what + " is not an array");
            var result = new List<string>(list.Count);
            foreach (object o in list)
            {
                var s = o as string;
                if (s == null) throw new FormatException(what + " holds a non-string");
                result.Add(s);
            }
            return result;
        }
    }

    /// <summary>The server's <c>stats</c> reply (counters since start; see docs/protocol.md).</summary>
    public sealed class ServerStats
    {
        /// <summary>Generate requests received.</summary>
        public long Requests { get; }
        /// <summary>Assets sent.</summary>
        public long Served { get; }
        /// <summary>Requests dropped after a cancel.</summary>
        public long Cancelled { get; }
        /// <summary>Requests in flight on all connections.</summary>
        public long InFlight { get; }
        /// <summary>Open connections.</summary>
        public long Connections { get; }
        /// <summary>Error count per code.</summary>
        public IReadOnlyDictionary<string, long> Errors { get; }
        /// <summary>The message as received (cache, batches, latency_ms, ...).</summary>
        public IReadOnlyDictionary<string, object> Raw { get; }

        internal ServerStats(Dictionary<string, object> msg)
        {
            Raw = msg;
            Requests = JsonFields.Long(msg, "requests") ?? 0;
            Served = JsonFields.Long(msg, "served") ?? 0;
            Cancelled = JsonFields.Long(msg, "cancelled") ?? 0;
            InFlight = JsonFields.Long(msg, "in_flight") ?? 0;
            Connections = JsonFields.Long(msg, "connections") ?? 0;
            var errors = new Dictionary<string, long>(StringComparer.Ordinal);
            var raw = JsonFields.Object(msg, "errors");
            foreach (var kv in raw) errors[kv.Key] = JsonFields.Long(raw, kv.Key) ?? 0;
            Errors = errors;
        }
    }
}

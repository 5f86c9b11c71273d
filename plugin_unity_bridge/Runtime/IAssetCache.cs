using System.Collections.Generic;

namespace ChibiMeta.Bridge
{
    /// <summary>
    /// Client-side store of generated assets, keyed by <see cref="GenerateRequest.CacheKey"/>
    /// (a hash of seed, requested attributes, format, texture size/format, truncation and model id).
    /// Implementations must be safe to call from several threads.
    /// </summary>
    public interface IAssetCache
    {
        /// <summary>The stored header and asset for <paramref name="key"/>, or false when absent or unreadable.</summary>
        bool TryGet(string key, out Dictionary<string, object> header, out byte[] data);

        /// <summary>Stores a verified result under <paramref name="key"/>; a failure must not throw.</summary>
        void Put(string key, GenerateResult result);
    }
}

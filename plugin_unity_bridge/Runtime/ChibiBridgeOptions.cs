using System;

namespace ChibiMeta.Bridge
{
    /// <summary>Settings of a <see cref="ChibiBridgeClient"/> connection.</summary>
    public sealed class ChibiBridgeOptions
    {
        /// <summary>The server's token, or null when it runs without one.</summary>
        public string Token { get; set; }

        /// <summary>
        /// False (default): send the token as <c>Authorization: Bearer</c> with the handshake; a wrong
        /// token is refused with HTTP 401. True: send it in the first <c>hello</c> instead.
        /// </summary>
        public bool TokenInHello { get; set; }

        /// <summary>Sent in <c>hello</c> for the server's logs.</summary>
        public string ClientName { get; set; } = "chibi_meta.unity/" + ChibiBridgeClient.Version;

        /// <summary>Limit for the handshake plus the <c>hello</c> exchange.</summary>
        public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>Limit for <c>stats</c> replies.</summary>
        public TimeSpan ControlTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>Largest asset accepted (a bigger binary frame closes the connection).</summary>
        public long MaxAssetBytes { get; set; } = 256L * 1024 * 1024;

        /// <summary>Client-side asset cache; null: none. Only requests with a seed are cached.</summary>
        public IAssetCache Cache { get; set; }
    }
}

using System;

namespace ChibiMeta.Bridge
{
    /// <summary>
    /// Error codes. The first seven are the server's stable protocol codes (docs/protocol.md,
    /// "error"); the last three are raised by this client only.
    /// </summary>
    public static class ChibiErrorCodes
    {
        /// <summary>The client sent something the server cannot read (a client bug).</summary>
        public const string BadRequest = "bad_request";
        /// <summary>An attribute name the model does not have.</summary>
        public const string UnknownAttribute = "unknown_attribute";
        /// <summary>A seed, attribute value, format, size or truncation out of range.</summary>
        public const string InvalidValue = "invalid_value";
        /// <summary>More than max_in_flight requests in flight on this connection.</summary>
        public const string TooLarge = "too_large";
        /// <summary>Queue full, rate limited or shutting down; see <see cref="ChibiBridgeException.RetryAfterMs"/>.</summary>
        public const string Busy = "busy";
        /// <summary>Missing or wrong token (HTTP 401 at the handshake, or close 1008).</summary>
        public const string Unauthorized = "unauthorized";
        /// <summary>The server failed.</summary>
        public const string Internal = "internal";

        /// <summary>Client side: cannot connect, or the connection closed with requests in flight.</summary>
        public const string ConnectionFailed = "connection_failed";
        /// <summary>Client side: an asset's length or SHA-256 does not match its result header.</summary>
        public const string Integrity = "integrity";
        /// <summary>Client side: no reply within the configured timeout.</summary>
        public const string Timeout = "timeout";
    }

    /// <summary>
    /// A request or the connection failed. <see cref="Code"/> is one of <see cref="ChibiErrorCodes"/>;
    /// <see cref="Exception.Message"/> is the server's message (it says what to change).
    /// </summary>
    public class ChibiBridgeException : Exception
    {
        /// <summary>Stable error code, e.g. "unknown_attribute" (see <see cref="ChibiErrorCodes"/>).</summary>
        public string Code { get; }
        /// <summary>The id of the request this error answers, or null.</summary>
        public string RequestId { get; }
        /// <summary>For "busy": how long the server asks you to wait before retrying.</summary>
        public int? RetryAfterMs { get; }
        /// <summary>The HTTP status when the websocket handshake was refused (401, 403, 503), else null.</summary>
        public int? HttpStatus { get; }

        /// <summary>Creates an exception with a code and a message.</summary>
        public ChibiBridgeException(string code, string message, string requestId = null, int? retryAfterMs = null,
                                    int? httpStatus = null, Exception inner = null)
            : base(message, inner)
        {
            Code = code;
            RequestId = requestId;
            RetryAfterMs = retryAfterMs;
            HttpStatus = httpStatus;
        }

        /// <inheritdoc />
        public override string ToString()
        {
            return "ChibiBridgeException(" + Code + (RequestId != null ? ", id=" + RequestId : "") + "): " + Message;
        }
    }
}

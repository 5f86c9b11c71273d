using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Threading.Tasks;

namespace ChibiMeta.Bridge
{
    /// <summary>
    /// Finds out why a websocket handshake was refused. Mono's (and Unity's) <c>ClientWebSocket</c>
    /// reports any non-101 answer as "Unable to connect to the remote server" without the HTTP status,
    /// so after such a failure the client repeats the opening handshake once on a raw socket and reads
    /// the status line and body (e.g. 401 with {"error": "unauthorized", ...}).
    /// </summary>
    internal static class HandshakeProbe
    {
        internal sealed class Answer
        {
            public int Status;
            public string Body;
        }

        /// <summary>The HTTP status and body the server answers to an upgrade request, or null if unreachable.</summary>
        public static async Task<Answer> RunAsync(Uri url, IDictionary<string, string> headers, TimeSpan timeout)
        {
            Task<Answer> probe = ProbeAsync(url, headers);
            Task done = await Task.WhenAny(probe, Task.Delay(timeout)).ConfigureAwait(false);
            if (done != probe)
            {
                ObserveLater(probe);
                return null;
            }
            try { return await probe.ConfigureAwait(false); }
            catch (Exception e) when (e is IOException || e is SocketException || e is FormatException ||
                                      e is ObjectDisposedException || e is System.Security.Authentication.AuthenticationException)
            {
                return null;
            }
        }

        static void ObserveLater(Task t)
        {
            t.ContinueWith(x => { var ignored = x.Exception; }, TaskContinuationOptions.OnlyOnFaulted);
        }

        static async Task<Answer> ProbeAsync(Uri url, IDictionary<string, string> headers)
        {
            bool tls = url.Scheme == "wss" || url.Scheme == "https";
            int port = url.IsDefaultPort || url.Port < 0 ? (tls ? 443 : 80) : url.Port;
            using (var tcp = new TcpClient())
            {
                await tcp.ConnectAsync(url.Host, port).ConfigureAwait(false);
                Stream stream = tcp.GetStream();
                if (tls)
                {
                    var ssl = new SslStream(stream, false);
                    await ssl.AuthenticateAsClientAsync(url.Host).ConfigureAwait(false);
                    stream = ssl;
                }
                using (stream)
                {
                    var req = new StringBuilder();
                    req.Append("GET ").Append(url.PathAndQuery).Append(" HTTP/1.1\r\n");
                    req.Append("Host: ").Append(url.IsDefaultPort ? url.Host : url.Host + ":" + port).Append("\r\n");
                    req.Append("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n");
                    req.Append("Sec-WebSocket-Key: ").Append(Convert.ToBase64String(Guid.NewGuid().ToByteArray())).Append("\r\n");
                    foreach (var kv in headers) req.Append(kv.Key).Append(": ").Append(kv.Value).Append("\r\n");
                    req.Append("\r\n");
                    byte[] bytes = Encoding.ASCII.GetBytes(req.ToString());
                    await stream.WriteAsync(bytes, 0, bytes.Length).ConfigureAwait(false);
                    return await ReadAnswerAsync(stream).ConfigureAwait(false);
                }
            }
        }

        static async Task<Answer> ReadAnswerAsync(Stream stream)
        {
            var buf = new MemoryStream();
            var chunk = new byte[4096];
            int headerEnd = -1;
            int contentLength = 0;
            while (buf.Length < 16384)
            {
                if (headerEnd < 0)
                {
                    string sofar = Encoding.ASCII.GetString(buf.GetBuffer(), 0, (int)buf.Length);
                    headerEnd = sofar.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                    if (headerEnd >= 0)
                    {
                        foreach (string line in sofar.Substring(0, headerEnd).Split(new[] { "\r\n" }, StringSplitOptions.None))
                            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                                int.TryParse(line.Substring(15).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out contentLength);
                        if (sofar.StartsWith("HTTP/1.1 101", StringComparison.Ordinal)) break; // accepted: nothing to explain
                    }
                }
                if (headerEnd >= 0 && buf.Length >= headerEnd + 4 + Math.Min(contentLength, 4096)) break;
                int n = await stream.ReadAsync(chunk, 0, chunk.Length).ConfigureAwait(false);
                if (n == 0) break;
                buf.Write(chunk, 0, n);
            }
            string text = Encoding.UTF8.GetString(buf.GetBuffer(), 0, (int)buf.Length);
            string[] status = text.Split(new[] { "\r\n" }, StringSplitOptions.None)[0].Split(' ');
            int code;
            if (status.Length < 2 || !status[0].StartsWith("HTTP/", StringComparison.Ordinal) ||
                !int.TryParse(status[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out code))
                throw new FormatException("not an HTTP answer");
            int bodyStart = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            string body = bodyStart >= 0 ? text.Substring(bodyStart + 4).Trim() : "";
            return new Answer { Status = code, Body = body.Length > 1000 ? body.Substring(0, 1000) : body };
        }
    }
}

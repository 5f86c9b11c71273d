using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;

namespace ChibiMeta.Bridge
{
    /// <summary>
    /// One websocket connection to a chibi_meta bridge (protocol v1, docs/protocol.md).
    /// Create with <see cref="ConnectAsync(Uri, ChibiBridgeOptions, CancellationToken)"/>. Any number of <see cref="GenerateAsync"/> calls may be
    /// in flight at once, from any thread; replies are matched by request id. Tasks complete on
    /// thread-pool threads (an <c>await</c> from Unity's main thread resumes on the main thread).
    /// </summary>
    public sealed class ChibiBridgeClient : IDisposable
    {
        /// <summary>Version of this client.</summary>
        public const string Version = "0.1.0";

        const int TextLimit = 1024 * 1024;
        static long _nextId;

        sealed class Pending
        {
            public readonly TaskCompletionSource<GenerateResult> Tcs =
                new TaskCompletionSource<GenerateResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            public string CacheKey;
        }

        readonly ClientWebSocket _ws;
        readonly ChibiBridgeOptions _options;
        readonly object _lock = new object();
        readonly SemaphoreSlim _sendLock = new SemaphoreSlim(1, 1);
        readonly Dictionary<string, Pending> _pending = new Dictionary<string, Pending>(StringComparer.Ordinal);
        readonly Dictionary<string, List<TaskCompletionSource<Dictionary<string, object>>>> _control =
            new Dictionary<string, List<TaskCompletionSource<Dictionary<string, object>>>>(StringComparer.Ordinal)
            {
                { "hello", new List<TaskCompletionSource<Dictionary<string, object>>>() },
                { "stats", new List<TaskCompletionSource<Dictionary<string, object>>>() },
            };
        Task _receiveLoop;
        ChibiBridgeException _closedError;
        string _unauthorizedMessage;

        /// <summary>What the server can generate (its <c>hello</c> reply).</summary>
        public ServerCapabilities Capabilities { get; private set; }

        /// <summary>The client-side cache (from the options; may be replaced at any time).</summary>
        public IAssetCache Cache { get; set; }

        /// <summary>True until the connection closes or fails.</summary>
        public bool IsConnected
        {
            get { lock (_lock) return _closedError == null && _ws.State == WebSocketState.Open; }
        }

        /// <summary>Why the connection ended, or null while it is open.</summary>
        public ChibiBridgeException CloseError
        {
            get { lock (_lock) return _closedError; }
        }

        /// <summary>Number of generate requests awaiting a reply.</summary>
        public int InFlight
        {
            get { lock (_lock) return _pending.Count; }
        }

        ChibiBridgeClient(ClientWebSocket ws, ChibiBridgeOptions options)
        {
            _ws = ws;
            _options = options;
            Cache = options.Cache;
        }

        /// <summary>
        /// Opens <paramref name="url"/> (ws:// or wss://), exchanges <c>hello</c> and returns the
        /// connected client. Throws <see cref="ChibiBridgeException"/>: "unauthorized" for a refused
        /// token (<see cref="ChibiBridgeException.HttpStatus"/> 401 with a header token), "busy" for
        /// HTTP 503, "connection_failed" or "timeout" otherwise.
        /// </summary>
        public static async Task<ChibiBridgeClient> ConnectAsync(Uri url, ChibiBridgeOptions options = null,
                                                                 CancellationToken cancellationToken = default(CancellationToken))
        {
            if (url == null) throw new ArgumentNullException(nameof(url));
            options = options ?? new ChibiBridgeOptions();
            var ws = new ClientWebSocket();
            var headers = new Dictionary<string, string>(StringComparer.Ordinal);
            if (!string.IsNullOrEmpty(options.Token) && !options.TokenInHello)
                headers["Authorization"] = "Bearer " + options.Token;
            foreach (var kv in headers) ws.Options.SetRequestHeader(kv.Key, kv.Value);

            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(options.ConnectTimeout);
                try
                {
                    await ws.ConnectAsync(url, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    ws.Dispose();
                    cancellationToken.ThrowIfCancellationRequested();
                    throw new ChibiBridgeException(ChibiErrorCodes.Timeout,
                        "no websocket handshake with " + url + " within " + options.ConnectTimeout.TotalSeconds + " s");
                }
                catch (Exception e) when (e is WebSocketException || e is IOException || e is WebException ||
                                          e is InvalidOperationException)
                {
                    ws.Dispose();
                    throw await HandshakeErrorAsync(url, headers, e, options.ConnectTimeout).ConfigureAwait(false);
                }

                var client = new ChibiBridgeClient(ws, options);
                client._receiveLoop = Task.Run(client.ReceiveLoopAsync);
                var hello = new Dictionary<string, object>(StringComparer.Ordinal)
                {
                    { "type", "hello" },
                    { "protocol", 1 },
                    { "client", options.ClientName },
                };
                if (!string.IsNullOrEmpty(options.Token) && options.TokenInHello) hello["token"] = options.Token;
                try
                {
                    var reply = await client.ControlRequestAsync("hello", hello, options.ConnectTimeout).ConfigureAwait(false);
                    client.Capabilities = new ServerCapabilities(reply);
                    return client;
                }
                catch (FormatException e)
                {
                    client.Dispose();
                    throw new ChibiBridgeException(ChibiErrorCodes.Internal, "malformed hello from server: " + e.Message, inner: e);
                }
                catch
                {
                    client.Dispose();
                    throw;
                }
            }
        }

        /// <summary>Same as <see cref="ConnectAsync(Uri, ChibiBridgeOptions, CancellationToken)"/> with a URL string.</summary>
        public static Task<ChibiBridgeClient> ConnectAsync(string url, ChibiBridgeOptions options = null,
                                                           CancellationToken cancellationToken = default(CancellationToken))
        {
            if (url == null) throw new ArgumentNullException(nameof(url));
            return ConnectAsync(new Uri(url), options, cancellationToken);
        }

        /// <summary>
        /// Requests one asset. With a <see cref="Cache"/> and a seed, an identical earlier request is
        /// answered from the cache without a round trip (<see cref="GenerateResult.FromClientCache"/>).
        /// Throws <see cref="ChibiBridgeException"/> with the server's code on <c>error</c>;
        /// the task is cancelled (<see cref="TaskCanceledException"/>) when the server confirms a
        /// <see cref="CancelAsync"/>, or at once when <paramref name="cancellationToken"/> fires (a
        /// <c>cancel</c> is then sent; the id stays reserved until the server answers).
        /// </summary>
        public async Task<GenerateResult> GenerateAsync(GenerateRequest request,
                                                        CancellationToken cancellationToken = default(CancellationToken))
        {
            if (request == null) throw new ArgumentNullException(nameof(request));
            cancellationToken.ThrowIfCancellationRequested();
            ThrowIfClosed();
            string id = request.Id ?? "u" + Interlocked.Increment(ref _nextId);
            int maxId = (int)Capabilities.Limit("max_id_chars", 128);
            if (id.Length < 1 || id.Length > maxId)
                throw new ChibiBridgeException(ChibiErrorCodes.BadRequest, "request ids have 1 to " + maxId + " characters", id);

            IAssetCache cache = Cache;
            string key = cache != null ? request.CacheKey(Capabilities.ModelId) : null;
            if (key != null)
            {
                // off the caller's thread (Unity's main thread): file read and SHA-256 check
                GenerateResult hit = await Task.Run(() => FromCache(cache, key)).ConfigureAwait(false);
                if (hit != null) return hit.WithId(id, true);
            }

            var pending = new Pending { CacheKey = key };
            lock (_lock)
            {
                if (_closedError != null) throw _closedError;
                if (_pending.ContainsKey(id))
                    throw new ChibiBridgeException(ChibiErrorCodes.BadRequest, "id '" + id + "' is already in flight on this client", id);
                _pending[id] = pending;
            }
            try
            {
                await SendAsync(request.ToMessage(id)).ConfigureAwait(false);
            }
            catch
            {
                lock (_lock) _pending.Remove(id);
                throw;
            }

            using (cancellationToken.Register(() =>
            {
                if (pending.Tcs.TrySetCanceled(cancellationToken)) ForgetTask(CancelAsync(id));
            }))
            {
                return await pending.Tcs.Task.ConfigureAwait(false);
            }
        }

        static GenerateResult FromCache(IAssetCache cache, string key)
        {
            Dictionary<string, object> header;
            byte[] data;
            if (!cache.TryGet(key, out header, out data)) return null;
            try { return GenerateResult.Verified(header, data, true); }
            catch (Exception e) when (e is ChibiBridgeException || e is FormatException) { return null; } // a damaged entry is a miss
        }

        /// <summary>
        /// Asks the server to drop request <paramref name="id"/>. If it was still queued, its
        /// <see cref="GenerateAsync"/> task is cancelled; if its result was already on the way, the
        /// result is delivered as usual. Unknown ids are ignored.
        /// </summary>
        public Task CancelAsync(string id)
        {
            if (id == null) throw new ArgumentNullException(nameof(id));
            return SendAsync(new Dictionary<string, object>(StringComparer.Ordinal) { { "type", "cancel" }, { "id", id } });
        }

        /// <summary>The server's counters (requests, cache, batches, latency, errors per code).</summary>
        public async Task<ServerStats> GetStatsAsync()
        {
            var msg = new Dictionary<string, object>(StringComparer.Ordinal) { { "type", "stats" } };
            return new ServerStats(await ControlRequestAsync("stats", msg, _options.ControlTimeout).ConfigureAwait(false));
        }

        /// <summary>Closes the connection politely (waits up to <paramref name="timeout"/> for the server's close).</summary>
        public async Task CloseAsync(TimeSpan? timeout = null)
        {
            try
            {
                if (_ws.State == WebSocketState.Open || _ws.State == WebSocketState.CloseReceived)
                {
                    await _sendLock.WaitAsync().ConfigureAwait(false);
                    try
                    {
                        await _ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).ConfigureAwait(false);
                    }
                    finally { _sendLock.Release(); }
                }
                Task loop = _receiveLoop;
                if (loop != null) await Task.WhenAny(loop, Task.Delay(timeout ?? TimeSpan.FromSeconds(5))).ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException || e is ObjectDisposedException || e is InvalidOperationException || e is IOException)
            {
                // already closed or broken: Dispose below
            }
            Dispose();
        }

        /// <summary>Aborts the connection; requests in flight fail with "connection_failed".</summary>
        public void Dispose()
        {
            Fail(new ChibiBridgeException(ChibiErrorCodes.ConnectionFailed, "the client was closed"));
            try { _ws.Abort(); } catch (Exception) { }
            _ws.Dispose();
        }

        // -- sending -------------------------------------------------------------------------------

        async Task SendAsync(Dictionary<string, object> message)
        {
            ThrowIfClosed();
            byte[] bytes = Encoding.UTF8.GetBytes(MiniJson.Serialize(message));
            await _sendLock.WaitAsync().ConfigureAwait(false);
            try
            {
                await _ws.SendAsync(new ArraySegment<byte>(bytes), WebSocketMessageType.Text, true, CancellationToken.None)
                         .ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException || e is ObjectDisposedException || e is InvalidOperationException || e is IOException)
            {
                throw CloseError ?? new ChibiBridgeException(ChibiErrorCodes.ConnectionFailed, "send failed: " + e.Message, inner: e);
            }
            finally
            {
                _sendLock.Release();
            }
        }

        async Task<Dictionary<string, object>> ControlRequestAsync(string kind, Dictionary<string, object> message, TimeSpan timeout)
        {
            var tcs = new TaskCompletionSource<Dictionary<string, object>>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_lock)
            {
                if (_closedError != null) throw _closedError;
                _control[kind].Add(tcs);
            }
            try
            {
                await SendAsync(message).ConfigureAwait(false);
                Task done = await Task.WhenAny(tcs.Task, Task.Delay(timeout)).ConfigureAwait(false);
                if (done != tcs.Task)
                    throw new ChibiBridgeException(ChibiErrorCodes.Timeout, "no '" + kind + "' reply within " + timeout.TotalSeconds + " s");
                return await tcs.Task.ConfigureAwait(false);
            }
            finally
            {
                lock (_lock) _control[kind].Remove(tcs);
            }
        }

        void ThrowIfClosed()
        {
            lock (_lock)
                if (_closedError != null) throw _closedError;
        }

        static void ForgetTask(Task t)
        {
            t.ContinueWith(x => { var ignored = x.Exception; }, TaskContinuationOptions.OnlyOnFaulted);
        }

        // -- receiving ------------------------------------------------------------------------------

        async Task ReceiveLoopAsync()
        {
            var buffer = new byte[64 * 1024];
            Dictionary<string, object> header = null;
            ChibiBridgeException error = null;
            try
            {
                while (true)
                {
                    long expected = header != null ? (JsonFields.Long(header, "byte_length") ?? 0) : 0;
                    bool presize = expected > 0 && expected <= Math.Min(_options.MaxAssetBytes, int.MaxValue);
                    var frame = new MemoryStream(presize ? (int)expected : 0);
                    WebSocketReceiveResult r;
                    do
                    {
                        r = await _ws.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None).ConfigureAwait(false);
                        if (r.MessageType == WebSocketMessageType.Close) break;
                        frame.Write(buffer, 0, r.Count);
                        long limit = r.MessageType == WebSocketMessageType.Text ? TextLimit : _options.MaxAssetBytes;
                        if (frame.Length > limit) throw new FormatException("a frame of more than " + limit + " bytes");
                    } while (!r.EndOfMessage);

                    if (r.MessageType == WebSocketMessageType.Close)
                    {
                        error = ClosedByServer(_ws.CloseStatus, _ws.CloseStatusDescription);
                        try { await _ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None).ConfigureAwait(false); }
                        catch (Exception) { }
                        break;
                    }
                    if (r.MessageType == WebSocketMessageType.Binary)
                    {
                        if (header == null) throw new FormatException("a binary frame without a result header");
                        byte[] data = frame.Length == frame.Capacity ? frame.GetBuffer() : frame.ToArray();
                        OnAsset(header, data);
                        header = null;
                    }
                    else
                    {
                        if (header != null) throw new FormatException("a text frame between a result header and its asset");
                        header = OnText(Encoding.UTF8.GetString(frame.GetBuffer(), 0, (int)frame.Length));
                    }
                }
            }
            catch (FormatException e)
            {
                error = new ChibiBridgeException(ChibiErrorCodes.Internal, "bad reply from server: " + e.Message, inner: e);
                try { _ws.Abort(); } catch (Exception) { }
            }
            catch (Exception e) when (e is WebSocketException || e is ObjectDisposedException || e is IOException ||
                                      e is InvalidOperationException || e is OperationCanceledException)
            {
                error = new ChibiBridgeException(ChibiErrorCodes.ConnectionFailed, "connection lost: " + e.Message, inner: e);
            }
            catch (Exception e) // a bug here must not leave requests waiting forever
            {
                error = new ChibiBridgeException(ChibiErrorCodes.Internal, "client receive loop failed: " + e, inner: e);
                try { _ws.Abort(); } catch (Exception) { }
            }
            Fail(error ?? new ChibiBridgeException(ChibiErrorCodes.ConnectionFailed, "connection closed"));
        }

        /// <summary>Handles one JSON message; returns it when it is a result header (its asset comes next).</summary>
        Dictionary<string, object> OnText(string text)
        {
            Dictionary<string, object> msg = MiniJson.ParseObject(text);
            string type = JsonFields.String(msg, "type");
            switch (type)
            {
                case "result":
                    if (JsonFields.String(msg, "id") == null) throw new FormatException("a result without an id");
                    return msg;
                case "hello":
                case "stats":
                {
                    TaskCompletionSource<Dictionary<string, object>> tcs = null;
                    lock (_lock)
                    {
                        var waiting = _control[type];
                        if (waiting.Count > 0)
                        {
                            tcs = waiting[0];
                            waiting.RemoveAt(0);
                        }
                    }
                    if (tcs != null) tcs.TrySetResult(msg);
                    return null;
                }
                case "error":
                {
                    string id = JsonFields.String(msg, "id");
                    string code = JsonFields.String(msg, "code") ?? ChibiErrorCodes.Internal;
                    long? retry = JsonFields.Long(msg, "retry_after_ms");
                    var exc = new ChibiBridgeException(code, JsonFields.String(msg, "message") ?? code, id,
                                                       retry.HasValue ? (int?)retry.Value : null);
                    Pending pending = id != null ? Take(id) : null;
                    if (pending != null)
                    {
                        pending.Tcs.TrySetException(exc);
                    }
                    else if (code == ChibiErrorCodes.Unauthorized)
                    {
                        List<TaskCompletionSource<Dictionary<string, object>>> waiting;
                        lock (_lock)
                        {
                            _unauthorizedMessage = exc.Message;
                            waiting = new List<TaskCompletionSource<Dictionary<string, object>>>(_control["hello"]);
                            waiting.AddRange(_control["stats"]);
                        }
                        foreach (var t in waiting) t.TrySetException(exc);
                    }
                    return null;
                }
                case "cancelled":
                {
                    Pending pending = Take(JsonFields.String(msg, "id") ?? "");
                    if (pending != null) pending.Tcs.TrySetCanceled();
                    return null;
                }
                default:
                    return null; // a message type newer than this client: ignored, as the protocol asks
            }
        }

        void OnAsset(Dictionary<string, object> header, byte[] data)
        {
            string id = JsonFields.String(header, "id");
            Pending pending = Take(id);
            if (pending == null) return;
            GenerateResult result;
            try
            {
                result = GenerateResult.Verified(header, data);
            }
            catch (ChibiBridgeException e)
            {
                pending.Tcs.TrySetException(e);
                return;
            }
            IAssetCache cache = Cache;
            if (cache != null && pending.CacheKey != null)
            {
                try { cache.Put(pending.CacheKey, result); }
                catch (Exception) { } // a cache that cannot store must not fail the request
            }
            pending.Tcs.TrySetResult(result);
        }

        Pending Take(string id)
        {
            lock (_lock)
            {
                Pending p;
                if (!_pending.TryGetValue(id, out p)) return null;
                _pending.Remove(id);
                return p;
            }
        }

        ChibiBridgeException ClosedByServer(WebSocketCloseStatus? status, string reason)
        {
            int code = status.HasValue ? (int)status.Value : 1005;
            string unauthorized;
            lock (_lock) unauthorized = _unauthorizedMessage;
            if (code == 1008 && (unauthorized != null || (reason ?? "").IndexOf("unauth", StringComparison.OrdinalIgnoreCase) >= 0))
                return new ChibiBridgeException(ChibiErrorCodes.Unauthorized, unauthorized ?? ("connection closed by server: " + reason));
            return new ChibiBridgeException(ChibiErrorCodes.ConnectionFailed,
                ("connection closed by server: code " + code + " " + (reason ?? "")).Trim());
        }

        void Fail(ChibiBridgeException error)
        {
            var pending = new List<Pending>();
            var control = new List<TaskCompletionSource<Dictionary<string, object>>>();
            lock (_lock)
            {
                if (_closedError == null) _closedError = error;
                error = _closedError;
                pending.AddRange(_pending.Values);
                _pending.Clear();
                foreach (var list in _control.Values) control.AddRange(list);
            }
            foreach (var p in pending) p.Tcs.TrySetException(error);
            foreach (var t in control) t.TrySetException(error);
        }

        static async Task<ChibiBridgeException> HandshakeErrorAsync(Uri url, Dictionary<string, string> headers, Exception e,
                                                                    TimeSpan timeout)
        {
            int? status = null;
            string detail = null;
            for (Exception x = e; x != null && status == null; x = x.InnerException)
            {
                var web = x as WebException;
                var response = web != null ? web.Response as HttpWebResponse : null;
                if (response != null) status = (int)response.StatusCode;
                else
                {
                    // .NET: "The server returned status code '401' when status code '101' was expected."
                    Match m = Regex.Match(x.Message ?? "", @"status code '(\d{3})'");
                    if (m.Success && m.Groups[1].Value != "101") status = int.Parse(m.Groups[1].Value);
                }
            }
            if (status == null && e is WebSocketException)
            {
                // Mono/Unity say only "Unable to connect to the remote server": ask once more on a raw socket.
                HandshakeProbe.Answer answer = await HandshakeProbe.RunAsync(url, headers, timeout).ConfigureAwait(false);
                if (answer != null && answer.Status != 101)
                {
                    status = answer.Status;
                    try
                    {
                        var body = MiniJson.ParseObject(answer.Body);
                        detail = JsonFields.String(body, "message");
                    }
                    catch (FormatException) { detail = answer.Body; }
                }
            }
            string code = status == 401 || status == 403 ? ChibiErrorCodes.Unauthorized
                        : status == 503 ? ChibiErrorCodes.Busy
                        : ChibiErrorCodes.ConnectionFailed;
            string what = status.HasValue
                ? "handshake refused with HTTP " + status.Value + (string.IsNullOrEmpty(detail) ? "" : ": " + detail)
                : "cannot connect to " + url + ": " + e.Message;
            return new ChibiBridgeException(code, what, httpStatus: status, inner: e);
        }
    }
}

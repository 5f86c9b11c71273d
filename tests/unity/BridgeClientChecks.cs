// Console checks of the Unity package's runtime client (plugin_unity_bridge/Runtime) against a real
// bridge server. Run by tests/test_unity_client.py:
//   mono BridgeClientChecks.exe URL TOKEN CACHE_DIR OUT_DIR
// Prints one JSON line per check: {"check": NAME, "ok": BOOL, "detail": ...}; exit code 0 when all pass.
// Assets it received are written to OUT_DIR (NAME.glb/.vrm/.png) with OUT_DIR/assets.json.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using ChibiMeta.Bridge;

static class BridgeClientChecks
{
    static string _url, _token, _cacheDir, _outDir;
    static int _failures;
    static readonly Dictionary<string, object> Assets = new Dictionary<string, object>();
    // fresh seeds per run, so that the server's own cache cannot answer requests meant to queue up
    static readonly long SeedBase = 100000 + new Random().Next(0, 1 << 30);

    static int Main(string[] args)
    {
        if (args.Length != 4)
        {
            Console.Error.WriteLine("usage: BridgeClientChecks.exe URL TOKEN CACHE_DIR OUT_DIR");
            return 2;
        }
        _url = args[0];
        _token = args[1];
        _cacheDir = args[2];
        _outDir = args[3];
        Directory.CreateDirectory(_outDir);

        Check("json", JsonRoundTrip);
        Check("wrong_token_refused_401", WrongTokenRefused);
        Check("token_in_hello", TokenInHello);
        Check("unreachable_server", Unreachable);
        ChibiBridgeClient client = null;
        Check("hello", () => { client = Connect(null); return Hello(client); });
        if (client == null) return Finish();
        Check("glb", () => Model(client, "glb", 77));
        Check("vrm", () => Model(client, "vrm", 78));
        Check("png", () => Png(client));
        Check("morph_targets", () => MorphTargets(client));
        Check("in_flight_many", () => ManyInFlight(client));
        Check("error_unknown_attribute", () => UnknownAttribute(client));
        Check("error_invalid_value", () => InvalidValue(client));
        Check("duplicate_id_refused_locally", () => DuplicateId(client));
        Check("cancel", () => Cancel(client));
        Check("cancel_by_token", () => CancelByToken(client));
        Check("file_cache", FileCache);
        Check("stats", () => Stats(client));
        Check("close", () => Close(client));
        File.WriteAllText(Path.Combine(_outDir, "assets.json"), MiniJson.Serialize(Assets));
        return Finish();
    }

    static int Finish()
    {
        Console.Out.Flush();
        return _failures == 0 ? 0 : 1;
    }

    static void Check(string name, Func<object> body)
    {
        var sw = Stopwatch.StartNew();
        object detail;
        bool ok;
        try
        {
            detail = body();
            ok = true;
        }
        catch (Exception e)
        {
            ok = false;
            detail = e.ToString();
            _failures++;
        }
        var line = new Dictionary<string, object>
        {
            { "check", name }, { "ok", ok }, { "ms", sw.ElapsedMilliseconds }, { "detail", detail },
        };
        Console.WriteLine(MiniJson.Serialize(line));
        Console.Out.Flush();
    }

    static void Assert(bool condition, string what)
    {
        if (!condition) throw new Exception("assertion failed: " + what);
    }

    static T Sync<T>(Task<T> task)
    {
        if (!task.Wait(TimeSpan.FromSeconds(60))) throw new TimeoutException("no reply within 60 s");
        return task.GetAwaiter().GetResult();
    }

    static ChibiBridgeException Throws(Func<Task> action)
    {
        try
        {
            action().GetAwaiter().GetResult();
        }
        catch (ChibiBridgeException e)
        {
            return e;
        }
        throw new Exception("expected a ChibiBridgeException");
    }

    static ChibiBridgeClient Connect(IAssetCache cache)
    {
        var options = new ChibiBridgeOptions { Token = _token, ClientName = "unity-client-checks", Cache = cache };
        return Sync(ChibiBridgeClient.ConnectAsync(new Uri(_url), options));
    }

    static string Ascii(byte[] data, int count)
    {
        return Encoding.ASCII.GetString(data, 0, Math.Min(count, data.Length));
    }

    static void Save(string name, GenerateResult r)
    {
        File.WriteAllBytes(Path.Combine(_outDir, name + r.FileExtension), r.Data);
        Assets[name] = new Dictionary<string, object>
        {
            { "file", name + r.FileExtension }, { "seed", r.Seed }, { "format", r.Format },
            { "texture_size", r.TextureSize }, { "sha256", r.Sha256 }, { "byte_length", r.ByteLength },
            { "attributes", r.Attributes.ToDictionary(kv => kv.Key, kv => (object)kv.Value) },
        };
    }

    // -- checks ------------------------------------------------------------------------------------

    static object JsonRoundTrip()
    {
        var parsed = MiniJson.ParseObject("{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\n\"], \"b\": {\"c\": 4294967295}}");
        var a = (List<object>)parsed["a"];
        Assert((long)a[0] == 1 && (double)a[1] == -2500.0 && (bool)a[2] && a[3] == null, "values");
        Assert((string)a[4] == "x\u00e9\n", "string escapes");
        Assert((long)((Dictionary<string, object>)parsed["b"])["c"] == 4294967295L, "uint32 seed as long");
        string back = MiniJson.Serialize(parsed);
        Assert(back == "{\"a\":[1,-2500,true,null,\"x\\u00e9\\n\"],\"b\":{\"c\":4294967295}}", "serialised: " + back);
        foreach (string bad in new[] { "{\"a\":1,\"a\":2}", "[1,]", "{\"a\" 1}", "NaN", "\"open", "{} x" })
        {
            bool threw = false;
            try { MiniJson.Parse(bad); } catch (FormatException) { threw = true; }
            Assert(threw, "rejects " + bad);
        }
        return back;
    }

    static object WrongTokenRefused()
    {
        var e = Throws(() => ChibiBridgeClient.ConnectAsync(new Uri(_url), new ChibiBridgeOptions { Token = "wrong" }));
        Assert(e.HttpStatus != null || e.Code != ChibiErrorCodes.ConnectionFailed, e.ToString() + " / " + e.InnerException);
        Assert(e.Code == ChibiErrorCodes.Unauthorized, "code " + e.Code);
        Assert(e.HttpStatus == 401, "http status " + e.HttpStatus);
        return new Dictionary<string, object> { { "code", e.Code }, { "http_status", e.HttpStatus }, { "message", e.Message } };
    }

    static object Unreachable()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now
        var e = Throws(() => ChibiBridgeClient.ConnectAsync("ws://127.0.0.1:" + port + "/"));
        Assert(e.Code == ChibiErrorCodes.ConnectionFailed && e.HttpStatus == null, e.ToString());
        return e.Message;
    }

    static object TokenInHello()
    {
        var bad = Throws(() => ChibiBridgeClient.ConnectAsync(new Uri(_url),
            new ChibiBridgeOptions { Token = "wrong", TokenInHello = true }));
        Assert(bad.Code == ChibiErrorCodes.Unauthorized && bad.HttpStatus == null, "wrong token in hello: " + bad);
        var c = Sync(ChibiBridgeClient.ConnectAsync(new Uri(_url), new ChibiBridgeOptions { Token = _token, TokenInHello = true }));
        Assert(c.Capabilities.Protocol == 1, "hello after token in hello");
        c.CloseAsync().GetAwaiter().GetResult();
        return bad.Message;
    }

    static object Hello(ChibiBridgeClient c)
    {
        ServerCapabilities caps = c.Capabilities;
        Assert(caps.Protocol == 1 && caps.Auth == "token", "protocol/auth");
        Assert(caps.Attributes.ContainsKey("hair_color") && caps.Attributes["hair_color"].Contains("pink"), "hair_color has pink");
        Assert(caps.Formats.SequenceEqual(new[] { "glb", "vrm", "png" }), "formats");
        Assert(caps.TextureSizes.Contains(256) && caps.TextureFormats.Contains("png"), "texture sizes/formats");
        Assert(caps.Limit("max_in_flight", 0) >= 8, "max_in_flight");
        Assert(!string.IsNullOrEmpty(caps.ModelId) && caps.Attribution != null, "model id / attribution");
        Assert(c.IsConnected, "connected");
        return new Dictionary<string, object>
        {
            { "model_id", caps.ModelId }, { "server", caps.Server },
            { "attributes", caps.Attributes.ToDictionary(kv => kv.Key, kv => (object)kv.Value.ToList()) },
            { "formats", caps.Formats.ToList() }, { "texture_sizes", caps.TextureSizes.ToList() },
            { "texture_formats", caps.TextureFormats.ToList() }, { "limits", caps.Limits.ToDictionary(kv => kv.Key, kv => (object)kv.Value) },
        };
    }

    static object Model(ChibiBridgeClient c, string format, long seed)
    {
        var r = Sync(c.GenerateAsync(new GenerateRequest { Seed = seed, Format = format, TextureSize = 256 }));
        Assert(Ascii(r.Data, 4) == "glTF", "glTF magic");
        Assert(r.MediaType == "model/gltf-binary" && r.Format == format && r.Seed == seed && r.TextureSize == 256, "header");
        Assert(r.Data.LongLength == r.ByteLength && Hashing.Sha256Hex(r.Data) == r.Sha256, "sha256 and length");
        Assert(r.Attributes.Count == c.Capabilities.Attributes.Count, "all attributes resolved");
        bool hasVrm = Ascii(r.Data, 1 << 16).Contains("VRMC_vrm");
        Assert(hasVrm == (format == "vrm"), "VRMC_vrm extension only in vrm");
        Save(format, r);
        return new Dictionary<string, object> { { "bytes", r.ByteLength }, { "sha256", r.Sha256 } };
    }

    // the morph_targets field end to end: the GLB's mesh.extras.targetNames are exactly the sets asked for
    static object MorphTargets(ChibiBridgeClient c)
    {
        ServerCapabilities caps = c.Capabilities;
        Assert(caps.MorphTargetSets.SequenceEqual(MorphTargetNames.Sets.Keys.Concat(new[] { MorphTargetNames.SetNone })),
               "hello morph_target_sets: " + string.Join(",", caps.MorphTargetSets));
        Assert(caps.DefaultMorphTargets.SequenceEqual(MorphTargetNames.DefaultSets), "hello default_morph_targets");
        var seen = new Dictionary<string, object>();
        foreach (string[] sets in new[] { new[] { "oculus" }, new[] { "arkit", "vrm" }, new[] { "none" } })
        {
            var req = new GenerateRequest { Seed = 4321, Format = GenerateRequest.Glb, TextureSize = 256 }.WithMorphTargets(sets);
            GenerateResult r = Sync(c.GenerateAsync(req));
            IReadOnlyList<string> canonical = MorphTargetNames.Canonical(sets);
            IEnumerable<string> echo = canonical.Count == 0 ? new[] { MorphTargetNames.SetNone } : (IEnumerable<string>)canonical;
            Assert(r.MorphTargets != null && r.MorphTargets.SequenceEqual(echo), "result morph_targets for " + string.Join(",", sets));
            var names = new List<string>();
            foreach (object mesh in (List<object>)GlbJson(r.Data)["meshes"])
            {
                object extras, targetNames;
                if (((Dictionary<string, object>)mesh).TryGetValue("extras", out extras)
                    && ((Dictionary<string, object>)extras).TryGetValue("targetNames", out targetNames))
                    foreach (object n in (List<object>)targetNames) names.Add((string)n);
            }
            Assert(names.SequenceEqual(MorphTargetNames.TargetsOf(sets)), "targetNames for " + string.Join(",", sets) + ": " + string.Join(",", names));
            seen[string.Join("+", sets)] = names.Count;
        }
        var e = Throws(() => c.GenerateAsync(new GenerateRequest { Seed = 4321, Format = GenerateRequest.Glb }.WithMorphTargets("bogus")));
        Assert(e.Code == ChibiErrorCodes.InvalidValue && e.Message.Contains("oculus"), "unknown set: invalid_value naming the sets: " + e.Message);
        return seen;
    }

    static Dictionary<string, object> GlbJson(byte[] glb)
    {
        int length = BitConverter.ToInt32(glb, 12);
        return MiniJson.ParseObject(Encoding.UTF8.GetString(glb, 20, length));
    }

    static object Png(ChibiBridgeClient c)
    {
        var req = new GenerateRequest { Seed = 1234, Format = GenerateRequest.Png }.With("hair_color", "pink");
        var r = Sync(c.GenerateAsync(req));
        Assert(r.Data.Length > 8 && r.Data[0] == 0x89 && Ascii(r.Data, 4).Substring(1) == "PNG", "PNG magic");
        Assert(r.MediaType == "image/png" && r.Attributes["hair_color"] == "pink" && r.TextureSize == 128, "header");
        Save("png", r);
        // no seed: the server picks one and says which
        var any = Sync(c.GenerateAsync(new GenerateRequest { Format = GenerateRequest.Png }));
        Assert(any.Seed >= 0 && any.Seed <= 4294967295L, "server-picked seed");
        var half = Sync(c.GenerateAsync(new GenerateRequest { Seed = 1234, Format = GenerateRequest.Png, Truncation = 0.5 }.With("hair_color", "pink")));
        Assert(half.Truncation == 0.5, "fractional truncation sent");
        var mean = Sync(c.GenerateAsync(new GenerateRequest { Seed = 1234, Format = GenerateRequest.Png, Truncation = 0 }.With("hair_color", "pink")));
        Assert(mean.Truncation == 0 && mean.Sha256 != r.Sha256, "truncation 0 applied (the average face)");
        return new Dictionary<string, object> { { "sha256", r.Sha256 }, { "picked_seed", any.Seed } };
    }

    static object ManyInFlight(ChibiBridgeClient c)
    {
        var tasks = new List<Task<GenerateResult>>();
        for (int i = 0; i < 10; i++)
            tasks.Add(c.GenerateAsync(new GenerateRequest { Id = "many-" + i, Seed = SeedBase + 200 + i, Format = GenerateRequest.Png }));
        Assert(c.InFlight > 1, "several requests in flight at once (" + c.InFlight + ")");
        var all = Sync(Task.WhenAll(tasks));
        for (int i = 0; i < all.Length; i++)
            Assert(all[i].Id == "many-" + i && all[i].Seed == SeedBase + 200 + i, "reply matched by id: " + all[i].Id);
        Assert(all.Select(r => r.Sha256).Distinct().Count() == all.Length, "distinct avatars");
        return all.Select(r => r.Id).ToList();
    }

    static object UnknownAttribute(ChibiBridgeClient c)
    {
        var e = Throws(() => c.GenerateAsync(new GenerateRequest { Id = "bad-attr", Seed = 1, Format = "png" }.With("nose", "big")));
        Assert(e.Code == ChibiErrorCodes.UnknownAttribute && e.RequestId == "bad-attr", "code/id " + e);
        Assert(e.Message.Contains("nose") && e.Message.Contains("allowed"), "message says what to change");
        var ok = Sync(c.GenerateAsync(new GenerateRequest { Seed = 2, Format = "png" }));
        Assert(ok.Seed == 2, "connection still usable");
        return new Dictionary<string, object> { { "code", e.Code }, { "message", e.Message } };
    }

    static object InvalidValue(ChibiBridgeClient c)
    {
        var e = Throws(() => c.GenerateAsync(new GenerateRequest { Seed = 1, Format = "png" }.With("hair_color", "plaid")));
        Assert(e.Code == ChibiErrorCodes.InvalidValue, "code " + e.Code);
        var e2 = Throws(() => c.GenerateAsync(new GenerateRequest { Seed = 1, Format = "obj" }));
        Assert(e2.Code == ChibiErrorCodes.InvalidValue, "format code " + e2.Code);
        return e.Message;
    }

    static object DuplicateId(ChibiBridgeClient c)
    {
        var first = c.GenerateAsync(new GenerateRequest { Id = "dup", Seed = SeedBase + 300, Format = "png" });
        var e = Throws(() => c.GenerateAsync(new GenerateRequest { Id = "dup", Seed = SeedBase + 301, Format = "png" }));
        Assert(e.Code == ChibiErrorCodes.BadRequest, "code " + e.Code);
        Assert(Sync(first).Seed == SeedBase + 300, "first request unaffected");
        var longId = Throws(() => c.GenerateAsync(new GenerateRequest { Id = new string('x', 129), Seed = 1, Format = "png" }));
        Assert(longId.Code == ChibiErrorCodes.BadRequest, "long id");
        return e.Message;
    }

    // Cancels are sent after a `stats` round trip: the server answers in message order, so by then it has
    // read the generate requests and started their tasks. It only answers `cancelled` for a request whose
    // task has started (chibi_meta/bridge/server.py; see docs/unity.md, "Known issues").
    static object Cancel(ChibiBridgeClient c)
    {
        // The test server makes one texture per forward pass, so the last of 24 is still queued.
        var tasks = new List<Task<GenerateResult>>();
        for (int i = 0; i < 24; i++)
            tasks.Add(c.GenerateAsync(new GenerateRequest { Id = "c" + i, Seed = SeedBase + i, Format = "png" }));
        Sync(c.GetStatsAsync());
        c.CancelAsync("c23").GetAwaiter().GetResult();
        c.CancelAsync("never-sent").GetAwaiter().GetResult(); // unknown ids are ignored
        try { Task.WhenAll(tasks).Wait(TimeSpan.FromSeconds(20)); } catch (AggregateException) { }
        Assert(tasks[23].IsCanceled, "c23 cancelled, status " + tasks[23].Status);
        for (int i = 0; i < 23; i++) Assert(tasks[i].Status == TaskStatus.RanToCompletion, "c" + i + " " + tasks[i].Status);
        bool threwCancelled = false;
        try { tasks[23].GetAwaiter().GetResult(); } catch (TaskCanceledException) { threwCancelled = true; }
        Assert(threwCancelled, "awaiting a cancelled request throws TaskCanceledException");
        Assert(c.InFlight == 0, "nothing left in flight");
        return "c23 cancelled, c0..c22 delivered";
    }

    static object CancelByToken(ChibiBridgeClient c)
    {
        var ahead = new List<Task<GenerateResult>>();
        for (int i = 0; i < 24; i++) ahead.Add(c.GenerateAsync(new GenerateRequest { Seed = SeedBase + 100 + i, Format = "png" }));
        long cancelledBefore = Sync(c.GetStatsAsync()).Cancelled;
        var sw = Stopwatch.StartNew();
        using (var cts = new CancellationTokenSource())
        {
            var t = c.GenerateAsync(new GenerateRequest { Id = "by-token", Seed = SeedBase + 99, Format = "png" }, cts.Token);
            Sync(c.GetStatsAsync());
            cts.Cancel();
            bool cancelled = false;
            try { t.GetAwaiter().GetResult(); } catch (OperationCanceledException) { cancelled = true; }
            Assert(cancelled && t.IsCanceled, "task cancelled by the token");
            Assert(sw.ElapsedMilliseconds < 5000, "at once, not after the queue (" + sw.ElapsedMilliseconds + " ms)");
        }
        Sync(Task.WhenAll(ahead));
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (c.InFlight > 0 && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Assert(c.InFlight == 0, "the server answered the cancel");
        Assert(Sync(c.GetStatsAsync()).Cancelled == cancelledBefore + 1, "the token sent a cancel the server honoured");
        var again = Sync(c.GenerateAsync(new GenerateRequest { Id = "by-token", Seed = SeedBase + 98, Format = "png" }));
        Assert(again.Seed == SeedBase + 98, "connection keeps working, id reusable");
        return "ok";
    }

    static object FileCache()
    {
        var cache = new FileAssetCache(_cacheDir);
        cache.Clear();
        var c = Connect(cache);
        try
        {
            var req = new GenerateRequest { Seed = 4242, Format = "glb", TextureSize = 256 }.With("skin", "tan");
            var first = Sync(c.GenerateAsync(req));
            Assert(!first.FromClientCache, "first request goes to the server");
            long before = Sync(c.GetStatsAsync()).Requests;
            var sameAgain = req.Clone();
            sameAgain.Id = "from-cache";
            var second = Sync(c.GenerateAsync(sameAgain));
            long after = Sync(c.GetStatsAsync()).Requests;
            Assert(second.FromClientCache && second.Id == "from-cache", "second request served by the file cache");
            Assert(second.Sha256 == first.Sha256 && second.Data.SequenceEqual(first.Data), "same bytes");
            Assert(after == before, "no request reached the server (" + before + " -> " + after + ")");
            string key = req.CacheKey(c.Capabilities.ModelId);
            string path = cache.PathFor(key);
            Assert(File.Exists(path), "entry on disk");
            Assert(Directory.GetFiles(_cacheDir, "*.tmp").Length == 0, "no temporary files left");
            // other parameters are other keys
            var other = req.Clone();
            other.TextureSize = 512;
            Assert(other.CacheKey(c.Capabilities.ModelId) != key, "texture size is in the key");
            Assert(req.CacheKey("another-model") != key, "model id is in the key");
            Assert(new GenerateRequest { Format = "glb" }.CacheKey(c.Capabilities.ModelId) == null, "no seed, no caching");
            // a damaged entry is dropped, and the request goes to the server again
            byte[] raw = File.ReadAllBytes(path);
            raw[raw.Length - 1] ^= 0xff;
            File.WriteAllBytes(path, raw);
            var third = Sync(c.GenerateAsync(req.Clone()));
            Assert(!third.FromClientCache && third.Sha256 == first.Sha256, "damaged entry not used");
            Assert(File.Exists(path), "entry rewritten");
            return new Dictionary<string, object> { { "key", key }, { "entry_bytes", new FileInfo(path).Length } };
        }
        finally
        {
            c.CloseAsync().GetAwaiter().GetResult();
        }
    }

    static object Stats(ChibiBridgeClient c)
    {
        ServerStats s = Sync(c.GetStatsAsync());
        Assert(s.Requests >= 20 && s.Served >= 15, "counts " + s.Requests + "/" + s.Served);
        Assert(s.Errors.ContainsKey("unknown_attribute") && s.Errors["unknown_attribute"] >= 1, "errors per code");
        Assert(s.Cancelled >= 1, "cancelled counted");
        return new Dictionary<string, object> { { "requests", s.Requests }, { "served", s.Served }, { "cancelled", s.Cancelled } };
    }

    static object Close(ChibiBridgeClient c)
    {
        c.CloseAsync().GetAwaiter().GetResult();
        Assert(!c.IsConnected, "closed");
        var e = Throws(() => c.GenerateAsync(new GenerateRequest { Seed = 1, Format = "png" }));
        Assert(e.Code == ChibiErrorCodes.ConnectionFailed, "code " + e.Code);
        return e.Message;
    }
}

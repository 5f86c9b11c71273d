using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace ChibiMeta.Bridge
{
    /// <summary>
    /// <see cref="IAssetCache"/> on plain files: one file <c>&lt;key&gt;.chibi</c> per entry in
    /// <see cref="Directory"/> (in Unity, under <c>Application.persistentDataPath</c>).
    /// An entry is "CHIBI1\n", the result header as one JSON line, then the asset bytes. It is written
    /// to a temporary file in the same directory and moved into place, so readers never see half an
    /// entry; a read re-checks the asset's SHA-256 and drops entries that fail.
    /// </summary>
    public sealed class FileAssetCache : IAssetCache
    {
        const string Magic = "CHIBI1\n";
        const string Extension = ".chibi";

        /// <summary>The folder holding the entries.</summary>
        public string Directory { get; }

        /// <summary>Uses (and creates when needed) <paramref name="directory"/>.</summary>
        public FileAssetCache(string directory)
        {
            if (string.IsNullOrEmpty(directory)) throw new ArgumentException("directory is required", nameof(directory));
            Directory = Path.GetFullPath(directory);
        }

        /// <summary>Path of the entry for <paramref name="key"/> (which must be a hex hash).</summary>
        public string PathFor(string key)
        {
            if (string.IsNullOrEmpty(key)) throw new ArgumentException("empty cache key", nameof(key));
            foreach (char c in key)
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                    throw new ArgumentException("cache keys are lower-case hex", nameof(key));
            return Path.Combine(Directory, key + Extension);
        }

        /// <inheritdoc />
        public bool TryGet(string key, out Dictionary<string, object> header, out byte[] data)
        {
            header = null;
            data = null;
            string path = PathFor(key);
            byte[] raw;
            try
            {
                if (!File.Exists(path)) return false;
                raw = File.ReadAllBytes(path);
            }
            catch (IOException) { return false; }
            catch (UnauthorizedAccessException) { return false; }

            try
            {
                byte[] magic = Encoding.ASCII.GetBytes(Magic);
                int nl = -1;
                if (raw.Length > magic.Length && Encoding.ASCII.GetString(raw, 0, magic.Length) == Magic)
                    nl = Array.IndexOf(raw, (byte)'\n', magic.Length);
                if (nl < 0) throw new FormatException("not a cache entry");
                header = MiniJson.ParseObject(Encoding.UTF8.GetString(raw, magic.Length, nl - magic.Length));
                data = new byte[raw.Length - nl - 1];
                Buffer.BlockCopy(raw, nl + 1, data, 0, data.Length);
                GenerateResult.Verified(header, data, true); // throws on a damaged entry
                TouchQuietly(path);
                return true;
            }
            catch (Exception e) when (e is FormatException || e is ChibiBridgeException)
            {
                header = null;
                data = null;
                DeleteQuietly(path);
                return false;
            }
        }

        /// <inheritdoc />
        public void Put(string key, GenerateResult result)
        {
            string path = PathFor(key);
            string tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
            try
            {
                System.IO.Directory.CreateDirectory(Directory);
                var header = new Dictionary<string, object>(StringComparer.Ordinal);
                foreach (var kv in result.Header)
                    if (kv.Key != "cached") header[kv.Key] = kv.Value;
                byte[] head = Encoding.UTF8.GetBytes(Magic + MiniJson.Serialize(header) + "\n");
                using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
                {
                    f.Write(head, 0, head.Length);
                    f.Write(result.Data, 0, result.Data.Length);
                    f.Flush(true);
                }
                if (File.Exists(path)) File.Replace(tmp, path, null);
                else File.Move(tmp, path);
            }
            catch (IOException) { DeleteQuietly(tmp); } // e.g. another process stored the same entry first
            catch (UnauthorizedAccessException) { DeleteQuietly(tmp); }
        }

        /// <summary>Total size of the entries in bytes.</summary>
        public long SizeBytes()
        {
            long total = 0;
            foreach (var f in Entries()) total += f.Length;
            return total;
        }

        /// <summary>Deletes the least recently used entries until at most <paramref name="maxBytes"/> remain.</summary>
        public void Trim(long maxBytes)
        {
            var files = Entries();
            files.Sort((a, b) => a.LastWriteTimeUtc.CompareTo(b.LastWriteTimeUtc));
            long total = 0;
            foreach (var f in files) total += f.Length;
            foreach (var f in files)
            {
                if (total <= maxBytes) break;
                total -= f.Length;
                DeleteQuietly(f.FullName);
            }
        }

        /// <summary>Deletes every entry.</summary>
        public void Clear()
        {
            foreach (var f in Entries()) DeleteQuietly(f.FullName);
        }

        List<FileInfo> Entries()
        {
            var result = new List<FileInfo>();
            if (!System.IO.Directory.Exists(Directory)) return result;
            foreach (string p in System.IO.Directory.GetFiles(Directory, "*" + Extension)) result.Add(new FileInfo(p));
            return result;
        }

        static void TouchQuietly(string path)
        {
            try { File.SetLastWriteTimeUtc(path, DateTime.UtcNow); } // recency for Trim
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }

        static void DeleteQuietly(string path)
        {
            try { File.Delete(path); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }
}

using System;
using System.Collections.Generic;

namespace ChibiMeta.Bridge
{
    /// <summary>Typed reads of fields of a parsed JSON object (see <see cref="MiniJson"/>).</summary>
    internal static class JsonFields
    {
        public static string String(Dictionary<string, object> o, string key)
        {
            object v;
            if (!o.TryGetValue(key, out v) || v == null) return null;
            var s = v as string;
            if (s == null) throw new FormatException("field '" + key + "' is not a string");
            return s;
        }

        public static long? Long(Dictionary<string, object> o, string key)
        {
            object v;
            if (!o.TryGetValue(key, out v) || v == null) return null;
            if (v is long) return (long)v;
            if (v is double && Math.Floor((double)v) == (double)v) return (long)(double)v;
            throw new FormatException("field '" + key + "' is not an integer");
        }

        public static double? Double(Dictionary<string, object> o, string key)
        {
            object v;
            if (!o.TryGetValue(key, out v) || v == null) return null;
            if (v is long) return (long)v;
            if (v is double) return (double)v;
            throw new FormatException("field '" + key + "' is not a number");
        }

        public static bool Bool(Dictionary<string, object> o, string key)
        {
            object v;
            return o.TryGetValue(key, out v) && v is bool && (bool)v;
        }

        public static Dictionary<string, object> Object(Dictionary<string, object> o, string key)
        {
            object v;
            if (!o.TryGetValue(key, out v) || v == null) return new Dictionary<string, object>();
            var d = v as Dictionary<string, object>;
            if (d == null) throw new FormatException("field '" + key + "' is not an object");
            return d;
        }

        public static List<object> Array(Dictionary<string, object> o, string key)
        {
            object v;
            if (!o.TryGetValue(key, out v) || v == null) return new List<object>();
            var l = v as List<object>;
            if (l == null) throw new FormatException("field '" + key + "' is not an array");
            return l;
        }

        public static Dictionary<string, string> StringMap(Dictionary<string, object> o, string key)
        {
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var kv in Object(o, key))
            {
                var s = kv.Value as string;
                if (s == null) throw new FormatException("field '" + key + "." + kv.Key + "' is not a string");
                result[kv.Key] = s;
            }
            return result;
        }
    }
}

using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;

namespace ChibiMeta.Bridge
{
    /// <summary>
    /// The morph-target names of chibi_meta avatars (the same tables as <c>chibi_meta/avatar/names.py</c>,
    /// checked against it by the tests). A GLB or VRM names its morph targets with these strings in
    /// <c>mesh.extras.targetNames</c>; glTFast and UniVRM turn them into blend shapes of the same names.
    /// The sets are the values of the request field <c>morph_targets</c> (<see cref="GenerateRequest.MorphTargets"/>).
    /// </summary>
    public static class MorphTargetNames
    {
        /// <summary>The VRM 1.0 expression presets (a VRM's expressions; <c>neutral</c> has no morph target).</summary>
        public static readonly IReadOnlyList<string> VrmPresets = List(
            "happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh",
            "blink", "blinkLeft", "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral");

        /// <summary>The 15 Oculus (Meta) lip-sync visemes.</summary>
        public static readonly IReadOnlyList<string> OculusVisemes = List(
            "viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk", "viseme_CH", "viseme_SS",
            "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U");

        /// <summary>The 52 ARKit face blend shapes.</summary>
        public static readonly IReadOnlyList<string> Arkit = List(
            "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
            "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
            "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
            "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
            "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
            "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
            "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
            "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
            "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut");

        /// <summary>The Ready Player Me names that come with the ARKit set.</summary>
        public static readonly IReadOnlyList<string> RpmExtra = List(
            "mouthOpen", "mouthSmile", "eyesClosed", "eyesLookUp", "eyesLookDown");

        /// <summary><c>morph_targets</c> set name: the VRM presets (without <c>neutral</c>).</summary>
        public const string SetVrm = "vrm";
        /// <summary><c>morph_targets</c> set name: the Oculus visemes.</summary>
        public const string SetOculus = "oculus";
        /// <summary><c>morph_targets</c> set name: ARKit plus the Ready Player Me extras.</summary>
        public const string SetArkit = "arkit";
        /// <summary><c>morph_targets</c> value <c>["none"]</c>: no morph targets at all.</summary>
        public const string SetNone = "none";

        /// <summary>Each <c>morph_targets</c> set name and the morph targets it adds, in file order.</summary>
        public static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> Sets = BuildSets();

        /// <summary>The sets a request without <c>morph_targets</c> gets: all of them.</summary>
        public static readonly IReadOnlyList<string> DefaultSets = List(SetVrm, SetOculus, SetArkit);

        /// <summary>
        /// A <c>morph_targets</c> value in canonical form, as the server reads it (<c>names.check_morph_sets</c>):
        /// null gives <see cref="DefaultSets"/>; <c>["none"]</c> gives no sets; otherwise the sets named, in the
        /// order of <see cref="Sets"/>, once each.
        /// </summary>
        /// <exception cref="ArgumentException">an empty list, an unknown set name, or <c>none</c> with other sets</exception>
        public static IReadOnlyList<string> Canonical(IEnumerable<string> sets)
        {
            if (sets == null) return DefaultSets;
            var wanted = new HashSet<string>(StringComparer.Ordinal);
            foreach (string s in sets)
            {
                if (s == null || (s != SetNone && !Sets.ContainsKey(s)))
                    throw new ArgumentException("unknown morph-target set '" + s + "'; allowed: vrm, oculus, arkit, none");
                wanted.Add(s);
            }
            if (wanted.Count == 0) throw new ArgumentException("morph_targets must be a non-empty list of set names; allowed: vrm, oculus, arkit, none");
            if (wanted.Contains(SetNone))
            {
                if (wanted.Count > 1) throw new ArgumentException("morph_targets: 'none' cannot be combined with other sets");
                return List();
            }
            var canonical = new List<string>();
            foreach (string k in Sets.Keys)
                if (wanted.Contains(k)) canonical.Add(k);
            return canonical.AsReadOnly();
        }

        /// <summary>The morph-target names a <c>morph_targets</c> value asks for, set by set (see <see cref="Canonical"/>).</summary>
        /// <exception cref="ArgumentException">as <see cref="Canonical"/></exception>
        public static IReadOnlyList<string> TargetsOf(IEnumerable<string> sets)
        {
            var names = new List<string>();
            foreach (string set in Canonical(sets)) names.AddRange(Sets[set]);
            return names.AsReadOnly();
        }

        static IReadOnlyDictionary<string, IReadOnlyList<string>> BuildSets()
        {
            var vrm = new List<string>();
            foreach (string n in VrmPresets)
                if (n != "neutral") vrm.Add(n);
            var arkit = new List<string>(Arkit);
            arkit.AddRange(RpmExtra);
            // enumerated in the order of names.py (vrm, oculus, arkit)
            var sets = new OrderedSets();
            sets.Add(SetVrm, vrm.AsReadOnly());
            sets.Add(SetOculus, OculusVisemes);
            sets.Add(SetArkit, arkit.AsReadOnly());
            return sets;
        }

        static ReadOnlyCollection<string> List(params string[] names)
        {
            return Array.AsReadOnly(names);
        }

        /// <summary>A small read-only dictionary that enumerates in insertion order.</summary>
        sealed class OrderedSets : IReadOnlyDictionary<string, IReadOnlyList<string>>
        {
            readonly List<KeyValuePair<string, IReadOnlyList<string>>> _items = new List<KeyValuePair<string, IReadOnlyList<string>>>();
            readonly Dictionary<string, IReadOnlyList<string>> _index = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);

            public void Add(string key, IReadOnlyList<string> value)
            {
                _index.Add(key, value);
                _items.Add(new KeyValuePair<string, IReadOnlyList<string>>(key, value));
            }

            public IReadOnlyList<string> this[string key] { get { return _index[key]; } }
            public IEnumerable<string> Keys { get { foreach (var kv in _items) yield return kv.Key; } }
            public IEnumerable<IReadOnlyList<string>> Values { get { foreach (var kv in _items) yield return kv.Value; } }
            public int Count { get { return _items.Count; } }
            public bool ContainsKey(string key) { return _index.ContainsKey(key); }
            public bool TryGetValue(string key, out IReadOnlyList<string> value) { return _index.TryGetValue(key, out value); }
            public IEnumerator<KeyValuePair<string, IReadOnlyList<string>>> GetEnumerator() { return _items.GetEnumerator(); }
            System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() { return GetEnumerator(); }
        }
    }
}

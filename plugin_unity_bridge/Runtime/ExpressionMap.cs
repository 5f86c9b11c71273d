using System;
using System.Collections.Generic;

namespace ChibiMeta.Bridge
{
    /// <summary>One blend shape: the mesh (renderer) it belongs to, its index in that mesh, its name.</summary>
    public struct BlendShapeRef : IEquatable<BlendShapeRef>
    {
        /// <summary>Index of the mesh in the list given to <see cref="ExpressionMap"/>.</summary>
        public readonly int Mesh;
        /// <summary>Blend-shape index in that mesh (glTFast and UniVRM keep the glTF morph-target order).</summary>
        public readonly int Index;
        /// <summary>The blend shape's name (a glTF <c>mesh.extras.targetNames</c> entry).</summary>
        public readonly string Name;

        /// <summary>A reference to blend shape <paramref name="index"/> of mesh <paramref name="mesh"/>.</summary>
        public BlendShapeRef(int mesh, int index, string name)
        {
            Mesh = mesh;
            Index = index;
            Name = name;
        }

        /// <inheritdoc />
        public bool Equals(BlendShapeRef other) { return Mesh == other.Mesh && Index == other.Index && Name == other.Name; }
        /// <inheritdoc />
        public override bool Equals(object obj) { return obj is BlendShapeRef && Equals((BlendShapeRef)obj); }
        /// <inheritdoc />
        public override int GetHashCode() { return (Mesh * 397) ^ Index; }
        /// <inheritdoc />
        public override string ToString() { return Name + "@" + Mesh + ":" + Index; }
    }

    /// <summary>What a name resolved to: a VRM expression, or blend shapes to drive directly.</summary>
    public sealed class ExpressionTarget
    {
        internal ExpressionTarget(string requested, string via, string vrmExpression, IReadOnlyList<BlendShapeRef> blendShapes)
        {
            Requested = requested;
            Via = via;
            VrmExpression = vrmExpression;
            BlendShapes = blendShapes;
        }

        /// <summary>The name that was asked for.</summary>
        public string Requested { get; private set; }
        /// <summary>The name that matched: <see cref="Requested"/> itself, or one of its equivalents (e.g. <c>viseme_aa</c> for <c>aa</c>).</summary>
        public string Via { get; private set; }
        /// <summary>The VRM expression to set (a preset such as <c>happy</c>, or a custom name); null: drive <see cref="BlendShapes"/>.</summary>
        public string VrmExpression { get; private set; }
        /// <summary>The blend shapes to drive when <see cref="VrmExpression"/> is null (one per mesh that has them).</summary>
        public IReadOnlyList<BlendShapeRef> BlendShapes { get; private set; }
    }

    /// <summary>
    /// Maps expression and viseme names to an avatar's blend shapes or VRM expressions. Plain C#: the
    /// Unity component <c>ChibiAvatarExpressions</c> feeds it the blend-shape names of the avatar's meshes
    /// (and, for a VRM loaded by UniVRM, its expression names) and applies what it returns.
    /// <para>A name resolves to, in this order: the VRM expression of that name; the blend shapes of
    /// that name; then the same for each of its equivalents in the other name sets (<see cref="EquivalentsOf"/>),
    /// so <c>SetExpression("blink")</c> still works on an avatar requested with only the <c>arkit</c> set.</para>
    /// </summary>
    public sealed class ExpressionMap
    {
        // Each group: names (or "a+b" name sets) that show the same state, canonical (VRM preset) first.
        static readonly string[][] Groups =
        {
            new[] { "blink", "eyesClosed", "eyeBlinkLeft+eyeBlinkRight" },
            new[] { "blinkLeft", "eyeBlinkLeft" },
            new[] { "blinkRight", "eyeBlinkRight" },
            new[] { "happy", "mouthSmile", "mouthSmileLeft+mouthSmileRight" },
            new[] { "aa", "viseme_aa", "mouthOpen", "jawOpen" },
            new[] { "ih", "viseme_I" },
            new[] { "ou", "viseme_U", "mouthPucker" },
            new[] { "ee", "viseme_E" },
            new[] { "oh", "viseme_O", "mouthFunnel" },
            new[] { "lookUp", "eyesLookUp", "eyeLookUpLeft+eyeLookUpRight" },
            new[] { "lookDown", "eyesLookDown", "eyeLookDownLeft+eyeLookDownRight" },
        };

        static readonly Dictionary<string, string[]> GroupOf = BuildGroupIndex();
        static readonly string[] VrmVisemes = { "aa", "ih", "ou", "ee", "oh" };

        readonly Dictionary<string, List<BlendShapeRef>> _shapes = new Dictionary<string, List<BlendShapeRef>>(StringComparer.Ordinal);
        readonly HashSet<string> _vrm = new HashSet<string>(StringComparer.Ordinal);
        readonly List<string> _names = new List<string>();

        /// <summary>
        /// A map over <paramref name="blendShapeNamesPerMesh"/> (for each mesh, its blend-shape names in
        /// index order) and the VRM expressions <paramref name="vrmExpressions"/> (null or empty: not a VRM).
        /// </summary>
        public ExpressionMap(IEnumerable<IEnumerable<string>> blendShapeNamesPerMesh, IEnumerable<string> vrmExpressions = null)
        {
            if (blendShapeNamesPerMesh == null) throw new ArgumentNullException(nameof(blendShapeNamesPerMesh));
            int mesh = 0;
            foreach (IEnumerable<string> names in blendShapeNamesPerMesh)
            {
                int index = 0;
                if (names != null)
                    foreach (string name in names)
                    {
                        if (!string.IsNullOrEmpty(name))
                        {
                            List<BlendShapeRef> refs;
                            if (!_shapes.TryGetValue(name, out refs))
                            {
                                _shapes[name] = refs = new List<BlendShapeRef>();
                                _names.Add(name);
                            }
                            // a mesh with a duplicate name: its first blend shape of that name
                            if (refs.Count == 0 || refs[refs.Count - 1].Mesh != mesh) refs.Add(new BlendShapeRef(mesh, index, name));
                        }
                        index++;
                    }
                mesh++;
            }
            if (vrmExpressions != null)
                foreach (string e in vrmExpressions)
                    if (!string.IsNullOrEmpty(e) && _vrm.Add(e) && !_shapes.ContainsKey(e)) _names.Add(e);
        }

        /// <summary>Every blend-shape and VRM-expression name of the avatar, first seen first.</summary>
        public IReadOnlyList<string> Names { get { return _names.AsReadOnly(); } }

        /// <summary>True when the avatar has VRM expressions (it was loaded by UniVRM).</summary>
        public bool HasVrmExpressions { get { return _vrm.Count > 0; } }

        /// <summary>
        /// The names that show the same state as <paramref name="name"/> in the other sets, in the order they
        /// are tried (e.g. <c>blink</c>: <c>eyesClosed</c>, then <c>eyeBlinkLeft+eyeBlinkRight</c> together).
        /// Empty for names without equivalents.
        /// </summary>
        public static IReadOnlyList<string> EquivalentsOf(string name)
        {
            string[] group;
            var list = new List<string>();
            if (name != null && GroupOf.TryGetValue(name, out group))
                foreach (string g in group)
                    if (g != name) list.Add(g);
            return list.AsReadOnly();
        }

        /// <summary>
        /// The Oculus viseme (<c>viseme_aa</c>, <c>viseme_PP</c>, ...) that <paramref name="name"/> names: an
        /// Oculus name with or without <c>viseme_</c>, or a VRM vowel (<c>aa</c>, <c>ih</c>, <c>ou</c>,
        /// <c>ee</c>, <c>oh</c>). Null when it is not a viseme.
        /// </summary>
        public static string OculusViseme(string name)
        {
            if (string.IsNullOrEmpty(name)) return null;
            foreach (string v in MorphTargetNames.OculusVisemes)
                if (v == name || v == "viseme_" + name) return v;
            int vowel = Array.IndexOf(VrmVisemes, name);
            return vowel < 0 ? null : GroupOf[name][1];
        }

        /// <summary>The VRM vowel preset of a viseme (<c>aa</c> for <c>viseme_aa</c> or <c>aa</c>); null for consonants and non-visemes.</summary>
        public static string VrmViseme(string name)
        {
            string oculus = OculusViseme(name);
            string[] group;
            return oculus != null && GroupOf.TryGetValue(oculus, out group) && Array.IndexOf(VrmVisemes, group[0]) >= 0
                ? group[0] : null;
        }

        /// <summary>What <c>SetExpression(name, ...)</c> drives; null when the avatar has nothing of that name or meaning.</summary>
        public ExpressionTarget ResolveExpression(string name)
        {
            if (string.IsNullOrEmpty(name)) return null;
            ExpressionTarget found = Match(name, name);
            if (found != null) return found;
            foreach (string alt in EquivalentsOf(name))
            {
                found = Match(name, alt);
                if (found != null) return found;
            }
            return null;
        }

        /// <summary>
        /// What <c>SetViseme(name, ...)</c> drives (names as in <see cref="OculusViseme"/>), in this order: the
        /// VRM's vowel expression (so UniVRM's mouth overrides apply), the Oculus viseme's blend shapes, then
        /// the equivalents of the vowel or viseme (<see cref="EquivalentsOf"/>). Null for other names.
        /// </summary>
        public ExpressionTarget ResolveViseme(string name)
        {
            string oculus = OculusViseme(name);
            if (oculus == null) return null;
            string vowel = VrmViseme(oculus);
            if (vowel != null && _vrm.Contains(vowel)) return new ExpressionTarget(name, vowel, vowel, new BlendShapeRef[0]);
            List<BlendShapeRef> refs;
            if (_shapes.TryGetValue(oculus, out refs)) return new ExpressionTarget(name, oculus, null, refs.AsReadOnly());
            ExpressionTarget t = ResolveExpression(vowel ?? oculus);
            return t == null ? null : new ExpressionTarget(name, t.Via, t.VrmExpression, t.BlendShapes);
        }

        ExpressionTarget Match(string requested, string candidate)
        {
            if (candidate.IndexOf('+') < 0)
            {
                if (_vrm.Contains(candidate)) return new ExpressionTarget(requested, candidate, candidate, new BlendShapeRef[0]);
                List<BlendShapeRef> refs;
                return _shapes.TryGetValue(candidate, out refs) ? new ExpressionTarget(requested, candidate, null, refs.AsReadOnly()) : null;
            }
            var all = new List<BlendShapeRef>();
            foreach (string part in candidate.Split('+'))
            {
                List<BlendShapeRef> refs;
                if (!_shapes.TryGetValue(part, out refs)) return null; // a set counts only when all of it is there
                all.AddRange(refs);
            }
            return new ExpressionTarget(requested, candidate, null, all.AsReadOnly());
        }

        static Dictionary<string, string[]> BuildGroupIndex()
        {
            var index = new Dictionary<string, string[]>(StringComparer.Ordinal);
            foreach (string[] group in Groups)
                foreach (string name in group)
                    if (name.IndexOf('+') < 0) index[name] = group;
            return index;
        }
    }
}

using System.Collections.Generic;
using UnityEngine;
#if CHIBI_META_UNIVRM
using UniVRM10;
#endif

namespace ChibiMeta.Bridge.Unity
{
    /// <summary>
    /// Expressions and visemes of a loaded chibi avatar, by name. <see cref="ChibiAvatarInstantiator"/>
    /// adds it to every GLB and VRM avatar; add it yourself to an avatar imported in the Editor.
    /// <list type="bullet">
    /// <item>GLB (glTFast): drives the blend shapes of the avatar's <c>SkinnedMeshRenderer</c>s, which glTFast
    /// names after the file's morph targets (<see cref="MorphTargetNames"/>: VRM presets, Oculus visemes, ARKit).</item>
    /// <item>VRM (UniVRM): sets <c>Vrm10Instance.Runtime.Expression</c> weights for the VRM's expressions
    /// (so UniVRM's blink / look-at / mouth overrides apply), and drives blend shapes for other names.</item>
    /// </list>
    /// A name the avatar lacks falls back to an equivalent from another set (<see cref="ExpressionMap"/>),
    /// so <c>SetExpression("blink", 1)</c> works whichever <c>morph_targets</c> the avatar was requested with.
    /// Weights are 0..1 (clamped). Main thread only.
    /// </summary>
    [AddComponentMenu("chibi_meta/Chibi Avatar Expressions")]
    [DisallowMultipleComponent]
    public sealed class ChibiAvatarExpressions : MonoBehaviour
    {
        SkinnedMeshRenderer[] _renderers;
        ExpressionMap _map;
        readonly HashSet<string> _driven = new HashSet<string>();
#if CHIBI_META_UNIVRM
        Vrm10Instance _vrm;
        readonly Dictionary<string, ExpressionKey> _keys = new Dictionary<string, ExpressionKey>();
#endif

        /// <summary>The name map of this avatar (its blend shapes and VRM expressions).</summary>
        public ExpressionMap Map
        {
            get
            {
                Bind();
                return _map;
            }
        }

        /// <summary>
        /// Sets expression <paramref name="name"/> (a VRM preset such as <c>happy</c>, <c>blink</c>,
        /// <c>lookUp</c>; an ARKit or Ready Player Me name such as <c>eyeBlinkLeft</c> or <c>mouthSmile</c>;
        /// any blend shape or custom VRM expression of the avatar) to <paramref name="weight"/> (0..1).
        /// Returns false when the avatar has nothing of that name or meaning.
        /// </summary>
        public bool SetExpression(string name, float weight)
        {
            Bind();
            return Apply(_map.ResolveExpression(name), weight);
        }

        /// <summary>
        /// Sets viseme <paramref name="name"/> (an Oculus viseme: <c>viseme_aa</c> or <c>aa</c>, <c>viseme_PP</c>
        /// or <c>PP</c>, ...; or a VRM vowel: <c>aa</c>, <c>ih</c>, <c>ou</c>, <c>ee</c>, <c>oh</c>) to
        /// <paramref name="weight"/> (0..1). Returns false for names that are not visemes or that the avatar lacks.
        /// </summary>
        public bool SetViseme(string name, float weight)
        {
            Bind();
            return Apply(_map.ResolveViseme(name), weight);
        }

        /// <summary>Sets every expression and blend shape this component has driven back to 0.</summary>
        public void ResetAll()
        {
            Bind();
            foreach (string name in new List<string>(_driven)) Apply(_map.ResolveExpression(name), 0f);
            _driven.Clear();
        }

        /// <summary>Reads the avatar's renderers and expressions again (after you changed its meshes).</summary>
        public void Rebind()
        {
            _map = null;
            Bind();
        }

        void Bind()
        {
            if (_map != null) return;
            _renderers = GetComponentsInChildren<SkinnedMeshRenderer>(true);
            var names = new List<string[]>();
            foreach (SkinnedMeshRenderer r in _renderers)
            {
                Mesh mesh = r.sharedMesh;
                int count = mesh == null ? 0 : mesh.blendShapeCount;
                var shapes = new string[count];
                for (int i = 0; i < count; i++) shapes[i] = mesh.GetBlendShapeName(i);
                names.Add(shapes);
            }
            List<string> expressions = null;
#if CHIBI_META_UNIVRM
            _vrm = GetComponent<Vrm10Instance>();
            _keys.Clear();
            if (_vrm != null)
            {
                expressions = new List<string>();
                foreach (ExpressionKey key in _vrm.Runtime.Expression.ExpressionKeys)
                {
                    string n = key.Preset == ExpressionPreset.custom ? key.Name : key.Preset.ToString();
                    if (string.IsNullOrEmpty(n) || _keys.ContainsKey(n)) continue;
                    _keys[n] = key;
                    expressions.Add(n);
                }
            }
#endif
            _map = new ExpressionMap(names, expressions);
        }

        bool Apply(ExpressionTarget target, float weight)
        {
            if (target == null) return false;
            weight = Mathf.Clamp01(weight);
            if (weight > 0f) _driven.Add(target.Requested);
#if CHIBI_META_UNIVRM
            ExpressionKey key;
            if (target.VrmExpression != null && _vrm != null && _keys.TryGetValue(target.VrmExpression, out key))
            {
                _vrm.Runtime.Expression.SetWeight(key, weight);
                return true;
            }
#endif
            bool any = false;
            foreach (BlendShapeRef shape in target.BlendShapes)
            {
                SkinnedMeshRenderer r = shape.Mesh < _renderers.Length ? _renderers[shape.Mesh] : null;
                if (r == null || r.sharedMesh == null) continue;
                Mesh mesh = r.sharedMesh;
                // the weight of the last frame is "fully on": 1 for glTFast, 100 for UniVRM and Unity's own importer
                int frames = mesh.GetBlendShapeFrameCount(shape.Index);
                float full = frames > 0 ? mesh.GetBlendShapeFrameWeight(shape.Index, frames - 1) : 100f;
                r.SetBlendShapeWeight(shape.Index, weight * full);
                any = true;
            }
            return any;
        }
    }
}

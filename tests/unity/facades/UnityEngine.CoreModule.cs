// FACADE, NOT UNITY. The UnityEngine.CoreModule members that plugin_unity_bridge's glue (Runtime/Unity,
// Editor, Samples~) and the glTFast / UniVRM facades use, with the signatures of Unity 2021.3
// (Unity-Technologies/UnityCsReference, tag 2021.3.58f1; each declaration names its file:line there).
// Bodies are small stand-ins so that the glue can run under Mono (tests/unity/GlueChecks.cs): GameObjects
// hold components and children, Destroy marks objects destroyed and, as in Unity, a destroyed object
// compares equal to null. What the checks inspect is internal (visible to GlueChecks only), so the glue
// cannot use anything Unity does not have. Compiled by tests/unity/unity_compile.py into
// UnityEngine.CoreModule.dll.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("GlueChecks")]

namespace UnityEngine
{
    // Runtime/Export/Scripting/UnityEngineObject.bindings.cs:64
    public partial class Object
    {
        public string name { get; set; }                                        // :168
        public override int GetHashCode() { return base.GetHashCode(); }          // :92
        public override bool Equals(object other) { return base.Equals(other); }  // :100
        public static implicit operator bool(Object exists) { return !IsNull(exists); } // :112
        public static void Destroy(Object obj, float t) { Destroy(obj); }       // :277
        public static void Destroy(Object obj) { if (!ReferenceEquals(obj, null)) obj.OnDestroyed(); } // :280
        public static void DestroyImmediate(Object obj, bool allowDestroyingAssets) { Destroy(obj); } // :288
        public static void DestroyImmediate(Object obj) { Destroy(obj); }       // :291
        public static bool operator ==(Object x, Object y) { return IsNull(x) ? IsNull(y) : !IsNull(y) && ReferenceEquals(x, y); } // :473
        public static bool operator !=(Object x, Object y) { return !(x == y); } // :475

        // stand-in state, for tests/unity/GlueChecks.cs
        internal bool destroyed;
        internal static readonly List<Object> created = new List<Object>();
        protected Object() { lock (created) created.Add(this); }
        static bool IsNull(Object o) { return ReferenceEquals(o, null) || o.destroyed; }
        internal virtual void OnDestroyed() { destroyed = true; }
    }

    // Runtime/Export/Scripting/Component.bindings.cs:18
    public partial class Component : Object
    {
        public Transform transform { get { return gameObject == null ? null : gameObject.transform; } } // :20
        public GameObject gameObject { get { return m_GameObject; } }           // :26
        public T GetComponent<T>() { return gameObject.GetComponent<T>(); }     // :42
        public T[] GetComponentsInChildren<T>(bool includeInactive)             // :98
        {
            var result = new List<T>();
            GetComponentsInChildren(includeInactive, result);
            return result.ToArray();
        }
        public void GetComponentsInChildren<T>(bool includeInactive, List<T> result) // :103
        {
            gameObject.Collect(result);
        }

        internal GameObject m_GameObject;
        internal override void OnDestroyed()
        {
            base.OnDestroyed();
            if (m_GameObject != null) m_GameObject.components.Remove(this);
            var hook = this as IDestroyHook;
            if (hook != null) hook.Destroyed();
        }
    }

    // stand-in: Unity calls OnDestroy on a destroyed MonoBehaviour; the stand-in does it through reflection
    internal interface IDestroyHook { void Destroyed(); }

    // Runtime/Export/Scripting/Behaviour.bindings.cs:13
    public class Behaviour : Component {}

    // Runtime/Export/Scripting/MonoBehaviour.bindings.cs:19
    public class MonoBehaviour : Behaviour, IDestroyHook
    {
        void IDestroyHook.Destroyed()
        {
            var m = GetType().GetMethod("OnDestroy", System.Reflection.BindingFlags.Instance |
                                        System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic);
            if (m != null) m.Invoke(this, null);
        }
    }

    // Runtime/Export/Scripting/ScriptableObject.bindings.cs:19
    public class ScriptableObject : Object {}

    // Runtime/Export/Scripting/GameObject.bindings.cs:22
    public sealed partial class GameObject : Object
    {
        public T GetComponent<T>()                                              // :28
        {
            foreach (Component c in components) if (c is T) return (T)(object)c;
            return default(T);
        }
        public T AddComponent<T>() where T : Component                          // :232
        {
            var c = (T)Activator.CreateInstance(typeof(T), true);
            c.m_GameObject = this;
            components.Add(c);
            return c;
        }
        public Transform transform { get { return m_Transform; } }              // :237
        public GameObject(string name)                                          // :359
        {
            this.name = name;
            m_Transform = AddComponent<Transform>();
        }

        internal readonly List<Component> components = new List<Component>();
        readonly Transform m_Transform;
        internal void Collect<T>(List<T> result)
        {
            foreach (Component c in components) if (c is T) result.Add((T)(object)c);
            foreach (Transform child in m_Transform.children) child.gameObject.Collect(result);
        }
        internal override void OnDestroyed()
        {
            base.OnDestroyed();
            foreach (Component c in components.ToArray()) Destroy(c);
            foreach (Transform child in m_Transform.children.ToArray()) Destroy(child.gameObject);
            if (m_Transform.parent != null) m_Transform.parent.children.Remove(m_Transform);
        }
    }

    // Runtime/Transform/ScriptBindings/Transform.bindings.cs:21
    public partial class Transform : Component, IEnumerable
    {
        public void SetParent(Transform p) { SetParent(p, true); }              // :100
        public void SetParent(Transform parent, bool worldPositionStays)        // :106
        {
            if (destroyed || (!ReferenceEquals(parent, null) && parent.destroyed))
                throw new InvalidOperationException("MissingReferenceException: the object was destroyed");
            if (this.parent != null) this.parent.children.Remove(this);
            this.parent = parent;
            if (parent != null) parent.children.Add(this);
        }
        public IEnumerator GetEnumerator() { return children.GetEnumerator(); }

        internal Transform parent;
        internal readonly List<Transform> children = new List<Transform>();
    }

    // Runtime/Export/Debug/Debug.bindings.cs:28 (the stand-in writes to stdout, so Mono runs can see it)
    public partial class Debug
    {
        public static void Log(object message) { Console.WriteLine("[Log] " + message); }                   // :106
        public static void Log(object message, Object context) { Console.WriteLine("[Log] " + message); }   // :109
        public static void LogError(object message) { Console.WriteLine("[LogError] " + message); }         // :134
        public static void LogError(object message, Object context) { Console.WriteLine("[LogError] " + message); } // :137
        public static void LogWarning(object message) { Console.WriteLine("[LogWarning] " + message); }     // :184
        public static void LogWarning(object message, Object context) { Console.WriteLine("[LogWarning] " + message); } // :187
    }

    // Runtime/Export/Application/Application.bindings.cs:33
    public partial class Application
    {
        public static bool isPlaying { get { return playing; } }                // :106
        internal static bool playing;
        public static string persistentDataPath { get { return ""; } }          // :185
        public static string unityVersion { get { return "2021.3.0f1"; } }      // :220
    }

    // Runtime/Export/Graphics/GraphicsEnums.cs:298
    public enum FilterMode { Point = 0, Bilinear = 1, Trilinear = 2 }
    // Runtime/Export/Graphics/GraphicsEnums.cs:321 (one member of many)
    public enum TextureFormat { RGBA32 = 4 }

    // Runtime/Export/Graphics/Texture.bindings.cs:22
    public partial class Texture : Object
    {
        public virtual int width { get { return 0; } set {} }                   // :43
        public virtual int height { get { return 0; } set {} }                  // :44
        public FilterMode filterMode { get; set; }                              // :57
    }

    // Runtime/Export/Graphics/Texture.bindings.cs:186
    public sealed partial class Texture2D : Texture
    {
        public Texture2D(int width, int height, TextureFormat textureFormat, bool mipChain) {} // Texture.cs:779
        public override int width { get { return 0; } set {} }                  // :684
        public override int height { get { return 0; } set {} }                 // :685
    }

    // Runtime/2D/Common/ScriptBindings/Sprites.bindings.cs:67
    public sealed partial class Sprite : Object
    {
        public static Sprite Create(Texture2D texture, Rect rect, Vector2 pivot, float pixelsPerUnit) { return null; } // :299
    }

    // Runtime/Export/Graphics/GraphicsRenderers.bindings.cs:21
    public partial class Renderer : Component {}

    // Runtime/2D/Common/ScriptBindings/SpriteRenderer.bindings.cs:35
    public sealed partial class SpriteRenderer : Renderer
    {
        public Sprite sprite { get; set; }                                      // :71
    }

    // Runtime/Export/Graphics/GraphicsRenderers.bindings.cs:343
    public partial class SkinnedMeshRenderer : Renderer
    {
        public Mesh sharedMesh { get; set; }                                    // :353
        public float GetBlendShapeWeight(int index) { float w; return weights.TryGetValue(index, out w) ? w : 0f; } // :356
        public void SetBlendShapeWeight(int index, float value) { weights[index] = value; } // :357
        internal readonly Dictionary<int, float> weights = new Dictionary<int, float>();
    }

    // Runtime/Export/Graphics/Mesh.cs:20
    public sealed partial class Mesh : Object
    {
        public int blendShapeCount { get { return shapes.Count; } }             // Mesh.bindings.cs:154
        public string GetBlendShapeName(int shapeIndex) { return shapes[shapeIndex]; } // Mesh.bindings.cs:160
        public int GetBlendShapeIndex(string blendShapeName) { return shapes.IndexOf(blendShapeName); } // Mesh.bindings.cs:163
        public int GetBlendShapeFrameCount(int shapeIndex) { return shapes.Count > shapeIndex ? 1 : 0; } // Mesh.bindings.cs:166
        public float GetBlendShapeFrameWeight(int shapeIndex, int frameIndex) { return frameWeight; } // Mesh.bindings.cs:169
        internal readonly List<string> shapes = new List<string>();
        internal float frameWeight = 100f;
    }

    // Runtime/Export/Geometry/Rect.cs:18
    public partial struct Rect : IEquatable<Rect>
    {
        public Rect(float x, float y, float width, float height) {}             // :29
        public bool Equals(Rect other) { return true; }
    }

    // Runtime/Export/Math/Vector2.cs:24
    public struct Vector2 : IEquatable<Vector2>
    {
        public float x, y;
        public Vector2(float x, float y) { this.x = x; this.y = y; }            // :61
        public bool Equals(Vector2 other) { return x == other.x && y == other.y; }
    }

    // Runtime/Export/Math/Mathf.cs:26
    public partial struct Mathf
    {
        public static float Clamp(float value, float min, float max) { return value < min ? min : value > max ? max : value; } // :184
        public static int Clamp(int value, int min, int max) { return value < min ? min : value > max ? max : value; }         // :197
        public static float Clamp01(float value) { return value < 0f ? 0f : value > 1f ? 1f : value; }                        // :207
    }

    // Runtime/Export/Random/Random.bindings.cs:12
    public static partial class Random
    {
        public static float value { get { return 0f; } }                        // :49
    }

    // Runtime/Export/Scripting/Attributes.cs:12
    public sealed class DisallowMultipleComponent : Attribute {}
    // Runtime/Export/Scripting/Attributes.cs:36
    public sealed class AddComponentMenu : Attribute
    {
        public AddComponentMenu(string menuName) {}                             // :42
    }
    // Runtime/Export/Scripting/Attributes.cs:64
    public sealed class ContextMenu : Attribute
    {
        public ContextMenu(string itemName) {}                                  // :67
    }
    // Runtime/Export/PropertyDrawer/PropertyAttribute.cs:11
    public abstract class PropertyAttribute : Attribute {}
    // Runtime/Export/PropertyDrawer/PropertyAttribute.cs:41
    public class TooltipAttribute : PropertyAttribute
    {
        public TooltipAttribute(string tooltip) {}                              // :45
    }
}

namespace Unity.Collections
{
    // Runtime/Export/NativeArray/NativeArray.cs:31 (glTFast 6.11+ overloads Load with NativeArray<byte>.ReadOnly)
    public struct NativeArray<T> : IDisposable where T : struct
    {
        public void Dispose() {}
        // :699
        public struct ReadOnly : IEnumerable<T>
        {
            public IEnumerator<T> GetEnumerator() { return ((IEnumerable<T>)new T[0]).GetEnumerator(); }
            IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }
        }
    }
}

// FACADE, NOT UNITY. The UnityEngine.IMGUIModule members the Editor window uses, Unity 2021.3
// (UnityCsReference 2021.3.58f1, Modules/IMGUI/; file:line per declaration). Inert bodies.
using System;

namespace UnityEngine
{
    // GUIEnums.cs:10 (one member of several)
    public enum ScaleMode { StretchToFill = 0, ScaleAndCrop = 1, ScaleToFit = 2 }

    // GUILayoutOption.cs:10
    public sealed class GUILayoutOption {}

    // GUIStyle.cs:72
    public sealed partial class GUIStyle {}

    // GUIContent.cs:17
    public class GUIContent {}

    // GUILayout.cs:10
    public partial class GUILayout
    {
        public static void Label(Texture image, params GUILayoutOption[] options) {}                      // :12
        public static void Label(string text, params GUILayoutOption[] options) {}                        // :13
        public static void Label(GUIContent content, params GUILayoutOption[] options) {}                 // :14
        public static void Label(Texture image, GUIStyle style, params GUILayoutOption[] options) {}      // :15
        public static void Label(string text, GUIStyle style, params GUILayoutOption[] options) {}        // :16
        public static void Label(GUIContent content, GUIStyle style, params GUILayoutOption[] options) {} // :18
        public static bool Button(Texture image, params GUILayoutOption[] options) { return false; }      // :32
        public static bool Button(string text, params GUILayoutOption[] options) { return false; }        // :33
        public static bool Button(GUIContent content, params GUILayoutOption[] options) { return false; } // :34
        public static bool Button(Texture image, GUIStyle style, params GUILayoutOption[] options) { return false; }      // :35
        public static bool Button(string text, GUIStyle style, params GUILayoutOption[] options) { return false; }        // :36
        public static bool Button(GUIContent content, GUIStyle style, params GUILayoutOption[] options) { return false; } // :38
        public static GUILayoutOption Width(float width) { return null; }                                 // :453
        public static GUILayoutOption Height(float height) { return null; }                               // :459
        public static GUILayoutOption ExpandWidth(bool expand) { return null; }                           // :468
    }

    // GUILayoutUtility.cs:17
    public partial class GUILayoutUtility
    {
        public static Rect GetRect(float width, float height, params GUILayoutOption[] options) { return default(Rect); } // :473
    }

    // GUIUtility.cs:38
    public partial class GUIUtility {}

    // GUI.cs:1958
    public partial class GUI
    {
        // GUI.cs:1960
        public abstract class Scope : IDisposable
        {
            public void Dispose() {}
        }
    }
}

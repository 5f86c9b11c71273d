// FACADE, NOT UNITY. The UnityEditor members plugin_unity_bridge's Editor assemblies use, Unity 2021.3
// (UnityCsReference 2021.3.58f1; file:line per declaration). Inert bodies (defaults), so that plain
// logic compiled against it runs under Mono. Compiled into UnityEditor.dll.
using System;
using UnityEngine;

namespace UnityEditor
{
    // Editor/Mono/EditorWindow.cs:20
    public partial class EditorWindow : ScriptableObject
    {
        public void Show() {}                                                   // :662
        public static T GetWindow<T>(string title) where T : EditorWindow { return null; } // :810
        public void Repaint() {}                                                // :1046
    }

    // Editor/Mono/MenuItem.cs:18
    public sealed class MenuItem : Attribute
    {
        public MenuItem(string itemName) {}                                     // :23
    }

    // Editor/Mono/EditorAssemblies.cs:30
    public class InitializeOnLoadAttribute : Attribute {}

    // Editor/Mono/EditorApplication.cs:65
    public sealed partial class EditorApplication
    {
        public delegate void CallbackFunction();                               // :172
        public static CallbackFunction delayCall;                              // :197
    }

    // Editor/Mono/EditorPrefs.bindings.cs:12
    public sealed class EditorPrefs
    {
        public static void SetString(string key, string value) {}               // :55
        public static string GetString(string key, string defaultValue) { return defaultValue; } // :62
        public static string GetString(string key) { return ""; }               // :63
    }

    // Editor/Mono/EditorGUIUtility.bindings.cs:186
    public class SessionState
    {
        public static void SetString(string key, string value) {}               // :199
        public static string GetString(string key, string defaultValue) { return defaultValue; } // :200
    }

    // Editor/Mono/GUI/EditorStyles.cs:15
    public sealed class EditorStyles
    {
        public static GUIStyle miniLabel { get { return null; } }               // :26
        public static GUIStyle boldLabel { get { return null; } }               // :34
    }

    // Editor/Mono/EditorGUIUtility.bindings.cs:61
    public enum MessageType { None = 0, Info = 1, Warning = 2, Error = 3 }

    // Editor/Mono/EditorGUILayout.cs (class declared across files, e.g. GUI/AngularDial.cs:9)
    public sealed partial class EditorGUILayout
    {
        public static void LabelField(string label, params GUILayoutOption[] options) {}                   // :113
        public static void LabelField(string label, GUIStyle style, params GUILayoutOption[] options) {}    // :118
        public static void LabelField(GUIContent label, params GUILayoutOption[] options) {}               // :123
        public static void LabelField(GUIContent label, GUIStyle style, params GUILayoutOption[] options) {} // :128
        public static void LabelField(string label, string label2, params GUILayoutOption[] options) {}    // :133
        public static void LabelField(string label, string label2, GUIStyle style, params GUILayoutOption[] options) {} // :138
        public static void LabelField(GUIContent label, GUIContent label2, params GUILayoutOption[] options) {}        // :143
        public static string TextField(string text, params GUILayoutOption[] options) { return text; }                  // :246
        public static string TextField(string text, GUIStyle style, params GUILayoutOption[] options) { return text; }  // :252
        public static string TextField(string label, string text, params GUILayoutOption[] options) { return text; }    // :258
        public static string TextField(string label, string text, GUIStyle style, params GUILayoutOption[] options) { return text; } // :264
        public static string TextField(GUIContent label, string text, params GUILayoutOption[] options) { return text; } // :270
        public static void SelectableLabel(string text, params GUILayoutOption[] options) {}               // :359
        public static string PasswordField(string label, string password, params GUILayoutOption[] options) { return password; } // :388
        public static long LongField(string label, long value, params GUILayoutOption[] options) { return value; }           // :675
        public static int Popup(string label, int selectedIndex, string[] displayedOptions, params GUILayoutOption[] options) { return selectedIndex; } // :895
        public static int Popup(string label, int selectedIndex, string[] displayedOptions, GUIStyle style, params GUILayoutOption[] options) { return selectedIndex; } // :905
        public static void HelpBox(string message, MessageType type) {}        // :1639
        public static void Space() {}                                           // :1676
        public static Vector2 BeginScrollView(Vector2 scrollPosition, params GUILayoutOption[] options) { return scrollPosition; } // :1907
        public static void EndScrollView() {}                                   // :2048

        // :1744
        public class HorizontalScope : GUI.Scope
        {
            public HorizontalScope(params GUILayoutOption[] options) {}         // :1748
        }
    }

    // Editor/Mono/EditorGUI.cs:32
    public sealed partial class EditorGUI
    {
        // :294
        public struct DisabledScope : IDisposable
        {
            public DisabledScope(bool disabled) {}                              // :298
            public void Dispose() {}
        }
        public static void DrawTextureTransparent(Rect position, Texture image, ScaleMode scaleMode) {} // :7728
    }

    // Editor/Mono/EditorGUIUtility.cs:26
    public sealed partial class EditorGUIUtility : GUIUtility
    {
        public static float singleLineHeight { get { return 18f; } }           // :645
        public static void PingObject(UnityEngine.Object obj) {}               // :1166
        public static void PingObject(int targetInstanceID) {}                 // :1173
    }

    // Modules/AssetDatabase/Editor/ScriptBindings/AssetDatabase.bindings.cs:30 (members abridged)
    [Flags] public enum ImportAssetOptions { Default = 0 }

    // Editor/Mono/AssetDatabase/AssetDatabase.cs:13; members in Modules/AssetDatabase/Editor/ScriptBindings/AssetDatabase.bindings.cs
    public sealed partial class AssetDatabase
    {
        public static void ImportAsset(string path) {}                          // :185
        public static void ImportAsset(string path, ImportAssetOptions options) {} // :186
        public static UnityEngine.Object LoadMainAssetAtPath(string assetPath) { return null; } // :240
    }

    // Editor/Mono/BuildTargetGroup.cs:13 (members abridged)
    public enum BuildTargetGroup { Unknown = 0, Standalone = 1 }
    // Editor/Mono/BuildTarget.cs:13 (members abridged)
    public enum BuildTarget { StandaloneOSX = 2, StandaloneWindows = 5 }

    // Editor/Mono/BuildPipeline.bindings.cs:246
    public class BuildPipeline
    {
        public static BuildTargetGroup GetBuildTargetGroup(BuildTarget platform) { return BuildTargetGroup.Standalone; } // :249
    }

    // Editor/Mono/EditorUserBuildSettings.bindings.cs:337
    public partial class EditorUserBuildSettings : UnityEngine.Object
    {
        public static BuildTarget activeBuildTarget { get { return BuildTarget.StandaloneWindows; } } // :711
    }

    // Editor/Mono/PlayerSettings.bindings.cs:290
    public sealed partial class PlayerSettings : UnityEngine.Object
    {
        public static string GetScriptingDefineSymbols(Build.NamedBuildTarget buildTarget) { return ""; } // :967
        public static void SetScriptingDefineSymbols(Build.NamedBuildTarget buildTarget, string defines) {} // :973
        public static void SetScriptingDefineSymbols(Build.NamedBuildTarget buildTarget, string[] defines) {} // :981
    }
}

namespace UnityEditor.Build
{
    // Editor/Mono/BuildPipeline/NamedBuildTarget.cs:10
    public readonly struct NamedBuildTarget : IEquatable<NamedBuildTarget>, IComparable<NamedBuildTarget>
    {
        public string TargetName { get; }                                       // :52
        public static NamedBuildTarget FromBuildTargetGroup(BuildTargetGroup buildTargetGroup) { return default(NamedBuildTarget); } // :75
        public bool Equals(NamedBuildTarget other) { return TargetName == other.TargetName; }
        public int CompareTo(NamedBuildTarget other) { return string.CompareOrdinal(TargetName, other.TargetName); }
    }
}

namespace UnityEditor.Compilation
{
    // Editor/Mono/Scripting/ScriptCompilation/CompilationPipeline.cs:196
    public static partial class CompilationPipeline
    {
        public static string GetAssemblyDefinitionFilePathFromAssemblyName(string assemblyName) { return null; } // :367
    }
}

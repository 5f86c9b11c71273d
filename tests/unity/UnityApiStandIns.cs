// NOT Unity. Minimal stand-ins for the few UnityEngine / UnityEditor / glTFast / UniVRM members that the
// package's Unity-only glue (Runtime/Unity, Editor, Samples~) calls, with the real signatures as far as we
// know them. tests/test_unity_client.py compiles the glue against this file under each combination of the
// CHIBI_META_GLTFAST / CHIBI_META_UNIVRM defines: that catches syntax errors, C# level problems and
// mistakes between the package's own files, and nothing more. Only Unity itself can check the real APIs.
using System;
using System.Threading;
using System.Threading.Tasks;
namespace UnityEngine {
  public class Object { public string name; public static void Destroy(Object o){} public static void DestroyImmediate(Object o){} }
  public class Component : Object { public Transform transform; public GameObject gameObject; }
  public class Behaviour : Component {}
  public class MonoBehaviour : Behaviour {}
  public class Transform : Component { public void SetParent(Transform p, bool w){} }
  public class GameObject : Object { public GameObject(string n){} public Transform transform; public T AddComponent<T>() where T: Component, new() { return new T(); } }
  public static class Debug { public static void Log(object m, Object c=null){} public static void LogWarning(object m){} public static void LogError(object m, Object c=null){} }
  public static class Application { public static string persistentDataPath; public static string unityVersion; }
  public enum TextureFormat { RGBA32 } public enum FilterMode { Bilinear }
  public class Texture : Object {} public class Texture2D : Texture { public Texture2D(int w,int h,TextureFormat f,bool m){} public int width,height; public FilterMode filterMode; }
  public static class ImageConversion { public static bool LoadImage(this Texture2D t, byte[] d) { return true; } }
  public struct Rect { public Rect(float x,float y,float w,float h){} }
  public struct Vector2 { public Vector2(float x,float y){} }
  public class Sprite : Object { public static Sprite Create(Texture2D t, Rect r, Vector2 p, float ppu){ return null; } }
  public class SpriteRenderer : Component { public Sprite sprite; }
  public class AddComponentMenu : Attribute { public AddComponentMenu(string s){} }
  public class TooltipAttribute : Attribute { public TooltipAttribute(string s){} }
  public class ContextMenu : Attribute { public ContextMenu(string s){} }
  public static class Mathf { public static int Clamp(int v,int a,int b){return v;} }
  public static class Random { public static float value; }
  public enum ScaleMode { ScaleToFit }
  public class GUILayoutOption {}
  public static class GUILayout { public static bool Button(string s, params GUILayoutOption[] o){return false;} public static GUILayoutOption Width(float w){return null;} public static GUILayoutOption Height(float w){return null;} public static GUILayoutOption ExpandWidth(bool b){return null;} public static void Label(string s, GUIStyle st){} }
  public class GUIStyle {}
  public static class GUILayoutUtility { public static Rect GetRect(float w,float h, params GUILayoutOption[] o){return default(Rect);} }
}
namespace UnityEditor {
  using UnityEngine;
  public class EditorWindow : ScriptableObjectStub { public static T GetWindow<T>(string t) where T: EditorWindow { return null; } public void Show(){} public void Repaint(){} }
  public class ScriptableObjectStub : UnityEngine.Object {}
  public class MenuItem : Attribute { public MenuItem(string s){} }
  public static class EditorPrefs { public static string GetString(string k,string d){return d;} public static void SetString(string k,string v){} }
  public static class SessionState { public static string GetString(string k,string d){return d;} public static void SetString(string k,string v){} }
  public static class EditorStyles { public static GUIStyle boldLabel, miniLabel; }
  public enum MessageType { None, Info }
  public static class EditorGUILayout {
    public static Vector2 BeginScrollView(Vector2 v){return v;} public static void EndScrollView(){}
    public static void LabelField(string a, GUIStyle s){} public static void LabelField(string a, string b){}
    public static string TextField(string l,string v){return v;} public static string PasswordField(string l,string v){return v;}
    public static void HelpBox(string m, MessageType t){} public static void Space(){}
    public static long LongField(string l,long v){return v;} public static int Popup(string l,int i,string[] o){return i;}
    public static void SelectableLabel(string s, params GUILayoutOption[] o){}
    public class HorizontalScope : IDisposable { public void Dispose(){} }
  }
  public static class EditorGUI { public class DisabledScope : IDisposable { public DisabledScope(bool b){} public void Dispose(){} } public static void DrawTextureTransparent(Rect r, Texture t, ScaleMode m){} }
  public static class EditorGUIUtility { public static float singleLineHeight; public static void PingObject(UnityEngine.Object o){} }
  public static class AssetDatabase { public static void ImportAsset(string p){} public static UnityEngine.Object LoadMainAssetAtPath(string p){return null;} }
}
namespace GLTFast {
  public class GltfImport : IDisposable { public Task<bool> LoadGltfBinary(byte[] bytes, Uri uri = null, object importSettings = null, CancellationToken cancellationToken = default(CancellationToken)){return null;} public Task<bool> InstantiateMainSceneAsync(UnityEngine.Transform parent, CancellationToken cancellationToken = default(CancellationToken)){return null;} public void Dispose(){} }
}
namespace UniVRM10 {
  public class Vrm10Instance : UnityEngine.MonoBehaviour {}
  public static class Vrm10 { public static Task<Vrm10Instance> LoadBytesAsync(byte[] bytes, bool canLoadVrm0X = true, int controlRigGenerationOption = 0, bool showMeshes = true, object awaitCaller = null, CancellationToken ct = default(CancellationToken)){return null;} }
}

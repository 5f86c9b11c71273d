// FACADE, NOT UNITY. UnityEngine.ImageConversionModule (the built-in package com.unity.modules.imageconversion),
// Unity 2021.3: UnityCsReference 2021.3.58f1 Modules/ImageConversion/ScriptBindings/ImageConversion.bindings.cs.
// The glue compile gets this DLL only when plugin_unity_bridge/package.json declares the module.
namespace UnityEngine
{
    // :15
    public static class ImageConversion
    {
        public static bool LoadImage(this Texture2D tex, byte[] data, bool markNonReadable) { return data != null && data.Length > 0; } // :56
        public static bool LoadImage(this Texture2D tex, byte[] data) { return LoadImage(tex, data, false); }                            // :57
    }
}

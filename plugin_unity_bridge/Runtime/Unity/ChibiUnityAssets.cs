using System;
using System.IO;
using UnityEngine;

namespace ChibiMeta.Bridge.Unity
{
    /// <summary>Unity-side helpers: where the cache lives, and PNG results as textures.</summary>
    public static class ChibiUnityAssets
    {
        /// <summary><c>Application.persistentDataPath/chibi_meta/assets</c>: the default <see cref="FileAssetCache"/> folder.</summary>
        public static string DefaultCacheDirectory
        {
            get { return Path.Combine(Application.persistentDataPath, "chibi_meta", "assets"); }
        }

        /// <summary>A <see cref="FileAssetCache"/> in <see cref="DefaultCacheDirectory"/>. Call on the main thread.</summary>
        public static FileAssetCache CreateDefaultCache()
        {
            return new FileAssetCache(DefaultCacheDirectory);
        }

        /// <summary>Decodes a PNG result (the face texture) into a new <see cref="Texture2D"/>. Main thread only.</summary>
        public static Texture2D LoadTexture(GenerateResult result)
        {
            if (result == null) throw new ArgumentNullException(nameof(result));
            if (result.MediaType != "image/png") throw new ArgumentException("not a PNG result: " + result.MediaType, nameof(result));
            var texture = new Texture2D(2, 2, TextureFormat.RGBA32, false) { name = "chibi-" + result.Seed };
            // ImageConversion: the built-in package com.unity.modules.imageconversion (a dependency of this package)
            if (!texture.LoadImage(result.Data))
            {
                ChibiAvatarInstantiator.DestroySafely(texture);
                throw new InvalidDataException("the PNG of '" + result.Id + "' does not decode");
            }
            texture.filterMode = FilterMode.Bilinear;
            return texture;
        }
    }
}

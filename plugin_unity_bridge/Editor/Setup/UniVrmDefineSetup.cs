using System;
using System.Collections.Generic;
using UnityEditor;
using UnityEditor.Build;
using UnityEditor.Compilation;
using UnityEngine;

namespace ChibiMeta.Bridge.Editor
{
    /// <summary>
    /// Sets the scripting define symbol <c>CHIBI_META_UNIVRM</c> when UniVRM was installed from its
    /// <c>.unitypackage</c> (into <c>Assets/</c>): the <c>versionDefines</c> of <c>ChibiMeta.Bridge.Unity</c>
    /// only see UniVRM installed as the package <c>com.vrmc.vrm</c>. Removes the symbol again when the
    /// <c>VRM10</c> assembly is gone. Its own assembly (no references), so it still compiles and runs
    /// when <c>ChibiMeta.Bridge.Unity</c> does not. Writes Player Settings of the active build target
    /// only when something changes (Unity then recompiles once).
    /// </summary>
    [InitializeOnLoad]
    static class UniVrmDefineSetup
    {
        internal const string Symbol = "CHIBI_META_UNIVRM";
        internal const string PackageFolder = "Packages/com.vrmc.vrm/";

        static UniVrmDefineSetup()
        {
            EditorApplication.delayCall += Apply;
        }

        static void Apply()
        {
            string asmdef = CompilationPipeline.GetAssemblyDefinitionFilePathFromAssemblyName("VRM10");
            BuildTargetGroup group = BuildPipeline.GetBuildTargetGroup(EditorUserBuildSettings.activeBuildTarget);
            NamedBuildTarget target = NamedBuildTarget.FromBuildTargetGroup(group);
            string current = PlayerSettings.GetScriptingDefineSymbols(target);
            string next = Decide(asmdef, current);
            if (next == current) return;
            PlayerSettings.SetScriptingDefineSymbols(target, next);
            Debug.Log("chibi_meta: " + (next.Contains(Symbol) ? "added" : "removed") + " the scripting define symbol " +
                      Symbol + " (" + target.TargetName + "): UniVRM's VRM10 assembly is " +
                      (asmdef == null ? "not in the project" : "at " + asmdef));
        }

        /// <summary>
        /// The define symbols (';'-separated, as Player Settings keep them) to use, given where the
        /// <c>VRM10</c> assembly definition is (null: nowhere) and the current symbols. Plain C#.
        /// </summary>
        internal static string Decide(string vrm10AsmdefPath, string symbols)
        {
            var list = new List<string>();
            foreach (string s in (symbols ?? "").Split(';'))
                if (s.Trim().Length > 0) list.Add(s.Trim());
            bool has = list.Contains(Symbol);
            bool asPackage = vrm10AsmdefPath != null &&
                             vrm10AsmdefPath.Replace('\\', '/').StartsWith(PackageFolder, StringComparison.Ordinal);
            bool want = vrm10AsmdefPath != null && !asPackage;
            if (vrm10AsmdefPath == null && has) list.Remove(Symbol); // the glue would not compile without UniVRM
            else if (want && !has) list.Add(Symbol);
            else return symbols ?? "";
            return string.Join(";", list.ToArray());
        }
    }
}

// Prints {"PATH": ["referenced assembly", ...], ...} for the DLLs listed (one path a line) in the file
// given as the only argument. Used by tests/test_unity_glue.py to see which optional packages the
// compiled glue really uses. Loaded from bytes: DLLs of the same name load side by side.
using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Text;

static class AssemblyRefs
{
    static int Main(string[] args)
    {
        var sb = new StringBuilder("{");
        bool first = true;
        foreach (string line in File.ReadAllLines(args[0]))
        {
            if (line.Trim().Length == 0) continue;
            var names = new List<string>();
            foreach (AssemblyName n in Assembly.Load(File.ReadAllBytes(line.Trim())).GetReferencedAssemblies())
                names.Add("\"" + n.Name + "\"");
            sb.Append(first ? "" : ", ").Append("\"" + line.Trim().Replace("\\", "\\\\") + "\": [" + string.Join(", ", names.ToArray()) + "]");
            first = false;
        }
        Console.WriteLine(sb.Append("}").ToString());
        return 0;
    }
}

// Run the Khronos glTF-Validator on every file named on the command line (or listed, one per
// line, in a file given as "@list.txt"); print one JSON line per file with its issue counts and the
// error/warning messages. Exit code 0 even when files have issues: the Python test judges.
import { readFileSync } from 'node:fs';
import validator from 'gltf-validator';

let files = process.argv.slice(2);
if (files.length === 1 && files[0].startsWith('@')) {
  files = readFileSync(files[0].slice(1), 'utf8').split('\n').filter((l) => l.trim());
}
for (const file of files) {
  const data = new Uint8Array(readFileSync(file));
  try {
    const report = await validator.validateBytes(data, { maxIssues: 100, format: 'glb' });
    const i = report.issues;
    const messages = i.messages.filter((m) => m.severity <= 1).map((m) => `${m.code}: ${m.message} @ ${m.pointer ?? ''}`);
    const infos = i.messages.filter((m) => m.severity >= 2).map((m) => m.code);
    console.log(JSON.stringify({ file, numErrors: i.numErrors, numWarnings: i.numWarnings, numInfos: i.numInfos, messages, infos }));
  } catch (e) {
    console.log(JSON.stringify({ file, numErrors: 1, numWarnings: 0, messages: [`validator failed: ${e}`] }));
  }
}

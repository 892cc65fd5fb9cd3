// @ts-check
/*
 * Last step of the client's build. The client's source imports the wire contract from
 * `@didcomm-mpr/protocol`, a workspace package that is not published; the build compiles that package into
 * dist/protocol, and this step points the client's emitted JavaScript and declarations at that copy, so the
 * packed tarball needs nothing from this repository.
 *
 * Why not `bundleDependencies`: npm packs a bundled dependency only from the package's own node_modules,
 * and in this workspace `@didcomm-mpr/protocol` is a link hoisted to the root's node_modules, so it would
 * silently be left out (the tarball would then ask the registry for a package that is not there).
 */
const fs = require('node:fs');
const path = require('node:path');

const PACKAGE = '@didcomm-mpr/protocol';
const DIST = path.resolve(__dirname, '..', 'dist');
const EMBEDDED = path.join(DIST, 'protocol');
// A quoted module specifier naming the package or one of its subpaths, in `require("…")`, `from '…'` and `import("…")`.
const SPECIFIER = /(["'])@didcomm-mpr\/protocol(\/[^"']*)?\1/g;

/** Every emitted .js and .d.ts file under `dir`, the embedded protocol excluded. */
function emittedFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return full === EMBEDDED ? [] : emittedFiles(full);
    return /\.(js|d\.ts)$/.test(entry.name) ? [full] : [];
  });
}

function fail(message) {
  console.error(`embed-protocol: ${message}`);
  process.exit(1);
}

for (const entry of ['index.js', 'index.d.ts']) {
  if (!fs.existsSync(path.join(EMBEDDED, entry)))
    fail(`${path.relative(process.cwd(), path.join(EMBEDDED, entry))} is missing: compile the protocol into dist/protocol first`);
}

let rewritten = 0;
for (const file of emittedFiles(DIST)) {
  const text = fs.readFileSync(file, 'utf8');
  // Relative to the file's own directory, so that Node and TypeScript (any moduleResolution) find the copy.
  let target = path.relative(path.dirname(file), path.join(EMBEDDED, 'index')).split(path.sep).join('/');
  if (!target.startsWith('.')) target = `./${target}`;
  const next = text.replace(SPECIFIER, (match, quote, subpath) => {
    // Only the package's index is compiled in; a deep import would point at a file the tarball lacks.
    if (subpath) fail(`${path.relative(DIST, file)} imports ${match}: import from '${PACKAGE}' itself`);
    return `${quote}${target}${quote}`;
  });
  if (next !== text) {
    fs.writeFileSync(file, next);
    rewritten += 1;
  }
}
if (rewritten === 0) fail(`no emitted file imports '${PACKAGE}': is this step still needed?`);
console.log(`embed-protocol: ${rewritten} files now import the protocol from dist/protocol`);

#!/usr/bin/env node
// Compiles src/ twice with the project's own TypeScript: an ESM build in
// dist/esm and a CommonJS build in dist/cjs, each marked with the module type
// Node should use for it, so that both `import` and `require` load 'beuss'.
//
// Both builds go to a fresh folder beside dist/ first (at the same depth, so
// source maps point at the same src/), then move into dist/ one file at a
// time with a rename: a test run or server already using dist/ never finds
// it missing or a file half written, and files of deleted sources go away.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist');
const tsc = require.resolve('typescript/bin/tsc');

/** Returns the paths of the files below dir, relative to it. */
function files(dir, rel = '') {
  if (!fs.existsSync(path.join(dir, rel))) return [];
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((d) => {
    const r = path.join(rel, d.name);
    return d.isDirectory() ? files(dir, r) : [r];
  });
}

/** Removes the empty folders below dir (not dir itself). */
function pruneEmpty(dir) {
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    const sub = path.join(dir, d.name);
    pruneEmpty(sub);
    if (fs.readdirSync(sub).length === 0) fs.rmdirSync(sub);
  }
}

const next = fs.mkdtempSync(path.join(root, '.dist-next-'));
try {
  for (const [project, type] of [['tsconfig.json', 'module'], ['tsconfig.cjs.json', 'commonjs']]) {
    const out = path.join(next, type === 'module' ? 'esm' : 'cjs');
    execFileSync(process.execPath, [tsc, '-p', project, '--outDir', out], { cwd: root, stdio: 'inherit' });
    fs.writeFileSync(path.join(out, 'package.json'), JSON.stringify({ type }) + '\n');
  }
  const built = files(next);
  for (const rel of built) {
    const to = path.join(dist, rel);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.renameSync(path.join(next, rel), to);
  }
  const keep = new Set(built);
  for (const rel of files(dist)) if (!keep.has(rel)) fs.rmSync(path.join(dist, rel), { force: true });
  pruneEmpty(dist);
} finally {
  fs.rmSync(next, { recursive: true, force: true });
}

#!/usr/bin/env node
// Compiles src/ twice with the project's own TypeScript: an ESM build in
// dist/esm and a CommonJS build in dist/cjs, each marked with the module type
// Node should use for it, so that both `import` and `require` load 'beuss'.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const tsc = require.resolve('typescript/bin/tsc');
fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
for (const [project, type] of [['tsconfig.json', 'module'], ['tsconfig.cjs.json', 'commonjs']]) {
  execFileSync(process.execPath, [tsc, '-p', project], { cwd: root, stdio: 'inherit' });
  const out = type === 'module' ? 'dist/esm' : 'dist/cjs';
  fs.writeFileSync(path.join(root, out, 'package.json'), JSON.stringify({ type }) + '\n');
}

#!/usr/bin/env node
// Stands in for node-gyp when scripts/prebuildify.js runs prebuildify:
// prebuildify calls `<this> rebuild --target=… --devdir=… --arch=… --release`
// in the target's staging folder and then takes build/Release/*.node from it.
// This runs `cmake-js rebuild` on the project root with its output in that
// folder, passing the toolchain options scripts/prebuildify.js chose (in
// BEUSS_PREBUILD_CMAKE_DEFS). A cross build without a toolchain file is
// refused: cmake-js would silently build for the host instead.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
if (args[0] !== 'rebuild') {
  console.error(`prebuildify-node-gyp: only 'rebuild' is supported, got: ${args.join(' ')}`);
  process.exit(2);
}
const opt = (name) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : undefined;
};
const platform = process.env.PREBUILD_PLATFORM || process.platform;
const arch = opt('arch') || process.env.PREBUILD_ARCH || process.arch;
const defs = JSON.parse(process.env.BEUSS_PREBUILD_CMAKE_DEFS || '[]');
const cross = platform !== process.platform || arch !== process.arch;
if (cross && !defs.some((d) => d.startsWith('CMAKE_TOOLCHAIN_FILE='))) {
  console.error(
    `prebuildify-node-gyp: refusing to build ${platform}-${arch} on ${process.platform}-${process.arch} ` +
      'without a CMake toolchain file: the result would be a host binary filed under the wrong target.',
  );
  process.exit(1);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [ROOT] });
const cmd = [
  cmakeJs,
  'rebuild',
  '--directory', ROOT,
  '--out', path.join(process.cwd(), 'build'),
  '--arch', arch,
  ...(args.includes('--debug') ? ['--debug'] : []),
  ...defs.map((d) => `--CD${d}`),
];
console.log(`prebuildify-node-gyp: cmake-js ${cmd.slice(1).join(' ')}`);
const r = spawnSync(process.execPath, cmd, { stdio: 'inherit', cwd: ROOT });
if (r.error) {
  console.error(`prebuildify-node-gyp: could not run cmake-js: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status === null ? 1 : r.status);

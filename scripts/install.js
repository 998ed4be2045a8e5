#!/usr/bin/env node
// The package's install script: use a prebuilt addon when one loads on this
// machine, otherwise compile it from source with cmake-js.
//
// node-gyp-build's own install step cannot be used: it always runs
// `node-gyp rebuild` in the end, which knows nothing of CMake.
//
//  - A prebuild (prebuilds/<platform>-<arch>/) or an earlier build (build/Release)
//    that loads: nothing to do.
//  - None, or npm_config_build_from_source set (`npm install --build-from-source`):
//    `cmake-js compile`, which needs cmake and a C11/C++17 compiler.
//  - No cmake or no compiler: a message naming the platform and what to
//    install, and a non-zero exit, rather than a half-installed package that
//    fails later at require time.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const TARGET = `${process.platform}-${process.arch}`;

/** Returns true when the npm config flag `name` is set and not 'false'. */
function npmFlag(name) {
  const v = process.env[`npm_config_${name}`];
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

/** Returns the path of the addon node-gyp-build loads, or throws why none loads. */
function loadAddon() {
  const load = require('node-gyp-build');
  const file = load.resolve(ROOT);
  require(file);
  return file;
}

/** Returns true when `cmd` is an executable found on PATH. */
function onPath(cmd) {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  const exts = process.platform === 'win32' ? (process.env.PATHEXT || '.EXE;.CMD;.BAT').split(';') : [''];
  for (const d of dirs) {
    for (const e of exts) {
      try {
        fs.accessSync(path.join(d, cmd + e), fs.constants.X_OK);
        return true;
      } catch {
        // not in this folder
      }
    }
  }
  return false;
}

/** Returns the tools a source build needs that this machine lacks (best effort off Windows). */
function missingTools() {
  const missing = [];
  const cmake = process.env.npm_config_cmake_path;
  if (!(cmake && fs.existsSync(cmake)) && !onPath('cmake')) missing.push('cmake (3.15 or newer)');
  if (process.platform !== 'win32') {
    // cmake-js itself insists on g++ or clang++.
    if (!onPath('g++') && !onPath('clang++')) missing.push('a C++17 compiler (g++ or clang++)');
    if (!onPath('cc') && !onPath('gcc') && !onPath('clang')) missing.push('a C11 compiler (cc, gcc or clang)');
    if (!onPath('make') && !onPath('ninja')) missing.push('make or ninja');
  }
  return missing;
}

/** Returns the advice on what to install to build from source on this platform. */
function installAdvice() {
  switch (process.platform) {
    case 'linux':
      return 'Debian/Ubuntu: sudo apt-get install cmake g++ make; Fedora: sudo dnf install cmake gcc-c++ make; Alpine: apk add cmake g++ make';
    case 'darwin':
      return 'xcode-select --install (compilers and make), then brew install cmake';
    case 'win32':
      return 'Visual Studio 2019 or newer (or its Build Tools) with the "Desktop development with C++" workload, which includes CMake';
    default:
      return 'cmake and a C11/C++17 compiler from your system\'s packages';
  }
}

function fail(lines) {
  console.error(['', ...lines.map((l) => `beuss: ${l}`), ''].join('\n'));
  process.exit(1);
}

function main() {
  const fromSource = npmFlag('build_from_source');
  let loadError;
  if (!fromSource) {
    try {
      const file = loadAddon();
      console.log(`beuss: using the native addon ${path.relative(ROOT, file)}`);
      return;
    } catch (e) {
      loadError = e;
    }
  }

  const why = fromSource
    ? 'building from source as requested (npm_config_build_from_source)'
    : `no usable prebuilt addon for ${TARGET} (Node ${process.versions.node}): ${String(loadError && loadError.message).split('\n')[0]}`;
  const missing = missingTools();
  if (missing.length) {
    fail([
      `${why}.`,
      `Compiling it from source needs tools this machine lacks: ${missing.join(', ')}.`,
      `Install them (${installAdvice()}), then run: npm rebuild beuss`,
      `Prebuilt addons ship for: linux-x64, linux-arm64, win32-x64, darwin-x64, darwin-arm64.`,
    ]);
  }

  console.log(`beuss: ${why}; compiling with cmake-js`);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [ROOT] });
  const env = { ...process.env };
  // A small C library: two jobs are plenty and keep shared machines usable.
  if (!env.CMAKE_BUILD_PARALLEL_LEVEL) env.CMAKE_BUILD_PARALLEL_LEVEL = '2';
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--directory', ROOT], { cwd: ROOT, stdio: 'inherit', env });
  if (r.error || r.status !== 0) {
    fail([
      `compiling the native addon for ${TARGET} failed (${r.error ? r.error.message : `cmake-js exit ${r.status}`}).`,
      `Check the compiler output above; needed: cmake 3.15+ and a C11/C++17 compiler (${installAdvice()}).`,
    ]);
  }
  try {
    const file = loadAddon();
    console.log(`beuss: built ${path.relative(ROOT, file)}`);
  } catch (e) {
    fail([`the addon was compiled but does not load: ${e.message}`]);
  }
}

main();

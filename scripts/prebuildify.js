#!/usr/bin/env node
// Builds the Node-API addon as prebuilt binaries with prebuildify, one target
// at a time, and checks that every output really is a binary for that target.
//
//   node scripts/prebuildify.js                  the host target -> prebuilds/<platform>-<arch>/
//   node scripts/prebuildify.js linux-arm64      cross build (x86-64 Linux host, aarch64 gcc)
//   node scripts/prebuildify.js win32-x64        on Linux: mingw-w64 smoke build, written to
//                                                build-cross/mingw-smoke/prebuilds/ (never shipped)
//   node scripts/prebuildify.js --check [targets...]
//                                                checks that prebuilds/ holds each target
//                                                (default: all of TARGETS) with the right format
//
// prebuildify only knows node-gyp, so it is pointed (--node-gyp) at
// scripts/prebuildify-node-gyp.js, which runs `cmake-js rebuild` instead. Each
// target builds in its own folder under build-cross/, so a prebuild never
// touches the developer's build/ (which `npm test` uses) and cross builds never
// share a CMake cache.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
/** The file name prebuildify gives a Node-API prebuild of this package. */
const PREBUILD_FILE = `${PKG.name}.node`;
/** Every target the release ships (built natively by the CI matrix). */
const TARGETS = ['linux-x64', 'linux-arm64', 'win32-x64', 'darwin-x64', 'darwin-arm64'];
const HOST = `${process.platform}-${process.arch}`;

/** Returns what `file` must print for a binary of each target. */
const FILE_PATTERNS = {
  'linux-x64': /ELF 64-bit LSB shared object, x86-64/,
  'linux-arm64': /ELF 64-bit LSB shared object, ARM aarch64/,
  'win32-x64': /^(?=.*PE32\+)(?=.*\(DLL\))(?=.*x86-64)/,
  'win32-arm64': /^(?=.*PE32\+)(?=.*\(DLL\))(?=.*Aarch64)/i,
  'darwin-x64': /Mach-O 64-bit .*x86_64/,
  'darwin-arm64': /Mach-O 64-bit .*arm64/,
};

/**
 * Returns how to build `target` on this host: the cmake-js -D options, the
 * strip program, where the prebuilds/ folder goes and whether it is a smoke
 * build; throws an Error saying why when this host cannot build it.
 */
function buildPlan(target) {
  const [platform, arch] = target.split('-');
  if (!platform || !arch) throw new Error(`bad target '${target}': expected <platform>-<arch>, e.g. linux-arm64`);
  const toolchain = (name) => path.join(ROOT, 'cmake', name);
  if (target === HOST) {
    return { platform, arch, cmakeDefs: [], strip: 'strip', out: ROOT, smoke: false, tools: [] };
  }
  if (HOST === 'linux-x64' && target === 'linux-arm64') {
    return {
      platform,
      arch,
      cmakeDefs: [`CMAKE_TOOLCHAIN_FILE=${toolchain('aarch64-linux-gnu.cmake')}`],
      strip: 'aarch64-linux-gnu-strip',
      out: ROOT,
      smoke: false,
      tools: ['aarch64-linux-gnu-gcc', 'aarch64-linux-gnu-g++', 'aarch64-linux-gnu-strip'],
      packages: 'gcc-aarch64-linux-gnu g++-aarch64-linux-gnu',
    };
  }
  if (process.platform === 'linux' && target === 'win32-x64') {
    const def = require.resolve('node-api-headers/def/node_api.def', { paths: [ROOT] });
    return {
      platform,
      arch,
      cmakeDefs: [
        `CMAKE_TOOLCHAIN_FILE=${toolchain('x86_64-w64-mingw32.cmake')}`,
        `CMAKE_PROJECT_beuss_INCLUDE=${toolchain('node-api-mingw.cmake')}`,
        `BEUSS_NODE_API_DEF=${def}`,
      ],
      strip: 'x86_64-w64-mingw32-strip',
      // Not prebuilds/: the Windows binary that ships is the MSVC one from CI.
      out: path.join(ROOT, 'build-cross', 'mingw-smoke'),
      smoke: true,
      tools: ['x86_64-w64-mingw32-gcc-posix', 'x86_64-w64-mingw32-g++-posix', 'x86_64-w64-mingw32-dlltool',
        'x86_64-w64-mingw32-strip'],
      packages: 'gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64',
    };
  }
  throw new Error(
    `cannot build ${target} on ${HOST}: no cross toolchain for it here. ` +
      `Build it natively on a ${target} machine (the GitHub Actions matrix in .github/workflows/prebuilds.yml does).`,
  );
}

/** Returns true when `cmd` is an executable found on PATH. */
function onPath(cmd) {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  const exts = process.platform === 'win32' ? (process.env.PATHEXT || '.EXE;.CMD;.BAT').split(';') : [''];
  return dirs.some((d) => exts.some((e) => {
    try {
      fs.accessSync(path.join(d, cmd + e), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }));
}

/**
 * Returns a description of the binary format read from the file's own header
 * ({format, machine, shared}), independent of `file`, so that a target can be
 * checked on hosts without `file` (Windows runners).
 */
function readHeader(file) {
  const b = fs.readFileSync(file);
  if (b.length >= 20 && b.readUInt32BE(0) === 0x7f454c46) {
    const machines = { 0x3e: 'x64', 0xb7: 'arm64', 0x03: 'ia32', 0x28: 'arm' };
    const is64 = b[4] === 2;
    const le = b[5] === 1;
    const type = le ? b.readUInt16LE(16) : b.readUInt16BE(16);
    const machine = le ? b.readUInt16LE(18) : b.readUInt16BE(18);
    return { format: 'elf', bits: is64 ? 64 : 32, machine: machines[machine] || `0x${machine.toString(16)}`, shared: type === 3 };
  }
  if (b.length >= 64 && b.toString('latin1', 0, 2) === 'MZ') {
    const pe = b.readUInt32LE(0x3c);
    if (b.length >= pe + 24 && b.readUInt32BE(pe) === 0x50450000) {
      const machines = { 0x8664: 'x64', 0xaa64: 'arm64', 0x14c: 'ia32' };
      const machine = b.readUInt16LE(pe + 4);
      const characteristics = b.readUInt16LE(pe + 22);
      return { format: 'pe', bits: machine === 0x14c ? 32 : 64, machine: machines[machine] || `0x${machine.toString(16)}`, shared: (characteristics & 0x2000) !== 0 };
    }
  }
  if (b.length >= 16 && b.readUInt32LE(0) === 0xfeedfacf) {
    const machines = { 0x01000007: 'x64', 0x0100000c: 'arm64' };
    const cpu = b.readUInt32LE(4);
    const type = b.readUInt32LE(12);
    // MH_DYLIB (6) from a CMake SHARED library, MH_BUNDLE (8) from a MODULE one.
    return { format: 'macho', bits: 64, machine: machines[cpu] || `0x${cpu.toString(16)}`, shared: type === 6 || type === 8 };
  }
  return { format: 'unknown', bits: 0, machine: 'unknown', shared: false };
}

/**
 * Checks that `file` is a shared library for `target`, by its header and, where
 * the `file` program exists, by what it prints. Returns the `file` output (or a
 * note that `file` is missing); throws an Error describing any mismatch.
 */
function checkBinary(file, target) {
  const [platform, arch] = target.split('-');
  const want = { linux: 'elf', win32: 'pe', darwin: 'macho' }[platform];
  const h = readHeader(file);
  if (h.format !== want || h.machine !== arch || h.bits !== 64 || !h.shared) {
    throw new Error(`${file} is not a ${target} shared library: header says ${JSON.stringify(h)}`);
  }
  const pattern = FILE_PATTERNS[target];
  if (!onPath('file')) {
    if (process.platform === 'linux' || process.platform === 'darwin') {
      throw new Error("the 'file' program is missing (Debian: apt-get install file); it is needed to check prebuilds");
    }
    return `(no 'file' program on ${HOST}; header check passed: ${JSON.stringify(h)})`;
  }
  const r = spawnSync('file', ['-b', file], { encoding: 'utf8' });
  const out = (r.stdout || '').trim();
  if (r.status !== 0 || !pattern || !pattern.test(out)) {
    throw new Error(`${file}: 'file' says "${out}", which does not match ${pattern} for ${target}`);
  }
  return out;
}

/**
 * Returns the newest GLIBC_x.y symbol version a Linux binary needs (the oldest
 * glibc it can load on), or '' when readelf is missing or the file needs none.
 */
function glibcFloor(file) {
  if (!onPath('readelf')) return '';
  const r = spawnSync('readelf', ['--dyn-syms', '-W', file], { encoding: 'utf8' });
  const versions = [...new Set((r.stdout || '').match(/GLIBC_[0-9][0-9.]*/g) || [])];
  const key = (v) => v.slice(6).split('.').map(Number);
  versions.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0);
    return 0;
  });
  return versions.pop() || '';
}

/** Returns the path of the prebuild of `target` under `out`. */
function prebuildPath(out, target) {
  return path.join(out, 'prebuilds', target, PREBUILD_FILE);
}

/** Builds one target with prebuildify; resolves with the checked output path. */
function build(target) {
  const plan = buildPlan(target);
  const missing = plan.tools.filter((t) => !onPath(t));
  if (missing.length) {
    throw new Error(`cannot build ${target}: missing ${missing.join(', ')} (Debian: apt-get install ${plan.packages})`);
  }
  const stage = path.join(ROOT, 'build-cross', target);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  const dest = prebuildPath(plan.out, target);
  fs.rmSync(dest, { force: true });

  const shim = path.join(__dirname, 'prebuildify-node-gyp.js');
  // prebuildify runs the node-gyp command through a shell on Windows only.
  const nodeGyp = process.platform === 'win32' ? `"${process.execPath}" "${shim}"` : shim;
  process.env.BEUSS_PREBUILD_CMAKE_DEFS = JSON.stringify(plan.cmakeDefs);
  console.log(`prebuildify: ${target} on ${HOST}${plan.smoke ? ' (smoke build, not shipped)' : ''} in ${path.relative(ROOT, stage)}`);
  return new Promise((resolve, reject) => {
    require('prebuildify')(
      {
        cwd: stage,
        out: plan.out,
        name: PKG.name,
        napi: true,
        strip: true,
        stripBin: plan.strip,
        nodeGyp,
        platform: plan.platform,
        arch: plan.arch,
        targets: [],
      },
      (err) => {
        if (err) return reject(new Error(`prebuildify failed for ${target}: ${err.message}`));
        if (!fs.existsSync(dest)) return reject(new Error(`prebuildify finished but ${dest} is missing`));
        try {
          const desc = checkBinary(dest, target);
          console.log(`prebuildify: ${path.relative(ROOT, dest)}: ${desc}`);
          const floor = plan.platform === 'linux' ? glibcFloor(dest) : '';
          if (floor) console.log(`prebuildify: ${path.relative(ROOT, dest)} needs glibc >= ${floor.slice(6)} (newest symbol version it uses)`);
          resolve(dest);
        } catch (e) {
          fs.rmSync(dest, { force: true });
          reject(e);
        }
      },
    );
  });
}

/** Checks prebuilds/ for each target; returns the list of problems found. */
function check(targets) {
  const problems = [];
  for (const target of targets) {
    const file = prebuildPath(ROOT, target);
    if (!fs.existsSync(file)) {
      problems.push(`missing: ${path.relative(ROOT, file)}`);
      continue;
    }
    try {
      console.log(`${path.relative(ROOT, file)}: ${checkBinary(file, target)}`);
    } catch (e) {
      problems.push(e.message);
    }
  }
  const extra = fs.existsSync(path.join(ROOT, 'prebuilds'))
    ? fs.readdirSync(path.join(ROOT, 'prebuilds'), { withFileTypes: true })
      .filter((d) => d.isDirectory() && !targets.includes(d.name)).map((d) => d.name)
    : [];
  if (extra.length) console.log(`note: prebuilds/ also holds ${extra.join(', ')}`);
  return problems;
}

async function main(argv) {
  if (argv[0] === '--check') {
    const targets = argv.length > 1 ? argv.slice(1) : TARGETS;
    const problems = check(targets);
    if (problems.length) {
      console.error(`prebuilds check failed:\n  ${problems.join('\n  ')}`);
      process.exit(1);
    }
    console.log(`prebuilds check: all ${targets.length} present and well-formed`);
    return;
  }
  if (argv.some((a) => a.startsWith('-'))) {
    console.error('usage: node scripts/prebuildify.js [target...] | --check [target...]');
    process.exit(2);
  }
  const targets = argv.length ? argv : [HOST];
  for (const target of targets) await build(target);
}

module.exports = { ROOT, HOST, TARGETS, PREBUILD_FILE, buildPlan, checkBinary, readHeader, prebuildPath, onPath };

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(`prebuildify: ${e.message}`);
    process.exit(1);
  });
}

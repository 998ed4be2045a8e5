#!/usr/bin/env node
// beuss benchmark: `npm run bench [-- options]`.
//
// Starts its own beuss-server (and the peers that are installed: redis-server,
// nats-server, beanstalkd) on free loopback ports, drives every scenario with
// the C load generator (bench/loadgen.c; a JavaScript generator would measure
// itself), verifies every reply, and prints Markdown tables with the median,
// min and max of several runs, the CPU of server and generator, each beuss
// figure's ratio to each peer, and whether its target is met.
//
// Options:
//   --quick            a smaller run (under a minute)
//   --json <file>      also write the results as JSON
//   --vs <list>        peers to run side by side (default: all installed of
//                      redis,nats,beanstalkd; "none" for beuss alone)
//   --runs <n>         runs per figure (default 5, quick 3)
//   --only <list>      scenarios to run (produce,e2e,e2e4,fanout,rtt,rate,large,memory,cli)
//   --chart <file>     SVG chart path (default docs/bench.svg; "none" to skip)
'use strict';

const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const BUILD = path.join(ROOT, 'build-bench');
const SERVER_BIN = path.join(ROOT, 'bin', 'beuss-server.js');
const CLI_BIN = path.join(ROOT, 'bin', 'beuss.js');

// ---- options ---------------------------------------------------------------

/** Returns the parsed command line, or exits with a usage message. */
function parseOptions(argv) {
  const o = { quick: false, json: null, vs: null, runs: null, only: null, chart: path.join(ROOT, 'docs', 'bench.svg') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--markdown') { /* the default output is Markdown */ }
    else if (a === '--json') o.json = val();
    else if (a === '--vs') o.vs = val();
    else if (a === '--runs') o.runs = Number(val());
    else if (a === '--only') o.only = val().split(',');
    else if (a === '--chart') o.chart = val();
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown option '${a}'`);
  }
  if (o.runs !== null && !(Number.isInteger(o.runs) && o.runs >= 1 && o.runs <= 50)) usage('--runs must be 1 to 50');
  return o;
}

function usage(msg) {
  if (msg) process.stderr.write(`bench: ${msg}\n`);
  process.stderr.write(
    'usage: npm run bench -- [--quick] [--json FILE] [--vs redis,nats,beanstalkd|none] [--runs N]\n' +
      '                        [--only produce,e2e,e2e4,fanout,rtt,rate,large,memory,cli] [--chart FILE|none]\n',
  );
  process.exit(msg ? 2 : 0);
}

const opt = parseOptions(process.argv.slice(2));
const Q = opt.quick;
const CFG = {
  runs: opt.runs ?? (Q ? 3 : 5),
  runsSlow: opt.runs ?? (Q ? 1 : 3), // latency, 4x4, large: longer per run
  nWarmUp: Q ? 50_000 : 200_000,
  windows: [256, 1024, 4096],
  n: Q ? 100_000 : 1_000_000, // small-message runs
  nBeanstalk: Q ? 5_000 : 50_000, // beanstalkd is ~20x slower: keep its runs short
  size: 64,
  nRtt: Q ? 2_000 : 10_000,
  rate: 50_000,
  rateSecs: Q ? 0.5 : 2,
  largeSize: 1024 * 1024,
  nLarge: Q ? 32 : 256,
  largeWindow: 8,
  nMemory: Q ? 100_000 : 1_000_000,
  memorySize: 100,
  cliRuns: Q ? 10 : 20,
};

const tty = process.stderr.isTTY;
/** Shows progress on stderr when it is a terminal. */
function progress(msg) {
  if (tty) process.stderr.write(`\r\x1b[K${msg}`);
}
function note(msg) {
  if (tty) process.stderr.write('\r\x1b[K');
  process.stderr.write(`bench: ${msg}\n`);
}

// ---- building the generator --------------------------------------------------

/** Returns the folder holding beuss-loadgen and beuss-nullserver, building them when missing or stale. */
function buildTools() {
  const mtime = (f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : -1);
  const cmakeTime = mtime(path.join(__dirname, 'CMakeLists.txt'));
  const fresh = (dir, tool) => mtime(path.join(dir, `beuss-${tool}`)) >= Math.max(cmakeTime, mtime(path.join(__dirname, `${tool}.c`)));
  for (const dir of [path.join(BUILD, 'bench'), path.join(BUILD, 'standalone', 'bench')]) {
    if (fresh(dir, 'loadgen') && fresh(dir, 'nullserver')) return dir;
  }
  note('building the load generator (cmake -DBEUSS_BENCH=ON into build-bench/)');
  const run = (args) => spawnSync('cmake', args, { cwd: ROOT, encoding: 'utf8' });
  const targets = ['--target', 'beuss-loadgen', 'beuss-nullserver', '-j', '2'];
  let r = run(['-S', ROOT, '-B', BUILD, '-DBEUSS_BENCH=ON', '-DCMAKE_BUILD_TYPE=Release']);
  if (r.status === 0) r = run(['--build', BUILD, ...targets]);
  if (r.status === 0) return path.join(BUILD, 'bench');
  // The project's configure step covers the whole tree; if another part does
  // not configure right now, the generator alone still builds.
  note(`the project's cmake step failed; building bench/ on its own\n${(r.stderr || '').trim().slice(-600)}`);
  const sb = path.join(BUILD, 'standalone');
  r = run(['-S', __dirname, '-B', sb, '-DCMAKE_BUILD_TYPE=Release']);
  if (r.status === 0) r = run(['--build', sb, ...targets]);
  if (r.status !== 0) {
    process.stderr.write(r.stdout + r.stderr);
    throw new Error('could not build the load generator (needs cmake and a C compiler)');
  }
  return path.join(sb, 'bench');
}

// ---- servers -----------------------------------------------------------------

/** Returns a free TCP port on 127.0.0.1 (the OS picks it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const children = new Set();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'beuss-bench-'));
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

/**
 * Returns a started server process: cmd/args are spawned with output to a log
 * file (a pipe could fill while the bench waits on the generator), and it is
 * ready once `ready()` resolves true (polled up to 15 s).
 */
async function startProcess(name, cmd, args, ready, env) {
  const log = path.join(tmp, `${name}-${Date.now()}.log`);
  const fd = fs.openSync(log, 'w');
  const proc = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  fs.closeSync(fd);
  children.add(proc);
  const readLog = () => fs.readFileSync(log, 'utf8');
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error(`${name} exited (${proc.exitCode}) before it was ready:\n${readLog()}`);
    const r = await ready(readLog());
    if (r) return { name, proc, pid: proc.pid, log: readLog, port: r.port ?? r };
    await sleep(50);
  }
  proc.kill('SIGKILL');
  throw new Error(`${name} did not start in 15 s:\n${readLog()}`);
}

async function stopProcess(s) {
  if (!s || s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  const done = new Promise((r) => s.proc.once('exit', r));
  s.proc.kill('SIGTERM');
  const t = setTimeout(() => s.proc.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(t);
  children.delete(s.proc);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves true once something accepts TCP connections on 127.0.0.1:port. */
function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function listeningLine(text) {
  const m = /listening on \S*?:(\d+)/.exec(text);
  return m ? { port: Number(m[1]) } : null;
}

const PEERS = {
  redis: { bin: 'redis-server', proto: 'redis', pkg: 'redis-server' },
  nats: { bin: 'nats-server', proto: 'nats', pkg: 'nats-server' },
  beanstalkd: { bin: 'beanstalkd', proto: 'beanstalk', pkg: 'beanstalkd' },
};

/** Returns the absolute path of an executable on PATH (or /usr/sbin), or null. */
function which(bin) {
  const dirs = (process.env.PATH || '').split(':').concat(['/usr/sbin', '/usr/local/sbin', '/sbin']);
  for (const d of dirs) {
    const p = path.join(d, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** Returns a started server of kind ('beuss', 'null', 'redis', 'nats', 'beanstalkd'). */
async function startServer(kind, extra = {}) {
  if (kind === 'beuss') {
    const args = [SERVER_BIN, '--host', '127.0.0.1', '--port', '0'];
    if (extra.maxMessageSize) args.push('--max-message-size', String(extra.maxMessageSize));
    if (extra.maxQueuedBytes !== undefined) args.push('--max-queued-bytes', String(extra.maxQueuedBytes));
    return startProcess('beuss', process.execPath, args, listeningLine);
  }
  if (kind === 'null') {
    return startProcess('null', path.join(TOOLS, 'beuss-nullserver'), ['--port', '0', '--size', String(CFG.size)], listeningLine);
  }
  const port = await freePort();
  const bin = which(PEERS[kind].bin);
  const up = async () => ((await canConnect(port)) ? port : null);
  if (kind === 'redis') {
    return startProcess('redis', bin, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], up);
  }
  if (kind === 'nats') {
    // 1 MiB payloads need a larger max_payload than the default 1 MB.
    const conf = path.join(tmp, 'nats.conf');
    fs.writeFileSync(conf, 'max_payload: 4194304\n');
    return startProcess('nats', bin, ['-a', '127.0.0.1', '-p', String(port), '-c', conf], up);
  }
  if (kind === 'beanstalkd') {
    return startProcess('beanstalkd', bin, ['-l', '127.0.0.1', '-p', String(port), '-z', String(2 * CFG.largeSize)], up);
  }
  throw new Error(`unknown server ${kind}`);
}

/** Returns the resident set size of pid in bytes (VmRSS). */
function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/**
 * Returns pid's resident memory in bytes by kind of mapping, from
 * /proc/<pid>/smaps: the C heap, other anonymous memory (V8's heap, the
 * malloc arenas of helper threads, stacks), the executable's own code and
 * read-only data, and everything else (shared libraries, the addon).
 */
function residentByKind(pid) {
  const out = { heap: 0, anon: 0, exeText: 0, exeData: 0, other: 0 };
  let exe = '';
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
  let kind = 'other';
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const [, perms, name] = m;
      if (name === '[heap]') kind = 'heap';
      else if (name === '' || name.startsWith('[anon')) kind = 'anon';
      else if (name === exe) kind = perms.includes('x') ? 'exeText' : 'exeData';
      else kind = 'other';
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r) out[kind] += Number(r[1]) * 1024;
  }
  return out;
}

/**
 * Resolves with how much of the node executable's code a bare node process
 * pages in when V8 optimizes one small function, in bytes (residentByKind
 * of the child before and after): the one-time cost of the optimizing
 * compiler that any Node.js process pays on its first hot function,
 * whatever that function does. NaN if it cannot be measured.
 */
async function jitPageIn() {
  // The child says "ready" once started, runs its hot loop when told, and
  // says "done" once V8 has had time to optimize it.
  const script = `
    process.stdout.write('ready\\n');
    process.stdin.once('data', () => {
      function sum(a) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]; return s; }
      const a = new Uint8Array(100); let x = 0;
      for (let i = 0; i < 200000; i++) x += sum(a);
      setTimeout(() => process.stdout.write('done ' + (x > 0) + '\\n'), 300);
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'ignore'] });
  let out = '';
  let wake = () => {};
  child.stdout.on('data', (d) => {
    out += d;
    wake();
  });
  child.on('exit', () => wake());
  /** Resolves with whether the child wrote `word` (false once it exited or after 30 s). */
  const said = (word) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 30_000);
      wake = () => {
        if (!out.includes(word) && child.exitCode === null && child.signalCode === null) return;
        clearTimeout(timer);
        resolve(out.includes(word));
      };
      wake();
    });
  try {
    if (!(await said('ready'))) return NaN;
    const before = residentByKind(child.pid);
    child.stdin.write('go\n');
    if (!(await said('done')) || !before) return NaN;
    const after = residentByKind(child.pid);
    return after ? after.exeText - before.exeText : NaN;
  } finally {
    child.kill();
  }
}

/** Sends raw bytes to 127.0.0.1:port and resolves with the reply text once `done(text)` is true (5 s max). */
function ask(port, bytes, done) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`no complete reply to ${JSON.stringify(bytes.slice(0, 40))}: ${JSON.stringify(text)}`));
    }, 5000);
    s.on('data', (d) => {
      text += d.toString('latin1');
      if (done(text)) {
        clearTimeout(t);
        s.destroy();
        resolve(text);
      }
    });
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.write(bytes);
  });
}

/** Returns the number of messages ready in queue q of a server, asked in its own protocol. */
async function queueLength(kind, port, q) {
  if (kind === 'beuss') {
    const r = await ask(port, `LEN ${q}\r\n`, (t) => t.includes('\n'));
    const m = /^OK (\d+)/.exec(r);
    if (!m) throw new Error(`LEN answered ${r.trim()}`);
    return Number(m[1]);
  }
  if (kind === 'redis') {
    const r = await ask(port, `LLEN ${q}\r\n`, (t) => t.includes('\n'));
    return Number(/^:(\d+)/.exec(r)[1]);
  }
  if (kind === 'beanstalkd') {
    const r = await ask(port, `stats-tube ${q}\r\n`, (t) => /current-jobs-ready: \d+\n/.test(t) || /NOT_FOUND/.test(t));
    const m = /current-jobs-ready: (\d+)/.exec(r);
    return m ? Number(m[1]) : 0;
  }
  throw new Error(`no queue length for ${kind}`);
}

// ---- running the generator -----------------------------------------------------

let TOOLS;
let qseq = 0;
/** Returns a queue name never used before in this run. */
function freshQueue(tag) {
  return `bench.${tag}.${++qseq}`;
}

const PROTO = { beuss: 'beuss', null: 'beuss', redis: 'redis', nats: 'nats', beanstalkd: 'beanstalk' };

/** Returns the generator's JSON result for one run against server s (ok: false with an error on failure). */
function loadgen(s, args, timeoutSecs = 60, quietTimeout = false) {
  const full = ['--proto', PROTO[s.kind], '--port', String(s.port), '--server-pid', String(s.pid), '--timeout', String(timeoutSecs), ...args.map(String)];
  const r = spawnSync(path.join(TOOLS, 'beuss-loadgen'), full, { encoding: 'utf8', timeout: (timeoutSecs + 30) * 1000, maxBuffer: 1 << 20 });
  const line = (r.stdout || '').trim().split('\n').pop();
  try {
    const j = JSON.parse(line);
    if (!j.ok && !(quietTimeout && /^timed out/.test(j.error || ''))) note(`${s.kind} ${args.join(' ')}: ${j.error}`);
    return j;
  } catch {
    const error = `generator failed (${r.status ?? r.signal}): ${(r.stderr || '').trim()}`;
    note(`${s.kind} ${args.join(' ')}: ${error}`);
    return { ok: false, error };
  }
}

// ---- statistics and formatting ---------------------------------------------------

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Returns a summary of several runs of one figure: value picks the number from a run. */
function summarize(runs, value) {
  const good = runs.filter((r) => r.ok);
  const vals = good.map(value).filter((v) => typeof v === "number" && !Number.isNaN(v));
  if (!vals.length) return { median: NaN, min: NaN, max: NaN, runs: runs.length, failed: runs.length - good.length, errors: runs.filter((r) => !r.ok).map((r) => r.error), all: runs };
  const med = median(vals);
  // the run closest to the median gives the CPU figures
  const rep = good.reduce((b, r) => (Math.abs(value(r) - med) < Math.abs(value(b) - med) ? r : b), good[0]);
  return {
    median: med,
    min: Math.min(...vals),
    max: Math.max(...vals),
    runs: runs.length,
    failed: runs.length - good.length,
    errors: runs.filter((r) => !r.ok).map((r) => r.error),
    srvCpu: rep.srv_cpu >= 0 ? rep.srv_cpu / rep.secs : NaN,
    genCpu: rep.gen_cpu / rep.secs,
    p50: median(good.map((r) => r.p50_us).filter(Number.isFinite)),
    p99: median(good.map((r) => r.p99_us).filter(Number.isFinite)),
    all: runs, // every run's generator output, for --json
  };
}

const fmtRate = (v) => (Number.isFinite(v) ? (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M/s` : `${(v / 1e3).toFixed(1)} k/s`) : '—');
const fmtUs = (v) => (v === Infinity ? '∞' : Number.isFinite(v) ? (v >= 10000 ? `${(v / 1000).toFixed(1)} ms` : `${v.toFixed(0)} µs`) : '—');
const fmtMiB = (v) => (Number.isFinite(v) ? `${v.toFixed(0)} MiB/s` : '—');
const fmtPct = (v) => (Number.isFinite(v) ? `${(v * 100).toFixed(0)}%` : '—');
const fmtN = (n) => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n));
const fmtRatio = (v) => (v === Infinity ? '∞' : Number.isFinite(v) ? `${v.toFixed(2)}×` : '—');

// ---- scenarios -----------------------------------------------------------------

const report = { meta: {}, scenarios: [] };
const targets = [];

/** Adds a table: rows of { server, cells... }; cols is [[header, key], ...]. */
function addTable(id, title, note_, cols, rows) {
  report.scenarios.push({ id, title, note: note_, cols, rows });
}

function mark(ok) {
  return ok === null ? '' : ok ? 'met' : '**MISSED**';
}

/** Returns beuss's ratio to each peer for one figure, and fills the row's vs columns. */
function ratios(row, beussVal, peerVals, higherIsBetter = true) {
  for (const [peer, v] of Object.entries(peerVals)) {
    const r = higherIsBetter ? beussVal / v : v / beussVal;
    row[`vs_${peer}`] = fmtRatio(r);
    row[`vsval_${peer}`] = r;
  }
}

const ORDER = ['null', 'beuss', 'redis', 'nats', 'beanstalkd'];
function rotate(list, r) {
  const k = r % list.length;
  return list.slice(k).concat(list.slice(0, k));
}

/** Runs produce then consume (GET, and for beuss ON push) at each window. */
async function scenarioProduceConsume(servers) {
  const kinds = ORDER.filter((k) => servers[k] && k !== 'nats');
  const res = {}; // kind -> window -> {produce:[], get:[], push:[]}
  for (const k of kinds) {
    res[k] = {};
    for (const w of CFG.windows) res[k][w] = { produce: [], get: [], push: [], ack: [] };
  }
  let step = 0;
  const total = CFG.runs * CFG.windows.length * kinds.length;
  const pushAll = [];
  for (let r = 0; r < CFG.runs; r++) {
    for (const w of CFG.windows) {
      // the order of servers rotates between runs so drift hits all alike
      for (const k of rotate(kinds, r)) {
        progress(`[produce/consume ${++step}/${total}] ${k} window ${w} run ${r + 1}`);
        const s = servers[k];
        const n = k === 'beanstalkd' ? CFG.nBeanstalk : CFG.n;
        const base = ['--n', n, '--size', CFG.size, '--window', w];
        const q = freshQueue('pc');
        res[k][w].produce.push(loadgen(s, ['--mode', 'produce', '--queue', q, ...base]));
        res[k][w].get.push(loadgen(s, ['--mode', 'consume', '--consume', 'get', '--queue', q, ...base]));
        if (k === 'beuss') {
          const q2 = freshQueue('pc');
          res[k][w].produce.push(loadgen(s, ['--mode', 'produce', '--queue', q2, ...base]));
          res[k][w].push.push(loadgen(s, ['--mode', 'consume', '--consume', 'push', '--queue', q2, ...base]));
          // at-least-once: every push leased (ON ... LEASE) and acknowledged (ACK <id>)
          const q4 = freshQueue('pc');
          res[k][w].produce.push(loadgen(s, ['--mode', 'produce', '--queue', q4, ...base]));
          res[k][w].ack.push(loadgen(s, ['--mode', 'consume', '--consume', 'push', '--ack', 1, '--queue', q4, ...base]));
        }
      }
    }
    if (servers.beuss) {
      // push with a credit as large as the queue: the server is limited by
      // TCP backpressure only
      const wMax = CFG.windows[CFG.windows.length - 1];
      const q3 = freshQueue('pc');
      progress(`[produce/consume] beuss push with credit ${CFG.n} run ${r + 1}`);
      loadgen(servers.beuss, ['--mode', 'produce', '--queue', q3, '--n', CFG.n, '--size', CFG.size, '--window', wMax]);
      pushAll.push(loadgen(servers.beuss, ['--mode', 'consume', '--consume', 'push', '--queue', q3, '--n', CFG.n, '--size', CFG.size, '--window', CFG.n]));
    }
  }
  const rate = (x) => x.rate;
  const kindsOf = { produce: 'produce (PUT / LPUSH / put)', get: 'consume, pipelined take (GET / RPOP / reserve+delete)', push: 'consume, push (ON with credit = window)' };
  for (const what of ['produce', 'get', 'push']) {
    const rows = [];
    for (const w of CFG.windows) {
      const peerVals = {};
      for (const k of kinds) if (k !== 'beuss' && k !== 'null') peerVals[k] = summarize(res[k][w][what === 'push' ? 'get' : what], rate).median;
      for (const k of kinds) {
        const runs = res[k][w][what];
        if (!runs.length) continue;
        const sm = summarize(runs, rate);
        const row = {
          server: k === 'null' ? 'null server (generator ceiling)' : k,
          n: fmtN(k === 'beanstalkd' ? CFG.nBeanstalk : CFG.n),
          size: CFG.size,
          window: w,
          median: fmtRate(sm.median),
          min: fmtRate(sm.min),
          max: fmtRate(sm.max),
          srv: fmtPct(sm.srvCpu),
          gen: fmtPct(sm.genCpu),
          verified: verified(sm),
          raw: sm,
        };
        if (k === 'beuss') {
          ratios(row, sm.median, peerVals);
          if (peerVals.redis) {
            const ok = sm.median >= 2 * peerVals.redis;
            row.target = `≥ 2× redis: ${mark(ok)}`;
            targets.push({ what: `${what === 'produce' ? 'produce' : 'consume ' + what} w=${w}`, target: '≥ 2× redis', value: sm.median / peerVals.redis, ok, text: `${fmtRatio(sm.median / peerVals.redis)} redis` });
          }
        }
        rows.push(row);
      }
    }
    if (what === 'push' && servers.beuss) {
      // Ack mode next to plain push at each window; beanstalkd's reserve+delete is the
      // at-least-once peer.
      for (const w of CFG.windows) {
        if (!res.beuss[w].ack.length) continue;
        const sm = summarize(res.beuss[w].ack, rate);
        const plain = summarize(res.beuss[w].push, rate).median;
        const row = {
          server: 'beuss, leased + ACK', n: fmtN(CFG.n), size: CFG.size, window: w, median: fmtRate(sm.median), min: fmtRate(sm.min), max: fmtRate(sm.max),
          srv: fmtPct(sm.srvCpu), gen: fmtPct(sm.genCpu), verified: verified(sm), raw: sm,
        };
        row.target = `${fmtRatio(sm.median / plain)} plain push`;
        const peerVals = {};
        for (const k of kinds) if (k !== 'beuss' && k !== 'null') peerVals[k] = summarize(res[k][w].get, rate).median;
        ratios(row, sm.median, peerVals);
        rows.push(row);
      }
    }
    if (what === 'push' && pushAll.length) {
      const wMax = CFG.windows[CFG.windows.length - 1];
      const sm = summarize(pushAll, rate);
      const row = {
        server: 'beuss', n: fmtN(CFG.n), size: CFG.size, window: `credit ${fmtN(CFG.n)}`, median: fmtRate(sm.median), min: fmtRate(sm.min), max: fmtRate(sm.max),
        srv: fmtPct(sm.srvCpu), gen: fmtPct(sm.genCpu), verified: verified(sm), raw: sm,
      };
      const peerVals = {};
      for (const k of kinds) if (k !== 'beuss' && k !== 'null') peerVals[k] = summarize(res[k][wMax].get, rate).median;
      ratios(row, sm.median, peerVals);
      rows.push(row);
    }
    addTable(`${what === 'produce' ? 'produce' : 'consume-' + what}`, kindsOf[what],
      what === 'push'
        ? 'beuss ON push compared with the peers\' pipelined take at the same window (they have no push with credit); "leased + ACK" rows take every message under a lease (ON … LEASE, at-least-once) and acknowledge each one, compared with plain push and with the peers (beanstalkd\'s reserve+delete is the at-least-once one); the last row grants a credit as large as the queue, compared with their take at the largest window.'
        : 'The null server parses every request and answers without storing: the generator drove it at least this fast, so a server figure well below it is the server\'s own.',
      STD_COLS, rows);
  }
}

function verified(sm) {
  if (sm.failed) return `**${sm.failed}/${sm.runs} FAILED**: ${String(sm.errors[0]).slice(0, 80)}`;
  return `${sm.runs}/${sm.runs} ok`;
}

const STD_COLS = [
  ['server', 'server'], ['N', 'n'], ['bytes', 'size'], ['window', 'window'], ['median', 'median'], ['min', 'min'], ['max', 'max'],
  ['server CPU', 'srv'], ['generator CPU', 'gen'], ['vs redis', 'vs_redis'], ['vs nats', 'vs_nats'], ['vs beanstalkd', 'vs_beanstalkd'],
  ['target', 'target'], ['verified', 'verified'],
];
const E2E_COLS = [
  ['server', 'server'], ['N', 'n'], ['bytes', 'size'], ['window', 'window'], ['median', 'median'], ['min', 'min'], ['max', 'max'],
  ['p50', 'p50'], ['p99', 'p99'], ['server CPU', 'srv'], ['generator CPU', 'gen'], ['vs redis', 'vs_redis'], ['vs nats', 'vs_nats'],
  ['vs beanstalkd', 'vs_beanstalkd'], ['target', 'target'], ['verified', 'verified'],
];

/** Runs P producers and C consumers at once, end to end, at each window. */
async function scenarioE2E(servers, p, c, windows, runsN) {
  const kinds = ORDER.filter((k) => servers[k] && k !== 'null');
  const res = {};
  for (const k of kinds) {
    res[k] = {};
    for (const w of windows) res[k][w] = [];
  }
  let step = 0;
  const total = runsN * windows.length * kinds.length;
  for (let r = 0; r < runsN; r++) {
    for (const w of windows) {
      for (const k of rotate(kinds, r)) {
        progress(`[${p}P${c}C ${++step}/${total}] ${k} window ${w} run ${r + 1}`);
        const n = k === 'beanstalkd' ? CFG.nBeanstalk : CFG.n;
        res[k][w].push(loadgen(servers[k], ['--mode', 'e2e', '--n', n, '--size', CFG.size, '--window', w, '--producers', p, '--consumers', c, '--queue', freshQueue('e2e')]));
      }
    }
  }
  const rows = [];
  for (const w of windows) {
    const sms = {};
    for (const k of kinds) sms[k] = summarize(res[k][w], (x) => x.rate);
    for (const k of kinds) {
      const sm = sms[k];
      const row = {
        server: k, n: fmtN(k === 'beanstalkd' ? CFG.nBeanstalk : CFG.n), size: CFG.size, window: w,
        median: fmtRate(sm.median), min: fmtRate(sm.min), max: fmtRate(sm.max), p50: fmtUs(sm.p50), p99: fmtUs(sm.p99),
        srv: fmtPct(sm.srvCpu), gen: fmtPct(sm.genCpu), verified: verified(sm), raw: sm,
      };
      if (k === 'beuss') {
        const peers = {};
        for (const o of kinds) if (o !== 'beuss') peers[o] = sms[o].median;
        ratios(row, sm.median, peers);
        if (p === 1 && sms.nats && sms.redis) {
          const ok1 = sm.median >= sms.nats.median;
          const ok2 = sm.p99 <= sms.redis.p99;
          row.target = `≥ nats: ${mark(ok1)}; p99 ≤ redis (${fmtUs(sms.redis.p99)}): ${mark(ok2)}`;
          targets.push({ what: `1P1C rate w=${w}`, target: '≥ nats', value: sm.median / sms.nats.median, ok: ok1, text: `${fmtRatio(sm.median / sms.nats.median)} nats` });
          targets.push({ what: `1P1C p99 w=${w}`, target: '≤ redis p99', value: sm.p99 / sms.redis.p99, ok: ok2, text: `${fmtUs(sm.p99)} vs ${fmtUs(sms.redis.p99)}` });
        }
      }
      rows.push(row);
    }
  }
  const how = 'beuss: ON with credit = window; redis: LPUSH + pipelined BRPOP; nats: PUB + queue-group SUB; beanstalkd: put + reserve/delete. ' +
    'A producer keeps at most `window` of its messages unconsumed; latency is from the write of a message to its delivery (under a full window it is Little\'s law).';
  addTable(`e2e-${p}p${c}c`, `${p} producer${p > 1 ? 's' : ''} + ${c} consumer${c > 1 ? 's' : ''} at once, end to end`, how, E2E_COLS, rows);
}

/** Publishes to a channel with several subscribers, each of which must receive every message in order. */
async function scenarioFanout(servers) {
  const kinds = ORDER.filter((k) => servers[k] && ['beuss', 'redis', 'nats'].includes(k));
  const subs = 4;
  const w = 1024;
  const n = CFG.n / 4;
  const res = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let r = 0; r < CFG.runsSlow; r++) {
    for (const k of rotate(kinds, r)) {
      progress(`[fan-out] ${k} run ${r + 1}`);
      res[k].push(loadgen(servers[k], ['--mode', 'fanout', '--n', n, '--size', CFG.size, '--window', w, '--consumers', subs, '--queue', freshQueue('fan')]));
    }
  }
  const sms = Object.fromEntries(kinds.map((k) => [k, summarize(res[k], (x) => x.rate)]));
  const rows = kinds.map((k) => {
    const sm = sms[k];
    const row = {
      server: k, n: fmtN(n), subs, size: CFG.size, window: w, median: fmtRate(sm.median), min: fmtRate(sm.min), max: fmtRate(sm.max),
      published: fmtRate(sm.median / subs), p50: fmtUs(sm.p50), p99: fmtUs(sm.p99), srv: fmtPct(sm.srvCpu), gen: fmtPct(sm.genCpu), verified: verified(sm), raw: sm,
    };
    if (k === 'beuss') {
      const peers = {};
      for (const o of kinds) if (o !== 'beuss') peers[o] = sms[o].median;
      ratios(row, sm.median, peers);
    }
    return row;
  });
  addTable('fanout', `Fan-out: 1 publisher, ${subs} subscribers, every subscriber gets every message`,
    'beuss: PUB + SUB (EVENT pushes); redis: PUBLISH + SUBSCRIBE; nats: PUB + plain SUB. The publisher keeps at most `window` messages not yet received by all subscribers; ' +
      'rates count deliveries (published × subscribers); latency is the first subscriber\'s, from the write of a message. A dropped event (beuss DROPPED) fails the run.',
    [['server', 'server'], ['N published', 'n'], ['subscribers', 'subs'], ['bytes', 'size'], ['window', 'window'], ['deliveries (median)', 'median'], ['min', 'min'], ['max', 'max'],
      ['published', 'published'], ['p50', 'p50'], ['p99', 'p99'], ['server CPU', 'srv'], ['generator CPU', 'gen'], ['vs redis', 'vs_redis'], ['vs nats', 'vs_nats'], ['verified', 'verified']],
    rows);
}

/** Measures unpipelined round trips (window 1) and latency at a fixed offered rate. */
async function scenarioLatency(servers, which) {
  const kinds = ORDER.filter((k) => servers[k] && k !== 'null');
  if (which === 'rtt') {
    const res = Object.fromEntries(kinds.map((k) => [k, []]));
    for (let r = 0; r < CFG.runsSlow; r++) {
      for (const k of rotate(kinds, r)) {
        progress(`[round trip] ${k} run ${r + 1}`);
        res[k].push(loadgen(servers[k], ['--mode', 'rtt', '--n', CFG.nRtt, '--size', CFG.size, '--queue', freshQueue('rtt')]));
      }
    }
    const sms = Object.fromEntries(kinds.map((k) => [k, summarize(res[k], (x) => x.p50_us)]));
    const rows = kinds.map((k) => {
      const sm = sms[k];
      const row = {
        server: k, n: fmtN(CFG.nRtt), size: CFG.size, window: 1, p50: fmtUs(sm.median), p50min: fmtUs(sm.min), p50max: fmtUs(sm.max),
        p99: fmtUs(sm.p99), srv: fmtPct(sm.srvCpu), gen: fmtPct(sm.genCpu), verified: verified(sm), raw: sm,
      };
      if (k === 'beuss') {
        const peers = {};
        for (const o of kinds) if (o !== 'beuss') peers[o] = sms[o].median;
        ratios(row, sm.median, peers, false);
        if (sms.redis) {
          const ok = sm.median <= 1.1 * sms.redis.median;
          row.target = `p50 ≤ 1.1× redis: ${mark(ok)}`;
          targets.push({ what: 'round trip p50', target: '≤ 1.1× redis', value: sm.median / sms.redis.median, ok, text: `${fmtUs(sm.median)} vs ${fmtUs(sms.redis.median)}` });
        }
      }
      return row;
    });
    addTable('rtt', 'Round trip without pipelining (one PUT / LPUSH / PUB+PING / put at a time)',
      'Ratios are speed ratios (peer latency / beuss latency: above 1× beuss is faster).',
      [['server', 'server'], ['N', 'n'], ['bytes', 'size'], ['p50 (median)', 'p50'], ['p50 min', 'p50min'], ['p50 max', 'p50max'], ['p99', 'p99'],
        ['server CPU', 'srv'], ['generator CPU', 'gen'], ['vs redis', 'vs_redis'], ['vs nats', 'vs_nats'], ['vs beanstalkd', 'vs_beanstalkd'], ['target', 'target'], ['verified', 'verified']],
      rows);
    return;
  }
  const n = Math.round(CFG.rate * CFG.rateSecs);
  const res = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let r = 0; r < CFG.runsSlow; r++) {
    for (const k of rotate(kinds, r)) {
      progress(`[fixed rate] ${k} run ${r + 1}`);
      const x = loadgen(servers[k], ['--mode', 'e2e', '--n', n, '--size', CFG.size, '--window', 65536, '--rate', CFG.rate, '--queue', freshQueue('rate')], CFG.rateSecs * 3 + 3, true);
      // A server that cannot keep up with the offered rate is saturated, not
      // wrong: what it did not deliver in time has an unbounded latency.
      if (!x.ok && /^timed out/.test(x.error || '') && !x.duplicates && !x.out_of_order && !x.bad_stamp && !x.errors) {
        Object.assign(x, { ok: true, saturated: true, rate: x.done / x.secs });
        if (x.done < x.n) Object.assign(x, { p99_us: Infinity, p999_us: Infinity });
      }
      res[k].push(x);
    }
  }
  const sms = Object.fromEntries(kinds.map((k) => [k, summarize(res[k], (x) => x.p99_us)]));
  const rows = kinds.map((k) => {
    const sm = sms[k];
    const good = res[k].filter((x) => x.ok);
    const row = {
      server: k, n: fmtN(n), size: CFG.size, offered: fmtRate(CFG.rate), achieved: fmtRate(median(good.map((x) => x.rate))),
      p50: fmtUs(sm.p50), p99: fmtUs(sm.median), p99min: fmtUs(sm.min), p99max: fmtUs(sm.max),
      p999: fmtUs(median(good.map((x) => x.p999_us))), srv: fmtPct(sm.srvCpu), gen: fmtPct(sm.genCpu), verified: verified(sm), raw: sm,
    };
    const sat = good.filter((x) => x.saturated);
    if (sat.length) {
      const x = sat[0];
      row.verified = `saturated in ${sat.length}/${good.length} runs (delivered ${x.done} of ${x.n} in ${x.secs.toFixed(1)} s), no loss or disorder`;
    }
    if (k === 'beuss') {
      const peers = {};
      for (const o of kinds) if (o !== 'beuss') peers[o] = sms[o].median;
      ratios(row, sm.median, peers, false);
    }
    return row;
  });
  addTable('rate', `Latency at a fixed offered rate of ${fmtRate(CFG.rate)}, 1 producer + 1 consumer`,
    'Latency from each message\'s intended send time to its delivery (no coordinated omission). Ratios compare p99 (peer / beuss: above 1× beuss is faster).',
    [['server', 'server'], ['N', 'n'], ['bytes', 'size'], ['offered', 'offered'], ['achieved', 'achieved'], ['p50', 'p50'], ['p99 (median)', 'p99'], ['p99 min', 'p99min'], ['p99 max', 'p99max'], ['p99.9', 'p999'],
      ['server CPU', 'srv'], ['generator CPU', 'gen'], ['vs redis', 'vs_redis'], ['vs nats', 'vs_nats'], ['vs beanstalkd', 'vs_beanstalkd'], ['verified', 'verified']],
    rows);
}

/** Moves 1 MiB messages in (produce) and out (consume), in MiB/s. */
async function scenarioLarge(servers) {
  const kinds = ORDER.filter((k) => servers[k] && k !== 'null' && k !== 'nats');
  const res = Object.fromEntries(kinds.map((k) => [k, { produce: [], get: [] }]));
  for (let r = 0; r < CFG.runsSlow; r++) {
    for (const k of rotate(kinds, r)) {
      progress(`[1 MiB messages] ${k} run ${r + 1}`);
      const q = freshQueue('large');
      const base = ['--n', CFG.nLarge, '--size', CFG.largeSize, '--window', CFG.largeWindow, '--queue', q];
      res[k].produce.push(loadgen(servers[k], ['--mode', 'produce', ...base]));
      res[k].get.push(loadgen(servers[k], ['--mode', 'consume', '--consume', 'get', ...base]));
    }
  }
  const rows = [];
  for (const what of ['produce', 'get']) {
    const sms = Object.fromEntries(kinds.map((k) => [k, summarize(res[k][what], (x) => x.mib_s)]));
    for (const k of kinds) {
      const sm = sms[k];
      const row = {
        server: k, way: what === 'produce' ? 'in (PUT)' : 'out (GET)', n: CFG.nLarge, size: '1 MiB', window: CFG.largeWindow,
        median: fmtMiB(sm.median), min: fmtMiB(sm.min), max: fmtMiB(sm.max), srv: fmtPct(sm.srvCpu), gen: fmtPct(sm.genCpu), verified: verified(sm), raw: sm,
      };
      if (k === 'beuss') {
        const peers = {};
        for (const o of kinds) if (o !== 'beuss') peers[o] = sms[o].median;
        ratios(row, sm.median, peers);
        const ok = sm.median >= 2048;
        row.target = `≥ 2048 MiB/s: ${mark(ok)}`;
        targets.push({ what: `1 MiB ${what === 'produce' ? 'in' : 'out'}`, target: '≥ 2 GiB/s', value: sm.median, ok, text: fmtMiB(sm.median) });
      }
      rows.push(row);
    }
  }
  addTable('large', '1 MiB messages', `beuss started with --max-message-size ${CFG.largeSize}; beanstalkd with -z; window ${CFG.largeWindow} messages.`,
    [['server', 'server'], ['way', 'way'], ['N', 'n'], ['bytes', 'size'], ['window', 'window'], ['median', 'median'], ['min', 'min'], ['max', 'max'],
      ['server CPU', 'srv'], ['generator CPU', 'gen'], ['vs redis', 'vs_redis'], ['vs beanstalkd', 'vs_beanstalkd'], ['target', 'target'], ['verified', 'verified']],
    rows);
}

/** Measures server RSS growth per queued 100-byte message, on fresh servers. */
async function scenarioMemory(kinds) {
  const rows = [];
  const per = {};
  let firstGrowth = null;
  for (const k of kinds) {
    progress(`[memory] ${k}: queueing ${CFG.nMemory} messages`);
    const s = await startServer(k);
    s.kind = k;
    try {
      const q = 'bench.memory';
      const before = rss(s.pid);
      const kindsBefore = k === 'beuss' ? residentByKind(s.pid) : null;
      const r = loadgen(s, ['--mode', 'produce', '--n', CFG.nMemory, '--size', CFG.memorySize, '--window', 1024, '--queue', q], 120);
      await sleep(200);
      const after = rss(s.pid);
      if (kindsBefore) {
        const kindsAfter = residentByKind(s.pid);
        if (kindsAfter) firstGrowth = Object.fromEntries(Object.keys(kindsAfter).map((x) => [x, kindsAfter[x] - kindsBefore[x]]));
      }
      const len = await queueLength(k, s.port, q);
      const okLen = len === CFG.nMemory;
      if (!okLen) note(`${k}: ${len} messages queued, expected ${CFG.nMemory}`);
      const b = (after - before) / CFG.nMemory;
      per[k] = r.ok && okLen ? b : NaN;
      // The same again on a server that already holds the first batch: what
      // each further message costs, without the one-time growth of a fresh
      // process (for beuss, V8 compiling its hot code: about 4 MB of Node's
      // own code paged in during the first load). Nothing is freed in
      // between, so no server reuses memory it gave back.
      progress(`[memory] ${k}: queueing ${CFG.nMemory} more`);
      const r2 = loadgen(s, ['--mode', 'produce', '--n', CFG.nMemory, '--size', CFG.memorySize, '--window', 1024, '--queue', q], 120);
      await sleep(200);
      const after2 = rss(s.pid);
      const len2 = await queueLength(k, s.port, q);
      const ok2 = r2.ok && len2 === 2 * CFG.nMemory;
      if (!ok2) note(`${k}: ${len2} messages queued after the second batch, expected ${2 * CFG.nMemory}`);
      const b2 = (after2 - after) / CFG.nMemory;
      // beuss also counts what its engine holds: RSS growth beyond that is
      // the process around it (Node's heap, buffers, allocator slack)
      let engine = '';
      if (k === 'beuss') {
        const st = await ask(s.port, 'STATS\r\n', (t) => /^DATA (\d+)\r?\n/.test(t) && t.length >= t.indexOf('\n') + 1 + Number(/^DATA (\d+)/.exec(t)[1]));
        const mem = /\bmemory (\d+)/.exec(st);
        if (mem) engine = `${(Number(mem[1]) / (2 * CFG.nMemory)).toFixed(1)} B`;
      }
      rows.push({
        server: k, n: fmtN(CFG.nMemory), size: CFG.memorySize, before: `${(before / 1048576).toFixed(1)} MiB`, after: `${(after / 1048576).toFixed(1)} MiB`,
        len: String(len), per: Number.isFinite(per[k]) ? `${b.toFixed(1)} B` : '—', overhead: Number.isFinite(per[k]) ? `${(b - CFG.memorySize).toFixed(1)} B` : '—',
        next: ok2 ? `${b2.toFixed(1)} B` : '—',
        engine,
        verified: r.ok && okLen && ok2 ? 'ok' : `**FAILED**: ${!r.ok ? r.error : !okLen ? `${len} queued` : !r2.ok ? r2.error : `${len2} queued`}`,
        raw: { bytesPerMessage: per[k], before, after, len, engine, nextBytesPerMessage: ok2 ? b2 : null, after2, len2 },
      });
    } finally {
      await stopProcess(s);
    }
  }
  const row = rows.find((x) => x.server === 'beuss');
  if (row) {
    const peers = {};
    for (const k of kinds) if (k !== 'beuss') peers[k] = per[k];
    ratios(row, per.beuss, peers, false);
    const ok = per.beuss <= 106;
    row.target = `≤ 106 B: ${mark(ok)}`;
    targets.push({ what: 'memory per queued 100 B message', target: '≤ 106 B', value: per.beuss, ok, text: `${per.beuss.toFixed(1)} B` });
  }
  addTable('memory', `Memory: RSS growth per queued ${CFG.memorySize}-byte message after ${fmtN(CFG.nMemory)}`,
    'Fresh server per row; VmRSS from /proc before and after; the queue length is checked (LEN / LLEN / stats-tube). Ratios: peer bytes / beuss bytes. ' +
      '"next" is the RSS growth per message of a second batch of the same size on the same server, without the one-time growth of a fresh process. ' +
      '"engine" is what beuss\'s STATS `memory` reports per message held (the C engine\'s own allocations); the rest of its RSS growth is the Node process around it.',
    [['server', 'server'], ['N', 'n'], ['bytes', 'size'], ['RSS before', 'before'], ['RSS after', 'after'], ['queued', 'len'], ['per message', 'per'], ['overhead', 'overhead'], ['next N, per message', 'next'], ['engine', 'engine'],
      ['vs redis', 'vs_redis'], ['vs beanstalkd', 'vs_beanstalkd'], ['target', 'target'], ['verified', 'verified']],
    rows);
  if (firstGrowth) {
    // Where a fresh beuss-server's growth during the first batch went, and
    // how much of it a bare node process pays for V8's optimizing compiler.
    const jit = await jitPageIn();
    const parts = [
      ['C heap (the engine\'s segments, Node\'s own mallocs)', firstGrowth.heap],
      ['node executable: code', firstGrowth.exeText],
      ['node executable: read-only data', firstGrowth.exeData],
      ['other anonymous memory (V8 heap, helper threads\' malloc arenas, stacks)', firstGrowth.anon],
      ['other mappings (shared libraries, the addon)', firstGrowth.other],
    ];
    const total = parts.reduce((a, [, v]) => a + v, 0);
    const mb = (v) => `${(v / 1e6).toFixed(2)} MB`;
    const perMsg = (v) => `${(v / CFG.nMemory).toFixed(2)} B`;
    const bRows = parts.map(([part, v]) => ({ server: 'beuss', part, growth: mb(v), per: perMsg(v), raw: { bytes: v } }));
    bRows.push({ server: 'beuss', part: '**total**', growth: mb(total), per: perMsg(total), raw: { bytes: total } });
    bRows.push({ server: 'node', part: 'a bare `node -e` process optimizing one small function: node\'s code paged in', growth: mb(jit), per: '', raw: { bytes: jit } });
    addTable('memory-parts', `Memory: where a fresh beuss-server's growth during the first ${fmtN(CFG.nMemory)} went`,
      'Resident bytes by kind of mapping, /proc/<pid>/smaps before and after the first batch of the row above (sums of Rss; VmRSS can differ by a few pages). ' +
        'The executable\'s code that grows is V8\'s optimizing compiler paged in the first time the server\'s code gets hot: the last row shows a bare node process paying about the same for one function. ' +
        'It is paid once per process, which is why the next batch costs less.',
      [['part', 'part'], ['growth', 'growth'], ['per message', 'per']], bRows);
  }
}

/** Times `echo x | beuss PUT q` next to `node -e 0`. */
async function scenarioCli(server) {
  const times = { node: [], cli: [] };
  const env = { ...process.env, BHOST: '127.0.0.1', BPORT: String(server.port) };
  const q = freshQueue('cli');
  let failures = 0;
  let lastErr = '';
  for (let i = 0; i < CFG.cliRuns; i++) {
    progress(`[cli] run ${i + 1}/${CFG.cliRuns}`);
    let t = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0']);
    times.node.push(Number(process.hrtime.bigint() - t) / 1e6);
    t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [CLI_BIN, 'PUT', q], { input: 'x\n', env, encoding: 'utf8' });
    times.cli.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.status !== 0) {
      failures++;
      lastErr = (r.stderr || '').trim();
    }
  }
  const len = await queueLength('beuss', server.port, q);
  const ok = failures === 0 && len === CFG.cliRuns;
  const ms = (v) => `${v.toFixed(1)} ms`;
  const rows = [
    { what: '`node -e 0`', median: ms(median(times.node)), min: ms(Math.min(...times.node)), max: ms(Math.max(...times.node)), verified: '', raw: times.node },
    {
      what: '`echo x | beuss PUT q`', median: ms(median(times.cli)), min: ms(Math.min(...times.cli)), max: ms(Math.max(...times.cli)),
      verified: ok ? `${CFG.cliRuns}/${CFG.cliRuns} stored` : `**FAILED**: ${failures} failed, ${len} stored ${lastErr.slice(0, 80)}`, raw: times.cli,
    },
  ];
  addTable('cli', `The CLI: wall time of one PUT, median of ${CFG.cliRuns}`, 'Node\'s own start-up is most of it.',
    [['command', 'what'], ['median', 'median'], ['min', 'min'], ['max', 'max'], ['verified', 'verified']], rows);
}

/** Runs each server once, unrecorded, so that no figure includes start-up effects (JIT, first allocations). */
function warmUp(servers) {
  for (const k of Object.keys(servers)) {
    progress(`[warm-up] ${k}`);
    const n = k === 'beanstalkd' ? 5000 : CFG.nWarmUp;
    const q = freshQueue('warmup');
    const base = ['--n', n, '--size', CFG.size, '--window', 1024, '--queue', q];
    if (k === 'nats') {
      loadgen(servers[k], ['--mode', 'e2e', ...base]);
      continue;
    }
    loadgen(servers[k], ['--mode', 'produce', ...base]);
    loadgen(servers[k], ['--mode', 'consume', ...base]);
    if (k !== 'null') loadgen(servers[k], ['--mode', 'e2e', ...base.slice(0, -1), freshQueue('warmup')]);
  }
}

// ---- output --------------------------------------------------------------------

function markdownTable(t) {
  const cols = t.cols.filter(([, key]) => t.rows.some((r) => r[key] !== undefined && r[key] !== ''));
  const lines = [`### ${t.title}`, ''];
  if (t.note) lines.push(t.note, '');
  lines.push(`| ${cols.map((c) => c[0]).join(' | ')} |`);
  lines.push(`|${cols.map(([, k]) => (['server', 'what', 'way', 'part', 'target', 'verified'].includes(k) ? '---' : '---:')).join('|')}|`);
  for (const r of t.rows) lines.push(`| ${cols.map(([, k]) => (r[k] === undefined ? '' : String(r[k]))).join(' | ')} |`);
  return lines.join('\n');
}

function versionOf(bin, args, re) {
  try {
    const out = execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const m = re.exec(out);
    return m ? m[1] : out.trim().split('\n')[0];
  } catch {
    return 'unknown';
  }
}

// ---- main ------------------------------------------------------------------------

async function main() {
  const t0 = Date.now();
  const want = new Set(opt.only ?? ['produce', 'e2e', 'e2e4', 'fanout', 'rtt', 'rate', 'large', 'memory', 'cli']);
  TOOLS = buildTools();
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cjs', 'server', 'main.js'))) {
    throw new Error('beuss is not built (no dist/): run `npm run build` first');
  }

  // peers: requested or all installed
  const requested = opt.vs === null ? Object.keys(PEERS) : opt.vs === 'none' ? [] : opt.vs.split(',').map((x) => x.trim()).filter(Boolean);
  const peers = [];
  const missing = [];
  for (const p of requested) {
    if (!PEERS[p]) usage(`unknown peer '${p}' (redis, nats, beanstalkd)`);
    if (which(PEERS[p].bin)) peers.push(p);
    else missing.push(p);
  }
  if (missing.length) {
    note(`not installed, skipped: ${missing.join(', ')} (apt-get install ${missing.map((m) => PEERS[m].pkg).join(' ')})`);
  }

  report.meta = {
    date: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
    quick: Q,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    node: process.version,
    versions: {
      redis: peers.includes('redis') ? versionOf(which('redis-server'), ['--version'], /v=(\S+)/) : null,
      nats: peers.includes('nats') ? versionOf(which('nats-server'), ['--version'], /v(\d\S*)/) : null,
      beanstalkd: peers.includes('beanstalkd') ? versionOf(which('beanstalkd'), ['-v'], /beanstalkd (\S+)/) : null,
    },
    peers,
    missing,
    config: CFG,
  };

  const servers = {};
  const timings = {};
  report.meta.timings = timings;
  const startAll = async (list) => {
    for (const k of list) {
      servers[k] = await startServer(k);
      servers[k].kind = k;
    }
  };
  try {
    await startAll(['null', 'beuss', ...peers]);
    warmUp(servers);
    const timed = async (id, fn) => {
      if (!want.has(id)) return;
      const t = Date.now();
      await fn();
      timings[id] = (Date.now() - t) / 1000;
    };
    await timed('produce', () => scenarioProduceConsume(servers));
    await timed('e2e', () => scenarioE2E(servers, 1, 1, CFG.windows, CFG.runs));
    await timed('e2e4', () => scenarioE2E(servers, 4, 4, [1024], CFG.runsSlow));
    await timed('fanout', () => scenarioFanout(servers));
    await timed('rtt', () => scenarioLatency(servers, 'rtt'));
    await timed('rate', () => scenarioLatency(servers, 'rate'));
    await timed('cli', () => scenarioCli(servers.beuss));
    for (const k of Object.keys(servers)) await stopProcess(servers[k]);
    await timed('large', async () => {
      const ls = {};
      ls.beuss = await startServer('beuss', { maxMessageSize: CFG.largeSize });
      ls.beuss.kind = 'beuss';
      for (const k of peers) {
        ls[k] = await startServer(k);
        ls[k].kind = k;
      }
      try {
        await scenarioLarge(ls);
      } finally {
        for (const k of Object.keys(ls)) await stopProcess(ls[k]);
      }
    });
    await timed('memory', () => scenarioMemory(['beuss', ...peers.filter((p) => p !== 'nats')]));
  } finally {
    for (const k of Object.keys(servers)) await stopProcess(servers[k]);
  }
  report.scenarios.push({
    id: 'later', title: 'Not measured yet', note: 'Delayed and scheduled messages (PUT … DELAY/AT, SCHEDULE), leased GET (as opposed to leased ON) and idle-queue removal have no scenario yet: they go here.', cols: [], rows: [],
  });
  report.targets = targets;
  report.meta.seconds = (Date.now() - t0) / 1000;
  progress('');

  // print
  const out = [];
  const m = report.meta;
  out.push(`## beuss benchmark${Q ? ' (quick)' : ''}`, '');
  out.push(`${m.date}, \`${m.command}\`, ${m.cpus} × ${m.cpu}, load average before: ${m.loadavg}, Node ${m.node}` +
    `${m.versions.redis ? `, redis ${m.versions.redis}` : ''}${m.versions.nats ? `, nats-server ${m.versions.nats}` : ''}${m.versions.beanstalkd ? `, beanstalkd ${m.versions.beanstalkd}` : ''}.`);
  out.push('All servers on 127.0.0.1; load from the C generator (bench/loadgen.c), every reply checked and every consumed message\'s sequence verified. ' +
    `Median of ${CFG.runs} runs (latency, 4×4 and 1 MiB: ${CFG.runsSlow}). CPU is % of one core over the run (server: all its threads).`);
  if (missing.length) out.push('', `Peers not installed (skipped): ${missing.join(', ')}.`);
  out.push('');
  if (targets.length) {
    out.push('### Targets', '', '| figure | target | beuss | met |', '|---|---|---:|---|');
    for (const t of targets) out.push(`| ${t.what} | ${t.target} | ${t.text} | ${t.ok ? 'yes' : '**NO**'} |`);
    out.push('');
  }
  for (const t of report.scenarios) {
    if (!t.rows.length) {
      out.push(`### ${t.title}`, '', t.note, '');
      continue;
    }
    out.push(markdownTable(t), '');
  }
  out.push(`Total time: ${m.seconds.toFixed(0)} s (${Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(', ')}).`);
  process.stdout.write(out.join('\n') + '\n');

  if (opt.json) {
    fs.writeFileSync(opt.json, JSON.stringify(report, null, 1) + '\n');
    note(`results written to ${opt.json}`);
  }
  if (opt.chart !== 'none') {
    const { writeChart } = require('./chart.js');
    const files = writeChart(report, opt.chart);
    note(`chart written to ${files.join(', ')}`);
  }
  const failed = report.scenarios.some((t) => t.rows.some((r) => String(r.verified).includes('FAILED')));
  if (failed) {
    note('some runs FAILED verification or did not complete: see the "verified" column');
    process.exitCode = 1;
  }
}

main().catch((err) => {
  process.stderr.write(`\nbench: ${err.stack || err.message}\n`);
  process.exit(1);
});

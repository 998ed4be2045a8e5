// The README must not rot: every `sh` block in it runs here against a real
// server, with `beuss` on PATH as a user has it after install; `npm start`
// starts the server on its own; and every CLI verb and server variable the
// programs' --help lists is in the README.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, ROOT, SERVER_BIN, useServer } from './helpers/server';
import { onWindows } from './helpers/platform';

const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** Returns the bodies of the fenced blocks of README.md tagged with lang. */
function blocks(lang: string): string[] {
  const out: string[] = [];
  const re = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm');
  for (let m = re.exec(README); m; m = re.exec(README)) out.push(m[1]!);
  return out;
}

const server = useServer();
let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beuss-readme-'));
  // The bin links only serve the bash blocks, which do not run on Windows (nor do unprivileged symlinks).
  if (!onWindows) {
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.symlinkSync(CLI_BIN, path.join(dir, 'bin', 'beuss'));
    fs.symlinkSync(SERVER_BIN, path.join(dir, 'bin', 'beuss-server'));
  }
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('README', () => {
  it('has sh blocks to run', () => {
    expect(blocks('sh').length).toBeGreaterThanOrEqual(2);
  });

  // Runs the blocks with bash and `beuss` linked on PATH: not on Windows.
  it.skipIf(onWindows)('every sh block runs and exits 0 against a real server', () => {
    for (const [i, script] of blocks('sh').entries()) {
      const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
        cwd: dir,
        env: { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}`, BHOST: server.host, BPORT: String(server.port) },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, `README sh block ${i + 1} failed:\n${script}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
    }
  });

  // Checks the files the sh blocks wrote, which do not run on Windows.
  it.skipIf(onWindows)('the examples did what they say', () => {
    expect(fs.readFileSync(path.join(dir, 'output.txt'), 'utf8')).toBe('my-message-content\n');
    expect(fs.readFileSync(path.join(dir, 'copy.bin')).equals(fs.readFileSync(path.join(dir, 'picture.bin')))).toBe(true);
  });

  // On Windows kill('SIGTERM') terminates the server without running its handler.
  it.skipIf(onWindows)('`npm start` starts the server, which SIGTERM stops with exit code 0', async () => {
    const child = spawn(process.execPath, [SERVER_BIN], {
      cwd: ROOT,
      env: { ...process.env, BHOST: '127.0.0.1', BPORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // `npm start` is `node bin/beuss-server.js`; check the script says so, then run it as npm would.
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe('node bin/beuss-server.js');
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/listening on 127\.0\.0\.1:\d+/.test(out)) resolve();
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const code = await new Promise<number | null>((resolve) => {
      child.removeAllListeners('exit');
      child.on('exit', (c) => resolve(c));
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
  });

  it('names every CLI verb of `beuss --help`', () => {
    const help = execFileSync(process.execPath, [CLI_BIN, '--help'], { encoding: 'utf8' });
    const verbs = [...help.matchAll(/^ {2}beuss ([A-Z]+)/gm)].map((m) => m[1]!);
    expect(verbs.length).toBeGreaterThan(10);
    for (const v of verbs) expect(README, `README lacks beuss ${v}`).toContain(`beuss ${v}`);
  });

  it('names every flag and variable of `beuss-server --help`', () => {
    const help = execFileSync(process.execPath, [SERVER_BIN, '--help'], { encoding: 'utf8' });
    const vars = [...help.matchAll(/\b(B[A-Z]{3,})\b/g)].map((m) => m[1]!);
    const flags = [...help.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]!);
    expect(vars.length).toBeGreaterThan(5);
    for (const v of vars) expect(README, `README lacks ${v}`).toContain(v);
    for (const f of flags) expect(README, `README lacks ${f}`).toContain(f);
  });
});

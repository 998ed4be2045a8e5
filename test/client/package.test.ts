// What ships: the built package loaded by its own name through package.json
// "exports", with require() and with import, in separate Node processes.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, useServer } from '../helpers/server.js';

const srv = useServer();

const API = ['connect', 'Client', 'Consumer', 'Message', 'ConnectionError', 'ProtocolError', 'TooLargeError', 'BadQueueNameError', 'FullError'];

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
}

const roundTrip = (port: number) => `
  const c = await beuss.connect({ host: '127.0.0.1', port: ${port} });
  const stored = await c.put('pkg', Buffer.from([0, 1, 2]));
  const back = await c.get('pkg');
  await c.close();
  const names = ${JSON.stringify(API)}.filter((k) => typeof beuss[k] === 'function');
  console.log(JSON.stringify({ stored, back: [...back], names }));`;

describe('the built package', () => {
  it("exposes the API through require('beuss')", () => {
    const out = node(['-e', `const beuss = require('beuss'); (async () => { ${roundTrip(srv.port)} })().catch((e) => { console.error(e); process.exit(1); });`]);
    expect(JSON.parse(out)).toEqual({ stored: 3, back: [0, 1, 2], names: API });
  });

  it("exposes the API through import('beuss')", () => {
    const out = node(['--input-type=module', '-e', `import * as beuss from 'beuss'; ${roundTrip(srv.port)}`]);
    expect(JSON.parse(out)).toEqual({ stored: 3, back: [0, 1, 2], names: API });
  });

  it('ships type declarations for both', () => {
    for (const dir of ['dist/cjs', 'dist/esm']) {
      const dts = fs.readFileSync(path.join(ROOT, dir, 'index.d.ts'), 'utf8');
      expect(dts).toMatch(/connect/);
      expect(fs.readFileSync(path.join(ROOT, dir, 'client', 'client.d.ts'), 'utf8')).toMatch(/put\(queue: string, data: Buffer \| Uint8Array \| string, opts\?: PutOptions\): Promise<number>/);
    }
  });

  it('type-checks a TypeScript user of the package, CommonJS and ESM', () => {
    const tsc = require.resolve('typescript/bin/tsc');
    const files = ['test/client/fixtures/uses-types.ts', 'test/client/fixtures/uses-types.mts'];
    const args = [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022', '--types', 'node', '--skipLibCheck', ...files];
    // execFileSync throws with tsc's diagnostics on any type error.
    expect(() => node(args)).not.toThrow();
  });

  it('keeps the native addon off the client and CLI path', () => {
    // The client must load where the addon cannot: nothing it requires reaches src/native.
    const out = node(['-e', `require('beuss'); require('./dist/cjs/cli/commands.js'); console.log(JSON.stringify(Object.keys(require.cache).filter((f) => /native|\\.node$/.test(f))))`]);
    expect(JSON.parse(out)).toEqual([]);
  });
});

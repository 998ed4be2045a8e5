// Argument checks that run before anything is sent, and connection defaults.
import { describe, expect, it } from 'vitest';
import { BadQueueNameError, InvalidArgumentError } from '../../src/client/errors.js';
import { resolveOptions } from '../../src/client/options.js';
import { checkQueue, queueNameProblem, toBytes } from '../../src/client/validate.js';

describe('queue names', () => {
  it('accepts the names the protocol allows', () => {
    for (const name of ['a', 'jobs', 'a.b-c_d:e/f!~', 'caf\u00e9', '\u{1F600}', 'x'.repeat(255), '\u00e9'.repeat(127)]) {
      expect(queueNameProblem(name), name).toBeNull();
    }
  });

  it('refuses the names the protocol forbids, saying why', () => {
    expect(queueNameProblem('')).toMatch(/empty/);
    expect(queueNameProblem('a b')).toMatch(/space/);
    expect(queueNameProblem('a\tb')).toMatch(/tab/);
    expect(queueNameProblem('a\nb')).toMatch(/control character 0x0a/);
    expect(queueNameProblem('a\x7fb')).toMatch(/control character 0x7f/);
    expect(queueNameProblem('x'.repeat(256))).toMatch(/256 bytes.*255/);
    expect(queueNameProblem('\u00e9'.repeat(128))).toMatch(/256 bytes/);
    expect(queueNameProblem('a\ud800')).toMatch(/surrogate/);
    expect(queueNameProblem(42)).toMatch(/string/);
  });

  it('throws BadQueueNameError with code BAD_QUEUE_NAME', () => {
    expect(() => checkQueue('a b')).toThrow(BadQueueNameError);
    try {
      checkQueue('');
    } catch (err) {
      expect((err as BadQueueNameError).code).toBe('BAD_QUEUE_NAME');
      expect((err as BadQueueNameError).name).toBe('BadQueueNameError');
    }
  });
});

describe('message bytes', () => {
  it('takes Buffer, Uint8Array views and strings', () => {
    expect(toBytes('h\u00e9')).toEqual(Buffer.from([0x68, 0xc3, 0xa9]));
    const backing = new Uint8Array([9, 1, 2, 3, 9]);
    expect(toBytes(backing.subarray(1, 4))).toEqual(Buffer.from([1, 2, 3]));
    expect(() => toBytes(42)).toThrow(InvalidArgumentError);
    expect(() => toBytes(null)).toThrow(/got null/);
  });
});

describe('connection options', () => {
  it('defaults to localhost:6552', () => {
    expect(resolveOptions({ env: {} })).toMatchObject({ host: 'localhost', port: 6552 });
  });

  it('takes BHOST and BPORT from the environment', () => {
    expect(resolveOptions({ env: { BHOST: 'my.server.org', BPORT: '6222' } })).toMatchObject({ host: 'my.server.org', port: 6222 });
  });

  it('prefers explicit options over the environment', () => {
    expect(resolveOptions({ host: 'h', port: 7, env: { BHOST: 'x', BPORT: '6222' } })).toMatchObject({ host: 'h', port: 7 });
  });

  it('refuses bad ports with a readable message', () => {
    expect(() => resolveOptions({ env: { BPORT: 'abc' } })).toThrow(/BPORT must be a port number/);
    expect(() => resolveOptions({ env: { BPORT: '70000' } })).toThrow(/BPORT/);
    expect(() => resolveOptions({ port: 0, env: {} })).toThrow(InvalidArgumentError);
  });
});

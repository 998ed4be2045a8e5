// The reply parser against byte streams cut every possible way: whole, one byte
// at a time, and random splits, plus the violations it must refuse.
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/client/errors.js';
import { type Frame, MAX_REPLY_LINE, ReplyParser } from '../../src/client/parser.js';

function parseChunks(chunks: Buffer[], maxPayload?: number): Frame[] {
  const frames: Frame[] = [];
  const p = new ReplyParser((f) => frames.push(f), maxPayload);
  for (const c of chunks) p.feed(c);
  return frames;
}

// Deterministic PRNG so a failing split can be reproduced.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomSplits(buf: Buffer, seed: number): Buffer[] {
  const r = rng(seed);
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const n = 1 + Math.floor(r() * 40);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

const binary = Buffer.from([0, 13, 10, 255, 10, 13, 0x50, 0x55, 0x53, 0x48, 32, 10]);
const transcript = Buffer.concat([
  Buffer.from('OK 5\r\nOK\r\nPONG\r\nEMPTY\r\n'),
  Buffer.from('ERR BAD_QUEUE_NAME queue name  has\ta tab\r\n'),
  Buffer.from('MSG 5\r\nhello\r\n'),
  Buffer.from(`MSG ${binary.length}\r\n`),
  binary,
  Buffer.from('\r\nMSG 0\r\n\r\n'),
  Buffer.from('PUSH jobs 3\r\nabc\r\n'),
  Buffer.from('PUSH caf\u00e9 2\r\n\r\n\r\n'),
  Buffer.from('DATA 14\r\nq1 3 0\nq2 0 1\n\r\n'),
  Buffer.from('OK 4294967295\n'),
]);

const expected: Frame[] = [
  { type: 'OK', args: ['5'] },
  { type: 'OK', args: [] },
  { type: 'PONG' },
  { type: 'EMPTY' },
  { type: 'ERR', code: 'BAD_QUEUE_NAME', text: 'queue name  has\ta tab' },
  { type: 'MSG', data: Buffer.from('hello') },
  { type: 'MSG', data: binary },
  { type: 'MSG', data: Buffer.alloc(0) },
  { type: 'PUSH', queue: 'jobs', data: Buffer.from('abc') },
  { type: 'PUSH', queue: 'caf\u00e9', data: Buffer.from('\r\n') },
  { type: 'DATA', data: Buffer.from('q1 3 0\nq2 0 1\n') },
  { type: 'OK', args: ['4294967295'] },
];

describe('ReplyParser', () => {
  it('parses every reply type from one chunk', () => {
    expect(parseChunks([transcript])).toEqual(expected);
  });

  it('parses the same replies fed one byte at a time', () => {
    const chunks = [...transcript].map((b) => Buffer.from([b]));
    expect(parseChunks(chunks)).toEqual(expected);
  });

  it('parses the same replies under 200 random splits', () => {
    for (let seed = 1; seed <= 200; seed++) {
      expect(parseChunks(randomSplits(transcript, seed))).toEqual(expected);
    }
  });

  it('accepts extra spaces and tabs between tokens', () => {
    const frames = parseChunks([Buffer.from('OK  5\r\nMSG\t2\r\nab\r\nPUSH  q \t1\r\nz\r\n PONG \r\n')]);
    expect(frames).toEqual([
      { type: 'OK', args: ['5'] },
      { type: 'MSG', data: Buffer.from('ab') },
      { type: 'PUSH', queue: 'q', data: Buffer.from('z') },
      { type: 'PONG' },
    ]);
  });

  it('does not let a payload alias the input chunk', () => {
    const chunk = Buffer.from('MSG 3\r\nabc\r\n');
    const [f] = parseChunks([chunk]);
    chunk.fill(0);
    expect(f).toEqual({ type: 'MSG', data: Buffer.from('abc') });
  });

  it('reassembles a 1 MB payload split into 64 KiB chunks', () => {
    const payload = Buffer.alloc(1_000_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const all = Buffer.concat([Buffer.from(`MSG ${payload.length}\r\n`), payload, Buffer.from('\r\nPONG\r\n')]);
    const chunks: Buffer[] = [];
    for (let i = 0; i < all.length; i += 65536) chunks.push(all.subarray(i, i + 65536));
    const frames = parseChunks(chunks);
    expect(frames).toHaveLength(2);
    expect((frames[0] as { data: Buffer }).data.equals(payload)).toBe(true);
    expect(frames[1]).toEqual({ type: 'PONG' });
  });

  const violations: Array<[string, string | Buffer]> = [
    ['an unknown reply word', 'HELLO world\r\n'],
    ['an empty line', '\r\n'],
    ['a negative length', 'MSG -1\r\n'],
    ['a length that is not a number', 'MSG 1x\r\n'],
    ['a MSG with two lengths', 'MSG 1 2\r\n'],
    ['a PUSH without a queue', 'PUSH 3\r\nabc\r\n'],
    ['a payload not followed by a line end', 'MSG 3\r\nabcX\r\n'],
    ['a payload followed by CR and not LF', 'MSG 3\r\nabc\rX'],
    ['an ERR without a code', 'ERR\r\n'],
    ['EMPTY with arguments', 'EMPTY 1\r\n'],
  ];
  for (const [what, bytes] of violations) {
    it(`refuses ${what} with ProtocolError`, () => {
      expect(() => parseChunks([Buffer.from(bytes)])).toThrow(ProtocolError);
    });
  }

  it('refuses a reply line longer than its limit, even fed in pieces', () => {
    const p = new ReplyParser(() => {});
    const piece = Buffer.alloc(1024, 0x41);
    expect(() => {
      for (let i = 0; i <= MAX_REPLY_LINE / 1024; i++) p.feed(piece);
    }).toThrow(/longer than/);
  });

  it('refuses a payload over maxPayload before buffering it', () => {
    expect(() => parseChunks([Buffer.from('MSG 1001\r\n')], 1000)).toThrow(/maxPayload/);
  });

  it('stays failed after a violation', () => {
    const p = new ReplyParser(() => {});
    expect(() => p.feed(Buffer.from('NOPE\r\n'))).toThrow(ProtocolError);
    expect(() => p.feed(Buffer.from('PONG\r\n'))).toThrow(ProtocolError);
  });
});

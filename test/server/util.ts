// Test helpers for the server suite: a raw reply reader that parses the
// server's byte stream into frames as it arrives (independent of the client
// library, so the server is checked against docs/PROTOCOL.md itself), and a
// few small protocol encoders.
import * as net from 'node:net';
import { afterAll, beforeAll } from 'vitest';

/** One reply or push as it appeared on the wire. */
export interface Frame {
  /** The header line without its line end, e.g. `OK 5`, `MSG 3`, `PUSH q 3`. */
  line: string;
  /** The payload of `MSG`, `DATA`, `PUSH` and `EVENT` frames. */
  payload?: Buffer;
}

/** Returns `PUT <queue> <len>\r\n<payload>\r\n` as bytes. */
export function put(queue: string, payload: string | Buffer): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat([Buffer.from(`PUT ${queue} ${p.length}\r\n`), p, Buffer.from('\r\n')]);
}

/** Returns `PUB <channel> <len>\r\n<payload>\r\n` as bytes. */
export function pub(channel: string, payload: string | Buffer): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat([Buffer.from(`PUB ${channel} ${p.length}\r\n`), p, Buffer.from('\r\n')]);
}

/** Returns `SCHEDULE ADD <name> <queue> <len>\r\n<spec>\n<message>\r\n` as bytes. */
export function scheduleAdd(name: string, queue: string, spec: string, message: string | Buffer): Buffer {
  const p = Buffer.concat([Buffer.from(`${spec}\n`), typeof message === 'string' ? Buffer.from(message) : message]);
  return Buffer.concat([Buffer.from(`SCHEDULE ADD ${name} ${queue} ${p.length}\r\n`), p, Buffer.from('\r\n')]);
}

/** Returns a payload of `size` bytes of `fill` that starts with i as a 32-bit big-endian number. */
export function numbered(i: number, size: number, fill: string): Buffer {
  const p = Buffer.alloc(size, fill);
  p.writeUInt32BE(i, 0);
  return p;
}

/** Returns, as one buffer, the PUTs of the numbered payloads from, from+1, ... from+count-1 (see numbered()). */
export function numberedPuts(queue: string, from: number, count: number, size: number, fill: string): Buffer {
  const b: Buffer[] = [];
  for (let i = from; i < from + count; i++) b.push(put(queue, numbered(i, size, fill)));
  return Buffer.concat(b);
}

/** Returns the payload length a header line declares, or -1 for frames without one. */
function payloadLength(line: string): number {
  const t = line.split(' ');
  if (t[0] === 'MSG' || t[0] === 'DATA') return Number(t[1]);
  if (t[0] === 'PUSH' || t[0] === 'EVENT') return Number(t[2]);
  return -1;
}

/**
 * A raw connection that parses every frame the server sends, as it comes,
 * so that tests can pipeline hundreds of thousands of requests and check
 * the replies without buffering the whole stream.
 */
export class Client {
  readonly frames: Frame[] = [];
  /** Frames handed out by next() so far. */
  private taken = 0;
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  /** Called for each frame as it is parsed; return true to drop it from `frames` (bulk checks). */
  onFrame: ((f: Frame) => boolean) | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.parse();
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  /** Returns an open connection to the server on 127.0.0.1:port. */
  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  private parse(): void {
    let pos = 0;
    const b = this.buf;
    for (;;) {
      const nl = b.indexOf(10, pos);
      if (nl < 0) break;
      const line = b.subarray(pos, nl > pos && b[nl - 1] === 13 ? nl - 1 : nl).toString('latin1');
      const n = payloadLength(line);
      let frame: Frame;
      if (n >= 0) {
        if (b.length < nl + 1 + n + 2) break;
        const payload = Buffer.from(b.subarray(nl + 1, nl + 1 + n));
        if (b[nl + 1 + n] !== 13 || b[nl + 2 + n] !== 10) {
          // A framing bug in the server: record it as a frame the test will
          // not expect, and stop parsing this connection.
          this.frames.push({ line: `!! payload of '${line}' not followed by CRLF` });
          this.buf = Buffer.alloc(0);
          this.socket.destroy();
          return;
        }
        frame = { line, payload };
        pos = nl + 3 + n;
      } else {
        frame = { line };
        pos = nl + 1;
      }
      if (!this.onFrame?.(frame)) this.frames.push(frame);
    }
    this.buf = pos === b.length ? Buffer.alloc(0) : b.subarray(pos);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once pred() holds; rejects after timeoutMs, or on close if the predicate still fails. */
  async until(pred: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; frames: ${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private describe(): string {
    return JSON.stringify(this.frames.slice(this.taken, this.taken + 5).map((f) => f.line)) + ` (+${this.buf.length} unparsed bytes)`;
  }

  /** Writes bytes; resolves once the socket has taken them (drained when needed). */
  send(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Returns the next frame not yet taken. */
  async next(timeoutMs = 20_000): Promise<Frame> {
    await this.until(() => this.frames.length > this.taken, 'a frame', timeoutMs);
    return this.frames[this.taken++]!;
  }

  /** Returns the next frame's header line. */
  async line(timeoutMs = 20_000): Promise<string> {
    return (await this.next(timeoutMs)).line;
  }

  /** Returns the number of frames received but not taken. */
  available(): number {
    return this.frames.length - this.taken;
  }

  /** Sends one request and returns its reply frame (no pushes may arrive meanwhile). */
  async request(data: string | Buffer): Promise<Frame> {
    await this.send(data);
    return this.next();
  }

  /** Returns the STATS document as a map of key to value. */
  async stats(): Promise<Record<string, string>> {
    const f = await this.request('STATS\r\n');
    if (!f.line.startsWith('DATA ')) throw new Error(`STATS answered '${f.line}'`);
    const out: Record<string, string> = {};
    for (const l of f.payload!.toString('latin1').split('\n')) {
      if (l === '') continue;
      const sp = l.indexOf(' ');
      out[l.slice(0, sp)] = l.slice(sp + 1);
    }
    return out;
  }

  /** Resolves when the server has closed the connection. */
  closedByServer(timeoutMs = 10_000): Promise<void> {
    return this.until(() => this.closed, 'the server to close', timeoutMs);
  }

  /** Closes the connection abruptly. */
  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Returns the progress of a check that c receives `MSG <size>` frames with the
 * numbered payloads 0, 1, 2, ... in order: `next` counts the frames, `bad`
 * describes the first one out of place. It drops the frames (bulk checks).
 */
export function checkNumberedMsgs(c: Client, size: number): { next: number; bad: string } {
  const got = { next: 0, bad: '' };
  c.onFrame = (f) => {
    if (f.line !== `MSG ${size}` || f.payload!.readUInt32BE(0) !== got.next) got.bad ||= `${got.next}: ${f.line}`;
    got.next++;
    return true;
  };
  return got;
}

/**
 * Returns the witness of a block's shared server: a raw connection opened once
 * the server is up and kept for every test, so that tests can check that other
 * clients are still served after hostile input. Call it after useServer():
 * vitest runs afterAll hooks in reverse order, so it is destroyed before the
 * server stops.
 */
export function useWitness(server: { readonly port: number }): () => Client {
  let witness: Client | undefined;
  beforeAll(async () => {
    witness = await Client.connect(server.port);
  });
  afterAll(() => witness?.destroy());
  return () => {
    if (!witness) throw new Error('the witness is not connected: use it from a test or a hook');
    return witness;
  };
}

/** Polls check() every 20 ms until it returns true, up to timeoutMs; throws with `what` otherwise. */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Returns a deterministic pseudo-random generator of 32-bit integers (xorshift), for reproducible garbage. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

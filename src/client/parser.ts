// The incremental reply parser: bytes from the socket in, whole replies out.
// It keeps no more than one partial header line and one payload in progress,
// so it works the same whether the socket delivers one byte or a megabyte.
import { ProtocolError } from './errors.js';

/** The lease part of a leased `MSG` or `PUSH`: `<id> <deliveries>`. */
export interface LeaseInfo {
  /** The delivery's id, as sent (decimal, up to 19 digits): ACK/NACK/TOUCH name it. */
  id: string;
  /** Deliveries of this message under a lease, this one included. */
  deliveries: number;
}

/** One reply or push read from the server (docs/PROTOCOL.md, "Replies"). */
export type Frame =
  | { type: 'OK'; args: string[] }
  | { type: 'ERR'; code: string; text: string }
  | { type: 'MSG'; data: Buffer; lease?: LeaseInfo }
  | { type: 'EMPTY' }
  | { type: 'DATA'; data: Buffer }
  | { type: 'PONG' }
  | { type: 'PUSH'; queue: string; data: Buffer; lease?: LeaseInfo }
  | { type: 'EVENT'; channel: string; data: Buffer }
  | { type: 'DROPPED'; channel: string; count: number };

/** Longest header line accepted from the server; real ones are well under 1 KiB. */
export const MAX_REPLY_LINE = 64 * 1024;

const LF = 10;
const CR = 13;
const TOKEN_SPLIT = /[ \t]+/;
const NUMBER = /^\d{1,19}$/;

const SP = 32;

// Returns the value of the 1-19 decimal digits in buf[s, e), or -1 if that is not what is there.
function digits(buf: Buffer, s: number, e: number): number {
  if (e - s < 1 || e - s > 19) return -1;
  let v = 0;
  for (let i = s; i < e; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

// Returns the lease of a MSG/PUSH line whose `<id> <deliveries>` start at tokens[at], or undefined when the line has none.
function leaseOf(tokens: string[], at: number, line: string): LeaseInfo | undefined {
  if (tokens.length <= at) return undefined;
  const id = tokens[at]!;
  const d = tokens[at + 1]!;
  if (!NUMBER.test(id) || !NUMBER.test(d)) throw new ProtocolError(`bad lease in reply: '${line}'`);
  return { id, deliveries: Number(d) };
}

const enum State {
  Line,
  Payload,
  Trailer,
}

/**
 * ReplyParser turns the server's byte stream into {@link Frame}s, calling
 * `onFrame` for each one in order. `feed` throws ProtocolError on bytes that
 * break the protocol; the parser is unusable after that.
 */
export class ReplyParser {
  private state = State.Line;
  private partial: Buffer[] = [];
  private partialLen = 0;
  private payload: Buffer = Buffer.alloc(0);
  private payloadGot = 0;
  private trailerGot = 0;
  private pendingType: 'MSG' | 'DATA' | 'PUSH' | 'EVENT' = 'MSG';
  private pendingQueue = '';
  private pendingLease: LeaseInfo | undefined = undefined;
  private failed: ProtocolError | null = null;

  /** Creates a parser; payloads larger than `maxPayload` bytes are protocol violations. */
  constructor(
    private readonly onFrame: (frame: Frame) => void,
    private readonly maxPayload = 1024 * 1024 * 1024,
  ) {}

  /** Parses `chunk`, calling onFrame for every reply it completes. */
  feed(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    try {
      this.parse(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) this.failed = err;
      throw err;
    }
  }

  private parse(chunk: Buffer): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      if (this.state === State.Line) {
        const lf = chunk.indexOf(LF, pos);
        if (lf < 0) {
          this.partialLen += n - pos;
          if (this.partialLen > MAX_REPLY_LINE) throw new ProtocolError(`reply line longer than ${MAX_REPLY_LINE} bytes`);
          this.partial.push(chunk.subarray(pos));
          return;
        }
        // The line is [start, end) of buf: a view of the chunk, or the joined pieces when it straddled chunks.
        let buf = chunk;
        let start = pos;
        let end = lf;
        if (this.partialLen > 0) {
          this.partial.push(chunk.subarray(pos, lf));
          buf = Buffer.concat(this.partial, this.partialLen + (lf - pos));
          this.partial = [];
          this.partialLen = 0;
          start = 0;
          end = buf.length;
        }
        if (end - start > MAX_REPLY_LINE) throw new ProtocolError(`reply line longer than ${MAX_REPLY_LINE} bytes`);
        pos = lf + 1;
        if (end > start && buf[end - 1] === CR) end--;
        if (!this.fastLine(buf, start, end)) this.line(buf.toString('utf8', start, end));
      } else if (this.state === State.Payload) {
        const want = this.payload.length - this.payloadGot;
        const take = Math.min(want, n - pos);
        chunk.copy(this.payload, this.payloadGot, pos, pos + take);
        this.payloadGot += take;
        pos += take;
        if (this.payloadGot === this.payload.length) {
          this.state = State.Trailer;
          this.trailerGot = 0;
        }
      } else {
        const b = chunk[pos++];
        if (this.trailerGot === 0 && b === CR) {
          this.trailerGot = 1;
        } else if (b === LF) {
          this.state = State.Line;
          this.emitPayload();
        } else {
          throw new ProtocolError(`payload of ${this.payload.length} bytes not followed by a line end (got byte ${b})`);
        }
      }
    }
  }

  // Parses the common well-formed replies straight from the bytes; returns false to leave the line to `line`.
  private fastLine(buf: Buffer, s: number, e: number): boolean {
    const len = e - s;
    const b0 = buf[s];
    if (b0 === 0x4f) {
      // OK, OK <number>
      if (buf[s + 1] !== 0x4b) return false;
      if (len === 2) {
        this.onFrame({ type: 'OK', args: [] });
        return true;
      }
      if (buf[s + 2] !== SP || digits(buf, s + 3, e) < 0) return false;
      this.onFrame({ type: 'OK', args: [buf.toString('latin1', s + 3, e)] });
      return true;
    }
    if (b0 === 0x4d) {
      // MSG <bytes>
      if (len < 5 || buf[s + 1] !== 0x53 || buf[s + 2] !== 0x47 || buf[s + 3] !== SP) return false;
      const size = digits(buf, s + 4, e);
      if (size < 0) return false;
      this.startPayload('MSG', '', size);
      return true;
    }
    if (b0 === 0x50) {
      if (len === 4 && buf[s + 1] === 0x4f && buf[s + 2] === 0x4e && buf[s + 3] === 0x47) {
        this.onFrame({ type: 'PONG' });
        return true;
      }
      // PUSH <queue> <bytes>
      if (len < 8 || buf[s + 1] !== 0x55 || buf[s + 2] !== 0x53 || buf[s + 3] !== 0x48 || buf[s + 4] !== SP) return false;
      let sp = s + 5;
      while (sp < e && buf[sp] !== SP) sp++;
      if (sp === s + 5 || sp >= e) return false;
      const size = digits(buf, sp + 1, e);
      if (size < 0) return false;
      this.startPayload('PUSH', buf.toString('utf8', s + 5, sp), size);
      return true;
    }
    if (len === 5 && b0 === 0x45 && buf[s + 1] === 0x4d && buf[s + 2] === 0x50 && buf[s + 3] === 0x54 && buf[s + 4] === 0x59) {
      this.onFrame({ type: 'EMPTY' });
      return true;
    }
    return false;
  }

  private line(text: string): void {
    const trimmed = text.trim();
    if (trimmed === '') throw new ProtocolError('empty reply line');
    const tokens = trimmed.split(TOKEN_SPLIT);
    switch (tokens[0]) {
      case 'OK':
        this.onFrame({ type: 'OK', args: tokens.slice(1) });
        return;
      case 'ERR': {
        if (tokens.length < 2) throw new ProtocolError(`ERR reply without a code: '${trimmed}'`);
        const code = tokens[1];
        const at = trimmed.indexOf(code, 3) + code.length;
        this.onFrame({ type: 'ERR', code, text: trimmed.slice(at).trim() });
        return;
      }
      case 'EMPTY':
        if (tokens.length !== 1) throw new ProtocolError(`malformed reply: '${trimmed}'`);
        this.onFrame({ type: 'EMPTY' });
        return;
      case 'PONG':
        if (tokens.length !== 1) throw new ProtocolError(`malformed reply: '${trimmed}'`);
        this.onFrame({ type: 'PONG' });
        return;
      case 'MSG':
        if (tokens.length !== 2 && tokens.length !== 4) throw new ProtocolError(`malformed reply: '${trimmed}'`);
        this.startPayloadText('MSG', '', tokens[1], leaseOf(tokens, 2, trimmed));
        return;
      case 'DATA':
        if (tokens.length !== 2) throw new ProtocolError(`malformed reply: '${trimmed}'`);
        this.startPayloadText('DATA', '', tokens[1]);
        return;
      case 'PUSH':
        if (tokens.length !== 3 && tokens.length !== 5) throw new ProtocolError(`malformed push: '${trimmed}'`);
        this.startPayloadText('PUSH', tokens[1], tokens[2], leaseOf(tokens, 3, trimmed));
        return;
      case 'EVENT':
        if (tokens.length !== 3) throw new ProtocolError(`malformed event: '${trimmed}'`);
        this.startPayloadText('EVENT', tokens[1], tokens[2]);
        return;
      case 'DROPPED':
        if (tokens.length !== 3 || !NUMBER.test(tokens[2])) throw new ProtocolError(`malformed DROPPED: '${trimmed}'`);
        this.onFrame({ type: 'DROPPED', channel: tokens[1], count: Number(tokens[2]) });
        return;
      default:
        throw new ProtocolError(`unknown reply: '${trimmed.slice(0, 80)}'`);
    }
  }

  private startPayloadText(type: 'MSG' | 'DATA' | 'PUSH' | 'EVENT', queue: string, len: string, lease?: LeaseInfo): void {
    if (!NUMBER.test(len)) throw new ProtocolError(`bad payload length '${len}' in ${type} reply`);
    this.startPayload(type, queue, Number(len), lease);
  }

  private startPayload(type: 'MSG' | 'DATA' | 'PUSH' | 'EVENT', queue: string, size: number, lease?: LeaseInfo): void {
    if (size > this.maxPayload) throw new ProtocolError(`payload of ${size} bytes is over the client's maxPayload (${this.maxPayload})`);
    this.pendingType = type;
    this.pendingQueue = queue;
    this.pendingLease = lease;
    // allocUnsafe takes small payloads from Node's shared pool: no allocation per small message.
    this.payload = Buffer.allocUnsafe(size);
    this.payloadGot = 0;
    this.state = size === 0 ? State.Trailer : State.Payload;
    this.trailerGot = 0;
  }

  private emitPayload(): void {
    const data = this.payload;
    this.payload = Buffer.alloc(0);
    const lease = this.pendingLease;
    this.pendingLease = undefined;
    if (this.pendingType === 'EVENT') this.onFrame({ type: 'EVENT', channel: this.pendingQueue, data });
    else if (this.pendingType === 'PUSH') this.onFrame(lease ? { type: 'PUSH', queue: this.pendingQueue, data, lease } : { type: 'PUSH', queue: this.pendingQueue, data });
    else if (this.pendingType === 'MSG' && lease) this.onFrame({ type: 'MSG', data, lease });
    else this.onFrame({ type: this.pendingType, data });
  }
}

// The incremental reply parser: bytes from the socket in, whole replies out.
// It keeps no more than one partial header line and one payload in progress,
// so it works the same whether the socket delivers one byte or a megabyte.
import { ProtocolError } from './errors.js';

/** One reply or push read from the server (docs/PROTOCOL.md, "Replies"). */
export type Frame =
  | { type: 'OK'; args: string[] }
  | { type: 'ERR'; code: string; text: string }
  | { type: 'MSG'; data: Buffer }
  | { type: 'EMPTY' }
  | { type: 'DATA'; data: Buffer }
  | { type: 'PONG' }
  | { type: 'PUSH'; queue: string; data: Buffer };

/** Longest header line accepted from the server; real ones are well under 1 KiB. */
export const MAX_REPLY_LINE = 64 * 1024;

const LF = 10;
const CR = 13;
const TOKEN_SPLIT = /[ \t]+/;
const NUMBER = /^\d{1,19}$/;

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
  private pendingType: 'MSG' | 'DATA' | 'PUSH' = 'MSG';
  private pendingQueue = '';
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
        let line: Buffer;
        if (this.partialLen > 0) {
          this.partial.push(chunk.subarray(pos, lf));
          line = Buffer.concat(this.partial, this.partialLen + (lf - pos));
          this.partial = [];
          this.partialLen = 0;
        } else {
          line = chunk.subarray(pos, lf);
        }
        if (line.length > MAX_REPLY_LINE) throw new ProtocolError(`reply line longer than ${MAX_REPLY_LINE} bytes`);
        pos = lf + 1;
        let end = line.length;
        if (end > 0 && line[end - 1] === CR) end--;
        this.line(line.toString('utf8', 0, end));
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
      case 'DATA':
        if (tokens.length !== 2) throw new ProtocolError(`malformed reply: '${trimmed}'`);
        this.startPayload(tokens[0], '', tokens[1]);
        return;
      case 'PUSH':
        if (tokens.length !== 3) throw new ProtocolError(`malformed push: '${trimmed}'`);
        this.startPayload('PUSH', tokens[1], tokens[2]);
        return;
      default:
        throw new ProtocolError(`unknown reply: '${trimmed.slice(0, 80)}'`);
    }
  }

  private startPayload(type: 'MSG' | 'DATA' | 'PUSH', queue: string, len: string): void {
    if (!NUMBER.test(len)) throw new ProtocolError(`bad payload length '${len}' in ${type} reply`);
    const size = Number(len);
    if (size > this.maxPayload) throw new ProtocolError(`payload of ${size} bytes is over the client's maxPayload (${this.maxPayload})`);
    this.pendingType = type;
    this.pendingQueue = queue;
    // allocUnsafe takes small payloads from Node's shared pool: no allocation per small message.
    this.payload = Buffer.allocUnsafe(size);
    this.payloadGot = 0;
    this.state = size === 0 ? State.Trailer : State.Payload;
    this.trailerGot = 0;
  }

  private emitPayload(): void {
    const data = this.payload;
    this.payload = Buffer.alloc(0);
    if (this.pendingType === 'PUSH') this.onFrame({ type: 'PUSH', queue: this.pendingQueue, data });
    else this.onFrame({ type: this.pendingType, data });
  }
}

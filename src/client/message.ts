// What a consumer receives: the bytes plus the queue they came from; under a
// lease, also the delivery's id and count, and the calls that settle it.
import { InvalidArgumentError } from './errors.js';

/** A message delivered to a {@link Consumer}. */
export class Message {
  /** Creates a message of `queue` holding `data`. */
  constructor(
    /** The queue the message was taken from. */
    readonly queue: string,
    /** The message bytes, exactly as they were put. */
    readonly data: Buffer,
  ) {}

  /** Returns the message bytes decoded as UTF-8. */
  text(): string {
    return this.data.toString('utf8');
  }

  /** Returns the message bytes parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.data.toString('utf8')) as T;
  }
}

/** Options of {@link LeasedMessage.nack}. */
export interface NackOptions {
  /** Milliseconds before the message is ready again (`NACK <id> DELAY <ms>`); 0 or absent: at once. */
  delay?: number;
}

/** @internal How a leased message talks to its connection: sends one request line, resolves on OK. */
export type LeaseSender = (header: string) => Promise<void>;

/** @internal Called once when a leased message is settled (ACK or NACK sent), e.g. to count it. */
export type SettleHook = (msg: LeasedMessage) => void;

const MAX_MS = 2 ** 53 - 1;

function checkMs(v: number, what: string, min: number): number {
  if (!Number.isSafeInteger(v) || v < min || v > MAX_MS) throw new InvalidArgumentError(`${what} must be a whole number of milliseconds from ${min}, got ${String(v)}`);
  return v;
}

/**
 * A message taken under a lease (`GET … LEASE`, `consume(q, { lease })`,
 * `work`): it stays the consumer's until {@link ack} (done, deleted),
 * {@link nack} (put back, optionally after a delay) or the lease runs out or
 * the connection closes (put back at the head of its queue, delivered again
 * with `deliveries` raised). Only the client that took it can settle it.
 */
export class LeasedMessage extends Message {
  #settled = false;

  /** @internal Made by the client. */
  constructor(
    queue: string,
    data: Buffer,
    /** The id of this delivery (decimal string: ids can exceed 2^53). A new one at each delivery. */
    readonly id: string,
    /** How many times this message was handed out under a lease, this time included (1 the first time). */
    readonly deliveries: number,
    private readonly send: LeaseSender,
    private readonly onSettle?: SettleHook,
  ) {
    super(queue, data);
  }

  /** True once {@link ack} or {@link nack} was called. */
  get settled(): boolean {
    return this.#settled;
  }

  /** Acknowledges the message: the server deletes it. Rejects with UnknownLeaseError when the lease already ended. */
  ack(): Promise<void> {
    this.markSettled();
    return this.send(`ACK ${this.id}`);
  }

  /** Gives the message back: ready again at the head of its queue, now or after `opts.delay` ms. */
  nack(opts: NackOptions = {}): Promise<void> {
    const delay = opts.delay === undefined ? 0 : checkMs(opts.delay, 'delay', 0);
    this.markSettled();
    return this.send(delay > 0 ? `NACK ${this.id} DELAY ${delay}` : `NACK ${this.id}`);
  }

  /** Extends the lease: it now ends `ms` from now (default: the lease's own duration from now). */
  touch(ms?: number): Promise<void> {
    return this.send(ms === undefined ? `TOUCH ${this.id}` : `TOUCH ${this.id} ${checkMs(ms, 'touch', 1)}`);
  }

  private markSettled(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.onSettle?.(this);
  }
}

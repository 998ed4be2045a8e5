// A subscription to a queue by server push (ON/CREDIT/OFF), read with
// `for await` or through a callback, with credit-based flow control.
import { BeussError, InvalidArgumentError } from './errors.js';
import { LeasedMessage, Message } from './message.js';
import type { Frame, LeaseInfo } from './parser.js';
import { pushedIterator, runHandler } from './pushed.js';

/** Options of {@link Client.consume}. */
export interface ConsumeOptions {
  /**
   * How many messages may be pushed ahead of the handler (in flight or
   * buffered in the client), 1 to 1000000. Credit is granted back in batches of
   * half of it as messages are handled. Default 64.
   */
  prefetch?: number;
  /** Stop after this many messages; credit never exceeds what is left, so no message is taken beyond it. */
  max?: number;
  /**
   * Take messages under a lease of this many milliseconds (`ON … LEASE`): the
   * consumer yields {@link LeasedMessage}s to `ack()` or `nack()`; one not
   * settled in time, or still held when the connection ends, goes back to the
   * head of the queue. `prefetch` then bounds the unacknowledged messages: the
   * server gives credit back on each ACK/NACK. Messages dropped by `close()`
   * or pushed past `max` are NACKed at once.
   */
  lease?: number;
  /** With `lease`: deliveries before a message goes to `<queue>.dead` (server default 5). */
  maxDeliver?: number;
}

/** A callback that handles one message; the next one is handed over once its promise settles. */
export type MessageHandler<M extends Message = Message> = (msg: M) => void | Promise<void>;

/** What a consumer needs from its client. */
export interface ConsumerHost {
  request(header: string): Promise<Frame>;
  release(queue: string, consumer: Consumer<Message>): void;
  /** Returns the leased message of a push. */
  leased(queue: string, data: Buffer, lease: LeaseInfo): LeasedMessage;
}

const enum State {
  Open,
  Ending,
  Done,
}

/** Default prefetch of a consumer. */
export const DEFAULT_PREFETCH = 64;

/**
 * Consumer is one `ON` subscription. It is an AsyncIterable of {@link Message}
 * (`break` out of the loop ends the subscription), or, when made with a handler,
 * it calls the handler for each message in order, one at a time.
 *
 * Without `lease`, delivery is at-most-once: messages pushed but not yet
 * handled when the consumer is closed are dropped. Use a small `prefetch`, or
 * `max`, to bound that; messages still buffered when the connection ends are
 * handed out first. With `lease`, it is at-least-once: see
 * {@link ConsumeOptions.lease}.
 */
export class Consumer<M extends Message = Message> implements AsyncIterable<M> {
  /**
   * Settles when the subscription is over: resolves after `close()`, `break`,
   * `max` reached or the client closed; rejects with the error that ended it
   * (the server refused the `ON`, the connection was lost, the handler threw).
   */
  readonly closed: Promise<void>;

  private state = State.Open;
  private error: Error | null = null;
  private readonly buffer: M[] = [];
  private bufHead = 0;
  private waiter: { resolve(r: IteratorResult<M>): void; reject(e: Error): void } | null = null;
  private inHand = false;
  private iterated = false;
  private granted: number;
  private received = 0;
  private handledSinceGrant = 0;
  private offSent = false;
  private readonly batch: number;
  private settle!: { resolve(): void; reject(e: Error): void };
  private closing: Promise<void> | null = null;

  /** @internal Use {@link Client.consume}. */
  constructor(
    private readonly host: ConsumerHost,
    /** The queue this consumer takes messages from. */
    readonly queue: string,
    private readonly prefetch: number,
    private readonly max: number,
    handler?: MessageHandler<M>,
    private readonly lease = 0,
    maxDeliver?: number,
  ) {
    this.batch = Math.max(1, Math.floor(prefetch / 2));
    this.granted = Math.min(prefetch, max);
    const subscriptionOver = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    if (handler) {
      this.iterated = true;
      this.closed = runHandler(() => this.next(), handler, () => this.close());
    } else {
      this.closed = subscriptionOver;
    }
    // Nobody may be listening: an ended subscription must not be an unhandled rejection.
    this.closed.catch(() => {});
    subscriptionOver.catch(() => {});
    let on = `ON ${queue} CREDIT ${this.granted}`;
    if (lease > 0) on += maxDeliver === undefined ? ` LEASE ${lease}` : ` LEASE ${lease} MAXDELIVER ${maxDeliver}`;
    this.host.request(on).then(
      () => {},
      (err: Error) => this.end(err, true),
    );
  }

  /** How many messages the server pushed to this consumer so far. */
  get receivedCount(): number {
    return this.received;
  }

  /** Returns the async iterator of messages; a consumer can be iterated once. */
  [Symbol.asyncIterator](): AsyncIterator<M> {
    if (this.iterated) throw new InvalidArgumentError('a consumer can be iterated only once, and not when it has a handler');
    this.iterated = true;
    return pushedIterator(() => this.next(), () => this.close());
  }

  /**
   * Ends the subscription: sends `OFF`, drops messages not yet handed out and
   * resolves once the server confirmed. Safe to call more than once.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  /**
   * Ends the subscription without dropping anything: sends `OFF`, keeps
   * handing out every message the server pushed before confirming it, and
   * resolves once they have all been handed out (with a handler: handled).
   */
  async drain(): Promise<void> {
    if (this.state === State.Open && !this.offSent) {
      await this.sendOff();
      this.end(null, false);
    }
    await this.closed.catch(() => {});
  }

  private async doClose(): Promise<void> {
    const off = this.sendOff();
    this.end(null, true);
    await off;
  }

  private sendOff(): Promise<void> {
    if (this.offSent) return Promise.resolve();
    this.offSent = true;
    return this.host.request(`OFF ${this.queue}`).then(
      () => this.host.release(this.queue, this),
      () => this.host.release(this.queue, this),
    );
  }

  private next(): Promise<IteratorResult<M>> {
    if (this.inHand) {
      this.inHand = false;
      this.handled();
    }
    if (this.bufHead < this.buffer.length) return Promise.resolve({ done: false, value: this.take() });
    if (this.state !== State.Open) {
      this.state = State.Done;
      return this.error ? Promise.reject(this.error) : Promise.resolve({ done: true, value: undefined });
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private take(): M {
    const m = this.buffer[this.bufHead];
    this.bufHead++;
    if (this.bufHead === this.buffer.length) {
      this.buffer.length = 0;
      this.bufHead = 0;
    }
    this.inHand = true;
    return m;
  }

  // Counts one message as handled and grants credit back in batches.
  private handled(): void {
    // Under a lease the server gives credit back on ACK/NACK: granting here would exceed the prefetch.
    if (this.lease > 0) return;
    this.handledSinceGrant++;
    if (this.state !== State.Open || this.offSent || this.handledSinceGrant < this.batch) return;
    const n = Math.min(this.handledSinceGrant, this.max - this.granted);
    this.handledSinceGrant = 0;
    if (n <= 0) return;
    this.granted += n;
    this.host.request(`CREDIT ${this.queue} ${n}`).catch(() => {
      // NOT_SUBSCRIBED after a concurrent close, or a lost connection, which ends the consumer anyway.
    });
  }

  /** @internal Called by the client with each PUSH for this queue. */
  _push(data: Buffer, lease?: LeaseInfo): void {
    if (this.state !== State.Open) {
      // Past max or after close: give a leased message back now rather than when its lease runs out.
      if (lease) this.host.leased(this.queue, data, lease).nack().catch(() => {});
      return;
    }
    this.received++;
    const msg = (lease ? this.host.leased(this.queue, data, lease) : new Message(this.queue, data)) as M;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      this.inHand = true;
      w.resolve({ done: false, value: msg });
    } else {
      this.buffer.push(msg);
    }
    if (this.received >= this.max) {
      void this.sendOff();
      this.end(null, false);
    }
  }

  /** @internal Called by the client when the connection ended (err null: closed by the user). */
  _connectionEnded(err: BeussError | null): void {
    this.end(err, false);
  }

  // Stops the subscription; with drop, messages not handed out yet are discarded.
  private end(err: Error | null, drop: boolean): void {
    if (this.state === State.Done || (this.state === State.Ending && !drop && !err)) {
      return;
    }
    if (err && !this.error) this.error = err;
    if (drop) {
      // Latest first: each NACK puts its message at the head, so they keep their order there.
      for (let i = this.buffer.length - 1; i >= this.bufHead; i--) {
        const m = this.buffer[i];
        if (m instanceof LeasedMessage && !m.settled && !err) m.nack().catch(() => {});
      }
      this.buffer.length = 0;
      this.bufHead = 0;
    }
    this.state = this.bufHead < this.buffer.length ? State.Ending : State.Done;
    if (this.error) this.settle.reject(this.error);
    else this.settle.resolve();
    if (this.waiter && this.bufHead >= this.buffer.length) {
      const w = this.waiter;
      this.waiter = null;
      if (this.error) w.reject(this.error);
      else w.resolve({ done: true, value: undefined });
    }
    if (err) this.host.release(this.queue, this);
  }
}

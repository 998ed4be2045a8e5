// What a Consumer (ON) and a Subscription (SUB) share: the items the server
// pushed, held in order until they are handed out, through a one-time async
// iterator or to a handler, and the end of it all, with or without an error.
import { InvalidArgumentError } from './errors.js';

const enum State {
  Open,
  /** Ended, with items still to hand out. */
  Ending,
  Done,
}

/**
 * Inbox holds the items pushed to one consumer or subscription and hands them
 * out in order: to its one async iterator, or to its handler, one at a time.
 * An item is in hand from when it is handed out until the reader asks for the
 * next one; then `onHandled` is called.
 */
export class Inbox<T> {
  /**
   * Settles when the inbox is over: resolves once it ended (with a handler:
   * once every item was handled), rejects with the error that ended it or
   * that the handler threw.
   */
  readonly closed: Promise<void>;

  private state = State.Open;
  private error: Error | null = null;
  private readonly items: T[] = [];
  private head = 0;
  private waiter: { resolve(r: IteratorResult<T>): void; reject(e: Error): void } | null = null;
  private inHand = false;
  private iterated: boolean;
  private settle!: { resolve(): void; reject(e: Error): void };

  /** Creates an open inbox; with `handler`, starts handing items to it. `close` is its owner's close. */
  constructor(
    handler: ((item: T) => void | Promise<void>) | undefined,
    private readonly close: () => Promise<void>,
    private readonly onHandled?: () => void,
  ) {
    const over = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.iterated = handler !== undefined;
    this.closed = handler ? this.run(handler) : over;
    // Nobody may be listening: an ended subscription must not be an unhandled rejection.
    this.closed.catch(() => {});
    over.catch(() => {});
  }

  /** True until {@link end} is called. */
  get isOpen(): boolean {
    return this.state === State.Open;
  }

  /** Items pushed and not handed out yet. */
  get size(): number {
    return this.items.length - this.head;
  }

  /** Returns the async iterator; `what` names the owner ("a consumer") in the error when one was made before or there is a handler. */
  iterator(what: string): AsyncIterator<T> {
    if (this.iterated) throw new InvalidArgumentError(`${what} can be iterated only once, and not when it has a handler`);
    this.iterated = true;
    return {
      next: () => this.next(),
      // A `break` out of the loop closes the owner.
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  /** Hands `item` to the reader waiting for one, or keeps it for the next `next()`. */
  push(item: T): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      this.inHand = true;
      w.resolve({ done: false, value: item });
    } else {
      this.items.push(item);
    }
  }

  /** Returns the items not handed out yet, oldest first. */
  buffered(): T[] {
    return this.items.slice(this.head);
  }

  /** Removes and returns the oldest item not handed out yet; undefined when there is none. */
  dropOldest(): T | undefined {
    return this.size > 0 ? this.shift() : undefined;
  }

  /** Replaces the oldest item not handed out yet with `update(item)`; returns false when there is none. */
  updateOldest(update: (item: T) => T): boolean {
    if (this.size === 0) return false;
    this.items[this.head] = update(this.items[this.head]!);
    return true;
  }

  /**
   * Returns true once it has ended the inbox: items not handed out yet are
   * discarded with `drop`, else still handed out; then the reader is told the
   * end, or the first error given. Returns false, changing nothing, when the
   * inbox had ended already, unless items remain to hand out and this call
   * drops them or brings an error.
   */
  end(err: Error | null, drop: boolean): boolean {
    if (this.state === State.Done || (this.state === State.Ending && !drop && !err)) return false;
    if (err && !this.error) this.error = err;
    if (drop) {
      this.items.length = 0;
      this.head = 0;
    }
    this.state = this.size > 0 ? State.Ending : State.Done;
    if (this.error) this.settle.reject(this.error);
    else this.settle.resolve();
    if (this.waiter && this.size === 0) {
      const w = this.waiter;
      this.waiter = null;
      if (this.error) w.reject(this.error);
      else w.resolve({ done: true, value: undefined });
    }
    return true;
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.inHand) {
      this.inHand = false;
      this.onHandled?.();
    }
    if (this.size > 0) {
      const item = this.shift();
      this.inHand = true;
      return Promise.resolve({ done: false, value: item });
    }
    if (this.state !== State.Open) {
      this.state = State.Done;
      return this.error ? Promise.reject(this.error) : Promise.resolve({ done: true, value: undefined });
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private shift(): T {
    const item = this.items[this.head]!;
    this.head++;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    }
    return item;
  }

  // Resolves once the inbox is over, after calling handler with each item in
  // order, one at a time. A handler that throws closes the owner, and the
  // returned promise rejects with what it threw.
  private async run(handler: (item: T) => void | Promise<void>): Promise<void> {
    for (;;) {
      const r = await this.next();
      if (r.done) return;
      try {
        await handler(r.value);
      } catch (err) {
        await this.close();
        throw err;
      }
    }
  }
}

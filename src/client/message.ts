// What a consumer receives: the bytes plus the queue they came from.

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

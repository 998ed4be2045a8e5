// What a Consumer (ON) and a Subscription (SUB) share: both hand out what
// the server pushes either through a one-time async iterator or to a handler.

/** Returns the async iterator of a consumer or subscription: `next` hands out the next item, `return` (a `break`) closes it. */
export function pushedIterator<T>(next: () => Promise<IteratorResult<T>>, close: () => Promise<void>): AsyncIterator<T> {
  return {
    next,
    return: async () => {
      await close();
      return { done: true, value: undefined };
    },
  };
}

/**
 * Resolves once `next` reports the end, after calling `handler` with each item
 * in order, one at a time. A handler that throws closes the consumer or
 * subscription and the returned promise rejects with its error.
 */
export async function runHandler<T>(
  next: () => Promise<IteratorResult<T>>,
  handler: (item: T) => void | Promise<void>,
  close: () => Promise<void>,
): Promise<void> {
  for (;;) {
    const r = await next();
    if (r.done) return;
    try {
      await handler(r.value);
    } catch (err) {
      await close();
      throw err;
    }
  }
}

// Argument checks with readable messages, run before anything is sent, so a bad
// call never reaches the wire (where a name with a space would split the line).
import { BadQueueNameError, InvalidArgumentError } from './errors.js';

/** Longest queue name the protocol allows, in bytes. */
export const MAX_QUEUE_NAME = 255;

/**
 * Returns null when `name` is a valid queue name (1-255 bytes of UTF-8, each
 * printable ASCII `!`..`~` or a byte >= 128), otherwise the reason it is not.
 */
export function queueNameProblem(name: unknown): string | null {
  if (typeof name !== 'string') return `queue name must be a string, got ${typeof name}`;
  if (name.length === 0) return 'queue name is empty';
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_QUEUE_NAME) return `queue name is ${bytes} bytes long; the limit is ${MAX_QUEUE_NAME}`;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) {
      const what = c === 0x20 ? 'a space' : c === 0x09 ? 'a tab' : `control character 0x${c.toString(16).padStart(2, '0')}`;
      return `queue name ${JSON.stringify(name)} contains ${what}; names are printable characters without spaces`;
    }
    // A lone surrogate would be encoded as U+FFFD and silently rename the queue.
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = name.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
      else return `queue name ${JSON.stringify(name)} is not valid Unicode (lone surrogate)`;
    }
  }
  return null;
}

/** Returns `name` if it is a valid queue name; throws BadQueueNameError otherwise. */
export function checkQueue(name: unknown): string {
  const problem = queueNameProblem(name);
  if (problem) throw new BadQueueNameError('BAD_QUEUE_NAME', problem);
  return name as string;
}

/** Returns the bytes of a message given as Buffer, Uint8Array or string (UTF-8). */
export function toBytes(data: unknown): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new InvalidArgumentError(`message must be a Buffer, Uint8Array or string, got ${data === null ? 'null' : typeof data}`);
}

/** Returns `value` if it is an integer in [min, max]; throws InvalidArgumentError naming `what` otherwise. */
export function checkInt(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

// A raw protocol connection for wire-transcript tests: send bytes, then read
// exactly what the server answers, with no client library in between.
import * as net from 'node:net';

export class Wire {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  /** Returns an open connection to host:port. */
  static connect(port: number, host = '127.0.0.1'): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new Wire(s)));
      s.once('error', reject);
    });
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async until(pred: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; have ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; have ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Returns exactly n bytes from the connection. */
  async read(n: number, timeoutMs = 10_000): Promise<Buffer> {
    await this.until(() => this.buf.length >= n, `${n} bytes`, timeoutMs);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return Buffer.from(out);
  }

  /** Returns the next line, without its \r\n. */
  async line(timeoutMs = 10_000): Promise<string> {
    await this.until(() => this.buf.indexOf(10) >= 0, 'a line', timeoutMs);
    const i = this.buf.indexOf(10);
    const line = this.buf.subarray(0, i).toString('latin1').replace(/\r$/, '');
    this.buf = this.buf.subarray(i + 1);
    return line;
  }

  /** Returns the payload of a reply line like `MSG <n>` or `PUSH <q> <n>` whose last token is the length. */
  async payload(n: number): Promise<Buffer> {
    const body = await this.read(n + 2);
    if (body[n] !== 13 || body[n + 1] !== 10) throw new Error('payload not followed by CRLF');
    return body.subarray(0, n);
  }

  /** Resolves when the server has closed the connection. */
  async closedByServer(timeoutMs = 10_000): Promise<void> {
    await this.until(() => this.closed, 'close', timeoutMs);
  }

  /** Bytes received but not read yet. */
  pending(): Buffer {
    return this.buf;
  }

  end(): void {
    this.socket.destroy();
  }
}

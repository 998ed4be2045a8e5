// What the server's JavaScript keeps per connection once it is gone: nothing.
// The churn test checks the criterion on the server's RSS, but RSS
// cannot tell a leak of a few KiB per connection from the capacity V8 and
// malloc keep for reuse (tens of MB here). So this test runs the real
// BeussServer inside the test process, where the heap can be inspected, drops
// 2,000 connections on it (plain, mid-request, waiting in GET WAIT, sending
// garbage that gets them closed) and counts the net.Socket objects still
// alive after a full garbage collection (v8.queryObjects): a Map entry, a
// listener or a timer that outlived its connection would keep its socket.
import * as net from 'node:net';
import * as v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { useInProcessServer } from '../helpers/in-process';

const srv = useInProcessServer();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Returns the number of net.Socket objects alive after a full GC (client and server sides). */
function liveSockets(): number {
  return v8.queryObjects(net.Socket) as number;
}

/** Opens one connection, sends what kind i says, and resolves once it is closed. */
function churnOne(i: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: srv.port }, () => {
      switch (i % 5) {
        case 0: // dropped at once
          s.destroy();
          break;
        case 1: // a complete request, dropped before reading the reply
          s.end('PING\r\n');
          setTimeout(() => s.destroy(), 5);
          break;
        case 2: // half a request
          s.write('PUT heap-q 10\r\n01234');
          setTimeout(() => s.destroy(), 5);
          break;
        case 3: // waiting for a message that never comes
          s.write(`GET heap-wait-${i % 7} WAIT 60000\r\n`);
          setTimeout(() => s.destroy(), 10);
          break;
        default: // an endless header line: the server answers LINE_TOO_LONG and closes
          s.write('A'.repeat(2000));
          s.on('data', () => {});
          setTimeout(() => s.destroy(), 200);
      }
    });
    s.on('error', () => {});
    s.on('close', () => resolve());
  });
}

describe('connection churn leaves nothing behind in the server heap', () => {
  // v8.queryObjects() exists from Node 20.13 and 22.0; the package supports Node 18.
  it.skipIf(typeof v8.queryObjects !== 'function')('after 2,000 dropped connections of five kinds, no socket outlives its connection', async () => {
    // Warm up once, so that lazily created objects are in the baseline, and let the
    // server close its side (a socket it ended lingers until the peer's close arrives).
    await Promise.all(Array.from({ length: 20 }, (_, k) => churnOne(k)));
    let base = liveSockets();
    for (let t = 0; t < 50; t++) {
      await sleep(100);
      const n = liveSockets();
      if (n === base) break;
      base = n;
    }

    for (let i = 0; i < 2000; i += 50) await Promise.all(Array.from({ length: 50 }, (_, k) => churnOne(i + k)));
    // The server's side of each connection closes a little after the client's: wait for
    // that (bounded). A leak of the Conn, a listener or a linger timer would keep up to
    // 2,000 sockets alive however long we wait.
    let live = liveSockets();
    for (let t = 0; t < 30 && live > base + 2; t++) {
      await sleep(100);
      live = liveSockets();
    }
    expect(srv.server.stats().connections).toBe(0);
    expect(live, `live sockets ${live} vs ${base} before the churn`).toBeLessThanOrEqual(base + 2);
    expect(srv.server.stats().protocolErrors).toBeGreaterThan(0);
    expect(srv.logged, srv.logged.join('\n')).toEqual([]);
  }, 60_000);
});

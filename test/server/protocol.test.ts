// Wire transcripts of every command and every error code of docs/PROTOCOL.md,
// against a real beuss-server process, over raw sockets.
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server';
import { Wire } from '../helpers/wire';
import { Client, put, useWitness } from './util';

const server = useServer({ cleanExit: true });
// Connected for the whole file: after every hostile input it must still be served.
const witness = useWitness(server);

/** Checks that the witness connection is still served correctly. */
async function witnessStillServed(): Promise<void> {
  expect((await witness().request('PING\r\n')).line).toBe('PONG');
  expect((await witness().request(put('witness', 'still here'))).line).toBe('OK 10');
  const f = await witness().request('GET witness\r\n');
  expect(f.line).toBe('MSG 10');
  expect(f.payload!.toString()).toBe('still here');
}

describe('commands', () => {
  it('PING answers PONG, in any case, with CRLF or a bare LF, ignoring blank lines and spaces', async () => {
    const w = await Wire.connect(server.port);
    w.send('PING\r\nping\n\r\n\n  Ping  \t\r\n');
    expect(await w.line()).toBe('PONG');
    expect(await w.line()).toBe('PONG');
    expect(await w.line()).toBe('PONG');
    // Every reply line ends with CRLF.
    w.send('PING\n');
    expect((await w.read(6)).toString()).toBe('PONG\r\n');
    w.end();
  });

  it('PUT stores, LEN counts, PEEK looks, GET takes, then EMPTY (the "Try it" transcript)', async () => {
    const w = await Wire.connect(server.port);
    w.send('PUT jobs 5\r\nhello\r\n');
    expect(await w.line()).toBe('OK 5');
    w.send('LEN jobs\r\n');
    expect(await w.line()).toBe('OK 1');
    w.send('PEEK jobs\r\n');
    expect(await w.line()).toBe('MSG 5');
    expect((await w.payload(5)).toString()).toBe('hello');
    w.send('LEN jobs\r\n');
    expect(await w.line()).toBe('OK 1');
    w.send('GET jobs\r\n');
    expect(await w.line()).toBe('MSG 5');
    expect((await w.payload(5)).toString()).toBe('hello');
    w.send('GET jobs\r\nPEEK jobs\r\nLEN jobs\r\n');
    expect(await w.line()).toBe('EMPTY');
    expect(await w.line()).toBe('EMPTY');
    expect(await w.line()).toBe('OK 0');
    w.end();
  });

  it('PUT accepts a payload ended by a bare LF, an empty payload, and lower-case verbs', async () => {
    const w = await Wire.connect(server.port);
    w.send('put lf 3\nabc\nPUT lf 0\r\n\r\nget lf\r\nGet lf\r\n');
    expect(await w.line()).toBe('OK 3');
    expect(await w.line()).toBe('OK 0');
    expect(await w.line()).toBe('MSG 3');
    expect((await w.payload(3)).toString()).toBe('abc');
    expect(await w.line()).toBe('MSG 0');
    expect((await w.payload(0)).length).toBe(0);
    w.end();
  });

  it('LEN of a queue that does not exist is 0; PURGE deletes and counts', async () => {
    const c = await Client.connect(server.port);
    expect((await c.request('LEN never-used\r\n')).line).toBe('OK 0');
    await c.send(Buffer.concat([put('purge-me', 'a'), put('purge-me', 'b'), put('purge-me', 'c')]));
    for (let i = 0; i < 3; i++) expect(await c.line()).toBe('OK 1');
    expect((await c.request('PURGE purge-me\r\n')).line).toBe('OK 3');
    expect((await c.request('LEN purge-me\r\n')).line).toBe('OK 0');
    expect((await c.request('PURGE purge-me\r\n')).line).toBe('OK 0');
    c.destroy();
  });

  it('QUEUES lists queues sorted by name with ready messages and consumers', async () => {
    const c = await Client.connect(server.port);
    const sub = await Client.connect(server.port);
    await c.send(Buffer.concat([put('qq-b', 'x'), put('qq-b', 'y'), put('qq-a', 'z')]));
    for (let i = 0; i < 3; i++) expect(await c.line()).toBe('OK 1');
    expect((await sub.request('ON qq-c CREDIT 0\r\n')).line).toBe('OK');
    const f = await c.request('QUEUES\r\n');
    expect(f.line).toBe(`DATA ${f.payload!.length}`);
    const lines = f.payload!.toString().split('\n');
    expect(lines.at(-1)).toBe('');
    const ours = lines.filter((l) => l.startsWith('qq-'));
    expect(ours.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual(['qq-a 1 0', 'qq-b 2 0', 'qq-c 0 1']);
    const names = lines.filter((l) => l !== '').map((l) => l.split(' ')[0]!);
    expect([...names].sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))))).toEqual(names);
    sub.destroy();
    c.destroy();
  });

  it('STATS reports every documented key, with values that follow the traffic', async () => {
    const c = await Client.connect(server.port);
    const before = await c.stats();
    for (const k of [
      'protocol', 'uptime_ms', 'connections', 'queues', 'messages', 'bytes', 'consumers', 'waiting', 'puts', 'taken',
      'pushed', 'truncated', 'rejected_large', 'rejected_full', 'protocol_errors', 'max_message_size', 'oversize',
      'max_queued_bytes', 'memory', 'leased', 'acked', 'nacked', 'expired', 'redelivered', 'dead_lettered', 'max_deliver',
    ]) {
      expect(before, `STATS key ${k}`).toHaveProperty(k);
    }
    expect(before.protocol).toBe('2');
    expect(before.max_message_size).toBe('10240');
    expect(before.oversize).toBe('truncate');
    expect(before.max_queued_bytes).toBe(String(1024 ** 3));
    expect(Number(before.connections)).toBeGreaterThanOrEqual(2);
    await c.send(put('stats-q', '12345'));
    expect(await c.line()).toBe('OK 5');
    await c.send('GET stats-q\r\nBOGUS\r\n');
    expect((await c.next()).line).toBe('MSG 5');
    expect(await c.line()).toMatch(/^ERR UNKNOWN_COMMAND /);
    const after = await c.stats();
    expect(Number(after.puts) - Number(before.puts)).toBeGreaterThanOrEqual(1);
    expect(Number(after.taken) - Number(before.taken)).toBeGreaterThanOrEqual(1);
    expect(Number(after.protocol_errors) - Number(before.protocol_errors)).toBeGreaterThanOrEqual(1);
    c.destroy();
  });

  it('ON pushes with credit, CREDIT grants more, OFF ends the subscription', async () => {
    const sub = await Client.connect(server.port);
    const prod = await Client.connect(server.port);
    expect((await sub.request('ON onq\r\n')).line).toBe('OK');
    await prod.send(Buffer.concat([put('onq', 'one'), put('onq', 'two'), put('onq', 'three')]));
    for (const n of [3, 3, 5]) expect(await prod.line()).toBe(`OK ${n}`);
    // Default credit is 1: one push, the rest stay queued.
    const p1 = await sub.next();
    expect(p1.line).toBe('PUSH onq 3');
    expect(p1.payload!.toString()).toBe('one');
    expect((await prod.request('LEN onq\r\n')).line).toBe('OK 2');
    expect(sub.available()).toBe(0);
    await sub.send('CREDIT onq 5\r\n');
    // The reply and the pushes it releases: OK comes in request order, pushes may precede or follow it.
    const got: string[] = [];
    let ok = '';
    while (got.length < 2 || ok === '') {
      const f = await sub.next();
      if (f.line.startsWith('PUSH ')) got.push(f.payload!.toString());
      else ok = f.line;
    }
    expect(got).toEqual(['two', 'three']);
    expect(ok).toMatch(/^OK [35]$/);
    expect((await sub.request('OFF onq\r\n')).line).toBe('OK');
    expect((await prod.request(put('onq', 'after-off'))).line).toBe('OK 9');
    expect((await prod.request('LEN onq\r\n')).line).toBe('OK 1');
    expect((await sub.request('PING\r\n')).line).toBe('PONG');
    expect(sub.available()).toBe(0);
    sub.destroy();
    prod.destroy();
  });

  it('ON with CREDIT 0 pushes nothing until CREDIT; a PUSH never counts as a reply', async () => {
    const sub = await Client.connect(server.port);
    expect((await sub.request('ON zero CREDIT 0\r\n')).line).toBe('OK');
    await sub.send(put('zero', 'mine'));
    expect(await sub.line()).toBe('OK 4');
    expect((await sub.request('LEN zero\r\n')).line).toBe('OK 1');
    await sub.send('CREDIT zero 1\r\nPING\r\n');
    const lines: string[] = [];
    for (let i = 0; i < 3; i++) lines.push((await sub.next()).line);
    expect(lines.filter((l) => l === 'PUSH zero 4')).toHaveLength(1);
    const replies = lines.filter((l) => !l.startsWith('PUSH'));
    expect(replies[0]).toMatch(/^OK [01]$/);
    expect(replies[1]).toBe('PONG');
    sub.destroy();
  });

  it('QUIT answers OK after the replies before it, then closes', async () => {
    const w = await Wire.connect(server.port);
    w.send('PING\r\nQUIT\r\nPING\r\n');
    expect(await w.line()).toBe('PONG');
    expect(await w.line()).toBe('OK');
    await w.closedByServer();
    expect(w.pending().length).toBe(0);
  });

  it('replies come in request order across a pipelined mix of commands', async () => {
    const c = await Client.connect(server.port);
    await c.send(Buffer.concat([
      put('mix', 'a'), Buffer.from('LEN mix\r\nPING\r\nPEEK mix\r\n'), put('mix', 'bb'), Buffer.from('GET mix\r\nGET mix\r\nGET mix\r\nLEN mix\r\n'),
    ]));
    const lines: string[] = [];
    for (let i = 0; i < 9; i++) lines.push((await c.next()).line);
    expect(lines).toEqual(['OK 1', 'OK 1', 'PONG', 'MSG 1', 'OK 2', 'MSG 1', 'MSG 2', 'EMPTY', 'OK 0']);
    c.destroy();
  });
});

describe('error codes', () => {
  it('UNKNOWN_COMMAND, also for the reserved verbs; the connection stays usable', async () => {
    const c = await Client.connect(server.port);
    for (const verb of ['FOO', 'BOGUS 1 2']) {
      expect(await c.request(`${verb}\r\n`).then((f) => f.line)).toMatch(/^ERR UNKNOWN_COMMAND \S/);
    }
    expect((await c.request('PING\r\n')).line).toBe('PONG');
    c.destroy();
    await witnessStillServed();
  });

  it('BAD_NUMBER outside a PUT length keeps the connection open', async () => {
    const c = await Client.connect(server.port);
    for (const req of ['GET q WAIT abc', 'GET q WAIT -1', 'GET q WAIT 12345678901234567890', 'ON bn CREDIT x', 'CREDIT q +1']) {
      expect(await c.request(`${req}\r\n`).then((f) => f.line), req).toMatch(/^ERR BAD_NUMBER \S/);
    }
    expect((await c.request('PING\r\n')).line).toBe('PONG');
    c.destroy();
  });

  it('BAD_NUMBER in a PUT length cannot be resynced: ERR then close', async () => {
    for (const len of ['-5', 'abc', '12345678901234567890', '1e3']) {
      const w = await Wire.connect(server.port);
      w.send(`PUT q ${len}\r\nhello\r\nPING\r\n`);
      expect(await w.line(), len).toMatch(/^ERR BAD_NUMBER \S/);
      await w.closedByServer();
      expect(w.pending().toString()).toBe('');
    }
    await witnessStillServed();
  });

  it('BAD_ARGS: missing or extra arguments and unknown options stay open; a PUT with no length closes', async () => {
    const c = await Client.connect(server.port);
    for (const req of ['GET', 'LEN', 'PEEK a b', 'GET q WAIT', 'GET q SOON 5', 'ON q CREDIT', 'CREDIT q', 'OFF', 'PURGE']) {
      expect(await c.request(`${req}\r\n`).then((f) => f.line), req).toMatch(/^ERR BAD_ARGS \S/);
    }
    expect((await c.request('PING\r\n')).line).toBe('PONG');
    c.destroy();
    const w = await Wire.connect(server.port);
    w.send('PUT q\r\nPING\r\n');
    expect(await w.line()).toMatch(/^ERR BAD_ARGS \S/);
    await w.closedByServer();
    await witnessStillServed();
  });

  it('BAD_QUEUE_NAME for 256 bytes and control characters; a PUT payload is skipped so the stream stays in sync', async () => {
    const c = await Client.connect(server.port);
    const long = 'n'.repeat(256);
    const ok255 = 'n'.repeat(255);
    expect((await c.request(`LEN ${long}\r\n`)).line).toMatch(/^ERR BAD_QUEUE_NAME \S/);
    expect((await c.request(`LEN ${ok255}\r\n`)).line).toBe('OK 0');
    // An empty name cannot be written as a token: it reads as a missing argument.
    expect((await c.request('LEN \r\n')).line).toMatch(/^ERR BAD_ARGS \S/);
    expect((await c.request(Buffer.from('LEN a\x01b\r\n', 'latin1'))).line).toMatch(/^ERR BAD_QUEUE_NAME \S/);
    expect((await c.request(Buffer.from('GET a\x7fb\r\n', 'latin1'))).line).toMatch(/^ERR BAD_QUEUE_NAME \S/);
    // A payload that looks like a request must be skipped, not run.
    await c.send(Buffer.concat([put(long, 'PING\r\nPING'), put('a\x02b', 'x'), Buffer.from('PING\r\n')]));
    expect((await c.next()).line).toMatch(/^ERR BAD_QUEUE_NAME \S/);
    expect((await c.next()).line).toMatch(/^ERR BAD_QUEUE_NAME \S/);
    expect(await c.line()).toBe('PONG');
    expect(c.available()).toBe(0);
    // UTF-8 names are allowed.
    expect((await c.request(put('café-ünï', 'ok'))).line).toBe('OK 2');
    expect((await c.request('GET café-ünï\r\n')).payload!.toString()).toBe('ok');
    c.destroy();
    await witnessStillServed();
  });

  it('LINE_TOO_LONG closes the connection, with or without a line end', async () => {
    for (const tail of ['', '\r\n']) {
      const w = await Wire.connect(server.port);
      w.send('GET ' + 'x'.repeat(2000) + tail);
      expect(await w.line()).toMatch(/^ERR LINE_TOO_LONG \S/);
      await w.closedByServer();
    }
    await witnessStillServed();
  });

  it('BAD_FRAME when a payload is not followed by a line end: ERR then close', async () => {
    const w = await Wire.connect(server.port);
    w.send('PUT bf 3\r\nabcdPING\r\n');
    expect(await w.line()).toMatch(/^ERR BAD_FRAME \S/);
    await w.closedByServer();
    await witnessStillServed();
  });

  it('NOT_SUBSCRIBED and ALREADY_SUBSCRIBED', async () => {
    const c = await Client.connect(server.port);
    expect((await c.request('CREDIT nosub 1\r\n')).line).toMatch(/^ERR NOT_SUBSCRIBED \S/);
    expect((await c.request('OFF nosub\r\n')).line).toMatch(/^ERR NOT_SUBSCRIBED \S/);
    expect((await c.request('ON twice CREDIT 0\r\n')).line).toBe('OK');
    expect((await c.request('ON twice\r\n')).line).toMatch(/^ERR ALREADY_SUBSCRIBED \S/);
    expect((await c.request('OFF twice\r\n')).line).toBe('OK');
    expect((await c.request('OFF twice\r\n')).line).toMatch(/^ERR NOT_SUBSCRIBED \S/);
    expect((await c.request('PING\r\n')).line).toBe('PONG');
    c.destroy();
  });

  it('CREDIT saturates at 4294967295', async () => {
    const c = await Client.connect(server.port);
    expect((await c.request('ON sat CREDIT 4294967295\r\n')).line).toBe('OK');
    expect((await c.request('CREDIT sat 10\r\n')).line).toBe('OK 4294967295');
    c.destroy();
  });
});

// Wire transcripts of at-least-once delivery (docs/PROTOCOL.md, "At-least-once
// delivery: leases") against a real beuss-server process, over raw sockets.
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server';
import { Wire } from '../helpers/wire';

const server = useServer({ args: ['--max-deliver', '3'], cleanExit: true });

/** Reads a `DATA` reply and returns its document. */
async function data(w: Wire): Promise<string> {
  const head = await w.line();
  const m = /^DATA (\d+)$/.exec(head);
  expect(m, head).not.toBeNull();
  return (await w.payload(Number(m![1]))).toString('latin1');
}

describe('leases over the wire', () => {
  it('runs the transcript of PROTOCOL.md', async () => {
    const w = await Wire.connect(server.port);
    w.send('PUT jobs 5\r\nhello\r\nGET jobs LEASE 30000\r\n');
    expect(await w.line()).toBe('OK 5');
    const first = await w.line();
    const m = /^MSG 5 (\d+) 1$/.exec(first);
    expect(m, first).not.toBeNull();
    const id1 = Number(m![1]);
    expect((await w.payload(5)).toString()).toBe('hello');
    w.send(`NACK ${id1}\r\nGET jobs LEASE 30000 MAXDELIVER 2\r\n`);
    expect(await w.line()).toBe('OK');
    const id2 = id1 + 1;
    expect(await w.line()).toBe(`MSG 5 ${id2} 2`);
    expect((await w.payload(5)).toString()).toBe('hello');
    w.send(`TOUCH ${id2} 60000\r\nNACK ${id2}\r\nLEN jobs.dead\r\nACK ${id2}\r\n`);
    expect(await w.line()).toBe('OK');
    expect(await w.line()).toBe('OK');
    expect(await w.line()).toBe('OK 1');
    expect(await w.line()).toMatch(/^ERR UNKNOWN_LEASE \S/);
    w.send('ON jobs CREDIT 10 LEASE 30000\r\nPUT jobs 3\r\nabc\r\n');
    expect(await w.line()).toBe('OK');
    expect(await w.line()).toBe(`PUSH jobs 3 ${id2 + 1} 1`);
    expect((await w.payload(3)).toString()).toBe('abc');
    expect(await w.line()).toBe('OK 3');
    w.send(`ACK ${id2 + 1}\r\nSTATS jobs\r\nQUEUES\r\n`);
    expect(await w.line()).toBe('OK');
    expect(await data(w)).toBe(
      'ready 0\nconsumers 1\nleased 0\nscheduled 0\ndead 1\nwaiting 0\nbytes 0\ndead_queue jobs.dead\n',
    );
    const queues = await data(w);
    expect(queues).toContain('jobs 0 1 0 0 1\n');
    expect(queues).toContain('jobs.dead 1 0 0 0 0\n');
    w.end();
  });

  it('gives a closed connection\'s leases to another consumer, first ones first, ahead of newer messages', async () => {
    const a = await Wire.connect(server.port);
    const b = await Wire.connect(server.port);
    a.send('PUT q1 1\r\n1\r\nPUT q1 1\r\n2\r\nGET q1 LEASE 60000\r\nGET q1 LEASE 60000\r\nPUT q1 1\r\n3\r\n');
    for (const want of ['OK 1', 'OK 1']) expect(await a.line()).toBe(want);
    expect(await a.line()).toMatch(/^MSG 1 \d+ 1$/);
    await a.payload(1);
    expect(await a.line()).toMatch(/^MSG 1 \d+ 1$/);
    await a.payload(1);
    expect(await a.line()).toBe('OK 1');
    a.end();
    b.send('GET q1 WAIT 5000 LEASE 1000\r\nGET q1 WAIT 5000 LEASE 1000\r\nGET q1\r\n');
    expect(await b.line()).toMatch(/^MSG 1 \d+ 2$/);
    expect((await b.payload(1)).toString()).toBe('1');
    expect(await b.line()).toMatch(/^MSG 1 \d+ 2$/);
    expect((await b.payload(1)).toString()).toBe('2');
    expect(await b.line()).toBe('MSG 1');
    expect((await b.payload(1)).toString()).toBe('3');
    b.end();
  });

  it('uses the server\'s --max-deliver by default and reports the lease counters in STATS', async () => {
    const w = await Wire.connect(server.port);
    w.send('PUT md 1\r\nx\r\n');
    expect(await w.line()).toBe('OK 1');
    for (let i = 1; i <= 3; i++) {
      w.send('GET md LEASE 60000\r\n');
      const m = /^MSG 1 (\d+) (\d+)$/.exec(await w.line());
      expect(m).not.toBeNull();
      expect(Number(m![2])).toBe(i);
      await w.payload(1);
      w.send(`NACK ${m![1]}\r\n`);
      expect(await w.line()).toBe('OK');
    }
    w.send('LEN md\r\nLEN md.dead\r\nSTATS\r\n');
    expect(await w.line()).toBe('OK 0');
    expect(await w.line()).toBe('OK 1');
    const stats = await data(w);
    expect(stats).toMatch(/\nmax_deliver 3\n/);
    expect(stats).toMatch(/\nnacked \d+\n/);
    expect(stats).toMatch(/\ndead_lettered [1-9]\d*\n/);
    w.end();
  });

  it('refuses bad lease options and foreign ids, and keeps the connection', async () => {
    const a = await Wire.connect(server.port);
    const b = await Wire.connect(server.port);
    a.send('PUT f 1\r\nz\r\nGET f LEASE 60000\r\n');
    expect(await a.line()).toBe('OK 1');
    const id = /^MSG 1 (\d+) 1$/.exec(await a.line())![1];
    await a.payload(1);
    b.send(`ACK ${id}\r\nNACK ${id}\r\nTOUCH ${id}\r\nGET f LEASE 0\r\nGET f MAXDELIVER 2\r\nACK -1\r\nPING\r\n`);
    for (let i = 0; i < 3; i++) expect(await b.line()).toMatch(/^ERR UNKNOWN_LEASE \S/);
    expect(await b.line()).toMatch(/^ERR BAD_ARGS LEASE/);
    expect(await b.line()).toMatch(/^ERR BAD_ARGS MAXDELIVER needs LEASE/);
    expect(await b.line()).toMatch(/^ERR BAD_NUMBER /);
    expect(await b.line()).toBe('PONG');
    a.send(`ACK ${id}\r\n`);
    expect(await a.line()).toBe('OK');
    a.end();
    b.end();
  });
});

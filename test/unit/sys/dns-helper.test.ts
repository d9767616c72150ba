/**
 * The name server of user networks (native/dns.c), run for real on loopback:
 * 127.0.0.1 and 127.0.0.2 stand in for two networks' gateways, and a dgram
 * socket in this file for the host's resolver, answering every query with
 * 192.0.2.55. Queries are hand-built packets, so the test sees IDs, flags
 * and counts as they are on the wire.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../../../src/sys/native-paths.ts';
import { tempDir } from '../../support/temp.ts';

const A = 1;
const PTR = 12;
const AAAA = 28;
const UPSTREAM_IP = '192.0.2.55';

function encodeName(name: string): Buffer {
  const labels = name.split('.').filter((l) => l !== '');
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0]),
  ]);
}

function query(id: number, name: string, type = A): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x0100, 2); // RD
  head.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2); // IN
  return Buffer.concat([head, encodeName(name), tail]);
}

/** Reads a name at `off` (compression followed); returns it and the offset after it in place. */
function readName(m: Buffer, off: number): [string, number] {
  const labels: string[] = [];
  let end = -1;
  for (let hops = 0; hops < 64; hops++) {
    const l = m.readUInt8(off);
    if (l >= 0xc0) {
      if (end < 0) end = off + 2;
      off = m.readUInt16BE(off) & 0x3fff;
    } else if (l === 0) {
      return [labels.join('.'), end < 0 ? off + 1 : end];
    } else {
      labels.push(m.toString('latin1', off + 1, off + 1 + l));
      off += 1 + l;
    }
  }
  throw new Error('compression loop');
}

interface Reply {
  id: number;
  flags: number;
  rcode: number;
  answers: string[]; // A: dotted address, PTR: name
}

function parse(m: Buffer): Reply {
  const flags = m.readUInt16BE(2);
  let off = 12;
  for (let i = 0; i < m.readUInt16BE(4); i++) off = readName(m, off)[1] + 4;
  const answers: string[] = [];
  for (let i = 0; i < m.readUInt16BE(6); i++) {
    off = readName(m, off)[1];
    const type = m.readUInt16BE(off);
    const len = m.readUInt16BE(off + 8);
    const data = off + 10;
    if (type === A) answers.push([...m.subarray(data, data + 4)].join('.'));
    if (type === PTR) answers.push(readName(m, data)[0]);
    if (type === AAAA) answers.push(m.subarray(data, data + 16).toString('hex'));
    off = data + len;
  }
  return { id: m.readUInt16BE(0), flags, rcode: flags & 0xf, answers };
}

/** A reply from the stand-in resolver: the question, and one A record. */
function upstreamReply(q: Buffer): Buffer {
  const qend = readName(q, 12)[1] + 4;
  const r = Buffer.concat([
    q.subarray(0, qend),
    Buffer.from([0xc0, 12, 0, A, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 55]),
  ]);
  r.writeUInt16BE(0x8180, 2);
  r.writeUInt16BE(1, 6);
  r.writeUInt16BE(0, 10); // whatever EDNS the query had is not echoed
  return r;
}

async function udp(addr: string, packet: Buffer, timeoutMs = 3000): Promise<Buffer | undefined> {
  const s = createSocket('udp4');
  try {
    const got = once(s, 'message');
    s.send(packet, port, addr);
    const timer = new Promise<undefined>((resolve) =>
      setTimeout(() => resolve(undefined), timeoutMs).unref(),
    );
    const r = await Promise.race([got, timer]);
    return r?.[0] as Buffer | undefined;
  } finally {
    s.close();
  }
}

async function ask(addr: string, name: string, type = A, id = 0x1234): Promise<Reply> {
  const m = await udp(addr, query(id, name, type));
  assert.ok(m, `no reply for ${name} at ${addr}`);
  return parse(m);
}

async function tcp(addr: string, packets: Buffer[]): Promise<Reply[]> {
  const sock = connect(port, addr);
  await once(sock, 'connect');
  for (const p of packets) {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(p.length);
    sock.write(Buffer.concat([len, p]));
  }
  let buf = Buffer.alloc(0);
  const replies: Reply[] = [];
  for await (const chunk of sock) {
    buf = Buffer.concat([buf, chunk as Buffer]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      replies.push(parse(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      buf = buf.subarray(2 + buf.readUInt16BE(0));
    }
    if (replies.length === packets.length) break;
  }
  sock.destroy();
  return replies;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const p = (srv.address() as { port: number }).port;
  srv.close();
  return p;
}

const dir = tempDir('dns-helper-');
const records = join(dir, 'records');
let port = 0;
let helper: ChildProcess | undefined;
let upstream: Socket | undefined;
let stderr = '';

writeFileSync(
  records,
  [
    '# network a',
    'listen 127.0.0.1',
    'host 127.0.0.1 web 10.88.0.2',
    'host 127.0.0.1 web 10.88.0.3',
    'host 127.0.0.1 web-alias 10.88.0.2',
    'host 127.0.0.1 db.Example 10.88.0.4',
    'host 127.0.0.1 db.Example fd00:88::4',
    '',
    'some-future-line with words',
    '# network b',
    'listen 127.0.0.2',
    'host 127.0.0.2 other 10.89.0.2',
    '# not an address of this host: no listener yet, but no failure either',
    'listen 192.0.2.1',
    '# an internal network',
    'listen 127.0.0.4 internal',
    'host 127.0.0.4 inner 10.90.0.2',
    '',
  ].join('\n'),
);

before(async () => {
  upstream = createSocket('udp4');
  upstream.on('message', (q, from) => upstream?.send(upstreamReply(q), from.port, from.address));
  upstream.bind(0, '127.0.0.1');
  await once(upstream, 'listening');
  port = await freePort();
  const bin = join(packageRoot(), 'native/build/hutch-dns');
  helper = spawn(bin, ['--port', String(port), records, `127.0.0.1:${upstream.address().port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  helper.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const [line] = (await once(helper.stdout ?? assert.fail('no stdout'), 'data')) as [Buffer];
  assert.equal(line.toString(), 'ready\n');
});

after(async () => {
  upstream?.close();
  if (helper?.pid !== undefined && helper.exitCode === null) {
    const exited = once(helper, 'exit');
    process.kill(helper.pid, 'SIGTERM');
    await exited;
  }
});

describe('hutch-dns', () => {
  it('answers a local name with all its addresses, authoritatively, TTL 0', async () => {
    const m = await udp('127.0.0.1', query(0x4242, 'web'));
    assert.ok(m);
    const r = parse(m);
    assert.equal(r.id, 0x4242);
    assert.equal(r.rcode, 0);
    assert.equal(r.flags & 0x8580, 0x8580); // QR, AA, RD, RA
    assert.deepEqual(r.answers.sort(), ['10.88.0.2', '10.88.0.3']);
    assert.equal(m.readUInt32BE(m.length - 10), 0); // the last answer's TTL
  });

  it('starts even when a listen address is not there yet, and says so', () => {
    assert.match(stderr, /listen on 192\.0\.2\.1 port \d+: .*tried again on reload/);
  });

  it('knows aliases, any case, with or without the trailing dot', async () => {
    assert.deepEqual((await ask('127.0.0.1', 'web-alias')).answers, ['10.88.0.2']);
    assert.deepEqual((await ask('127.0.0.1', 'WEB-Alias.')).answers, ['10.88.0.2']);
    assert.deepEqual((await ask('127.0.0.1', 'DB.example.')).answers, ['10.88.0.4']);
  });

  it("forwards another network's name instead of answering it", async () => {
    assert.deepEqual((await ask('127.0.0.2', 'other')).answers, ['10.89.0.2']);
    assert.deepEqual((await ask('127.0.0.1', 'other')).answers, [UPSTREAM_IP]);
    assert.deepEqual((await ask('127.0.0.2', 'web')).answers, [UPSTREAM_IP]);
  });

  it("forwards unknown names and returns the reply under the client's ID", async () => {
    const r = await ask('127.0.0.1', 'example.org', A, 0xbeef);
    assert.equal(r.id, 0xbeef);
    assert.equal(r.rcode, 0);
    assert.deepEqual(r.answers, [UPSTREAM_IP]);
  });

  it('answers the names of an internal network and forwards nothing: NXDOMAIN for the rest', async () => {
    assert.deepEqual((await ask('127.0.0.4', 'inner')).answers, ['10.90.0.2']);
    const r = await ask('127.0.0.4', 'example.org', A, 0x1234);
    assert.equal(r.id, 0x1234);
    assert.equal(r.rcode, 3);
    assert.deepEqual(r.answers, []);
    assert.deepEqual(
      (await ask('127.0.0.1', 'example.org')).answers,
      [UPSTREAM_IP],
      'other networks still forward',
    );
  });

  it('answers AAAA for a name with an IPv6 address, and A with its IPv4 one only', async () => {
    assert.deepEqual((await ask('127.0.0.1', 'db.example', AAAA)).answers, [
      'fd000088000000000000000000000004',
    ]);
    assert.deepEqual((await ask('127.0.0.1', 'db.example')).answers, ['10.88.0.4']);
  });

  it('gives NODATA for other types of a local name', async () => {
    const r = await ask('127.0.0.1', 'web', AAAA);
    assert.equal(r.rcode, 0);
    assert.equal(r.flags & 0x0400, 0x0400);
    assert.deepEqual(r.answers, []);
  });

  it("answers PTR for a local address with the address's first name", async () => {
    assert.deepEqual((await ask('127.0.0.1', '2.0.88.10.in-addr.arpa', PTR)).answers, ['web']);
    assert.deepEqual((await ask('127.0.0.2', '2.0.89.10.in-addr.arpa', PTR)).answers, ['other']);
  });

  it('answers over TCP, several queries on one connection', async () => {
    const [local, fwd] = await tcp('127.0.0.1', [query(7, 'web-alias'), query(8, 'example.com')]);
    assert.deepEqual(local, { id: 7, flags: local?.flags, rcode: 0, answers: ['10.88.0.2'] });
    assert.deepEqual(fwd, { id: 8, flags: fwd?.flags, rcode: 0, answers: [UPSTREAM_IP] });
  });

  it('re-reads the records on SIGHUP', async () => {
    writeFileSync(
      records,
      [
        'listen 127.0.0.1',
        'host 127.0.0.1 fresh 10.88.0.9',
        'listen 127.0.0.3',
        'host 127.0.0.3 third 10.90.0.2',
        '',
      ].join('\n'),
    );
    process.kill(helper?.pid ?? assert.fail('no helper'), 'SIGHUP');
    let r = await ask('127.0.0.1', 'fresh');
    for (let i = 0; i < 50 && r.answers[0] !== '10.88.0.9'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      r = await ask('127.0.0.1', 'fresh');
    }
    assert.deepEqual(r.answers, ['10.88.0.9']);
    assert.deepEqual((await ask('127.0.0.1', 'web')).answers, [UPSTREAM_IP]);
    assert.deepEqual((await ask('127.0.0.3', 'third')).answers, ['10.90.0.2']);
    assert.equal(await udp('127.0.0.2', query(1, 'other'), 300), undefined, '127.0.0.2 is no longer served');
  });

  it('survives garbage and truncated packets', async () => {
    const s = createSocket('udp4');
    const good = query(9, 'fresh');
    const bad = [
      Buffer.alloc(0),
      Buffer.from([1]),
      good.subarray(0, 11),
      good.subarray(0, 14),
      good.subarray(0, good.length - 1),
      Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]), // a pointer to itself
      Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 1, 2]), // a label past the end
      ...Array.from({ length: 200 }, (_, i) => randomBytes(i % 2 ? 12 + (i % 40) : i * 3)),
    ];
    for (const b of bad) s.send(b, port, '127.0.0.1');
    await new Promise((resolve) => setTimeout(resolve, 100));
    s.close();
    const sock = connect(port, '127.0.0.1');
    await once(sock, 'connect');
    sock.end(Buffer.from([0, 40, 1, 2, 3])); // a TCP query cut short
    await once(sock, 'close');
    assert.deepEqual((await ask('127.0.0.1', 'fresh')).answers, ['10.88.0.9']);
    assert.equal(helper?.exitCode, null);
  });

  it('answers SERVFAIL when the upstream does not answer', async () => {
    upstream?.close();
    upstream = undefined;
    const start = Date.now();
    const m = await udp('127.0.0.1', query(0x5151, 'example.net'), 5000);
    assert.ok(m, 'no reply within 5 s');
    const r = parse(m);
    assert.equal(r.id, 0x5151);
    assert.equal(r.rcode, 2);
    assert.ok(Date.now() - start >= 1500, 'SERVFAIL only after the upstream had its time');
  });
});

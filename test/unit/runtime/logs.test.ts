import assert from 'node:assert/strict';
import {
  appendFileSync,
  closeSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { spawn } from 'node:child_process';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  formatEntry,
  parseLogLine,
  parseTimeFilter,
  readLogs,
  toStreams,
  writeLogs,
  type LogEntry,
  type ReadLogsOptions,
} from '../../../src/runtime/logs.ts';
import { findTailStart, TAIL_CHUNK } from '../../../src/runtime/logs/tail.ts';
import { isHutchError } from '../../../src/util/errors.ts';
import { which } from '../../../src/util/which.ts';

let dir: string;
let fileNo = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hutch-logs-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function logFile(content: string | Buffer = ''): string {
  const path = join(dir, `ctr-${++fileNo}.log`);
  writeFileSync(path, content);
  return path;
}

/** A record as conmon writes it: P content gets a newline added, F content ends with its own. */
function rec(time: string, stream: string, tag: 'F' | 'P', content: string): string {
  return `${time} ${stream} ${tag} ${content}\n`;
}

/** conmon's timestamp under TZ=UTC: nine digits, +00:00 (never Z). */
function at(i: number): string {
  const seconds = Math.floor(i / 1000);
  const d = new Date(Date.UTC(2026, 10, 22, 8, 0, 0) + seconds * 1000).toISOString().slice(0, 19);
  return `${d}.${String((i % 1000) * 1000).padStart(9, '0')}+00:00`;
}

async function all(path: string, opts: ReadLogsOptions = {}): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of readLogs(path, opts)) out.push(e);
  return out;
}

const texts = (entries: LogEntry[]): string[] => entries.map((e) => e.text);

// A test that fails while its follower runs must not leave it running (the run would never end).
let stopFollowers = new AbortController();
afterEach(() => {
  stopFollowers.abort();
  stopFollowers = new AbortController();
});

/** Reads in the background, so a test can write while a follower runs. */
function follow(path: string, opts: ReadLogsOptions) {
  const got: LogEntry[] = [];
  // A follower that never ends fails its test instead of hanging the run.
  const deadline = AbortSignal.timeout(15_000);
  const signal = AbortSignal.any([deadline, stopFollowers.signal, ...(opts.signal ? [opts.signal] : [])]);
  const done = (async () => {
    for await (const e of readLogs(path, { follow: true, pollMs: 20, ...opts, signal })) got.push(e);
    if (deadline.aborted) assert.fail('the follower did not end within 15 s');
  })();
  return { got, done };
}

async function eventually(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// Recorded from conmon 2.1.6 under TZ=America/New_York, running
//   echo hello; printf "no newline"; sleep 0.2; echo " continued"; echo oops >&2;
//   head -c 20000 /dev/zero | tr "\0" x; echo
// The 20000 x's arrived in reads of 8192, 4096, 4096 and 3616 bytes, then the newline alone.
const REAL_SAMPLE =
  '2026-11-22T04:00:34.720047452-05:00 stdout F hello\n' +
  '2026-11-22T04:00:34.721697193-05:00 stdout P no newline\n' +
  '2026-11-22T04:00:34.924122281-05:00 stdout F  continued\n' +
  '2026-11-22T04:00:34.924147717-05:00 stderr F oops\n' +
  `2026-11-22T04:00:34.924234921-05:00 stdout P ${'x'.repeat(8192)}\n` +
  `2026-11-22T04:00:34.924266930-05:00 stdout P ${'x'.repeat(4096)}\n` +
  `2026-11-22T04:00:34.924298109-05:00 stdout P ${'x'.repeat(4096)}\n` +
  `2026-11-22T04:00:34.924323939-05:00 stdout P ${'x'.repeat(3616)}\n` +
  '2026-11-22T04:00:34.924424249-05:00 stdout F \n' +
  '2026-11-22T04:00:34.924438376-05:00 stdout F line-1\n';

describe('parseLogLine', () => {
  it('reads a conmon record, keeping every nanosecond and the zone offset', () => {
    const r = parseLogLine('2026-11-22T04:00:34.721697193-05:00 stdout P no newline');
    assert.deepEqual(r, {
      time: { iso: '2026-11-22T04:00:34.721697193-05:00', ns: 1795338034721697193n },
      stream: 'stdout',
      partial: true,
      text: 'no newline',
    });
    // The same instant in UTC.
    assert.equal(parseLogLine('2026-11-22T09:00:34.721697193Z stdout F x')?.time.ns, 1795338034721697193n);
    assert.equal(
      parseLogLine('2026-11-22T14:30:34.721697193+05:30 stdout F x')?.time.ns,
      1795338034721697193n,
    );
  });

  it('keeps content exactly: leading spaces, carriage returns, a trailing newline dropped', () => {
    assert.equal(
      parseLogLine('2026-11-22T04:00:34.924122281-05:00 stdout F  continued\n')?.text,
      ' continued',
    );
    assert.equal(parseLogLine('2026-11-22T04:00:34.924122281-05:00 stderr F a\r')?.text, 'a\r');
    assert.equal(parseLogLine('2026-11-22T04:00:34.924424249-05:00 stdout F ')?.text, '');
    assert.equal(parseLogLine('2026-11-22T04:00:34.924424249-05:00 stdout F')?.text, '');
    assert.equal(parseLogLine('2026-11-22T04:00:34.924424249-05:00 stderr F é ü')?.stream, 'stderr');
  });

  it('refuses malformed lines', () => {
    for (const bad of [
      '',
      'hello world',
      '2026-11-22T04:00:34.7-05:00 stdin F x',
      '2026-11-22T04:00:34.7-05:00 stdout X x',
      '2026-11-22T04:00:34.7-05:00 stdout Fx',
      '2026-11-22T04:00:34.7 stdout F no zone',
      '2026-02-30T04:00:34.7Z stdout F no such day',
      '2026-11-22T24:00:34.7Z stdout F no such hour',
      '2026-11-22T04:00:34.7+25:00 stdout F no such offset',
      '2026-11-22T04:00:34.1234567890Z stdout F ten digits',
    ]) {
      assert.equal(parseLogLine(bad), undefined, bad);
    }
  });
});

describe('readLogs', () => {
  it('joins P pieces to their F and keeps stdout and stderr apart (a real conmon log)', async () => {
    const got = await all(logFile(REAL_SAMPLE));
    assert.deepEqual(
      got.map((e) => [e.stream, e.text.length > 40 ? `${e.text.length} chars` : e.text]),
      [
        ['stdout', 'hello\n'],
        ['stdout', 'no newline continued\n'],
        ['stderr', 'oops\n'],
        ['stdout', '20001 chars'],
        ['stdout', 'line-1\n'],
      ],
    );
    assert.equal(got[3]!.text, `${'x'.repeat(20000)}\n`);
    // A joined line takes the time of its F, in UTC.
    assert.equal(got[1]!.iso, '2026-11-22T09:00:34.924122281Z');
    assert.equal(got[1]!.ns, 1795338034924122281n);
  });

  it("joins a stream's pieces across records of the other stream", async () => {
    const path = logFile(
      rec(at(1), 'stdout', 'P', 'progress') +
        rec(at(2), 'stderr', 'P', 'warn') +
        rec(at(3), 'stderr', 'F', 'ing') +
        rec(at(4), 'stdout', 'P', '...') +
        rec(at(5), 'stdout', 'F', 'done'),
    );
    const got = await all(path);
    assert.deepEqual(
      got.map((e) => [e.stream, e.text]),
      [
        ['stderr', 'warning\n'],
        ['stdout', 'progress...done\n'],
      ],
    );
  });

  it('rejoins a UTF-8 character that a read boundary cut in two', async () => {
    const euro = Buffer.from('€', 'utf8');
    const path = logFile(
      Buffer.concat([
        Buffer.from(`${at(1)} stdout P price: `),
        euro.subarray(0, 1),
        Buffer.from(`\n${at(2)} stdout F `),
        euro.subarray(1),
        Buffer.from('5\n'),
      ]),
    );
    assert.deepEqual(texts(await all(path)), ['price: €5\n']);
  });

  it('shows an unfinished last line without a newline, and skips malformed lines', async () => {
    const path = logFile(
      'garbage\n' +
        '\n' +
        rec(at(1), 'stdout', 'F', 'one') +
        'stdout F not a record\n' +
        rec('2026-11-22 08:00:00', 'stdout', 'F', 'bad time') +
        rec(at(2), 'stdin', 'F', 'bad stream') +
        rec(at(3), 'stderr', 'P', 'Password: ') +
        rec(at(4), 'stdout', 'F', 'two'),
    );
    assert.deepEqual(
      (await all(path)).map((e) => [e.stream, e.text]),
      [
        ['stdout', 'one\n'],
        ['stdout', 'two\n'],
        ['stderr', 'Password: '],
      ],
    );
  });

  it('reads a last record cut short of its newline', async () => {
    const path = logFile(rec(at(1), 'stdout', 'F', 'one') + `${at(2)} stdout F two`);
    assert.deepEqual(texts(await all(path)), ['one\n', 'two\n']);
  });

  it('yields nothing for a missing file', async () => {
    assert.deepEqual(await all(join(dir, 'no-such.log')), []);
    assert.deepEqual(await all(join(dir, 'no-such.log'), { tail: 3 }), []);
  });
});

describe('readLogs --tail', () => {
  // 40000 lines, about 2.4 MB: many times the backwards scan's chunk.
  let big: string;
  let bigSize: number;
  before(() => {
    const parts: string[] = [];
    for (let i = 0; i < 40000; i++)
      parts.push(rec(at(i), i % 7 === 0 ? 'stderr' : 'stdout', 'F', `line ${i}`));
    const text = parts.join('');
    bigSize = Buffer.byteLength(text);
    assert.ok(bigSize > 20 * TAIL_CHUNK);
    big = logFile(text);
  });

  it('gives the last N lines of a file larger than the chunk', async () => {
    const got = await all(big, { tail: 3 });
    assert.deepEqual(texts(got), ['line 39997\n', 'line 39998\n', 'line 39999\n']);
    // Every seventh line went to stderr.
    assert.deepEqual(
      got.map((e) => e.stream),
      ['stdout', 'stderr', 'stdout'],
    );
  });

  it('reads only the end of the file', async () => {
    const fh = await open(big, 'r');
    try {
      const start = await findTailStart(fh, bigSize, 3);
      // Three records of about 60 bytes, and the F before them to know they are whole.
      assert.ok(bigSize - start < 200, `started ${bigSize - start} bytes before the end`);
    } finally {
      await fh.close();
    }
  });

  it('gives every line when N is larger than the file, and none for 0', async () => {
    const path = logFile(rec(at(1), 'stdout', 'F', 'a') + rec(at(2), 'stderr', 'F', 'b'));
    assert.deepEqual(texts(await all(path, { tail: 10 })), ['a\n', 'b\n']);
    assert.deepEqual(texts(await all(path, { tail: -1 })), ['a\n', 'b\n']);
    assert.deepEqual(await all(path, { tail: 0 }), []);
  });

  it("finds a line's pieces behind the other stream's records", async () => {
    const path = logFile(
      rec(at(1), 'stdout', 'F', 'old') +
        rec(at(2), 'stdout', 'P', 'progress') +
        rec(at(3), 'stderr', 'F', 'warning') +
        rec(at(4), 'stdout', 'P', '...') +
        rec(at(5), 'stdout', 'F', 'done'),
    );
    assert.deepEqual(texts(await all(path, { tail: 1 })), ['progress...done\n']);
    assert.deepEqual(texts(await all(path, { tail: 2 })), ['warning\n', 'progress...done\n']);
    assert.deepEqual(texts(await all(path, { tail: 3 })), ['old\n', 'warning\n', 'progress...done\n']);
  });

  it('counts an unfinished last line as the last line', async () => {
    const path = logFile(
      rec(at(1), 'stdout', 'F', 'a') +
        rec(at(2), 'stdout', 'F', 'b') +
        rec(at(3), 'stdout', 'P', 'Continue? ') +
        rec(at(4), 'stdout', 'P', '[y/N] '),
    );
    assert.deepEqual(texts(await all(path, { tail: 2 })), ['b\n', 'Continue? [y/N] ']);
  });

  it('agrees with reading everything, on random logs with pieces across chunk boundaries', async () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 12; round++) {
      let text = '';
      let i = 0;
      while (text.length < 3 * TAIL_CHUNK) {
        const stream = random(3) === 0 ? 'stderr' : 'stdout';
        const size = random(10) === 0 ? 9000 : random(120);
        text += rec(at(i++), stream, random(3) === 0 ? 'P' : 'F', String(i % 10).repeat(size));
      }
      const path = logFile(text);
      const everything = await all(path);
      for (const n of [1, 2, 5, 37, 400, everything.length, everything.length + 1]) {
        assert.deepEqual(await all(path, { tail: n }), everything.slice(-n), `round ${round}, tail ${n}`);
      }
    }
  });
});

describe('parseTimeFilter', () => {
  // 2026-11-22T08:58:12.123456789Z
  const NS = 1795337892123456789n;
  const NOW = 1795337892000; // ms

  it('reads RFC 3339 times with a zone', () => {
    assert.equal(parseTimeFilter('2026-11-22T08:58:12.123456789Z'), NS);
    assert.equal(parseTimeFilter('2026-11-22T09:58:12.123456789+01:00'), NS);
    assert.equal(parseTimeFilter('2026-11-22T08:58:12Z'), NS - 123456789n);
    assert.equal(parseTimeFilter('2026-11-22T08:58:12.5Z'), NS - 123456789n + 500000000n);
    assert.equal(parseTimeFilter('2026-11-22T08:58Z'), NS - 12123456789n);
    assert.equal(parseTimeFilter('2026-11-22Z'), 1795305600000000000n);
    assert.equal(parseTimeFilter('2026-11-22+01:00'), 1795305600000000000n - 3600000000000n);
  });

  it('reads times without a zone as local time', () => {
    const saved = process.env.TZ;
    process.env.TZ = 'Asia/Kolkata'; // +05:30 all year
    try {
      assert.equal(parseTimeFilter('2026-11-22T14:28:12.123456789'), NS);
      assert.equal(parseTimeFilter('2026-11-22T14:28:12'), NS - 123456789n);
      assert.equal(parseTimeFilter('2026-11-22T14'), NS - (28n * 60n + 12n) * 1_000_000_000n - 123456789n);
      assert.equal(parseTimeFilter('2026-11-22'), 1795305600000000000n - 19800000000000n);
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('reads Unix timestamps with an optional fraction', () => {
    assert.equal(parseTimeFilter('1795337892'), 1795337892000000000n);
    assert.equal(parseTimeFilter('1795337892.123456789'), NS);
    assert.equal(parseTimeFilter('1700000000.5'), 1700000000500000000n);
    assert.equal(parseTimeFilter('0'), 0n);
  });

  it('reads Go durations as that long before now', () => {
    const now = BigInt(NOW) * 1_000_000n;
    const s = 1_000_000_000n;
    assert.equal(parseTimeFilter('45s', NOW), now - 45n * s);
    assert.equal(parseTimeFilter('10m', NOW), now - 600n * s);
    assert.equal(parseTimeFilter('1h30m', NOW), now - 5400n * s);
    assert.equal(parseTimeFilter('1.5h', NOW), now - 5400n * s);
    assert.equal(parseTimeFilter('2h45m30.5s', NOW), now - 9930n * s - s / 2n);
    assert.equal(parseTimeFilter('250ms', NOW), now - 250_000_000n);
    assert.equal(parseTimeFilter('3µs', NOW), now - 3000n);
    assert.equal(parseTimeFilter('7ns', NOW), now - 7n);
    assert.equal(parseTimeFilter('-5m', NOW), now + 300n * s);
    assert.equal(parseTimeFilter('.5m', NOW), now - 30n * s);
  });

  it('refuses anything else with BAD_FLAG, naming the value and the forms', () => {
    for (const bad of [
      '',
      'yesterday',
      '10x',
      '1h30',
      'h',
      '2026-13-01',
      '2026-02-29',
      '2026-11-22T25:00Z',
      '12:00',
      '-',
      '1.2.3',
      '2026-11-22 08:00',
    ]) {
      assert.throws(
        () => parseTimeFilter(bad),
        (e: unknown) =>
          isHutchError(e) &&
          e.code === 'BAD_FLAG' &&
          e.message.includes(JSON.stringify(bad)) &&
          /RFC 3339/.test(e.message) &&
          /Unix/.test(e.message) &&
          /duration/.test(e.message) &&
          /1h30m/.test(e.hint ?? ''),
        bad,
      );
    }
  });
});

describe('readLogs --since / --until', () => {
  const path = (): string =>
    logFile(
      rec('2026-11-22T08:00:00.000000000+00:00', 'stdout', 'F', '08:00') +
        rec('2026-11-22T03:30:00.000000000-05:00', 'stdout', 'F', '08:30') +
        rec('2026-11-22T09:00:00.000000000+00:00', 'stderr', 'F', '09:00') +
        rec('2026-11-22T09:30:00.000000001+00:00', 'stdout', 'F', '09:30'),
    );

  it('keeps lines from --since on, inclusive', async () => {
    const p = path();
    const since = parseTimeFilter('2026-11-22T08:30:00Z');
    assert.deepEqual(texts(await all(p, { since })), ['08:30\n', '09:00\n', '09:30\n']);
    assert.deepEqual(texts(await all(p, { since: parseTimeFilter('1795338000.000000001') })), ['09:30\n']);
  });

  it('stops after --until, inclusive', async () => {
    const p = path();
    assert.deepEqual(texts(await all(p, { until: parseTimeFilter('2026-11-22T09:00:00Z') })), [
      '08:00\n',
      '08:30\n',
      '09:00\n',
    ]);
    const now = Date.UTC(2026, 10, 22, 10, 0, 0);
    assert.deepEqual(
      texts(await all(p, { since: parseTimeFilter('1h45m', now), until: parseTimeFilter('60m', now) })),
      ['08:30\n', '09:00\n'],
    );
  });

  it('takes the tail first, then filters it by time, as docker does', async () => {
    const since = parseTimeFilter('2026-11-22T08:30:00+00:00');
    assert.deepEqual(texts(await all(path(), { tail: 2, since })), ['09:00\n', '09:30\n']);
    assert.deepEqual(texts(await all(path(), { tail: 2, since: parseTimeFilter('2026-11-22T09:10Z') })), [
      '09:30\n',
    ]);
  });
});

describe('readLogs --follow', () => {
  it('picks up appended lines and ends once the container stopped and the file is drained', async () => {
    const path = logFile(rec(at(1), 'stdout', 'F', 'first'));
    let running = true;
    const f = follow(path, { isRunning: () => running });
    await eventually('the first line', () => f.got.length === 1);
    appendFileSync(path, rec(at(2), 'stderr', 'F', 'second'));
    await eventually('the second line', () => f.got.length === 2);
    // A piece is held until its line is finished.
    appendFileSync(path, rec(at(3), 'stdout', 'P', 'thi'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(f.got.length, 2);
    appendFileSync(path, rec(at(4), 'stdout', 'F', 'rd'));
    await eventually('the joined line', () => f.got.length === 3);
    // Written just before the container is seen stopped: still read.
    appendFileSync(path, rec(at(5), 'stdout', 'F', 'last words') + rec(at(6), 'stdout', 'P', 'no newline'));
    running = false;
    await f.done;
    assert.deepEqual(
      f.got.map((e) => [e.stream, e.text]),
      [
        ['stdout', 'first\n'],
        ['stderr', 'second\n'],
        ['stdout', 'third\n'],
        ['stdout', 'last words\n'],
        ['stdout', 'no newline'],
      ],
    );
  });

  it('notices writes without polling (inotify on the directory)', async () => {
    const path = logFile(rec(at(1), 'stdout', 'F', 'a'));
    const controller = new AbortController();
    const f = follow(path, { signal: controller.signal, pollMs: 60_000 });
    await eventually('the first line', () => f.got.length === 1);
    appendFileSync(path, rec(at(2), 'stdout', 'F', 'b'));
    await eventually('the appended line', () => f.got.length === 2, 2000);
    controller.abort();
    await f.done;
  });

  it('shows the tail, then follows', async () => {
    const path = logFile(
      rec(at(1), 'stdout', 'F', 'a') + rec(at(2), 'stdout', 'F', 'b') + rec(at(3), 'stdout', 'F', 'c'),
    );
    let running = true;
    const f = follow(path, { tail: 1, isRunning: () => running });
    await eventually('the tail', () => f.got.length === 1);
    appendFileSync(path, rec(at(4), 'stdout', 'F', 'd'));
    await eventually('the new line', () => f.got.length === 2);
    running = false;
    await f.done;
    assert.deepEqual(texts(f.got), ['c\n', 'd\n']);
  });

  it("follows conmon's rotation: PATH.tmp renamed over PATH, the old file drained first", async () => {
    const path = logFile(rec(at(1), 'stdout', 'F', 'old 1'));
    let running = true;
    const f = follow(path, { isRunning: () => running });
    await eventually('the first line', () => f.got.length === 1);
    // As reopen_k8s_file: the last writes to the old file, then a fresh file renamed over it.
    const fd = openSync(path, 'a');
    writeSync(fd, rec(at(2), 'stdout', 'F', 'old 2') + rec(at(3), 'stdout', 'P', 'split '));
    closeSync(fd);
    writeFileSync(`${path}.tmp`, '');
    renameSync(`${path}.tmp`, path);
    appendFileSync(path, rec(at(4), 'stdout', 'F', 'across rotation') + rec(at(5), 'stdout', 'F', 'new 1'));
    await eventually('the lines of the new file', () => f.got.length === 4);
    // And a second rotation.
    writeFileSync(`${path}.tmp`, rec(at(6), 'stderr', 'F', 'newer 1'));
    renameSync(`${path}.tmp`, path);
    await eventually('the line of the newer file', () => f.got.length === 5);
    running = false;
    await f.done;
    assert.deepEqual(texts(f.got), ['old 1\n', 'old 2\n', 'split across rotation\n', 'new 1\n', 'newer 1\n']);
  });

  it('starts again from the beginning of a file truncated in place', async () => {
    const path = logFile(
      rec(at(1), 'stdout', 'F', 'a long line before truncation') + rec(at(2), 'stdout', 'F', 'b'),
    );
    let running = true;
    const f = follow(path, { isRunning: () => running });
    await eventually('the first lines', () => f.got.length === 2);
    truncateSync(path, 0);
    appendFileSync(path, rec(at(3), 'stdout', 'F', 'c'));
    await eventually('the line after truncation', () => f.got.length === 3);
    running = false;
    await f.done;
    assert.deepEqual(texts(f.got), ['a long line before truncation\n', 'b\n', 'c\n']);
  });

  it('waits for a file that does not exist yet', async () => {
    const path = join(dir, 'later.log');
    let running = true;
    const f = follow(path, { isRunning: () => running });
    await new Promise((r) => setTimeout(r, 60));
    writeFileSync(path, rec(at(1), 'stdout', 'F', 'hello'));
    await eventually('the line', () => f.got.length === 1);
    running = false;
    await f.done;
    assert.deepEqual(texts(f.got), ['hello\n']);
  });

  it('ends at once for a missing file of a stopped container', async () => {
    const f = follow(join(dir, 'never.log'), { isRunning: () => false });
    await f.done;
    assert.deepEqual(f.got, []);
  });

  it('ends when the signal aborts, while waiting for more', async () => {
    const path = logFile(rec(at(1), 'stdout', 'F', 'a') + rec(at(2), 'stdout', 'P', 'held'));
    const controller = new AbortController();
    const f = follow(path, { signal: controller.signal, pollMs: 60_000 });
    await eventually('the first line', () => f.got.length === 1);
    const t0 = Date.now();
    controller.abort();
    await f.done;
    assert.ok(Date.now() - t0 < 1000);
    // An abort does not print the held piece.
    assert.deepEqual(texts(f.got), ['a\n']);
  });

  it('ends after --until once the clock passes it', async () => {
    const path = logFile(rec(at(1), 'stdout', 'F', 'a'));
    const f = follow(path, { until: BigInt(Date.now() + 150) * 1_000_000n });
    await f.done;
    assert.deepEqual(texts(f.got), ['a\n']);
  });
});

describe('readLogs --follow with the real conmon', () => {
  const conmon = which('conmon');

  it(
    'follows a log that conmon rotates at --log-size-max',
    { skip: conmon ? false : 'conmon is not installed' },
    async () => {
      const work = mkdtempSync(join(dir, 'conmon-'));
      // A stand-in OCI runtime: `create` starts the "container" with conmon's pipes as its stdio.
      const runtime = join(work, 'runtime.sh');
      writeFileSync(
        runtime,
        '#!/bin/sh\n' +
          'while [ $# -gt 0 ]; do [ "$1" = --pid-file ] && pidfile=$2; shift; done\n' +
          'sh -c \'for i in $(seq 1 30); do echo "line $i"; [ $((i % 10)) = 0 ] && echo "err $i" >&2; sleep 0.02; done\' &\n' +
          'echo $! > "$pidfile"\n',
        { mode: 0o755 },
      );
      const path = join(work, 'ctr.log');
      const child = spawn(
        conmon!,
        [
          '--sync',
          ...[
            '--cid',
            'c0ffee00c0ffee00c0ffee00',
            '--cuuid',
            'c0ffee00c0ffee00c0ffee00',
            '--name',
            'logs-test',
          ],
          ...['--runtime', runtime, '--bundle', work, '--container-pidfile', join(work, 'pid')],
          ...['--exit-dir', work, '--socket-dir-path', work],
          ...['--log-path', `k8s-file:${path}`, '--log-size-max', '300'],
        ],
        { stdio: 'ignore' },
      );
      let running = true;
      child.on('exit', () => (running = false));
      const f = follow(path, { isRunning: () => running });
      try {
        await f.done;
      } finally {
        if (running) child.kill('SIGKILL');
      }
      const lines = texts(f.got);
      // Each rotation throws the old file away; a follower that keeps up loses
      // nothing, but a slow machine may miss a file, so ask only for order.
      const numbers = lines.filter((t) => t.startsWith('line ')).map((t) => Number(t.slice(5)));
      assert.deepEqual(
        numbers,
        [...numbers].sort((a, b) => a - b),
      );
      assert.equal(lines.filter((t) => t.startsWith('line ')).at(-1), 'line 30\n');
      assert.ok(numbers.length >= 20, `only ${numbers.length} of 30 lines`);
      assert.ok(
        lines.every((t) => /^(line|err) \d+\n$/.test(t)),
        lines.join(''),
      );
      assert.ok(f.got.some((e) => e.stream === 'stderr' && e.text === 'err 30\n'));
      // The file did rotate: it holds far fewer than the 33 lines written.
      const left = (await all(path)).length;
      assert.ok(left < 10, `${left} lines left in the file`);
    },
  );
});

describe('formatEntry', () => {
  it('prefixes docker-style RFC 3339 UTC timestamps with nine digits', async () => {
    const path = logFile(
      '2026-11-22T03:58:12.123456789-05:00 stdout F hello\n' +
        '2026-11-22T08:58:12.500000000+00:00 stderr F oops\n',
    );
    const [a, b] = await all(path);
    assert.equal(formatEntry(a!, true), '2026-11-22T08:58:12.123456789Z hello\n');
    assert.equal(formatEntry(b!, true), '2026-11-22T08:58:12.500000000Z oops\n');
    assert.equal(formatEntry(a!, false), 'hello\n');
  });
});

describe('writeLogs', () => {
  async function* entries(): AsyncGenerator<LogEntry> {
    const base = { iso: '2026-11-22T08:58:12.000000000Z', ns: 0n };
    yield { ...base, stream: 'stdout', text: 'one\n' };
    yield { ...base, stream: 'stderr', text: 'two\n' };
    yield { ...base, stream: 'stdout', text: 'three' };
  }

  it('sends each stream to its writer in order, one write at a time', async () => {
    const calls: string[] = [];
    let busy = false;
    const n = await writeLogs(
      entries(),
      async (stream, text) => {
        assert.equal(busy, false, 'a write started before the previous one finished');
        busy = true;
        await new Promise((r) => setTimeout(r, 5));
        calls.push(`${stream}:${text}`);
        busy = false;
      },
      { timestamps: true },
    );
    assert.equal(n, 3);
    assert.deepEqual(calls, [
      'stdout:2026-11-22T08:58:12.000000000Z one\n',
      'stderr:2026-11-22T08:58:12.000000000Z two\n',
      'stdout:2026-11-22T08:58:12.000000000Z three',
    ]);
  });

  it('waits for a full stream to drain', async () => {
    const out = new PassThrough({ highWaterMark: 1 });
    const err = new PassThrough({ highWaterMark: 1 });
    let finished = false;
    const writing = writeLogs(entries(), toStreams(out, err)).then(() => (finished = true));
    await new Promise((r) => setTimeout(r, 20));
    // Nobody reads stdout: the first write filled it, and writing waits.
    assert.equal(finished, false);
    const outChunks: string[] = [];
    const errChunks: string[] = [];
    out.on('data', (c: Buffer) => outChunks.push(c.toString()));
    err.on('data', (c: Buffer) => errChunks.push(c.toString()));
    await writing;
    assert.deepEqual(outChunks.join(''), 'one\nthree');
    assert.deepEqual(errChunks.join(''), 'two\n');
  });
});

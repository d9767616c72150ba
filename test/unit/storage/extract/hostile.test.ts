/**
 * Hostile and broken layers. The destination is a subdirectory of a temp
 * directory holding sentinels; every test checks that nothing outside the
 * destination changed (the temp directory's other contents and the host's
 * /etc/passwd), and the error code or warning the layer deserves.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { applyLayer } from '../../../../src/storage/extract/index.ts';
import type { ExtractOptions } from '../../../../src/storage/extract/index.ts';
import { body, extractOptions, fileEntry, header, pax, streamOf, tarOf } from './tar-build.ts';

const own = { uid: process.getuid!(), gid: process.getgid!() };
const temps: string[] = [];
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

let box = '';
let dest = '';

/** Every path under `dir` (not following links) with what it is, its mode and content hash. */
function snapshot(dir: string, skip: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (p === skip) continue;
      const st = lstatSync(p);
      let what = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? `link:${readlinkSync(p)}` : 'other';
      if (st.isFile()) what = `file:${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
      out.push(`${p} ${what} ${st.mode.toString(8)} ${st.nlink} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

function passwdStat(): string {
  const st = lstatSync('/etc/passwd');
  return `${st.ino} ${st.size} ${st.nlink} ${st.mtimeMs} ${st.ctimeMs}`;
}

let before: string[] = [];
let passwdBefore = '';

beforeEach(() => {
  box = mkdtempSync(join(tmpdir(), 'hutch-hostile-'));
  temps.push(box);
  writeFileSync(join(box, 'sentinel'), 'sentinel');
  mkdirSync(join(box, 'outside-dir'));
  mkdirSync(join(box, 'etc'));
  writeFileSync(join(box, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  dest = join(box, 'a/b/dest');
  mkdirSync(dest, { recursive: true });
  before = snapshot(box, dest);
  passwdBefore = passwdStat();
});

function assertOutsideUntouched(): void {
  assert.deepEqual(snapshot(box, dest), before, 'the temp directory outside dest changed');
  assert.equal(passwdStat(), passwdBefore, '/etc/passwd changed');
  assert.equal(existsSync('/pwned'), false);
  assert.equal(existsSync('/etc/pwned'), false);
}

async function apply(tar: Buffer, over: Partial<ExtractOptions> = {}) {
  return applyLayer(streamOf(tar), dest, extractOptions(over));
}

async function rejects(tar: Buffer, code: string, message?: RegExp, over: Partial<ExtractOptions> = {}) {
  await assert.rejects(apply(tar, over), (e: Error & { code?: string }) => {
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe('applyLayer: hostile names', () => {
  it('refuses ../ entries that climb out', async () => {
    await rejects(tarOf(fileEntry('../../../sentinel', 'pwned', own)), 'LAYER_UNSAFE', /climbs out/);
    await rejects(tarOf(fileEntry('x/../../escape', 'pwned', own)), 'LAYER_UNSAFE');
    await rejects(
      tarOf(pax([['path', '../../../../../../etc/pwned']]), fileEntry('ok', 'pwned', own)),
      'LAYER_UNSAFE',
    );
    assertOutsideUntouched();
  });

  it('keeps absolute paths inside dest', async () => {
    await apply(tarOf(fileEntry('/pwned', 'inside', own), fileEntry('/etc/pwned', 'inside', own)));
    assert.equal(readFileSync(join(dest, 'pwned'), 'utf8'), 'inside');
    assert.equal(readFileSync(join(dest, 'etc/pwned'), 'utf8'), 'inside');
    assertOutsideUntouched();
  });

  it('resolves a symlink to / inside dest: evil/etc/passwd writes dest/etc/passwd', async () => {
    await apply(
      tarOf(
        header({ name: 'evil', type: '2', linkname: '/', ...own }),
        fileEntry('evil/etc/passwd', 'layer passwd', own),
        header({ name: 'evil2', type: '2', linkname: '/etc', ...own }),
        fileEntry('evil2/pwned', 'inside', own),
      ),
    );
    assert.equal(readFileSync(join(dest, 'etc/passwd'), 'utf8'), 'layer passwd');
    assert.equal(readFileSync(join(dest, 'etc/pwned'), 'utf8'), 'inside');
    assert.equal(readlinkSync(join(dest, 'evil')), '/', 'the link itself is kept as the image has it');
    assertOutsideUntouched();
  });

  it('resolves a symlink to ../../.. inside dest', async () => {
    await apply(
      tarOf(
        header({ name: 'up', type: '2', linkname: '../../..', ...own }),
        fileEntry('up/sentinel', 'inside', own),
        header({ name: 'd/', type: '5', ...own }),
        header({ name: 'd/up', type: '2', linkname: '../../../../outside-dir', ...own }),
        fileEntry('d/up/file', 'inside', own),
      ),
    );
    assert.equal(readFileSync(join(dest, 'sentinel'), 'utf8'), 'inside');
    assert.equal(readFileSync(join(dest, 'outside-dir/file'), 'utf8'), 'inside');
    assertOutsideUntouched();
  });

  it('resolves chains of links, absolute host paths included, inside dest', async () => {
    await apply(
      tarOf(
        header({ name: 'a', type: '2', linkname: 'b', ...own }),
        header({ name: 'b', type: '2', linkname: join(box, 'outside-dir'), ...own }),
        fileEntry('a/pwned', 'inside', own),
      ),
    );
    assert.equal(readFileSync(join(dest, box, 'outside-dir/pwned'), 'utf8'), 'inside');
    assertOutsideUntouched();
  });

  it('refuses a symlink loop on the way', async () => {
    await rejects(
      tarOf(
        header({ name: 'l1', type: '2', linkname: 'l2', ...own }),
        header({ name: 'l2', type: '2', linkname: '/l1', ...own }),
        fileEntry('l1/x', 'x', own),
      ),
      'LAYER_INVALID',
      /symbolic links/,
    );
    assertOutsideUntouched();
  });

  it('replaces an existing symlink instead of writing through it', async () => {
    symlinkSync(join(box, 'sentinel'), join(dest, 'victim'));
    symlinkSync(join(box, 'outside-dir'), join(dest, 'victim-dir'));
    symlinkSync(join(box, 'outside-dir'), join(dest, 'victim-dir2'));
    symlinkSync(join(box, 'sentinel'), join(dest, 'victim-link'));
    await apply(
      tarOf(
        fileEntry('victim', 'replaced', own),
        header({ name: 'victim-dir/', type: '5', ...own }),
        fileEntry('victim-dir/file', 'inside', own),
        // A file below a pre-existing absolute link: resolved inside dest, not at the host path.
        fileEntry('victim-dir2/file', 'inside', own),
        header({ name: 'victim-link', type: '2', linkname: 'elsewhere', ...own }),
      ),
    );
    assert.equal(lstatSync(join(dest, 'victim')).isFile(), true);
    assert.equal(readFileSync(join(dest, 'victim'), 'utf8'), 'replaced');
    assert.ok(lstatSync(join(dest, 'victim-dir')).isDirectory());
    assert.equal(readFileSync(join(dest, box, 'outside-dir/file'), 'utf8'), 'inside');
    assert.equal(readlinkSync(join(dest, 'victim-link')), 'elsewhere');
    assertOutsideUntouched();
  });

  it('refuses a NUL in a name', async () => {
    await rejects(tarOf(pax([['path', 'a\0/etc/passwd']]), fileEntry('x', 'x', own)), 'LAYER_INVALID', /NUL/);
    assertOutsideUntouched();
  });

  it('refuses whiteouts of . and ..', async () => {
    await rejects(tarOf(fileEntry('sub/.wh...', '', own)), 'LAYER_UNSAFE');
    await rejects(tarOf(fileEntry('sub/.wh..', '', own)), 'LAYER_INVALID');
    assertOutsideUntouched();
  });

  it('keeps a whiteout through a symlink inside dest', async () => {
    await apply(
      tarOf(
        header({ name: 'evil', type: '2', linkname: join(box), ...own }),
        fileEntry('evil/.wh.sentinel', '', own),
      ),
    );
    assertOutsideUntouched();
  });
});

describe('applyLayer: hostile hardlinks', () => {
  it('treats /etc/passwd as the layer-relative etc/passwd: refused when the layer has none', async () => {
    await rejects(
      tarOf(header({ name: 'passwd-link', type: '1', linkname: '/etc/passwd', ...own })),
      'LAYER_INVALID',
      /not in the layer/,
    );
    assert.equal(existsSync(join(dest, 'passwd-link')), false);
    assertOutsideUntouched();
  });

  it('refuses ../../etc/passwd', async () => {
    await rejects(
      tarOf(header({ name: 'passwd-link', type: '1', linkname: '../../etc/passwd', ...own })),
      'LAYER_UNSAFE',
      /hardlink target/,
    );
    await rejects(
      tarOf(
        header({ name: 'passwd-link', type: '1', linkname: '../../../../../../../../etc/passwd', ...own }),
      ),
      'LAYER_UNSAFE',
    );
    assertOutsideUntouched();
  });

  it('links to the layer’s own file when the target goes through a symlink to /', async () => {
    await apply(
      tarOf(
        fileEntry('etc/passwd', 'layer', own),
        header({ name: 'evil', type: '2', linkname: '/', ...own }),
        header({ name: 'evil2', type: '2', linkname: join(box, 'etc'), ...own }),
        header({ name: 'l1', type: '1', linkname: 'evil/etc/passwd', ...own }),
        header({ name: 'l2', type: '1', linkname: '/etc/passwd', ...own }),
      ),
    );
    const ino = statSync(join(dest, 'etc/passwd')).ino;
    assert.equal(statSync(join(dest, 'l1')).ino, ino);
    assert.equal(statSync(join(dest, 'l2')).ino, ino);
    await rejects(
      tarOf(header({ name: 'l3', type: '1', linkname: 'evil2/passwd', ...own })),
      'LAYER_INVALID',
    );
    assertOutsideUntouched();
  });

  it('links a symlink itself, never what it points to', async () => {
    await apply(
      tarOf(
        header({ name: 'to-passwd', type: '2', linkname: '/etc/passwd', ...own }),
        header({ name: 'hard', type: '1', linkname: 'to-passwd', ...own }),
      ),
    );
    assert.ok(lstatSync(join(dest, 'hard')).isSymbolicLink());
    assertOutsideUntouched();
  });
});

describe('applyLayer: hostile sizes and formats', () => {
  const tenGiB = 10 * 1024 ** 3;

  it('a 10 GiB size field with little data: LAYER_TRUNCATED, nothing big written, the partial file removed', async () => {
    const tar = Buffer.concat([
      fileEntry('small', 'ok', own),
      header({ name: 'huge', size: tenGiB, base256Size: true, ...own }),
      Buffer.alloc(4096, 1),
    ]);
    await rejects(tar, 'LAYER_TRUNCATED', /huge: 4096 of its 10737418240 bytes/);
    assert.equal(existsSync(join(dest, 'huge')), false);
    assert.equal(readFileSync(join(dest, 'small'), 'utf8'), 'ok');
    assertOutsideUntouched();
  });

  it('the same through a PAX size record', async () => {
    const tar = Buffer.concat([
      pax([['size', String(tenGiB)]]),
      header({ name: 'huge', size: 0, ...own }),
      body('x'),
    ]);
    await rejects(tar, 'LAYER_TRUNCATED', /huge/);
    assert.equal(existsSync(join(dest, 'huge')), false);
    assertOutsideUntouched();
  });

  it('a stream cut inside a header or an extended header: LAYER_TRUNCATED', async () => {
    const whole = tarOf(fileEntry('a', 'x', own));
    await rejects(whole.subarray(0, 1024 + 100), 'LAYER_TRUNCATED', /inside a tar header/);
    await rejects(pax([['path', 'p']]).subarray(0, 600), 'LAYER_TRUNCATED', /extended header/);
    await rejects(pax([['path', 'p']]), 'LAYER_TRUNCATED', /before the entry itself/);
  });

  it('refuses GNU sparse files (type S and PAX GNU.sparse.*) instead of expanding them', async () => {
    await rejects(
      tarOf(header({ name: 'sparse', type: 'S', size: 512, ...own }), body('x')),
      'UNSUPPORTED_TAR',
      /sparse/,
    );
    await rejects(
      tarOf(
        pax([
          ['GNU.sparse.major', '1'],
          ['GNU.sparse.minor', '0'],
          ['GNU.sparse.name', 'big'],
          ['GNU.sparse.realsize', String(tenGiB)],
        ]),
        fileEntry('GNUSparseFile.0/big', '1\n0\n512\n', own),
      ),
      'UNSUPPORTED_TAR',
      /sparse/,
    );
    assert.deepEqual(readdirSync(dest), []);
    assertOutsideUntouched();
  });

  it('refuses bad checksums, non-octal numbers and unknown entry types', async () => {
    await rejects(tarOf(header({ name: 'a', badChecksum: true })), 'LAYER_INVALID', /checksum/);
    const bad = header({ name: 'a', ...own });
    bad.write('9', 100, 'latin1');
    // Recompute the checksum so only the mode field is wrong.
    bad.fill(0x20, 148, 156);
    let sum = 0;
    for (const c of bad) sum += c;
    bad.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
    await rejects(tarOf(bad), 'LAYER_INVALID', /mode field/);
    await rejects(tarOf(header({ name: 'a', type: 'Z', ...own })), 'UNSUPPORTED_TAR', /type "Z"/);
    await rejects(tarOf(header({ name: 'a', type: 'M', ...own })), 'UNSUPPORTED_TAR', /multi-volume/);
  });

  it('refuses a lone zero block followed by more entries', async () => {
    await rejects(
      Buffer.concat([Buffer.alloc(512), fileEntry('a', 'x', own)]),
      'LAYER_INVALID',
      /zero block/,
    );
  });

  it('refuses an oversized extended header without reading it', async () => {
    await rejects(
      header({ name: 'p', type: 'x', size: 64 * 1024 * 1024 }),
      'UNSUPPORTED_TAR',
      /extended tar header/,
    );
  });

  it('never creates a device node rootless: skipped with a warning', async () => {
    const result = await apply(
      tarOf(
        header({ name: 'sda', type: '4', devmajor: 8, devminor: 0, mode: 0o666, ...own }),
        header({ name: 'mem', type: '3', devmajor: 1, devminor: 1, mode: 0o666, ...own }),
      ),
      { canMknod: false },
    );
    assert.deepEqual(readdirSync(dest), []);
    assert.deepEqual(result.warnings.length, 1);
    assert.match(result.warnings[0]!, /skipped 2 device nodes/);
    assertOutsideUntouched();
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  checkDuplicates,
  parseMountFlag,
  parseTmpfsFlag,
  parseVolumeFlag,
} from '../../../src/runtime/containers/mounts.ts';
import { parseSignal } from '../../../src/runtime/oci/signals.ts';

describe('-v', () => {
  it('reads binds, named volumes and anonymous volumes as docker does', () => {
    assert.deepEqual(parseVolumeFlag('/srv/data:/data:ro,U', '/home/u'), {
      type: 'bind',
      source: '/srv/data',
      destination: '/data',
      readOnly: true,
      options: ['ro', 'U'],
    });
    assert.equal(parseVolumeFlag('./web:/usr/share/www', '/home/u').source, '/home/u/web');
    assert.deepEqual(parseVolumeFlag('cache:/var/cache/'), {
      type: 'volume',
      source: 'cache',
      name: 'cache',
      destination: '/var/cache',
      readOnly: false,
      options: [],
    });
    const anon = parseVolumeFlag('/scratch');
    assert.equal(anon.type, 'volume');
    assert.equal(anon.name, '');
    assert.equal(anon.destination, '/scratch');
  });

  it('refuses what docker refuses, saying what was wrong', () => {
    assert.throws(() => parseVolumeFlag('/a:relative'), /must be absolute/);
    assert.throws(() => parseVolumeFlag('/a:/'), /root/);
    assert.throws(() => parseVolumeFlag('/a:/b:ro,rw'), /"ro" and "rw" together/);
    assert.throws(() => parseVolumeFlag('/a:/b:bogus'), /unknown option "bogus"/);
    assert.throws(
      () => parseVolumeFlag('bad name!:/b'),
      /neither an absolute host path nor a valid volume name/,
    );
    assert.throws(() => parseVolumeFlag('/a:/b:ro:x'), /SRC:DST/);
  });
});

describe('--mount', () => {
  it('reads the CSV form of bind, volume and tmpfs mounts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hutch-mount-'));
    const bind = parseMountFlag(`type=bind,source=${dir},target=/data,readonly,bind-propagation=rslave`);
    assert.deepEqual(bind, {
      type: 'bind',
      source: dir,
      destination: '/data',
      readOnly: true,
      options: ['rslave'],
    });
    const vol = parseMountFlag('type=volume,src=db,dst=/var/lib/db,volume-nocopy');
    assert.deepEqual(vol, {
      type: 'volume',
      source: 'db',
      name: 'db',
      destination: '/var/lib/db',
      readOnly: false,
      options: ['nocopy'],
    });
    assert.deepEqual(parseMountFlag('type=tmpfs,destination=/run,tmpfs-size=64m,tmpfs-mode=1770').options, [
      'size=64m',
      'mode=1770',
    ]);
  });

  it('names the missing or unknown part', () => {
    assert.throws(
      () => parseMountFlag('type=bind,source=/nonexistent-hutch-dir,target=/x'),
      /does not exist/,
    );
    assert.throws(() => parseMountFlag('type=bind,target=/x'), /needs source=/);
    assert.throws(() => parseMountFlag('type=volume,source=v'), /target= is required/);
    assert.throws(() => parseMountFlag('type=nfs,target=/x'), /unknown type "nfs"/);
    assert.throws(() => parseMountFlag('type=volume,target=/x,colour=red'), /unknown field "colour"/);
    assert.throws(() => parseMountFlag('type=tmpfs,target=/x,tmpfs-mode=9'), /bad tmpfs-mode/);
  });
});

describe('--tmpfs and duplicates', () => {
  it('reads --tmpfs with and without options', () => {
    assert.deepEqual(parseTmpfsFlag('/tmp'), {
      type: 'tmpfs',
      source: 'tmpfs',
      destination: '/tmp',
      readOnly: false,
      options: [],
    });
    assert.deepEqual(parseTmpfsFlag('/run:size=1m,noexec').options, ['size=1m', 'noexec']);
  });

  it('refuses two mounts at one place', () => {
    assert.throws(
      () => checkDuplicates([parseTmpfsFlag('/x'), parseVolumeFlag('v:/x/')]),
      /duplicate mount point: \/x/,
    );
    assert.doesNotThrow(() => checkDuplicates([parseTmpfsFlag('/x'), parseTmpfsFlag('/y')]));
  });
});

describe('signals', () => {
  it('takes names, SIG names and numbers as docker does', () => {
    assert.deepEqual(parseSignal('term'), { name: 'SIGTERM', number: 15 });
    assert.deepEqual(parseSignal('SIGKILL'), { name: 'SIGKILL', number: 9 });
    assert.equal(parseSignal('2').name, 'SIGINT');
    assert.deepEqual(parseSignal('SIGRTMIN+3'), { name: 'SIGRTMIN+3', number: 37 });
    assert.throws(() => parseSignal('SIGNOPE'), /invalid signal/);
    assert.throws(() => parseSignal('99'), /invalid signal/);
  });
});

/**
 * `hutch system df` as the unprivileged user, on the test btrfs (where it
 * adds the filesystem's shared bytes) and on the default filesystem:
 * docker's rows and fields, sizes that grow with a pull, a container's own
 * writes and a volume's content, and what becomes reclaimable once the
 * containers are gone.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { BTRFS_DIR, NEEDS_BTRFS } from '../../support/btrfs.ts';
import { sandbox } from '../../support/hutch.ts';
import type { Result, Sandbox } from '../../support/hutch.ts';
import { NEEDS_REGISTRY, REGISTRY } from '../../support/images.ts';

const rootless = process.getuid!() !== 0;

function ok(r: Result, what: string): Result {
  assert.equal(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
  return r;
}

interface Row {
  Type: string;
  TotalCount: string;
  Active: string;
  Size: string;
  Reclaimable: string;
}

/** docker's decimal sizes back to bytes ("14.7MB", "0B", "100kB (50%)"). */
function bytes(text: string): number {
  const m = /^([\d.]+)(B|kB|MB|GB|TB)/.exec(text);
  assert.ok(m, `not a size: ${text}`);
  const unit = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 }[m[2] as 'B'];
  return Number(m[1]) * unit;
}

const FILESYSTEMS = [
  { name: 'btrfs', under: BTRFS_DIR, skip: NEEDS_BTRFS, btrfs: true },
  { name: 'the default store filesystem', under: tmpdir(), skip: false as const, btrfs: false },
];

for (const fs of FILESYSTEMS) {
  describe(
    `system df on ${fs.name}`,
    { skip: rootless ? fs.skip || NEEDS_REGISTRY : 'runs as the unprivileged test user only' },
    () => {
      let box: Sandbox;
      const h = (args: string[]): Result => box.hutch(args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const rows = (): Record<string, Row> => {
        const r = ok(h(['system', 'df', '--format', '{{json .}}']), 'df');
        const list = r.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Row);
        assert.deepEqual(
          list.map((x) => x.Type),
          ['Images', 'Containers', 'Local Volumes', 'Build Cache'],
        );
        return Object.fromEntries(list.map((x) => [x.Type, x]));
      };

      before(() => {
        box = sandbox({}, { under: fs.under });
      });
      after(() => box?.cleanup());

      it("prints docker's table, and docker's fields in templates", () => {
        const table = ok(h(['system', 'df']), 'df').stdout.split('\n');
        assert.match(table[0]!, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
        assert.match(table[1]!, /^Images\s+0\s+0\s+0B\s+0B$/);
        assert.match(table[4]!, /^Build Cache\s+0\s+0\s+0B\s+0B$/);
        const empty = rows();
        assert.deepEqual(Object.keys(empty.Images!), ['Type', 'TotalCount', 'Active', 'Size', 'Reclaimable']);
      });

      it('counts pulled images, sizes growing with each pull', () => {
        ok(h(['pull', '-q', `${REGISTRY}/busybox:latest`]), 'pull');
        const one = rows().Images!;
        assert.equal(one.TotalCount, '1');
        assert.ok(bytes(one.Size) > 1e6, one.Size);
        ok(h(['pull', '-q', `${REGISTRY}/multilayer:5`]), 'pull');
        const two = rows().Images!;
        assert.equal(two.TotalCount, '2');
        assert.ok(bytes(two.Size) > bytes(one.Size) + 5e6, `${one.Size} then ${two.Size}`);
        assert.equal(two.Reclaimable.replace(/ .*/, ''), two.Size, 'no container uses them yet');
      });

      it("counts a container's own writes and a volume's content, active while used", () => {
        ok(h(['volume', 'create', 'data']), 'volume create');
        ok(
          h([
            'run',
            '--name',
            'w',
            '-v',
            'data:/data',
            `${REGISTRY}/busybox:latest`,
            'sh',
            '-c',
            'head -c 300000 /dev/urandom > /own; head -c 200000 /dev/urandom > /data/f',
          ]),
          'run',
        );
        const r = rows();
        assert.equal(r.Images!.Active, '1');
        assert.ok(bytes(r.Images!.Reclaimable) < bytes(r.Images!.Size), 'busybox is in use');
        assert.equal(r.Containers!.TotalCount, '1');
        assert.equal(r.Containers!.Active, '0');
        const own = bytes(r.Containers!.Size);
        assert.ok(own >= 300e3 && own < 1e6, `the container wrote 300kB, df says ${r.Containers!.Size}`);
        assert.equal(r.Containers!.Reclaimable.replace(/ .*/, ''), r.Containers!.Size);
        assert.equal(r.Containers!.Reclaimable.replace(/^\S+ /, ''), '(100%)');
        assert.deepEqual([r['Local Volumes']!.TotalCount, r['Local Volumes']!.Active], ['1', '1']);
        assert.equal(r['Local Volumes']!.Size, '200kB');
        assert.match(r['Local Volumes']!.Reclaimable, /^0B/);
      });

      it('-v lists every image, container and volume', () => {
        const v = ok(h(['system', 'df', '-v']), 'df -v').stdout;
        assert.match(
          v,
          /Images space usage:\n+REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\s+SHARED SIZE\s+UNIQUE SIZE\s+CONTAINERS/,
        );
        assert.match(v, /multilayer\s+5\s/);
        assert.match(
          v,
          /Containers space usage:\n+CONTAINER ID\s+IMAGE\s+COMMAND\s+LOCAL VOLUMES\s+SIZE\s+CREATED\s+STATUS\s+NAMES/,
        );
        assert.match(v, /Local Volumes space usage:\n+VOLUME NAME\s+LINKS\s+SIZE\ndata\s+1\s+200kB/);
        assert.match(v, /Build cache usage: 0B/);
        const json = JSON.parse(ok(h(['system', 'df', '-v', '--format', 'json']), 'df -v json').stdout) as {
          Images: unknown[];
          Containers: { Names: string }[];
          Volumes: { Name: string; Size: string }[];
        };
        assert.equal(json.Images.length, 2);
        assert.deepEqual(
          json.Containers.map((c) => c.Names),
          ['w'],
        );
        assert.deepEqual(json.Volumes, [{ Name: 'data', Links: '1', Size: '200kB' }]);
      });

      it(
        fs.btrfs
          ? "adds the filesystem's shared bytes"
          : 'adds nothing where the filesystem has nothing to say',
        () => {
          const text = ok(h(['system', 'df']), 'df').stdout;
          if (fs.btrfs)
            assert.match(text, /\nFilesystem \(btrfs\): \S+ referenced, \S+ on disk, \S+ shared between/);
          else assert.doesNotMatch(text, /Filesystem/);
          // Rootless, compsize cannot read the extent tree: no ratio rather than a wrong one.
          assert.doesNotMatch(text, /Compression/);
        },
      );

      it('makes everything reclaimable once the containers are gone', () => {
        ok(h(['rm', 'w']), 'rm');
        const r = rows();
        assert.equal(r.Containers!.TotalCount, '0');
        assert.equal(r.Containers!.Size, '0B');
        assert.equal(r.Images!.Active, '0');
        assert.equal(r.Images!.Reclaimable, `${r.Images!.Size} (100%)`);
        assert.equal(r['Local Volumes']!.Active, '0');
        assert.equal(r['Local Volumes']!.Reclaimable, '200kB (100%)');
      });
    },
  );
}

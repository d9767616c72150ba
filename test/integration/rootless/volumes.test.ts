/**
 * Named volumes end to end as the unprivileged user, through the real CLI:
 * create (labels, -o uid/gid, tmpfs and bind options), ls with filters and
 * templates, inspect in docker's shape, rm, prune, and the error exits.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseSubIdFile, rangesFor } from '../../../src/rootless/subid.ts';
import { sandbox } from '../../support/hutch.ts';
import type { Sandbox } from '../../support/hutch.ts';

const uid = process.getuid!();
const rootless = uid !== 0;
const subuids = rangesFor(parseSubIdFile(readFileSync('/etc/subuid', 'utf8'), '/etc/subuid'), {
  name: process.env.USER ?? '',
  id: uid,
});

describe('volumes', { skip: rootless ? false : 'runs as the unprivileged test user only' }, () => {
  let box: Sandbox;
  before(() => {
    box = sandbox();
  });
  after(() => box.cleanup());

  const ok = (args: string[]): string => {
    const r = box.hutch(args);
    assert.equal(r.status, 0, `hutch ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const fails = (args: string[], status: number, message: RegExp): void => {
    const r = box.hutch(args, { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(r.status, status, `hutch ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
  };
  const names = (args: string[] = []): string[] =>
    ok(['volume', 'ls', '-q', ...args])
      .split('\n')
      .filter((l) => l !== '');

  it('creates a named volume with labels, and prints its name', () => {
    assert.equal(ok(['volume', 'create', '--label', 'app=web', '-l', 'tier', 'webdata']).trim(), 'webdata');
    const data = join(box.root, 'volumes/webdata/_data');
    assert.equal(statSync(data).mode & 0o7777, 0o755);
    const rec = JSON.parse(readFileSync(join(box.root, 'volumes/webdata/volume.json'), 'utf8'));
    assert.deepEqual(rec.labels, { app: 'web', tier: '' });
    assert.equal(rec.driver, 'local');
  });

  it(
    'gives a volume to a container user with -o o=uid=N,gid=N',
    { skip: subuids.length ? false : 'no sub-ids for this user' },
    () => {
      assert.equal(ok(['volume', 'create', '-o', 'o=uid=1000,gid=1000', 'owned']).trim(), 'owned');
      const data = join(box.root, 'volumes/owned/_data');
      // Inside the namespace it is the container's uid 1000; outside, a sub-id.
      assert.equal(ok(['unshare', 'stat', '-c', '%u:%g', data]).trim(), '1000:1000');
      assert.equal(statSync(data).uid, subuids[0]!.start + 999);
    },
  );

  it('names an unnamed volume with 64 hex digits', () => {
    const name = ok(['volume', 'create']).trim();
    assert.match(name, /^[0-9a-f]{64}$/);
    ok(['volume', 'rm', name]);
  });

  it('answers an existing volume again when the options match, and refuses other options', () => {
    assert.equal(ok(['volume', 'create', 'webdata']).trim(), 'webdata');
    fails(['volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', 'webdata'], 125, /already exists/);
  });

  it('records tmpfs and bind options', () => {
    ok([
      'volume',
      'create',
      '-o',
      'type=tmpfs',
      '-o',
      'device=tmpfs',
      '-o',
      'o=size=10m,uid=1000',
      'scratch',
    ]);
    const host = join(box.dir, 'hostdir');
    mkdirSync(host);
    ok([
      'volume',
      'create',
      '--driver',
      'local',
      '--opt',
      'type=none',
      '--opt',
      'o=bind',
      '--opt',
      `device=${host}`,
      'bound',
    ]);
    const [t, b] = JSON.parse(ok(['volume', 'inspect', 'scratch', 'bound'])) as { Options: object }[];
    assert.deepEqual(t!.Options, { type: 'tmpfs', device: 'tmpfs', o: 'size=10m,uid=1000' });
    assert.deepEqual(b!.Options, { type: 'none', o: 'bind', device: host });
  });

  it('refuses bad names, drivers and options, with exit 125', () => {
    fails(['volume', 'create', 'bad/name'], 125, /not a valid volume name/);
    fails(['volume', 'create', '-d', 'nfs-plugin', 'x'], 125, /volume driver "nfs-plugin" is not available/);
    fails(['volume', 'create', '-o', 'colour=blue', 'x'], 125, /invalid option "colour"/);
    fails(['volume', 'create', '-o', 'novalue', 'x'], 125, /not KEY=VALUE/);
    fails(['volume', 'create', '-o', 'type=tmpfs', 'x'], 125, /missing required option "device"/);
    fails(
      ['volume', 'create', '-o', 'type=none', '-o', 'o=bind', '-o', `device=${box.dir}/missing`, 'x'],
      125,
      /no such directory/,
    );
    fails(['volume', 'create', '--name', 'a', 'b'], 125, /conflicting options/);
    assert.ok(!existsSync(join(box.root, 'volumes/x')));
  });

  it('lists volumes as docker does', () => {
    const lines = ok(['volume', 'ls']).trimEnd().split('\n');
    assert.match(lines[0]!, /^DRIVER +VOLUME NAME$/);
    assert.ok(
      lines.some((l) => /^local +webdata$/.test(l)),
      lines.join('\n'),
    );
    assert.deepEqual(
      names(),
      ['bound', 'owned', 'scratch', 'webdata'].filter((n) => subuids.length || n !== 'owned'),
    );
    assert.deepEqual(ok(['volume', 'list', '-q']).trim().split('\n'), names());
  });

  it('filters by name, label, driver and dangling', () => {
    assert.deepEqual(names(['--filter', 'name=web']), ['webdata']);
    assert.deepEqual(names(['-f', 'name=^s', '-f', 'name=^b']), ['bound', 'scratch']);
    assert.deepEqual(names(['--filter', 'label=app']), ['webdata']);
    assert.deepEqual(names(['--filter', 'label=app=web', '--filter', 'label=tier']), ['webdata']);
    assert.deepEqual(names(['--filter', 'label=app=db']), []);
    assert.deepEqual(names(['--filter', 'driver=local']).length, names().length);
    // No container uses any of them.
    assert.deepEqual(names(['--filter', 'dangling=true']), names());
    assert.deepEqual(names(['--filter', 'dangling=false']), []);
    fails(['volume', 'ls', '--filter', 'colour=red'], 125, /invalid filter "colour=red"/);
    fails(['volume', 'ls', '--filter', 'dangling=maybe'], 125, /dangling takes/);
  });

  it('formats the listing with templates and json', () => {
    assert.equal(
      ok([
        'volume',
        'ls',
        '--filter',
        'name=webdata',
        '--format',
        '{{.Name}} {{.Driver}} {{.Label "app"}} {{.Labels}}',
      ]),
      'webdata local web app=web,tier=\n',
    );
    const table = ok([
      'volume',
      'ls',
      '--filter',
      'name=webdata',
      '--format',
      'table {{.Name}}\t{{.Mountpoint}}',
    ]);
    assert.match(table, /^VOLUME NAME +MOUNTPOINT\nwebdata +\/.*\/volumes\/webdata\/_data\n$/);
    const json = JSON.parse(ok(['volume', 'ls', '--format', 'json', '--filter', 'name=webdata'])) as object[];
    assert.deepEqual(Object.keys(json[0]!).sort(), [
      'CreatedAt',
      'Driver',
      'Labels',
      'Links',
      'Mountpoint',
      'Name',
      'Scope',
      'Size',
    ]);
  });

  it('inspects in docker shape, with --format, and exits 1 for a missing volume', () => {
    const [v, ...rest] = JSON.parse(ok(['volume', 'inspect', 'webdata'])) as Record<string, unknown>[];
    assert.equal(rest.length, 0);
    assert.deepEqual(Object.keys(v!), [
      'CreatedAt',
      'Driver',
      'Labels',
      'Mountpoint',
      'Name',
      'Options',
      'Scope',
    ]);
    assert.match(v!.CreatedAt as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(v!.Driver, 'local');
    assert.deepEqual(v!.Labels, { app: 'web', tier: '' });
    assert.equal(v!.Mountpoint, join(box.root, 'volumes/webdata/_data'));
    assert.equal(v!.Name, 'webdata');
    assert.deepEqual(v!.Options, {});
    assert.equal(v!.Scope, 'local');
    assert.equal(ok(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'webdata']).trim(), v!.Mountpoint);
    const r = box.hutch(['volume', 'inspect', 'webdata', 'ghost']);
    assert.equal(r.status, 1);
    assert.equal((JSON.parse(r.stdout) as unknown[]).length, 1);
    assert.match(r.stderr, /Error: no such volume: ghost/);
  });

  it('removes volumes, reporting each failure and exiting 1', () => {
    ok(['volume', 'create', 'gone1']);
    ok(['volume', 'create', 'gone2']);
    const r = box.hutch(['volume', 'rm', 'gone1', 'ghost', 'gone2']);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, 'gone1\ngone2\n');
    assert.match(r.stderr, /no such volume: ghost/);
    assert.ok(!existsSync(join(box.root, 'volumes/gone1')));
    assert.equal(ok(['volume', 'rm', '-f', 'ghost']), 'ghost\n');
    ok(['volume', 'create', 'gone3']);
    assert.equal(ok(['volume', 'remove', 'gone3']), 'gone3\n');
    fails(['volume', 'rm'], 125, /./);
  });

  it('asks before pruning, and prunes unused volumes matching the filters', () => {
    fails(['volume', 'prune'], 125, /no terminal/);
    ok(['volume', 'create', '--label', 'temp=yes', 'tmp1']);
    ok(['volume', 'create', '--label', 'temp=yes', 'tmp2']);
    const data = join(box.root, 'volumes/tmp1/_data');
    ok(['unshare', 'sh', '-c', `printf 1234567890 > '${data}/f'; chown 1:1 '${data}/f'`]);
    const r = ok(['volume', 'prune', '-f', '--filter', 'label=temp=yes']);
    assert.equal(r, 'Deleted Volumes:\ntmp1\ntmp2\n\nTotal reclaimed space: 10B\n');
    assert.ok(!names().includes('tmp1'));
    assert.ok(names().includes('webdata'));
    fails(['volume', 'prune', '-f', '--filter', 'name=x'], 125, /invalid filter/);
    const rest = ok(['volume', 'prune', '--force', '--filter', 'label!=app']);
    assert.match(rest, /^Deleted Volumes:\n/);
    assert.deepEqual(names(), ['webdata']);
    assert.equal(ok(['volume', 'prune', '-f', '--filter', 'label=none']), 'Total reclaimed space: 0B\n');
  });

  it('leaves nothing behind and the store consistent', () => {
    assert.deepEqual(
      readdirSync(join(box.root, 'volumes')).filter((n) => n.startsWith('.tmp-')),
      [],
    );
    assert.deepEqual(box.problems(), []);
  });
});

/**
 * The bundle's commands run with a V8 code cache made after their first run
 * (src/cli/command-loader.ts): made once, reused, replaced when V8 rejects
 * it, never in the way of the command.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sandbox } from '../../support/hutch.ts';

const boxes: ReturnType<typeof sandbox>[] = [];
after(() => boxes.forEach((b) => b.cleanup()));

/** A sandbox whose caches go to a directory of its own. */
function box(): { b: ReturnType<typeof sandbox>; dir: () => string | undefined } {
  const b = sandbox();
  boxes.push(b);
  b.env.XDG_CACHE_HOME = join(b.dir, 'cache');
  const base = join(b.dir, 'cache', 'hutch', 'code-cache');
  return {
    b,
    dir: () => {
      if (!existsSync(base)) return undefined;
      const [versionDir] = readdirSync(base);
      return versionDir === undefined ? undefined : join(base, versionDir);
    },
  };
}

const cacheOf = (dir: string, command: string): string[] =>
  readdirSync(dir).filter((f) => f.startsWith(`${command}-`) && f.endsWith('.bin'));

describe('command code cache', () => {
  it("is written on a command's first run and read, unchanged, on the next", () => {
    const { b, dir } = box();
    const first = b.hutch(['version', '--format', '{{.Client.Version}}']);
    assert.equal(first.status, 0, first.stderr);
    const d = dir();
    assert.ok(d, 'no code cache directory was made');
    assert.equal(statSync(d).mode & 0o777, 0o700);
    const files = cacheOf(d, 'version');
    assert.equal(files.length, 1, `cache files: ${readdirSync(d).join(', ')}`);
    const path = join(d, files[0]!);
    const before = statSync(path);
    assert.ok(before.size > 1000, `a cache of ${before.size} bytes`);

    const second = b.hutch(['version', '--format', '{{.Client.Version}}']);
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    const afterRun = statSync(path);
    assert.equal(afterRun.mtimeMs, before.mtimeMs, 'an accepted cache was written again');
    assert.equal(afterRun.ino, before.ino);
  });

  it("grows once for each new line of flags, and keeps other commands' caches", () => {
    const { b, dir } = box();
    assert.equal(b.hutch(['version']).status, 0);
    const d = dir()!;
    const [file] = cacheOf(d, 'version');
    const path = join(d, file!);
    // Another command whose name starts the same, and this command's cache of an older build.
    writeFileSync(join(d, 'version-snapshot-1-2-3.bin'), 'not ours');
    writeFileSync(join(d, 'version-1-2-3.bin'), 'an older build');
    const first = statSync(path);

    assert.equal(b.hutch(['version', '--format', '{{.Client.Version}}']).status, 0);
    const grown = statSync(path);
    assert.notEqual(grown.ino, first.ino, 'a new line of flags did not add to the cache');
    // The lines of flags in it: none (the first run), then --format.
    assert.equal(readFileSync(path.replace(/\.bin$/, '.seen'), 'utf8'), '(none)\nformat\n');
    assert.ok(existsSync(join(d, 'version-snapshot-1-2-3.bin')), "another command's cache was removed");
    assert.ok(!existsSync(join(d, 'version-1-2-3.bin')), "the older build's cache was kept");

    assert.equal(b.hutch(['version', '--format', '{{.Client.Os}}']).status, 0);
    assert.equal(statSync(path).ino, grown.ino, 'a line of flags already seen wrote the cache again');
  });

  it('replaces a cache V8 rejects, and the command still works', () => {
    const { b, dir } = box();
    assert.equal(b.hutch(['version']).status, 0);
    const d = dir()!;
    const path = join(d, cacheOf(d, 'version')[0]!);
    const good = readFileSync(path);
    writeFileSync(path, Buffer.alloc(good.length, 0x5a));
    const r = b.hutch(['version', '--format', '{{.Client.Version}}']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
    assert.notDeepEqual(readFileSync(path), Buffer.alloc(good.length, 0x5a), 'the rejected cache was kept');
    assert.equal(cacheOf(d, 'version').length, 1);
  });

  it('is not made by a run that failed', () => {
    const { b, dir } = box();
    const r = b.hutch(['version', '--no-such-flag']);
    assert.equal(r.status, 125);
    assert.equal(dir(), undefined);
  });

  it("is not made when Node's compile cache is turned off", () => {
    const { b, dir } = box();
    const r = b.hutch(['version'], { env: { NODE_DISABLE_COMPILE_CACHE: '1' } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(dir(), undefined);
  });

  it('does not stop a command whose cache directory cannot be written', () => {
    const { b } = box();
    writeFileSync(join(b.dir, 'cache'), 'a file where the cache directory would go');
    const r = b.hutch(['version', '--format', '{{.Client.Version}}']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
  });
});

/**
 * The diff walker on what fuse-overlayfs writes where the kernel refuses
 * 0:0 devices or trusted.* attributes: deletions as empty `.wh.NAME`
 * files (in the container's upper directory and in lower layers), opaque
 * directories as a `.wh..wh..opq` file. None of these names is the
 * container's own file; kernel overlay's walk (fuse unset) takes them
 * literally, as the kernel would. No root needed: no device nodes.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { changes, sortedForDisplay } from '../../../../src/storage/archive/diff.ts';
import { tempDir } from '../../../support/temp.ts';

function tree(root: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    const p = join(root, path);
    if (path.endsWith('/')) mkdirSync(p, { recursive: true });
    else {
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, text);
    }
  }
}

function layout(): { upper: string; lowers: string[] } {
  const d = tempDir();
  const [bottom, middle, upper] = ['bottom', 'middle', 'upper'].map((n) => join(d, n)) as [
    string,
    string,
    string,
  ];
  tree(bottom, { 'a/x': 'x', 'a/y': 'y', gone: 'g', 'op/old': 'o', 'op/deep/f': 'f', keep: 'k' });
  // A lower layer's own deletion as a file: a/y is not in the image.
  tree(middle, { 'a/.wh.y': '' });
  tree(upper, {
    '.wh.gone': '',
    'a/.wh.x': '',
    'a/.wh.y': '', // deleting what the image already lacks changes nothing
    'op/.wh..wh..opq': '',
    'op/new': 'n',
    '.wh.keep': '',
    keep: 'made again',
  });
  return { upper, lowers: [middle, bottom] };
}

describe('changes through fuse-overlayfs markers', () => {
  it('reads .wh. files as deletions and .wh..wh..opq as an opaque directory, never as files', () => {
    const { upper, lowers } = layout();
    const list = sortedForDisplay(changes({ driver: 'overlay', upper, lowers, userxattr: true, fuse: true }));
    assert.deepEqual(
      list.map((c) => `${c.kind} ${c.path}${c.opaque ? ' (opaque)' : ''}${c.covered ? ' (covered)' : ''}`),
      [
        'C a',
        'D a/x',
        'D gone',
        'C keep',
        'C op (opaque)',
        'D op/deep (covered)',
        'A op/new',
        'D op/old (covered)',
      ],
    );
  });

  it('the kernel walk takes the same names literally', () => {
    const { upper, lowers } = layout();
    const paths = changes({ driver: 'overlay', upper, lowers, userxattr: true }).map((c) => c.path);
    assert.ok(paths.includes('.wh.gone'));
    assert.ok(paths.includes('op/.wh..wh..opq'));
  });
});

/**
 * `hutch volume snapshot|snapshots|rollback|clone|send|receive`: the
 * copy-on-write features of volumes (../../engine/volume-snapshots.ts and
 * ../../engine/volume-replication.ts do the work).
 */
import { writeSync } from 'node:fs';
import { receiveVolume, sendVolume } from '../../engine/volume-replication.ts';
import {
  cloneVolume,
  listSnapshots,
  removeSnapshot,
  rollbackVolume,
  snapshotRow,
  snapshotVolume,
} from '../../engine/volume-snapshots.ts';
import { HutchError, errnoCode } from '../../util/errors.ts';
import type { CommandSpec } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { err, out } from '../output.ts';

function usage(message: string, hint: string): HutchError {
  return new HutchError('USAGE', message, { hint });
}

export const snapshot: CommandSpec = {
  name: 'snapshot',
  summary: 'Take a snapshot of a volume (or remove one: snapshot rm VOLUME SNAPSHOT)',
  usage: 'VOLUME SNAPSHOT | rm VOLUME SNAPSHOT',
  minOperands: 2,
  maxOperands: 3,
  run: async (args) => {
    const ctx = await contextFor(args);
    const [a, b, c] = args.operands;
    if (c !== undefined) {
      if (a !== 'rm' && a !== 'remove') {
        throw usage(
          `"hutch volume snapshot" takes VOLUME SNAPSHOT, or rm VOLUME SNAPSHOT`,
          'See: hutch volume snapshot --help',
        );
      }
      removeSnapshot(ctx, b!, c);
      out(c);
      return;
    }
    const rec = snapshotVolume(ctx, a!, b!);
    out(rec.name);
  },
};

export const snapshots: CommandSpec = {
  name: 'snapshots',
  summary: "List a volume's snapshots",
  usage: '[OPTIONS] VOLUME',
  minOperands: 1,
  maxOperands: 1,
  options: [
    { long: 'quiet', short: 'q', kind: 'bool', description: 'Only display snapshot names' },
    { long: 'format', kind: 'string', description: 'Format the output with a Go template, or json' },
    { long: 'json', kind: 'bool', description: 'Print JSON (the same as --format json)' },
  ],
  run: async (args) => {
    const { opts } = args;
    const list = listSnapshots(await contextFor(args), args.operands[0]!);
    if (opts.quiet) {
      out(list.map((s) => `${s.name}\n`).join(''));
      return;
    }
    const { formatList } = await import('../../util/format.lazy.ts');
    out(
      formatList(list.map(snapshotRow), {
        format: opts.json === true ? 'json' : typeof opts.format === 'string' ? opts.format : undefined,
        defaultTable: 'table {{.Name}}\t{{.CreatedAt}}\t{{.Size}}\t{{.Method}}',
        headers: { Name: 'SNAPSHOT', CreatedAt: 'CREATED', Method: 'KIND' },
      }),
    );
  },
};

export const rollback: CommandSpec = {
  name: 'rollback',
  summary: "Restore a volume's content from one of its snapshots",
  usage: '[OPTIONS] VOLUME SNAPSHOT',
  minOperands: 2,
  maxOperands: 2,
  options: [
    {
      long: 'force',
      short: 'f',
      kind: 'bool',
      description: 'Stop running containers that use the volume, roll back, and start them again',
    },
  ],
  run: async (args) => {
    const [volume, snap] = args.operands as [string, string];
    const r = await rollbackVolume(await contextFor(args), volume, snap, args.opts.force === true);
    if (r.restarted.length > 0) err(`restarted: ${r.restarted.join(', ')}`);
    out(volume);
  },
};

export const clone: CommandSpec = {
  name: 'clone',
  summary: 'Make a new volume from a snapshot',
  usage: 'VOLUME@SNAPSHOT NEWVOLUME',
  minOperands: 2,
  maxOperands: 2,
  run: async (args) => {
    const [ref, name] = args.operands as [string, string];
    out(cloneVolume(await contextFor(args), ref, name).volume.name);
  },
};

/** Writes every chunk to stdout, waiting when a pipe is full; a reader that went away ends the send. */
async function writeOut(chunks: AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of chunks) {
    let buf = chunk;
    while (buf.length > 0) {
      try {
        buf = buf.subarray(writeSync(1, buf));
      } catch (e) {
        if (errnoCode(e) !== 'EAGAIN') {
          throw new HutchError('VOLUME_SEND', `writing the stream failed: ${(e as Error).message}`, {
            hint: 'The receiving side stopped reading; see its error.',
          });
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  }
}

export const send: CommandSpec = {
  name: 'send',
  summary: 'Write a snapshot (or what changed since an older one) to stdout, for volume receive',
  usage: '[OPTIONS] VOLUME@SNAPSHOT',
  minOperands: 1,
  maxOperands: 1,
  options: [
    {
      long: 'from',
      kind: 'string',
      valueName: 'snapshot',
      description: 'Send only the changes since this older snapshot, which the receiver has',
    },
    {
      long: 'portable',
      kind: 'bool',
      description: "Use hutch's own format even where btrfs send could (rootful on btrfs)",
    },
  ],
  run: async (args) => {
    const ctx = await contextFor(args);
    if (process.getBuiltinModule('node:tty').isatty(1)) {
      throw usage(
        'volume send writes a binary stream, and stdout is a terminal',
        'Redirect it to a file, or pipe it: hutch volume send v@s | ssh host hutch volume receive v',
      );
    }
    const stream = sendVolume(ctx, {
      ref: args.operands[0]!,
      from: typeof args.opts.from === 'string' ? args.opts.from : undefined,
      portable: args.opts.portable === true,
    });
    await writeOut(stream);
  },
};

export const receive: CommandSpec = {
  name: 'receive',
  aliases: ['recv'],
  summary: 'Create or update a volume from a stream of volume send on stdin',
  usage: 'VOLUME',
  minOperands: 1,
  maxOperands: 1,
  run: async (args) => {
    const ctx = await contextFor(args);
    if (process.getBuiltinModule('node:tty').isatty(0)) {
      throw usage(
        'volume receive reads a stream on stdin, and stdin is a terminal',
        'Pipe it: hutch volume send v@s | hutch volume receive v',
      );
    }
    const { createReadStream } = process.getBuiltinModule('node:fs');
    const r = await receiveVolume(ctx, args.operands[0]!, createReadStream('', { fd: 0 }));
    out(`${r.volume}@${r.snapshot.name}`);
  },
};

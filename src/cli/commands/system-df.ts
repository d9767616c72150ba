/**
 * `hutch system df [-v] [--format]`: docker's table, rows and field names
 * (Type, TotalCount, Active, Size, Reclaimable; -v: one table per kind),
 * then a line on what the filesystem shares and compresses where it can
 * tell (../../engine/system-df.ts). `--format json` and `{{json .}}` give
 * docker's row objects; with -v, `--format json` gives every item.
 */
import { commandText, statusText } from '../../engine/containers/list.ts';
import { diskUsage } from '../../engine/system-df.ts';
import type { DfTotals, DiskUsage, FilesystemReport } from '../../engine/system-df.ts';
import { humanSize, timeAgo } from '../../util/human.ts';
import type { CommandSpec } from '../args/spec.ts';
import { contextFor } from '../context.ts';
import { out } from '../output.ts';

function reclaimable(t: DfTotals): string {
  if (t.size === 0) return humanSize(t.reclaimable);
  return `${humanSize(t.reclaimable)} (${Math.round((t.reclaimable / t.size) * 100)}%)`;
}

function totalRows(du: DiskUsage): Record<string, string>[] {
  return du.totals.map((t) => ({
    Type: t.type,
    TotalCount: String(t.total),
    Active: String(t.active),
    Size: humanSize(t.size),
    Reclaimable: reclaimable(t),
  }));
}

/** One line per figure the filesystem gave; nothing where it gave none. */
export function filesystemLines(fs: FilesystemReport | undefined): string[] {
  if (!fs) return [];
  const lines: string[] = [];
  if (fs.shared) {
    const onDisk = fs.shared.exclusive + fs.shared.shared;
    lines.push(
      `Filesystem (${fs.driver}): ${humanSize(fs.shared.referenced)} referenced, ${humanSize(onDisk)} on disk, ` +
        `${humanSize(fs.shared.shared)} shared between layers, containers and snapshots`,
    );
  }
  if (fs.compression) {
    lines.push(
      `Compression (${fs.compression.source}): ${fs.compression.ratio.toFixed(2)}x, ` +
        `${humanSize(fs.compression.uncompressed)} stored in ${humanSize(fs.compression.disk)}`,
    );
  }
  if (fs.zfs) {
    lines.push(
      `ZFS dataset ${fs.zfs.dataset}: ${humanSize(fs.zfs.used)} used, ${humanSize(fs.zfs.logicalUsed)} logical, ` +
        `compression ${fs.zfs.ratio.toFixed(2)}x`,
    );
  }
  return lines;
}

async function verbose(du: DiskUsage, format: string | undefined): Promise<string> {
  const { formatList } = await import('../../util/format.lazy.ts');
  const now = Date.now();
  const images = du.images.flatMap((i) => {
    const base = {
      ID: i.record.id.slice(0, 12),
      CreatedSince: timeAgo(i.record.created, now),
      Size: humanSize(i.size),
      SharedSize: humanSize(i.shared),
      UniqueSize: humanSize(i.size - i.shared),
      Containers: String(i.containers),
    };
    if (i.record.names.length === 0) return [{ Repository: '<none>', Tag: '<none>', ...base }];
    return i.record.names.map((n) => ({
      Repository: n.slice(0, n.lastIndexOf(':')),
      Tag: n.slice(n.lastIndexOf(':') + 1),
      ...base,
    }));
  });
  const containers = du.containers.map((c) => ({
    ID: c.record.id.slice(0, 12),
    Image: c.record.config.image,
    Command: JSON.stringify(commandText(c.record)),
    LocalVolumes: String(c.record.hostConfig.mounts.filter((m) => m.type === 'volume').length),
    Size: humanSize(c.size),
    RunningFor: timeAgo(c.record.created, now),
    Status: statusText(c.state, now),
    Names: c.record.name,
  }));
  const volumes = du.volumes.map((v) => ({ Name: v.name, Links: String(v.links), Size: humanSize(v.size) }));
  if (format === 'json') {
    return `${JSON.stringify({ Images: images, Containers: containers, Volumes: volumes, BuildCache: [], Filesystem: du.filesystem ?? null }, null, 4)}\n`;
  }
  return [
    'Images space usage:\n',
    formatList(images, {
      defaultTable:
        'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}',
      headers: {
        ID: 'IMAGE ID',
        CreatedSince: 'CREATED',
        SharedSize: 'SHARED SIZE',
        UniqueSize: 'UNIQUE SIZE',
      },
    }),
    '\nContainers space usage:\n',
    formatList(containers, {
      defaultTable:
        'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}',
      headers: { ID: 'CONTAINER ID', LocalVolumes: 'LOCAL VOLUMES', RunningFor: 'CREATED' },
    }),
    '\nLocal Volumes space usage:\n',
    formatList(volumes, {
      defaultTable: 'table {{.Name}}\t{{.Links}}\t{{.Size}}',
      headers: { Name: 'VOLUME NAME' },
    }),
    '\nBuild cache usage: 0B\n',
    ...filesystemLines(du.filesystem).map((l, i) => `${i === 0 ? '\n' : ''}${l}\n`),
  ].join('');
}

export const df: CommandSpec = {
  name: 'df',
  summary: 'Show disk usage: images, containers, volumes, and what the filesystem shares and compresses',
  maxOperands: 0,
  options: [
    { long: 'verbose', short: 'v', kind: 'bool', description: 'Show detailed information on space usage' },
    { long: 'format', kind: 'string', description: 'Format the output with a Go template, or json' },
  ],
  run: async (args) => {
    const du = diskUsage(await contextFor(args));
    const format = typeof args.opts.format === 'string' ? args.opts.format : undefined;
    if (args.opts.verbose === true) {
      out(await verbose(du, format));
      return;
    }
    const { formatList } = await import('../../util/format.lazy.ts');
    let text = formatList(totalRows(du), {
      format,
      defaultTable: 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
      headers: { TotalCount: 'TOTAL' },
    });
    // The filesystem's figures follow docker's table only: templates and JSON keep docker's shape.
    if (format === undefined || format.trim() === 'table') {
      const lines = filesystemLines(du.filesystem);
      if (lines.length > 0) text += `\n${lines.join('\n')}\n`;
    }
    out(text);
  },
};

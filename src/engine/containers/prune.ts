/** `container prune`: every container that is not running, removed with its anonymous volumes. */
import { parseTimeFilter } from '../../runtime/logs.ts';
import { HutchError } from '../../util/errors.ts';
import { views } from './list.ts';
import type { Containers } from './open.ts';
import { removeContainer } from './remove.ts';
import { duSize } from './size.ts';

export function pruneContainers(c: Containers, filters: string[]): { removed: string[]; reclaimed: number } {
  let list = views(c).filter((v) => v.state.status !== 'running' && v.state.status !== 'paused');
  for (const f of filters) {
    const [key, ...rest] = f.split('=');
    const value = rest.join('=');
    if (key === 'until') {
      const ns = parseTimeFilter(value);
      list = list.filter((v) => BigInt(Date.parse(v.rec.created)) * 1_000_000n < ns);
    } else if (key === 'label' || key === 'label!') {
      const [k, val] = value.split('=', 2) as [string, string | undefined];
      const match = (labels: Record<string, string>): boolean =>
        k in labels && (val === undefined || labels[k] === val);
      list = list.filter((v) => (key === 'label') === match(v.rec.config.labels));
    } else {
      throw new HutchError('BAD_FILTER', `invalid filter "${key}"`, {
        hint: 'prune filters: until=TIME, label=KEY[=VALUE], label!=KEY[=VALUE].',
      });
    }
  }
  const removed: string[] = [];
  let reclaimed = 0;
  for (const v of list) {
    const size = duSize(c, v.rec);
    if (removeContainer(c, v.rec.id, { force: false, volumes: true })) {
      removed.push(v.rec.id);
      reclaimed += size;
    }
  }
  return { removed, reclaimed };
}

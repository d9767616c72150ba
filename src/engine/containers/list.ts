/**
 * `ps`: rows of what each container is now. State comes from the records
 * plus one liveness check per running container (a /proc read), so listing
 * hundreds of containers reads one file (the store's summary cache, see
 * ContainerStore.summaries) and runs nothing.
 */
import { observedState } from '../../runtime/containers/liveness.ts';
import type { ContainerSummary } from '../../runtime/containers/store.ts';
import type { ContainerRecord, ContainerState } from '../../runtime/containers/types.ts';
import { HutchError } from '../../util/errors.ts';
import type { ContainerReader } from './open-light.ts';

export interface ContainerView<R extends ContainerSummary = ContainerRecord> {
  rec: R;
  state: ContainerState;
}

/** Every container with its full record, newest first. */
export function views(c: ContainerReader): ContainerView[] {
  return viewsOf(c, c.store.list());
}

/** Every container with what `ps` shows and filters on, newest first: quicker than views. */
export function summaryViews(c: ContainerReader): ContainerView<ContainerSummary>[] {
  return viewsOf(c, c.store.summaries());
}

function viewsOf<R extends ContainerSummary>(c: ContainerReader, recs: R[]): ContainerView<R>[] {
  const out: ContainerView<R>[] = [];
  for (const rec of recs) {
    const s = rec.state.status;
    // Only a container said to run can have ended since: the others' records are the truth.
    out.push({
      rec,
      state: s === 'running' || s === 'paused' ? observedState(rec, c.store.exitFile(rec.id)) : rec.state,
    });
  }
  return out.sort((a, b) => (a.rec.created < b.rec.created ? 1 : a.rec.created > b.rec.created ? -1 : 0));
}

function ago(iso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (s < 3600) return m === 1 ? 'About a minute' : `${m} minutes`;
  const h = Math.round(s / 3600);
  if (s < 48 * 3600) return h === 1 ? 'About an hour' : `${h} hours`;
  const d = Math.round(s / 86400);
  if (d < 14) return `${d} days`;
  if (d < 60) return `${Math.round(d / 7)} weeks`;
  if (d < 730) return `${Math.round(d / 30)} months`;
  return `${Math.round(d / 365)} years`;
}

/** docker's CREATED column of `ps`: "5 minutes ago". */
export function createdAgo(iso: string, now = Date.now()): string {
  return `${ago(iso, now)} ago`;
}

/** docker's STATUS column: "Up 3 minutes (healthy)", "Exited (0) 2 hours ago", "Created". */
export function statusText(s: ContainerState, now = Date.now()): string {
  switch (s.status) {
    case 'running': {
      const health = s.health
        ? ` (${s.health.status === 'starting' ? 'health: starting' : s.health.status})`
        : '';
      return `Up ${ago(s.startedAt, now)}${health}`;
    }
    case 'paused':
      return `Up ${ago(s.startedAt, now)} (Paused)`;
    case 'exited':
      return `Exited (${s.exitCode}) ${ago(s.finishedAt, now)} ago`;
    case 'created':
      return 'Created';
    case 'removing':
      return 'Removal In Progress';
    default:
      return 'Dead';
  }
}

export function commandText(rec: ContainerSummary): string {
  return [...rec.config.entrypoint, ...rec.config.cmd].join(' ');
}

/** Each filter key may repeat: values of one key are alternatives, keys must all match (docker's rule). */
export function filterViews<R extends ContainerSummary>(
  list: ContainerView<R>[],
  filters: string[],
  c: ContainerReader,
): ContainerView<R>[] {
  const byKey = new Map<string, string[]>();
  for (const f of filters) {
    const eq = f.indexOf('=');
    if (eq < 1)
      throw new HutchError('BAD_FILTER', `invalid filter "${f}"`, { hint: 'Use --filter KEY=VALUE.' });
    const k = f.slice(0, eq);
    byKey.set(k, [...(byKey.get(k) ?? []), f.slice(eq + 1)]);
  }
  let out = list;
  for (const [key, values] of byKey) {
    const any = (pred: (v: string, x: ContainerView<R>) => boolean): void => {
      out = out.filter((x) => values.some((v) => pred(v, x)));
    };
    switch (key) {
      case 'id':
        any((v, x) => x.rec.id.startsWith(v));
        break;
      case 'name':
        any((v, x) => new RegExp(v).test(x.rec.name));
        break;
      case 'status': {
        const known = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];
        for (const v of values) {
          if (!known.includes(v))
            throw new HutchError('BAD_FILTER', `invalid status filter "${v}"`, {
              hint: `Use one of: ${known.join(', ')}.`,
            });
        }
        any((v, x) => x.state.status === v);
        break;
      }
      case 'exited':
        any((v, x) => x.state.status === 'exited' && x.state.exitCode === Number(v));
        break;
      case 'label':
        out = out.filter((x) =>
          values.every((v) => {
            const [k, val] = v.split('=', 2) as [string, string | undefined];
            return k in x.rec.config.labels && (val === undefined || x.rec.config.labels[k] === val);
          }),
        );
        break;
      case 'ancestor': {
        const ids = values.map((v) => {
          try {
            return (
              c
                .imageDb()
                .read()
                .images.find(
                  (i) =>
                    i.id.startsWith(v.replace(/^sha256:/, '')) ||
                    i.names.some((n) => n === v || n.endsWith(`/${v}`) || n.endsWith(`/${v}:latest`)),
                )?.id ?? v
            );
          } catch {
            return v;
          }
        });
        out = out.filter((x) => ids.includes(x.rec.config.imageId) || values.includes(x.rec.config.image));
        break;
      }
      case 'restart-policy':
        any((v, x) => x.rec.hostConfig.restartPolicy.name === v);
        break;
      case 'health':
        any((v, x) => (x.state.health?.status ?? 'none') === v);
        break;
      case 'volume':
        any((v, x) =>
          x.rec.hostConfig.mounts.some((m) => m.name === v || m.source === v || m.destination === v),
        );
        break;
      case 'before':
      case 'since': {
        const ref = c.store.get(values[0]!);
        out = out.filter((x) =>
          key === 'before' ? x.rec.created < ref.created : x.rec.created > ref.created,
        );
        break;
      }
      default:
        throw new HutchError('BAD_FILTER', `invalid filter "${key}"`, {
          hint: 'ps filters: id, name, label, status, exited, ancestor, before, since, volume, health, restart-policy.',
        });
    }
  }
  return out;
}

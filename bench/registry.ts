/**
 * Every scenario the harness knows, one file per topic under
 * bench/scenarios/. To add a topic: write bench/scenarios/<topic>.ts exporting
 * a Scenario[] and list it here; names must stay unique.
 */
import type { Scenario } from './types.ts';
import { containers } from './scenarios/containers.ts';
import { network } from './scenarios/network.ts';
import { pull } from './scenarios/pull.ts';
import { startup } from './scenarios/startup.ts';
import { storage } from './scenarios/storage.ts';

export const TOPICS: Record<string, Scenario[]> = {
  startup,
  pull,
  containers,
  network,
  storage,
};

export function allScenarios(): Scenario[] {
  const all = Object.values(TOPICS).flat();
  const seen = new Set<string>();
  for (const s of all) {
    if (seen.has(s.name)) throw new Error(`two bench scenarios are named ${s.name}`);
    seen.add(s.name);
    validate(s);
  }
  return all;
}

function validate(s: Scenario): void {
  const problem = (what: string): never => {
    throw new Error(`bench scenario ${s.name}: ${what}`);
  };
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(s.name)) problem('name must be lower-case letters, digits, . _ -');
  if (!Number.isInteger(s.rounds) || s.rounds < 1) problem('rounds must be a positive integer');
  if (!Number.isInteger(s.warmup) || s.warmup < 0) problem('warmup must be a non-negative integer');
  const metric = s.target?.metric ?? 'time';
  if (metric === 'throughput' && !s.measure) problem('a throughput metric needs measure()');
  if (s.target?.vsFloorMax !== undefined && !s.floor) problem('vsFloorMax needs a floor command');
}

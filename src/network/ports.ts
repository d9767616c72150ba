/**
 * Published ports: docker's `-p` grammar, the ports `-P` publishes, and the
 * forms `port`, `ps` and `inspect` print. Parsing is pure and happens at
 * create, so a bad `-p` is refused before anything is made; host ports left
 * to hutch (`-p 80`, `-P`) are chosen at each start (see allocate.ts).
 */
import { HutchError } from '../util/errors.ts';

export type PortProtocol = 'tcp' | 'udp';

/** One container port published on the host. */
export interface PortBinding {
  /** The host address to listen on; '' for every address (IPv4 and IPv6). */
  hostIp: string;
  /** The first host port allowed; 0 for any free port. */
  hostPort: number;
  /** With a host range for one container port (`8000-8010:80`): the last port of the range. */
  hostPortEnd?: number;
  containerPort: number;
  protocol: PortProtocol;
}

function bad(spec: string, why: string): HutchError {
  return new HutchError('BAD_FLAG', `-p ${spec}: ${why}`, {
    hint: 'Give [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp], e.g. 8080:80, 127.0.0.1:8080:80/tcp, 5353:53/udp or 8000-8009:80-89.',
  });
}

interface Range {
  first: number;
  last: number;
}

function portRange(spec: string, text: string, what: string): Range {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) throw bad(spec, `"${text}" is not a ${what} or a range of them`);
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  for (const p of [first, last]) {
    if (!(p >= 1 && p <= 65535)) throw bad(spec, `${what} ${p} is outside 1-65535`);
  }
  if (last < first) throw bad(spec, `the range ${text} ends before it starts`);
  return { first, last };
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** A host address as `-p` takes it: IPv4, or IPv6 in brackets (or bare, as docker also takes). */
export function hostAddress(spec: string, text: string): string {
  const inner = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const v4 = IPV4.exec(inner);
  if (v4) {
    if (v4.slice(1).some((o) => Number(o) > 255)) throw bad(spec, `"${text}" is not an IP address`);
    return inner === '0.0.0.0' ? '' : inner;
  }
  if (/^[0-9a-fA-F:.]+$/.test(inner) && inner.includes(':')) return inner === '::' ? '' : inner.toLowerCase();
  throw bad(spec, `"${text}" is not an IP address`);
}

/** Splits IP:HOST:CONTAINER where the IP may be an IPv6 address in brackets. */
function splitSpec(spec: string, body: string): [string | undefined, string | undefined, string] {
  if (body.startsWith('[')) {
    const close = body.indexOf(']');
    if (close < 0) throw bad(spec, 'an IPv6 address is missing its closing "]"');
    const rest = body.slice(close + 1).split(':');
    if (rest.length !== 3 || rest[0] !== '') throw bad(spec, 'expected [IPv6]:HOST_PORT:CONTAINER_PORT');
    return [body.slice(0, close + 1), rest[1], rest[2]!];
  }
  const parts = body.split(':');
  if (parts.length === 1) return [undefined, undefined, parts[0]!];
  if (parts.length === 2) return [undefined, parts[0], parts[1]!];
  if (parts.length === 3) return [parts[0], parts[1], parts[2]!];
  // A bare IPv6 address: everything before the last two fields.
  return [parts.slice(0, -2).join(':'), parts.at(-2), parts.at(-1)!];
}

export function parseProtocol(spec: string, text: string | undefined): PortProtocol {
  const p = (text ?? 'tcp').toLowerCase();
  if (p === 'tcp' || p === 'udp') return p;
  if (p === 'sctp')
    throw bad(spec, 'SCTP ports cannot be published rootless (pasta and slirp4netns carry TCP and UDP)');
  throw bad(spec, `unknown protocol "${text}"`);
}

/** One `-p` value as the bindings it stands for (a range gives one per port). */
export function parsePublish(spec: string): PortBinding[] {
  const slash = spec.lastIndexOf('/');
  const body = slash >= 0 && !spec.slice(slash).includes(':') ? spec.slice(0, slash) : spec;
  const protocol = parseProtocol(spec, slash >= 0 && body !== spec ? spec.slice(slash + 1) : undefined);
  const [ipText, hostText, containerText] = splitSpec(spec, body);
  const hostIp = ipText === undefined || ipText === '' ? '' : hostAddress(spec, ipText);
  const inner = portRange(spec, containerText, 'container port');
  const count = inner.last - inner.first + 1;
  if (hostText === undefined || hostText === '') {
    return ports(inner).map((containerPort) => ({ hostIp, hostPort: 0, containerPort, protocol }));
  }
  const outer = portRange(spec, hostText, 'host port');
  const outerCount = outer.last - outer.first + 1;
  if (count === 1 && outerCount > 1) {
    // docker: one container port on the first free port of the host range.
    return [{ hostIp, hostPort: outer.first, hostPortEnd: outer.last, containerPort: inner.first, protocol }];
  }
  if (outerCount !== count) {
    throw bad(spec, `the host range has ${outerCount} ports and the container range ${count}`);
  }
  return ports(inner).map((containerPort, i) => ({
    hostIp,
    hostPort: outer.first + i,
    containerPort,
    protocol,
  }));
}

function ports(r: Range): number[] {
  return Array.from({ length: r.last - r.first + 1 }, (_, i) => r.first + i);
}

/** `--expose` and the image's ExposedPorts ("80", "80/tcp", "7000-7002/udp") as single ports. */
export function parseExposed(spec: string): { port: number; protocol: PortProtocol }[] {
  const [range, proto] = spec.split('/');
  const protocol = parseProtocol(spec, proto);
  return ports(portRange(spec, range ?? '', 'port')).map((port) => ({ port, protocol }));
}

/** `-P`: every exposed port on a free host port of every address, after the explicit ones. */
export function publishAllBindings(exposed: string[], explicit: PortBinding[]): PortBinding[] {
  const taken = new Set(explicit.map((b) => `${b.containerPort}/${b.protocol}`));
  const out: PortBinding[] = [];
  for (const e of exposed.flatMap(parseExposed)) {
    const key = `${e.port}/${e.protocol}`;
    if (taken.has(key)) continue;
    taken.add(key);
    out.push({ hostIp: '', hostPort: 0, containerPort: e.port, protocol: e.protocol });
  }
  return out;
}

/** Refuses two bindings of one host address, port and protocol, which no start could satisfy. */
export function checkDistinct(bindings: PortBinding[]): void {
  const seen = new Map<string, PortBinding>();
  for (const b of bindings) {
    if (b.hostPort === 0 || b.hostPortEnd !== undefined) continue;
    const key = `${b.hostIp}|${b.hostPort}|${b.protocol}`;
    const other = seen.get(key);
    if (other) {
      throw new HutchError(
        'BAD_FLAG',
        `host port ${b.hostPort}/${b.protocol} is published twice (for container ports ${other.containerPort} and ${b.containerPort})`,
        { hint: 'Give each container port its own host port.' },
      );
    }
    seen.set(key, b);
  }
}

/** "80/tcp", the key docker uses in NetworkSettings.Ports. */
export function portKey(b: { containerPort: number; protocol: PortProtocol }): string {
  return `${b.containerPort}/${b.protocol}`;
}

/** The host side as docker prints it: 0.0.0.0:8080, [::1]:8080. */
export function hostSide(b: PortBinding): string {
  const ip = b.hostIp === '' ? '0.0.0.0' : b.hostIp;
  return `${ip.includes(':') ? `[${ip}]` : ip}:${b.hostPort}`;
}

/** `ps`'s PORTS column: "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp". */
export function formatPorts(bindings: PortBinding[]): string {
  return bindings.map((b) => `${hostSide(b)}->${portKey(b)}`).join(', ');
}

/** The per-container /etc/hosts, /etc/hostname and /etc/resolv.conf. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  hostnameFile,
  hostsFile,
  parseAddHost,
  resolvConf,
  validHostname,
} from '../../../src/runtime/etc-files.ts';

const LOCALHOST = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

describe('hostsFile', () => {
  it('localhost lines, --add-host entries, then the hostname on the container addresses', () => {
    const text = hostsFile({
      hostname: 'web',
      addHosts: [
        { host: 'db', ip: '10.0.0.5' },
        { host: 'v6', ip: '::1' },
      ],
      containerIps: ['10.88.0.2', 'fd00::2'],
    });
    assert.equal(
      text,
      [...LOCALHOST, '10.0.0.5\tdb', '::1\tv6', '10.88.0.2\tweb', 'fd00::2\tweb'].join('\n') + '\n',
    );
  });

  it('without container addresses the hostname is on loopback', () => {
    const text = hostsFile({ hostname: 'box', addHosts: [] });
    assert.equal(text, [...LOCALHOST, '127.0.0.1\tbox', '::1\tbox'].join('\n') + '\n');
    assert.equal(hostsFile({ hostname: 'box', addHosts: [], containerIps: [] }), text);
  });

  it('a dotted hostname is also listed by its first label', () => {
    const text = hostsFile({ hostname: 'web.example.com', addHosts: [], containerIps: ['10.0.0.9'] });
    assert.ok(text.endsWith('10.0.0.9\tweb.example.com web\n'));
  });

  it('extra text goes last, ending in a newline', () => {
    const text = hostsFile({
      hostname: 'h',
      addHosts: [],
      containerIps: ['10.0.0.2'],
      extra: '10.0.0.3\tother',
    });
    assert.ok(text.endsWith('10.0.0.2\th\n10.0.0.3\tother\n'));
  });
});

describe('parseAddHost', () => {
  it('takes host:ip and host=ip', () => {
    assert.deepEqual(parseAddHost('db:10.0.0.5'), { host: 'db', ip: '10.0.0.5' });
    assert.deepEqual(parseAddHost('db=10.0.0.5'), { host: 'db', ip: '10.0.0.5' });
  });

  it('takes IPv6 bare after the first colon, in brackets, or after =, and keeps it as written', () => {
    assert.deepEqual(parseAddHost('h:::1'), { host: 'h', ip: '::1' });
    assert.deepEqual(parseAddHost('h:[::1]'), { host: 'h', ip: '::1' });
    assert.deepEqual(parseAddHost('h=[2001:db8::1]'), { host: 'h', ip: '2001:db8::1' });
    assert.deepEqual(parseAddHost('h:0:0:0:0:0:0:0:1'), { host: 'h', ip: '0:0:0:0:0:0:0:1' });
  });

  it('passes host-gateway on for the caller to resolve', () => {
    assert.deepEqual(parseAddHost('host.docker.internal:host-gateway'), {
      host: 'host.docker.internal',
      ip: 'host-gateway',
    });
  });

  it('refuses what is not host and address', () => {
    for (const bad of [
      'db',
      ':10.0.0.1',
      'db:',
      'db:notanip',
      'db:10.0.0.256',
      'a b:1.2.3.4',
      'db:[]',
      'a:b=1.2.3.4',
    ]) {
      assert.throws(() => parseAddHost(bad), { code: 'BAD_FLAG' }, bad);
    }
  });
});

describe('hostname', () => {
  it('hostnameFile is the name and a newline', () => {
    assert.equal(hostnameFile('web'), 'web\n');
  });

  it('validHostname takes DNS names up to the kernel limit', () => {
    for (const ok of [
      'a',
      'web-1',
      'web.example.com',
      'my_service',
      'x'.repeat(63),
      `${'a'.repeat(31)}.${'b'.repeat(32)}`,
    ]) {
      assert.equal(validHostname(ok), true, ok);
    }
    for (const bad of [
      '',
      '-a',
      'a-',
      'a..b',
      '.a',
      'a.',
      'a b',
      'a/b',
      'x'.repeat(65),
      'x'.repeat(64) + '.y',
      'é',
    ]) {
      assert.equal(validHostname(bad), false, bad);
    }
  });
});

const HOST_RESOLV = [
  '# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).',
  'nameserver 127.0.0.53',
  'nameserver 192.168.1.1',
  'nameserver ::1',
  'nameserver 2001:db8::53',
  'search home.lan corp.example',
  'options edns0 trust-ad',
  'sortlist 130.155.160.0/255.255.240.0',
  '',
].join('\n');

describe('resolvConf', () => {
  it('on a private network drops loopback nameservers and the host comments, keeps the rest', () => {
    assert.equal(
      resolvConf({ hostResolvConf: HOST_RESOLV, network: 'private' }),
      [
        'sortlist 130.155.160.0/255.255.240.0',
        'nameserver 192.168.1.1',
        'nameserver 2001:db8::53',
        'search home.lan corp.example',
        'options edns0 trust-ad',
        '',
      ].join('\n'),
    );
  });

  it('falls back to public nameservers when only loopback ones were there', () => {
    const host = 'nameserver 127.0.0.53\nnameserver 0:0:0:0:0:0:0:1\nsearch lan\n';
    assert.equal(
      resolvConf({ hostResolvConf: host, network: 'private' }),
      'nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\n',
    );
    assert.equal(
      resolvConf({ hostResolvConf: '', network: 'none' }),
      'nameserver 8.8.8.8\nnameserver 8.8.4.4\n',
    );
  });

  it('on the host network keeps the host file as it is', () => {
    assert.equal(resolvConf({ hostResolvConf: HOST_RESOLV, network: 'host' }), HOST_RESOLV);
  });

  it('--dns, --dns-search and --dns-option replace the host parts, loopback --dns included', () => {
    const text = resolvConf({
      hostResolvConf: HOST_RESOLV,
      network: 'private',
      dns: ['10.0.0.2', '127.0.0.1'],
      dnsSearch: ['example.com'],
      dnsOptions: ['ndots:2', 'timeout:1'],
    });
    assert.equal(
      text,
      [
        'sortlist 130.155.160.0/255.255.240.0',
        'nameserver 10.0.0.2',
        'nameserver 127.0.0.1',
        'search example.com',
        'options ndots:2 timeout:1',
        '',
      ].join('\n'),
    );
  });

  it('--dns-search . removes the search domains', () => {
    const text = resolvConf({ hostResolvConf: HOST_RESOLV, network: 'private', dnsSearch: ['.'] });
    assert.ok(!text.includes('search'));
    assert.ok(text.includes('nameserver 192.168.1.1\n'));
  });

  it('overrides on the host network keep the host nameservers, loopback too', () => {
    const text = resolvConf({ hostResolvConf: HOST_RESOLV, network: 'host', dnsOptions: ['ndots:5'] });
    assert.ok(text.includes('nameserver 127.0.0.53\n'));
    assert.ok(text.includes('options ndots:5\n'));
    assert.ok(!text.includes('edns0'));
  });

  it('the last search or domain line wins, as for the resolver', () => {
    const host = 'nameserver 10.1.1.1\nsearch a.example\ndomain b.example\n';
    assert.equal(
      resolvConf({ hostResolvConf: host, network: 'private' }),
      'nameserver 10.1.1.1\nsearch b.example\n',
    );
  });

  it('refuses a --dns that is not an address and a bad --dns-search', () => {
    assert.throws(() => resolvConf({ hostResolvConf: '', network: 'private', dns: ['dns.google'] }), {
      code: 'BAD_FLAG',
    });
    assert.throws(() => resolvConf({ hostResolvConf: '', network: 'private', dnsSearch: ['a b'] }), {
      code: 'BAD_FLAG',
    });
  });
});

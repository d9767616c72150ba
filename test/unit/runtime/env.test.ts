/** A container's environment: env files, -e, and the merge with the image's. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_PATH, mergeEnv, parseEnvFile, parseEnvFlag } from '../../../src/runtime/env.ts';

const HOST = { HOME: '/home/me', EMPTY: '', LANG: 'C.UTF-8' };

describe('parseEnvFile', () => {
  it("follows docker's rules: comments, blanks, literal values, bare names from the host", () => {
    const text = [
      '# a comment',
      '',
      '   ',
      'A=1',
      '  B=two words  ',
      'C="quoted"',
      "D='single'",
      'E=',
      'F=x=y # not a comment',
      'HOME',
      '  LANG',
      'UNSET_ON_HOST',
      'EMPTY',
      '\t# indented comment',
    ].join('\n');
    assert.deepEqual(parseEnvFile(text, 'app.env', HOST), [
      'A=1',
      'B=two words  ',
      'C="quoted"',
      "D='single'",
      'E=',
      'F=x=y # not a comment',
      'HOME=/home/me',
      'LANG=C.UTF-8',
      'EMPTY=',
    ]);
  });

  it('drops a byte order mark and CR line endings', () => {
    assert.deepEqual(parseEnvFile('\uFEFFA=1\r\nB=2\r\n', 'f', {}), ['A=1', 'B=2']);
  });

  it('names the file and line of a name with whitespace', () => {
    const text = 'A=1\n# c\n\nBAD KEY=1\n';
    assert.throws(() => parseEnvFile(text, 'conf/app.env', {}), {
      code: 'BAD_ENV_FILE',
      message: 'conf/app.env:4: variable "BAD KEY" contains whitespace',
    });
    assert.throws(() => parseEnvFile('A=1\nKEY \n', 'x.env', { KEY: 'v' }), {
      code: 'BAD_ENV_FILE',
      message: 'x.env:2: variable "KEY " contains whitespace',
    });
  });

  it('refuses a line without a name', () => {
    assert.throws(() => parseEnvFile('=value', 'e', {}), {
      code: 'BAD_ENV_FILE',
      message: 'e:1: no variable name before =',
    });
  });
});

describe('parseEnvFlag', () => {
  it('keeps K=V as it is and takes a bare name from the host, or drops it', () => {
    assert.equal(parseEnvFlag('A=b=c', HOST), 'A=b=c');
    assert.equal(parseEnvFlag('A=', HOST), 'A=');
    assert.equal(parseEnvFlag('HOME', HOST), 'HOME=/home/me');
    assert.equal(parseEnvFlag('EMPTY', HOST), 'EMPTY=');
    assert.equal(parseEnvFlag('NOPE', HOST), undefined);
  });

  it('refuses an entry without a name', () => {
    assert.throws(() => parseEnvFlag('=x', HOST), { code: 'BAD_FLAG' });
    assert.throws(() => parseEnvFlag('', HOST), { code: 'BAD_FLAG' });
  });
});

describe('mergeEnv', () => {
  it('defaults first, then image, files and flags, later winning in place', () => {
    const env = mergeEnv({
      image: ['PATH=/opt/bin:/usr/bin', 'LANG=C', 'APP=image'],
      hostname: 'web',
      tty: false,
      files: ['APP=file', 'FROM_FILE=1'],
      flags: ['APP=flag', 'HOSTNAME=custom', 'LAST=1'],
    });
    assert.deepEqual(env, [
      'PATH=/opt/bin:/usr/bin',
      'HOSTNAME=custom',
      'container=hutch',
      'LANG=C',
      'APP=flag',
      'FROM_FILE=1',
      'LAST=1',
    ]);
  });

  it('adds the default PATH, TERM with a terminal, and no HOSTNAME without a hostname', () => {
    assert.deepEqual(mergeEnv({ image: [], tty: true, files: [], flags: [] }), [
      `PATH=${DEFAULT_PATH}`,
      'TERM=xterm',
      'container=hutch',
    ]);
  });

  it('leaves TERM and container to the image or the user', () => {
    const env = mergeEnv({ image: ['TERM=vt100', 'container=oci'], tty: true, files: [], flags: [] });
    assert.deepEqual(env, [`PATH=${DEFAULT_PATH}`, 'TERM=vt100', 'container=oci']);
  });

  it('files apply before flags', () => {
    const env = mergeEnv({ image: [], tty: false, files: ['X=file'], flags: ['X=flag'] });
    assert.ok(env.includes('X=flag'));
    assert.ok(!env.includes('X=file'));
  });

  it('leaves out entries that are no variable', () => {
    const env = mergeEnv({ image: ['NOEQUALS', '=v', ''], tty: false, files: [], flags: [] });
    assert.deepEqual(env, [`PATH=${DEFAULT_PATH}`, 'container=hutch']);
  });
});

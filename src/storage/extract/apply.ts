/**
 * Puts tar entries on disk under a destination directory, never outside it.
 *
 * - Every parent of an entry is resolved inside the destination as if it
 *   were `/` (chroot semantics, what container engines do): each component
 *   is lstat'ed; a symbolic link is followed with its target taken relative
 *   to the destination (`/` and `..` at the top stay at the destination), so
 *   `evil -> /` then `evil/etc/passwd` writes DEST/etc/passwd. Missing
 *   parents are made (0755, root). The resolved, symlink-free directories are
 *   cached by their lexical path; anything that removes a directory or a
 *   symbolic link clears the cache.
 * - The last component is never followed: files are opened O_CREAT|O_EXCL|
 *   O_NOFOLLOW, mkdir/symlink/link/mknod do not follow, and what is in the
 *   way is removed first (a symbolic link is replaced, not written through).
 *   A directory over a directory merges; anything else replaces (docker).
 * - Ownership, then xattrs (chown clears security.capability), then the mode
 *   (chown clears setuid/setgid), then times. Directories get their mode and
 *   times at the end, after their content.
 * - The bodies of large files without xattrs are written behind, on the
 *   thread pool (util/write-behind.ts), while the next entries are applied:
 *   copying into the page cache is most of a layer's cost on some machines.
 *   Such a file is finished (owner, mode, times: after its last write, which
 *   would change them) through its descriptor alone, never by path, since
 *   later entries may have replaced the path meanwhile. `settle()` waits for
 *   them all.
 */
import {
  closeSync,
  chmodSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { sys } from '../../sys/native.ts';
import { HutchError, errnoCode } from '../../util/errors.ts';
import { WriteBehind, closeWhenWritten } from '../../util/write-behind.ts';
import { isWithin, joinRel, normalizeName, splitParent, unsafe } from './paths.ts';
import type { ExtractOptions } from './index.ts';
import { T, invalid, unsupported } from './tar.ts';

/** One tar member, its PAX and GNU extensions already merged in. */
export interface Entry {
  /** The name as the tar gives it (for messages). */
  name: string;
  type: string;
  linkname: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  atime: number | undefined;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer> | undefined;
}

const WH = '.wh.';
const WH_META = '.wh..wh.';
const WH_OPAQUE = '.wh..wh..opq';
const MAX_SYMLINK_HOPS = 40;

/**
 * Files at least this large are written behind (smaller ones cost more to
 * hand to the thread pool than to write), up to this many files or bytes at
 * a time, past which the caller waits.
 */
export const BEHIND_MIN = 128 << 10;
const BEHIND_FILES = 64;
export const BEHIND_BYTES = 32 << 20;

const S_ISGID = 0o2000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

interface Deferred {
  mode: number;
  atime: number;
  mtime: number;
}

interface Note {
  count: number;
  example: string;
  say: (count: number, example: string) => string;
}

function notADirectory(name: string, rel: string): HutchError {
  return new HutchError(
    'LAYER_INVALID',
    `cannot extract ${name}: ${rel} is in the way and is not a directory`,
    { hint: 'The layer contradicts itself or its parent layers: the image is damaged.' },
  );
}

export class Applier {
  private readonly root: string;
  private readonly opts: ExtractOptions;
  /** Lexical directory path -> its real, symlink-free path (both relative to the root). */
  private readonly dirs = new Map<string, string>([['', '']]);
  /** Links that cached resolutions went through. */
  private readonly followed = new Set<string>();
  /** Directories of this layer: mode and times are set last. */
  private readonly deferred = new Map<string, Deferred>();
  /** 'apply' mode: real paths made by this layer (and their parents), which opaque markers keep. */
  private readonly unpacked: Set<string> | undefined;
  /** Lexical names of device nodes skipped rootless, so hardlinks to them are skipped too. */
  private readonly skipped = new Set<string>();
  private readonly notes = new Map<string, Note>();
  private readonly newFileFlags: number;
  private readonly dirFlags: number;
  private fd = -1;
  private fdPath = '';
  private fileEntry: Entry | undefined;
  /** The real directory the current file is in. */
  private fileParent = '';
  /** The current file's body, when written behind. */
  private body: WriteBehind | undefined;
  /** Files written behind and not yet finished. */
  private readonly behind = new Set<WriteBehind>();
  private readonly finishing = new Set<Promise<void>>();
  /** Who owns an inode this process makes: skipped chowns to that owner (see own()). */
  private readonly uid = process.geteuid!();
  private readonly gid = process.getegid!();
  /** Real directory -> the group a new inode in it gets (its own where it is setgid). */
  private readonly groupOf = new Map<string, number>();
  /** Whether new inodes have been seen to get the owner expected (checked on the first one). */
  private ownerChecked: boolean | undefined;
  /** The first write behind that failed, with its entry's name. */
  failure: { name: string; error: unknown } | undefined;
  private aborted = false;

  constructor(dest: string, opts: ExtractOptions) {
    this.root = dest.length > 1 && dest.endsWith('/') ? dest.slice(0, -1) : dest;
    this.opts = opts;
    this.unpacked = opts.whiteouts === 'apply' ? new Set(['']) : undefined;
    this.newFileFlags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    this.dirFlags = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  private note(key: string, example: string, say: Note['say']): void {
    const n = this.notes.get(key);
    if (n) n.count++;
    else this.notes.set(key, { count: 1, example, say });
  }

  private markUnpacked(rel: string): void {
    const set = this.unpacked;
    if (!set) return;
    for (let p = rel; !set.has(p); p = splitParent(p)[0]) set.add(p);
  }

  /** Resolutions may have passed through what was removed: start the cache afresh. */
  private resetCache(): void {
    this.groupOf.clear();
    this.dirs.clear();
    this.dirs.set('', '');
    this.followed.clear();
  }

  /** The directory `rel` was removed: cached resolutions and deferred directories below it are gone. */
  private forgetDir(rel: string): void {
    this.resetCache();
    for (const key of this.deferred.keys()) if (isWithin(key, rel)) this.deferred.delete(key);
  }

  /**
   * The symbolic link `rel` was removed. Cached paths never contain links,
   * so only lexical paths resolved through it go stale, if any.
   */
  private forgetLink(rel: string): void {
    if (this.followed.has(rel)) this.resetCache();
  }

  // ---- resolution inside the root ------------------------------------------------------------

  /**
   * The real path of the directory at lexical path `lex`, following symbolic
   * links inside the root; missing directories are made when `create`, else
   * the result is undefined.
   */
  resolveDir(lex: string, create: boolean, name: string): string | undefined {
    const hit = this.dirs.get(lex);
    if (hit !== undefined) return hit;
    // Start from the longest cached ancestor.
    let cut = lex.length;
    let real: string | undefined;
    for (;;) {
      cut = cut > 0 ? lex.lastIndexOf('/', cut - 1) : -1;
      if (cut < 0) {
        real = '';
        break;
      }
      real = this.dirs.get(lex.slice(0, cut));
      if (real !== undefined) break;
    }
    const hops = { n: 0 };
    let pos = cut + 1;
    while (pos <= lex.length) {
      let next = lex.indexOf('/', pos);
      if (next < 0) next = lex.length;
      const r = this.step(real, lex.slice(pos, next), create, hops, name);
      if (r === undefined) return undefined;
      real = r;
      this.dirs.set(lex.slice(0, next), real);
      pos = next + 1;
    }
    return real;
  }

  /** One component `comp` below the real directory `parent`. */
  private step(
    parent: string,
    comp: string,
    create: boolean,
    hops: { n: number },
    name: string,
  ): string | undefined {
    const rel = joinRel(parent, comp);
    const path = this.abs(rel);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st === undefined) {
      if (!create) return undefined;
      mkdirSync(path, 0o755);
      // Re-check what we made before anything goes below it.
      if (!lstatSync(path).isDirectory()) throw unsafe(`${rel} changed while ${name} was being extracted`);
      this.markUnpacked(rel);
      return rel;
    }
    if (st.isDirectory()) return rel;
    if (st.isSymbolicLink()) {
      this.followed.add(rel);
      return this.follow(parent, readlinkSync(path), create, hops, name);
    }
    throw notADirectory(name, rel);
  }

  /** A symbolic link's target, resolved as if the root were `/`. */
  private follow(
    base: string,
    target: string,
    create: boolean,
    hops: { n: number },
    name: string,
  ): string | undefined {
    if (++hops.n > MAX_SYMLINK_HOPS) {
      throw new HutchError('LAYER_INVALID', `cannot extract ${name}: too many levels of symbolic links`, {
        hint: 'The layer has a symbolic link loop on the way to this entry: the image is damaged.',
      });
    }
    let cur = target.startsWith('/') ? '' : base;
    for (const comp of target.split('/')) {
      if (comp === '' || comp === '.') continue;
      if (comp === '..') {
        cur = splitParent(cur)[0];
        continue;
      }
      const r = this.step(cur, comp, create, hops, name);
      if (r === undefined) return undefined;
      cur = r;
    }
    return cur;
  }

  // ---- making room -----------------------------------------------------------------------------

  /**
   * Clears `rel` for a new entry. Returns true when a directory is there and
   * the new entry is a directory too (merge), false when the place is free.
   */
  private makeRoom(rel: string, forDir: boolean): boolean {
    const path = this.abs(rel);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st === undefined) return false;
    if (st.isDirectory()) {
      if (forDir) return true;
      rmSync(path, { recursive: true, force: true });
      this.forgetDir(rel);
    } else {
      unlinkSync(path);
      if (st.isSymbolicLink()) this.forgetLink(rel);
    }
    return false;
  }

  /** Runs `make` (a creating call); when something is in the way, clears it and runs it again. */
  private create(rel: string, make: () => void): void {
    try {
      make();
      return;
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    this.makeRoom(rel, false);
    make();
  }

  // ---- entries ---------------------------------------------------------------------------------

  private checkIds(e: Entry): void {
    const { maxUid, maxGid } = this.opts;
    if (e.uid <= maxUid && e.gid <= maxGid) return;
    const [kind, id, max] = e.uid > maxUid ? ['uid', e.uid, maxUid] : ['gid', e.gid, maxGid];
    throw new HutchError(
      'LAYER_ID_UNMAPPED',
      `${e.name} in the layer is owned by ${kind} ${id}, but only ${kind}s 0-${max} exist in this user namespace`,
      {
        hint:
          'Give your user sub-ids: run `sudo hutch setup --user $(id -un)` (it adds a range to ' +
          '/etc/subuid and /etc/subgid), then `hutch system migrate` to rebuild the namespace with them.',
      },
    );
  }

  /**
   * Gives `path`, an inode this extraction has just made in the real
   * directory `parent`, the entry's owner, unless it has it already: a new
   * inode belongs to this process's user and group (the directory's group
   * where the directory is setgid), which is what nearly every entry of a
   * layer asks for. A chown skipped is a system call and an inode update
   * less per entry (thousands in a distribution's base layer). The rule is
   * checked against the first inode made; where it does not hold (a file
   * system with its own ideas), every entry is chowned.
   */
  private own(path: string, parent: string, e: Entry, fd?: number): void {
    if (!this.needsOwner(path, parent, e, fd)) return;
    if (fd === undefined) lchownSync(path, e.uid, e.gid);
    else fchownSync(fd, e.uid, e.gid);
  }

  private needsOwner(path: string, parent: string, e: Entry, fd?: number): boolean {
    return !(e.uid === this.uid && e.gid === this.groupIn(parent) && this.ownerAsExpected(path, parent, fd));
  }

  private groupIn(parent: string): number {
    let gid = this.groupOf.get(parent);
    if (gid === undefined) {
      const st = lstatSync(this.abs(parent));
      gid = st.mode & S_ISGID ? st.gid : this.gid;
      this.groupOf.set(parent, gid);
    }
    return gid;
  }

  private ownerAsExpected(path: string, parent: string, fd: number | undefined): boolean {
    if (this.ownerChecked === undefined) {
      const st = fd === undefined ? lstatSync(path) : fstatSync(fd);
      this.ownerChecked = st.uid === this.uid && st.gid === this.groupIn(parent);
    }
    return this.ownerChecked;
  }

  /**
   * Applies an entry's header. Returns true when the entry is a regular file
   * opened for its body: the caller then streams the body into write() and
   * calls endFile().
   */
  begin(e: Entry): boolean {
    const lex = normalizeName(e.name);
    const [parentLex, base] = splitParent(lex);
    if (base.startsWith(WH)) {
      if (base === WH_OPAQUE) this.opaque(parentLex, e);
      else if (!base.startsWith(WH_META)) this.whiteout(parentLex, base.slice(WH.length), e);
      return false;
    }
    if (parentLex.includes(WH_META) && `/${parentLex}`.includes(`/${WH_META}`)) return false; // aufs metadata
    if (lex === '') {
      // The root's own entry ("./"): left as the driver made it, as docker does.
      if (e.type === T.DIR || e.type === T.GNU_DUMPDIR) return false;
      throw invalid(
        `the tar entry ${JSON.stringify(e.name)} would replace the layer root with a non-directory`,
      );
    }
    const type = e.type;
    if ((type === T.CHAR || type === T.BLOCK) && !this.opts.canMknod) {
      this.skipped.add(lex);
      this.note(
        'devices',
        lex,
        (n, ex) =>
          `skipped ${n} device node${n === 1 ? '' : 's'} (such as /${ex}): rootless hutch cannot create device ` +
          "nodes; the container's /dev comes from the runtime",
      );
      return false;
    }
    this.checkIds(e);
    const parent = this.resolveDir(parentLex, true, e.name)!;
    const rel = joinRel(parent, base);
    const path = this.abs(rel);
    switch (type) {
      case T.FILE:
      case T.CONTIGUOUS: {
        let fd: number;
        try {
          fd = openSync(path, this.newFileFlags, 0o600);
        } catch (err) {
          if (errnoCode(err) !== 'EEXIST') throw err;
          this.makeRoom(rel, false);
          fd = openSync(path, this.newFileFlags, 0o600);
        }
        this.fd = fd;
        this.fdPath = path;
        this.fileParent = parent;
        this.fileEntry = e;
        if (e.size >= BEHIND_MIN && (e.xattrs === undefined || e.xattrs.size === 0)) {
          this.body = new WriteBehind(fd);
          this.behind.add(this.body);
        }
        this.markUnpacked(rel);
        return true;
      }
      case T.DIR:
      case T.GNU_DUMPDIR: {
        let merged = false;
        try {
          mkdirSync(path, 0o755);
        } catch (err) {
          if (errnoCode(err) !== 'EEXIST') throw err;
          merged = this.makeRoom(rel, true);
          if (!merged) mkdirSync(path, 0o755);
        }
        // A directory merged into one already there has that one's owner until told otherwise.
        if (merged) lchownSync(path, e.uid, e.gid);
        else this.own(path, parent, e);
        this.setXattrs(path, e, false);
        this.deferred.set(rel, { mode: e.mode & 0o7777, atime: e.atime ?? e.mtime, mtime: e.mtime });
        this.dirs.set(lex, rel);
        this.markUnpacked(rel);
        return false;
      }
      case T.SYMLINK: {
        this.create(rel, () => symlinkSync(e.linkname, path));
        this.own(path, parent, e);
        this.setXattrs(path, e, true);
        lutimesSync(path, e.atime ?? e.mtime, e.mtime);
        this.markUnpacked(rel);
        return false;
      }
      case T.HARDLINK:
        this.hardlink(e, lex, rel, path);
        return false;
      case T.CHAR:
      case T.BLOCK:
      case T.FIFO: {
        const kind = type === T.CHAR ? S_IFCHR : type === T.BLOCK ? S_IFBLK : S_IFIFO;
        this.create(rel, () => sys().mknod(path, kind | (e.mode & 0o777), e.devmajor, e.devminor));
        this.own(path, parent, e);
        this.setXattrs(path, e, false);
        chmodSync(path, e.mode & 0o7777);
        lutimesSync(path, e.atime ?? e.mtime, e.mtime);
        this.markUnpacked(rel);
        return false;
      }
      default:
        throw unsupported(
          `${e.name} has tar entry type ${JSON.stringify(type)}, which hutch does not extract`,
        );
    }
  }

  private hardlink(e: Entry, lex: string, rel: string, path: string): void {
    const targetLex = normalizeName(e.linkname, 'hardlink target');
    if (targetLex === '') throw invalid(`the hardlink ${e.name} points at the layer root`);
    const [tParentLex, tBase] = splitParent(targetLex);
    const tParent = this.resolveDir(tParentLex, false, e.name);
    const target = tParent === undefined ? undefined : this.abs(joinRel(tParent, tBase));
    const tst = target === undefined ? undefined : lstatSync(target, { throwIfNoEntry: false });
    if (target === undefined || tst === undefined) {
      if (this.skipped.has(targetLex)) {
        this.skipped.add(lex);
        return;
      }
      throw invalid(`the hardlink ${e.name} points at ${e.linkname}, which is not in the layer`);
    }
    if (tst.isDirectory()) throw invalid(`the hardlink ${e.name} points at a directory (${e.linkname})`);
    try {
      linkSync(target, path);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      const st = lstatSync(path);
      if (st.ino === tst.ino && st.dev === tst.dev) return; // already that file
      this.makeRoom(rel, false);
      linkSync(target, path);
    }
    this.markUnpacked(rel);
  }

  // ---- whiteouts -------------------------------------------------------------------------------

  private whiteout(parentLex: string, victim: string, e: Entry): void {
    if (victim === '' || victim === '.' || victim === '..') {
      if (victim === '..') throw unsafe(`the whiteout ${e.name} names a parent directory`);
      throw invalid(`the whiteout ${e.name} names no file`);
    }
    if (this.opts.whiteouts === 'overlay') {
      this.checkIds(e);
      const parent = this.resolveDir(parentLex, true, e.name)!;
      const path = this.abs(joinRel(parent, victim));
      try {
        sys().mknod(path, S_IFCHR, 0, 0);
      } catch (err) {
        const code = errnoCode(err);
        // Something this layer made already has the name: it hides the lower file itself (OCI: a
        // whiteout applies to lower layers only).
        if (code === 'EEXIST') return;
        if (code === 'EPERM' && this.opts.whiteoutFiles) {
          this.whiteoutFile(parent, victim, e);
          return;
        }
        if (code === 'EPERM') {
          throw new HutchError(
            'WHITEOUT_UNSUPPORTED',
            `cannot write the overlay whiteout for ${e.name}: the kernel refused a 0:0 character device (${(err as Error).message})`,
            {
              hint: 'Unprivileged whiteouts need Linux >= 5.8 and no seccomp or LSM rule against mknod; use --storage-driver vfs meanwhile.',
              cause: err,
            },
          );
        }
        throw err;
      }
      lchownSync(path, e.uid, e.gid);
      return;
    }
    const parent = this.resolveDir(parentLex, false, e.name);
    if (parent === undefined) return; // nothing below to delete
    const rel = joinRel(parent, victim);
    if (this.unpacked!.has(rel)) return; // made by this layer: the whiteout is for lower layers only
    const path = this.abs(rel);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st === undefined) return;
    if (st.isDirectory()) {
      rmSync(path, { recursive: true, force: true });
      this.forgetDir(rel);
    } else {
      unlinkSync(path);
      if (st.isSymbolicLink()) this.forgetLink(rel);
    }
  }

  /** fuse-overlayfs's other whiteout: an empty `.wh.NAME` beside where NAME was. */
  private whiteoutFile(parent: string, victim: string, e: Entry): void {
    const path = this.abs(joinRel(parent, `${WH}${victim}`));
    let fd: number;
    try {
      fd = openSync(path, this.newFileFlags, 0o600);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return;
      throw err;
    }
    closeSync(fd);
    lchownSync(path, e.uid, e.gid);
  }

  private opaque(dirLex: string, e: Entry): void {
    if (this.opts.whiteouts === 'overlay') {
      const dir = this.resolveDir(dirLex, true, e.name)!;
      const name = this.opts.userxattr ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
      sys().lsetxattr(this.abs(dir), name, Buffer.from('y'));
      return;
    }
    const dir = this.resolveDir(dirLex, false, e.name);
    if (dir === undefined) return;
    this.markUnpacked(dir);
    if (this.emptyLower(dir)) this.resetCache();
  }

  /** Removes what lower layers left below `dir`, keeping this layer's own entries. */
  private emptyLower(dir: string): boolean {
    const unpacked = this.unpacked!;
    let removed = false;
    for (const child of readdirSync(this.abs(dir))) {
      const rel = joinRel(dir, child);
      const path = this.abs(rel);
      if (unpacked.has(rel)) {
        if (lstatSync(path).isDirectory() && this.emptyLower(rel)) removed = true;
        continue;
      }
      rmSync(path, { recursive: true, force: true });
      removed = true;
    }
    return removed;
  }

  // ---- metadata --------------------------------------------------------------------------------

  private setXattrs(path: string, e: Entry, symlink: boolean): void {
    if (e.xattrs === undefined) return;
    const privileged = this.opts.canMknod;
    for (const [name, value] of e.xattrs) {
      if (/^((trusted|user)\.overlay|user\.fuseoverlayfs)\./.test(name)) {
        // Only the storage driver writes overlay's own attributes; from an image they could
        // redirect or hide files in the mount.
        this.note(
          `overlay-xattr`,
          `${name} on /${e.name}`,
          (n, ex) => `ignored ${n} overlayfs xattr(s) in the layer (such as ${ex})`,
        );
        continue;
      }
      if (!privileged && (name.startsWith('trusted.') || name === 'security.selinux')) {
        this.note(
          `xattr:${name}`,
          e.name,
          (n, ex) => `skipped xattr ${name} on ${n} file(s) (such as /${ex}): rootless hutch cannot set it`,
        );
        continue;
      }
      try {
        sys().lsetxattr(path, name, value);
      } catch (err) {
        const code = errnoCode(err);
        const refused = code === 'EPERM' || code === 'EACCES';
        if (code === 'EOPNOTSUPP' || code === 'ENOTSUP' || (refused && (!privileged || symlink))) {
          this.note(
            `xattr:${name}`,
            e.name,
            (n, ex) => `skipped xattr ${name} on ${n} file(s) (such as /${ex}): ${code} from the file system`,
          );
          continue;
        }
        throw err;
      }
    }
  }

  // ---- file bodies -----------------------------------------------------------------------------

  write(chunk: Buffer, off: number, len: number): void {
    if (this.body) {
      this.body.add(chunk.subarray(off, off + len));
      return;
    }
    let done = 0;
    while (done < len) done += writeSync(this.fd, chunk, off + done, len - done);
  }

  endFile(): void {
    const e = this.fileEntry!;
    const fd = this.fd;
    const body = this.body;
    this.fd = -1;
    this.fileEntry = undefined;
    this.body = undefined;
    if (body) {
      this.finishBehind(fd, e, body, this.needsOwner(this.fdPath, this.fileParent, e, fd));
      return;
    }
    try {
      this.own(this.fdPath, this.fileParent, e, fd);
      this.setXattrs(this.fdPath, e, false);
      fchmodSync(fd, e.mode & 0o7777);
      futimesSync(fd, e.atime ?? e.mtime, e.mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** Finishes a file written behind once its writes are done, by its descriptor only. */
  private finishBehind(fd: number, e: Entry, body: WriteBehind, chown: boolean): void {
    const done = body.idle().then(() => {
      if (this.aborted) return;
      if (chown) fchownSync(fd, e.uid, e.gid);
      fchmodSync(fd, e.mode & 0o7777);
      futimesSync(fd, e.atime ?? e.mtime, e.mtime);
    });
    const finished = done
      .catch((error: unknown) => {
        if (!this.aborted) this.failure ??= { name: e.name, error };
      })
      .finally(() => {
        closeSync(fd);
        this.behind.delete(body);
        this.finishing.delete(finished);
      });
    this.finishing.add(finished);
  }

  /** Bytes and files written behind and not yet finished are many: the caller waits for drained(). */
  tooFarBehind(): boolean {
    if (this.behind.size >= BEHIND_FILES) return true;
    let bytes = 0;
    for (const b of this.behind) bytes += b.pending;
    return bytes >= BEHIND_BYTES;
  }

  /** Resolves when some write behind has ended. */
  async drained(): Promise<void> {
    while (this.tooFarBehind() && this.failure === undefined) {
      await Promise.race([...this.behind].map((b) => b.written()));
    }
  }

  /** Waits until every file written behind is finished; a failure among them is left in `failure`. */
  async settle(): Promise<void> {
    while (this.finishing.size > 0) await Promise.all([...this.finishing]);
  }

  /** Directory modes and times, after all content; returns the warnings. */
  finish(): string[] {
    const dirs = [...this.deferred];
    // Deepest (latest) first, so a parent's mode never stops us reaching its children.
    for (let i = dirs.length - 1; i >= 0; i--) {
      const [rel, d] = dirs[i]!;
      let fd: number;
      try {
        fd = openSync(this.abs(rel), this.dirFlags);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') continue;
        throw err;
      }
      try {
        fchmodSync(fd, d.mode);
        futimesSync(fd, d.atime, d.mtime);
      } finally {
        closeSync(fd);
      }
    }
    return this.warnings();
  }

  warnings(): string[] {
    return [...this.notes.values()].map((n) => n.say(n.count, n.example));
  }

  noteLossyName(name: string): void {
    this.note(
      'lossy',
      name,
      (n, ex) =>
        `${n} file name(s) in the layer are not UTF-8 (such as ${JSON.stringify(ex)}); they were extracted with U+FFFD in place of the bad bytes`,
    );
  }

  /** After an error: closes and removes a half-written file; files written behind are closed when their writes end. */
  abort(): void {
    this.aborted = true;
    if (this.fd < 0) return;
    try {
      if (this.body) {
        this.behind.delete(this.body);
        closeWhenWritten(this.fd, this.body);
      } else closeSync(this.fd);
      unlinkSync(this.fdPath);
    } catch {
      // best effort: the caller removes the whole destination
    }
    this.fd = -1;
    this.body = undefined;
  }
}

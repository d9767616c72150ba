#!/bin/sh
# Builds hutch's native pieces with the system C compiler (see
# ARCHITECTURE.md, "Native code"). Run by `npm install`; safe to run again.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/build"
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "hutch: no C compiler ($cc) found: install gcc (Debian: apt-get install gcc libc6-dev)." >&2
  echo "hutch: rootless mode and store locks need native/build; run 'sh native/build.sh' afterwards." >&2
  exit 0
fi
mkdir -p "$out"
flags="-O2 -Wall -Wextra -Werror=implicit-function-declaration -D_FORTIFY_SOURCE=2 -fstack-protector-strong"
# Build to temporary names and rename, so a running hutch never loads half a file.
# Static when the C library allows it: every command execs the helper, and
# skipping the dynamic loader saves about a millisecond each time.
$cc $flags -static -o "$out/hutch-helper.tmp" "$here/helper.c" 2>/dev/null ||
  $cc $flags -o "$out/hutch-helper.tmp" "$here/helper.c"
mv -f "$out/hutch-helper.tmp" "$out/hutch-helper"
$cc $flags -o "$out/hutch-portfwd.tmp" "$here/portfwd.c"
mv -f "$out/hutch-portfwd.tmp" "$out/hutch-portfwd"
$cc $flags -o "$out/hutch-dns.tmp" "$here/dns.c"
mv -f "$out/hutch-dns.tmp" "$out/hutch-dns"
$cc $flags -o "$out/hutch-handoff.tmp" "$here/handoff.c"
mv -f "$out/hutch-handoff.tmp" "$out/hutch-handoff"
$cc $flags -shared -fPIC -fvisibility=hidden -o "$out/hutch_sys.node.tmp" "$here/sys.c"
mv -f "$out/hutch_sys.node.tmp" "$out/hutch_sys.node"

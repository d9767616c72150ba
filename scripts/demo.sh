#!/bin/sh
# One command from a fresh Debian 12 machine to hutch's main job, rootless.
# Run as root from a clone of the repository: sh scripts/demo.sh
set -eu
cd "$(dirname "$0")/.."
user=${HUTCH_DEMO_USER:-hutchdemo}
if [ "$(id -u)" != 0 ]; then
  echo "run this as root: it installs packages and prepares the host for user $user" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
pkgs="crun runc conmon uidmap catatonit passt slirp4netns fuse-overlayfs golang-github-containers-common gcc libc6-dev busybox-static"
missing=$(for p in $pkgs; do dpkg-query -W -f '${db:Status-Status}\n' "$p" 2>/dev/null | grep -q '^installed$' || echo "$p"; done)
if [ -n "$missing" ]; then
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi
# npm only bootstraps: hutch runs on the Node it pins in node_modules (npm's `node` package).
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is needed to install hutch: install Node.js with npm (any version >= 18), then run this again" >&2
  exit 1
fi
[ -d node_modules/node ] || npm ci --no-audit --no-fund
npm run --silent build
id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
bin/hutch setup --user "$user"
here=$(pwd -P)
if ! runuser -u "$user" -- test -r "$here/dist/hutch.cjs"; then
  echo "note: $user cannot read $here; copying hutch to /opt/hutch for the demo"
  rm -rf /opt/hutch && cp -a "$here" /opt/hutch && here=/opt/hutch
fi
uid=$(id -u "$user")
as_user() {
  runuser -u "$user" -- env -i HOME="$(getent passwd "$user" | cut -d: -f6)" USER="$user" \
    PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR="/run/user/$uid" "$@"
}
echo; echo "== hutch doctor (as $user)"
as_user "$here/bin/hutch" doctor || true
echo; echo "== hutch unshare id (as $user): root in the user's own namespace"
as_user "$here/bin/hutch" unshare sh -c 'id; cat /proc/self/uid_map'
echo; echo "== a locally made image (busybox-static in a root filesystem), imported and listed (as $user)"
work=$(mktemp -d)
chmod 755 "$work"
mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in sh ls cat id echo hostname uname; do ln -s busybox "$work/rootfs/bin/$applet"; done
tar -C "$work/rootfs" --owner=0 --group=0 -cf "$work/rootfs.tar" .
chmod 644 "$work/rootfs.tar"
as_user "$here/bin/hutch" import --change 'CMD ["sh"]' "$work/rootfs.tar" localhost/demo:latest
as_user "$here/bin/hutch" images
rm -rf "$work"
echo; echo "== a container from that image, rootless (as $user)"
as_user "$here/bin/hutch" run --rm localhost/demo:latest sh -c 'echo "hello from $(hostname), running $(uname -sr) as $(id)"'

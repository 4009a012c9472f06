#!/usr/bin/env bash
# The Windows test bed: Debian trixie in a chroot with Wine 10 (Debian 12's Wine 8 cannot run Node 24's node.exe
# nor Go 1.2x Windows binaries). Cached under ~/.cache/lifeline like Kafka and Elasticsearch; built once, about
# 3 minutes and 2.5 GB. Needs root and the Debian mirror. Prints the bed's path on its last line.
set -euo pipefail
BED="${LIFELINE_WINE_BED:-${HOME}/.cache/lifeline/wine-trixie}"
MIRROR="${LIFELINE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if [ -f "$BED/.lifeline-ready" ]; then
  echo "$BED"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "build-bed: needs root (debootstrap, chroot)" >&2
  exit 3
fi
if ! command -v debootstrap >/dev/null; then
  echo "build-bed: installing debootstrap" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
fi
partial="$BED.partial"
rm -rf "$partial"
mkdir -p "$(dirname "$BED")"
echo "build-bed: debootstrap trixie into $partial" >&2
debootstrap --variant=minbase trixie "$partial" "$MIRROR" >&2
echo "build-bed: installing wine64 in the chroot" >&2
mount -t proc proc "$partial/proc"
trap 'umount "$partial/proc" 2>/dev/null || true' EXIT
chroot "$partial" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wine64 ca-certificates >&2
chroot "$partial" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get clean >&2
# Wine finds its own files through /proc: only with it mounted does it run.
chroot "$partial" /usr/lib/wine/wine64 --version >&2
umount "$partial/proc"
trap - EXIT
touch "$partial/.lifeline-ready"
mv "$partial" "$BED"
echo "$BED"

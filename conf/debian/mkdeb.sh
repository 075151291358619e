#!/bin/sh
# conf/debian/mkdeb.sh BINARY - used by `make deb`: `make install` into a
# staging root with Debian's paths, the package's metadata (Depends computed
# by dpkg-shlibdeps from the binary), then dpkg-deb under fakeroot so every
# file is owned by root. Prints the path of the .deb.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-dtmd}
cd "$top"

version=$(sed -n 's/^#define DTMD_VERSION "v\{0,1\}\([^"]*\)".*/\1/p' src/version.h)
arch=$(dpkg --print-architecture)
stage=build/deb
root=$stage/root
rm -rf "$stage"
mkdir -p "$root/DEBIAN" "$stage/debian"

make --no-print-directory install BIN="$bin" DESTDIR="$root" PREFIX=/usr \
    UNITDIR=/lib/systemd/system DOCDIR=/usr/share/doc/dtmd >/dev/null
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/dtmd"

doc=$root/usr/share/doc/dtmd
install -m 644 conf/debian/copyright "$doc/copyright"
gzip -9n "$doc/README.md"
# The unit names the README; Debian keeps it compressed.
sed -i "s|^Documentation=file:///usr/share/doc/dtmd/README.md$|&.gz|" "$root/lib/systemd/system/dtmd.service"
gzip -9n "$doc/conf.sample.yml"
date=$(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")
printf 'dtmd (%s) unstable; urgency=medium\n\n  * Built from the dtmd source tree (%s).\n\n -- dtmd maintainers <dtmd@example.org>  %s\n' \
    "$version" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$date" |
    gzip -9n > "$doc/changelog.gz"
chmod 644 "$doc/changelog.gz"

install -D -m 644 conf/debian/lintian-overrides "$root/usr/share/lintian/overrides/dtmd"

# dpkg-shlibdeps wants a debian/control naming the package.
printf 'Source: dtmd\n\nPackage: dtmd\nArchitecture: any\n' > "$stage/debian/control"
depends=$(cd "$stage" && dpkg-shlibdeps -O -e root/usr/bin/dtmd 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: dtmd
Version: $version
Architecture: $arch
Maintainer: dtmd maintainers <dtmd@example.org>
Installed-Size: $size
Depends: $depends, passwd
Recommends: redis-server
Section: net
Priority: optional
Homepage: https://github.com/dtm-labs/dtm
Description: distributed transaction manager speaking dtm's HTTP API
 dtmd coordinates SAGA, two-phase message, TCC, XA and workflow
 transactions across HTTP services, retrying branch calls with back-off
 and keeping every transaction in Redis. It is wire-compatible with dtm,
 so dtm client SDKs work unchanged. The package installs a systemd unit
 (enabled, not started), a system user and /etc/dtmd/conf.yml.
CONTROL
printf '/etc/dtmd/conf.yml\n/etc/logrotate.d/dtmd\n' > "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 755 "conf/debian/$s" "$root/DEBIAN/$s"
done

deb=build/dtmd_${version}_${arch}.deb
fakeroot dpkg-deb --build -Zxz "$root" "$deb" >/dev/null
echo "$deb"

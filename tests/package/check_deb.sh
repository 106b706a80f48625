#!/bin/bash
# Checks the Debian package that `make deb` built (DEB=path, else the one in
# build/): its file list, control fields, conffiles and maintainer scripts,
# lintian (no errors; the warnings are printed), and the package unpacked
# into a throwaway root with dpkg-deb -x (never installed on this machine):
# the config meets the unit, the packaged proxyd accepts its config, and
# systemd-analyze and logrotate accept the unit and the logrotate file.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEB=${DEB:-build/proxyd_$(dpkg-parsechangelog -S Version)_$(dpkg --print-architecture).deb}
[ -f "$DEB" ] || { echo "check_deb: no $DEB (make deb)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check_deb: $*" >&2; exit 1; }

# 1. The file list, exactly (directories aside).
expected='./etc/logrotate.d/proxyd
./etc/proxyd/proxyd.conf
./lib/systemd/system/proxyd.service
./usr/bin/proxyctl
./usr/sbin/proxyd
./usr/share/doc/proxyd/changelog.gz
./usr/share/doc/proxyd/copyright
./usr/share/doc/proxyd/examples/proxyd.conf
./usr/share/man/man5/proxyd.conf.5.gz
./usr/share/man/man8/proxyctl.8.gz
./usr/share/man/man8/proxyd.8.gz'
dpkg-deb -c "$DEB" >"$tmp/contents"
actual=$(awk '$1 !~ /^d/ { print $6 }' "$tmp/contents" | LC_ALL=C sort)
[ "$actual" = "$expected" ] || fail "package files differ:
$(diff <(echo "$expected") <(echo "$actual"))"
grep -q '^-rwxr-xr-x root/root .* \./usr/sbin/proxyd$' "$tmp/contents" || fail "proxyd not 0755 root"

# 2. Control fields, conffiles, maintainer scripts.
[ "$(dpkg-deb -f "$DEB" Package)" = proxyd ] || fail "Package field"
depends=$(dpkg-deb -f "$DEB" Depends)
for dep in adduser libevent libssl libinih libhiredis; do
    grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep: $depends"
done
dpkg-deb -e "$DEB" "$tmp/control"
[ "$(LC_ALL=C sort "$tmp/control/conffiles")" = "/etc/logrotate.d/proxyd
/etc/proxyd/proxyd.conf" ] || fail "conffiles: $(cat "$tmp/control/conffiles")"
post=$tmp/control/postinst
grep -q 'adduser --system --group .* proxyd' "$post" || fail "postinst makes no proxyd system user"
grep -q 'deb-systemd-helper' "$post" || fail "postinst does not enable the unit (dh_installsystemd)"
# The user exists before the unit first starts.
[ "$(grep -n 'adduser' "$post" | head -1 | cut -d: -f1)" -lt "$(grep -n 'deb-systemd-invoke' "$post" | head -1 | cut -d: -f1)" ] ||
    fail "postinst starts the unit before making the user"

# 3. lintian: no errors.  Its output is printed for the report.
lintian --fail-on error --info "$DEB" >"$tmp/lintian.log" 2>&1 || { cat "$tmp/lintian.log" >&2; fail "lintian reports errors"; }
sed 's/^/  lintian: /' "$tmp/lintian.log"

# 4. Unpacked into a throwaway root: the layout meets the unit.
root=$tmp/root
dpkg-deb -x "$DEB" "$root"
unit=$root/lib/systemd/system/proxyd.service
conf=$root/etc/proxyd/proxyd.conf
grep -q '^ExecStart=/usr/sbin/proxyd .*-c /etc/proxyd/proxyd.conf' "$unit" || fail "unit: $(grep ExecStart= "$unit")"
[ -x "$root/usr/sbin/proxyd" ] || fail "unit's ExecStart binary missing from the package"
grep -q '^pid_file = /run/proxyd/proxyd.pid ' "$conf" || fail "config pid_file not in /run/proxyd"
grep -q '^control_socket = /run/proxyd/proxyd.sock ' "$conf" || fail "config control_socket not in /run/proxyd"
grep -q '^error_log = /var/log/proxyd/error.log ' "$conf" || fail "config error_log not in /var/log/proxyd"
grep -q -- '-s  *reopen' "$root/etc/logrotate.d/proxyd" || fail "logrotate file does not reopen the logs"
! grep -q '/usr/local/' "$unit" "$root/etc/logrotate.d/proxyd" || fail "a /usr/local path in the package"
# The version is written twice, in common/version.h and debian/changelog:
# the package must say what its programs say.
version=$(dpkg-deb -f "$DEB" Version)
[ "$("$root/usr/sbin/proxyd" -v)" = "proxyd version ${version%-*}" ] ||
    fail "proxyd -v says \"$("$root/usr/sbin/proxyd" -v)\", the package $version (common/version.h and debian/changelog differ)"
[ "$("$root/usr/bin/proxyctl" --version)" = "proxyctl ${version%-*}" ] ||
    fail "proxyctl --version says \"$("$root/usr/bin/proxyctl" --version)\", the package $version"
mkdir -p "$tmp/run/proxyd" "$tmp/log/proxyd"
sed -e "s|= /run/proxyd/|= $tmp/run/proxyd/|" -e "s|= /var/log/proxyd/|= $tmp/log/proxyd/|" "$conf" >"$tmp/t.conf"
"$root/usr/sbin/proxyd" -t -c "$tmp/t.conf" >"$tmp/t.log" 2>&1 ||
    { cat "$tmp/t.log" >&2; fail "the packaged proxyd rejects the packaged config"; }
"$root/usr/bin/proxyctl" --help >/dev/null 2>&1 || "$root/usr/bin/proxyctl" -h >/dev/null 2>&1 ||
    fail "the packaged proxyctl does not run"
if command -v systemd-analyze >/dev/null; then
    # The unit as packaged, its binary pointed at the unpacked one (verify
    # checks that ExecStart's program exists).
    sed "s|/usr/sbin/proxyd|$root/usr/sbin/proxyd|g" "$unit" >"$tmp/proxyd.service"
    systemd-analyze verify --man=no "$tmp/proxyd.service" >"$tmp/verify.log" 2>&1 ||
        { cat "$tmp/verify.log" >&2; fail "systemd-analyze verify rejects the packaged unit"; }
fi
if command -v logrotate >/dev/null; then
    # logrotate refuses `create ... proxyd adm` for a user it cannot find;
    # the package's postinst makes that user, which a build machine may lack.
    rotate_conf=$root/etc/logrotate.d/proxyd
    if ! getent passwd proxyd >/dev/null; then
        echo "check_deb: no proxyd user here: logrotate -d checks a copy that creates files as root"
        sed 's/^\( *create [0-7]*\) proxyd /\1 root /' "$rotate_conf" >"$tmp/logrotate.conf"
        grep -q '^ *create [0-7]* root ' "$tmp/logrotate.conf" || fail "no create line for the proxyd user"
        rotate_conf=$tmp/logrotate.conf
    fi
    logrotate -d -s "$tmp/logrotate.state" "$rotate_conf" >"$tmp/logrotate.log" 2>&1 ||
        { cat "$tmp/logrotate.log" >&2; fail "logrotate -d rejects the packaged logrotate file"; }
fi
echo "check_deb: ok ($DEB)"

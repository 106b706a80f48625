#!/bin/bash
# make install into a temporary DESTDIR, then checks what it installed: the
# file list, the config rewritten for the installed layout (and accepted by
# proxyd -t once its system directories are mapped into the temp dir), the
# unit and the logrotate file naming the installed binary and config, and
# that a second install keeps the operator's config.  Runs install-files, so
# it needs build/proxyd and build/proxyctl (make test builds them) and no
# root.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
fail() { echo "check_install: $*" >&2; exit 1; }

install_into() {  # $1 = DESTDIR, then make variables
    local d=$1; shift
    env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory -s BUILD="$BUILD" DESTDIR="$d" "$@" install-files >"$tmp/make.log" 2>&1 ||
        { cat "$tmp/make.log" >&2; fail "make install-files failed"; }
}

# 1. The file list, exactly, for the default PREFIX and SYSCONFDIR.
install_into "$dest"
expected='etc/logrotate.d/proxyd
etc/proxyd/proxyd.conf
lib/systemd/system/proxyd.service
usr/local/bin/proxyctl
usr/local/sbin/proxyd
usr/local/share/doc/proxyd/examples/proxyd.conf
usr/local/share/man/man5/proxyd.conf.5
usr/local/share/man/man8/proxyctl.8
usr/local/share/man/man8/proxyd.8'
actual=$(cd "$dest" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
[ "$actual" = "$expected" ] || fail "installed files differ:
$(diff <(echo "$expected") <(echo "$actual"))"
[ -x "$dest/usr/local/sbin/proxyd" ] && [ -x "$dest/usr/local/bin/proxyctl" ] || fail "binaries not executable"

# 2. The installed config: the contract's layout, nothing relative, no user.
conf=$dest/etc/proxyd/proxyd.conf
key() { sed -n "s/^$1 *= *\([^ ;]*\).*/\1/p" "$conf"; }
[ "$(key pid_file)" = /run/proxyd/proxyd.pid ] || fail "pid_file is '$(key pid_file)'"
[ "$(key control_socket)" = /run/proxyd/proxyd.sock ] || fail "control_socket is '$(key control_socket)'"
[ "$(key error_log)" = /var/log/proxyd/error.log ] || fail "error_log is '$(key error_log)'"
case $(key access_log) in off | /var/log/proxyd/*) ;; *) fail "access_log is '$(key access_log)'" ;; esac
[ -z "$(key user)" ] || fail "user is set: the unit's User= drops root"
grep -q '^# Check a file with: *proxyd -t -c /etc/proxyd/proxyd.conf$' "$conf" || fail "check hint not rewritten"
# Apart from those lines it is the shipped file.
diff <(grep -vE '^(pid_file|control_socket|error_log) |^# Check a file' conf/proxyd.conf) \
    <(grep -vE '^(pid_file|control_socket|error_log) |^# Check a file' "$conf") >/dev/null ||
    fail "the installed config differs from conf/proxyd.conf in other lines"

# proxyd -t opens the logs and checks the paths: map /run/proxyd and
# /var/log/proxyd into the temp dir, as the unit's directories would be.
mkdir -p "$tmp/run/proxyd" "$tmp/log/proxyd"
sed -e "s|= /run/proxyd/|= $tmp/run/proxyd/|" -e "s|= /var/log/proxyd/|= $tmp/log/proxyd/|" "$conf" >"$tmp/t.conf"
"$BUILD/proxyd" -t -c "$tmp/t.conf" >"$tmp/t.log" 2>&1 || { cat "$tmp/t.log" >&2; fail "proxyd -t rejects the installed config"; }

# 3. The unit and the logrotate file name the installed binary and config.
unit=$dest/lib/systemd/system/proxyd.service
grep -q '^ExecStart=/usr/local/sbin/proxyd .*-c /etc/proxyd/proxyd.conf' "$unit" || fail "unit ExecStart: $(grep ExecStart= "$unit")"
grep -q '^RuntimeDirectory=proxyd$' "$unit" || fail "unit lacks RuntimeDirectory=proxyd (/run/proxyd)"
grep -q '^LogsDirectory=proxyd$' "$unit" || fail "unit lacks LogsDirectory=proxyd (/var/log/proxyd)"
grep -q '^User=proxyd$' "$unit" || fail "unit lacks User=proxyd"
! grep -q '/usr/sbin/proxyd' "$unit" "$dest/etc/logrotate.d/proxyd" || fail "a /usr/sbin path left with PREFIX=/usr/local"
grep -q '^/var/log/proxyd/' "$dest/etc/logrotate.d/proxyd" || fail "logrotate does not rotate /var/log/proxyd/"
grep -q -- '-s  *reopen' "$dest/etc/logrotate.d/proxyd" || fail "logrotate does not reopen the logs (proxyd -s reopen)"

# 4. A second install keeps the operator's config and puts the new one beside.
echo '# edited by the operator' >>"$conf"
install_into "$dest"
tail -n 1 "$conf" | grep -q 'edited by the operator' || fail "reinstall overwrote the config"
cmp -s "$dest/etc/proxyd/proxyd.conf.new" "$BUILD/installed/proxyd.conf" || fail "reinstall did not write proxyd.conf.new"
grep -q 'proxyd.conf.new' "$tmp/make.log" || fail "reinstall did not say where the new config went"

# 5. PREFIX=/usr and SYSCONFDIR follow into the unit and the logrotate file
# (the Debian package's layout).
install_into "$tmp/usr" PREFIX=/usr SYSCONFDIR=/etc/alt
grep -q '^ExecStart=/usr/sbin/proxyd .*-c /etc/alt/proxyd/proxyd.conf' "$tmp/usr/lib/systemd/system/proxyd.service" ||
    fail "PREFIX=/usr SYSCONFDIR=/etc/alt: $(grep ExecStart= "$tmp/usr/lib/systemd/system/proxyd.service")"
[ -f "$tmp/usr/etc/alt/proxyd/proxyd.conf" ] || fail "SYSCONFDIR=/etc/alt: no config"
! grep -q '/etc/proxyd/' "$tmp/usr/etc/alt/logrotate.d/proxyd" || fail "logrotate ignores SYSCONFDIR"
echo "check_install: ok"

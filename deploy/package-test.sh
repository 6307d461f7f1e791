#!/usr/bin/env bash
# Build the Debian package, install it, start the server the way its systemd unit does,
# check that it answers, then remove and purge the package.
#
#   deploy/package-test.sh
#
# Runs as root on a Debian machine without a running systemd (a container, CI): the server
# is started as the unit's user with the unit's command line, through setpriv (which execs
# it, as systemd does, so SIGTERM reaches the server itself; runuser would stay in between). Refuses to run
# where Portcullis is installed or /var/lib/portcullis exists, so it never touches a real
# installation.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "package-test: $*"; }
fail() { echo "package-test: FAILED: $*" >&2; exit 1; }

if dpkg-query -W -f='${Status}' portcullis 2>/dev/null | grep -q installed; then
  fail "the portcullis package is installed on this machine; not touching it"
fi
if [ -e /var/lib/portcullis ] || [ -e /etc/portcullis ]; then
  fail "/var/lib/portcullis or /etc/portcullis exists; not touching it"
fi

deb=$(deploy/build-deb.sh | tail -1)
[ -f "$deb" ] || fail "no package built"
size=$(stat -c %s "$deb")
say "built $deb: $size bytes ($(( (size + 1023) / 1024 )) KiB)"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb" | awk '{print $1, $NF}'

server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -TERM "$server"; wait "$server" || true; fi
  dpkg -P portcullis >/dev/null 2>&1 || true
  # The test's own data (the package keeps /var/lib/portcullis on purge, by design).
  rm -rf /var/lib/portcullis /etc/portcullis
  if getent passwd portcullis >/dev/null; then userdel portcullis || true; fi
  if getent group portcullis >/dev/null; then groupdel portcullis || true; fi
  rm -rf "$work"
}
work=$(mktemp -d)
trap cleanup EXIT

# No service manager here: the postinst must still succeed (the unit is enabled and
# started only where systemd runs).
dpkg -i "$deb"
getent passwd portcullis >/dev/null || fail "the postinst did not create the portcullis user"
[ "$(stat -c '%U %a' /var/lib/portcullis)" = "portcullis 700" ] || fail "/var/lib/portcullis is $(stat -c '%U %a' /var/lib/portcullis)"
dpkg-query -W -f='${Conffiles}\n' portcullis | grep -q /etc/portcullis/portcullis.toml || fail "portcullis.toml is not a conffile"
for f in /usr/bin/portcullis /lib/systemd/system/portcullis.service /usr/share/man/man1/portcullis.1.gz \
         /usr/share/bash-completion/completions/portcullis; do
  [ -e "$f" ] || [ -e "/usr$f" ] || fail "$f is missing"
done
# A manual page per subcommand, as the installed binary lists them.
pages=0
for page in $(/usr/bin/portcullis man --dir "$work/man"); do
  installed="/usr/share/man/man1/$(basename "$page").gz"
  [ -f "$installed" ] || fail "$installed is missing"
  zcat "$installed" | cmp -s - "$page" || fail "$installed is not what 'portcullis man' writes"
  pages=$((pages + 1))
done
[ -f /usr/share/man/man1/portcullis-keys-rotate.1.gz ] || fail "no page for portcullis keys rotate"
say "$pages manual pages installed"
if readelf -S /usr/bin/portcullis | grep -q '\.symtab'; then fail "/usr/bin/portcullis is not stripped"; fi

unit=/lib/systemd/system/portcullis.service
[ -e "$unit" ] || unit=/usr/lib/systemd/system/portcullis.service
if ! command -v systemd-analyze >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd || true
fi
if command -v systemd-analyze >/dev/null; then
  # Offline check of the installed unit: its directives, its binary, its man page.
  systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
  say "systemd-analyze verify $unit: ok"
else
  say "systemd-analyze not installed: unit not verified"
fi

# The unit's command line, as its user, in its working directory; stderr is a file, as
# under the journal (not a terminal), so the admin token goes to the data directory.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
say "starting: $exec_start (port $port)"
(cd /var/lib/portcullis && PORTCULLIS_LISTEN="127.0.0.1:$port" exec setpriv --reuid=portcullis \
  --regid=portcullis --init-groups --inh-caps=-all --no-new-privs -- $exec_start) 2> "$work/server.log" &
server=$!

deadline=$((SECONDS + 60))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)" = 200 ]; do
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; fail "the server exited"; }
  [ $SECONDS -lt $deadline ] || { cat "$work/server.log"; fail "/readyz did not answer 200 within 60 s"; }
  sleep 0.2
done
say "/readyz answered 200"

token_file=/var/lib/portcullis/admin-token
[ "$(stat -c '%U %a' "$token_file")" = "portcullis 600" ] || fail "$token_file is $(stat -c '%U %a' "$token_file")"
grep -q pcsa_ "$work/server.log" && fail "the admin token is in the log"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$token_file")" "http://127.0.0.1:$port/admin/v1/orgs")
[ "$status" = 200 ] || fail "the admin token from $token_file got $status"
[ -f /var/lib/portcullis/portcullis.db ] || fail "no database in /var/lib/portcullis"
say "admin token from $token_file works; data in /var/lib/portcullis"

# /metrics: the Prometheus text format to a scraper without preference (curl sends */*),
# OpenMetrics to one that asks for it.
metrics_type() { curl -s -o /dev/null -w '%{content_type}' "$@" "http://127.0.0.1:$port/metrics"; }
got=$(metrics_type)
[ "$got" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "/metrics answered $got to */*"
got=$(metrics_type -H 'Accept: application/openmetrics-text')
[ "$got" = "application/openmetrics-text; version=1.0.0; charset=utf-8" ] || fail "/metrics answered $got to OpenMetrics"
say "/metrics: the text format by default, OpenMetrics when asked"

kill -TERM "$server"
wait "$server" || { cat "$work/server.log"; fail "the server did not stop cleanly on SIGTERM"; }
server=""
grep -q '"stopped"\|stopped' "$work/server.log" || fail "the server did not log its stop"

dpkg -r portcullis
[ ! -e /usr/bin/portcullis ] || fail "dpkg -r left /usr/bin/portcullis"
[ -e /etc/portcullis/portcullis.toml ] || fail "dpkg -r removed the conffile"
dpkg -P portcullis
[ ! -e /etc/portcullis/portcullis.toml ] || fail "dpkg -P left the conffile"
[ -e /var/lib/portcullis/master.key ] || fail "purge removed the master key (it must be kept)"
say "installed, started, answered, stopped, removed and purged: ok ($size bytes)"

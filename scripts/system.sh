#!/bin/sh
# Issue 10's check on a real system: backs up this machine's own trees
# (default /etc and /usr) to a local rsb-server with a fresh store,
# restores them into a scratch directory, and prints what rsync finds
# different between each original and its restored copy
# (rsync -aHAXn --numeric-ids --checksum --itemize-changes). Expected:
# nothing. Not a CI test: it reads whatever this machine holds.
#
# usage: scripts/system.sh [PATH...]
# Run as root to read every file (and to give restored files their
# owners). Needs rsync and about twice the size of PATH... free under
# $RSB_SYSTEM_DIR (default: a new directory in /tmp), which is removed
# at the end unless RSB_SYSTEM_KEEP=1.
set -eu

prog=system.sh
repo=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
[ $# -gt 0 ] || set -- /etc /usr

command -v rsync >/dev/null 2>&1 || {
	echo "$prog: rsync is needed (apt-get install rsync)" >&2
	exit 2
}
echo "$prog: building release binaries"
(cd "$repo" && cargo build --release --locked --quiet)
server=$repo/target/release/rsb-server
client=$repo/target/release/rsb-client

work=${RSB_SYSTEM_DIR:-$(mktemp -d /tmp/rsb-system.XXXXXX)}
mkdir -p "$work"
store=$work/store
dest=$work/restored
log=$work/server.log
server_pid=
cleanup() {
	status=$?
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [ "$status" -ne 0 ] && [ -s "$log" ]; then
		echo "$prog: FAILED; the server's log ends:" >&2
		tail -n 20 "$log" >&2
	fi
	if [ "${RSB_SYSTEM_KEEP:-0}" = 1 ]; then
		echo "$prog: kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$server" -a 127.0.0.1 -p 0 -d "$store" 2>"$log" &
server_pid=$!
port=
tries=0
while [ -z "$port" ]; do
	kill -0 "$server_pid" 2>/dev/null || {
		echo "$prog: rsb-server exited early" >&2
		exit 1
	}
	port=$(sed -n 's/.*listening on [^ ,]*:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
	if [ -z "$port" ]; then
		tries=$((tries + 1))
		[ "$tries" -le 100 ] || {
			echo "$prog: rsb-server did not report its port within 10 s" >&2
			exit 1
		}
		sleep 0.1
	fi
done

mkdir -p "$dest"
differences=0
for path in "$@"; do
	path=$(CDPATH= cd -- "$path" && pwd -P)
	echo "$prog: backup $path"
	"$client" -q -n system 127.0.0.1 "$port" backup "$path" || echo "$prog: backup of $path exited $?"
	echo "$prog: restore $path"
	"$client" -q -n system 127.0.0.1 "$port" restore "$path" "$dest" || echo "$prog: restore of $path exited $?"
	copy=$dest/$(basename "$path")
	echo "$prog: rsync -aHAXn --numeric-ids --checksum --itemize-changes $path/ $copy/"
	out=$work/diff.$(basename "$path")
	rsync -aHAXn --numeric-ids --checksum --itemize-changes "$path/" "$copy/" >"$out" 2>&1 || true
	n=$(wc -l <"$out")
	cat "$out"
	echo "$prog: $path: $n differences"
	differences=$((differences + n))
	rm -rf "$copy"
done
echo "$prog: $differences differences in all"
[ "$differences" -eq 0 ]

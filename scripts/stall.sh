#!/usr/bin/env bash
# How long other clients wait while one client's large backup is made
# durable: the loop must never freeze behind the disk.
#
# usage: scripts/stall.sh
#
# Starts rsb-server (with -v) on 127.0.0.1 and, while client "big" backs up
# one large file (its commit syncs it to disk on a worker thread), client
# "small" runs `ls` and backs up a small tree, again and again, timing every
# command. Prints the longest and median time of each, how long the big
# backup and its commit took, and the server's longest loop turn (from its
# log: the longest time the loop spent between two polls). Every loop is
# bounded in count and time.
#
# environment:
#   STALL_DIR      work directory (default: a new `mktemp -d`, removed at
#                  exit); put it on the disk you care about
#   STALL_BIG_MB   size of the big file in MiB (default 1024)
#
# exit status: 0 done, 1 a step failed, 2 bad usage.
set -eu
export LC_ALL=C
prog=stall.sh
repo=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
die() { echo "$prog: $*" >&2; exit 1; }
big_mb=${STALL_BIG_MB:-1024}
case $big_mb in '' | *[!0-9]* | 0*) echo "$prog: STALL_BIG_MB must be a positive integer" >&2; exit 2 ;; esac
[ -n "${EPOCHREALTIME:-}" ] || { echo "$prog: needs bash 5 or later (EPOCHREALTIME)" >&2; exit 2; }

if [ -n "${STALL_DIR:-}" ]; then
	work=$STALL_DIR
	mkdir -p "$work"
	own=0
else
	work=$(mktemp -d /tmp/rsb-stall.XXXXXX)
	own=1
fi
srv_pid=
cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null || true
	[ "$own" = 1 ] && rm -rf "$work"
	return 0
}
trap cleanup EXIT

echo "$prog: building" >&2
(cd "$repo" && cargo build --release --quiet) || die "cargo build failed"
server=$repo/target/release/rsb-server
client=$repo/target/release/rsb-client

mkdir -p "$work/src/big" "$work/src/small"
head -c $((big_mb << 20)) /dev/urandom >"$work/src/big/file" || die "cannot write the big file"
for d in 0 1 2 3 4 5 6 7 8 9; do
	mkdir -p "$work/src/small/d$d"
	for f in 0 1 2 3 4 5 6 7 8 9; do
		head -c $((1024 + (d * 10 + f) * 97)) /dev/urandom >"$work/src/small/d$d/f$f"
	done
done

rm -rf "$work/root"
"$server" -v -a 127.0.0.1 -p 0 -d "$work/root" 2>"$work/server.log" &
srv_pid=$!
port=
for _ in $(seq 100); do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log" | head -n1)
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || die "the server did not start: $(cat "$work/server.log")"

now() { echo "${EPOCHREALTIME/./}"; } # microseconds
t0=$(now)
"$client" -q -n big 127.0.0.1 "$port" backup "$work/src/big" &
big_pid=$!

ls_times=()
bk_times=()
# At most 2,000 rounds and 600 s; ends when the big backup does.
for _ in $(seq 2000); do
	kill -0 "$big_pid" 2>/dev/null || break
	[ $(($(now) - t0)) -lt 600000000 ] || break
	a=$(now)
	"$client" -q -n small 127.0.0.1 "$port" ls >/dev/null || die "ls failed"
	b=$(now)
	touch "$work/src/small/d0/f0"
	"$client" -q -n small 127.0.0.1 "$port" backup "$work/src/small" || die "small backup failed"
	c=$(now)
	ls_times+=($((b - a)))
	bk_times+=($((c - b)))
done
wait "$big_pid" || die "the big backup failed"
t1=$(now)
kill -TERM "$srv_pid"
wait "$srv_pid" || true
srv_pid=

stats() { # microsecond samples -> "max X ms, median Y ms (N runs)"
	[ $# -gt 0 ] || { echo "no runs"; return; }
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
		printf "max %.1f ms, median %.1f ms (%d runs)", v[NR] / 1000, v[int((NR + 1) / 2)] / 1000, NR }'
}
commit=$(sed -n 's/.*big (.*): commit took \([0-9.]*\) ms.*/\1/p' "$work/server.log" | sort -n | tail -n1)
turn=$(sed -n 's/.*stopped (longest loop turn \([0-9.]*\) ms).*/\1/p' "$work/server.log")
echo "big backup of $big_mb MiB: $(((t1 - t0) / 1000)) ms, its longest commit (sync on a worker) ${commit:-?} ms"
echo "meanwhile, other client ls:              $(stats "${ls_times[@]}")"
echo "meanwhile, other client backup 100 files: $(stats "${bk_times[@]}")"
echo "server's longest loop turn: ${turn:-?} ms"

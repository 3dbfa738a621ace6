#!/usr/bin/env bash
# What watch mode costs: latency of a change, idle CPU and wake-ups, memory
# per watched directory, time to set up the watches.
#
# usage: scripts/watch-bench.sh
#
# Builds the release binaries and the watchbench bench (benches/watchbench.rs:
# the writer, the store watcher and the /proc reader), makes a fresh ext4
# image, loop-mounts it, and puts both the server's root and every watched
# tree on it. One rsb-server on 127.0.0.1 serves every case; each case has
# its own watching client (`rsb-client -n NAME 127.0.0.1 PORT watch ...`),
# ended by SIGTERM, which must exit 0 with its summary:
#   1. latency: 100 distinct files of 1-16 KiB a second, for 30 s, into 10
#      directories already backed up; from each file's close (in the writer)
#      to its arrival under its final name in the store (inotify on the
#      store's directories), one clock (CLOCK_MONOTONIC) in one process;
#      p50, p99, max, how many arrived; at --delay 1 and at the default (2).
#   2. idle: a watcher of 10,000 directories, left alone for 60 s after its
#      first backup: CPU time (utime+stime, and the scheduler's run time),
#      voluntary context switches (its wake-ups), then strace of what it
#      does while idle.
#   3. memory: RSS and anonymous RSS of a watcher of 100,000 directories
#      minus one of 10, per directory of difference; the watches in its
#      inotify descriptor's fdinfo; the kernel's size of a watch (slabinfo).
#   4. set-up: on those 100,000 directories, the client's own `set up in`
#      time and the wall time from its start to the end of its first backup.
# fs.inotify.max_user_watches is raised to 524288 for the run when it is
# below 200,000 and put back at exit. Every wait is bounded; the clients,
# the server, the mount, the loop device and the image are removed at exit,
# interrupted or not. The table goes to standard output and to
# WORKDIR/watch-bench.txt (kept); progress goes to standard error.
#
# environment:
#   WATCH_BENCH_QUICK=1    a scaled-down run in under a minute once built
#                          (3 s of writing, 10 s idle on 1,000 directories,
#                          memory and set-up on 10,000), for CI
#   WATCH_BENCH_FS         loop (default; needs root) or dir: the old way, a
#                          plain directory in the work directory's file system
#   WATCH_BENCH_DIR        work directory (default: a new `mktemp -d`,
#                          removed at exit but for the report and the logs)
#   WATCH_BENCH_SECS       seconds of writing per latency run (default 30)
#   WATCH_BENCH_RATE       files written a second (default 100)
#   WATCH_BENCH_IDLE_SECS  idle time measured (default 60)
#   WATCH_BENCH_IDLE_DIRS  directories of the idle watcher (default 10000)
#   WATCH_BENCH_DIRS       directories of the big watcher (default 100000)
#
# exit status: 0 every measurement made (a missed target is reported, not a
# failure); 1 a measurement failed (a file never arrived or differs, a
# client did not start, exit 0 or end its first backup in time); 2 bad
# usage or a missing tool.
set -eu
export LC_ALL=C

prog=watch-bench.sh
repo=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)

die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }
usage_die() { echo "$prog: $*" >&2; exit 2; }
posint() { # NAME VALUE
	case $2 in
	'' | *[!0-9]* | 0*) usage_die "$1 must be a positive integer, not '$2'" ;;
	esac
}
[ -n "${EPOCHREALTIME:-}" ] || usage_die "needs bash 5 or later (EPOCHREALTIME)"

quick=${WATCH_BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
	d_secs=3 d_idle_secs=10 d_idle_dirs=1000 d_dirs=10000
else
	d_secs=30 d_idle_secs=60 d_idle_dirs=10000 d_dirs=100000
fi
fsmode=${WATCH_BENCH_FS:-loop}
secs=${WATCH_BENCH_SECS:-$d_secs}
rate=${WATCH_BENCH_RATE:-100}
idle_secs=${WATCH_BENCH_IDLE_SECS:-$d_idle_secs}
idle_dirs=${WATCH_BENCH_IDLE_DIRS:-$d_idle_dirs}
big_dirs=${WATCH_BENCH_DIRS:-$d_dirs}
small_dirs=10
lat_dirs=10
posint WATCH_BENCH_SECS "$secs"
posint WATCH_BENCH_RATE "$rate"
posint WATCH_BENCH_IDLE_SECS "$idle_secs"
posint WATCH_BENCH_IDLE_DIRS "$idle_dirs"
posint WATCH_BENCH_DIRS "$big_dirs"
[ "$rate" -le 10000 ] || usage_die "WATCH_BENCH_RATE: at most 10000"
[ "$big_dirs" -gt "$small_dirs" ] || usage_die "WATCH_BENCH_DIRS must be above $small_dirs"
[ "$big_dirs" -le 1000000 ] && [ "$idle_dirs" -le 1000000 ] || usage_die "at most 1000000 directories"
case $fsmode in loop | dir) ;; *) usage_die "WATCH_BENCH_FS: loop or dir, not '$fsmode'" ;; esac
count=$((secs * rate))
is_root=0
[ "$(id -u)" -ne 0 ] || is_root=1
if [ "$fsmode" = loop ]; then
	[ "$is_root" = 1 ] || usage_die "a loop-mounted ext4 needs root; run as root or with WATCH_BENCH_FS=dir"
	for t in losetup mkfs.ext4 mount umount; do
		command -v "$t" >/dev/null 2>&1 || usage_die "$t is needed for WATCH_BENCH_FS=loop"
	done
fi
have_strace=0
command -v strace >/dev/null 2>&1 && have_strace=1

# ---------------------------------------------------------------- state and cleanup
own_work=0
if [ -n "${WATCH_BENCH_DIR:-}" ]; then
	mkdir -p "$WATCH_BENCH_DIR"
	work=$(cd "$WATCH_BENCH_DIR" && pwd)
else
	work=$(mktemp -d /tmp/rsb-watch-bench.XXXXXX)
	own_work=1
fi
logs=$work/logs
report=$work/watch-bench.txt
rm -rf "$logs"
mkdir -p "$logs"
img=$work/fs.img
mnt=$work/mnt
loopdev=
mounted=0
srv_pid=
cli_pid=
strace_pid=
sysctl_old=
failures=0

stop_client() { # ends the current client at once (cleanup only)
	[ -n "$cli_pid" ] || return 0
	kill -KILL "$cli_pid" 2>/dev/null || true
	wait "$cli_pid" 2>/dev/null || true
	cli_pid=
}
cleanup() {
	status=$?
	trap - EXIT INT TERM
	if [ -n "$strace_pid" ]; then kill "$strace_pid" 2>/dev/null || true; wait "$strace_pid" 2>/dev/null || true; fi
	stop_client
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
	fi
	if [ "$mounted" = 1 ]; then
		umount "$mnt" 2>/dev/null || { sleep 1; umount -l "$mnt" 2>/dev/null || true; }
	fi
	if [ -n "$loopdev" ]; then losetup -d "$loopdev" 2>/dev/null || true; fi
	rm -f "$img"
	rm -rf "$mnt"
	if [ -n "$sysctl_old" ]; then
		echo "$sysctl_old" >/proc/sys/fs/inotify/max_user_watches 2>/dev/null ||
			say "could not put fs.inotify.max_user_watches back to $sysctl_old"
	fi
	if [ "$status" -ne 0 ]; then say "FAILED (status $status); logs in $logs"; fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- build
say "building the release binaries and the watchbench bench"
(cd "$repo" && cargo build --release) >&2 || die "cargo build --release failed"
wb=$(cd "$repo" && cargo bench --bench watchbench --no-run 2>&1 |
	sed -n 's/.*Executable [^(]*(\(.*\)).*/\1/p' | tail -n 1)
[ -n "$wb" ] || die "cargo bench --bench watchbench --no-run failed"
case $wb in /*) ;; *) wb=$repo/$wb ;; esac
[ -x "$wb" ] || die "no watchbench binary at $wb"
server=$repo/target/release/rsb-server
client=$repo/target/release/rsb-client

# ---------------------------------------------------------------- file system
if [ "$fsmode" = loop ]; then
	# Sized for both copies of the big tree (a 4 KiB block and an inode per
	# directory in the tree and in the store), with room to spare.
	need_inodes=$(( (big_dirs + idle_dirs) * 2 + count * 4 + 100000 ))
	img_mb=$(( need_inodes * 12 / 1024 + 1024 ))
	say "making a ${img_mb} MiB ext4 image with $need_inodes inodes, loop-mounted on $mnt"
	rm -f "$img"
	truncate -s "${img_mb}M" "$img"
	mkfs.ext4 -q -F -N "$need_inodes" -E lazy_itable_init=0,lazy_journal_init=0 "$img" >&2 ||
		die "mkfs.ext4 failed"
	loopdev=$(losetup --find --show "$img") || die "losetup failed"
	mkdir -p "$mnt"
	mount "$loopdev" "$mnt" || die "mount $loopdev failed"
	mounted=1
else
	mkdir -p "$mnt"
fi
fs_desc="$(df -T "$mnt" | awk 'NR == 2 {print $2}') ($(findmnt -n -o SOURCE,OPTIONS -T "$mnt" 2>/dev/null | tr -s ' ' || echo '?'))"
[ "$fsmode" = loop ] && fs_desc="fresh loop-mounted $fs_desc, image in $(df -T "$work" | awk 'NR == 2 {print $2}') on $(df "$work" | awk 'NR == 2 {print $1}')"
store=$mnt/store

# ---------------------------------------------------------------- inotify limit
watches_need=$((big_dirs + 2 * idle_dirs + 1000))
cur=$(cat /proc/sys/fs/inotify/max_user_watches)
limit_note="fs.inotify.max_user_watches $cur (not changed)"
if [ "$cur" -lt 200000 ] || [ "$cur" -lt "$watches_need" ]; then
	new=524288
	[ "$new" -ge "$watches_need" ] || new=$((watches_need * 2))
	[ "$is_root" = 1 ] || usage_die "fs.inotify.max_user_watches is $cur, below what the run needs; raise it (as root) or run as root"
	echo "$new" >/proc/sys/fs/inotify/max_user_watches || die "cannot raise fs.inotify.max_user_watches"
	sysctl_old=$cur
	limit_note="fs.inotify.max_user_watches raised from $cur to $new for the run (put back at exit)"
	say "$limit_note"
fi

# ---------------------------------------------------------------- helpers
now_us() { echo "${EPOCHREALTIME/./}"; }
fmt_s() { awk -v u="$1" 'BEGIN {printf "%.3f", u / 1e6}'; }
field() { # KEY LINE...: the value of KEY=value among the words of LINE
	local k=$1 w
	shift
	for w in $*; do case $w in "$k="*) echo "${w#*=}"; return 0 ;; esac; done
	echo ""
}

# wait_line LOG PATTERN SECS: waits until LOG has a line matching PATTERN
# (grep -E) while the client lives; sets WAITED to the microseconds since
# the call. Fails if the client exits or SECS pass.
wait_line() {
	local log=$1 pat=$2 limit_us=$(( $3 * 1000000 )) t0
	t0=$(now_us)
	while ! grep -qE "$pat" "$log" 2>/dev/null; do
		if ! kill -0 "$cli_pid" 2>/dev/null; then
			say "the client exited before '$pat'; its log:"
			sed 's/^/    /' "$log" >&2
			return 1
		fi
		if [ $(( $(now_us) - t0 )) -gt "$limit_us" ]; then
			say "no '$pat' in $log within $3 s"
			return 1
		fi
		sleep 0.01
	done
	WAITED=$(( $(now_us) - t0 ))
}

# start_watch NAME DIR [WATCH OPTION...]: a watching client in the
# background (cli_pid), its stderr in logs/NAME.log; sets STARTED (us).
start_watch() {
	local name=$1 dir=$2
	shift 2
	STARTED=$(now_us)
	"$client" -n "$name" 127.0.0.1 "$port" watch "$@" "$dir" 2>"$logs/$name.log" &
	cli_pid=$!
}

# end_watch NAME: SIGTERM, then up to 20 s for exit status 0 and the
# `watch:` summary; else the measurement failed.
end_watch() {
	local name=$1 i=0 st=0
	kill -TERM "$cli_pid" 2>/dev/null || true
	while kill -0 "$cli_pid" 2>/dev/null && [ "$i" -lt 2000 ]; do sleep 0.01; i=$((i + 1)); done
	if kill -0 "$cli_pid" 2>/dev/null; then
		say "$name: the client did not exit within 20 s of SIGTERM"
		stop_client
		return 1
	fi
	wait "$cli_pid" || st=$?
	cli_pid=
	if [ "$st" -ne 0 ]; then say "$name: the client exited with status $st"; return 1; fi
	grep -q '^watch: ' "$logs/$name.log" || { say "$name: no 'watch:' summary"; return 1; }
}

failed() { # CASE: note a failed measurement; the run goes on
	failures=$((failures + 1))
	say "$1: FAILED"
	echo "$1: FAILED (see $logs)" >>"$logs/failures.txt"
}

# blocked_in PID: the system call its main thread sleeps in, with the
# timeout of an epoll_wait (x86_64 and aarch64 numbers), from /proc/PID/syscall.
blocked_in() {
	local sc nr a4 ms
	sc=$(cat "/proc/$1/syscall" 2>/dev/null || true)
	set -- $sc
	[ $# -ge 5 ] || { echo ""; return 0; }
	nr=$1 a4=$5
	case $(uname -m):$nr in
	x86_64:232 | x86_64:281 | x86_64:441 | aarch64:22 | aarch64:441)
		ms=$(( a4 ))
		if [ "$ms" -eq 4294967295 ] || [ "$ms" -lt 0 ] || [ "$ms" -gt 9223372036854775000 ]; then ms="none (-1)"; else ms="$ms ms"; fi
		echo "epoll_wait, timeout $ms" ;;
	*) echo "system call $nr" ;;
	esac
}

# ---------------------------------------------------------------- server
"$server" -a 127.0.0.1 -p 0 -d "$store" -q 2>"$logs/rsb-server.log" &
srv_pid=$!
port=
for _ in $(seq 1 200); do
	kill -0 "$srv_pid" 2>/dev/null || die "rsb-server exited early; see $logs/rsb-server.log"
	port=$(sed -n 's/.*listening on [^ ,]*:\([0-9][0-9]*\).*/\1/p' "$logs/rsb-server.log" 2>/dev/null | head -n 1)
	[ -z "$port" ] || break
	sleep 0.05
done
[ -n "$port" ] || die "rsb-server did not report its port within 10 s"
: >"$logs/failures.txt"

# ---------------------------------------------------------------- 1. latency
lat_rows=()
latency_case() { # LABEL NAME [WATCH OPTION...]
	local label=$1 name=$2 delay=$3 tree=$mnt/$2 out d
	shift 3
	for d in $(seq 0 $((lat_dirs - 1))); do mkdir -p "$(printf '%s/d%02d' "$tree" "$d")"; done
	start_watch "$name" "$tree" "$@"
	if ! wait_line "$logs/$name.log" '^batch: ' 60; then stop_client; failed "latency $label"; lat_rows+=("$label|FAILED"); return 0; fi
	say "latency, $label: writing $count files at $rate a second"
	local c0 s0 c1 s1
	c0=$("$wb" proc "$cli_pid" 2>/dev/null || true)
	s0=$("$wb" proc "$srv_pid" 2>/dev/null || true)
	if out=$("$wb" latency --tree "$tree" --store "$store/$name$tree" --rate "$rate" \
		--count "$count" --dirs "$lat_dirs" --wait 30 2>"$logs/$name.wb.err"); then :; else
		failed "latency $label (watchbench: $(tr '\n' ' ' <"$logs/$name.wb.err")arrived $(field arrived $(echo "$out" | tr '\n' ' ')) of $count, differ $(field differ $(echo "$out" | tr '\n' ' ')))"
	fi
	c1=$("$wb" proc "$cli_pid" 2>/dev/null || true)
	s1=$("$wb" proc "$srv_pid" 2>/dev/null || true)
	echo "$out" >"$logs/$name.wb.out"
	local cpu_c=? cpu_s=?
	if [ -n "$c0" ] && [ -n "$c1" ]; then cpu_c=$(( $(field cpu_ms $c1) - $(field cpu_ms $c0) )); fi
	if [ -n "$s0" ] && [ -n "$s1" ]; then cpu_s=$(( $(field cpu_ms $s1) - $(field cpu_ms $s0) )); fi
	local batches
	batches=$(grep -c '^batch: ' "$logs/$name.log" || true)
	end_watch "$name" || failed "latency $label (ending the client)"
	out=$(echo "$out" | tr '\n' ' ')
	local met=no
	if [ "$(field arrived $out)" != "$count" ] || [ "$(field differ $out)" != 0 ]; then
		met="- (not every file arrived)"
	elif [ -n "$(field p99_ms $out)" ] && awk -v p="$(field p99_ms $out)" -v d="$delay" 'BEGIN {exit !(p <= (d + 1) * 1000)}'; then met=yes; fi
	lat_rows+=("$label|$(field files $out)|$(field arrived $out)|$(field differ $out)|$(field p50_ms $out)|$(field p99_ms $out)|$(field max_ms $out)|$(field mean_ms $out)|$((batches - 1))|$(field writer_behind_max_ms $out)|$met|$cpu_c / $cpu_s")
}
say "case 1: latency under $rate files a second"
latency_case "--delay 1" lat1 1 --delay 1
latency_case "default (2 s)" lat2 2

# ---------------------------------------------------------------- 2. idle
say "case 2: a watcher of $idle_dirs directories, idle for $idle_secs s"
idle_row=FAILED
blocked=
strace_summary=
strace_lines=
"$wb" tree "$mnt/idle" --dirs "$idle_dirs" >/dev/null || die "cannot make the idle tree"
start_watch idle "$mnt/idle"
if wait_line "$logs/idle.log" '^batch: ' 300; then
	sleep 2
	a=$("$wb" proc "$cli_pid")
	sleep "$idle_secs"
	b=$("$wb" proc "$cli_pid")
	d_cpu=$(( $(field cpu_ms $b) - $(field cpu_ms $a) ))
	d_run=$(( $(field run_ns $b) - $(field run_ns $a) ))
	d_vol=$(( $(field vol_cs $b) - $(field vol_cs $a) ))
	d_inv=$(( $(field invol_cs $b) - $(field invol_cs $a) ))
	blocked=$(blocked_in "$cli_pid")
	idle_row="$d_cpu|$(awk -v n="$d_run" 'BEGIN {printf "%.3f", n / 1e6}')|$d_vol|$d_inv|$(field threads $b)|$(field watches $b)"
	if [ "$have_strace" = 1 ]; then
		st_secs=$(( idle_secs < 20 ? idle_secs : 20 ))
		say "idle: strace -f of the watcher for $st_secs s"
		timeout -s INT "$((st_secs + 5))" strace -f -tt -p "$cli_pid" -o "$logs/idle.strace" 2>"$logs/idle.strace.err" &
		strace_pid=$!
		sleep "$st_secs"
		kill -INT "$strace_pid" 2>/dev/null || true
		wait "$strace_pid" 2>/dev/null || true
		strace_pid=
		strace_summary=$(grep -v -e 'resumed>' -e '^[0-9]* *[0-9:.]* +++' -e '^[0-9]* *[0-9:.]* ---' "$logs/idle.strace" 2>/dev/null |
			sed -n 's/^[0-9]* *[0-9:.]* \([a-z_0-9]*\)(.*/\1/p' | sort | uniq -c | sort -rn | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')
		strace_lines=$(grep -c . "$logs/idle.strace" 2>/dev/null || true)
		[ -n "$strace_summary" ] || strace_summary="no system call in $st_secs s"
		strace_summary="$strace_summary (in $st_secs s; $logs/idle.strace)"
	fi
	end_watch idle || failed "idle (ending the client)"
else
	stop_client
	failed "idle (first backup)"
fi

# ---------------------------------------------------------------- 3 and 4. memory and set-up
say "case 3 and 4: memory per watched directory, set-up time on $big_dirs directories"
# A port nobody listens on, for the watchers measured with the server away
# (their watches set up, no backup made): one just closed by the system.
away_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 1)
declare -A mem setup_wall first_wall setup_line
# mem_case KEY DIR PORT: one watcher's figures once it is settled: after its
# first backup (the server there) or after its set-up (the server away).
mem_case() {
	local key=$1 dir=$2 p=$3 keep_port=$port
	port=$p
	start_watch "$key" "$dir"
	port=$keep_port
	if ! wait_line "$logs/$key.log" 'watching .*set up in' 600; then
		stop_client
		failed "memory/set-up ($key watcher)"
		return 0
	fi
	setup_wall[$key]=$(( $(now_us) - STARTED ))
	setup_line[$key]=$(grep -E 'watching .*set up in' "$logs/$key.log" | head -n 1)
	if [ "$p" = "$port" ]; then
		if ! wait_line "$logs/$key.log" '^batch: ' 1200; then
			stop_client
			failed "memory/set-up ($key watcher, first backup)"
			return 0
		fi
		first_wall[$key]=$(( $(now_us) - STARTED ))
	fi
	sleep 2
	mem[$key]=$("$wb" proc "$cli_pid")
	end_watch "$key" || failed "memory/set-up (ending the $key watcher)"
}
"$wb" tree "$mnt/small" --dirs "$small_dirs" >/dev/null || die "cannot make the small tree"
say "making $big_dirs directories"
"$wb" tree "$mnt/big" --dirs "$big_dirs" >/dev/null || die "cannot make the big tree"
sync
mem_case small "$mnt/small" "$port"
mem_case big "$mnt/big" "$port"
mem_case small_away "$mnt/small" "$away_port"
mem_case big_away "$mnt/big" "$away_port"
# The kernel's side of a watch: its mark, and the connector of a watched
# inode (slab object sizes, from /sys/kernel/slab or /proc/slabinfo).
slab_size() {
	cat "/sys/kernel/slab/$1/slab_size" 2>/dev/null ||
		awk -v n="$1" '$1 == n {print $4}' /proc/slabinfo 2>/dev/null || true
}
slab=$(slab_size inotify_inode_mark)
slab_conn=$(slab_size fsnotify_mark_connector)

# ---------------------------------------------------------------- report
per_dir() { # KEY SMALL BIG: bytes of KEY per watch of BIG's figures over SMALL's
	local a b da db
	a=$(field "$1" ${mem[$2]:-})
	b=$(field "$1" ${mem[$3]:-})
	da=$(field watches ${mem[$2]:-})
	db=$(field watches ${mem[$3]:-})
	[ -n "$a" ] && [ -n "$b" ] && [ -n "$da" ] && [ -n "$db" ] && [ "$db" -gt "$da" ] || { echo "n/a"; return; }
	awk -v a="$a" -v b="$b" -v da="$da" -v db="$db" 'BEGIN {printf "%.0f", (b - a) * 1024 / (db - da)}'
}
{
	echo "rsb watch mode: latency, idle cost, memory, set-up ($([ "$quick" = 1 ] && echo 'QUICK, scaled down' || echo 'full run'))"
	echo "file system: $fs_desc; server root and watched trees both on it"
	echo "$limit_note"
	echo
	echo "1. latency from a file's close to its arrival under its final name in the store,"
	echo "   $rate new files of 1-16 KiB a second into $lat_dirs directories for $secs s ($count files)"
	printf '%-15s | %6s | %7s | %6s | %8s | %8s | %8s | %8s | %7s | %-11s | %-13s | %s\n' \
		"delay" "files" "arrived" "differ" "p50 ms" "p99 ms" "max ms" "mean ms" "batches" "writer late" "CPU ms" "p99 <= delay"
	printf '%-15s | %6s | %7s | %6s | %8s | %8s | %8s | %8s | %7s | %-11s | %-13s | %s\n' \
		"" "" "" "" "" "" "" "" "" "max ms" "client/server" "+ 1 s"
	printf '%140s\n' '' | tr ' ' -
	for r in "${lat_rows[@]}"; do
		IFS='|' read -r l f a d p50 p99 mx mean nb wl met cpu <<<"$r"
		printf '%-15s | %6s | %7s | %6s | %8s | %8s | %8s | %8s | %7s | %-11s | %-13s | %s\n' "$l" "$f" "${a:-}" "${d:-}" "${p50:-}" "${p99:-}" "${mx:-}" "${mean:-}" "${nb:-}" "${wl:-}" "${cpu:-}" "${met:-}"
	done
	echo "   every file must arrive with its contents (differ 0); batches: the client's batch"
	echo "   lines after its first backup (each one a backup with its own commit); writer late:"
	echo "   how far the writer's slowest close fell behind its slot of 1/$rate s; CPU: utime+stime"
	echo "   of the watching client and of the server while the files were written and sent"
	echo
	echo "2. idle: a watcher of $idle_dirs directories, $idle_secs s after its first backup"
	c= r= v= n= th= wa=
	[ "$idle_row" = FAILED ] || IFS='|' read -r c r v n th wa <<<"$idle_row"
	echo "   CPU (utime+stime): ${c:-FAILED} ms; scheduler run time: ${r:-?} ms;"
	echo "   voluntary context switches (wake-ups): ${v:-?}; involuntary: ${n:-?}; threads: ${th:-?}; watches: ${wa:-?}"
	[ -z "$blocked" ] || echo "   sleeping in: $blocked (/proc/PID/syscall at the end of the idle time)"
	[ -z "$strace_summary" ] || echo "   strace -f while idle: $strace_summary"
	[ -z "$strace_summary" ] || echo "   (strace's attach interrupts the wait once: the calls around that one wake-up are its own)"
	echo "   target: no wake-ups beyond timers (the watcher's one timer is the next rescan, --rescan,"
	echo "   default 3600 s; it holds no connection between batches: each batch connects anew)"
	echo
	echo "3. memory per watched directory: a watcher of $big_dirs directories minus one of $small_dirs"
	printf '   %-37s | %8s | %9s | %11s | %8s\n' "watcher" "watches" "VmRSS KiB" "RssAnon KiB" "Pss KiB"
	for k in small big small_away big_away; do
		case $k in
		small) l="$small_dirs dirs, after its first backup" ;;
		big) l="$big_dirs dirs, after its first backup" ;;
		small_away) l="$small_dirs dirs, server away" ;;
		big_away) l="$big_dirs dirs, server away" ;;
		esac
		m=${mem[$k]:-}
		printf '   %-37s | %8s | %9s | %11s | %8s\n' "$l" "$(field watches $m)" "$(field rss_kb $m)" "$(field anon_kb $m)" "$(field pss_kb $m)"
	done
	echo "   per directory, after the first backup: VmRSS $(per_dir rss_kb small big) bytes, RssAnon $(per_dir anon_kb small big) bytes (target <= 200)"
	echo "   per directory, watches only (server away, no backup made): VmRSS $(per_dir rss_kb small_away big_away) bytes, RssAnon $(per_dir anon_kb small_away big_away) bytes"
	[ "$quick" != 1 ] || echo "   (quick run: the first backup's fixed leftovers, a few MiB, weigh on few directories)"
	[ -z "$slab" ] || echo "   kernel, besides: per watch an inotify_inode_mark of $slab bytes and a fsnotify_mark_connector of ${slab_conn:-?} (slab sizes), an idr slot for its number, and the directory's inode kept in the cache"
	echo
	echo "4. set-up on $big_dirs directories"
	echo "   client, server there: ${setup_line[big]:-FAILED}"
	[ -z "${setup_wall[big]:-}" ] || echo "      wall time from its start to that line: $(fmt_s "${setup_wall[big]}") s; to the end of its first backup: $(fmt_s "${first_wall[big]:-0}") s"
	echo "   client, server away:  ${setup_line[big_away]:-FAILED}"
	[ -z "${setup_wall[big_away]:-}" ] || echo "      wall time from its start to that line: $(fmt_s "${setup_wall[big_away]}") s"
	echo
	if [ -s "$logs/failures.txt" ]; then echo "failed measurements:"; sed 's/^/  /' "$logs/failures.txt"; echo; fi
	echo "machine:"
	echo "  cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores"
	echo "  ram: $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "  kernel: $(uname -sr)"
	echo "  rsb: $("$server" -V) (release build, $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$repo" && git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/'))"
	echo "  load average at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
	echo "  date: $(date -u '+%Y-%m-%d %H:%M UTC')"
} >"$report"
cat "$report"
say "table written to $report; logs in $logs"
[ "$failures" -eq 0 ] || exit 1

#!/usr/bin/env bash
# rsb against rsync's daemon on loopback, in one run, as ratios.
#
# usage: scripts/bench.sh
#
# Builds the release binaries, makes a data set of random (incompressible)
# contents, starts rsb-server and an rsync daemon on 127.0.0.1 and times, as
# the median of BENCH_RUNS runs with rsb and rsync alternating within each
# round and every run starting from an empty destination:
#   1. one big file: push (rsb backup, rsync push) and pull (rsb restore,
#      rsync pull);
#   2. many small files in 100 directories: push and pull;
#   3. the push of the same small files again, unchanged, onto a populated
#      destination;
#   4. the push of the big file after 1 MiB in its middle changed;
#   5. the peak RSS of servers and clients in every case (table columns);
#   6. scale: 1000 clients with the loadgen bench, when Cargo.toml has one.
# A local `cp -a` (and `cp -a` then `sync`) of the same data is the floor.
# The table goes to standard output and to WORKDIR/bench.txt; progress and
# errors go to standard error.
#
# environment:
#   RSB_BENCH_DIR      work directory (default: a new `mktemp -d`); the
#                      bulky copies in it are removed at exit, bench.txt and
#                      the logs are kept; with RSB_BENCH_DIR the source data
#                      is kept too and reused by the next run
#   BENCH_BIG_MB       size of the big file in MiB (default 1024)
#   BENCH_SMALL_FILES  number of small files of 1 to 16 KiB (default 10000)
#   BENCH_RUNS         timed runs per case (default 5)
#   BENCH_DROP_CACHES  1: drop the page cache before every timed run (needs
#                      root); default 0, a warm cache
#   BENCH_KEEP         1: keep every copy in the work directory at exit
#   BENCH_CASES        which cases to run, e.g. "2 7 8" (default: all)
#   BENCH_WIDE_FILES   empty files in the one directory of case 8
#                      (default 100000)
#   RSB_SERVER_ARGS    extra rsb-server options, e.g. "--sync fsync" to
#                      time the fsync mode against the default
#
# exit status: 0 done, 1 a step failed, 2 bad usage or a missing tool that
# cannot be installed.
set -eu
export LC_ALL=C

prog=bench.sh
repo=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)

die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

posint() { # NAME VALUE: VALUE must be a positive decimal integer
	case $2 in
	'' | *[!0-9]* | 0*) echo "$prog: $1 must be a positive integer, not '$2'" >&2; exit 2 ;;
	esac
}
big_mb=${BENCH_BIG_MB:-1024}
small_n=${BENCH_SMALL_FILES:-10000}
runs=${BENCH_RUNS:-5}
drop=${BENCH_DROP_CACHES:-0}
keep=${BENCH_KEEP:-0}
cases=${BENCH_CASES:-1 2 3 4 6 7 8}
wide_n=${BENCH_WIDE_FILES:-100000}
server_args=${RSB_SERVER_ARGS:-}
posint BENCH_WIDE_FILES "$wide_n"
want() { case " $cases " in *" $1 "*) return 0 ;; esac; return 1; }
posint BENCH_BIG_MB "$big_mb"
posint BENCH_SMALL_FILES "$small_n"
posint BENCH_RUNS "$runs"
[ "$big_mb" -ge 2 ] || { echo "$prog: BENCH_BIG_MB must be at least 2" >&2; exit 2; }
[ -n "${EPOCHREALTIME:-}" ] || { echo "$prog: needs bash 5 or later (EPOCHREALTIME)" >&2; exit 2; }

# ---------------------------------------------------------------- tools
# need COMMAND PACKAGE: install PACKAGE with apt-get (as root or through
# sudo) when COMMAND is missing; else say how and exit 2.
need() {
	if command -v "$1" >/dev/null 2>&1; then return 0; fi
	say "$1 not found; installing the package $2"
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		apt-get update >&2 && apt-get install -y "$2" >&2
	elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1 &&
		sudo -n true 2>/dev/null; then
		sudo apt-get update >&2 && sudo apt-get install -y "$2" >&2
	else
		echo "$prog: $1 is needed; install it with" >&2
		echo "    sudo apt-get update && sudo apt-get install -y $2" >&2
		echo "(or your system's equivalent) and run $prog again" >&2
		exit 2
	fi
	command -v "$1" >/dev/null 2>&1 || { echo "$prog: $1 still missing after installing $2" >&2; exit 2; }
}
need rsync rsync
need /usr/bin/time time
gnutime=/usr/bin/time

load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
say "building release binaries"
(cd "$repo" && cargo build --release) >&2 || die "cargo build --release failed"
server=$repo/target/release/rsb-server
client=$repo/target/release/rsb-client

# ---------------------------------------------------------------- work dir
own_work=0
if [ -n "${RSB_BENCH_DIR:-}" ]; then
	mkdir -p "$RSB_BENCH_DIR"
	work=$(cd "$RSB_BENCH_DIR" && pwd)
else
	work=$(mktemp -d)
	own_work=1
fi
src=$work/src                 # the data set
store=$work/rsb-store         # rsb-server -d
ns=$store/bench               # the namespace of client "bench"
module=$work/rsync-module     # path of the rsync module "bench"
pull_rsb=$work/pull-rsb       # restore destinations
pull_rsync=$work/pull-rsync
cpdst=$work/cp-floor
trash=$work/trash             # old copies of the small files, deleted at exit
logs=$work/logs
report=$work/bench.txt
rssf=$logs/client.rss         # GNU time output of the last timed command
rsyncd_conf=$work/rsyncd.conf
rsyncd_pidf=$work/rsyncd.pid
rm -rf "$store" "$module" "$pull_rsb" "$pull_rsync" "$cpdst" "$trash" "$logs" "$report"
mkdir -p "$src" "$store" "$module" "$pull_rsb" "$pull_rsync" "$cpdst" "$trash" "$logs"

# set_aside PATH: empties a destination for the next run by renaming PATH
# into the trash, which is deleted at exit. Deleting the 10,000 small files
# between runs would slow the next runs down on some file systems: ext4
# without a journal, for one, makes every new inode skip the recently
# deleted ones one by one, and 10,000 creations after 10,000 deletions took
# several times longer there.
trash_n=0
set_aside() {
	[ -e "$1" ] || return 0
	trash_n=$((trash_n + 1))
	mv "$1" "$trash/$trash_n"
}

rsb_pid=
rsb_port=
rsyncd_time_pid=
rsyncd_pid=
rsync_port=

stop_rsb() { # sets rsb_srv_kb to the server's VmHWM (KiB)
	rsb_srv_kb=
	[ -n "$rsb_pid" ] || return 0
	rsb_srv_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$rsb_pid/status" 2>/dev/null || true)
	kill "$rsb_pid" 2>/dev/null || true
	wait "$rsb_pid" 2>/dev/null || true
	rsb_pid=
}
stop_rsyncd() { # sets rsyncd_kb to GNU time's %M of the daemon (KiB)
	rsyncd_kb=
	[ -n "$rsyncd_time_pid" ] || return 0
	if [ -z "$rsyncd_pid" ]; then
		# Not known from the pid file yet: the only child of GNU time.
		rsyncd_pid=$(cat "/proc/$rsyncd_time_pid/task/$rsyncd_time_pid/children" 2>/dev/null || true)
		rsyncd_pid=${rsyncd_pid%% *}
	fi
	if [ -n "$rsyncd_pid" ]; then
		kill "$rsyncd_pid" 2>/dev/null || true
	else
		kill "$rsyncd_time_pid" 2>/dev/null || true
	fi
	wait "$rsyncd_time_pid" 2>/dev/null || true
	rsyncd_kb=$(tail -n 1 "$logs/rsyncd.rss" 2>/dev/null || true)
	case $rsyncd_kb in '' | *[!0-9]*) rsyncd_kb= ;; esac
	rsyncd_time_pid=
	rsyncd_pid=
}
cleanup() {
	status=$?
	trap - EXIT
	stop_rsb
	stop_rsyncd
	rm -rf "$trash"
	if [ "$keep" != 1 ]; then
		rm -rf "$store" "$module" "$pull_rsb" "$pull_rsync" "$cpdst"
		if [ "$own_work" = 1 ]; then rm -rf "$src" "$work/data.params"; fi
	fi
	if [ "$status" -ne 0 ]; then
		say "FAILED (status $status); logs in $logs"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- data
big=$src/big.bin
small=$src/small
params="big_mb=$big_mb small_files=$small_n"
if [ -f "$work/data.params" ] && [ "$(cat "$work/data.params")" = "$params" ] &&
	[ -f "$big" ] && [ -d "$small" ]; then
	say "reusing the data in $src ($params)"
else
	say "making the data in $src: one $big_mb MiB file, $small_n files of 1-16 KiB"
	rm -rf "$big" "$small" "$work/data.params"
	dd if=/dev/urandom of="$big" bs=1M count="$big_mb" iflag=fullblock status=none
	ndirs=100
	[ "$small_n" -ge 100 ] || ndirs=$small_n
	mkdir -p "$small"
	if command -v perl >/dev/null 2>&1; then
		perl -e '
			my ($dir, $n, $ndirs) = @ARGV;
			open(my $r, "<:raw", "/dev/urandom") or die "/dev/urandom: $!\n";
			for my $i (0 .. $n - 1) {
				my $d = sprintf("%s/d%02d", $dir, $i % $ndirs);
				-d $d or mkdir($d) or die "$d: $!\n";
				my $size = 1024 + int(rand(15 * 1024 + 1));
				my $buf;
				read($r, $buf, $size) == $size or die "short read\n";
				my $f = sprintf("%s/f%05d.bin", $d, $i);
				open(my $o, ">:raw", $f) or die "$f: $!\n";
				print $o $buf or die "$f: $!\n";
				close($o) or die "$f: $!\n";
			}' "$small" "$small_n" "$ndirs"
	else
		i=0
		while [ "$i" -lt "$small_n" ]; do
			d=$(printf '%s/d%02d' "$small" $((i % ndirs)))
			mkdir -p "$d"
			head -c $((1024 + (RANDOM * 32768 + RANDOM) % (15 * 1024 + 1))) /dev/urandom \
				>"$(printf '%s/f%05d.bin' "$d" "$i")"
			i=$((i + 1))
		done
	fi
	echo "$params" >"$work/data.params"
fi
big_bytes=$(stat -c %s "$big")
small_bytes=$(find "$small" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s}')
small_count=$(find "$small" -type f | wc -l)
small_dirs=$(find "$small" -mindepth 1 -type d | wc -l)

# ---------------------------------------------------------------- servers
start_rsb() { # NAME [OPTION...]: a fresh rsb-server on 127.0.0.1, port picked by the system
	local log=$logs/rsb-server.$1.log tries=0
	shift
	# shellcheck disable=SC2086 # RSB_SERVER_ARGS is a list of words
	"$server" -a 127.0.0.1 -p 0 -d "$store" -q $server_args "$@" 2>"$log" &
	rsb_pid=$!
	rsb_port=
	while [ -z "$rsb_port" ]; do
		kill -0 "$rsb_pid" 2>/dev/null || die "rsb-server exited early; see $log"
		rsb_port=$(sed -n 's/.*listening on [^ ,]*:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
		if [ -z "$rsb_port" ]; then
			tries=$((tries + 1))
			[ "$tries" -le 100 ] || die "rsb-server did not report its port within 10 s; see $log"
			sleep 0.1
		fi
	done
}

is_root=0
[ "$(id -u)" -ne 0 ] || is_root=1
{
	echo "pid file = $rsyncd_pidf"
	echo "log file = $logs/rsyncd.log"
	echo "use chroot = false"
	echo "reverse lookup = no"
	echo "[bench]"
	echo "    path = $module"
	echo "    read only = false"
	echo "    use chroot = false"
	if [ "$is_root" = 1 ]; then
		# As root the daemon would switch to "nobody" by default.
		echo "    uid = $(id -un)"
		echo "    gid = $(id -gn)"
	fi
} >"$rsyncd_conf"

start_rsyncd() { # a fresh rsync daemon on 127.0.0.1 under GNU time
	local attempt=0 port tries
	while [ "$attempt" -lt 20 ]; do
		attempt=$((attempt + 1))
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		# Someone answers on that port: take another one.
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
		rm -f "$rsyncd_pidf"
		"$gnutime" -f %M -o "$logs/rsyncd.rss" \
			rsync --daemon --no-detach --address=127.0.0.1 --port="$port" \
			--config="$rsyncd_conf" >>"$logs/rsyncd.out" 2>&1 &
		rsyncd_time_pid=$!
		rsyncd_pid=
		tries=0
		while [ "$tries" -lt 100 ]; do
			if ! kill -0 "$rsyncd_time_pid" 2>/dev/null; then break; fi
			if [ -s "$rsyncd_pidf" ] &&
				rsync "rsync://127.0.0.1:$port/" 2>/dev/null | grep -q '^bench'; then
				rsyncd_pid=$(cat "$rsyncd_pidf")
				rsync_port=$port
				return 0
			fi
			tries=$((tries + 1))
			sleep 0.1
		done
		stop_rsyncd
	done
	die "could not start the rsync daemon; see $logs/rsyncd.log and $logs/rsyncd.out"
}

start_servers() { start_rsb "$1"; start_rsyncd; }
stop_servers() { stop_rsb; stop_rsyncd; }

# ---------------------------------------------------------------- timing
can_drop=0
if [ "$drop" = 1 ]; then
	if [ "$is_root" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
		can_drop=1
	else
		say "BENCH_DROP_CACHES=1 needs root (and a writable /proc/sys/vm/drop_caches); running with a warm cache"
	fi
fi

# timed LOG COMMAND...: after an untimed sync (and drop of the caches when
# asked), runs COMMAND under GNU time. Sets T to the microseconds until
# COMMAND ended, TS to the microseconds until a sync after it ended, and KB to
# COMMAND's peak RSS in KiB.
timed() {
	local log=$1 t0 t1 t2
	shift
	sync
	if [ "$can_drop" = 1 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
	t0=$EPOCHREALTIME
	if ! "$gnutime" -f %M -o "$rssf" "$@" >"$log" 2>&1; then
		echo "$prog: failed: $*" >&2
		sed 's/^/    /' "$log" >&2
		exit 1
	fi
	t1=$EPOCHREALTIME
	sync
	t2=$EPOCHREALTIME
	T=$((${t1/./} - ${t0/./}))
	TS=$((${t2/./} - ${t0/./}))
	KB=$(tail -n 1 "$rssf")
}

median() { # microsecond values -> their median
	printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1}
		END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%d\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
max() { printf '%s\n' "$@" | sort -n | tail -n 1; }

# ---------------------------------------------------------------- one run of each tool
run_rsb() { # KIND
	local log=$logs/rsb-client.$1.log
	case $1 in
	big_push)
		rm -f "$ns$big"
		timed "$log" "$client" -q -n bench 127.0.0.1 "$rsb_port" backup "$big" ;;
	big_pull)
		rm -f "$pull_rsb/big.bin"
		timed "$log" "$client" -q -n bench 127.0.0.1 "$rsb_port" restore "$big" "$pull_rsb" ;;
	small_push)
		set_aside "$ns$small"
		timed "$log" "$client" -q -n bench 127.0.0.1 "$rsb_port" backup "$small" ;;
	small_pull)
		set_aside "$pull_rsb/small"
		timed "$log" "$client" -q -n bench 127.0.0.1 "$rsb_port" restore "$small" "$pull_rsb" ;;
	small_repush) # not -q: the summary line says how many bytes went
		timed "$log" "$client" -n bench 127.0.0.1 "$rsb_port" backup "$small" ;;
	big_delta)
		timed "$log" "$client" -n bench 127.0.0.1 "$rsb_port" backup "$big" ;;
	esac
}
run_rsync() { # KIND
	local log=$logs/rsync.$1.log url=rsync://127.0.0.1:$rsync_port/bench
	case $1 in
	big_push)
		rm -f "$module/big.bin"
		timed "$log" rsync -a "$big" "$url/" ;;
	big_pull)
		rm -f "$pull_rsync/big.bin"
		timed "$log" rsync -a "$url/big.bin" "$pull_rsync/" ;;
	small_push)
		set_aside "$module/small"
		timed "$log" rsync -a "$small" "$url/" ;;
	small_pull)
		set_aside "$pull_rsync/small"
		timed "$log" rsync -a "$url/small" "$pull_rsync/" ;;
	small_repush)
		timed "$log" rsync -a --stats "$small" "$url/" ;;
	big_delta)
		timed "$log" rsync -a --stats "$big" "$url/" ;;
	esac
}
run_cp() { # KIND
	local log=$logs/cp.$1.log
	case $1 in
	big_push)
		rm -f "$cpdst/big.bin"
		timed "$log" cp -a "$big" "$cpdst/" ;;
	small_push)
		set_aside "$cpdst/small"
		timed "$log" cp -a "$small" "$cpdst/" ;;
	esac
}
# The 1 MiB change of case 4, in the middle of the big file.
# rsync's quick check compares mtimes in whole seconds by default
# (--modify-window=0): a change within the second of the previous one would
# go unseen and nothing be sent, so the change waits for the next second.
change_big() {
	local before
	before=$(stat -c %Y "$big")
	while [ "$(date +%s)" -le "$before" ]; do sleep 0.1; done
	dd if=/dev/urandom of="$big" bs=1M count=1 seek=$((big_mb / 2)) conv=notrunc status=none
}
# Untimed: the destinations of rsb and rsync hold what the source holds.
prime() { # KIND
	say "$1: priming both destinations (untimed)"
	start_servers "prime.$1"
	run_rsb "$1"
	run_rsync "$1"
	stop_servers
}
# Untimed check that the last run of each tool left a faithful copy.
verify() { # KIND
	local a b
	case $1 in
	big_push | big_delta) set -- "$big" "$ns$big" "$module/big.bin" ;;
	big_pull) set -- "$big" "$pull_rsb/big.bin" "$pull_rsync/big.bin" ;;
	small_push | small_repush) set -- "$small" "$ns$small" "$module/small" ;;
	small_pull) set -- "$small" "$pull_rsb/small" "$pull_rsync/small" ;;
	esac
	a=$1
	shift
	for b in "$@"; do
		diff -r "$a" "$b" >/dev/null || die "the copy $b differs from $a"
	done
}

# ---------------------------------------------------------------- rows
fmt_s() { awk -v us="$1" 'BEGIN {printf "%.3fs", us / 1e6}'; }
fmt_rate() { awk -v us="$1" -v b="$2" 'BEGIN {printf "%.3fs %7.1f MiB/s", us / 1e6, b / 1048576 / (us / 1e6)}'; }
# ratio "A1 A2 ..." "B1 B2 ...": the median of the per-round ratios Ai / Bi.
# Pairing the runs of one round factors out a machine that drifts between
# rounds (a busy neighbour, a file system that slows down as it ages).
ratio() {
	paste -d ' ' <(printf '%s\n' $1) <(printf '%s\n' $2) | awk '{print $1 / $2}' | sort -g |
		awk '{a[NR] = $1} END {printf "%.2fx", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
secs() { awk -v l="$*" 'BEGIN {n = split(l, a, " "); for (i = 1; i <= n; i++) printf "%s%.3f", (i > 1 ? " " : ""), a[i] / 1e6}'; }
fmt_mib() { if [ -n "$1" ]; then awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; else printf 'n/a'; fi; }

rows=$logs/rows.txt
notes=$logs/notes.txt
runlist=$logs/runs.txt
: >"$rows"
: >"$notes"
: >"$runlist"
cp_push_big=
cp_push_small=

# row KIND LABEL BYTES: one line of the table, from RUNS alternating rounds
# on fresh servers.
row() {
	local kind=$1 label=$2 bytes=$3 r rsb_t=() rs_t=() rs_ts=() cp_t=() cp_ts=() \
		rsb_kb=() rs_kb=() order tool cpcol m_rsb m_rs m_rss rsb_srv rs_srv line
	start_servers "$kind"
	for r in $(seq 1 "$runs"); do
		[ "$kind" != big_delta ] || change_big
		# Alternate who goes first, so that neither always finds the
		# other's leftovers (cache, dirty pages, journal).
		if [ $((r % 2)) -eq 1 ]; then order="rsb rsync"; else order="rsync rsb"; fi
		for tool in $order; do
			if [ "$tool" = rsb ]; then
				run_rsb "$kind"
				rsb_t+=("$T")
				rsb_kb+=("$KB")
			else
				run_rsync "$kind"
				rs_t+=("$T")
				rs_ts+=("$TS")
				rs_kb+=("$KB")
			fi
		done
		line="rsb $(fmt_s "${rsb_t[-1]}"), rsync $(fmt_s "${rs_t[-1]}") (+sync $(fmt_s "${rs_ts[-1]}"))"
		case $kind in big_push | small_push)
			run_cp "$kind"
			cp_t+=("$T")
			cp_ts+=("$TS")
			line="$line, cp $(fmt_s "$T") (+sync $(fmt_s "$TS"))" ;;
		esac
		say "$label: run $r/$runs: $line"
	done
	stop_servers
	rsb_srv=$rsb_srv_kb
	rs_srv=$rsyncd_kb
	verify "$kind"

	m_rsb=$(median "${rsb_t[@]}")
	m_rs=$(median "${rs_t[@]}")
	m_rss=$(median "${rs_ts[@]}")
	case $kind in
	big_push) cp_push_big="$(fmt_s "$(median "${cp_t[@]}")") / $(fmt_s "$(median "${cp_ts[@]}")")"
		cpcol=$cp_push_big ;;
	small_push) cp_push_small="$(fmt_s "$(median "${cp_t[@]}")") / $(fmt_s "$(median "${cp_ts[@]}")")"
		cpcol=$cp_push_small ;;
	big_pull) cpcol="$cp_push_big" ;;
	small_pull) cpcol="$cp_push_small" ;;
	*) cpcol="-" ;;
	esac
	printf '%-32s | %-20s | %-20s | %-20s | %6s %6s | %-15s | %5s / %-5s | %5s / %-5s\n' \
		"$label" "$(fmt_rate "$m_rsb" "$bytes")" "$(fmt_rate "$m_rs" "$bytes")" \
		"$(fmt_rate "$m_rss" "$bytes")" "$(ratio "${rs_t[*]}" "${rsb_t[*]}")" \
		"$(ratio "${rs_ts[*]}" "${rsb_t[*]}")" "$cpcol" \
		"$(fmt_mib "$rsb_srv")" "$(fmt_mib "$(max "${rsb_kb[@]}")")" \
		"$(fmt_mib "$rs_srv")" "$(fmt_mib "$(max "${rs_kb[@]}")")" >>"$rows"

	{
		echo "$label:"
		echo "    rsb        $(secs "${rsb_t[@]}")"
		echo "    rsync      $(secs "${rs_t[@]}")"
		echo "    rsync+sync $(secs "${rs_ts[@]}")"
		if [ "${#cp_t[@]}" -gt 0 ]; then
			echo "    cp         $(secs "${cp_t[@]}")"
			echo "    cp+sync    $(secs "${cp_ts[@]}")"
		fi
	} >>"$runlist"
	case $kind in small_repush | big_delta)
		local sb rb
		sb=$(sed -n 's/.* \([0-9][0-9]*\) files sent, \([0-9][0-9]*\) skipped, .* \([0-9][0-9]*\) bytes in .*/\3 bytes of file content (\1 files sent, \2 skipped)/p' \
			"$logs/rsb-client.$kind.log" | tail -n 1)
		rb=$(sed -n 's/^Total bytes sent: *\([0-9,.]*\).*/\1/p' "$logs/rsync.$kind.log" | tr -d ',.' | tail -n 1)
		echo "$label, sent in the last run: rsb ${sb:-n/a}; rsync ${rb:-n/a} bytes (\"Total bytes sent\" of --stats, protocol included)" >>"$notes"
		;;
	esac
}

runs_word="median of $runs run"
[ "$runs" -eq 1 ] || runs_word="${runs_word}s"
big_label="$big_mb MiB file"
small_label="$small_count small files"

if want 1; then
	say "case 1: one $big_label"
	row big_push "1 $big_label, push" "$big_bytes"
	row big_pull "1 $big_label, pull" "$big_bytes"
fi
if want 2; then
	say "case 2: $small_label"
	row small_push "2 $small_label, push" "$small_bytes"
	row small_pull "2 $small_label, pull" "$small_bytes"
fi
if want 3; then
	say "case 3: $small_label pushed again, unchanged"
	prime small_repush
	row small_repush "3 $small_label, push again" "$small_bytes"
fi
if want 4; then
	say "case 4: $big_label with 1 MiB changed in the middle"
	prime big_delta
	row big_delta "4 $big_label, 1 MiB changed" "$big_bytes"
fi

# Case 7: two clients backing up separate trees (the small files, under two
# client names) at once, against the same two backups one after the other;
# concurrent must be no slower than serial.
if want 7; then
	say "case 7: two clients at once vs one after the other"
	c7_serial=() c7_conc=()
	start_rsb concurrent
	push2() { # MODE: both backups, serial or concurrent; sets T
		set_aside "$store/c7a$small"
		set_aside "$store/c7b$small"
		sync
		local t0=$EPOCHREALTIME
		if [ "$1" = serial ]; then
			"$client" -q -n c7a 127.0.0.1 "$rsb_port" backup "$small" >>"$logs/c7.log" 2>&1 || die "case 7 failed"
			"$client" -q -n c7b 127.0.0.1 "$rsb_port" backup "$small" >>"$logs/c7.log" 2>&1 || die "case 7 failed"
		else
			"$client" -q -n c7a 127.0.0.1 "$rsb_port" backup "$small" >>"$logs/c7.log" 2>&1 &
			local a=$!
			"$client" -q -n c7b 127.0.0.1 "$rsb_port" backup "$small" >>"$logs/c7.log" 2>&1 || die "case 7 failed"
			wait "$a" || die "case 7 failed"
		fi
		local t1=$EPOCHREALTIME
		T=$((${t1/./} - ${t0/./}))
	}
	for r in $(seq 1 "$runs"); do
		if [ $((r % 2)) -eq 1 ]; then order="serial concurrent"; else order="concurrent serial"; fi
		for m in $order; do
			push2 "$m"
			if [ "$m" = serial ]; then c7_serial+=("$T"); else c7_conc+=("$T"); fi
		done
		say "case 7: run $r/$runs: serial $(fmt_s "${c7_serial[-1]}"), concurrent $(fmt_s "${c7_conc[-1]}")"
	done
	stop_rsb
	diff -r "$small" "$store/c7a$small" >/dev/null || die "case 7: the copy differs"
	diff -r "$small" "$store/c7b$small" >/dev/null || die "case 7: the copy differs"
	echo "7 two clients, $small_label each: serial $(fmt_s "$(median "${c7_serial[@]}")"), concurrent $(fmt_s "$(median "${c7_conc[@]}")"), concurrent/serial $(ratio "${c7_conc[*]}" "${c7_serial[*]}") (median of per-round ratios; at most 1.00x expected)" >>"$notes"
	{
		echo "7 serial:     $(secs "${c7_serial[@]}")"
		echo "7 concurrent: $(secs "${c7_conc[@]}")"
	} >>"$runlist"
fi

# Case 8: $wide_n empty files in one directory: rsb backup and restore
# against the floor, cp -a then sync, alternating.
if want 8; then
	wide=$work/wide/flat
	if [ "$(find "$wide" -maxdepth 1 -type f 2>/dev/null | wc -l)" -ne "$wide_n" ]; then
		say "case 8: making $wide_n empty files in one directory"
		rm -rf "$work/wide"
		mkdir -p "$wide"
		(cd "$wide" && seq -f 'e%06g' 1 "$wide_n" | xargs touch)
	fi
	c8_push=() c8_pull=() c8_cp=()
	start_rsb wide
	for r in $(seq 1 "$runs"); do
		set_aside "$ns$wide"
		set_aside "$pull_rsb/flat"
		set_aside "$cpdst/flat"
		timed "$logs/c8.push.log" "$client" -q -n bench 127.0.0.1 "$rsb_port" backup "$wide"
		c8_push+=("$T")
		timed "$logs/c8.cp.log" sh -c 'cp -a "$1" "$2/" && sync' sh "$wide" "$cpdst"
		c8_cp+=("$T")
		timed "$logs/c8.pull.log" "$client" -q -n bench 127.0.0.1 "$rsb_port" restore "$wide" "$pull_rsb"
		c8_pull+=("$T")
		say "case 8: run $r/$runs: backup $(fmt_s "${c8_push[-1]}"), restore $(fmt_s "${c8_pull[-1]}"), cp -a + sync $(fmt_s "${c8_cp[-1]}")"
	done
	stop_rsb
	diff -r "$wide" "$ns$wide" >/dev/null || die "case 8: the stored copy differs"
	diff -r "$wide" "$pull_rsb/flat" >/dev/null || die "case 8: the restored copy differs"
	echo "8 $wide_n empty files in one directory: rsb backup $(fmt_s "$(median "${c8_push[@]}")") ($(ratio "${c8_push[*]}" "${c8_cp[*]}") of cp), restore $(fmt_s "$(median "${c8_pull[@]}")") ($(ratio "${c8_pull[*]}" "${c8_cp[*]}") of cp), cp -a + sync $(fmt_s "$(median "${c8_cp[@]}")") (the floor; target: within 1.2x)" >>"$notes"
	{
		echo "8 backup:     $(secs "${c8_push[@]}")"
		echo "8 restore:    $(secs "${c8_pull[@]}")"
		echo "8 cp+sync:    $(secs "${c8_cp[@]}")"
	} >>"$runlist"
fi

# Case 6: many clients at once, with the load generator when there is one.
# Its summary (the lines after "--- summary ---", else its last line) goes
# into the table.
scale="6 scale, 1000 clients: skipped (no loadgen bench in Cargo.toml)"
scale_lines=
if ! want 6; then
	scale="6 scale, 1000 clients: not run (BENCH_CASES)"
elif grep -q loadgen "$repo/Cargo.toml"; then
	say "case 6: loadgen, 1000 clients"
	# Compiled first, so that the timed part is the load only.
	if ! (cd "$repo" && cargo bench --bench loadgen --no-run) >&2; then
		scale="6 scale, 1000 clients: FAILED to build the loadgen bench"
	else
		# Every loadgen client comes from 127.0.0.1: no per-address cap.
		start_rsb scale --max-per-address 0
		t0=$EPOCHREALTIME
		if (cd "$repo" && cargo bench --bench loadgen -- --port "$rsb_port" --clients 1000 \
			--pid "$rsb_pid") >"$logs/loadgen.log" 2>"$logs/loadgen.err"; then
			t1=$EPOCHREALTIME
			stop_rsb
			scale_lines=$(sed -n '/^--- summary ---$/,$p' "$logs/loadgen.log" | sed '1d; /^[[:space:]]*$/d')
			[ -n "$scale_lines" ] || scale_lines=$(grep -v '^[[:space:]]*$' "$logs/loadgen.log" | tail -n 1)
			scale="6 scale, 1000 clients: $(fmt_s $((${t1/./} - ${t0/./}))) wall for cargo bench --bench loadgen -- --clients 1000, rsb-server VmHWM $(fmt_mib "$rsb_srv_kb") MiB; its summary:"
		else
			stop_rsb
			scale="6 scale, 1000 clients: FAILED, see $logs/loadgen.err"
		fi
	fi
fi

# ---------------------------------------------------------------- report
fstype=$(df -T "$work" | awk 'NR == 2 {print $2}')
{
	echo "rsb vs rsync daemon on 127.0.0.1, $runs_word per case, rsb and rsync alternating in each round"
	echo "data: random contents; big file $big_bytes bytes; $small_count small files of 1-16 KiB in $small_dirs directories, $small_bytes bytes"
	echo
	printf '%-32s | %-20s | %-20s | %-20s | %-13s | %-15s | %-13s | %-13s\n' \
		"case" "rsb" "rsync -a" "rsync -a + sync" "speed rsb/" "cp -a floor" "peak RSS MiB" "peak RSS MiB"
	printf '%-32s | %-20s | %-20s | %-20s | %-13s | %-15s | %-13s | %-13s\n' \
		"" "s, MiB/s" "s, MiB/s" "s, MiB/s" "rsync r+sync" "cp / cp+sync" "rsb srv / cli" "rsync srv/cli"
	printf '%167s\n' '' | tr ' ' -
	cat "$rows"
	echo "$scale"
	if [ -n "$scale_lines" ]; then printf '%s\n' "$scale_lines" | sed 's/^/    /'; fi
	echo
	cat "$notes"
	echo
	echo "every run, in seconds, round by round (rsb goes first in odd rounds, rsync in even ones):"
	cat "$runlist"
	echo
	echo "how to read it:"
	echo "- rsb makes data durable (syncfs) before it reports a backup done, and a restore flushes"
	echo "  before it completes; rsync does not fsync by default. \"rsync -a\" is timed until rsync"
	echo "  exits, \"rsync -a + sync\" until a sync after it returns; rsb is timed until it exits."
	echo "  Every timed run starts after an untimed sync, so no run pays for another's dirty pages."
	echo "- rsync runs with its defaults and -a only (over the network that means its delta-transfer"
	echo "  algorithm, no --whole-file, no -z, no --inplace); case 3 and 4 add --stats to count bytes."
	echo "  rsb runs with -q, but without it in cases 3 and 4 to read the bytes from its summary line."
	echo "- times are medians over the runs; speed rsb/rsync = the median over the rounds of"
	echo "  rsync time / rsb time in the same round (above 1: rsb is faster), so drift between"
	echo "  rounds cancels out; r+sync = the same against rsync + sync. MiB/s = size of the case's"
	echo "  data set / median time, also in cases 3 and 4. Every run's time is listed below the table."
	echo "- each run starts from an empty destination, except in case 3 (the destination already"
	echo "  holds the same files, primed by one untimed run) and case 4 (it holds the previous"
	echo "  version: primed by one untimed full push, then each round writes 1 MiB of new random"
	echo "  data at offset $((big_mb / 2)) MiB with dd conv=notrunc). The store path, module dir or local"
	echo "  dir of the last run is deleted, or for the small files renamed aside and deleted at the"
	echo "  end, since mass deletions slow later file creations down on some file systems (ext4"
	echo "  without a journal skips recently deleted inodes one by one when it allocates one)."
	echo "- cp -a floor: a local copy of the same data on the same file system, without / with sync;"
	echo "  the same figure for push and pull."
	if [ "$can_drop" = 1 ]; then
		echo "- page cache: dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every timed run."
	else
		echo "- page cache: warm (not dropped; BENCH_DROP_CACHES=1 as root drops it before every timed run)."
	fi
	echo "- peak RSS (case 5): a fresh rsb-server and a fresh rsync daemon serve each row. rsb server:"
	echo "  VmHWM of the rsb-server process over the row. rsb client, rsync client and rsync daemon:"
	echo "  GNU time %M (the client's largest over the row's runs; the daemon over the whole row),"
	echo "  which on Linux is the largest single process among the command and the children it"
	echo "  waited for: it covers rsync's per-connection daemon children and its forked"
	echo "  generator/receiver, but it is a maximum, not the sum of the processes alive at once."
	echo
	echo "machine:"
	echo "  nproc: $(nproc)"
	echo "  cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	free -g | sed 's/^/  /'
	echo "  kernel: $(uname -sr)"
	echo "  work dir: $work ($fstype, $(findmnt -n -o OPTIONS -T "$work" 2>/dev/null || echo 'mount options unknown'))"
	echo "  load average at the start: $load_start; at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
	echo "  rsync: $(rsync --version | head -n 1)"
	echo "  rsb-server options: ${server_args:-none} (RSB_SERVER_ARGS); cases run: $cases"
	echo "  rsb: $("$server" -V) (release build, $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$repo" && git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/'))"
	echo "  date: $(date -u '+%Y-%m-%d %H:%M UTC')"
} >"$report"
cat "$report"
say "table written to $report; logs in $logs"

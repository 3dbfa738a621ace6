#!/usr/bin/env bash
# rsb against rsync's daemon on loopback and across a shaped LAN, in one
# run, as ratios.
#
# usage: scripts/bench.sh        (as root by default: see BENCH_FS, BENCH_NET)
#
# Builds the release binaries, makes a freshly made ext4 file system (a
# loop-mounted image, BENCH_FS=loop) and on it a data set of random
# (incompressible) contents, starts rsb-server and an rsync daemon on
# 127.0.0.1 and times, as
# the median of BENCH_RUNS runs with rsb and rsync alternating within each
# round and every run starting from an empty destination:
#   1. one big file: push (rsb backup, rsync push) and pull (rsb restore,
#      rsync pull);
#   2. many small files in 100 directories: push and pull;
#   3. the push of the same small files again, unchanged, onto a populated
#      destination;
#   4. the push of the big file after 1 MiB in its middle changed;
#   5. the peak RSS of servers and clients in every case (table columns);
#   6. scale: 1000 clients with the loadgen bench, when Cargo.toml has one;
#   7. two clients at once against one after the other;
#   8. BENCH_WIDE_FILES empty files in one directory;
#   9. across a shaped LAN (BENCH_NET): the server side in one network
#      namespace, the clients in another, joined by a veth pair whose two
#      ends are both shaped by tc's tbf to the rate; cases 1, 2 and 4 again
#      (big push and pull, 1 MiB change, small files push and pull), with
#      the bytes that crossed the veth (its tx + rx counters: tool-neutral)
#      and the rate achieved on the wire.
# A local `cp -a` (and `cp -a` then `sync`) of the same data is the floor;
# beside it in case 2, the raw creation floor of the small files: the
# `floor` bench (benches/floor.rs) makes the same files from memory with
# open/write/close, with 1 and 2 threads, and then one syncfs.
# The table goes to standard output and to WORKDIR/bench.txt; progress and
# errors go to standard error.
#
# environment:
#   RSB_BENCH_DIR      work directory (default: a new `mktemp -d`); the
#                      bulky copies in it are removed at exit, bench.txt and
#                      the logs are kept; with RSB_BENCH_DIR and BENCH_FS=here
#                      the source data is kept too and reused by the next run
#   BENCH_FS           loop (default; needs root): the data and every copy
#                      live on a fresh ext4 image (truncate + mkfs.ext4, sized
#                      from the data set) loop-mounted at WORKDIR/mnt, made
#                      at the start and unmounted and removed at exit, even
#                      when interrupted; an aged file system can be many times
#                      slower at creating files than a fresh one. xfs: the
#                      same with a fresh XFS with reflink (mkfs.xfs -m
#                      reflink=1), where a delta's copied runs share extents
#                      with the old version instead of being written again.
#                      here: the old way, everything in WORKDIR on its file
#                      system
#   BENCH_NET          case 9's rates, comma-separated tc rates (default
#                      1gbit; e.g. 1gbit,100mbit), or off; needs root and
#                      ip(8) and tc(8). The namespaces rsbb-srv-PID and
#                      rsbb-cli-PID are deleted at exit, and stale ones of an
#                      earlier run that is gone are deleted at the start
#   BENCH_BIG_MB       size of the big file in MiB (default 1024)
#   BENCH_SMALL_FILES  number of small files of 1 to 16 KiB (default 10000)
#   BENCH_RUNS         timed runs per case (default 5)
#   BENCH_DROP_CACHES  1: drop the page cache before every timed run (needs
#                      root); default 0, a warm cache
#   BENCH_KEEP         1: keep every copy in the work directory at exit
#   BENCH_CASES        which cases to run, e.g. "2 7 8" (default: all, 1-4
#                      and 6-9)
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
repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)

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
cases=${BENCH_CASES:-1 2 3 4 6 7 8 9}
fsmode=${BENCH_FS:-loop}
net_rates=${BENCH_NET:-1gbit}
wide_n=${BENCH_WIDE_FILES:-100000}
server_args=${RSB_SERVER_ARGS:-}
posint BENCH_WIDE_FILES "$wide_n"
want() { case " $cases " in *" $1 "*) return 0 ;; esac; return 1; }
posint BENCH_BIG_MB "$big_mb"
posint BENCH_SMALL_FILES "$small_n"
posint BENCH_RUNS "$runs"
[ "$big_mb" -ge 2 ] || { echo "$prog: BENCH_BIG_MB must be at least 2" >&2; exit 2; }
[ -n "${EPOCHREALTIME:-}" ] || { echo "$prog: needs bash 5 or later (EPOCHREALTIME)" >&2; exit 2; }
is_root=0
[ "$(id -u)" -ne 0 ] || is_root=1
case $fsmode in
loop | xfs)
	mkfs=mkfs.ext4
	[ "$fsmode" = loop ] || mkfs=mkfs.xfs
	[ "$is_root" = 1 ] || { echo "$prog: BENCH_FS=$fsmode loop-mounts a fresh file system image and needs root; run as root or with BENCH_FS=here (the work dir on its current file system)" >&2; exit 2; }
	for t in "$mkfs" mount umount losetup truncate; do
		command -v "$t" >/dev/null 2>&1 || { echo "$prog: $t is needed for BENCH_FS=$fsmode; or use BENCH_FS=here" >&2; exit 2; }
	done ;;
here) ;;
*) echo "$prog: BENCH_FS must be loop, xfs or here, not '$fsmode'" >&2; exit 2 ;;
esac
# rate_bits RATE: a tc rate (NUMBER with kbit, mbit or gbit; SI units, as
# tc reads them) in bits per second.
rate_bits() {
	case $1 in
	*[!0-9]*kbit | *[!0-9]*mbit | *[!0-9]*gbit | kbit | mbit | gbit | 0*) return 1 ;;
	*kbit) echo $((${1%kbit} * 1000)) ;;
	*mbit) echo $((${1%mbit} * 1000000)) ;;
	*gbit) echo $((${1%gbit} * 1000000000)) ;;
	*) return 1 ;;
	esac
}
if [ "$net_rates" = off ] || ! want 9; then
	net_rates=
else
	for r in ${net_rates//,/ }; do
		rate_bits "$r" >/dev/null || { echo "$prog: BENCH_NET: a list of rates like 1gbit,100mbit (kbit, mbit, gbit), or off; not '$r'" >&2; exit 2; }
	done
	[ "$is_root" = 1 ] || { echo "$prog: BENCH_NET (case 9) makes network namespaces and needs root; run as root or with BENCH_NET=off" >&2; exit 2; }
	for t in ip tc; do
		command -v "$t" >/dev/null 2>&1 || { echo "$prog: $t is needed for BENCH_NET (package iproute2); or use BENCH_NET=off" >&2; exit 2; }
	done
fi

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
floor=
if want 2; then
	floor=$(cd "$repo" && cargo bench --bench floor --no-run 2>&1 |
		sed -n 's/.*Executable [^(]*(\(.*\)).*/\1/p' | tail -n 1)
	[ -n "$floor" ] || die "cargo bench --bench floor --no-run failed"
	case $floor in /*) ;; *) floor=$repo/$floor ;; esac
	[ -x "$floor" ] || die "no floor binary at $floor"
fi

# ---------------------------------------------------------------- work dir
# base holds the logs and bench.txt; work holds the data and every copy:
# base itself with BENCH_FS=here, the loop-mounted image's root with loop.
own_work=0
if [ -n "${RSB_BENCH_DIR:-}" ]; then
	mkdir -p "$RSB_BENCH_DIR"
	base=$(cd "$RSB_BENCH_DIR" && pwd)
else
	base=$(mktemp -d)
	own_work=1
fi
img=$base/fs.img
mnt=$base/mnt
mounted=0
work=$base
[ "$fsmode" = here ] || work=$mnt
src=$work/src                 # the data set
store=$work/rsb-store         # rsb-server -d
ns=$store/bench               # the namespace of client "bench"
module=$work/rsync-module     # path of the rsync module "bench"
pull_rsb=$work/pull-rsb       # restore destinations
pull_rsync=$work/pull-rsync
cpdst=$work/cp-floor
floordst=$work/floor          # the floor bench's destinations
trash=$work/trash             # old copies of the small files, deleted at exit
logs=$base/logs
report=$base/bench.txt
rssf=$logs/client.rss         # GNU time output of the last timed command
rsyncd_conf=$base/rsyncd.conf
rsyncd_pidf=$base/rsyncd.pid
rm -rf "$logs" "$report"
mkdir -p "$logs"

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
host=127.0.0.1                # where the servers listen and the clients go
in_srv=()                     # prefix of a server's command (case 9: its namespace)
in_cli=()                     # prefix of a client's command
tpre=()                       # timed's prefix, set by run_rsb and run_rsync
net_rate=                     # case 9's current rate, empty on loopback
srvns=rsbb-srv-$$             # case 9's namespaces and veth ends
clins=rsbb-cli-$$
vs=rsbbs$$
vc=rsbbc$$
net_made=0
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
# ---------------------------------------------------------------- case 9's network
# net_del NAMESPACE...: deletes what exists of them (the veth pair goes with
# its namespace).
net_del() {
	local n
	for n in "$@"; do
		if ip netns list | awk '{print $1}' | grep -qx -- "$n"; then
			ip netns del "$n" 2>/dev/null || say "could not delete the network namespace $n"
		fi
	done
}
# Namespaces and veth ends of an earlier bench.sh that is gone (its PID is
# in the name); those of a running one are left alone.
net_stale() {
	local n pid
	for n in $(ip netns list | awk '{print $1}' | grep -E '^rsbb-(srv|cli)-[0-9]+$' || true); do
		pid=${n##*-}
		if [ "$pid" != $$ ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q bench.sh; then
			say "deleting the stale network namespace $n of an earlier run"
			net_del "$n"
		fi
	done
	for n in $(ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: \(rsbb[sc][0-9][0-9]*\)@.*/\1/p'); do
		pid=${n#rsbb?}
		if [ "$pid" != $$ ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q bench.sh; then
			say "deleting the stale veth $n of an earlier run"
			ip link del "$n" 2>/dev/null || true
		fi
	done
}
# A private /30 that no address or route of this machine touches:
# 10.213.X.0/30, the first X from 0 up that appears nowhere in `ip route`
# or `ip addr` (the namespaces are isolated anyway; this only keeps the
# addresses unambiguous in logs).
net_pick() {
	local x used
	used=$(ip -4 route show table all 2>/dev/null; ip -4 -o addr show 2>/dev/null)
	for x in $(seq 0 255); do
		case $used in *"10.213.$x."* | *"10.213.0.0/16"* | *"10.0.0.0/8"*) continue ;; esac
		net_x=$x
		return 0
	done
	die "no free 10.213.X.0/30 for case 9"
}
# The two namespaces and the veth pair between them, unshaped.
net_up() {
	net_pick
	srv_ip=10.213.$net_x.1
	cli_ip=10.213.$net_x.2
	net_made=1
	ip netns add "$srvns" || die "ip netns add $srvns failed"
	ip netns add "$clins" || die "ip netns add $clins failed"
	ip link add "$vs" type veth peer name "$vc" || die "ip link add veth failed"
	ip link set "$vs" netns "$srvns" || die "moving $vs into $srvns failed"
	ip link set "$vc" netns "$clins" || die "moving $vc into $clins failed"
	ip -n "$srvns" addr add "$srv_ip/30" dev "$vs" || die "ip addr add failed"
	ip -n "$clins" addr add "$cli_ip/30" dev "$vc" || die "ip addr add failed"
	ip -n "$srvns" link set lo up
	ip -n "$clins" link set lo up
	ip -n "$srvns" link set "$vs" up || die "ip link set up failed"
	ip -n "$clins" link set "$vc" up || die "ip link set up failed"
	host=$srv_ip
	in_srv=(ip netns exec "$srvns")
	in_cli=(ip netns exec "$clins")
}
# net_shape RATE: tbf at RATE on both ends, so that both directions are
# shaped. Burst: the bytes the rate brings in one timer tick at HZ=250 (the
# lowest common HZ, so enough at any HZ), at least 64 KiB so that one
# 64 KiB GSO packet passes whole; a smaller bucket caps the rate below RATE
# and a much larger one lets bursts through above it. latency 20ms bounds
# the queue (limit = RATE * 20ms + burst).
net_shape() {
	local bits burst q
	bits=$(rate_bits "$1")
	burst=$((bits / 8 / 250))
	[ "$burst" -ge 65536 ] || burst=65536
	net_burst=$burst
	for q in "$srvns $vs" "$clins $vc"; do
		# shellcheck disable=SC2086 # "NAMESPACE DEVICE"
		set -- $q
		tc -n "$1" qdisc replace dev "$2" root tbf rate "$net_rate" burst "$burst" latency 20ms ||
			die "tc qdisc replace dev $2 root tbf rate $net_rate failed"
	done
	tc -n "$clins" qdisc show dev "$vc" >"$logs/tc.$net_rate.txt" 2>&1 || true
	# That the link works is checked by start_rsyncd: it asks the daemon
	# for its modules from the client's namespace.
}
wire() { # the bytes the client's veth end sent and received so far
	ip netns exec "$clins" cat "/sys/class/net/$vc/statistics/tx_bytes" \
		"/sys/class/net/$vc/statistics/rx_bytes" | awk '{s += $1} END {printf "%.0f", s}'
}

cleanup() {
	status=$?
	trap - EXIT
	stop_rsb
	stop_rsyncd
	if [ "$net_made" = 1 ]; then net_del "$srvns" "$clins"; fi
	if [ "$mounted" = 1 ]; then
		# The fresh file system goes whole: no need to delete file by file.
		cd /
		umount "$mnt" 2>/dev/null || { sleep 1; umount "$mnt" 2>/dev/null; } ||
			{ say "umount $mnt failed; unmounting it lazily"; umount -l "$mnt" 2>/dev/null || true; }
		losetup -j "$img" 2>/dev/null | cut -d : -f 1 | while read -r l; do losetup -d "$l" 2>/dev/null || true; done
		if [ "$keep" = 1 ]; then say "kept the image $img (BENCH_KEEP=1)"; else rm -f "$img"; fi
		rmdir "$mnt" 2>/dev/null || true
	else
		rm -rf "$trash"
		if [ "$keep" != 1 ]; then
			rm -rf "$store" "$module" "$pull_rsb" "$pull_rsync" "$cpdst" "$floordst"
			if [ "$own_work" = 1 ]; then rm -rf "$src" "$work/data.params"; fi
		fi
	fi
	if [ "$status" -ne 0 ]; then
		say "FAILED (status $status); logs in $logs"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- file system
if [ "$fsmode" != here ]; then
	# Sized from the data set: the big file in up to 9 places at once (the
	# source, the stores, the pulls, cp's copy, a temporary file beside a
	# changed one), every version of it that rsb's history keeps (by
	# default every replaced version of the last 7 days: one per push of
	# the changed file in case 4 and in case 9 at each rate), every
	# small-file copy that the runs set aside (they are only deleted at
	# exit), case 8's empty files, inodes for all of it, and 1 GiB to
	# spare. The image is sparse: only what is written takes space.
	nrates=0
	for r in ${net_rates//,/ }; do nrates=$((nrates + 1)); done
	small_sets=$((runs * (11 + 4 * nrates) + 10))
	inodes=$((small_sets * (small_n + 200) + 100000))
	if want 8; then inodes=$((inodes + wide_n * (1 + 3 * runs) + 100)); fi
	img_mb=$((big_mb * (9 + (runs + 2) * (1 + nrates)) + small_sets * small_n * 12 / 1024 + inodes / 4096 + 1024))
	rm -f "$img"
	mkdir -p "$mnt"
	truncate -s "${img_mb}M" "$img" || die "truncate $img failed"
	if [ "$fsmode" = xfs ]; then
		say "making a fresh ${img_mb} MiB XFS image with reflink, loop-mounted on $mnt"
		mkfs.xfs -q -f -m reflink=1 "$img" >&2 || die "mkfs.xfs $img failed"
		mkfs_desc="mkfs.xfs -m reflink=1"
	else
		say "making a fresh ${img_mb} MiB ext4 image with $inodes inodes, loop-mounted on $mnt"
		mkfs.ext4 -q -F -N "$inodes" -E lazy_itable_init=0,lazy_journal_init=0 "$img" >&2 ||
			die "mkfs.ext4 $img failed"
		mkfs_desc="mkfs.ext4 -N $inodes -E lazy_itable_init=0,lazy_journal_init=0"
	fi
	mount -o loop "$img" "$mnt" || die "mount -o loop $img failed"
	mounted=1
fi
rm -rf "$store" "$module" "$pull_rsb" "$pull_rsync" "$cpdst" "$floordst" "$trash"
mkdir -p "$src" "$store" "$module" "$pull_rsb" "$pull_rsync" "$cpdst" "$floordst" "$trash"

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
small_bytes=$(find "$small" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}')
small_count=$(find "$small" -type f | wc -l)
small_dirs=$(find "$small" -mindepth 1 -type d | wc -l)

# ---------------------------------------------------------------- servers
start_rsb() { # NAME [OPTION...]: a fresh rsb-server on $host, port picked by the system
	local log=$logs/rsb-server.$1${net_rate:+.$net_rate}.log tries=0
	shift
	# ip netns exec execs the server: $! is the server's own PID.
	# shellcheck disable=SC2086 # RSB_SERVER_ARGS is a list of words
	"${in_srv[@]}" "$server" -a "$host" -p 0 -d "$store" -q $server_args "$@" 2>"$log" &
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

start_rsyncd() { # a fresh rsync daemon on $host under GNU time
	local attempt=0 port tries
	while [ "$attempt" -lt 20 ]; do
		attempt=$((attempt + 1))
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		[ "$port" != "$rsb_port" ] || continue
		# Someone answers on that port: take another one. (In case 9's
		# fresh namespace only rsb-server listens.)
		if [ -z "$net_rate" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
		rm -f "$rsyncd_pidf"
		"${in_srv[@]}" "$gnutime" -f %M -o "$logs/rsyncd.rss" \
			rsync --daemon --no-detach --address="$host" --port="$port" \
			--config="$rsyncd_conf" >>"$logs/rsyncd.out" 2>&1 &
		rsyncd_time_pid=$!
		rsyncd_pid=
		tries=0
		while [ "$tries" -lt 100 ]; do
			if ! kill -0 "$rsyncd_time_pid" 2>/dev/null; then break; fi
			if [ -s "$rsyncd_pidf" ] &&
				"${in_cli[@]}" rsync "rsync://$host:$port/" 2>/dev/null | grep -q '^bench'; then
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
	if ! "${tpre[@]}" "$gnutime" -f %M -o "$rssf" "$@" >"$log" 2>&1; then
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

# (mawk's printf %d stops at 2^31 - 1: sums and medians of bytes use %.0f.)
median() { # microsecond values -> their median
	printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1}
		END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
max() { printf '%s\n' "$@" | sort -n | tail -n 1; }

# ---------------------------------------------------------------- one run of each tool
run_rsb() { # KIND
	local log=$logs/rsb-client.$1${net_rate:+.$net_rate}.log
	local -a tpre=("${in_cli[@]}")
	case $1 in
	big_push)
		rm -f "$ns$big"
		timed "$log" "$client" -q -n bench "$host" "$rsb_port" backup "$big" ;;
	big_pull)
		rm -f "$pull_rsb/big.bin"
		timed "$log" "$client" -q -n bench "$host" "$rsb_port" restore "$big" "$pull_rsb" ;;
	small_push)
		set_aside "$ns$small"
		timed "$log" "$client" -q -n bench "$host" "$rsb_port" backup "$small" ;;
	small_pull)
		set_aside "$pull_rsb/small"
		timed "$log" "$client" -q -n bench "$host" "$rsb_port" restore "$small" "$pull_rsb" ;;
	small_repush) # not -q: the summary line says how many bytes went
		timed "$log" "$client" -n bench "$host" "$rsb_port" backup "$small" ;;
	big_delta)
		timed "$log" "$client" -n bench "$host" "$rsb_port" backup "$big" ;;
	esac
}
run_rsync() { # KIND
	local log=$logs/rsync.$1${net_rate:+.$net_rate}.log url=rsync://$host:$rsync_port/bench
	local -a tpre=("${in_cli[@]}")
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
	# shellcheck disable=SC2086 # the lists are split into their values
	paste -d ' ' <(printf '%s\n' $1) <(printf '%s\n' $2) | awk '{print $1 / $2}' | sort -g |
		awk '{a[NR] = $1} END {printf "%.2fx", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
secs() { awk -v l="$*" 'BEGIN {n = split(l, a, " "); for (i = 1; i <= n; i++) printf "%s%.3f", (i > 1 ? " " : ""), a[i] / 1e6}'; }
mbit() { awk -v b="$1" -v us="$2" 'BEGIN {printf "%.0f", b * 8 / us}'; } # BYTES MICROSECONDS -> Mbit/s
fmt_mib() { if [ -n "$1" ]; then awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; else printf 'n/a'; fi; }

rows=$logs/rows.txt
rows_net=$logs/rows-net.txt
floor_rows=$logs/floor.txt
: >"$rows_net"
: >"$floor_rows"
notes=$logs/notes.txt
runlist=$logs/runs.txt
: >"$rows"
: >"$notes"
: >"$runlist"
cp_push_big=
cp_push_small=

# row KIND LABEL BYTES: one line of the table, from RUNS alternating rounds
# on fresh servers; in case 9 (net_rate set) one line of its table, with
# the bytes on the wire.
row() {
	local kind=$1 label=$2 bytes=$3 r rsb_t=() rs_t=() rs_ts=() cp_t=() cp_ts=() \
		rsb_kb=() rs_kb=() order tool cpcol m_rsb m_rs m_rss rsb_srv rs_srv line \
		rsb_w=() rs_w=() w0 m_rsbw m_rsw
	start_servers "$kind"
	for r in $(seq 1 "$runs"); do
		[ "$kind" != big_delta ] || change_big
		# Alternate who goes first, so that neither always finds the
		# other's leftovers (cache, dirty pages, journal).
		if [ $((r % 2)) -eq 1 ]; then order="rsb rsync"; else order="rsync rsb"; fi
		for tool in $order; do
			if [ -n "$net_rate" ]; then w0=$(wire); fi
			if [ "$tool" = rsb ]; then
				run_rsb "$kind"
				rsb_t+=("$T")
				rsb_kb+=("$KB")
				if [ -n "$net_rate" ]; then rsb_w+=($(($(wire) - w0))); fi
			else
				run_rsync "$kind"
				rs_t+=("$T")
				rs_ts+=("$TS")
				rs_kb+=("$KB")
				if [ -n "$net_rate" ]; then rs_w+=($(($(wire) - w0))); fi
			fi
		done
		line="rsb $(fmt_s "${rsb_t[-1]}"), rsync $(fmt_s "${rs_t[-1]}") (+sync $(fmt_s "${rs_ts[-1]}"))"
		if [ -n "$net_rate" ]; then
			line="$line, wire rsb $(fmt_mib $((rsb_w[-1] / 1024))) MiB, rsync $(fmt_mib $((rs_w[-1] / 1024))) MiB"
		fi
		case $net_rate/$kind in /big_push | /small_push)
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
	if [ -n "$net_rate" ]; then
		m_rsbw=$(median "${rsb_w[@]}")
		m_rsw=$(median "${rs_w[@]}")
		printf '%-38s | %-20s | %-20s | %-20s | %6s %6s | %7s / %-7s | %6s / %-6s | %5s / %-5s | %5s / %-5s\n' \
			"$label" "$(fmt_rate "$m_rsb" "$bytes")" "$(fmt_rate "$m_rs" "$bytes")" \
			"$(fmt_rate "$m_rss" "$bytes")" "$(ratio "${rs_t[*]}" "${rsb_t[*]}")" \
			"$(ratio "${rs_ts[*]}" "${rsb_t[*]}")" \
			"$(fmt_mib $((m_rsbw / 1024)))" "$(fmt_mib $((m_rsw / 1024)))" \
			"$(mbit "$m_rsbw" "$m_rsb")" "$(mbit "$m_rsw" "$m_rs")" \
			"$(fmt_mib "$rsb_srv")" "$(fmt_mib "$(max "${rsb_kb[@]}")")" \
			"$(fmt_mib "$rs_srv")" "$(fmt_mib "$(max "${rs_kb[@]}")")" >>"$rows_net"
		{
			echo "$label:"
			echo "    rsb        $(secs "${rsb_t[@]}")"
			echo "    rsync      $(secs "${rs_t[@]}")"
			echo "    rsync+sync $(secs "${rs_ts[@]}")"
			echo "    wire bytes rsb   ${rsb_w[*]}"
			echo "    wire bytes rsync ${rs_w[*]}"
		} >>"$runlist"
		# Shaping held? Nothing may cross faster than the rate (5% slack
		# for the clock and the bucket's first burst).
		local lim
		lim=$(rate_bits "$net_rate")
		for r in $(seq 0 $((runs - 1))); do
			if [ $((rsb_w[r] * 8 * 100 / (rsb_t[r] > 0 ? rsb_t[r] : 1))) -gt $((lim * 105 / 1000000)) ] ||
				[ $((rs_w[r] * 8 * 100 / (rs_t[r] > 0 ? rs_t[r] : 1))) -gt $((lim * 105 / 1000000)) ]; then
				echo "WARNING: $label, run $((r + 1)): more than $net_rate crossed the link; the shaping did not hold" >>"$notes"
			fi
		done
		return 0
	fi
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
		sb=$(sed -n 's/.* \([0-9][0-9]*\) files\? sent, \([0-9][0-9]*\) \(skipped\|unchanged\), .* \([0-9][0-9]*\) bytes\(, [0-9][0-9]* reused\)\? in .*/\4 bytes of file content\5 (\1 sent, \2 unchanged)/p' \
			"$logs/rsb-client.$kind.log" | tail -n 1)
		rb=$(sed -n 's/^Total bytes sent: *\([0-9,.]*\).*/\1/p' "$logs/rsync.$kind.log" | tr -d ',.' | tail -n 1)
		echo "$label, sent in the last run: rsb ${sb:-n/a}; rsync ${rb:-n/a} bytes (\"Total bytes sent\" of --stats, protocol included)" >>"$notes"
		;;
	esac
}

# The creation floor of the small files, beside cp -a: per round, in an
# order that rotates, cp -a (then sync), and the floor bench with 1 and 2
# threads and one syncfs at the end; every run into a fresh destination.
# The floor's own clock (from its first mkdir) is used, not the time of the
# whole command, which includes reading the source into memory first.
floor_case() {
	local r k order fl_c=() fl_cs=() f1=() f1s=() f2=() f2s=() m
	say "case 2: the creation floor of the $small_label"
	for r in $(seq 1 "$runs"); do
		case $((r % 3)) in
		1) order="cp f1 f2" ;; 2) order="f1 f2 cp" ;; *) order="f2 cp f1" ;;
		esac
		for k in $order; do
			case $k in
			cp)
				set_aside "$cpdst/small"
				timed "$logs/floor.cp.log" cp -a "$small" "$cpdst/"
				fl_c+=("$T")
				fl_cs+=("$TS") ;;
			f1 | f2)
				set_aside "$floordst/small"
				timed "$logs/floor.$k.log" "$floor" --src "$small" --dst "$floordst/small" \
					--threads "${k#f}" --sync syncfs
				m=$(tail -n 1 "$logs/floor.$k.log")
				case $m in *create_us=*total_us=*) ;; *) die "the floor bench printed '$m'" ;; esac
				m=${m#*create_us=}
				if [ "$k" = f1 ]; then f1+=("${m%% *}"); f1s+=("${m##*total_us=}"); else f2+=("${m%% *}"); f2s+=("${m##*total_us=}"); fi ;;
			esac
		done
		say "floor: run $r/$runs: cp -a $(fmt_s "${fl_c[-1]}") (+sync $(fmt_s "${fl_cs[-1]}")), floor 1 thread $(fmt_s "${f1[-1]}") (+syncfs $(fmt_s "${f1s[-1]}")), 2 threads $(fmt_s "${f2[-1]}") (+syncfs $(fmt_s "${f2s[-1]}"))"
	done
	diff -r "$small" "$floordst/small" >/dev/null || die "the floor's copy differs from $small"
	{
		printf '%-32s | %-20s | %-20s\n' "2 $small_label, local floor" "no sync, MiB/s" "+ sync / + syncfs"
		printf '%-32s | %-20s | %-20s\n' "  cp -a" "$(fmt_rate "$(median "${fl_c[@]}")" "$small_bytes")" \
			"$(fmt_rate "$(median "${fl_cs[@]}")" "$small_bytes")"
		printf '%-32s | %-20s | %-20s\n' "  floor, 1 thread" "$(fmt_rate "$(median "${f1[@]}")" "$small_bytes")" \
			"$(fmt_rate "$(median "${f1s[@]}")" "$small_bytes")"
		printf '%-32s | %-20s | %-20s\n' "  floor, 2 threads" "$(fmt_rate "$(median "${f2[@]}")" "$small_bytes")" \
			"$(fmt_rate "$(median "${f2s[@]}")" "$small_bytes")"
		echo "  (floor: open(O_CREAT|O_EXCL|O_WRONLY), write, close per file and mkdir per directory, from memory;"
		echo "  + syncfs: one syncfs at the end, the fair floor for rsb, which is durable when it reports;"
		echo "  cp -a + sync: timed until a sync after cp returned. Medians of per-run figures, not ratios.)"
	} >>"$floor_rows"
	{
		echo "2 floor:"
		echo "    cp -a            $(secs "${fl_c[@]}")"
		echo "    cp -a + sync     $(secs "${fl_cs[@]}")"
		echo "    floor 1 thread   $(secs "${f1[@]}")"
		echo "    + syncfs         $(secs "${f1s[@]}")"
		echo "    floor 2 threads  $(secs "${f2[@]}")"
		echo "    + syncfs         $(secs "${f2s[@]}")"
	} >>"$runlist"
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
	floor_case
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
		timed "$logs/c8.push.log" "$client" -q -n bench "$host" "$rsb_port" backup "$wide"
		c8_push+=("$T")
		# shellcheck disable=SC2016 # sh expands them
		timed "$logs/c8.cp.log" sh -c 'cp -a "$1" "$2/" && sync' sh "$wide" "$cpdst"
		c8_cp+=("$T")
		timed "$logs/c8.pull.log" "$client" -q -n bench "$host" "$rsb_port" restore "$wide" "$pull_rsb"
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

# Case 9: across a shaped link, at each rate of BENCH_NET: the servers in
# one namespace, the clients in another. Loopback cases ran before; case 6
# (loopback again) runs after, with host and the prefixes put back.
net_notes=
if [ -n "$net_rates" ]; then
	net_stale
	net_up
	for net_rate in ${net_rates//,/ }; do
		net_shape "$net_rate"
		say "case 9: across a veth pair shaped to $net_rate (tbf, burst $net_burst bytes, latency 20ms, both ends), $srv_ip <- $cli_ip"
		row big_push "9 $net_rate: 1 $big_label, push" "$big_bytes"
		row big_pull "9 $net_rate: 1 $big_label, pull" "$big_bytes"
		prime big_delta
		row big_delta "9 $net_rate: $big_label, 1 MiB changed" "$big_bytes"
		row small_push "9 $net_rate: $small_label, push" "$small_bytes"
		row small_pull "9 $net_rate: $small_label, pull" "$small_bytes"
		net_notes="$net_notes$net_rate: tbf rate $net_rate burst $net_burst latency 20ms; "
	done
	net_rate=
	net_del "$srvns" "$clins"
	net_made=0
	host=127.0.0.1
	in_srv=()
	in_cli=()
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
if [ "$fsmode" != here ]; then
	fs_desc="a fresh $fstype made for this run (BENCH_FS=$fsmode): $mkfs_desc on a ${img_mb} MiB sparse image in $(df -T "$base" | awk 'NR == 2 {print $2}') on $(df "$base" | awk 'NR == 2 {print $1}'), mount -o loop ($(findmnt -n -o OPTIONS -T "$work" 2>/dev/null || echo 'options unknown'))"
else
	fs_desc="$work (BENCH_FS=here: $fstype, $(findmnt -n -o OPTIONS -T "$work" 2>/dev/null || echo 'mount options unknown'))"
fi
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
	if [ -s "$floor_rows" ]; then
		cat "$floor_rows"
		echo
	fi
	if [ -s "$rows_net" ]; then
		echo "case 9: across a veth pair between two network namespaces, shaped by tbf on both ends"
		echo "(${net_notes%; }); rsb-server and rsync's daemon in one namespace, the clients in the other;"
		echo "$runs_word per case"
		echo
		printf '%-38s | %-20s | %-20s | %-20s | %-13s | %-17s | %-15s | %-13s | %-13s\n' \
			"case" "rsb" "rsync -a" "rsync -a + sync" "speed rsb/" "wire MiB" "wire Mbit/s" "peak RSS MiB" "peak RSS MiB"
		printf '%-38s | %-20s | %-20s | %-20s | %-13s | %-17s | %-15s | %-13s | %-13s\n' \
			"" "s, MiB/s" "s, MiB/s" "s, MiB/s" "rsync r+sync" "rsb / rsync" "rsb / rsync" "rsb srv / cli" "rsync srv/cli"
		printf '%187s\n' '' | tr ' ' -
		cat "$rows_net"
		echo
	fi
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
	echo "  the same figure for push and pull. The local floor of case 2 (its own rounds) adds the"
	echo "  floor bench: the same files created from memory, the least any tool can do."
	echo "- case 9: wire MiB = the bytes the client's veth end sent plus received during the run"
	echo "  (/sys/class/net/DEV/statistics: payload, headers and acknowledgements of both directions,"
	echo "  the same meter for both tools), median over the runs; wire Mbit/s = those bytes * 8 /"
	echo "  the median time, which must stay under the shaped rate (a WARNING note says when a run"
	echo "  went over). Clients run under ip netns exec, which adds a few ms to every run of both."
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
	echo "  file system: $fs_desc"
	echo "  load average at the start: $load_start; at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
	echo "  rsync: $(rsync --version | head -n 1)"
	echo "  rsb-server options: ${server_args:-none} (RSB_SERVER_ARGS); cases run: $cases"
	echo "  rsb: $("$server" -V) (release build, $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$repo" && git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/'))"
	echo "  date: $(date -u '+%Y-%m-%d %H:%M UTC')"
} >"$report"
cat "$report"
say "table written to $report; logs in $logs"

#!/usr/bin/env bash
# A download from rsb's web interface against nginx serving the same store
# directory, in one run, as ratios; plain HTTP and TLS.
#
# usage: scripts/web-bench.sh [-s SIZE] [-r RUNS] [--no-loop]
#   -s, --size SIZE  size of the file downloaded: MiB, or with a suffix M or G
#                    (default 1G)
#   -r, --runs RUNS  timed downloads per server and case (default 5)
#   --no-loop        a temporary directory on the current disk instead of a
#                    fresh loop-mounted ext4 (which needs root)
#
# Makes a fresh ext4 image (about 2.5 times SIZE), loop-mounts it, makes one
# file of random contents on it, starts rsb-server there with its web
# interface (--http) on 127.0.0.1 and backs the file up with rsb-client under
# the name "bench" (release binaries from target/release, built when absent).
# nginx (its own configuration in the work directory: daemon off,
# worker_processes 1 as rsb is one thread, sendfile on, tcp_nopush on,
# logs and pid file in the work directory) serves the same store directory
# at the same URL, /files/bench/<absolute path>, so both send the same bytes
# of the same file. Two cases:
#   plain  rsb --http against nginx's plain listener;
#   tls    a new rsb-server with --tls-cert/--tls-key against nginx's `ssl`
#          listener, one self-signed certificate (openssl) for both; curl -k.
# In each case both servers get one untimed warm-up download whose sha256
# must equal the source's, then RUNS rounds with rsb and nginx alternating
# (rsb first in odd rounds): `curl -s -o /dev/null -w ...`, --max-time 120;
# every download must be SIZE bytes with status 200. The page cache is never
# dropped: after the warm-ups both serve from it. CPU time (utime+stime from
# /proc/PID/stat) of rsb-server and of the nginx worker is summed over the
# timed downloads and given per GiB sent.
# The table goes to standard output and to WORKDIR/web-bench.txt; progress
# goes to standard error. The servers, the mount, the loop device and the
# image are removed at exit, on error or interrupt too; the work directory
# keeps the report and the logs.
#
# environment:
#   WEB_BENCH_DIR  work directory (default: a new `mktemp -d`)
#
# exit status: 0 done, 1 a step failed, 2 bad usage or a missing tool.
set -eu
export LC_ALL=C

prog=web-bench.sh
repo=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)

die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }
usage() {
	sed -n '5,10s/^# \{0,1\}//p' "$0" >&2
	exit 2
}
usage_die() { echo "$prog: $*" >&2; exit 2; }
[ -n "${EPOCHREALTIME:-}" ] || usage_die "needs bash 5 or later (EPOCHREALTIME)"

# ---------------------------------------------------------------- options
size_arg=1G
runs=5
loop=1
while [ $# -gt 0 ]; do
	case $1 in
	-s | --size) [ $# -ge 2 ] || usage; size_arg=$2; shift 2 ;;
	--size=*) size_arg=${1#*=}; shift ;;
	-r | --runs) [ $# -ge 2 ] || usage; runs=$2; shift 2 ;;
	--runs=*) runs=${1#*=}; shift ;;
	--no-loop) loop=0; shift ;;
	-h | --help) usage ;;
	*) echo "$prog: unknown argument '$1'" >&2; usage ;;
	esac
done
case $size_arg in
[1-9]*[gG] | [1-9][gG]) n=${size_arg%[gG]}; mult=1024 ;;
[1-9]*[mM] | [1-9][mM]) n=${size_arg%[mM]}; mult=1 ;;
*) n=$size_arg; mult=1 ;;
esac
case $n in '' | *[!0-9]* | 0*) usage_die "SIZE must be a positive number of MiB, or end in M or G, not '$size_arg'" ;; esac
size_mb=$((n * mult))
case $runs in '' | *[!0-9]* | 0*) usage_die "RUNS must be a positive integer, not '$runs'" ;; esac
[ "$size_mb" -le 65536 ] || usage_die "SIZE: at most 64G"
size=$((size_mb * 1048576))

is_root=0
[ "$(id -u)" -ne 0 ] || is_root=1
[ "$loop" = 0 ] || [ "$is_root" = 1 ] || usage_die "a loop-mounted ext4 needs root; run as root or with --no-loop"

# ---------------------------------------------------------------- tools
missing=
pkgs=
for t in nginx:nginx curl:curl openssl:openssl sha256sum:coreutils; do
	command -v "${t%%:*}" >/dev/null 2>&1 || { missing="$missing ${t%%:*}"; pkgs="$pkgs ${t#*:}"; }
done
if [ "$loop" = 1 ]; then
	for t in mkfs.ext4:e2fsprogs losetup:mount mount:mount umount:mount; do
		command -v "${t%%:*}" >/dev/null 2>&1 || { missing="$missing ${t%%:*}"; pkgs="$pkgs ${t#*:}"; }
	done
fi
if [ -n "$missing" ]; then
	echo "$prog: missing:$missing; install them with" >&2
	echo "    sudo apt-get update && sudo apt-get install -y$pkgs" >&2
	echo "(or your system's equivalent)" >&2
	[ "$loop" = 0 ] || echo "(mkfs.ext4, losetup, mount: only for the loop mount; --no-loop does without)" >&2
	exit 2
fi
nginx_bin=$(command -v nginx)

# ---------------------------------------------------------------- state and cleanup
if [ -n "${WEB_BENCH_DIR:-}" ]; then
	mkdir -p "$WEB_BENCH_DIR"
	work=$(cd "$WEB_BENCH_DIR" && pwd)
else
	work=$(mktemp -d /tmp/rsb-web-bench.XXXXXX)
fi
case $work in *[!A-Za-z0-9/._-]*) usage_die "the work directory '$work' must be a plain path (it goes into URLs)" ;; esac
logs=$work/logs
report=$work/web-bench.txt
img=$work/fs.img
mnt=$work/mnt
ngx=$work/nginx
rm -rf "$logs" "$ngx" "$work/tls"
mkdir -p "$logs" "$ngx" "$work/tls"
loopdev=
mounted=0
rsb_pid=
ngx_pid=

stop_rsb() {
	[ -n "$rsb_pid" ] || return 0
	kill "$rsb_pid" 2>/dev/null || true
	wait "$rsb_pid" 2>/dev/null || true
	rsb_pid=
}
stop_nginx() {
	[ -n "$ngx_pid" ] || return 0
	kill -TERM "$ngx_pid" 2>/dev/null || true
	local i=0
	while kill -0 "$ngx_pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	kill -KILL "$ngx_pid" 2>/dev/null || true
	wait "$ngx_pid" 2>/dev/null || true
	ngx_pid=
}
cleanup() {
	status=$?
	trap - EXIT INT TERM
	stop_rsb
	stop_nginx
	if [ "$mounted" = 1 ]; then
		umount "$mnt" 2>/dev/null || { sleep 1; umount -l "$mnt" 2>/dev/null || true; }
	fi
	if [ -n "$loopdev" ]; then losetup -d "$loopdev" 2>/dev/null || true; fi
	rm -f "$img"
	rm -rf "$mnt" "$work/tls"
	if [ "$status" -ne 0 ]; then say "FAILED (status $status); logs in $logs"; fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- build
server=$repo/target/release/rsb-server
client=$repo/target/release/rsb-client
if [ ! -x "$server" ] || [ ! -x "$client" ]; then
	command -v cargo >/dev/null 2>&1 || usage_die "no release binaries in $repo/target/release and no cargo to build them"
	say "building the release binaries"
	(cd "$repo" && cargo build --release --bin rsb-server --bin rsb-client) >&2 || die "cargo build --release failed"
fi

# ---------------------------------------------------------------- file system
if [ "$loop" = 1 ]; then
	img_mb=$((size_mb * 5 / 2 + 256))
	say "making a $img_mb MiB ext4 image, loop-mounted on $mnt"
	rm -f "$img"
	truncate -s "${img_mb}M" "$img"
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img" >&2 || die "mkfs.ext4 failed"
	loopdev=$(losetup --find --show "$img") || die "losetup failed"
	mkdir -p "$mnt"
	mount "$loopdev" "$mnt" || die "mount $loopdev failed"
	mounted=1
	fs_desc="fresh loop-mounted ext4 ($(findmnt -n -o OPTIONS -T "$mnt" 2>/dev/null || echo '?')), image on $(df -T "$work" | awk 'NR == 2 {print $2 " " $1}')"
else
	rm -rf "$mnt"
	mkdir -p "$mnt"
	fs_desc="a directory on $(df -T "$mnt" | awk 'NR == 2 {print $2 " " $1}') (--no-loop)"
fi
store=$mnt/store
src=$mnt/src/big.bin
mkdir -p "$mnt/src"
say "making $size_mb MiB of random data in $src"
dd if=/dev/urandom of="$src" bs=1M count="$size_mb" iflag=fullblock status=none || die "dd failed"
src_sha=$(sha256sum "$src" | cut -d ' ' -f 1)
url_path=/files/bench$src

# ---------------------------------------------------------------- certificate
cert=$work/tls/cert.pem
key=$work/tls/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$key" -out "$cert" -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 >"$logs/openssl.log" 2>&1 || die "openssl req failed; see $logs/openssl.log"

# ---------------------------------------------------------------- servers
# start_rsb LOGNAME [OPTION...]: rsb-server on the store, both ports picked
# by the system; sets rsb_pid, rsb_port, web_port.
start_rsb() {
	local log=$logs/rsb-server.$1.log tries=0
	shift
	"$server" -a 127.0.0.1 -p 0 -d "$store" -q --http 127.0.0.1:0 "$@" 2>"$log" &
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
	web_port=$(sed -n 's|.*web interface on https\{0,1\}://[^ ]*:\([0-9][0-9]*\)/.*|\1|p' "$log" | head -n 1)
	[ -n "$web_port" ] || die "rsb-server did not report its web port; see $log"
}

# nginx: two listeners on free ports (tried at random until one pair works)
write_nginx_conf() { # PLAIN_PORT TLS_PORT
	{
		echo "daemon off;"
		echo "worker_processes 1;"
		# As root the workers would switch to nobody, who cannot enter the
		# work directory (mode 0700) nor read the store: stay root.
		[ "$is_root" = 0 ] || echo "user root;"
		echo "pid $ngx/nginx.pid;"
		echo "error_log $logs/nginx.error.log;"
		echo "events { worker_connections 64; }"
		echo "http {"
		echo "    access_log $logs/nginx.access.log;"
		echo "    client_body_temp_path $ngx/body;"
		echo "    proxy_temp_path $ngx/proxy;"
		echo "    fastcgi_temp_path $ngx/fastcgi;"
		echo "    uwsgi_temp_path $ngx/uwsgi;"
		echo "    scgi_temp_path $ngx/scgi;"
		echo "    default_type application/octet-stream;"
		echo "    sendfile on;"
		echo "    tcp_nopush on;"
		echo "    server {"
		echo "        listen 127.0.0.1:$1;"
		echo "        location /files/ { alias $store/; }"
		echo "    }"
		echo "    server {"
		echo "        listen 127.0.0.1:$2 ssl;"
		# nginx 1.22's default leaves TLS 1.3 out; rustls prefers it.
		echo "        ssl_protocols TLSv1.2 TLSv1.3;"
		echo "        ssl_certificate $cert;"
		echo "        ssl_certificate_key $key;"
		echo "        location /files/ { alias $store/; }"
		echo "    }"
		echo "}"
	} >"$ngx/nginx.conf"
}
free_port() { # a random port in 20000-59999 that nobody answers on
	local p i=0
	while [ "$i" -lt 50 ]; do
		i=$((i + 1))
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	return 1
}
start_nginx() {
	local attempt=0 tries
	while [ "$attempt" -lt 10 ]; do
		attempt=$((attempt + 1))
		ngx_port=$(free_port) || die "no free port"
		ngx_tls_port=$(free_port) || die "no free port"
		[ "$ngx_port" != "$ngx_tls_port" ] || continue
		write_nginx_conf "$ngx_port" "$ngx_tls_port"
		"$nginx_bin" -t -q -p "$ngx" -c "$ngx/nginx.conf" >>"$logs/nginx.out" 2>&1 ||
			die "nginx -t rejected $ngx/nginx.conf; see $logs/nginx.out"
		"$nginx_bin" -p "$ngx" -c "$ngx/nginx.conf" >>"$logs/nginx.out" 2>&1 &
		ngx_pid=$!
		tries=0
		while [ "$tries" -lt 100 ] && kill -0 "$ngx_pid" 2>/dev/null; do
			# /files/ is the store's directory: 403 (no listings) once it listens.
			if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$ngx_port/files/")" = 403 ] &&
				[ "$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 "https://127.0.0.1:$ngx_tls_port/files/")" = 403 ]; then
				ngx_worker=$(cat "/proc/$ngx_pid/task/$ngx_pid/children" 2>/dev/null || true)
				ngx_worker=${ngx_worker%% *}
				[ -n "$ngx_worker" ] || die "no nginx worker under its master $ngx_pid"
				return 0
			fi
			tries=$((tries + 1))
			sleep 0.1
		done
		stop_nginx
	done
	die "could not start nginx; see $logs/nginx.out and $logs/nginx.error.log"
}

# ---------------------------------------------------------------- helpers
cpu_ticks() { # PID: utime + stime in clock ticks
	awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)
median() { # values -> their median
	printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1}
		END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%d\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
# ratio "A1 A2 ..." "B1 B2 ...": the median of the per-round ratios Ai / Bi.
ratio() {
	paste -d ' ' <(printf '%s\n' $1) <(printf '%s\n' $2) | awk '{print $1 / $2}' | sort -g |
		awk '{a[NR] = $1} END {printf "%.2f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
fmt_s() { awk -v us="$1" 'BEGIN {printf "%.3f", us / 1e6}'; }
fmt_rate() { awk -v us="$1" -v b="$size" 'BEGIN {printf "%.1f", b / 1048576 / (us / 1e6)}'; }
secs() { awk -v l="$*" 'BEGIN {n = split(l, a, " "); for (i = 1; i <= n; i++) printf "%s%.3f", (i > 1 ? " " : ""), a[i] / 1e6}'; }
cpu_per_gib() { # TICKS [TICKS_PER_S]: CPU seconds per GiB over the runs' bytes
	awk -v t="$1" -v hz="${2:-$hz}" -v b="$((size * runs))" 'BEGIN {printf "%.2f", t / hz / (b / 1073741824)}'
}

# download URL CURLOPT...: one timed download to /dev/null; sets T (us)
# and CT, curl's own CPU time (user + sys, ms).
download() {
	local url=$1 out code got t st=0 TIMEFORMAT='%3U %3S'
	shift
	{ time curl -s "$@" --max-time 120 -o /dev/null -w '%{http_code} %{size_download} %{time_total}' \
		"$url" >"$logs/curl.out"; } 2>"$logs/curl.time" || st=$?
	out=$(cat "$logs/curl.out")
	[ "$st" -eq 0 ] || die "curl $* $url failed (status $st, got '$out')"
	read -r code got t <<<"$out"
	[ "$code" = 200 ] || die "$url: HTTP status $code"
	[ "$got" = "$size" ] || die "$url: $got bytes downloaded, not $size"
	T=$(awk -v t="$t" 'BEGIN {printf "%d", t * 1e6}')
	CT=$(awk '{printf "%d", ($1 + $2) * 1000}' "$logs/curl.time")
}
# warm URL LABEL CURLOPT...: the untimed warm-up, which checks the sha256
warm() {
	local url=$1 label=$2 sum
	shift 2
	sum=$(curl -sf "$@" --max-time 120 "$url" | sha256sum | cut -d ' ' -f 1)
	[ "$sum" = "$src_sha" ] || die "$label: the download's sha256 $sum is not the source's $src_sha"
	say "$label: warm-up download, sha256 matches the source"
}
# cipher URL CURLOPT...: what curl negotiated
cipher() {
	curl -sv "$@" --max-time 30 -r 0-0 -o /dev/null "$1" 2>&1 |
		sed -n 's/^\* SSL connection using \(.*\)$/\1/p' | head -n 1
}

rows=$logs/rows.txt
runlist=$logs/runs.txt
notes=$logs/notes.txt
: >"$rows"
: >"$runlist"
: >"$notes"

# bench CASE RSB_URL NGINX_URL CURLOPT...: warm-ups, then RUNS alternating
# rounds; one row of the table.
bench() {
	local label=$1 rurl=$2 nurl=$3 r order who rsb_t=() ngx_t=() c0 c1 rcpu=0 ncpu=0 m_r m_n \
		rcurl=0 ncurl=0
	shift 3
	warm "$rurl" "$label, rsb" "$@"
	warm "$nurl" "$label, nginx" "$@"
	for r in $(seq 1 "$runs"); do
		if [ $((r % 2)) -eq 1 ]; then order="rsb nginx"; else order="nginx rsb"; fi
		for who in $order; do
			if [ "$who" = rsb ]; then
				c0=$(cpu_ticks "$rsb_pid")
				download "$rurl" "$@"
				c1=$(cpu_ticks "$rsb_pid")
				rcpu=$((rcpu + c1 - c0))
				rcurl=$((rcurl + CT))
				rsb_t+=("$T")
			else
				c0=$(cpu_ticks "$ngx_worker")
				download "$nurl" "$@"
				c1=$(cpu_ticks "$ngx_worker")
				ncpu=$((ncpu + c1 - c0))
				ncurl=$((ncurl + CT))
				ngx_t+=("$T")
			fi
		done
		say "$label: run $r/$runs: rsb $(fmt_s "${rsb_t[-1]}") s, nginx $(fmt_s "${ngx_t[-1]}") s"
	done
	m_r=$(median "${rsb_t[@]}")
	m_n=$(median "${ngx_t[@]}")
	printf '%-6s | %12s | %14s | %10s | %11s | %14s | %13s | %15s\n' "$label" \
		"$(fmt_s "$m_r")" "$(fmt_s "$m_n")" "$(fmt_rate "$m_r")" "$(fmt_rate "$m_n")" \
		"$(ratio "${ngx_t[*]}" "${rsb_t[*]}")" "$(cpu_per_gib "$rcpu")" "$(cpu_per_gib "$ncpu")" >>"$rows"
	{
		echo "$label rsb:   $(secs "${rsb_t[@]}")"
		echo "$label nginx: $(secs "${ngx_t[@]}")"
	} >>"$runlist"
	echo "$label: curl's own CPU (user+sys) per GiB received: from rsb $(cpu_per_gib "$rcurl" 1000) s, from nginx $(cpu_per_gib "$ncurl" 1000) s" >>"$notes"
}

# ---------------------------------------------------------------- the backup
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
start_rsb plain
say "backing up $src as client bench"
"$client" -q -n bench 127.0.0.1 "$rsb_port" backup "$src" >"$logs/rsb-client.log" 2>&1 ||
	die "rsb-client backup failed; see $logs/rsb-client.log"
cmp -s "$src" "$store/bench$src" || die "the stored copy $store/bench$src differs from $src"
start_nginx

# ---------------------------------------------------------------- plain
say "case plain: http://127.0.0.1:$web_port (rsb) against http://127.0.0.1:$ngx_port (nginx)"
bench plain "http://127.0.0.1:$web_port$url_path" "http://127.0.0.1:$ngx_port$url_path"
stop_rsb

# ---------------------------------------------------------------- TLS
start_rsb tls --tls-cert "$cert" --tls-key "$key"
rsb_url=https://127.0.0.1:$web_port$url_path
ngx_url=https://127.0.0.1:$ngx_tls_port$url_path
rsb_cipher=$(cipher "$rsb_url" -k)
ngx_cipher=$(cipher "$ngx_url" -k)
say "case tls: $rsb_url (rsb, ${rsb_cipher:-?}) against $ngx_url (nginx, ${ngx_cipher:-?})"
bench tls "$rsb_url" "$ngx_url" -k
stop_rsb
stop_nginx

# ---------------------------------------------------------------- report
runs_word="median of $runs run"
[ "$runs" -eq 1 ] || runs_word="${runs_word}s"
{
	echo "rsb's web interface against nginx: a $size_mb MiB file ($size bytes, random contents) downloaded"
	echo "with curl on 127.0.0.1, $runs_word per server and case, rsb and nginx alternating in each round"
	echo
	printf '%-6s | %12s | %14s | %10s | %11s | %14s | %13s | %15s\n' \
		"case" "rsb median s" "nginx median s" "rsb MiB/s" "nginx MiB/s" "ratio nginx t/" "rsb CPU s/GiB" "nginx CPU s/GiB"
	printf '%-6s | %12s | %14s | %10s | %11s | %14s | %13s | %15s\n' "" "" "" "" "" "rsb t" "" "(worker)"
	printf '%116s\n' '' | tr ' ' -
	cat "$rows"
	cat "$notes"
	echo
	echo "every run, in seconds (curl's time_total; rsb first in odd rounds, nginx in even ones):"
	cat "$runlist"
	echo
	echo "how to read it:"
	echo "- ratio: the median over the rounds of nginx's time / rsb's time in the same round;"
	echo "  above 1, rsb is faster. MiB/s: $size_mb MiB / the median time."
	echo "- both serve the same file of the same store directory: rsb at /files/bench/PATH, nginx"
	echo "  with 'location /files/ { alias STORE/; }'. Every download is checked for status 200 and"
	echo "  $size bytes; each server's untimed warm-up download per case for the source's sha256."
	echo "- page cache: never dropped; the file was just written (made, then backed up) and each"
	echo "  server's warm-up download reads it once more, so every timed run reads from the cache."
	echo "- nginx: worker_processes 1 (rsb serves from one thread), daemon off, sendfile on,"
	echo "  tcp_nopush on, its defaults otherwise (sendfile_max_chunk 2m in nginx >= 1.21.4;"
	echo "  no kTLS, so no sendfile through TLS either)$([ "$is_root" = 1 ] && echo ', user root (to read the 0700 work directory)')."
	echo "  rsb: rsb-server -q --http 127.0.0.1:0 (plain: sendfile, with the crc32c of the"
	echo "  whole file read back from the page cache as it goes; TLS: pread and rustls)."
	echo "- TLS: one self-signed P-256 certificate for both, curl -k; negotiated with rsb:"
	echo "  ${rsb_cipher:-?}; with nginx: ${ngx_cipher:-?}."
	echo "- CPU s/GiB: utime+stime of the rsb-server process and of the nginx worker (/proc/PID/stat)"
	echo "  over the $runs timed downloads, per GiB sent. curl runs on the same $(nproc) cores."
	echo
	echo "machine:"
	echo "  nproc: $(nproc)"
	echo "  cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)"
	echo "  ram: $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "  kernel: $(uname -sr)"
	echo "  file system: $fs_desc"
	echo "  load average at the start: $load_start; at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
	echo "  nginx: $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')"
	echo "  curl: $(curl --version | head -n 1)"
	echo "  rsb: $("$server" -V) (release build, $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$repo" && git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/'))"
	echo "  date: $(date -u '+%Y-%m-%d %H:%M UTC')"
} >"$report"
cat "$report"
say "table written to $report; logs in $logs"

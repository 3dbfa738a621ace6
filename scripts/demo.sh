#!/bin/sh
# The quick start: builds rsb, runs a server on 127.0.0.1 with a temporary
# store and its web interface, backs up a small sample tree, lists it,
# restores it elsewhere and checks that the copy is identical; then, when
# curl is installed, downloads a file back through the web interface.
#
# usage: scripts/demo.sh
# The store is kept in $RSB_DEMO_DIR if set, else in a new temporary
# directory, and is left in place for you to look at.
set -eu

prog=demo.sh
repo=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)

echo "$prog: building release binaries"
(cd "$repo" && cargo build --release --locked)
server=$repo/target/release/rsb-server
client=$repo/target/release/rsb-client

store=${RSB_DEMO_DIR:-$(mktemp -d)}
work=$(mktemp -d)
log=$work/server.log
server_pid=
cleanup() {
	status=$?
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [ "$status" -ne 0 ] && [ -s "$log" ]; then
		echo "$prog: FAILED; the server's log:" >&2
		cat "$log" >&2
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A sample tree: a few files, a subdirectory, an empty directory, a symlink.
src=$work/sample
mkdir -p "$src/docs" "$src/empty"
printf 'hello, rsb\n' >"$src/hello.txt"
printf 'a file with a space in its name\n' >"$src/with space.txt"
printf '#!/bin/sh\necho run\n' >"$src/run.sh"
chmod 0755 "$src/run.sh"
seq 1 20000 >"$src/docs/numbers.txt"
printf 'notes\n' >"$src/docs/notes.md"
ln -s docs/notes.md "$src/link-to-notes"

# Start the server on an ephemeral port and read the real port from the
# line it logs once at startup: "... listening on 127.0.0.1:PORT, root ...".
"$server" -a 127.0.0.1 -p 0 --http 0 -d "$store" 2>"$log" &
server_pid=$!
port=
tries=0
while [ -z "$port" ]; do
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "$prog: rsb-server exited early" >&2
		exit 1
	fi
	port=$(sed -n 's/.*listening on [^ ,]*:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
	if [ -z "$port" ]; then
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ]; then
			echo "$prog: rsb-server did not report its port within 10 s" >&2
			exit 1
		fi
		sleep 0.1
	fi
done
echo "$prog: rsb-server listening on 127.0.0.1:$port, store $store"

echo "$prog: rsb-client -n demo 127.0.0.1 $port backup $src"
"$client" -n demo 127.0.0.1 "$port" backup "$src"

echo "$prog: rsb-client -n demo 127.0.0.1 $port ls $src"
"$client" -n demo 127.0.0.1 "$port" ls "$src"

dest=$work/restored
mkdir "$dest"
echo "$prog: rsb-client -n demo 127.0.0.1 $port restore $src $dest"
"$client" -n demo 127.0.0.1 "$port" restore "$src" "$dest"

# restore works like cp -a: into an existing directory, the copy is
# DEST/basename(PATH).
diff -r "$src" "$dest/sample"
# diff compares contents only; modes and mtimes (to the nanosecond) of files
# and directories must match too.
meta() {
	(cd "$1" && find . ! -type l -printf '%p %m %T@\n' | LC_ALL=C sort)
}
if [ "$(meta "$src")" != "$(meta "$dest/sample")" ]; then
	echo "$prog: modes or mtimes differ after restore:" >&2
	meta "$src" >"$work/meta.src"
	meta "$dest/sample" >"$work/meta.restored"
	diff "$work/meta.src" "$work/meta.restored" >&2 || true
	exit 1
fi
web=$(sed -n 's/.*web interface on \(http:[^ ]*\).*/\1/p' "$log" | head -n 1)
if command -v curl >/dev/null 2>&1; then
	echo "$prog: curl ${web}files/demo$src/docs/numbers.txt"
	curl -sSf --max-time 10 -o "$work/numbers.txt" "${web}files/demo$src/docs/numbers.txt"
	cmp "$src/docs/numbers.txt" "$work/numbers.txt"
	curl -sSf --max-time 10 -o /dev/null "$web"
fi
echo "demo OK: the store is $store (the sample is under $store/demo$src)"
echo "$prog: the web interface was at $web (the server has stopped)"

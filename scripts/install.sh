#!/bin/sh
# Builds rsb in release mode and installs rsb-server, rsb-client and the
# rsb(1) manual page (with rsb-server.1 and rsb-client.1 linked to it).
#
# usage: scripts/install.sh [PREFIX]      (default PREFIX: /usr/local)
set -eu

prog=install.sh
if [ "$#" -gt 1 ]; then
	echo "usage: $0 [PREFIX]" >&2
	exit 2
fi
prefix=${1:-/usr/local}
case $prefix in
?*/) prefix=${prefix%/} ;;
esac

# The repository is the parent of this script's directory, wherever the
# script is called from.
repo=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)

bindir=$prefix/bin
man1dir=$prefix/share/man/man1

echo "$prog: building release binaries in $repo"
(cd "$repo" && cargo build --release --locked)

echo "$prog: installing rsb-server and rsb-client into $bindir"
install -d "$bindir"
install -m 0755 "$repo/target/release/rsb-server" "$bindir/rsb-server"
install -m 0755 "$repo/target/release/rsb-client" "$bindir/rsb-client"

echo "$prog: installing the manual page into $man1dir"
install -d "$man1dir"
install -m 0644 "$repo/man/rsb.1" "$man1dir/rsb.1"
ln -sf rsb.1 "$man1dir/rsb-server.1"
ln -sf rsb.1 "$man1dir/rsb-client.1"

# man finds the page only if PREFIX/share/man is in its search path; the
# index is refreshed there (mandb would litter any other directory with its
# own index and cat pages).
mandir=$prefix/share/man
in_manpath=no
if command -v manpath >/dev/null 2>&1 &&
	manpath 2>/dev/null | tr ':' '\n' | grep -qx "$mandir"; then
	in_manpath=yes
fi
if [ "$in_manpath" = yes ] && command -v mandb >/dev/null 2>&1; then
	mandb -q "$mandir" >/dev/null 2>&1 ||
		echo "$prog: warning: mandb failed; run 'mandb' if 'man rsb' finds nothing" >&2
fi

echo "$prog: done: $bindir/rsb-server, $bindir/rsb-client, $man1dir/rsb.1"
if [ "$in_manpath" = yes ]; then
	echo "$prog: read the manual with 'man rsb'"
else
	echo "$prog: $mandir is not in man's search path: read the manual with" \
		"'MANPATH=$mandir: man rsb'"
fi

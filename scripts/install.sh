#!/bin/sh
# Builds rsb in release mode and installs rsb-server, rsb-client, the
# rsb(1) manual page (with rsb-server.1 and rsb-client.1 linked to it) and
# the systemd units (rsb-server.service, rsb-client-watch@.service) with
# their commented environment files. It enables and starts nothing.
#
# The units go to PREFIX/lib/systemd/system, the place for units of
# software installed under PREFIX (/usr/local/lib/systemd/system is on
# systemd's search path, as /usr/lib/systemd/system is for packages), not
# to /etc/systemd/system: that directory is the administrator's, where
# `systemctl edit` puts the drop-ins that override these units, and it is
# outside PREFIX (an install into ~/.local could not write it). Their
# ExecStart names the binaries in PREFIX/bin.
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
unitdir=$prefix/lib/systemd/system
exampledir=$prefix/share/doc/rsb/examples
# A unit's ExecStart must be an absolute path.
case $bindir in
/*) abs_bindir=$bindir ;;
*) abs_bindir=$(pwd)/$bindir ;;
esac

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

echo "$prog: installing the systemd units into $unitdir"
install -d "$unitdir" "$exampledir"
for unit in rsb-server.service rsb-client-watch@.service; do
	sed "s|/usr/local/bin/|$abs_bindir/|" "$repo/scripts/systemd/$unit" >"$unitdir/$unit.new"
	chmod 0644 "$unitdir/$unit.new"
	mv -f "$unitdir/$unit.new" "$unitdir/$unit"
done
for env in rsb-server.env rsb-client.env; do
	install -m 0644 "$repo/scripts/systemd/$env" "$exampledir/$env"
done

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

echo "$prog: done: $bindir/rsb-server, $bindir/rsb-client, $man1dir/rsb.1, $unitdir"
if [ "$in_manpath" = yes ]; then
	echo "$prog: read the manual with 'man rsb'"
else
	echo "$prog: $mandir is not in man's search path: read the manual with" \
		"'MANPATH=$mandir: man rsb'"
fi

# The units run nothing until configured and enabled.
echo "$prog: to run the server as a service: copy $exampledir/rsb-server.env" \
	"to /etc/rsb/rsb-server.env, edit it, then 'systemctl daemon-reload' and 'systemctl enable --now rsb-server'"
echo "$prog: to watch directories: copy $exampledir/rsb-client.env to" \
	"/etc/rsb/client-NAME.env, edit it, then 'systemctl enable --now rsb-client-watch@NAME'"
on_path=no
if command -v systemd-analyze >/dev/null 2>&1 &&
	systemd-analyze unit-paths 2>/dev/null | grep -qx "$unitdir"; then
	on_path=yes
fi
if [ "$on_path" = no ]; then
	echo "$prog: $unitdir may not be on systemd's unit search path: make the" \
		"units known with 'systemctl link $unitdir/rsb-server.service'" \
		"(and the same for rsb-client-watch@.service)"
fi

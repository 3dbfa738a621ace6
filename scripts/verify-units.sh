#!/usr/bin/env bash
# Checks the systemd units as they are installed: runs scripts/install.sh
# into a temporary PREFIX, then `systemd-analyze verify` on the installed
# rsb-server.service and rsb-client-watch@.service (verified as an instance),
# with MANPATH at the installed manual so their Documentation= resolves.
# Any message counts as a failure: verify exits 0 after some warnings (an
# unknown key, say), and those must not slip through either. Run by .ci/run.
#
# usage: scripts/verify-units.sh    exit status: 0 clean, 1 not clean,
#                                   77 no systemd-analyze here
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "verify-units.sh: no systemd-analyze (Debian package systemd)" >&2
	exit 77
fi
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
scripts/install.sh "$prefix" >/dev/null
units=$prefix/lib/systemd/system
status=0
for unit in "$units"/rsb-server.service "$units"/rsb-client-watch@.service; do
	if out=$(MANPATH=$prefix/share/man systemd-analyze verify "$unit" 2>&1) && [ -z "$out" ]; then
		echo "verify-units.sh: ${unit##*/}: clean"
	else
		printf '%s\n' "verify-units.sh: ${unit##*/} is not clean:" "$out" >&2
		status=1
	fi
done
exit "$status"

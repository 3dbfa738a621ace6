#!/usr/bin/env bash
# The shape rules of src/ that a reader relies on, checked (run by .ci/run):
#   1. the pure rings (src/proto, src/server, src/client, src/store,
#      src/delta) make no system call: no std::fs, std::net, std::thread, mio,
#      nix, and no clock read (Instant::now, SystemTime::now), outside their
#      #[cfg(test)] modules;
#   2. no source file under src/ is over 1,000 lines;
#   3. no import cycle between modules: a module may use its ancestors and
#      descendants freely, but two modules where neither contains the other
#      never use each other, directly or around a loop.
#
# usage: scripts/purity.sh        exit status: 0 clean, 1 a rule is broken
set -eu
export LC_ALL=C
cd "$(dirname "$0")/.."

status=0
fail() { echo "purity.sh: $*" >&2; status=1; }

# Source of FILE up to its test module (a `#[cfg(test)]` line followed by
# a `mod` item); any other `#[cfg(test)]` item is checked like the rest. A
# file named tests.rs is a whole test module (`#[cfg(test)] mod tests;`)
# and is skipped by rules 1 and 3 (its length still counts).
non_test() {
	awk '/^[[:space:]]*#\[cfg\(test\)\]/ { held = $0; next }
		held != "" && /^[[:space:]]*(pub(\([^)]*\))? )?mod / { exit }
		held != "" { print held; held = "" }
		{ print }' "$1"
}

# 1. purity
pure_dirs=""
for d in src/proto src/server src/client src/store src/delta; do
	[ -d "$d" ] && pure_dirs="$pure_dirs $d"
done
forbidden='(std::fs|std::net|std::thread|\bmio::|\bnix::|Instant::now|SystemTime::now)'
for f in $(find $pure_dirs -name '*.rs' ! -name tests.rs | sort); do
	hits=$(non_test "$f" | grep -nE "$forbidden" || true)
	[ -z "$hits" ] || fail "$f is in a pure ring but calls the system:
$hits"
done

# 2. length
while read -r n f; do
	[ "$f" = total ] && continue
	[ "$n" -le 1000 ] || fail "$f has $n lines (at most 1,000: split it by concern)"
done < <(find src -name '*.rs' -exec wc -l {} + | sort -n)

# 3. cycles. The module path of a file: src/io/store/mod.rs -> io::store.
module_of() {
	local m=${1#src/}
	m=${m%.rs}
	m=${m%/mod}
	[ "$m" = lib ] && m=""
	echo "${m//\//::}"
}
declare -A known
files=$(find src -name '*.rs' ! -path 'src/bin/*' ! -path src/lib.rs ! -name tests.rs | sort)
for f in $files; do known[$(module_of "$f")]=1; done

# The longest known module that PATH (a::b::c::Item) names.
resolve() {
	local p=$1
	while [ -n "$p" ]; do
		if [ -n "${known[$p]:-}" ]; then echo "$p"; return; fi
		case $p in *::*) p=${p%::*} ;; *) p="" ;; esac
	done
}
# True when one module contains the other (or they are the same).
related() {
	case "$1::" in "$2::"*) return 0 ;; esac
	case "$2::" in "$1::"*) return 0 ;; esac
	return 1
}

edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
[ -n "${PURITY_EDGES:-}" ] && trap 'cat "$edges" >&2; rm -f "$edges"' EXIT
for f in $files; do
	m=$(module_of "$f")
	parent=${m%::*}
	[ "$parent" = "$m" ] && parent=""
	# Paths from `use` items (braces expanded one level) and inline uses.
	non_test "$f" |
		sed -e 's://.*$::' |
		tr '\n' ' ' | tr ';' '\n' |
		grep -oE '\b(crate|super)(::[A-Za-z0-9_]+)*(::\{[^{}]*\})?' |
		while read -r path; do
			case $path in
			*'{'*)
				base=${path%%::\{*}
				inner=${path#*\{}
				inner=${inner%\}}
				for item in ${inner//,/ }; do
					item=${item%%::*}
					[ "$item" = self ] && echo "$base" || echo "$base::$item"
				done
				;;
			*) echo "$path" ;;
			esac
		done |
		while read -r path; do
			case $path in
			crate::*) path=${path#crate::} ;;
			super::*) path=${parent:+$parent::}${path#super::} ;;
			*) continue ;;
			esac
			target=$(resolve "$path")
			[ -n "$target" ] || continue
			related "$m" "$target" && continue
			echo "$m $target"
		done
done | sort -u >"$edges"

if ! tsort "$edges" >/dev/null 2>"$edges.err"; then
	fail "import cycle between modules:
$(grep -v 'input contains a loop' "$edges.err" | sed 's/^tsort: //')"
fi
rm -f "$edges.err"

[ "$status" -eq 0 ] && echo "purity.sh: clean ($(echo $files | wc -w) modules)"
exit "$status"

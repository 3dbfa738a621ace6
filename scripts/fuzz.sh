#!/usr/bin/env bash
# Runs rsb's cargo-fuzz targets (fuzz/) one after another, each for a
# bounded time, and reports how many inputs each one ran.
#
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
#   SECONDS_PER_TARGET  libFuzzer's -max_total_time for each target
#                       (default 60)
#   TARGET...           which targets (default: all of them, in the order
#                       decode server_session client_session secrets)
#
# Installs cargo-fuzz if it is missing (cargo install cargo-fuzz --locked).
# Uses the nightly toolchain when rustup has one, else the stable one with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags). Each target starts from
# fuzz/seeds/TARGET and keeps what it learns in fuzz/corpus/TARGET; builds
# have overflow checks and debug assertions on (-a). libFuzzer's output for
# each target goes to fuzz/logs/TARGET.log.
#
# Prints, per target, the executions run and the time taken, then exits 0
# when no target failed, or 1 naming each crash (the input is saved under
# fuzz/artifacts/TARGET/; replay it with
# `cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...`).
#
# environment:
#   RSB_FUZZ_SANITIZER  cargo-fuzz --sanitizer (default address; none runs
#                       faster, the code under test has no unsafe)

set -u
cd "$(dirname "$0")/.."

secs=${1:-60}
shift $(( $# > 0 ? 1 : 0 ))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(decode server_session client_session secrets)
fi
case $secs in
'' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
    ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || exit 2
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
sanitizer=${RSB_FUZZ_SANITIZER:-address}

mkdir -p fuzz/logs
failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    echo "fuzz.sh: building $t" >&2
    if ! "${fuzz[@]}" build -a -s "$sanitizer" "$t"; then
        failed+=("$t: build failed")
        continue
    fi
    log=fuzz/logs/$t.log
    echo "fuzz.sh: running $t for ${secs}s (log: $log)" >&2
    start=$(date +%s)
    # libFuzzer stops itself at -max_total_time; timeout is the backstop
    # should a single input hang past its own -timeout.
    timeout --kill-after=30 $((secs + 120)) \
        "${fuzz[@]}" run -a -s "$sanitizer" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ -z "$runs" ]; then
        runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    fi
    line="$t: ${runs:-?} executions in ${took}s"
    if [ $rc -ne 0 ]; then
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        failed+=("$t: exit $rc${artifact:+, input saved as $artifact}")
        line="$line, FAILED (exit $rc)"
    fi
    summary+=("$line")
    echo "fuzz.sh: $line" >&2
done

printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'fuzz.sh: %s\n' "${failed[@]}" >&2
    exit 1
fi

#!/usr/bin/env bash
# A/B timing of decode-kernel builds, for performance work on a GPU host.
#
# Build each variant where nvcc is (no GPU needed) into ab/, which git ignores; copy ab/ to the
# GPU host with dist/:
#   scripts/ab-variants.sh build NAME [nvcc flags...]   e.g. build spin -DMY_SWITCH=1
# A change to the host code (a launch attribute, a grid, the scheduler) is a whole build instead:
# build it with `npm run build`, then keep a copy of it as a variant:
#   scripts/ab-variants.sh snapshot NAME                 (dist/ and package.json into ab/NAME/)
# Then on the GPU host (after `source .device/setup.sh`), time them, alternating the variants
# within each pass so that drift in clocks hits all of them alike:
#   scripts/ab-variants.sh time [-p PASSES] [-b "bench flags"]... NAME...
# Each -b adds one `flashmla bench` invocation per variant and pass (default: fixed and variable
# lengths of 4096 tokens at h_q 16 and 128, s_q 1). Every invocation has a time limit, and each
# row is printed as soon as it is measured (also to $OUT/ab.txt when OUT is set), so a variant
# that hangs costs one limit and not the rest of the run. At the end, scripts/ab-summary.mjs prints
# each row's mean per variant and its ratio to the first variant named (also to ab-summary.txt).
# A kernel variant runs with dist/'s host code, so it must keep the shared-memory size of
# dist/kernels/layout.json, which the launcher reads; a snapshot runs whole, its own host code
# and kernels. NAME@VARIANT runs NAME with FLASHMLA_DECODE_KERNEL=VARIANT (one of the launcher's
# decode variants), e.g. a snapshot against itself with another variant.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
shift || true

case "$mode" in
  build)
    name=${1:?usage: scripts/ab-variants.sh build NAME [nvcc flags...]}
    shift
    mkdir -p ab
    nvcc -gencode=arch=compute_90a,code=sm_90a -O3 -std=c++17 --cubin -lineinfo -I csrc "$@" \
      -o "ab/$name.cubin" csrc/decode_seesaw_sm90.cu -Xptxas -v 2>&1 | grep -E 'registers|spill' | sort -u
    ;;
  snapshot)
    name=${1:?usage: scripts/ab-variants.sh snapshot NAME}
    rm -rf "ab/$name"
    mkdir -p "ab/$name"
    cp -r dist package.json "ab/$name/"
    echo "ab/$name: a copy of the current build"
    ;;
  time)
    passes=2
    benches=()
    while getopts 'p:b:' flag; do
      case "$flag" in
        p) passes=$OPTARG ;;
        b) benches+=("$OPTARG") ;;
        *) exit 2 ;;
      esac
    done
    shift $((OPTIND - 1))
    [ $# -gt 0 ] || { echo 'usage: scripts/ab-variants.sh time [-p PASSES] [-b "bench flags"]... NAME...' >&2; exit 2; }
    [ ${#benches[@]} -gt 0 ] || benches=('--lengths 4096 --heads 16,128 --sq 1 --varlen both')
    library=dist/kernels/decode_seesaw_sm90.cubin
    cp "$library" ab/.library.cubin
    log=${OUT:-ab}/ab.txt
    : > "$log"
    for pass in $(seq 1 "$passes"); do
      for label in "$@"; do
        name=${label%%@*}
        variant=
        [ "$name" != "$label" ] && variant=${label#*@}
        cli=dist/src/cli/main.js
        if [ -d "ab/$name/dist" ]; then
          cli=ab/$name/dist/src/cli/main.js  # a snapshot: its own host code and kernels
        else
          cp "ab/$name.cubin" "$library"
        fi
        for flags in "${benches[@]}"; do
          # shellcheck disable=SC2086 # the flags are words
          FLASHMLA_DECODE_KERNEL=$variant timeout 90 node "$cli" bench $flags --repeats 20 2>&1 |
            grep --line-buffered -E '^ *[0-9]+ +[0-9]+ +[0-9]' |
            awk -v name="$label" -v pass="$pass" '{ printf "%s %-10s %s\n", pass, name, $0; fflush() }' |
            tee -a "$log"
        done
      done
    done
    cp ab/.library.cubin "$library"
    # Each row's mean per variant and the ratios to the first variant, also to $OUT/ab-summary.txt.
    node scripts/ab-summary.mjs "$log" "$@" | tee "${OUT:-ab}/ab-summary.txt"
    ;;
  *)
    echo 'usage: scripts/ab-variants.sh build NAME [nvcc flags...] | snapshot NAME | time [-p PASSES] [-b "bench flags"]... NAME...' >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# A/B timing of decode-kernel builds, for performance work on a GPU host.
#
# Build each variant where nvcc is (no GPU needed) into ab/, which git ignores; copy ab/ to the
# GPU host with dist/:
#   scripts/ab-variants.sh build NAME [nvcc flags...]   e.g. build spin -DMY_SWITCH=1
# Then on the GPU host (after `source .device/setup.sh`), time them, alternating the variants
# within each pass so that drift in clocks hits all of them alike:
#   scripts/ab-variants.sh time [-p PASSES] [-b "bench flags"]... NAME...
# Each -b adds one `flashmla bench` invocation per variant and pass (default: fixed and variable
# lengths of 4096 tokens at h_q 16 and 128, s_q 1). Every invocation has a time limit, and each
# row is printed as soon as it is measured (also to $OUT/ab.txt when OUT is set), so a variant
# that hangs costs one limit and not the rest of the run. Variants must keep the shared-memory
# size of dist/kernels/layout.json, which the launcher reads.
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
      for name in "$@"; do
        cp "ab/$name.cubin" "$library"
        for flags in "${benches[@]}"; do
          # shellcheck disable=SC2086 # the flags are words
          timeout 90 node dist/src/cli/main.js bench $flags --repeats 20 2>&1 |
            grep --line-buffered -E '^ +[0-9]+ +[0-9]+ +[0-9]' |
            awk -v name="$name" -v pass="$pass" \
              '{ printf "%s %-10s %6s %4s %2s %-4s %8s %s %s\n", pass, name, $1, $2, $3, $4, $5, $10, $11; fflush() }' |
            tee -a "$log"
        done
      done
    done
    cp ab/.library.cubin "$library"
    ;;
  *)
    echo 'usage: scripts/ab-variants.sh build NAME [nvcc flags...] | time [-p PASSES] [-b "bench flags"]... NAME...' >&2
    exit 2
    ;;
esac

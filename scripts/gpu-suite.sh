#!/usr/bin/env bash
# The whole GPU check, in one command on a GPU host (after `source .device/setup.sh` there):
#   1. the GPU test suite (node --test over $DIST/test/gpu, fresh seeds),
#   2. compute-sanitizer memcheck, racecheck, synccheck and initcheck over the small workload,
#   3. the demo.
# Logs go to $OUT (or ./gpu-suite-logs); a pass/fail table is printed last. DIST names the build
# to check (default dist; e.g. DIST=ab/NAME/dist for a snapshot of scripts/ab-variants.sh, which
# runs whole: its own host code and kernels).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-suite-logs}
mkdir -p "$out"
build=${DIST:-dist}
export PATH=$PATH:/usr/local/cuda/bin
export FLASHMLA_TEST_SEED=${FLASHMLA_TEST_SEED:-$(( (RANDOM << 15) | RANDOM ))}
declare -a names results times

step() {
  local name=$1; shift
  local start=$SECONDS
  "$@" > "$out/$name.log" 2>&1
  local rc=$?
  names+=("$name"); results+=("$([ $rc -eq 0 ] && echo pass || echo "FAIL (exit $rc)")"); times+=("$((SECONDS - start))s")
  tail -n 25 "$out/$name.log"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/card.txt"
step gpu-tests node --test --test-concurrency=1 "$build"/test/gpu/*.test.js
if [ "${SKIP_SANITIZER:-0}" != 1 ]; then
  for tool in memcheck racecheck synccheck initcheck; do
    step "sanitizer-$tool" compute-sanitizer --tool "$tool" --error-exitcode 1 --target-processes all node "$build"/test/gpu/sanitize-workload.js
  done
fi
step demo node "$build"/src/cli/main.js demo --backend cuda

echo
echo "GPU suite of $build on $(cat "$out/card.txt"), $(date -u +%Y-%m-%dT%H:%MZ), seed $FLASHMLA_TEST_SEED"
printf '%-22s %-16s %s\n' step result time
failed=0
for i in "${!names[@]}"; do
  printf '%-22s %-16s %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
  [ "${results[$i]}" = pass ] || failed=1
done
grep -E '^# (tests|pass|fail|skipped)' "$out/gpu-tests.log" | tr '\n' ' '; echo
exit $failed

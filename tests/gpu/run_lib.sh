# Shared by the GPU-machine scripts (evidence_run.sh, followup_run.sh); sourced, not run.
#   run_setup NAME RESULTS_DIR: results=absolute RESULTS_DIR, pack_dir=$PACK_DIR (default results),
#     archive=$pack_dir/NAME.tar.gz, PY, PYTHONPATH with the checkout, cd to the checkout, status=0.
# The device tool brings back only a few files, so everything under results is packed into the
# one archive after each step: a run cut off at its limit still returns what it has.

run_setup() {
  archive_name=$1
  results=$2
  mkdir -p "$results"
  results=$(cd "$results" && pwd)
  pack_dir=${PACK_DIR:-$results}
  mkdir -p "$pack_dir"
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  cd "$root" || exit 1
  PY=${PYTHON:-python3}
  export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
  status=0
  start=$SECONDS
}

say() { echo "[$archive_name +$((SECONDS - start))s] $*"; }

pack() {  # everything but the archive itself
  tar czf "$pack_dir/$archive_name.tar.gz.tmp" -C "$results" --exclude="$archive_name.tar.gz*" . \
    && mv "$pack_dir/$archive_name.tar.gz.tmp" "$pack_dir/$archive_name.tar.gz"
}

# run_budgeted NAME BUDGET CMD...: SIGINT at the budget (pytest's graceful stop), KILL 20 s later.
run_budgeted() {
  local name=$1 budget=$2; shift 2
  timeout -s INT -k 20 "$budget" "$@"
  local rc=$?
  case $rc in
    0) say "$name: ok" ;;
    124|137) say "$name: ran out of its ${budget}s budget (interrupted)"; status=1 ;;
    *) say "$name: failed (exit $rc)"; status=1 ;;
  esac
  return $rc
}

# step NAME BUDGET LOG TAIL CMD...: CMD within BUDGET into RESULTS/LOG (its last TAIL lines shown),
# then pack; a BUDGET of 0 skips it.
step() {
  local name=$1 budget=$2 log=$3 tail_lines=$4; shift 4
  if [ "$budget" -le 0 ]; then
    say "$name: skipped (budget 0)"
    return 0
  fi
  say "$name"
  run_budgeted "$name" "$budget" "$@" > "$results/$log" 2>&1 || true
  tail -n "$tail_lines" "$results/$log"
  pack
}

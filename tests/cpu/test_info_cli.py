"""`python -m fastattn info` runs and reports what it promises."""

import json
import os
import subprocess
import sys

import torch


def run_info(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fastattn", "info", *args], check=True,
                          capture_output=True, text=True, env=env).stdout


def test_info_names_versions_device_extension_and_interpreter():
    out = run_info()
    assert f"torch {torch.__version__}" in out
    assert "extension fastattn._C:" in out
    assert "Triton interpreter (TRITON_INTERPRET=1): off" in out
    if not torch.cuda.is_available():
        assert "no CUDA GPU visible" in out


def test_info_json_and_interpreter_flag():
    env = dict(os.environ, TRITON_INTERPRET="1")
    facts = json.loads(run_info("--json", env=env))
    assert facts["triton_interpreter"] is True
    assert facts["backends"]["torch"]["available"] is True
    assert facts["backends"]["triton"]["available"] is True  # on CPU tensors, interpreted
    assert set(facts["extension"]) >= {"built"}


def test_info_says_which_ffn_gemm_path_was_built():
    from fastattn import _extension
    from fastattn.info import collect_info, format_info

    facts = collect_info()
    if not facts["extension"]["built"]:
        assert "cuda FFN GEMMs" not in format_info(facts)
        return
    path = facts["extension"]["ffn_gemm"]
    assert path == _extension.ffn_gemm_path(_extension.load()[0])
    assert path == "aten" or path.startswith("cublaslt ")
    for path, words in (("cublaslt 13.1.1", "cuda FFN GEMMs: cublaslt 13.1.1, with its bias and GELU-tanh"),
                        ("aten", "cuda FFN GEMMs: ATen's addmm (the extension was built without cuBLASLt)")):
        facts["extension"]["ffn_gemm"] = path
        assert words in format_info(facts)


def test_ffn_gemm_path_of_extensions_with_and_without_cublaslt():
    from types import SimpleNamespace

    from fastattn._extension import ffn_gemm_path

    assert ffn_gemm_path(SimpleNamespace(ffn_gemm_path="cublaslt", cublaslt_version="13.1.1")) == \
        "cublaslt 13.1.1"
    assert ffn_gemm_path(SimpleNamespace(ffn_gemm_path="aten", cublaslt_version=None)) == "aten"
    assert ffn_gemm_path(SimpleNamespace()) == "aten"  # an extension built before the path existed


def test_info_shows_the_automatic_choice_per_op():
    """What fastattn.patch(model) will run on a GPU, op by op, as the dispatch table says."""
    from fastattn import _dispatch

    out = run_info()
    assert "automatic choice (backend=None) on CUDA tensors" in out
    for op in _dispatch.AUTO_ORDER:
        line = next(line for line in out.splitlines() if line.strip().startswith(op + " "))
        assert " > ".join(_dispatch.AUTO_ORDER[op]) in line, line
    attention = next(line for line in out.splitlines() if line.strip().startswith("attention "))
    size, bound, order = _dispatch.AUTO_ORDER_UP_TO_SIZE["attention"]
    assert f"{' > '.join(order)} ({size} <= {bound})" in attention
    facts = json.loads(run_info("--json"))
    assert facts["automatic_choice"]["ffn"] == [["always", list(_dispatch.AUTO_ORDER["ffn"])]]


def test_info_names_each_gpus_tile_tables(monkeypatch):
    from types import SimpleNamespace

    from fastattn import info

    rtx_5090 = SimpleNamespace(name="NVIDIA GeForce RTX 5090", major=12, minor=0,
                               total_memory=32 * 2**30, multi_processor_count=170,
                               shared_memory_per_block_optin=99 * 1024)
    facts = info.collect_info()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: rtx_5090)
    line = info.format_info(dict(facts, cuda_devices=info._devices()))
    assert ("device cuda:0: NVIDIA GeForce RTX 5090 (sm_120, 32.0 GiB, 170 SMs; Triton tiles of "
            "the sm_80 tables)") in line


def test_info_lists_the_triton_attention_switch_offs_and_what_tf32_lifts():
    """A float32 user learns why a call does not run on triton (and that allowing TF32 lifts the
    spill switch-offs) from `fastattn info`, one line per case of the settings' two lists."""
    from fastattn import info
    from fastattn.kernels import attention_settings as settings

    facts = info.collect_info()
    entries = facts["triton_attention_switched_off"]
    listed = {(role, entry["case"]) for entry in entries for role in entry["roles"]}
    for role, block_d, _fp32, _dropout in settings.SPILLING:
        assert any(r == role and f"{block_d}" in case for r, case in listed), (role, block_d)
    for role, block_d, _fp32, dropout in settings.WRONG_ON_GPU:
        assert any(r == role and f"head dim {block_d} with dropout" in case for r, case in listed)
    out = info.format_info(dict(facts, tf32_allowed=False))
    assert ("float32, head dims 80, 96, 128 with dropout: backward dK/dV: tiles spill registers"
            in out)
    assert "TF32 allowed (torch.backends.cuda.matmul.allow_tf32): no" in out
    assert out.count("; lifted where TF32 is allowed") == sum(e["tf32_lifts"] for e in entries) >= 2
    assert "wrong dK" in out and "lifted now" not in out
    assert "; lifted now (TF32 is allowed)" in info.format_info(dict(facts, tf32_allowed=True))

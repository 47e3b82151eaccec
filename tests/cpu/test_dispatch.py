"""Backend choice (DESIGN §3): argument > use_backend() > FASTATTN_BACKEND > automatic, and errors
that say why a backend cannot run."""

import functools

import pytest
import torch

import fastattn
from fastattn import _dispatch


def small_inputs(hidden=16):
    x = torch.randn(3, hidden)
    return x, torch.randn_like(x), torch.ones(hidden), torch.zeros(hidden)


def chosen_backend(monkeypatch, **kwargs):
    """The backend name the op dispatches to, observed at the custom op's boundary."""
    seen = []
    real = _dispatch.resolve_backend

    def spy(*args, **kw):
        seen.append(real(*args, **kw))
        return seen[-1]

    monkeypatch.setattr("fastattn.ops.layer_norm_residual.resolve_backend", spy)
    fastattn.layer_norm_residual(*small_inputs(), **kwargs)
    return seen[-1]


def test_cpu_tensors_default_to_torch(monkeypatch):
    monkeypatch.delenv("FASTATTN_BACKEND", raising=False)
    assert chosen_backend(monkeypatch) == "torch"


def test_env_variable_and_context_and_argument_precedence(monkeypatch):
    monkeypatch.setenv("FASTATTN_BACKEND", "triton")
    with pytest.raises(fastattn.BackendUnavailableError, match="FASTATTN_BACKEND"):
        fastattn.layer_norm_residual(*small_inputs())
    with fastattn.use_backend("torch"):  # the context beats the environment
        assert chosen_backend(monkeypatch) == "torch"
    # the argument beats the environment
    assert chosen_backend(monkeypatch, backend="torch") == "torch"


def test_context_restores_previous_choice(monkeypatch):
    monkeypatch.delenv("FASTATTN_BACKEND", raising=False)
    with fastattn.use_backend("cuda"):
        with fastattn.use_backend(None):
            assert chosen_backend(monkeypatch) == "torch"
        with pytest.raises(fastattn.BackendUnavailableError, match="use_backend"):
            fastattn.layer_norm_residual(*small_inputs())
    assert chosen_backend(monkeypatch) == "torch"


@pytest.mark.parametrize("where", ["argument", "context", "env"])
def test_unknown_backend_names_the_choices(monkeypatch, where):
    monkeypatch.delenv("FASTATTN_BACKEND", raising=False)
    with pytest.raises(ValueError, match="unknown backend 'tritn'.*triton, cuda, torch"):
        if where == "argument":
            fastattn.layer_norm_residual(*small_inputs(), backend="tritn")
        elif where == "context":
            with fastattn.use_backend("tritn"):
                pass
        else:
            monkeypatch.setenv("FASTATTN_BACKEND", "tritn")
            fastattn.layer_norm_residual(*small_inputs())


@pytest.mark.skipif(_dispatch.triton_interpreter_enabled(), reason="the interpreter runs triton on CPU")
def test_triton_on_cpu_tensors_says_how_to_run_it():
    with pytest.raises(fastattn.BackendUnavailableError, match="needs CUDA tensors.*TRITON_INTERPRET=1"):
        fastattn.layer_norm_residual(*small_inputs(), backend="triton")


def test_cuda_backend_on_cpu_tensors_says_why():
    with pytest.raises(fastattn.BackendUnavailableError, match="backend 'cuda'.*cannot run") as info:
        fastattn.layer_norm_residual(*small_inputs(), backend="cuda")
    assert "CUDA tensors" in str(info.value) or "not built" in str(info.value)


def test_hidden_size_beyond_a_kernel_limit(monkeypatch):
    monkeypatch.setattr(_dispatch, "why_backend_cannot_run", lambda name, device: None)
    with pytest.raises(fastattn.BackendUnavailableError,
                       match="hidden size 32769 exceeds its limit of 32768"):
        fastattn.layer_norm_residual(*small_inputs(32769), backend="cuda")
    # The automatic choice on a GPU skips a backend whose limit the call exceeds.
    assert _dispatch.resolve_backend("layer_norm_residual", torch.device("cuda"),
                                     unsupported={"triton": "too wide"}) == "cuda"


def test_available_backends_reports_every_backend_with_a_reason():
    status = fastattn.available_backends()
    assert set(status) == {"triton", "cuda", "torch"}
    assert status["torch"]["available"] is True
    for name, entry in status.items():
        assert isinstance(entry["available"], bool) and entry["detail"], name
    if not torch.cuda.is_available():
        assert status["cuda"]["available"] is False


def test_the_automatic_choice_goes_by_size_only_where_a_band_says_so(monkeypatch):
    """LayerNorm: cuda up to 2048 rows (host-bound calls), triton above and without a size; a
    backend that cannot run is skipped. Ops without a band ignore the size."""
    monkeypatch.setattr(_dispatch, "why_backend_cannot_run", lambda name, device: None)
    cuda = torch.device("cuda")
    pick = functools.partial(_dispatch.resolve_backend, "layer_norm_residual", cuda)
    assert pick(size=1) == pick(size=2048) == "cuda"
    assert pick(size=2049) == pick() == "triton"
    assert pick(size=16, unsupported={"cuda": "extension not built"}) == "triton"
    assert pick(size=4096, unsupported={"triton": "not installed"}) == "cuda"
    assert _dispatch.auto_order("ffn", size=768) == _dispatch.AUTO_ORDER["ffn"]
    band = _dispatch.AUTO_ORDER_UP_TO_SIZE["attention"]
    assert _dispatch.auto_order("attention", band[1]) == band[2]
    assert _dispatch.auto_order("attention", band[1] + 1) == _dispatch.AUTO_ORDER["attention"]


def test_the_automatic_layer_norm_choice_goes_by_rows_not_hidden_size(monkeypatch):
    """fastattn.layer_norm_residual asks by rows (every dimension but the last): a decoding step's
    few rows take the host-cheaper cuda kernels, whatever the hidden size; many rows triton."""
    from fastattn.ops import layer_norm_residual as layer_norm_op

    monkeypatch.setattr(_dispatch, "why_backend_cannot_run", lambda name, device: None)
    asked = []
    real = _dispatch.resolve_backend

    def ask(op, device, *args, **kwargs):
        asked.append(real(op, torch.device("cuda"), *args, **kwargs))
        return "torch"

    monkeypatch.setattr(layer_norm_op, "resolve_backend", ask)
    for shape in ((16, 1, 4096), (4, 512, 8), (2049, 8), (3, 700, 8)):
        x = torch.randn(*shape)
        fastattn.layer_norm_residual(x, x, torch.ones(shape[-1]), torch.zeros(shape[-1]))
    assert asked == ["cuda", "cuda", "triton", "triton"]


def test_the_automatic_attention_choice_for_decoding_goes_by_query_rows(monkeypatch):
    """cuda for KV-cache decoding with few query rows (B * H * Sq <= 256, Sq <= 16), triton
    otherwise: what fastattn.attention asks the dispatcher for each call."""
    from fastattn.ops import attention as attention_op

    monkeypatch.setattr(_dispatch, "why_backend_cannot_run", lambda name, device: None)
    asked = []
    real = _dispatch.resolve_backend
    cuda = torch.device("cuda")  # the choice as it would be for these shapes on a GPU

    def ask(op, device, *args, **kwargs):
        asked.append(real(op, cuda, *args, **kwargs))
        return "torch"

    monkeypatch.setattr(attention_op, "resolve_backend", ask)
    for batch, heads, seqlen_q in ((1, 12, 1), (16, 12, 1), (1, 32, 8), (16, 32, 1), (1, 12, 17),
                                   (1, 4, 64)):
        q = torch.randn(batch, heads, seqlen_q, 16)
        k = torch.randn(batch, heads, 40, 16)
        fastattn.attention(q, k, k)
    assert asked == ["cuda", "cuda", "cuda", "triton", "triton", "triton"]
    cu = torch.tensor([0, 1], dtype=torch.int32)  # varlen keeps the size-independent order
    q1 = torch.randn(1, 2, 16)
    fastattn.attention_varlen(q1, q1, q1, cu, cu, 1, 1)
    assert asked[-1] == "triton"

"""attention_varlen checks cu_seqlens' values once per tensor, not once per call (a device sync
each on GPUs): the host read is remembered until the tensor changes, and unpad's cu_seqlens are
never read back. Facts are kept on GPU tensors only; these tests keep them on CPU tensors as a GPU
would (the facts_kept_as_on_a_gpu fixture). The last test checks the CPU's own rule."""

import pytest
import torch

import fastattn
import hf_models
from fastattn.nn.packing import PackedBatch


@pytest.fixture
def host_reads(monkeypatch, facts_kept_as_on_a_gpu):
    """The int32 tensors read back with .tolist() (how the check copies cu_seqlens to the host)."""
    reads = []
    tolist = torch.Tensor.tolist

    def counting(self):
        if self.dtype == torch.int32:
            reads.append(self)
        return tolist(self)

    monkeypatch.setattr(torch.Tensor, "tolist", counting)
    return reads


def _packed(total, heads=2, head_dim=16):
    return [torch.randn(total, heads, head_dim, generator=torch.Generator().manual_seed(i))
            for i in range(3)]


def _varlen(q, k, v, cu, max_seqlen):
    return fastattn.attention_varlen(q, k, v, cu, cu, max_seqlen, max_seqlen, backend="torch")


def test_twelve_calls_read_cu_seqlens_once(host_reads):
    q, k, v = _packed(9)
    cu = torch.tensor([0, 4, 9], dtype=torch.int32)
    first = _varlen(q, k, v, cu, 5)
    for _layer in range(11):
        assert torch.equal(_varlen(q, k, v, cu, 5), first)
    assert len(host_reads) == 1 and host_reads[0] is cu


def test_in_place_change_is_checked_again(host_reads):
    q, k, v = _packed(9)
    cu = torch.tensor([0, 4, 9], dtype=torch.int32)
    _varlen(q, k, v, cu, 5)
    cu[1] = 10  # now decreasing: 10 > 9
    with pytest.raises(ValueError, match="cu_seqlens_q must be non-decreasing"):
        _varlen(q, k, v, cu, 10)
    cu[1] = 1  # valid again, but its longest sequence (8) exceeds the max_seqlen that passed before
    with pytest.raises(ValueError, match=r"max_seqlen_q \(5\) is smaller than the longest sequence"):
        _varlen(q, k, v, cu, 5)
    cu.view(3)[2] = 8  # through a view: the version counter is shared
    with pytest.raises(ValueError, match="end at the token count 9"):
        _varlen(q, k, v, cu, 8)
    assert len(host_reads) == 4


def test_remembered_facts_still_check_each_calls_arguments(host_reads):
    """Only the host copy is remembered: other totals and max_seqlens are judged against it."""
    q, k, v = _packed(9)
    cu = torch.tensor([0, 4, 9], dtype=torch.int32)
    _varlen(q, k, v, cu, 5)
    with pytest.raises(ValueError, match=r"max_seqlen_q \(4\) is smaller"):
        _varlen(q, k, v, cu, 4)
    with pytest.raises(ValueError, match="end at the token count 8"):
        _varlen(*_packed(8), cu, 5)
    assert len(host_reads) == 1


@pytest.mark.parametrize("mode", ["grad", "inference"])
def test_unpad_output_is_not_read_back(host_reads, mode):
    mask = torch.tensor([[True, True, False, False], [False, True, True, True], [True, False, True, False]])
    x = torch.randn(3, 4, 2, 16, generator=torch.Generator().manual_seed(5))
    context = torch.inference_mode() if mode == "inference" else torch.enable_grad()
    with context:
        packed, _indices, cu, max_seqlen = fastattn.unpad(x, mask)
        out = _varlen(packed, packed, packed, cu, max_seqlen)
        assert not cu.is_inference()  # so that a later in-place write would be seen
    assert not host_reads
    expected = fastattn.reference.attention_varlen(packed, packed, packed, cu, cu, upcast=False)
    assert torch.allclose(out, expected, atol=1e-5)
    assert cu.tolist() == [0, 2, 5, 7]


def test_unpad_output_changed_in_place_is_checked(host_reads):
    x = torch.randn(2, 3, 2, 16)
    packed, _indices, cu, max_seqlen = fastattn.unpad(x, torch.ones(2, 3, dtype=torch.bool))
    cu[1] = 7
    with pytest.raises(ValueError, match="non-decreasing"):
        _varlen(packed, packed, packed, cu, 7)
    assert len(host_reads) == 1


def test_packing_without_mask_is_not_read_back(host_reads):
    x_packed, packing = PackedBatch.pack(torch.randn(2, 5, 2, 16))
    _varlen(x_packed, x_packed, x_packed, packing.cu_seqlens, packing.max_seqlen)
    assert not host_reads


def test_inference_tensors_are_read_on_every_call(host_reads):
    """No version counter to tell a change: checked each time (never skipped)."""
    q, k, v = _packed(9)
    with torch.inference_mode():
        cu = torch.tensor([0, 4, 9], dtype=torch.int32)
        _varlen(q, k, v, cu, 5)
        cu[1] = 10
        with pytest.raises(ValueError, match="non-decreasing"):
            _varlen(q, k, v, cu, 10)
    # One read a call: k shares q's cu_seqlens, token count and max length (self-attention), so
    # its check would repeat q's and is skipped.
    assert len(host_reads) == 2


@pytest.mark.parametrize("pattern", ["holes", "none"])
def test_patched_bert_never_reads_cu_seqlens_back(host_reads, pattern):
    from transformers import BertModel

    model = fastattn.patch(hf_models.make_model(BertModel, hf_models.bert_config()))
    ids, mask = hf_models.input_ids(3, 9), hf_models.attention_mask(3, 9, pattern)
    with torch.inference_mode():
        model(ids, attention_mask=mask)
    assert not host_reads


def test_cpu_tensors_are_read_on_every_call(monkeypatch):
    """Without the fixture: a CPU cu_seqlens may share memory with a numpy array, whose writes bump
    no version counter, so its values are read (and checked) on every call."""
    np = pytest.importorskip("numpy")
    reads = []
    tolist = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: reads.append(t) or tolist(t))
    q, k, v = _packed(9)
    buffer = np.array([0, 4, 9], dtype=np.int32)
    cu = torch.from_numpy(buffer)
    _varlen(q, k, v, cu, 5)
    reads_of_the_first_call = len(reads)
    buffer[1] = 10  # no version bump
    with pytest.raises(ValueError, match="non-decreasing"):
        _varlen(q, k, v, cu, 10)
    assert reads_of_the_first_call >= 1 and len(reads) > reads_of_the_first_call

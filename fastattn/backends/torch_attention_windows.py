"""Which keys of a padded batch the torch backend hands to SDPA: padding keys cost SDPA as much as
real ones, so the key columns no query can see are left out.

Only keys can be cut: DESIGN §2 gives padded query rows a real output (they attend to the row's
real keys), so every query row is computed. Each batch row's real keys lie in [first, end)
(_attention_layout.key_bounds, read back once per mask tensor through _tensor_memo, since a model
passes one mask to all its layers). plan() then decides, from first principles (no GPU has
measured it yet; a benchmark re-tunes COSTS):

1. Cut the columns outside [min first, max end) over the batch. Exact (no query sees them) and
   free: k, v and the mask become views.
2. Split the batch into two buckets (rows sorted by window width), each with its own window, when
   the attention work saved beats gathering each bucket's q, k, v and scattering its output back,
   plus a fixed launch overhead per bucket. Per (batch row, head), with width rounded up to a
   KEY_BLOCK (SDPA's kernels pay a whole key block for a partial one):
       attention  4 * Sq * width * D / flops            seconds
       gathering  2 * bytes * D * (2 * Sq + 2 * width) / bandwidth   (q, out, k, v read + written)
   On an H100 (~400 TFLOP/s reached by SDPA, ~3 TB/s), gathering a 16-bit row costs as much as
   ~300 * (Sq + width) / Sq key columns of attention: at BERT sizes (S <= 512) a split never pays;
   it does for long batches (S in the thousands) whose lengths are far apart. The backward (about
   2.5x the forward's work, and a gather of dout, dq, dk, dv) scales both sides alike.
Small problems are not planned at all: on the CPU the bounds are read again on every call (no
facts are kept on CPU tensors, _tensor_memo) and a cut adds a zero fill and a copy, together
DeviceCosts.planning seconds, more than a KV-cache decoding step's whole attention (a batch of 4
left-padded rows, 12 heads, 48 keys: ~170 us planned against ~95 unplanned on one core). GPUs
read the bounds once per mask and pay only the planner's Python, counted as free until measured.
Holes are not compacted: a row's keys stay in place (causal visibility depends on positions).
"""

from typing import NamedTuple, Optional

KEY_BLOCK = 64


class DeviceCosts(NamedTuple):
    flops: float  # attention FLOP/s that SDPA reaches
    bandwidth: float  # bytes/s of a gather
    launch: float  # seconds of fixed overhead per extra bucket (index copies, kernel launches)
    planning: float  # seconds a plan costs per call before it saves anything (bounds, bookkeeping)


# Estimates, not measurements: an H100 for "cuda", a few-core server for "cpu".
COSTS = {"cuda": DeviceCosts(4e14, 3e12, 3e-5, 0.0), "cpu": DeviceCosts(1e11, 2e10, 2e-5, 8e-5)}


class Piece(NamedTuple):
    rows: Optional[list]  # batch rows (host ints) to gather, or None for the whole batch in place
    keys: slice  # the key columns these rows need


def _rounded(width, seqlen_k):
    return min(seqlen_k, -(-width // KEY_BLOCK) * KEY_BLOCK)


def _joined(a, b):
    return min(a[0], b[0]), max(a[1], b[1])


def _running_windows(windows):
    """The window of windows[:i + 1], for each i."""
    out = [windows[0]]
    for window in windows[1:]:
        out.append(_joined(out[-1], window))
    return out


def _costs(device_type):
    return COSTS.get(device_type, COSTS["cuda"])


def _attention_seconds(costs, rows, heads, seqlen_q, width, head_dim):
    return rows * heads * 4 * seqlen_q * width * head_dim / costs.flops


def worth_planning(batch, heads, seqlen_q, seqlen_k, head_dim, device_type):
    """False when the whole uncut attention costs less than making a plan: nothing to save."""
    costs = _costs(device_type)
    return _attention_seconds(costs, batch, heads, seqlen_q, seqlen_k, head_dim) >= costs.planning


def plan(bounds, heads, seqlen_q, seqlen_k, head_dim, element_size, device_type):
    """Pieces covering every batch row that sees a key, or None when nothing is worth cutting.
    bounds: (first, end) of each row's real keys, (0, 0) for a row without any."""
    costs = _costs(device_type)

    def seconds(count, window, gathered):
        width = _rounded(window[1] - window[0], seqlen_k)
        work = _attention_seconds(costs, count, heads, seqlen_q, width, head_dim)
        if not gathered:
            return work
        gather = 2 * element_size * head_dim * (2 * seqlen_q + 2 * width) / costs.bandwidth
        return work + count * heads * gather + costs.launch

    rows = sorted((b for b, (first, end) in enumerate(bounds) if end > first),
                  key=lambda b: bounds[b][1] - bounds[b][0])
    if not rows:
        return []
    prefix = _running_windows([bounds[b] for b in rows])
    suffix = _running_windows([bounds[b] for b in reversed(rows)])[::-1]
    best, best_split = seconds(len(bounds), prefix[-1], gathered=False), None
    for split in range(1, len(rows)):
        cost = (seconds(split, prefix[split - 1], True)
                + seconds(len(rows) - split, suffix[split], True))
        if cost < best:
            best, best_split = cost, split
    if best_split is not None:
        return [Piece(rows[:best_split], slice(*prefix[best_split - 1])),
                Piece(rows[best_split:], slice(*suffix[best_split]))]
    if prefix[-1] == (0, seqlen_k):
        return None
    return [Piece(None, slice(*prefix[-1]))]

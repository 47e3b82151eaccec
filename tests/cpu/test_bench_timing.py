"""benchmarks/timing.py: what a timed case covers. The CUDA path itself needs a GPU; its sizing
of the host headroom and the CPU path's fields are checked here."""

import time

from benchmarks import timing


def test_the_headroom_covers_the_host_time_with_a_margin():
    cycles_per_ms = 1.8e6  # a 1.8 GHz clock
    assert timing.host_headroom_cycles(0.0, cycles_per_ms) == timing.HOST_HEADROOM_CYCLES
    cycles = timing.host_headroom_cycles(0.4, cycles_per_ms)
    assert cycles / cycles_per_ms >= timing.HOST_HEADROOM_FACTOR * 0.4
    assert cycles / cycles_per_ms <= timing.HOST_HEADROOM_FACTOR * 0.4 + 2 * timing.HOST_HEADROOM_MARGIN_MS


def test_the_headroom_is_capped():
    cycles = timing.host_headroom_cycles(10_000.0, 1.8e6)
    assert cycles == int(timing.MAX_HOST_HEADROOM_MS * 1.8e6)


def test_cpu_timings_report_their_host_time():
    result = timing.time_fn(lambda: time.sleep(0.002), "cpu", min_runs=3, max_runs=3)
    assert result.runs == 3
    assert 2.0 <= result.p50 and 2.0 <= result.host_ms


class _FakeEvent:
    """A CUDA event stand-in that records the host clock (milliseconds)."""

    def __init__(self, enable_timing=False):
        self.at = None

    def record(self):
        self.at = time.perf_counter() * 1e3

    def elapsed_time(self, end):
        return end.at - self.at


def test_the_cuda_path_sleeps_through_the_measured_host_time(monkeypatch):
    """The CUDA timer's control flow, with events, sleep and the flush buffer faked on CPU: after
    the estimate, each run's GPU-side sleep covers the call's host time."""
    import torch

    sleeps = []
    monkeypatch.setattr(torch.cuda, "Event", _FakeEvent)
    monkeypatch.setattr(torch.cuda, "_sleep", sleeps.append, raising=False)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(timing, "_flush_buffer", lambda device: torch.empty(16))
    monkeypatch.setattr(timing, "_sleep_cycles_per_ms", lambda device: 1e6)
    result = timing._time_cuda(lambda: time.sleep(0.003), None, "fake", 1.0, 1.0, 3, 3,
                               hide_host=True)
    assert result.hide_host and result.host_ms >= 3.0
    assert sleeps[0] == timing.HOST_HEADROOM_CYCLES  # the first call and the estimate
    assert sleeps[-1] >= timing.HOST_HEADROOM_FACTOR * 3.0 * 1e6
    end_to_end = timing._time_cuda(lambda: None, None, "fake", 1.0, 1.0, 3, 3, hide_host=False)
    assert not end_to_end.hide_host and sleeps[-1] == timing.HOST_HEADROOM_CYCLES

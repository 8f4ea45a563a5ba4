"""Random hypercall sequences on both ABIs, checked step by step against a model (Hypothesis).

Hypothesis plays the machines of ``event_channel_model`` on Xen master: a fixed, derandomized
set of sequences that shrink to a minimal one when they fail. tests/test_random_walk.py plays
the same machines far longer, on every row of ``XEN_VERSIONS``, with a fresh printed seed.
"""

from __future__ import annotations

from event_channel_model import FifoMachine, TwoLevelMachine
from hypothesis import HealthCheck, settings

# Deterministic and database-less; sized so both machines together run in a few seconds.
SETTINGS = settings(max_examples=120, stateful_step_count=50, derandomize=True, database=None,
                    deadline=None, suppress_health_check=list(HealthCheck))


def test_random_2_level_hypercall_sequences_lose_no_event():
    """Models evtchn_2l_set_pending/unmask (xen/common/event_2l.c) against evtchn_2l_handle_events."""
    TwoLevelTest = TwoLevelMachine.TestCase
    TwoLevelTest.settings = SETTINGS
    TwoLevelTest("runTest").runTest()


def test_random_fifo_hypercall_sequences_keep_queues_sound_and_lose_no_event():
    """Models evtchn_fifo_set_pending/unmask (xen/common/event_fifo.c) against
    __evtchn_fifo_handle_events (drivers/xen/events/events_fifo.c)."""
    FifoTest = FifoMachine.TestCase
    FifoTest.settings = SETTINGS
    FifoTest("runTest").runTest()

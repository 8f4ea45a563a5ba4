"""What a guest can see of its event channels, found without knowing where it put them.

A guest reads its ports' state in its own memory: bits of shared_info for 2-level, event
words in the pages it gave Xen for FIFO, and one control block per vCPU. These functions
(bound as ``Domain`` methods) go through the ABI engine Xen runs the domain with, so a
script can ask ``d.is_pending(port)`` in either ABI, or ``d.control_block(vcpu)``, without
remembering gfns. They read only; they never change guest memory.

``is_pending`` and ``is_masked`` are the ABI's own tests (evtchn_2l_is_pending,
evtchn_fifo_is_masked, ...): a port beyond what the ABI can show (past 2-level's bitmap, or
without a FIFO event-array page yet) is not pending and is masked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .memory import ControlBlockView

if TYPE_CHECKING:
    from .xen import Domain

MAX_PORT = (1 << 32) - 1  # evtchn_port_t


def is_pending(d: Domain, port: int) -> bool:
    """Whether ``port``'s pending bit (2-level) or PENDING flag (FIFO) is set."""
    return d.port_ops.is_pending(_port(port))


def is_masked(d: Domain, port: int) -> bool:
    """Whether ``port``'s mask bit (2-level) or MASKED flag (FIFO) is set."""
    return d.port_ops.is_masked(_port(port))


def control_block(d: Domain, vcpu: int) -> ControlBlockView | None:
    """The FIFO control block vCPU ``vcpu`` registered with init_control, or None if it has none."""
    fifo = _fifo(d, "control blocks")
    if not isinstance(vcpu, int) or isinstance(vcpu, bool):
        raise TypeError(f"vcpu must be a vCPU number, got {vcpu!r}")
    if not 0 <= vcpu < len(d.vcpus):
        raise ValueError(f"dom{d.domain_id} has vCPUs 0..{len(d.vcpus) - 1}, not {vcpu}")
    return fifo.vcpus[vcpu].control_block


def event_word(d: Domain, port: int) -> int | None:
    """``port``'s FIFO event word, or None while no event-array page covers it."""
    return _fifo(d, "event words").word(_port(port))


def _port(port: object) -> int:
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"port must be a port number, got {port!r}")
    if not 0 <= port <= MAX_PORT:
        raise ValueError(f"port numbers are 0..{MAX_PORT} (evtchn_port_t), got {port}")
    return port


def _fifo(d: Domain, what: str):
    if d.fifo is None:
        raise ValueError(f"dom{d.domain_id} uses the 2-level ABI: it has no FIFO {what}")
    return d.fifo

"""The guest side: what a Linux-like kernel does with the memory Xen writes into.

``kernel`` is the ABI-independent half (drivers/xen/events/events_base.c); ``events_2l`` and
``events_fifo`` hold each ABI's ops and upcall consumer (events_2l.c, events_fifo.c), behind
``evtchn_ops.EvtchnOps`` (struct evtchn_ops); ``consumers`` is the upcall loop they share.
"""

from .consumers import Consumer
from .events_2l import TwoLevelConsumer, TwoLevelOps
from .events_fifo import FifoConsumer, FifoOps
from .evtchn_ops import EvtchnOps

__all__ = ["Consumer", "EvtchnOps", "FifoConsumer", "FifoOps", "TwoLevelConsumer", "TwoLevelOps"]

"""The guest side: what a Linux-like kernel does with the memory Xen writes into."""

from .consumers import Consumer, FifoConsumer, TwoLevelConsumer

__all__ = ["Consumer", "FifoConsumer", "TwoLevelConsumer"]

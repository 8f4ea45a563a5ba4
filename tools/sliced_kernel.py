"""A Jupyter kernel client that polls for replies in one-second slices.

With pyzmq 27 and jupyter_client 8.10 the asyncio poll of a kernel channel now and then misses the
wake-up for a reply that has already arrived (after cells that update widgets, about one run in
thirty for nbclient, one page load in seven for Voila: jupyter/nbclient#312, voila-dashboards/voila#1446);
it then sleeps until the timeout. Polling in slices bounds that stall to one slice. Used by the
notebook tests and benchmark (``SlicedKernelManager``) and by ``make present`` (tools/voila/voila.py).
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Type, default

POLL_SLICE = 1.0  # seconds: the longest a missed wake-up can stall a run


class SlicedChannel(AsyncZMQSocketChannel):
    """A kernel channel whose ``get_msg`` polls in slices of ``POLL_SLICE`` seconds.

    With pyzmq 27 and jupyter_client 8.10, the asyncio poll of the shell channel now and then misses
    the wake-up for an execute_reply that has already arrived (seen after cells that update widgets,
    about one run in thirty); it then sleeps until the cell timeout and only its final check finds
    the reply: a 120 s stall, not an error. Polling in slices bounds that stall to one slice.
    """

    async def get_msg(self, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SLICE if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await super().get_msg(timeout=min(POLL_SLICE, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class SlicedClient(AsyncKernelClient):
    shell_channel_class = Type(SlicedChannel)
    iopub_channel_class = Type(SlicedChannel)


class SlicedKernelManager(AsyncKernelManager):
    @default("client_factory")
    def _client_factory_default(self) -> type:
        return SlicedClient

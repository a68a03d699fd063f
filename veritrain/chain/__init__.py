"""The typed chain client. Importing this package imports web3 (~2 s): import it lazily
from CLI start-up paths (``from veritrain.chain import ChainClient`` inside the command)."""

from veritrain.chain.client import ChainClient
from veritrain.chain.contracts import BoundContract, bind
from veritrain.chain.events import Event, EventPoller

__all__ = ["BoundContract", "ChainClient", "Event", "EventPoller", "bind"]

"""Content-addressed storage: the ``Storage`` interface, IPFS, and local CID computation."""

from veritrain.storage.base import MemoryStorage, Storage, StorageUnreachableError
from veritrain.storage.cid import Cid, cid_of_bytes, cid_of_stream
from veritrain.storage.ipfs import IpfsStorage

__all__ = ["Cid", "IpfsStorage", "MemoryStorage", "Storage", "StorageUnreachableError", "cid_of_bytes",
           "cid_of_stream"]

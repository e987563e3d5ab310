"""Region backends: one adapter per region, one interface for all."""
from glancesync.adapters.base import CHUNK_SIZE, RegionAdapter

__all__ = ["CHUNK_SIZE", "RegionAdapter"]

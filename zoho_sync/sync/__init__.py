"""The sync engine: per-entity specs (data), pure payload functions, and the one push loop."""

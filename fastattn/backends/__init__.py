"""Per-backend implementations of the ops. Each module holds the host side of one backend for one
op family; the public front (fastattn.ops) validates arguments and picks the module."""

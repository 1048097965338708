"""The shared cache: built outputs kept under their output keys in a remote store (SPEC §7)."""

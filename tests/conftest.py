"""SANDBOX_TEST_HOT=N runs the suite with only N objects kept live in every store (the rest
compacted), to prove nothing relies on a stored dict staying the same object without a ``put``."""
import os

from simulator.core.store import MemoryStore

if os.environ.get("SANDBOX_TEST_HOT"):
    MemoryStore.HOT = int(os.environ["SANDBOX_TEST_HOT"])

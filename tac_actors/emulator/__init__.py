"""A local emulator of the Twilio products Agent Connect uses.

Conversation Orchestrator, Conversation Memory, Enterprise Knowledge, Studio and
Programmable Messaging, on one port, with the real paths, fields, status codes and
pagination, state in SQLite, a JSON seed, fault knobs and inspection of what was sent.
"""

from tac_actors.emulator.db import ApiError, Database
from tac_actors.emulator.faults import PRODUCTS, Faults
from tac_actors.emulator.inspection import RequestRecord
from tac_actors.emulator.seed import EXAMPLE_SEED, SeedError, load_seed, read_seed
from tac_actors.emulator.server import Emulator, run_emulator, serve_emulator

__all__ = [
    "EXAMPLE_SEED",
    "PRODUCTS",
    "ApiError",
    "Database",
    "Emulator",
    "Faults",
    "RequestRecord",
    "SeedError",
    "load_seed",
    "read_seed",
    "run_emulator",
    "serve_emulator",
]

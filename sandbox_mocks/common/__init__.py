"""Shared machinery of the sandbox mocks: fault injection, a loopback server, a simulated clock."""

from sandbox_mocks.common.clock import SimClock, install_clock
from sandbox_mocks.common.faults import (
    DownWindow,
    FaultConfig,
    FaultInjector,
    add_shutdown_hook,
    install_faults,
)
from sandbox_mocks.common.server import MockServer

__all__ = [
    "DownWindow",
    "FaultConfig",
    "FaultInjector",
    "MockServer",
    "SimClock",
    "add_shutdown_hook",
    "install_clock",
    "install_faults",
]

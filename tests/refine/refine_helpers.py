"""Shared by the refiner tests (a uniquely named module: every test folder has a conftest)."""

from studio.core.devices import DeviceChoice

CPU32 = DeviceChoice("cpu", "fp32", "tests")

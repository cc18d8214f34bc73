"""Fixtures for the detector tests."""

from __future__ import annotations

import pytest
from detector_fakes import CountingDetector


@pytest.fixture
def counting() -> CountingDetector:
    return CountingDetector()

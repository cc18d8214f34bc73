"""Fixtures of the decoder tests: one tiny random model per supported family (see ``tiny_models``)."""

from __future__ import annotations

import pytest
import torch

from tiny_models import BUILDERS, Case, get_case


@pytest.fixture(params=list(BUILDERS))
def case(request) -> Case:
    return get_case(request.param)


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny models run faster on one thread (no OpenMP hand-offs), and share the machine better."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

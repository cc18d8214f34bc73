"""VCD's diffusion noise and the token-row edits."""

from __future__ import annotations

import pytest
import torch

from halluguard.decoders.distortions import (
    diffusion_noise,
    insert_columns,
    keep_columns,
    left_pad,
    noise_coefficients,
)


def reference_noise(image: torch.Tensor, step: int, noise: torch.Tensor) -> torch.Tensor:
    """VCD's add_diffusion_noise, written out step by step with a given noise tensor."""
    betas = torch.sigmoid(torch.linspace(-6, 6, 1000)) * (0.5e-2 - 1e-5) + 1e-5
    alphas_prod = torch.cumprod(1 - betas, dim=0)
    return torch.sqrt(alphas_prod)[step] * image + torch.sqrt(1 - alphas_prod)[step] * noise


@pytest.mark.parametrize("step", [0, 1, 500, 999])
def test_noise_matches_the_reference_schedule(step):
    image = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    noised = diffusion_noise(image, step, torch.Generator().manual_seed(7))
    eps = torch.randn(image.shape, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(noised, reference_noise(image, step, eps))


def test_noise_is_seeded_and_leaves_the_global_rng_alone():
    image = torch.zeros(1, 3, 4, 4)
    state = torch.random.get_rng_state()
    a = diffusion_noise(image, 500, torch.Generator().manual_seed(3))
    b = diffusion_noise(image, 500, torch.Generator().manual_seed(3))
    c = diffusion_noise(image, 500, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(state, torch.random.get_rng_state())


def test_noise_keeps_dtype_and_grows_with_the_step():
    image = torch.ones(1, 3, 8, 8, dtype=torch.bfloat16)
    out = diffusion_noise(image, 10, torch.Generator().manual_seed(0))
    assert out.dtype == torch.bfloat16 and out.shape == image.shape
    signal = [noise_coefficients(t)[0] for t in (0, 250, 500, 999)]
    assert signal == sorted(signal, reverse=True) and signal[-1] < 0.3 and signal[0] > 0.99
    with pytest.raises(ValueError, match="noise_step"):
        noise_coefficients(1000)


def test_keep_columns_repads_every_row_aligned_tensor():
    ids = torch.tensor([[0, 0, 5, 9, 6], [4, 5, 9, 9, 6]])
    inputs = {
        "input_ids": ids,
        "attention_mask": (ids != 0).long(),
        "token_type_ids": torch.arange(5).repeat(2, 1),
        "pixel_values": torch.ones(1),
    }
    out = keep_columns(inputs, ids != 9, pad_token_id=0)
    assert out["input_ids"].tolist() == [[0, 5, 6], [4, 5, 6]]
    assert out["attention_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert out["token_type_ids"].tolist() == [[0, 2, 4], [0, 1, 4]]
    assert out["pixel_values"] is inputs["pixel_values"]


def test_insert_and_left_pad():
    ids = torch.tensor([[0, 5, 6], [4, 5, 6]])
    inputs = {
        "input_ids": ids,
        "attention_mask": (ids != 0).long(),
        "mm_token_type_ids": torch.ones(2, 3, dtype=torch.long),
    }
    out = insert_columns(inputs, [2, 1], [7, 8], pad_token_id=0)
    assert out["input_ids"].tolist() == [[0, 5, 7, 8, 6], [4, 7, 8, 5, 6]]
    assert out["mm_token_type_ids"].tolist() == [[1, 1, 0, 0, 1], [1, 0, 0, 1, 1]]
    padded = left_pad(out, 7, pad_token_id=0)
    assert padded["input_ids"][:, :2].tolist() == [[0, 0], [0, 0]]
    assert padded["attention_mask"].sum(1).tolist() == [4, 5]
    with pytest.raises(ValueError):
        left_pad(out, 3, pad_token_id=0)

"""The released-size checks write original files with each family's `to_original`; these tests prove that layout on
the parity cases, whose files the original code wrote: converting a case and writing it back gives that file."""

from __future__ import annotations

import pytest
import torch
from conftest import load_case
from released import beats, eat_byol_a_frame_mn, timm_vits
from released.common import assert_same_container
from transformers import AutoConfig

from audiozoo.conversion.verify import auto_class_for

LAYOUTS = {**beats.PARITY_LAYOUTS, **timm_vits.PARITY_LAYOUTS, **eat_byol_a_frame_mn.PARITY_LAYOUTS}


@pytest.mark.parametrize("case_name", sorted(LAYOUTS))
def test_written_layout_equals_the_original_file(case_name, converted_dir):
    folder = converted_dir(case_name)
    model = auto_class_for(AutoConfig.from_pretrained(folder)).from_pretrained(folder, dtype=torch.float32)
    write, read_original = LAYOUTS[case_name]
    case = load_case(case_name)
    assert_same_container(write(model), read_original(case.checkpoint))

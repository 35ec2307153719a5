"""Model cards: every release renders completely, the generated files are current, conversions get a card."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from audiozoo import BeatsConfig
from audiozoo.hub.model_cards import BEATS_RELEASES, RELEASES, find_release, render_model_card

from conftest import REPO


def front_matter(card: str) -> dict[str, str]:
    assert card.startswith("---\n")
    block = card.split("---\n")[1]
    return {line.split(":")[0]: line.split(":", 1)[1].strip() for line in block.splitlines() if ":" in line}


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.hub_id)
def test_every_release_renders(release):
    card = render_model_card(release)
    meta = front_matter(card)
    assert meta["library_name"] == "transformers" and meta["license"] == ("other" if release.family == "ast" else "mit")
    expected_tag = "audio-classification" if release.kind in ("finetuned", "sed") else "feature-extraction"
    assert meta["pipeline_tag"] == expected_tag
    assert release.hub_id in card and release.original_filename in card
    assert not re.search(r"\{[a-z_]+\}", card), "unfilled placeholder"


def test_release_table_covers_the_original_release():
    files = {release.original_filename for release in BEATS_RELEASES}
    assert len(BEATS_RELEASES) == 19  # 5 pre-trained, 10 fine-tuned, 4 tokenizers
    assert "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt" in files and "Tokenizer_iter3.pt" in files
    assert len({release.hub_id for release in RELEASES}) == len(RELEASES)
    assert find_release("audioset_16_16_0.4422.pth").family == "ast"
    assert find_release("AudioNTT2022-BYOLA-64x96d2048.pth").hub_id == "audiozoo/byol-a-v2-d3072"
    assert find_release("BEATs_iter3.pt").kind == "pretrained"
    assert find_release("original.pt") is None
    sed = [release for release in RELEASES if release.original_filename.endswith(("_strong_1.pt", "_weak.pt", "_ssl.pt"))]
    assert len(sed) == 17  # 5 transformers x {strong_1, weak, ssl} + frame_mn06/10 strong_1
    assert find_release("frame_mn10_strong_1.pt").kind == "sed"


def test_sed_conversion_writes_a_sed_card(converted_dir):
    card = (converted_dir("sed_atstf_tiny") / "README.md").read_text()  # the case file keeps the release name
    assert "# ATST-Frame (PretrainedSED) strong_1 (sed)" in card
    assert 'pipeline("sound-event-detection"' in card and "--model_name ATST-F" in card


def test_generic_card_from_a_config():
    config = BeatsConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                         patch_embed_dim=48)
    card = render_model_card(None, config)
    assert "| layers | 2 |" in card and "6.25 steps per second" in card
    with pytest.raises(ValueError, match="needs a release entry or a config"):
        render_model_card(None)


def test_conversions_write_a_card_for_their_family(converted_dir):
    for case, name in (("ast_tiny_f10", "AST"), ("eat_tiny_finetuned", "EAT"), ("beats_tiny_ssl", "BEATs")):
        card = (converted_dir(case) / "README.md").read_text()
        assert f"# {name} (converted)" in card and "| layers | 2 |" in card
    # the BYOL-A case's file keeps the released name, so its card is the release's
    card = (converted_dir("byola_v1_d512") / "README.md").read_text()
    assert "# BYOL-A v1 d512 (pretrained)" in card and "| conv blocks | 3 |" in card


def test_generated_cards_are_up_to_date(tmp_path):
    subprocess.run([sys.executable, str(REPO / "model_cards" / "generate.py"), "--output", str(tmp_path)],
                   check=True, capture_output=True)
    for generated in tmp_path.iterdir():
        committed = REPO / "model_cards" / generated.name
        assert committed.is_file(), f"{generated.name} missing: run python model_cards/generate.py"
        assert committed.read_text() == generated.read_text(), f"{generated.name} is stale"

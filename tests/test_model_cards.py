"""Model cards: every release renders completely, the generated files are current, conversions get a card; every
card parses as a Hub model card, names the right license and the file it was read in, and reports only the
authors' figures, with sources; weights that may not be redistributed get no Hub repository."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from huggingface_hub import ModelCard

from audiozoo import BeatsConfig, ByolAConfig
from audiozoo.hub.model_cards import (
    BEATS_RELEASES,
    LICENSES,
    RELEASES,
    REPORTED_NOTES,
    REPORTED_RESULTS,
    find_release,
    render_finetuned_card,
    render_model_card,
)

from conftest import REPO

# The license of each card's weights, per family (and per PretrainedSED stage), as read in the original
# repositories (issue 14): family -> {stage or "*": (Hub license id, license_name or None, rehostable)}
NTT = ("other", "ntt-software-license-agreement-for-evaluation", False)
NTT_M2D = ("other", "ntt-software-license-agreement-for-evaluation-m2d", False)
NO_LICENSE = ("other", "asit-no-license-all-rights-reserved", False)
MIT = ("mit", None, True)
EXPECTED_LICENSES = {
    "beats": {"*": MIT},
    "ast": {"*": ("bsd-3-clause", None, True)},
    "eat": {"*": MIT},
    "byol_a": {"*": NTT},
    "beats_sed": {"*": MIT},
    "atst_frame": {"strong_1": MIT, "weak": MIT, "ssl": ("cc-by-4.0", None, True)},
    "fpasst": {"strong_1": MIT, "weak": MIT, "ssl": ("apache-2.0", None, True)},
    "frame_mn": {"*": MIT},
    "m2d": {"*": NTT_M2D},
    "asit": {"*": NO_LICENSE},
}
HUB_LICENSE_IDS = {"mit", "bsd-3-clause", "apache-2.0", "cc-by-4.0", "other"}  # ids of the Hub's license list
NOT_REHOSTED = [release for release in RELEASES if not release.rehostable]


def expected_license(release) -> tuple[str, str | None, bool]:
    table = EXPECTED_LICENSES[release.family]
    return table.get(release.iteration) or table["*"]


def front_matter(card: str) -> dict[str, str]:
    assert card.startswith("---\n")
    block = card.split("---\n")[1]
    return {line.split(":")[0]: line.split(":", 1)[1].strip() for line in block.splitlines() if ":" in line}


def parse(card: str) -> ModelCard:
    """The card as the Hub library reads it; metadata errors (a malformed model-index included) raise."""
    parsed = ModelCard(card, ignore_metadata_errors=False)
    assert parsed.data.library_name == "transformers"
    assert parsed.data.license in HUB_LICENSE_IDS
    if parsed.data.license == "other":  # the Hub wants a name and a link for a license of its own
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", parsed.data.license_name)
        assert parsed.data.license_link.startswith("https://github.com/")
    else:
        assert parsed.data.license_name is None and parsed.data.license_link is None
    assert ModelCard(str(parsed), ignore_metadata_errors=False).data.to_dict() == parsed.data.to_dict()  # round trip
    return parsed


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.name)
def test_every_release_renders(release):
    card = render_model_card(release)
    meta = front_matter(card)
    assert meta["library_name"] == "transformers"
    expected_tag = "audio-classification" if release.kind in ("finetuned", "sed") else "feature-extraction"
    assert meta["pipeline_tag"] == expected_tag
    assert release.name in card and release.original_filename in card
    assert not re.search(r"\{[a-z_]+\}", card), "unfilled placeholder"


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.name)
def test_every_card_is_a_valid_hub_card_with_the_right_license_and_its_source(release):
    card = render_model_card(release)
    data = parse(card).data
    hub, name, rehostable = expected_license(release)
    assert (data.license, data.license_name, release.rehostable) == (hub, name, rehostable)
    primary, lineage = release.license
    if name:
        assert data.license_link == primary.url
    # the source of every license is named: repository, file (or its absence) and the commit read, with a link
    section = card.split("\n## License\n", 1)[1].split("\n## Limitations\n")[0]
    for source in (primary, *lineage):
        assert source.repo in section and source.commit[:8] in section and source.url in section
        assert (f"`{source.path}`" in section) if source.path else ("no license file" in section)
    assert ("Redistribution is not allowed" in section) == (not rehostable)


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.name)
def test_results_are_the_authors_with_sources(release):
    parsed = parse(render_model_card(release))
    results = REPORTED_RESULTS.get(release.name, ())
    evals = parsed.data.eval_results or []
    assert len(evals) == len(results)
    if evals:
        assert parsed.data.model_name == release.name
    for result in evals:
        assert result.source_url.startswith("https://") and result.source_name
        assert "reported by the authors" in result.metric_name
        assert result.task_type and result.dataset_type and result.dataset_name and result.metric_type
        assert isinstance(result.metric_value, float)
    section = str(parsed).split("\n## Results reported by the authors\n", 1)[1].split("\n## License\n")[0]
    for result in results:
        assert f"| {result.value} |" in section and result.source_url in section
    note = REPORTED_NOTES.get(release.name)
    if note:
        assert note in section
    if not results and not note:
        assert "The authors report no figures for this file." in section


def test_model_index_holds_only_figures_of_the_exact_file():
    """The figures of the research (issue 14): model-index only where the authors give them for that file."""
    values = {name: [(result.dataset, result.value) for result in results]
              for name, results in REPORTED_RESULTS.items()}
    assert values["ast-audioset-10-10-0.4593"] == [("AudioSet (evaluation set)", "0.459")]
    assert [v for (_, v) in values["ast-audioset-10-10-0.4495"]] == ["0.450"]
    assert values["ast-speechcommands-10-10-0.9812"][0][1] == "0.9812"
    assert values["eat-base-epoch10-finetuned-as2m"][0][1] == "48.6"
    assert values["eat-base-epoch10-finetuned-as20k"][0][1] == "40.3"
    assert values["eat-large-epoch20-finetuned-as2m"][0][1] == "49.5"
    assert [v for (_, v) in values["byol-a-v1-d2048"]] == ["74.1", "79.1", "40.1", "90.2", "91.0", "92.2"]
    assert values["pretrainedsed-frame-mn10-strong"][0][1] == "43.26"
    assert values["pretrainedsed-frame-mn06-strong"][0][1] == "40.81"
    # AST (8) + EAT fine-tuned (4) + BYOL-A v1 (3) + frame_mn (2); nothing for BEATs, EAT pre-trained, BYOL-A v2 or
    # the PretrainedSED transformers, whose figures are the model's (or averages of three runs), not the file's
    assert len(REPORTED_RESULTS) == 17
    assert not any(name.startswith(("beats-", "byol-a-v2", "eat-base-epoch10-pretrained")) for name in REPORTED_RESULTS)
    assert not any(name.startswith("pretrainedsed-") and "frame-mn" not in name for name in REPORTED_RESULTS)
    for name in ("beats-iter3-finetuned-as2m-cpt1", "pretrainedsed-m2d-strong", "eat-large-epoch20-pretrained"):
        assert re.search(r"not (for|a measurement of|as a measurement of) this file", REPORTED_NOTES[name])
    assert "averaged over three runs" in REPORTED_NOTES["pretrainedsed-atst-frame-strong"]
    assert "48.0 mAP" in REPORTED_NOTES["beats-iter3-finetuned-as2m-cpt2"]


@pytest.mark.parametrize("release", NOT_REHOSTED, ids=lambda r: r.name)
def test_weights_that_may_not_be_redistributed_have_no_hub_repository(release):
    assert release.family in ("byol_a", "m2d", "asit") and release.hub_id is None
    card = render_model_card(release)
    assert f"audiozoo/{release.name}" not in card
    assert "## Not re-hosted: convert your own copy" in card and "No Hub copy" in card
    steps = card.split("## Not re-hosted: convert your own copy", 1)[1].split("\n## Use\n")[0]
    assert "pip install audiozoo" in steps and release.url in steps and "do not push it to the Hub" in steps
    command = re.search(r"audiozoo convert \S+ --checkpoint_path (\S+) .*--pytorch_dump_folder_path (\S+)", steps)
    assert command and command[1] == release.original_filename and command[2] == release.name
    assert f'from_pretrained("{release.name}")' in card  # used from the converted folder, not from the Hub


def test_the_index_lists_no_hub_repository_for_weights_that_may_not_be_redistributed():
    index = (REPO / "model_cards" / "README.md").read_text()
    assert len(NOT_REHOSTED) == 10  # BYOL-A 4, M2D 3, ASiT 3
    for release in NOT_REHOSTED:
        row = next(line for line in index.splitlines() if line.startswith(f"| [{release.name}]("))
        assert "audiozoo/" not in row and "not re-hosted" in row
    for release in RELEASES:
        if release.rehostable:
            assert f"`audiozoo/{release.name}`" in index


def test_release_table_covers_the_original_release():
    files = {release.original_filename for release in BEATS_RELEASES}
    assert len(BEATS_RELEASES) == 19  # 5 pre-trained, 10 fine-tuned, 4 tokenizers
    assert "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt" in files and "Tokenizer_iter3.pt" in files
    assert len({release.name for release in RELEASES}) == len(RELEASES)
    assert find_release("audioset_16_16_0.4422.pth").family == "ast"
    assert find_release("AudioNTT2022-BYOLA-64x96d2048.pth").name == "byol-a-v2-d3072"
    assert find_release("AudioNTT2022-BYOLA-64x96d2048.pth").hub_id is None
    assert find_release("BEATs_iter3.pt").kind == "pretrained"
    assert find_release("original.pt") is None
    sed = [release for release in RELEASES if release.original_filename.endswith(("_strong_1.pt", "_weak.pt", "_ssl.pt"))]
    assert len(sed) == 17  # 5 transformers x {strong_1, weak, ssl} + frame_mn06/10 strong_1
    assert find_release("frame_mn10_strong_1.pt").kind == "sed"
    # EAT's Google Drive files are linked without names: the entries hold the README's labels and never match a file
    eat = [release for release in RELEASES if release.family == "eat"]
    assert len(eat) == 7 and not any(release.filename_known for release in eat)
    assert all(release.url.startswith("https://drive.google.com/") for release in eat)
    assert all(find_release(release.original_filename) is None for release in eat)
    card = render_model_card(eat[0])
    assert "--checkpoint_path CHECKPOINT.pt" in card and "does not give its file name" in card


def test_every_license_source_was_read_at_a_commit():
    for source in LICENSES.values():
        assert re.fullmatch(r"[0-9a-f]{40}", source.commit) and source.terms
        assert (re.fullmatch(r"[0-9a-f]{40}", source.file_commit) is not None) == bool(source.path)
        assert source.rehostable == (source.hub != "other")
        assert source.rehostable or source.restriction


def test_sed_conversion_writes_a_sed_card(converted_dir):
    card = (converted_dir("sed_atstf_tiny") / "README.md").read_text()  # the case file keeps the release name
    assert "# ATST-Frame (PretrainedSED) strong_1 (sed)" in card
    assert 'pipeline("sound-event-detection"' in card and "--model_name ATST-F" in card
    assert parse(card).data.license == "mit"


def test_generic_card_from_a_config():
    config = BeatsConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                         patch_embed_dim=48)
    card = render_model_card(None, config)
    assert "| layers | 2 |" in card and "6.25 steps per second" in card
    data = parse(card).data
    assert data.license == "mit" and not data.eval_results
    assert "None: this card describes a conversion of a checkpoint of one's own." in card
    with pytest.raises(ValueError, match="needs a release entry or a config"):
        render_model_card(None)
    # a BYOL-A folder of one's own (e.g. pushed without a card) keeps NTT's terms and is told to check before sharing
    card = render_model_card(None, ByolAConfig(), hub_id="me/byola")
    assert parse(card).data.license_name == "ntt-software-license-agreement-for-evaluation"
    assert "Check before sharing" in card and "## Not re-hosted" not in card


def test_finetuned_cards_inherit_the_base_license():
    results = {"metric": "accuracy", "test": {"accuracy": 0.5}, "history": [],
               "settings": {"model": "/runs/byola_v2_d3072", "data": "/data/tones.csv"}}
    config = ByolAConfig(id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1})
    card = render_finetuned_card(config, results, "me/tones")
    data = parse(card).data
    assert (data.license, data.license_name) == ("other", "ntt-software-license-agreement-for-evaluation")
    assert "keep this model to yourself" in card and "their terms hold for it too" in card
    assert "Redistribution is not allowed" in card and LICENSES["byol_a"].url in card
    config = BeatsConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                         patch_embed_dim=48, id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1})
    results["settings"]["model"] = "audiozoo/beats-iter3-plus-as2m"
    card = render_finetuned_card(config, results, "me/esc")
    data = parse(card).data
    assert data.license == "mit" and data.base_model == "audiozoo/beats-iter3-plus-as2m"
    assert LICENSES["beats"].url in card and "Check before sharing" not in card


def test_conversions_write_a_card_for_their_family(converted_dir):
    for case, name in (("ast_tiny_f10", "AST"), ("eat_tiny_finetuned", "EAT"), ("beats_tiny_ssl", "BEATs")):
        card = (converted_dir(case) / "README.md").read_text()
        assert f"# {name} (converted)" in card and "| layers | 2 |" in card
        parse(card)
    # the BYOL-A case's file keeps the released name, so its card is the release's
    card = (converted_dir("byola_v1_d512") / "README.md").read_text()
    assert "# BYOL-A v1 d512 (pretrained)" in card and "| conv blocks | 3 |" in card
    assert parse(card).data.license == "other" and "## Not re-hosted: convert your own copy" in card


def test_generated_cards_are_up_to_date(tmp_path):
    subprocess.run([sys.executable, str(REPO / "model_cards" / "generate.py"), "--output", str(tmp_path)],
                   check=True, capture_output=True)
    for generated in tmp_path.iterdir():
        committed = REPO / "model_cards" / generated.name
        assert committed.is_file(), f"{generated.name} missing: run python model_cards/generate.py"
        assert committed.read_text() == generated.read_text(), f"{generated.name} is stale"
        if generated.name != "README.md":
            parse(committed.read_text())

"""Model cards: one template, filled per released checkpoint (model_cards/*.md) or per user conversion."""

from __future__ import annotations

from dataclasses import dataclass

BEATS_SOURCE = "https://github.com/microsoft/unilm/tree/master/beats"
BEATS_CITATION = """@inproceedings{chen2023beats,
  title     = {{BEATs}: Audio Pre-Training with Acoustic Tokenizers},
  author    = {Chen, Sanyuan and Wu, Yu and Wang, Chengyi and Liu, Shujie and Tompkins, Daniel and Chen, Zhuo and Che, Wanxiang and Yu, Xiangzhan and Wei, Furu},
  booktitle = {Proceedings of the 40th International Conference on Machine Learning (ICML)},
  year      = {2023},
  note      = {arXiv:2212.09058}
}"""


@dataclass(frozen=True)
class ReleasedCheckpoint:
    """One checkpoint of an original release and where it goes on the Hub."""

    hub_id: str
    original_filename: str
    kind: str  # "pretrained" | "finetuned" | "tokenizer"
    iteration: str
    description: str


def _beats_releases() -> list[ReleasedCheckpoint]:
    iterations = [
        ("iter1", "BEATs_iter1", None, "iter1"),
        ("iter2", "BEATs_iter2", "Tokenizer_iter2", "iter2"),
        ("iter3", "BEATs_iter3", "Tokenizer_iter3", "iter3"),
        ("iter3+ (AS20K)", "BEATs_iter3_plus_AS20K", "Tokenizer_iter3_plus_AS20K", "iter3-plus-as20k"),
        ("iter3+ (AS2M)", "BEATs_iter3_plus_AS2M", "Tokenizer_iter3_plus_AS2M", "iter3-plus-as2m"),
    ]
    releases = []
    for label, stem, tokenizer, slug in iterations:
        releases.append(ReleasedCheckpoint(
            f"audiozoo/beats-{slug}", f"{stem}.pt", "pretrained", label,
            f"BEATs {label} self-supervised audio encoder (AudioSet-2M pre-training), without a classification head.",
        ))
        for checkpoint in (1, 2):
            releases.append(ReleasedCheckpoint(
                f"audiozoo/beats-{slug}-finetuned-as2m-cpt{checkpoint}", f"{stem}_finetuned_on_AS2M_cpt{checkpoint}.pt",
                "finetuned", label,
                f"BEATs {label} fine-tuned on AudioSet-2M (527 classes, multi-label), checkpoint {checkpoint} of 2 "
                "(cpt1: the paper's default fine-tuning; cpt2: lr 5e-5 for 100k steps, released for ensembles).",
            ))
        if tokenizer:
            releases.append(ReleasedCheckpoint(
                f"audiozoo/beats-tokenizer-{slug}", f"{tokenizer}.pt", "tokenizer", label,
                f"BEATs {label} acoustic tokenizer: encoder plus a 1024-entry codebook; maps 16x16 patches to ids.",
            ))
    return releases


BEATS_RELEASES: list[ReleasedCheckpoint] = _beats_releases()


def find_release(original_filename: str) -> ReleasedCheckpoint | None:
    """The release entry for an original file name, or None for a checkpoint of one's own."""
    for release in BEATS_RELEASES:
        if release.original_filename == original_filename:
            return release
    return None


TEMPLATE = """---
library_name: transformers
license: mit
pipeline_tag: {pipeline_tag}
tags:
- audio
- beats
- audiozoo
datasets:
- agkphysics/AudioSet
---

# {title}

{description}

A port of the original [BEATs code]({source}) to Hugging Face `transformers`, by the audiozoo
package. Converted from `{original_filename}` (listed in the original
README, hosted on OneDrive) with `audiozoo convert beats --checkpoint_path {original_filename}
--pytorch_dump_folder_path OUT`. The port reproduces the original code's outputs: the audiozoo test suite
checks features, every hidden state, patch masks and head outputs against outputs that the original code
computed on checkpoints in the original format.

## Use

```python
import torch, audiozoo  # pip install audiozoo; importing registers the model with the Auto classes
from transformers import AutoFeatureExtractor, {model_class}

feature_extractor = AutoFeatureExtractor.from_pretrained("{hub_id}")
model = {model_class}.from_pretrained("{hub_id}", dtype=torch.float32)
inputs = feature_extractor([waveform_16k], sampling_rate=16000)  # mono float32 at 16 kHz
outputs = model(**inputs)
```
{usage}
## Input and output

- Mono float waveforms at **16 kHz**. The feature extractor computes the original front end (samples x 2^15,
  128-bin Kaldi filterbank, 25 ms / 10 ms frames, `(fbank - 15.41663) / (2 * 6.55582)`) in batched torch and
  refuses other sampling rates; `pipeline(...)` and the `audiozoo` CLI resample with soxr.
- The encoder returns 16x16 patch tokens in time-major order (8 frequency patches per time step of 160 ms),
  `hidden_states` of every layer on request, and the patch-level `attention_mask` it used.
- `AutoModelForAudioFrameClassification` gives one prediction per time step: `config.frame_rate` =
  {frame_rate:g} steps per second.

{architecture}
## Limitations

- Needs `transformers>=5`. With `import audiozoo` the package's code is used; without it, pass
  `trust_remote_code=True` to load the copy of the code stored with the weights.
- Padding follows the original exactly by default: a partly padded time step of a shorter clip in a batch
  counts as audio. Set `padding_mask_rule="exact"` in the config and the feature extractor for outputs that do
  not depend on batching.
- Evaluation figures: see the paper; this card reports none of its own.

## Citation

```bibtex
{citation}
```
"""

USAGE = {
    "finetuned": """
```python
from transformers import pipeline
classify = pipeline("audio-classification", model="{hub_id}")
classify("clip.wav", top_k=5)  # any rate, any channels: decoded with soundfile, resampled with soxr
```
Command line: `audiozoo classify clip.wav --model {hub_id}`. The labels come from the checkpoint's
`label_dict` (AudioSet MIDs, mapped to display names; `config.label_mids` keeps the MIDs). Its order is not the
order of AudioSet's class_labels_indices.csv. Multi-label: apply a sigmoid to `logits` (the pipeline does).
""",
    "pretrained": """
Embeddings from the command line: `audiozoo embed clip.wav --model {hub_id} --output emb.npy`
(mean of the patch tokens; `--level frame` for one vector per 160 ms).
""",
    "tokenizer": """
`outputs.codebook_ids` [batch, patches] are the acoustic tokens (the original returns them flattened);
`outputs.quantizer_input` is the projection before the l2-normalised nearest-neighbour lookup.
""",
}

MODEL_CLASSES = {
    "finetuned": "AutoModelForAudioClassification",
    "pretrained": "AutoModel",
    "tokenizer": "AutoModel",
}


def _architecture_table(config) -> str:
    if config is None:
        return ""
    rows = [
        ("layers", config.num_hidden_layers),
        ("hidden size", config.hidden_size),
        ("attention heads", config.num_attention_heads),
        ("patch size", config.patch_size),
    ]
    if getattr(config, "codebook_size", None):
        rows.append(("codebook", f"{config.codebook_size} x {config.codebook_dim}"))
    elif config.id2label and getattr(config, "label_mids", None):
        rows.append(("labels", len(config.id2label)))
    lines = ["## Architecture", "", "| | |", "| --- | --- |"] + [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def render_model_card(release: ReleasedCheckpoint | None, config=None) -> str:
    """The card of a released checkpoint, or a generic one (from the config) for a user's own conversion."""
    if release is None:
        if config is None:
            raise ValueError("render_model_card needs a release entry or a config")
        kind = "tokenizer" if getattr(config, "codebook_size", None) else (
            "finetuned" if getattr(config, "label_mids", None) or config.problem_type else "pretrained")
        release = ReleasedCheckpoint(
            "path/to/converted-model", "original checkpoint", kind, "",
            "A BEATs model converted from a checkpoint in the original microsoft/unilm format.",
        )
    title = f"BEATs {release.iteration} ({release.kind})" if release.iteration else "BEATs (converted)"
    frame_rate = config.frame_rate if config is not None else 6.25
    return TEMPLATE.format(
        pipeline_tag="audio-classification" if release.kind == "finetuned" else "feature-extraction",
        title=title,
        description=release.description,
        source=BEATS_SOURCE,
        original_filename=release.original_filename,
        model_class=MODEL_CLASSES[release.kind],
        hub_id=release.hub_id,
        usage=USAGE[release.kind].format(hub_id=release.hub_id),
        frame_rate=frame_rate,
        architecture=_architecture_table(config),
        citation=BEATS_CITATION,
    )

"""Model cards: one template, filled per released checkpoint (model_cards/*.md) or per user conversion."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..families import family_of


@dataclass(frozen=True)
class Family:
    """What a card says about a model family."""

    key: str
    name: str
    source: str
    hosting: str
    citation: str
    front_end: str
    tokens: str
    convert: str
    license: str = "mit"
    dataset_tag: str = "agkphysics/AudioSet"


FAMILIES: dict[str, Family] = {
    "beats": Family(
        key="beats",
        name="BEATs",
        source="https://github.com/microsoft/unilm/tree/master/beats",
        hosting="listed in the original README, hosted on OneDrive",
        citation="""@inproceedings{chen2023beats,
  title     = {{BEATs}: Audio Pre-Training with Acoustic Tokenizers},
  author    = {Chen, Sanyuan and Wu, Yu and Wang, Chengyi and Liu, Shujie and Tompkins, Daniel and Chen, Zhuo and Che, Wanxiang and Yu, Xiangzhan and Wei, Furu},
  booktitle = {Proceedings of the 40th International Conference on Machine Learning (ICML)},
  year      = {2023},
  note      = {arXiv:2212.09058}
}""",
        front_end="samples x 2^15, 128-bin Kaldi filterbank (povey window, 25 ms / 10 ms frames), "
        "`(fbank - 15.41663) / (2 * 6.55582)`; any length",
        tokens="16x16 patch tokens in time-major order (8 frequency patches per time step of 160 ms), and the "
        "patch-level `attention_mask` it used",
        convert="audiozoo convert beats --checkpoint_path {file} --pytorch_dump_folder_path OUT",
    ),
    "ast": Family(
        key="ast",
        name="AST",
        source="https://github.com/YuanGongND/ast",
        hosting="listed in the original README (Dropbox links)",
        citation="""@inproceedings{gong21b_interspeech,
  title     = {{AST}: Audio Spectrogram Transformer},
  author    = {Gong, Yuan and Chung, Yu-An and Glass, James},
  booktitle = {Proc. Interspeech 2021},
  year      = {2021},
  note      = {arXiv:2104.01778}
}""",
        front_end="waveform minus its mean, 128-bin Kaldi filterbank (hanning window, 25 ms / 10 ms frames), "
        "padded with 0.0 (log domain) to `max_length` frames, then `(fbank - mean) / (2 * std)`; longer clips "
        "need `truncation=True`",
        tokens="the cls and distillation tokens, then patch tokens in frequency-major order; `pooler_output` is "
        "their mean, as the original pools",
        convert="audiozoo convert ast --checkpoint_path {file} --pytorch_dump_folder_path OUT",
        license="other",  # no license file in the stored copy of the original repository: see its page
    ),
    "eat": Family(
        key="eat",
        name="EAT",
        source="https://github.com/cwx-worst-one/EAT",
        hosting="released by the authors (fairseq checkpoints on Google Drive; also worstchan/* on the Hub)",
        citation="""@inproceedings{chen2024eat,
  title     = {{EAT}: Self-Supervised Pre-Training with Efficient Audio Transformer},
  author    = {Chen, Wenxi and Liang, Yuzhe and Ma, Ziyang and Zheng, Zhisheng and Chen, Xie},
  booktitle = {Proceedings of the 33rd International Joint Conference on Artificial Intelligence (IJCAI)},
  year      = {2024},
  note      = {arXiv:2401.03497}
}""",
        front_end="waveform minus its mean, 128-bin Kaldi filterbank (hanning window, 25 ms / 10 ms frames), "
        "padded with 0.0 (log domain) to `max_length` frames, then `(fbank - (-4.268)) / (2 * 4.569)`; longer clips "
        "need `truncation=True`",
        tokens="the CLS (utterance) token, then 16x16 patch tokens in time-major order; `pooler_output` is the CLS",
        convert="audiozoo convert eat --checkpoint_path {file} --pytorch_dump_folder_path OUT",
    ),
    "byol_a": Family(
        key="byol_a",
        name="BYOL-A",
        source="https://github.com/nttcslab/byol-a",
        hosting="released in the original repository (pretrained_weights/, v2/)",
        citation="""@inproceedings{niizumi2021byol-a,
  title     = {{BYOL} for Audio: Self-Supervised Learning for General-Purpose Audio Representation},
  author    = {Niizumi, Daisuke and Takeuchi, Daiki and Ohishi, Yasunori and Harada, Noboru and Kashino, Kunio},
  booktitle = {International Joint Conference on Neural Networks (IJCNN)},
  year      = {2021},
  note      = {arXiv:2103.06695; v2: IEEE/ACM TASLP 31 (2023), arXiv:2204.07402}
}""",
        front_end="64-bin log-mel, 1024-point FFT, 10 ms hop, 60-7800 Hz (v1: HTK scale; v2: Slaney scale and area "
        "norm), `log(x + eps)`, then `(x - mean) / std` with statistics of YOUR dataset (compute them with "
        "`feature_extractor.compute_norm_stats(clips)`); any length of at least 70 ms",
        tokens="frame features [B, T', d] (80 ms frames for v1, 40 ms for v2) and the embedding max_t + mean_t as "
        "`pooler_output`",
        convert="audiozoo convert byol_a --checkpoint_path {file} --pytorch_dump_folder_path OUT --norm_stats MEAN STD",
        dataset_tag="agkphysics/AudioSet",
    ),
}

SED_SOURCE = "https://github.com/fschmid56/PretrainedSED"
SED_HOSTING = "GitHub release v0.0.1 of fschmid56/PretrainedSED"
SED_CITATION = """@inproceedings{schmid2025pretrainedsed,
  title     = {Effective Pre-Training of Audio Transformers for Sound Event Detection},
  author    = {Schmid, Florian and Morocutti, Tobias and Foscarin, Francesco and Schl{\\"u}ter, Jan and Primus, Paul and Widmer, Gerhard},
  booktitle = {IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  pages     = {1--5},
  year      = {2025},
  doi       = {10.1109/ICASSP49660.2025.10888942},
  note      = {arXiv:2409.09546}
}"""
SED_CONVERT = "audiozoo convert pretrained_sed --checkpoint_path {file} --model_name {name} --pytorch_dump_folder_path OUT"
SED_TOKENS = "the encoder sequence the original wrapper returns ({detail}); the frame classifier resamples it to 250 " \
    "frames per 10 s"
FAMILIES.update({
    "atst_frame": Family("atst_frame", "ATST-Frame (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                         "64-bin mel power (1024/160, 60-7800 Hz) in dB with an 80 dB floor per clip, clamped to "
                         "[-50, 80] and min-max scaled; at most 10 s per window",
                         SED_TOKENS.format(detail="250 tokens of 4 frames x 64 bins per 10 s"), SED_CONVERT),
    "fpasst": Family("fpasst", "frame-PaSST (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                     "pre-emphasis, 128-bin Kaldi-scale mel (400-sample periodic hann in a 512 FFT, 160 hop, 0-7000 Hz), "
                     "`(log(x) + 4.5) / 5`; at most 10 s per window",
                     SED_TOKENS.format(detail="250 tokens per 10 s after a convolutional stem"), SED_CONVERT),
    "asit": Family("asit", "ASiT (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                   "waveform minus its mean, 128-bin Kaldi filterbank (hanning window), `(fbank + 4.268) / (2 * 4.569)`",
                   SED_TOKENS.format(detail="CLS + 62 x 8 time-major patch tokens per 10 s"), SED_CONVERT),
    "m2d": Family("m2d", "M2D (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                  "80-bin Slaney mel with area norm (400/160, 50-8000 Hz), `(log(x + eps) + 7.1) / 4.2`",
                  SED_TOKENS.format(detail="62 frames of 5 stacked 16x16 patch tokens per 10 s"), SED_CONVERT),
    "frame_mn": Family("frame_mn", "frame-MobileNet (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                       "as fPaSST but with a symmetric hann window",
                       SED_TOKENS.format(detail="one feature vector per 40 ms"), SED_CONVERT),
    "beats_sed": Family("beats_sed", "BEATs (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                        "samples x 2^15, 128-bin Kaldi filterbank (povey window), `(fbank - 15.41663) / (2 * 6.55582)`",
                        SED_TOKENS.format(detail="62 x 8 time-major patch tokens per 10 s"), SED_CONVERT),
})


@dataclass(frozen=True)
class ReleasedCheckpoint:
    """One checkpoint of an original release and where it goes on the Hub."""

    hub_id: str
    original_filename: str
    kind: str  # "pretrained" | "finetuned" | "tokenizer"
    iteration: str
    description: str
    family: str = "beats"


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


def _ast_releases() -> list[ReleasedCheckpoint]:
    audioset = [("10_10_0.4593", "weight-averaged, the best single model"), ("10_10_0.4495", "ensemble member"),
                ("10_10_0.4483", "ensemble member"), ("10_10_0.4475", "ensemble member"), ("12_12_0.4467", ""),
                ("14_14_0.4431", ""), ("16_16_0.4422", "")]
    releases = []
    for name, note in audioset:
        stride = name.split("_")[0]
        score = name.split("_")[2]
        detail = f"; {note}" if note else ""
        releases.append(ReleasedCheckpoint(
            f"audiozoo/ast-audioset-{name.replace('_', '-')}", f"audioset_{name}.pth", "finetuned",
            f"AudioSet, stride {stride}",
            f"AST fine-tuned on AudioSet-2M (527 classes, multi-label), patch stride {stride}/{stride}, 1024 frames "
            f"(10.24 s); the file name gives its AudioSet mAP, {score}{detail}. Convert with `--dataset audioset`.",
            family="ast",
        ))
    releases.append(ReleasedCheckpoint(
        "audiozoo/ast-speechcommands-10-10-0.9812", "speechcommands_10_10_0.9812.pth", "finetuned",
        "Speech Commands V2", "AST fine-tuned on Speech Commands V2 (35 classes), 128 frames (1.28 s); test accuracy "
        "0.9812 per the file name. Convert with `--dataset speechcommands`.", family="ast",
    ))
    return releases


def _eat_releases() -> list[ReleasedCheckpoint]:
    entries = [
        ("eat-base-epoch10-pretrained", "EAT-base epoch 10 pre-trained", "pretrained",
         "EAT-base (88M) pre-trained for 10 epochs on AudioSet-2M, without a classification head."),
        ("eat-base-epoch10-finetuned-as2m", "EAT-base epoch 10, AS-2M fine-tuned", "finetuned",
         "EAT-base (epoch 10) fine-tuned on AudioSet-2M (527 classes, multi-label)."),
        ("eat-base-epoch10-finetuned-as20k", "EAT-base epoch 10, AS-20K fine-tuned", "finetuned",
         "EAT-base (epoch 10) fine-tuned on AudioSet-20K (527 classes, multi-label)."),
        ("eat-base-epoch30-pretrained", "EAT-base epoch 30 pre-trained (worstchan/EAT-base_epoch30_pretrain)",
         "pretrained", "EAT-base (88M) pre-trained for 30 epochs on AudioSet-2M, without a classification head."),
        ("eat-base-epoch30-finetuned-as2m", "EAT-base epoch 30, AS-2M (worstchan/EAT-base_epoch30_finetune_AS2M)",
         "finetuned", "EAT-base (epoch 30) fine-tuned on AudioSet-2M (527 classes, multi-label)."),
        ("eat-large-epoch20-pretrained", "EAT-large epoch 20 pre-trained (worstchan/EAT-large_epoch20_pretrain)",
         "pretrained", "EAT-large (309M) pre-trained for 20 epochs on AudioSet-2M, without a classification head."),
        ("eat-large-epoch20-finetuned-as2m", "EAT-large epoch 20, AS-2M (worstchan/EAT-large_epoch20_finetune_AS2M)",
         "finetuned", "EAT-large (epoch 20) fine-tuned on AudioSet-2M (527 classes, multi-label)."),
    ]
    return [
        ReleasedCheckpoint(f"audiozoo/{slug}", original, kind, original.split(" (")[0], description, family="eat")
        for slug, original, kind, description in entries
    ]


def _byol_a_releases() -> list[ReleasedCheckpoint]:
    releases = [
        ReleasedCheckpoint(
            f"audiozoo/byol-a-v1-d{width}", f"AudioNTT2020-BYOLA-64x96d{width}.pth", "pretrained", f"v1 d{width}",
            f"BYOL-A v1 (AudioNTT2020) encoder with {width}-d output, trained with BYOL for audio on AudioSet. "
            "Convert with `--norm_stats MEAN STD` of your dataset.",
            family="byol_a",
        )
        for width in (512, 1024, 2048)
    ]
    releases.append(ReleasedCheckpoint(
        "audiozoo/byol-a-v2-d3072", "AudioNTT2022-BYOLA-64x96d2048.pth", "pretrained", "v2",
        "BYOL-A v2 (AudioNTT2022) encoder: 2 conv blocks whose 1024-d features are concatenated with a 2048-d MLP "
        "output, 3072-d in all (the 'd2048' of the file name is the MLP width).",
        family="byol_a",
    ))
    return releases


SED_RELEASE_NAMES = {"BEATs": "beats_sed", "ATST-F": "atst_frame", "ASIT": "asit", "fpasst": "fpasst", "M2D": "m2d"}
SED_STAGES = {
    "strong_1": ("sed", "{name} fine-tuned on AudioSet-strong with knowledge distillation from the RNN-teacher "
                        "ensemble (the paper's student): 447 classes, 40 ms frames, sound-event detection."),
    "weak": ("pretrained", "{name} encoder after AudioSet (weak labels) fine-tuning, the starting point of the "
                           "paper's AudioSet-strong training; no usable frame head (a fresh one is initialised)."),
    "ssl": ("pretrained", "{name} self-supervised encoder as PretrainedSED packages it; no frame head (a fresh one "
                          "is initialised)."),
}


def _sed_releases() -> list[ReleasedCheckpoint]:
    releases = []
    for name, family in SED_RELEASE_NAMES.items():
        for stage, (kind, text) in SED_STAGES.items():
            slug = f"{family.replace('_', '-')}-{'strong' if stage == 'strong_1' else stage}"
            releases.append(ReleasedCheckpoint(f"audiozoo/pretrainedsed-{slug}", f"{name}_{stage}.pt", kind, stage,
                                               text.format(name=FAMILIES[family].name), family=family))
    for width in ("06", "10"):
        releases.append(ReleasedCheckpoint(
            f"audiozoo/pretrainedsed-frame-mn{width}-strong", f"frame_mn{width}_strong_1.pt", "sed", "strong_1",
            f"frame-MobileNet (width {int(width) / 10:g}) trained on AudioSet-strong with knowledge distillation: "
            "447 classes, 40 ms frames, sound-event detection.", family="frame_mn"))
    return releases


BEATS_RELEASES: list[ReleasedCheckpoint] = _beats_releases()
RELEASES: list[ReleasedCheckpoint] = (
    BEATS_RELEASES + _ast_releases() + _eat_releases() + _byol_a_releases() + _sed_releases()
)


def find_release(original_filename: str) -> ReleasedCheckpoint | None:
    """The release entry for an original file name, or None for a checkpoint of one's own."""
    for release in RELEASES:
        if release.original_filename == original_filename:
            return release
    return None


TEMPLATE = """---
library_name: transformers
license: {license}
pipeline_tag: {pipeline_tag}
tags:
- audio
- {family_key}
- audiozoo
datasets:
- {dataset_tag}
---

# {title}

{description}

A port of the original [{family_name} code]({source}) to Hugging Face `transformers`, by the audiozoo
package. Converted from `{original_filename}` ({hosting}) with `{convert}`. The port reproduces the original
code's outputs: the audiozoo test suite checks features, hidden states and head outputs against outputs that the
original code computed on checkpoints in the original format.

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

- Mono float waveforms at **16 kHz**. The feature extractor computes the original front end in batched torch
  ({front_end}) and refuses other sampling rates; `pipeline(...)` and the `audiozoo` CLI resample with soxr.
- The encoder returns {tokens}; `hidden_states` of every layer on request.
- `AutoModelForAudioFrameClassification` gives one prediction per time step: `config.frame_rate` =
  {frame_rate:g} steps per second.

{architecture}
## Limitations

- Needs `transformers>=5`. With `import audiozoo` the package's code is used; without it, pass
  `trust_remote_code=True` to load the copy of the code stored with the weights.
{limitation}- Evaluation figures: see the paper; this card reports none of its own.
- License: that of the original release ({source}).

## Citation

```bibtex
{citation}
```
"""

USAGE = {
    "sed": """
```python
from transformers import pipeline
detect = pipeline("sound-event-detection", model="{hub_id}")
detect("recording.wav", threshold=0.5)  # any length and rate: 10 s windows, sigmoid, median filter, events
```
Command line: `audiozoo detect recording.wav --model {hub_id} --plot events.png`. {labels}
""",
    "finetuned": """
```python
from transformers import pipeline
classify = pipeline("audio-classification", model="{hub_id}")
classify("clip.wav", top_k=5)  # any rate, any channels: decoded with soundfile, resampled with soxr
```
Command line: `audiozoo classify clip.wav --model {hub_id}`. {labels}
""",
    "pretrained": """
Embeddings from the command line: `audiozoo embed clip.wav --model {hub_id} --output emb.npy`
(the pooled output; `--level frame` for one vector per time step).
""",
    "tokenizer": """
`outputs.codebook_ids` [batch, patches] are the acoustic tokens (the original returns them flattened);
`outputs.quantizer_input` is the projection before the l2-normalised nearest-neighbour lookup.
""",
}

SED_LABEL_NOTE = ("Labels: the 447 AudioSet-strong training classes in PretrainedSED's order. `logits` are "
                  "[batch, 250, 447] frame logits (40 ms), `clip_logits` the weak head's.")
LABEL_NOTES = {
    **{key: SED_LABEL_NOTE for key in ("atst_frame", "fpasst", "asit", "m2d", "frame_mn", "beats_sed")},
    "beats": "The labels come from the checkpoint's `label_dict` (AudioSet MIDs, mapped to display names; "
    "`config.label_mids` keeps the MIDs). Its order is not the order of AudioSet's class_labels_indices.csv. "
    "Multi-label: apply a sigmoid to `logits` (the pipeline does).",
    "ast": "The labels are the recipe's class list (`--dataset`). AudioSet is multi-label: apply a sigmoid to "
    "`logits` (the pipeline does).",
    "byol_a": "BYOL-A is an encoder: the classifier is a linear probe you train (`audiozoo probe`).",
    "eat": "The labels come from the checkpoint's task dictionary (AudioSet MIDs, mapped to display names). "
    "Multi-label: apply a sigmoid to `logits` (the pipeline does).",
}

SED_LIMITATION = ("- Long audio: the sound-event-detection pipeline cuts it into 10 s windows (the last one zero-padded, "
                  "as the\n  original inference script). ATST-Frame and fPaSST refuse single inputs over 10 s.\n")
LIMITATIONS = {
    **{key: SED_LIMITATION for key in ("atst_frame", "fpasst", "asit", "m2d", "frame_mn", "beats_sed")},
    "beats": "- Padding follows the original exactly by default: a partly padded time step of a shorter clip in a "
    "batch\n  counts as audio. Set `padding_mask_rule=\"exact\"` in the config and the feature extractor for "
    "outputs that do\n  not depend on batching.\n",
    "ast": "- Fixed input length (`config.max_length` frames, as trained); conversion can re-grid the position "
    "table for\n  another length (`--target_max_length`), as the original adapts tables.\n",
    "eat": "- Fixed input length (`config.max_length` frames); padded frames are attended to, as in the "
    "original.\n",
    "byol_a": "- Normalisation statistics are dataset-specific; the converted defaults are the README's examples.\n",
}

MODEL_CLASSES = {
    "sed": "AutoModelForAudioFrameClassification",
    "finetuned": "AutoModelForAudioClassification",
    "pretrained": "AutoModel",
    "tokenizer": "AutoModel",
}


def _architecture_table(config) -> str:
    if config is None:
        return ""
    fields = [("layers", "num_hidden_layers"), ("version", "version"), ("conv blocks", "num_conv_blocks"),
              ("hidden size", "hidden_size"), ("attention heads", "num_attention_heads"), ("patch size", "patch_size")]
    rows = [(name, getattr(config, attribute)) for name, attribute in fields if hasattr(config, attribute)]
    if getattr(config, "codebook_size", None):
        rows.append(("codebook", f"{config.codebook_size} x {config.codebook_dim}"))
    if getattr(config, "max_length", None):
        rows.append(("input frames", config.max_length))
    if config.problem_type:
        rows.append(("labels", len(config.id2label)))
    lines = ["## Architecture", "", "| | |", "| --- | --- |"] + [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def _family_of(config) -> str:
    """The card family of a config: its model family's package, or beats_sed for BEATs with the PretrainedSED head."""
    if config.model_type == "audiozoo-beats" and getattr(config, "sed_head", None) is not None:
        return "beats_sed"
    return family_of(config.model_type).package


SED_FAMILY_KEYS = ("atst_frame", "fpasst", "asit", "m2d", "frame_mn", "beats_sed")


def card_for_conversion(original_filename: str, config) -> str:
    """The release card when the file is a known release, else a generic card from the config."""
    return render_model_card(find_release(original_filename), config)


def render_model_card(release: ReleasedCheckpoint | None, config=None, *, hub_id: str | None = None,
                      description: str | None = None) -> str:
    """The card of a released checkpoint, or a generic one (from the config) for a user's own conversion; `hub_id`
    and `description` replace the generic card's placeholder repo id and first paragraph."""
    if release is None:
        if config is None:
            raise ValueError("render_model_card needs a release entry or a config")
        family = FAMILIES[_family_of(config)]
        kind = "tokenizer" if getattr(config, "codebook_size", None) else (
            "finetuned" if config.problem_type else "pretrained")
        if family.key in SED_FAMILY_KEYS:
            kind = "sed"
        release = ReleasedCheckpoint(
            hub_id or "path/to/converted-model", "original checkpoint", kind, "",
            description or f"A {family.name} model converted from a checkpoint in the original format.",
            family=family.key,
        )
    family = FAMILIES[release.family]
    title = f"{family.name} {release.iteration} ({release.kind})" if release.iteration else f"{family.name} (converted)"
    frame_rate = config.frame_rate if config is not None else {"beats": 6.25, "ast": 10.0, "eat": 6.25,
                                                               "byol_a": 12.5}.get(family.key, 25.0)
    return TEMPLATE.format(
        license=family.license,
        pipeline_tag="audio-classification" if release.kind in ("finetuned", "sed") else "feature-extraction",
        family_key=family.key,
        dataset_tag=family.dataset_tag,
        title=title,
        description=release.description,
        family_name=family.name,
        source=family.source,
        original_filename=release.original_filename,
        hosting=family.hosting,
        convert=family.convert.format(file=release.original_filename,
                                      name=re.sub(r"_(strong_1|weak|ssl)\.pt$", "", release.original_filename)),
        model_class=MODEL_CLASSES[release.kind],
        hub_id=release.hub_id,
        usage=USAGE[release.kind].format(hub_id=release.hub_id, labels=LABEL_NOTES[family.key]),
        front_end=family.front_end,
        tokens=family.tokens,
        frame_rate=frame_rate,
        architecture=_architecture_table(config),
        limitation=LIMITATIONS[family.key],
        citation=family.citation,
    )


FINETUNED_TEMPLATE = """---
library_name: transformers
license: {license}
pipeline_tag: audio-classification
tags:
- audio
- {family_key}
- audiozoo
- fine-tuned
{extra_tags}{base_model}---

# {title}

{description}

## Use

```python
import torch, audiozoo  # pip install audiozoo; importing registers the model with the Auto classes
from transformers import AutoFeatureExtractor, {model_class}

feature_extractor = AutoFeatureExtractor.from_pretrained("{hub_id}")
model = {model_class}.from_pretrained("{hub_id}", dtype=torch.float32)
inputs = feature_extractor([waveform], sampling_rate={sampling_rate})  # mono float32 at {sampling_rate} Hz
outputs = model(**inputs)
```
{usage}
Without audiozoo installed, pass `trust_remote_code=True` to load the copy of the code stored with the weights
(needs `transformers>=5`).

## Training

{training}
## Results

{results}
## Labels

{labels}

## Limitations

- The figures above come from this run's own split of its data (the manifest's `split` column, else a seeded
  split by group or stratified by label), not from a published benchmark protocol.
- Input: mono float waveforms at {sampling_rate} Hz; the feature extractor refuses other rates, the pipelines
  and the `audiozoo` CLI resample.
- License: that of the base model's original release ({source}).

## Citation

The base model:

```bibtex
{citation}
```
"""

TASKS = {
    "single": ("single-label clip classification", "accuracy"),
    "multi": ("multi-label clip classification", "mAP"),
    "frame": ("frame-level sound-event detection", "frame_micro_f1"),
}
SETTINGS_SHOWN = (
    ("epochs", "epochs"), ("max_steps", "maximum optimiser steps"), ("batch_size", "batch size"),
    ("gradient_accumulation_steps", "gradient accumulation steps"), ("lr", "learning rate"),
    ("scheduler", "schedule"), ("warmup_steps", "warm-up steps"), ("weight_decay", "weight decay"),
    ("layer_decay", "layer-wise lr decay"), ("clip_seconds", "clip length (s)"), ("mixup_alpha", "mixup alpha"),
    ("gain_db", "random gain (dB)"), ("roll", "random roll"), ("time_masks", "time masks"),
    ("frequency_masks", "frequency masks"), ("balanced_sampler", "balanced sampler"),
    ("distillation_loss_weight", "distillation loss weight"), ("mixed_precision", "mixed precision"),
    ("seed", "seed"),
)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_finetune_results(results: dict) -> bool:
    """Whether a results.json is the record `audiozoo finetune` / `distill` write (FinetuneResult)."""
    return isinstance(results, dict) and {"metric", "test", "history"} <= set(results)


def _figure(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value}"
    if isinstance(value, int):
        return f"{value}"
    return "n/a" if value != value else f"{value:.4f}"


def _table(rows: list[tuple[str, object]]) -> str:
    return "\n".join(["| | |", "| --- | --- |"] + [f"| {name} | {_figure(value)} |" for name, value in rows]) + "\n"


def _finetune_task(config, results: dict) -> str:
    architecture = (getattr(config, "architectures", None) or [""])[0]
    if architecture.endswith("ForAudioFrameClassification"):
        return "frame"
    return "multi" if config.problem_type == "multi_label_classification" else "single"


def render_finetuned_card(config, results: dict, hub_id: str) -> str:
    """The card of a folder `audiozoo finetune` (or `distill`) wrote: what it was trained from and on (from
    results.json's `settings`, when the run recorded them), task, labels, training settings and the test figures
    of results.json, plus how to use it from `hub_id`."""
    family = FAMILIES[_family_of(config)]
    task = _finetune_task(config, results)
    task_name, _ = TASKS[task]
    settings = results.get("settings") or {}
    labels = [config.id2label[index] for index in sorted(config.id2label)]
    base = settings.get("model")
    distilled = bool(settings.get("pseudo_labels") or settings.get("teachers"))
    command = "audiozoo distill" if distilled else "audiozoo finetune"
    base_name = base if base and HUB_ID.match(base) and not Path(base).exists() else None
    source = f" from [{base}](https://huggingface.co/{base})" if base_name else (
        f" from a local {family.name} folder (`{Path(base).name}`)" if base else "")
    description = (f"This {family.name} model was trained with `{command}`{source} for {task_name} over "
                   f"{len(labels)} labels.")

    training_rows: list[tuple[str, object]] = [("model family", family.name)]
    if base:
        training_rows.append(("base model", f"`{base_name or Path(base).name}`"))
    elif settings.get("config"):
        training_rows.append(("base model", "none (trained from a config)"))
    if settings.get("data"):
        training_rows.append(("data", f"`{Path(settings['data']).name}`"))
    training_rows.append(("task", task_name))
    training_rows.append(("labels", len(labels)))
    sizes = results.get("sizes") or {}
    if sizes:
        training_rows.append(("clips (train / valid / test)",
                              " / ".join(str(sizes.get(split, 0)) for split in ("train", "valid", "test"))))
    steps = results["losses"][-1][0] if results.get("losses") else None
    if steps is not None:
        training_rows.append(("optimiser steps", steps))
    training_rows += [(name, f"{settings[key]:g}" if isinstance(settings[key], float) else settings[key])
                      for key, name in SETTINGS_SHOWN if settings.get(key) not in (None, "")]
    if results.get("best_epoch") is not None and results.get("best_metric") is not None:
        training_rows.append(("best epoch (kept)",
                              f"{results['best_epoch']} (validation {results['metric']} {_figure(results['best_metric'])})"))
    if results.get("seconds"):
        training_rows.append(("training time", f"{results['seconds'] / 60:.1f} min"))

    test = results.get("test") or {}
    if test:
        result_text = "On the run's test split:\n\n" + "\n".join(
            ["| metric | value |", "| --- | --- |"] + [f"| {name} | {_figure(value)} |" for name, value in test.items()]
        ) + "\n"
    else:
        result_text = "The run had no test split: no test figures.\n"
    history = results.get("history") or []
    if history:
        keys = [key for key in history[0] if key not in ("epoch", "step")]
        result_text += "\nValidation after each epoch:\n\n" + "\n".join(
            ["| epoch | step | " + " | ".join(keys) + " |", "| --- | --- | " + " | ".join("---" for _ in keys) + " |"]
            + [f"| {row['epoch']} | {row['step']} | " + " | ".join(_figure(row.get(key)) for key in keys) + " |"
               for row in history]
        ) + "\n"

    shown = labels if len(labels) <= 60 else labels[:60]
    label_text = ", ".join(f"`{label}`" for label in shown)
    if len(shown) < len(labels):
        label_text += f" and {len(labels) - len(shown)} more (`config.id2label`)"
    if task == "frame":
        usage = (f"\n```python\nimport audiozoo  # registers the sound-event-detection pipeline\n"
                 f"from transformers import pipeline\ndetect = pipeline(\"sound-event-detection\", "
                 f"model=\"{hub_id}\")\ndetect(\"recording.wav\", threshold=0.5)\n```\n`logits` are frame logits "
                 f"[batch, frames, {len(labels)}] at `config.frame_rate` = {config.frame_rate:g} frames per second.\n")
        model_class = "AutoModelForAudioFrameClassification"
    else:
        function = "a sigmoid" if task == "multi" else "a softmax"
        usage = (f"\n```python\nfrom transformers import pipeline\nclassify = pipeline(\"audio-classification\", "
                 f"model=\"{hub_id}\")\nclassify(\"clip.wav\", top_k=5)\n```\nThe pipeline applies {function} to "
                 "`logits`.\n")
        model_class = "AutoModelForAudioClassification"
    return FINETUNED_TEMPLATE.format(
        license=family.license,
        family_key=family.key,
        extra_tags="- sound-event-detection\n" if task == "frame" else "",
        base_model=f"base_model: {base_name}\n" if base_name else "",
        title=hub_id.split("/")[-1],
        description=description,
        model_class=model_class,
        hub_id=hub_id,
        sampling_rate=getattr(config, "sampling_rate", None) or 16000,
        usage=usage,
        training=_table(training_rows),
        results=result_text,
        labels=label_text,
        source=family.source,
        citation=family.citation,
    )

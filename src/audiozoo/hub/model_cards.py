"""Model cards: one template, filled per released checkpoint (model_cards/*.md) or per user conversion.

Every card states the license of the weights it describes, read from the original repository's license file
(`LICENSES`: repository, path and commit read), and the results the authors report for that exact checkpoint
(`REPORTED_RESULTS`, written as the card's `model-index`); figures the authors report for the model but not for the
released file go into the card's prose, labelled so (`REPORTED_NOTES`). Nothing here is measured by audiozoo.
Checkpoints whose license forbids redistribution (`LicenseSource.rehostable`) get no Hub repository: their cards say
so and show how to convert one's own copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..families import family_of


@dataclass(frozen=True)
class LicenseSource:
    """A license as read in an original repository: the file, the commit read, and what it says.

    key: this table's key. hub: the Hub's `license` id ("other" for a non-standard one, with `license_name`).
    repo / path / commit: the repository, its license file ("" when it has none) and the commit read.
    file_commit: the last commit that changed the file. terms: its key sentences, quoted. note: anything else
    a reader needs (where a README points, what the file covers). rehostable: whether the weights may be
    re-hosted (a Hub copy); when not, `restriction` says why in a sentence.
    """

    key: str
    hub: str
    title: str
    repo: str
    path: str
    commit: str
    file_commit: str
    terms: str
    note: str = ""
    license_name: str | None = None
    rehostable: bool = True
    restriction: str = ""

    @property
    def url(self) -> str:
        """The license file at the commit read (the repository's tree when it has no license file)."""
        if not self.path:
            return f"https://github.com/{self.repo}/tree/{self.commit}"
        return f"https://github.com/{self.repo}/blob/{self.commit}/{self.path}"

    @property
    def source(self) -> str:
        """Where the license was read, in words."""
        if not self.path:
            return f"no license file in {self.repo} (commit {self.commit[:8]} read)"
        return (f"`{self.path}` of {self.repo} at commit {self.commit[:8]} (file last changed in "
                f"{self.file_commit[:7]})")


NTT_EVALUATION_TERMS = (
    '§1: a license "to use the Software internally for the purposes of testing, analyzing, and evaluating the '
    'methods or mechanisms as shown in the research paper"; §4(b): the user shall not "(i) sell, assign, lease, '
    'distribute, or otherwise transfer the software to any third party; (ii) ... copy or reproduce the software in '
    'any manner; (iii) disclose the software to any third party ...; (iv) modify, disassemble, decompile, reverse '
    'engineer or translate the software"; §8: no sublicense or transfer "without NTT\'s prior written consent".'
)

LICENSES: dict[str, LicenseSource] = {source.key: source for source in (
    LicenseSource(
        "beats", "mit", "MIT License", "microsoft/unilm", "LICENSE", "768a3c873f598bb9b4d4dfb9267b099e35f8fe56",
        "0e31c7c09737df491e7ff74ded19614b884c52b4",
        '"The MIT License (MIT) Copyright (c) Microsoft Corporation ... Permission is hereby granted, free of charge, '
        '... to deal in the Software without restriction, including without limitation the rights to use, copy, '
        'modify, merge, publish, distribute, sublicense, and/or sell copies of the Software"',
        note="beats/ has no license file of its own; beats/README.md (§ License) points to the root LICENSE.",
    ),
    LicenseSource(
        "ast", "bsd-3-clause", "BSD 3-Clause License", "YuanGongND/ast", "LICENSE",
        "31088be8a3f6ef96416145c4b8d43c81f99eba7a", "82bb2afd317d8672e3a1d7bf517394aa96168804",
        '"Copyright (c) 2021, Yuan Gong ... Redistribution and use in source and binary forms, with or without '
        'modification, are permitted provided that ... Redistributions in binary form must reproduce the above '
        'copyright notice, this list of conditions and the following disclaimer"',
    ),
    LicenseSource(
        "eat", "mit", "MIT License", "cwx-worst-one/EAT", "LICENSE", "06c1c34e2afd8dc35297e6d3815d31dbeec9d372",
        "90af0a58d68ac4890b42bc01a8db615e4583352c", '"MIT License Copyright (c) 2024 Wenxi Chen"',
    ),
    LicenseSource(
        "byol_a", "other", "NTT Software License Agreement for Evaluation", "nttcslab/byol-a", "LICENSE",
        "3e65c9283498d06915e6dbcff3445307d8d3e930", "446c89d55204de11bce16df21d57d8fec5f73dd2",
        NTT_EVALUATION_TERMS,
        note="The weights are files of that repository (pretrained_weights/*.pth, v2/*.pth); its README: \"This "
        "implementation is for your evaluation of BYOL-A paper, see LICENSE for the detail.\"",
        license_name="ntt-software-license-agreement-for-evaluation", rehostable=False,
        restriction="NTT's agreement allows internal evaluation use only and forbids distributing, copying, "
        "modifying or translating the software and transferring it without NTT's prior written consent",
    ),
    LicenseSource(
        "m2d", "other", "NTT Software License Agreement for Evaluation (M2D, non-commercial)", "nttcslab/m2d",
        "LICENSE.pdf", "f0c4128d4e89b1ab4e303f03141067b34aadf128", "d1646d1628eb8a6066ed84ac6f665bf5b114a3d4",
        "NTT's Software License Agreement for Evaluation with the clauses of BYOL-A's (internal evaluation use only; "
        "no distribution, copying, disclosure, modification or translation; no transfer without NTT's prior written "
        'consent), for non-commercial purposes; its Exhibit A lists "All the files in the GitHub repository."',
        note="The repository's LICENSE file only points to LICENSE.pdf; the quote above summarises the PDF, which is "
        "the authority. PretrainedSED's M2D files start from NTT's "
        "m2d_clap_vit_base-80x1001p16x16-240128_AS-FT_enconly weights (nttcslab/m2d release v0.3.0, per the "
        "PretrainedSED README).",
        license_name="ntt-software-license-agreement-for-evaluation-m2d", rehostable=False,
        restriction="the PretrainedSED M2D files derive from NTT's M2D weights, whose evaluation agreement allows "
        "internal, non-commercial evaluation use only and forbids redistribution without NTT's prior written consent",
    ),
    LicenseSource(
        "asit", "other", "No license", "Sara-Ahmed/ASiT", "",
        "1f1d63ca992ecea845b242402f1566e2cfc16a28", "",
        'none: the repository holds no LICENSE file, and its README states no terms (its link to the '
        'self-supervised weights reads "coming soon")',
        note="Without a license, copyright law reserves all rights to the authors; PretrainedSED's ASiT files start "
        "from the ASiT authors' self-supervised weights.",
        license_name="asit-no-license-all-rights-reserved", rehostable=False,
        restriction="the ASiT weights come with no license at all, so their authors keep all rights and no one may "
        "redistribute them, or files trained from them, without their permission",
    ),
    LicenseSource(
        "pretrainedsed", "mit", "MIT License", "fschmid56/PretrainedSED", "LICENSE",
        "1aa47e482f7e89904cba2338999345025d8b4e36", "7e96a96fd32e2015c03b3b38a3130ecd2745f5db",
        '"MIT License Copyright (c) 2024 Florian Schmid"',
        note="The README says nothing else on the checkpoints' terms; it lists the external files it re-packages.",
    ),
    LicenseSource(
        "audiossl", "cc-by-4.0", "Creative Commons Attribution 4.0 (checkpoints; code MIT)", "Audio-WestlakeU/audiossl",
        "LICENSE", "ec3a14db086eaccfb69513e4a90fad89bf992e1f", "9f1965afa6881671bd8ec63a3c14f2ebb6dd8a5e",
        '"The pretraind checkpoints hyper-linked in this repo are licensed under CC BY 4.0 ... audiossl is licenced '
        'under MIT Licence."',
        note="ATST-F_ssl.pt is the atstframe_base checkpoint linked in audiossl/methods/atstframe/README.md. "
        "CC BY 4.0 requires attribution (this card's citation and links).",
    ),
    LicenseSource(
        "atst_sed", "mit", "MIT License", "Audio-WestlakeU/ATST-SED", "LICENSE",
        "7ebf5314d5f21acfb171aba0ba685f47b7e4e3e6", "5e2e9d6f484a0c1a5ec65ebb0fb76e560ed521b3",
        '"MIT License Copyright (c) 2023 Audio-WestlakeU"',
        note="ATST-F_weak.pt is the atst_as2M.ckpt linked in ATST-SED's README (ATST-Frame fine-tuned on AudioSet-2M).",
    ),
    LicenseSource(
        "deit", "apache-2.0", "Apache License 2.0", "facebookresearch/deit", "LICENSE",
        "7e160fe43f0252d17191b71cbb5826254114ea5b", "0c4b8f60bdbe6acb438bc7f4805a331ddd19e017",
        '"Apache License Version 2.0, January 2004"',
        note="fpasst_ssl.pt is DeiT's deit_base_distilled_patch16_384 ImageNet checkpoint (PretrainedSED README).",
    ),
    LicenseSource(
        "efficientat", "mit", "MIT License", "fschmid56/EfficientAT", "LICENSE",
        "a425fdce92572e602a1d5634799bd9f1f2efa806", "7ab113480e8c4262d05453526de30d3d841bb3fa",
        '"MIT License Copyright (c) 2022 Florian Schmid"',
    ),
)}


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
    license: str  # key of LICENSES: the license of the family's weights (SED_LICENSES refines it per file)
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
        convert="audiozoo convert beats --checkpoint_path {file} --pytorch_dump_folder_path {out}",
        license="beats",
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
        convert="audiozoo convert ast --checkpoint_path {file} --pytorch_dump_folder_path {out}",
        license="ast",
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
        convert="audiozoo convert eat --checkpoint_path {file} --pytorch_dump_folder_path {out}",
        license="eat",
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
        convert="audiozoo convert byol_a --checkpoint_path {file} --pytorch_dump_folder_path {out} "
        "--norm_stats MEAN STD",
        license="byol_a",
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
SED_CONVERT = ("audiozoo convert pretrained_sed --checkpoint_path {file} --model_name {name} "
               "--pytorch_dump_folder_path {out}")
SED_TOKENS = "the encoder sequence the original wrapper returns ({detail}); the frame classifier resamples it to 250 " \
    "frames per 10 s"
FAMILIES.update({
    "atst_frame": Family("atst_frame", "ATST-Frame (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                         "64-bin mel power (1024/160, 60-7800 Hz) in dB with an 80 dB floor per clip, clamped to "
                         "[-50, 80] and min-max scaled; at most 10 s per window",
                         SED_TOKENS.format(detail="250 tokens of 4 frames x 64 bins per 10 s"), SED_CONVERT,
                         "pretrainedsed"),
    "fpasst": Family("fpasst", "frame-PaSST (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                     "pre-emphasis, 128-bin Kaldi-scale mel (400-sample periodic hann in a 512 FFT, 160 hop, 0-7000 Hz), "
                     "`(log(x) + 4.5) / 5`; at most 10 s per window",
                     SED_TOKENS.format(detail="250 tokens per 10 s after a convolutional stem"), SED_CONVERT,
                     "pretrainedsed"),
    "asit": Family("asit", "ASiT (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                   "waveform minus its mean, 128-bin Kaldi filterbank (hanning window), `(fbank + 4.268) / (2 * 4.569)`",
                   SED_TOKENS.format(detail="CLS + 62 x 8 time-major patch tokens per 10 s"), SED_CONVERT, "asit"),
    "m2d": Family("m2d", "M2D (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                  "80-bin Slaney mel with area norm (400/160, 50-8000 Hz), `(log(x + eps) + 7.1) / 4.2`",
                  SED_TOKENS.format(detail="62 frames of 5 stacked 16x16 patch tokens per 10 s"), SED_CONVERT, "m2d"),
    "frame_mn": Family("frame_mn", "frame-MobileNet (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                       "as fPaSST but with a symmetric hann window",
                       SED_TOKENS.format(detail="one feature vector per 40 ms"), SED_CONVERT, "pretrainedsed"),
    "beats_sed": Family("beats_sed", "BEATs (PretrainedSED)", SED_SOURCE, SED_HOSTING, SED_CITATION,
                        "samples x 2^15, 128-bin Kaldi filterbank (povey window), `(fbank - 15.41663) / (2 * 6.55582)`",
                        SED_TOKENS.format(detail="62 x 8 time-major patch tokens per 10 s"), SED_CONVERT,
                        "pretrainedsed"),
})

# The license of each PretrainedSED file: (license of the file, licenses of the weights it was trained from). The
# README's table says which files PretrainedSED trained ("ours") and which it re-packages from elsewhere: BEATs ssl
# and weak are Microsoft's BEATs files, ATST-F ssl is audiossl's atstframe_base (CC BY 4.0) and ATST-F weak
# ATST-SED's atst_as2M.ckpt, fpasst ssl is DeiT's ImageNet checkpoint, ASiT ssl the ASiT authors' file, M2D ssl and
# weak NTT's M2D release. A file derived from weights that may not be redistributed takes their license.
SED_LICENSES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("beats_sed", "ssl"): ("beats", ()),
    ("beats_sed", "weak"): ("beats", ()),
    ("beats_sed", "strong_1"): ("pretrainedsed", ("beats",)),
    ("atst_frame", "ssl"): ("audiossl", ()),
    ("atst_frame", "weak"): ("atst_sed", ("audiossl",)),
    ("atst_frame", "strong_1"): ("pretrainedsed", ("atst_sed", "audiossl")),
    ("fpasst", "ssl"): ("deit", ()),
    ("fpasst", "weak"): ("pretrainedsed", ("deit",)),
    ("fpasst", "strong_1"): ("pretrainedsed", ("deit",)),
    ("asit", "ssl"): ("asit", ("pretrainedsed",)),
    ("asit", "weak"): ("asit", ("pretrainedsed",)),
    ("asit", "strong_1"): ("asit", ("pretrainedsed",)),
    ("m2d", "ssl"): ("m2d", ("pretrainedsed",)),
    ("m2d", "weak"): ("m2d", ("pretrainedsed",)),
    ("m2d", "strong_1"): ("m2d", ("pretrainedsed",)),
    ("frame_mn", "strong_1"): ("pretrainedsed", ("efficientat",)),
}


def license_of(family: str, stage: str = "") -> tuple[LicenseSource, tuple[LicenseSource, ...]]:
    """The license of a family's weights (refined per PretrainedSED file by `stage`) and those of the weights they
    were trained from. A user's own conversion of a SED family gets its strong students' entry."""
    primary, lineage = SED_LICENSES.get((family, stage)) or SED_LICENSES.get((family, "strong_1")) or (
        FAMILIES[family].license, ())
    return LICENSES[primary], tuple(LICENSES[key] for key in lineage)


def redistribution_allowed(family: str, stage: str = "") -> bool:
    """Whether the weights' license and every license they derive from allow a Hub copy."""
    primary, lineage = license_of(family, stage)
    return primary.rehostable and all(source.rehostable for source in lineage)


@dataclass(frozen=True)
class ReleasedCheckpoint:
    """One checkpoint of an original release, its card (model_cards/<name>.md) and, when its license allows a copy,
    its Hub repository (`hub_id`).

    original_filename: the released file's name (what `find_release` matches); for EAT's Google Drive files, whose
    names the authors do not publish, the README's label for the link (`filename_known` False).
    url: where the original file is downloaded ("" where the family's `hosting` says it).
    """

    name: str
    original_filename: str
    kind: str  # "pretrained" | "finetuned" | "tokenizer" | "sed"
    iteration: str  # for PretrainedSED files, the stage: "strong_1" | "weak" | "ssl"
    description: str
    family: str = "beats"
    url: str = ""
    filename_known: bool = True

    @property
    def license(self) -> tuple[LicenseSource, tuple[LicenseSource, ...]]:
        """The file's license and the licenses of the weights it derives from."""
        return license_of(self.family, self.iteration)

    @property
    def rehostable(self) -> bool:
        return redistribution_allowed(self.family, self.iteration)

    @property
    def hub_id(self) -> str | None:
        """The Hub repository the card is written for; None where the license forbids re-hosting the weights."""
        return f"audiozoo/{self.name}" if self.rehostable else None


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
            f"beats-{slug}", f"{stem}.pt", "pretrained", label,
            f"BEATs {label} self-supervised audio encoder (AudioSet-2M pre-training), without a classification head.",
        ))
        for checkpoint in (1, 2):
            releases.append(ReleasedCheckpoint(
                f"beats-{slug}-finetuned-as2m-cpt{checkpoint}", f"{stem}_finetuned_on_AS2M_cpt{checkpoint}.pt",
                "finetuned", label,
                f"BEATs {label} fine-tuned on AudioSet-2M (527 classes, multi-label), checkpoint {checkpoint} of 2 "
                "(cpt1: the paper's default fine-tuning; cpt2: lr 5e-5 for 100k steps, released for ensembles).",
            ))
        if tokenizer:
            releases.append(ReleasedCheckpoint(
                f"beats-tokenizer-{slug}", f"{tokenizer}.pt", "tokenizer", label,
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
            f"ast-audioset-{name.replace('_', '-')}", f"audioset_{name}.pth", "finetuned",
            f"AudioSet, stride {stride}",
            f"AST fine-tuned on AudioSet-2M (527 classes, multi-label), patch stride {stride}/{stride}, 1024 frames "
            f"(10.24 s); the file name gives its AudioSet mAP, {score}{detail}. Convert with `--dataset audioset`.",
            family="ast",
        ))
    releases.append(ReleasedCheckpoint(
        "ast-speechcommands-10-10-0.9812", "speechcommands_10_10_0.9812.pth", "finetuned",
        "Speech Commands V2", "AST fine-tuned on Speech Commands V2 (35 classes), 128 frames (1.28 s); evaluation-set "
        "accuracy 0.9812 per the file name and the README. Convert with `--dataset speechcommands`.", family="ast",
    ))
    return releases


def _eat_releases() -> list[ReleasedCheckpoint]:
    # The README links Google Drive files without naming them: the label of each link stands for the file name (so
    # `find_release` matches no downloaded EAT file, and its conversion gets the generic EAT card).
    drive = "https://drive.google.com/file/d/{}/view?usp=sharing"
    entries = [
        ("eat-base-epoch10-pretrained", "EAT-base (10 epochs), Pre-trained", "10pklbY_fKraQUIBizSg1kv4lJXNWxpxl",
         "pretrained", "EAT-base (88M) pre-trained for 10 epochs on AudioSet-2M, without a classification head."),
        ("eat-base-epoch10-finetuned-as2m", "EAT-base (10 epochs), Fine-tuned on AS-2M",
         "1F07zN8N54rXU-szvKUlYaCFMCepc4wHR", "finetuned",
         "EAT-base (epoch 10) fine-tuned on AudioSet-2M (527 classes, multi-label)."),
        ("eat-base-epoch10-finetuned-as20k", "EAT-base (10 epochs), Fine-tuned on AS-20K",
         "1fRX_Mgj4sHxV2F6AVfoqXObfgzFMnHRA", "finetuned",
         "EAT-base (epoch 10) fine-tuned on AudioSet-20K (527 classes, multi-label)."),
        ("eat-base-epoch30-pretrained", "EAT-base (Epoch 30, Pre-trained)", "19hfzLgHCkyqTOYmHt8dqVa9nm-weBq4f",
         "pretrained", "EAT-base (88M) pre-trained for 30 epochs on AudioSet-2M, without a classification head."),
        ("eat-base-epoch30-finetuned-as2m", "EAT-base (Epoch 30, Fine-tuned on AS-2M)",
         "1aCYiQmoZv_Gh1FxnR-CCWpNAp6DIJzn6", "finetuned",
         "EAT-base (epoch 30) fine-tuned on AudioSet-2M (527 classes, multi-label)."),
        ("eat-large-epoch20-pretrained", "EAT-large (Epoch 20, Pre-trained)", "1PEgriRvHsqrtLzlA478VemX7Q0ZGl889",
         "pretrained", "EAT-large (309M) pre-trained for 20 epochs on AudioSet-2M, without a classification head."),
        ("eat-large-epoch20-finetuned-as2m", "EAT-large (Epoch 20, Fine-tuned on AS-2M)",
         "1b_f_nQAdjM1B6u72OFUtFiUu-4yM2shd", "finetuned",
         "EAT-large (epoch 20) fine-tuned on AudioSet-2M (527 classes, multi-label)."),
    ]
    return [
        ReleasedCheckpoint(slug, label, kind, " ".join(slug.split("-")[1:3]).replace("epoch", "epoch "), description,
                           family="eat", url=drive.format(file_id), filename_known=False)
        for slug, label, file_id, kind, description in entries
    ]


BYOL_A_FILES = f"https://github.com/nttcslab/byol-a/blob/{LICENSES['byol_a'].commit}"


def _byol_a_releases() -> list[ReleasedCheckpoint]:
    releases = [
        ReleasedCheckpoint(
            f"byol-a-v1-d{width}", f"AudioNTT2020-BYOLA-64x96d{width}.pth", "pretrained", f"v1 d{width}",
            f"BYOL-A v1 (AudioNTT2020) encoder with {width}-d output, trained with BYOL for audio on AudioSet. "
            "Convert with `--norm_stats MEAN STD` of your dataset.",
            family="byol_a", url=f"{BYOL_A_FILES}/pretrained_weights/AudioNTT2020-BYOLA-64x96d{width}.pth",
        )
        for width in (512, 1024, 2048)
    ]
    releases.append(ReleasedCheckpoint(
        "byol-a-v2-d3072", "AudioNTT2022-BYOLA-64x96d2048.pth", "pretrained", "v2",
        "BYOL-A v2 (AudioNTT2022) encoder: 2 conv blocks whose 1024-d features are concatenated with a 2048-d MLP "
        "output, 3072-d in all (the 'd2048' of the file name is the MLP width).",
        family="byol_a", url=f"{BYOL_A_FILES}/v2/AudioNTT2022-BYOLA-64x96d2048.pth",
    ))
    return releases


SED_RELEASE_URL = "https://github.com/fschmid56/PretrainedSED/releases/download/v0.0.1/"
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
            if (family, stage) == ("fpasst", "ssl"):
                text = ("{name} starting point as PretrainedSED packages it: DeiT's ImageNet weights "
                        "(deit_base_distilled_patch16_384, supervised, not self-supervised); no frame head (a fresh "
                        "one is initialised).")
            releases.append(ReleasedCheckpoint(f"pretrainedsed-{slug}", f"{name}_{stage}.pt", kind, stage,
                                               text.format(name=FAMILIES[family].name), family=family,
                                               url=SED_RELEASE_URL + f"{name}_{stage}.pt"))
    for width in ("06", "10"):
        releases.append(ReleasedCheckpoint(
            f"pretrainedsed-frame-mn{width}-strong", f"frame_mn{width}_strong_1.pt", "sed", "strong_1",
            f"frame-MobileNet (width {int(width) / 10:g}) trained on AudioSet-strong with knowledge distillation: "
            "447 classes, 40 ms frames, sound-event detection.", family="frame_mn",
            url=SED_RELEASE_URL + f"frame_mn{width}_strong_1.pt"))
    return releases


BEATS_RELEASES: list[ReleasedCheckpoint] = _beats_releases()
RELEASES: list[ReleasedCheckpoint] = (
    BEATS_RELEASES + _ast_releases() + _eat_releases() + _byol_a_releases() + _sed_releases()
)


def find_release(original_filename: str) -> ReleasedCheckpoint | None:
    """The release entry for an original file name, or None for a checkpoint of one's own."""
    for release in RELEASES:
        if release.filename_known and release.original_filename == original_filename:
            return release
    return None


@dataclass(frozen=True)
class ReportedResult:
    """A figure the authors report for one released file (never one measured by audiozoo): one model-index entry.

    dataset_type: a Hub dataset id where one is established (AudioSet, Speech Commands), else a plain identifier.
    value: as the authors print it (their scale, a fraction or a percentage, which `metric_name` says; the
    model-index holds it as a number).
    """

    dataset: str
    dataset_type: str
    metric: str
    value: str
    metric_name: str
    source_name: str
    source_url: str
    task_name: str = "Audio classification"
    dataset_config: str | None = None


AST_README = "https://github.com/YuanGongND/ast#pretrained-models"
EAT_README = f"https://github.com/cwx-worst-one/EAT/blob/{LICENSES['eat'].commit}/README.md"
BYOL_A_README = "https://github.com/nttcslab/byol-a#pretrained-weights"
BEATS_PAPER = "https://arxiv.org/abs/2212.09058"
BEATS_CPT_ISSUE = "https://github.com/microsoft/unilm/issues/1006"
SED_PAPER = "https://arxiv.org/abs/2409.09546"
SED_README_RESULTS = ("https://github.com/fschmid56/PretrainedSED"
                      "#student-model-performances-on-audioset-strong-from-paper")
SED_MOBILENET_ISSUE = "https://github.com/fschmid56/PretrainedSED/issues/4"
BY_AUTHORS = "reported by the authors"


def _audioset_map(value: str, scale: str, source_name: str, source_url: str, note: str = "") -> ReportedResult:
    return ReportedResult(f"AudioSet (evaluation set{note})", "agkphysics/AudioSet", "mAP", value,
                          f"mAP{scale}, {BY_AUTHORS}", source_name, source_url)


def _reported_results() -> dict[str, tuple[ReportedResult, ...]]:
    """model-index entries: only figures the authors give for that exact released file.

    AST: the README's figure for each linked file (the file names carry the same mAP to 4 digits). EAT fine-tuned
    files: the README's Performance Summary gives one figure per released fine-tuned checkpoint (the per-class AP of
    those checkpoints is published in results/*.txt). BYOL-A v1: the README's table lists each file with its linear
    evaluation accuracies. frame_mn: the maintainer's figures "for the models in this repo" (PretrainedSED issue #4).
    """
    results: dict[str, tuple[ReportedResult, ...]] = {}
    ast = {"10-10-0.4593": ("0.459", "with Weight Averaging"), "10-10-0.4495": ("0.450", "Model 1"),
           "10-10-0.4483": ("0.448", "Model 2"), "10-10-0.4475": ("0.448", "Model 3"), "12-12-0.4467": ("0.447", ""),
           "14-14-0.4431": ("0.443", ""), "16-16-0.4422": ("0.442", "")}
    for name, (value, entry) in ast.items():
        stride = name.split("-")[0]
        label = f"AST README, Pretrained Models: Full AudioSet, {stride} tstride, {stride} fstride" + (
            f", {entry}" if entry else "")
        results[f"ast-audioset-{name}"] = (_audioset_map(value, "", label, AST_README),)
    results["ast-speechcommands-10-10-0.9812"] = (ReportedResult(
        "Speech Commands V2 (35 classes, evaluation set)", "google/speech_commands", "accuracy", "0.9812",
        f"accuracy, {BY_AUTHORS}", "AST README, Pretrained Models: Speechcommands V2-35 (98.12% accuracy on "
        "evaluation set)", AST_README, dataset_config="v0.02"),)
    eat = {"eat-base-epoch10-finetuned-as2m": ("48.6", "EAT-base, 10 epochs, AS-2M", ""),
           "eat-base-epoch10-finetuned-as20k": ("40.3", "EAT-base, 10 epochs, AS-20K", ", fine-tuned on AS-20K"),
           "eat-base-epoch30-finetuned-as2m": ("48.9", "EAT-base, 30 epochs, AS-2M", ""),
           "eat-large-epoch20-finetuned-as2m": ("49.5", "EAT-large, 20 epochs, AS-2M", "")}
    for name, (value, row, note) in eat.items():
        results[name] = (_audioset_map(value, " (%)", f"EAT README, Performance Summary: {row}", EAT_README, note),)
    byol_a = {512: "69.1 78.2 33.4 83.5 86.5 88.9", 1024: "72.7 78.2 38.0 88.5 90.1 91.4",
              2048: "74.1 79.1 40.1 90.2 91.0 92.2"}
    tasks = (("NSynth (instrument family)", "nsynth", None), ("UrbanSound8K", "urbansound8k", None),
             ("VoxCeleb1 (speaker identification)", "voxceleb1", None), ("VoxForge (language identification)",
             "voxforge", None), ("Speech Commands V2, 12 classes (SPCV2/12)", "google/speech_commands", "v0.02"),
             ("Speech Commands V2, 35 classes (SPCV2)", "google/speech_commands", "v0.02"))
    for width, values in byol_a.items():
        results[f"byol-a-v1-d{width}"] = tuple(
            ReportedResult(dataset, dataset_type, "accuracy", value, f"linear evaluation accuracy (%), {BY_AUTHORS}",
                           f"BYOL-A README, Pretrained Weights: AudioNTT2020-BYOLA-64x96d{width}.pth", BYOL_A_README,
                           task_name="Linear evaluation of frozen embeddings", dataset_config=config)
            for (dataset, dataset_type, config), value in zip(tasks, values.split()))
    for width, value in (("06", "40.81"), ("10", "43.26")):
        results[f"pretrainedsed-frame-mn{width}-strong"] = (ReportedResult(
            "AudioSet strong (evaluation set)", "audioset_strong", "PSDS1", value,
            f"PSDS1 (%), median filter of 9 frames, {BY_AUTHORS}",
            f"PretrainedSED issue #4, maintainer's comment: frame_mn{width}", SED_MOBILENET_ISSUE,
            task_name="Sound event detection"),)
    return results


REPORTED_RESULTS: dict[str, tuple[ReportedResult, ...]] = _reported_results()

BEATS_REPORTED = {  # label: (AS-2M mAP after AS-2M fine-tuning, AS-20K mAP, ESC-50 accuracy), arXiv 2212.09058
    "iter1": (47.9, 36.0, 94.0), "iter2": (48.1, 38.3, 95.1), "iter3": (48.0, 38.3, 95.6),
    "iter3+ (AS20K)": (48.0, 38.9, 96.2), "iter3+ (AS2M)": (48.6, 41.8, 97.1),
}
SED_STUDENTS_PSDS1 = {"beats_sed": 46.5, "atst_frame": 45.8, "fpasst": 45.4, "m2d": 46.3, "asit": 46.2}


def _reported_notes() -> dict[str, str]:
    """Figures the authors report for the model but not for the released file: prose, labelled so."""
    notes: dict[str, str] = {}
    for release in RELEASES:
        if release.family == "beats" and release.kind != "tokenizer":
            as2m, as20k, esc50 = BEATS_REPORTED[release.iteration]
            if release.kind == "pretrained":
                notes[release.name] = (
                    f"Reported for models fine-tuned from this checkpoint, not for this file: the paper "
                    f"([arXiv 2212.09058]({BEATS_PAPER})) reports BEATs {release.iteration} at {as20k} mAP on the "
                    f"AudioSet evaluation set after AS-20K fine-tuning and {esc50} % accuracy on ESC-50 (those "
                    f"fine-tuned models are not released), and {as2m} mAP after AS-2M fine-tuning (Table 2; the "
                    "released AS-2M fine-tuned files cpt1 and cpt2 have their own cards).")
            else:
                checkpoint = release.name[-4:]
                recipe = ("cpt1 used the paper's default fine-tuning hyper-parameters (its Table 4)"
                          if checkpoint == "cpt1" else "cpt2 used a learning rate of 5e-5 for 100k steps (Section "
                          "4.6), released for the ensemble results")
                notes[release.name] = (
                    f"Reported for the model, not as a measurement of this file: the paper "
                    f"([arXiv 2212.09058]({BEATS_PAPER}), Table 2) reports {as2m} mAP on the AudioSet evaluation set "
                    f"for BEATs {release.iteration} fine-tuned on AS-2M. The authors publish no per-file figure: "
                    f"{recipe}, and \"the cpt1 models have slightly better results\" ([microsoft/unilm issue "
                    f"#1006]({BEATS_CPT_ISSUE})). The figure is therefore kept out of this card's model-index.")
        elif release.family == "eat" and release.kind == "pretrained":
            fine_tuned = {"eat-base-epoch10-pretrained": "48.6 mAP after AS-2M fine-tuning and 40.3 mAP after AS-20K "
                          "fine-tuning (both fine-tuned files are released and have their own cards)",
                          "eat-base-epoch30-pretrained": "48.9 mAP after AS-2M fine-tuning (released, own card) and "
                          "41.3 mAP after AS-20K fine-tuning (not released)",
                          "eat-large-epoch20-pretrained": "49.5 mAP after AS-2M fine-tuning (released, own card) and "
                          "42.0 mAP after AS-20K fine-tuning (not released)"}[release.name]
            notes[release.name] = (
                f"Reported for models fine-tuned from this checkpoint, not for this file: {fine_tuned}, on the "
                f"AudioSet evaluation set ([EAT README, Performance Summary]({EAT_README}); arXiv 2401.03497).")
        elif release.family == "eat":
            stem = {"eat-base-epoch10-finetuned-as2m": "EAT-base_epoch10_AS2M",
                    "eat-base-epoch10-finetuned-as20k": "EAT-base_epoch10_AS20K",
                    "eat-base-epoch30-finetuned-as2m": "EAT-base_epoch30_AS2M",
                    "eat-large-epoch20-finetuned-as2m": "EAT-large_epoch20_AS2M"}[release.name]
            notes[release.name] = (
                f"The authors publish this checkpoint's per-class AP on the AudioSet evaluation set in "
                f"[results/{stem}.txt](https://github.com/cwx-worst-one/EAT/blob/{LICENSES['eat'].commit}/results/"
                f"{stem}.txt).")
        elif release.name.startswith("byol-a-v1-d"):
            average = {"512": 73.3, "1024": 76.5, "2048": 77.8}[release.name.rsplit("d", 1)[1]]
            notes[release.name] = (
                f"The README's average over these six tasks: {average} % (linear evaluation: a linear classifier "
                "on the frozen embeddings, the protocol of the paper, arXiv 2103.06695).")
        elif release.name == "byol-a-v2-d3072":
            notes[release.name] = (
                "Not a benchmark result: the v2 README gives a set-up check, that linear evaluation on CREMA-D with "
                "this file gives an accuracy of \"about 0.64\" (its example output: 0.64281) "
                "([v2/README.md](https://github.com/nttcslab/byol-a/tree/master/v2)). For the model's results see "
                "the v2 paper (IEEE/ACM TASLP 31, 2023, arXiv 2204.07402); the repository gives no other figure for "
                "this file.")
        elif release.kind == "sed" and release.family in SED_STUDENTS_PSDS1:
            check = (" The README adds that evaluating this released checkpoint with `ex_audioset_strong.py "
                     "--model_name=ATST-F --pretrained=strong --evaluate` \"should give a `val/psds1_macro_averaged` "
                     "of around 46\"." if release.family == "atst_frame" else "")
            notes[release.name] = (
                f"Reported for the model, averaged over three runs; not a measurement of this file: the paper "
                f"reports PSDS1 {SED_STUDENTS_PSDS1[release.family]} on AudioSet strong for the "
                f"{FAMILIES[release.family].name.split(' (')[0]} student of its proposed pipeline "
                f"([arXiv 2409.09546]({SED_PAPER}); [PretrainedSED README, Student Model Performances on AudioSet "
                f"Strong]({SED_README_RESULTS}): \"All results represent averages over three independent runs\")."
                + check)
        elif release.family == "frame_mn":
            notes[release.name] = (
                "The maintainer gives these figures \"for the models in this repo\", with a median filter of 9 frames "
                f"(\"better suited (at least for the CNNs)\") ([PretrainedSED issue #4]({SED_MOBILENET_ISSUE})).")
    return notes


REPORTED_NOTES: dict[str, str] = _reported_notes()


TEMPLATE = """{front_matter}
# {title}

{description}
{not_hosted}
A port of the original [{family_name} code]({source}) to Hugging Face `transformers`, by the audiozoo
package. Converted from {original}{hosting} with `{convert}`. The port reproduces the original
code's outputs: the audiozoo test suite checks features, hidden states and head outputs against outputs that the
original code computed on checkpoints in the original format.
{convert_your_own}
## Use

```python
import torch, audiozoo  # pip install audiozoo; importing registers the model with the Auto classes
from transformers import AutoFeatureExtractor, {model_class}

feature_extractor = AutoFeatureExtractor.from_pretrained("{repo}"){repo_comment}
model = {model_class}.from_pretrained("{repo}", dtype=torch.float32)
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
## Results reported by the authors

{results}
## License

{license_text}
## Limitations

- Needs `transformers>=5`. With `import audiozoo` the package's code is used; without it, pass
  `trust_remote_code=True` to load the copy of the code stored with the weights.
{limitation}- Figures: this card repeats the authors' figures only (above); audiozoo measured none of them. Its tests
  check that the port reproduces the original code's outputs.

## Citation

```bibtex
{citation}
```
"""


def _front_matter(metadata: dict) -> str:
    """The card's YAML header (keys in the given order)."""
    import yaml

    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, width=10_000) + "---\n"


def _model_index(name: str, results: tuple[ReportedResult, ...]) -> list[dict]:
    """The Hub's model-index for the authors' figures: one result per figure, each with its source."""
    return [{"name": name, "results": [{
        "task": {"type": "audio-classification", "name": result.task_name},
        "dataset": {"name": result.dataset, "type": result.dataset_type,
                    **({"config": result.dataset_config} if result.dataset_config else {})},
        "metrics": [{"type": result.metric, "value": float(result.value), "name": result.metric_name}],
        "source": {"name": result.source_name, "url": result.source_url},
    } for result in results]}]


def license_metadata(source: LicenseSource) -> dict:
    """The Hub's license fields: `license`, plus `license_name` and `license_link` for a non-standard one."""
    if source.hub != "other":
        return {"license": source.hub}
    return {"license": "other", "license_name": source.license_name, "license_link": source.url}


def _license_entry(source: LicenseSource) -> str:
    terms = f"\n\n> {source.terms}" if source.terms else ""
    note = f"\n\n{source.note}" if source.note else ""
    if not source.path:
        return f"{source.title} (`{source.hub}`): {source.source}, <{source.url}>.{terms}{note}"
    return f"{source.title} (`{source.hub}`), read in {source.source}: <{source.url}>.{terms}{note}"


def license_text(primary: LicenseSource, lineage: tuple[LicenseSource, ...], *, inherited: str = "") -> str:
    """The card's License section: the weights' license with its source file, the licenses along their lineage,
    and whether a Hub copy is allowed."""
    text = (inherited + "\n\n" if inherited else "") + _license_entry(primary) + "\n"
    if lineage:
        text += "\nThe weights also come from, or are distributed with, files under these terms:\n\n" + "\n".join(
            "- " + _license_entry(source).replace("\n\n", "\n  ") for source in lineage) + "\n"
    blocking = [source for source in (primary, *lineage) if not source.rehostable]
    if blocking:
        text += ("\n**Redistribution is not allowed**: " + "; ".join(source.restriction for source in blocking)
                 + ". Do not upload these weights, or a model trained from them, to the Hub or anywhere else. "
                 "audiozoo grants no rights to them.\n")
    else:
        text += ("\nA copy keeps these terms (and the notices they require). The audiozoo code that runs the model "
                 "is MIT-licensed.\n")
    return text


def _results_text(name: str | None) -> str:
    results = REPORTED_RESULTS.get(name, ()) if name else ()
    note = REPORTED_NOTES.get(name, "") if name else ""
    if name is None:
        return "None: this card describes a conversion of a checkpoint of one's own.\n"
    if not results and not note:
        return "The authors report no figures for this file.\n"
    text = ""
    if results:
        text += ("Copied from the authors' sources (also in this card's `model-index`); audiozoo did not measure "
                 "them.\n\n| dataset | metric | value | source |\n| --- | --- | --- | --- |\n" + "".join(
                     f"| {result.dataset} | {result.metric_name} | {result.value} | "
                     f"[{result.source_name}]({result.source_url}) |\n" for result in results))
    if note:
        text += ("\n" if text else "") + note + "\n"
    return text


def _convert_your_own(release: ReleasedCheckpoint, family: Family, convert: str, out: str) -> str:
    primary, lineage = release.license
    blocking = [source for source in (primary, *lineage) if not source.rehostable]
    download = release.url or family.source
    norm_note = ("\n   `MEAN STD`: the log-mel mean and standard deviation of your data "
                 "(`feature_extractor.compute_norm_stats(clips)`); leave the option out for the README's example "
                 "values.\n" if family.key == "byol_a" else "")
    read = ("Read its license first\n   (<" + primary.url + ">): you use the file under its terms." if primary.path else
            "The weights it derives from carry\n   no license (<" + primary.url + ">): their authors keep all rights, "
            "so using them rests on their permission.")
    translation = ("\nNTT's agreement also forbids modifying or translating the software (§4(b)(iv)); whether a "
                   "format conversion for your own evaluation is covered is for you to judge from the agreement.\n"
                   if any(source.key in ("byol_a", "m2d") for source in blocking) else "")
    return f"""
## Not re-hosted: convert your own copy

The license of these weights does not allow a copy on the Hub ({"; ".join(source.restriction for source in blocking)}).
audiozoo therefore hosts no copy of this checkpoint. To use it:

1. Download `{release.original_filename}` from the original release: <{download}>. {read}
2. Convert your copy on your own machine:

   ```bash
   pip install audiozoo
   {convert}
   ```
{norm_note}
3. Load the folder it wrote, `{out}`, as below. Keep it to yourself: do not push it to the Hub (`audiozoo push`,
   `--push_to_hub`) or share it.
{translation}"""


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
    generic = release is None
    if release is None:
        if config is None:
            raise ValueError("render_model_card needs a release entry or a config")
        family = FAMILIES[_family_of(config)]
        kind = "tokenizer" if getattr(config, "codebook_size", None) else (
            "finetuned" if config.problem_type else "pretrained")
        if family.key in SED_FAMILY_KEYS:
            kind = "sed"
        release = ReleasedCheckpoint(
            "converted-model", "original checkpoint", kind, "",
            description or f"A {family.name} model converted from a checkpoint in the original format.",
            family=family.key,
        )
    family = FAMILIES[release.family]
    primary, lineage = release.license
    hosted = release.rehostable
    title = f"{family.name} {release.iteration} ({release.kind})" if release.iteration else f"{family.name} (converted)"
    frame_rate = config.frame_rate if config is not None else {"beats": 6.25, "ast": 10.0, "eat": 6.25,
                                                               "byol_a": 12.5}.get(family.key, 25.0)
    if generic:
        repo, out = hub_id or "path/to/converted-model", "OUT"
    else:
        repo, out = (release.hub_id, release.name) if hosted else (release.name, release.name)
    checkpoint = release.original_filename if release.filename_known and not generic else "CHECKPOINT.pt"
    sed_name = re.sub(r"_(strong_1|weak|ssl)\.pt$", "", release.original_filename) if not generic else "NAME"
    convert = family.convert.format(file=checkpoint, out=out, name=sed_name)
    if generic:
        original = "a checkpoint in the original format"
    elif release.filename_known:
        original = f"`{release.original_filename}`"
    else:
        original = (f"the Google Drive file the README links as \"{release.original_filename}\" (<{release.url}>; "
                    "the README does not give its file name: save it as `CHECKPOINT.pt`)")
    metadata = {
        "library_name": "transformers",
        **license_metadata(primary),
        "pipeline_tag": "audio-classification" if release.kind in ("finetuned", "sed") else "feature-extraction",
        "tags": ["audio", family.key, "audiozoo"],
        "datasets": [family.dataset_tag],
    }
    if not generic and REPORTED_RESULTS.get(release.name):
        metadata["model-index"] = _model_index(release.name, REPORTED_RESULTS[release.name])
    if hosted:
        not_hosted = ""
    elif generic:
        not_hosted = (
            f"\n> **Check before sharing.** The original authors' {family.name} weights may not be redistributed "
            "(see License). If this model was converted or trained from them, keep it to yourself: do not upload "
            "it. Weights of your own, trained without them, are not bound by those terms: then state their "
            "license here instead.\n")
    else:
        not_hosted = (
            "\n> **No Hub copy.** The license of these weights forbids redistribution (see License). audiozoo "
            "publishes no copy: convert your own from the original file, for your own use under its terms, and "
            "keep the converted folder to yourself.\n")
    return TEMPLATE.format(
        front_matter=_front_matter(metadata),
        title=title,
        description=release.description,
        not_hosted=not_hosted,
        family_name=family.name,
        source=family.source,
        original=original,
        hosting="" if generic or not release.filename_known else f" ({family.hosting})",
        convert=convert,
        convert_your_own="" if hosted or generic else _convert_your_own(release, family, convert, out),
        model_class=MODEL_CLASSES[release.kind],
        repo=repo,
        repo_comment="" if hosted or generic else "  # the folder you converted (above)",
        usage=USAGE[release.kind].format(hub_id=repo, labels=LABEL_NOTES[family.key]),
        front_end=family.front_end,
        tokens=family.tokens,
        frame_rate=frame_rate,
        architecture=_architecture_table(config),
        results=_results_text(None if generic else release.name),
        license_text=license_text(primary, lineage),
        limitation=LIMITATIONS[family.key],
        citation=family.citation,
    )


FINETUNED_TEMPLATE = """{front_matter}
# {title}

{description}
{not_hosted}
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

## License

{license_text}
## Limitations

- The figures above come from this run's own split of its data (the manifest's `split` column, else a seeded
  split by group or stratified by label), not from a published benchmark protocol.
- Input: mono float waveforms at {sampling_rate} Hz; the feature extractor refuses other rates, the pipelines
  and the `audiozoo` CLI resample.

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
    release = next((release for release in RELEASES if base_name and release.hub_id == base_name), None)
    primary, lineage = release.license if release else license_of(family.key)
    if base:
        inherited = (f"This model was trained from {family.name} weights (`{base_name or Path(base).name}`), so it "
                     "keeps the license of the base model's original release: ")
    else:
        inherited = (f"This model was trained from a {family.name} config, without original weights; the card keeps "
                     "the license of the family's original release by default (replace it if your weights owe "
                     "nothing to that release): ")
    blocking = [source for source in (primary, *lineage) if not source.rehostable]
    inherited += (f"{primary.title}. A fine-tune of these weights is a model trained from them, so their terms hold "
                  "for it too." if blocking else f"{primary.title}.")
    not_hosted = "" if not blocking else (
        f"\n> **Check before sharing.** {family.name} weights of the original release may not be redistributed, "
        "and neither may a model trained from them (see License): keep this model to yourself unless it owes "
        "nothing to those weights.\n")
    metadata = {
        "library_name": "transformers",
        **license_metadata(primary),
        "pipeline_tag": "audio-classification",
        "tags": ["audio", family.key, "audiozoo", "fine-tuned",
                 *(["sound-event-detection"] if task == "frame" else [])],
        **({"base_model": base_name} if base_name else {}),
    }
    return FINETUNED_TEMPLATE.format(
        front_matter=_front_matter(metadata),
        not_hosted=not_hosted,
        license_text=license_text(primary, lineage, inherited=inherited),
        title=hub_id.split("/")[-1],
        description=description,
        model_class=model_class,
        hub_id=hub_id,
        sampling_rate=getattr(config, "sampling_rate", None) or 16000,
        usage=usage,
        training=_table(training_rows),
        results=result_text,
        labels=label_text,
        citation=family.citation,
    )

"""Our AST vs transformers' ASTForAudioClassification on the same weights, end to end (features included).

    python bench/bench_ast.py [--batch 8] [--seconds 10] [--repeats 2] [--layers 12]

The released AudioSet architecture (DeiT-base, 10/10 strides, 1024 frames, 527 classes) with random weights is
built with audiozoo, copied into transformers' in-tree class (its single LayerNorm eps set to the original
encoder's 1e-6, the closest it can get), and both run on a batch of clips cut from ../shared/audio:
ours = AstFeatureExtractor (batched torch) + AstForAudioClassification; theirs = ASTFeatureExtractor (numpy, one
clip at a time) + ASTForAudioClassification. Prints the logits difference on identical features, end to end,
and the speed ratio.
"""

from __future__ import annotations

import argparse

import torch
from transformers import ASTConfig, ASTFeatureExtractor
from transformers import ASTForAudioClassification as TransformersAST

from audiozoo import AstConfig, AstFeatureExtractor, AstForAudioClassification

from bench_frontend import make_clips
from timing import best_time


def to_transformers(model: AstForAudioClassification) -> TransformersAST:
    """Copy our weights into transformers' class (renamed modules)."""
    ours = model.config
    config = ASTConfig(
        hidden_size=ours.hidden_size, num_hidden_layers=ours.num_hidden_layers,
        num_attention_heads=ours.num_attention_heads, intermediate_size=ours.intermediate_size,
        frequency_stride=ours.frequency_stride, time_stride=ours.time_stride, max_length=ours.max_length,
        num_mel_bins=ours.num_mel_bins, layer_norm_eps=ours.layer_norm_eps, id2label=ours.id2label,
    )
    theirs = TransformersAST(config).eval()
    source = model.state_dict()
    target = {}
    prefix = "audio_spectrogram_transformer."
    renames = {
        "ast.embeddings.cls_token": "embeddings.cls_token",
        "ast.embeddings.distillation_token": "embeddings.distillation_token",
        "ast.embeddings.position_embeddings": "embeddings.position_embeddings",
        "ast.embeddings.patch_embedding.conv.weight": "embeddings.patch_embeddings.projection.weight",
        "ast.embeddings.patch_embedding.conv.bias": "embeddings.patch_embeddings.projection.bias",
        "ast.layer_norm.weight": "layernorm.weight",
        "ast.layer_norm.bias": "layernorm.bias",
    }
    for ours_key, their_key in renames.items():
        target[prefix + their_key] = source[ours_key]
    for index in range(ours.num_hidden_layers):
        layer, their = f"ast.layers.{index}.", f"{prefix}layers.{index}."
        for kind in ("weight", "bias"):
            for name in ("q_proj", "k_proj", "v_proj"):
                target[f"{their}attention.{name}.{kind}"] = source[f"{layer}attention.{name}.{kind}"]
            target[f"{their}attention.o_proj.{kind}"] = source[f"{layer}attention.out_proj.{kind}"]
            target[f"{their}layernorm_before.{kind}"] = source[f"{layer}attention_norm.{kind}"]
            target[f"{their}layernorm_after.{kind}"] = source[f"{layer}mlp_norm.{kind}"]
            target[f"{their}mlp.fc1.{kind}"] = source[f"{layer}mlp.fc1.{kind}"]
            target[f"{their}mlp.fc2.{kind}"] = source[f"{layer}mlp.fc2.{kind}"]
    for kind in ("weight", "bias"):
        target[f"classifier.layernorm.{kind}"] = source[f"classifier.layer_norm.{kind}"]
        target[f"classifier.dense.{kind}"] = source[f"classifier.dense.{kind}"]
    theirs.load_state_dict(target, strict=True)
    return theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--layers", type=int, default=12)
    args = parser.parse_args()

    torch.manual_seed(0)
    labels = {index: f"class_{index}" for index in range(527)}
    model = AstForAudioClassification(AstConfig(num_hidden_layers=args.layers, id2label=labels)).eval()
    theirs = to_transformers(model)
    clips, source = make_clips(args.batch, args.seconds)
    print(f"{args.batch} clips x {args.seconds:g} s ({source}); layers={args.layers}; threads={torch.get_num_threads()}")

    our_fe = AstFeatureExtractor()
    their_fe = ASTFeatureExtractor(num_mel_bins=128, max_length=1024)

    with torch.inference_mode():
        same_input = our_fe(clips, sampling_rate=16000)["input_values"]
        model_diff = (model(same_input).logits - theirs(same_input).logits).abs().max().item()

    def ours():
        with torch.inference_mode():
            return model(**our_fe(clips, sampling_rate=16000)).logits

    def transformers_port():
        with torch.inference_mode():
            return theirs(**their_fe(clips, sampling_rate=16000, return_tensors="pt")).logits

    our_time, our_logits = best_time(ours, args.repeats)
    their_time, their_logits = best_time(transformers_port, args.repeats)
    end_to_end_diff = (our_logits - their_logits).abs().max().item()
    print(f"audiozoo AST (batched torch front end):       {our_time:7.2f} s")
    print(f"transformers AST (ASTFeatureExtractor numpy): {their_time:7.2f} s")
    print(f"max abs logits diff: same features {model_diff:.2e} (head LayerNorm eps 1e-5 vs 1e-6); "
          f"end to end {end_to_end_diff:.2e} (their front end skips the waveform-mean removal)")
    ratio = their_time / our_time
    print(f"speed-up end to end: {ratio:.2f}x (target >= 1.3x: {'met' if ratio >= 1.3 else 'NOT met'}); "
          f"outputs equal to 1e-4: {'yes' if max(model_diff, end_to_end_diff) <= 1e-4 else 'NO'}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes a tiny Marian (OPUS-MT) model with random weights and the real architecture, and
what Hugging Face `transformers` makes of it, for `bletchley-ai`'s Marian test.

The model is a Hugging Face Marian directory as an operator would import one (config.json,
model.safetensors, source.spm, target.spm, vocab.json), its SentencePiece models trained here
on the test sentences so that tokenisation is exercised for real. The reference records, for
each input sentence, the token ids MarianTokenizer gives, the ids greedy decoding generates,
and the decoded text. Usage:

    python3 scripts/marian-reference.py OUT_DIR SOURCE.txt TARGET.txt

Needs torch, transformers and sentencepiece (pinned versions in the README of the fixture).
"""
import json
import os
import sys

import sentencepiece as spm
import torch
import transformers
from transformers import MarianConfig, MarianMTModel, MarianTokenizer


def main():
    out, source_file, target_file = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    sentences = [l.strip() for l in open(source_file, encoding="utf-8") if l.strip()]
    for side, corpus, size in (("source", source_file, 100), ("target", target_file, 100)):
        spm.SentencePieceTrainer.train(
            input=corpus,
            hard_vocab_limit=False,
            model_prefix=os.path.join(out, side),
            vocab_size=size,
            model_type="unigram",
            character_coverage=1.0,
            bos_id=-1,
            eos_id=1,
            unk_id=0,
            pad_id=-1,
            minloglevel=2,
        )
        os.rename(os.path.join(out, side + ".model"), os.path.join(out, side + ".spm"))
        os.remove(os.path.join(out, side + ".vocab"))
    # One vocabulary for both sides, as OPUS-MT's are: specials first, then every piece.
    vocab = {"</s>": 0, "<unk>": 1}
    for side in ("source", "target"):
        sp = spm.SentencePieceProcessor(model_file=os.path.join(out, side + ".spm"))
        for i in range(sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            if piece not in vocab:
                vocab[piece] = len(vocab)
    vocab["<pad>"] = len(vocab)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=0)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"source_lang": "es", "target_lang": "en", "model_max_length": 64}, f)

    # Two sets of weights for one configuration: a wild one (large weights, so that greedy
    # decoding wanders over the vocabulary and every output token is a test), whose logits are
    # chaotic enough that float32 rounding moves them by up to 1e-2, and a tame one (small
    # weights) whose logits any correct float32 implementation meets to 1e-6.
    write_model(out, vocab, sentences, init_std=1.0, seed=24)
    write_model(os.path.join(out, "tame"), vocab, sentences, init_std=0.1, seed=25, eos_bias=EOS_BIAS)
    for name in ("generation_config.json", "tame/generation_config.json", "tame/config.json"):
        p = os.path.join(out, name)
        if os.path.exists(p):
            os.remove(p)


# The tame model's end token is made likelier, so that its sentences end at different lengths
# and beam search finishes beams before the limit.
EOS_BIAS = float(os.environ.get("EOS_BIAS", "3.0"))


def write_model(out, vocab, sentences, init_std, seed, eos_bias=0.0):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=len(vocab),
        decoder_vocab_size=len(vocab),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["</s>"],
        decoder_start_token_id=vocab["<pad>"],
        forced_eos_token_id=vocab["</s>"],
        bad_words_ids=[[vocab["<pad>"]]],
        share_encoder_decoder_embeddings=True,
        init_std=init_std,
    )
    model = MarianMTModel(config).eval()
    with torch.no_grad():
        model.final_logits_bias.normal_(0.0, 0.1)
        model.final_logits_bias[0, vocab["</s>"]] += eos_bias
    model.save_pretrained(out, safe_serialization=True)
    tokenizer_dir = os.path.dirname(out) if os.path.basename(out) == "tame" else out
    tok = MarianTokenizer.from_pretrained(tokenizer_dir)
    reference = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "init_std": init_std,
        "max_new_tokens": 24,
        "cases": [],
    }
    # The test sentences, and text that exercises normalisation and unknown pieces: runs of
    # spaces, a ligature and full-width letters (NFKC), characters no piece covers.
    extra = ["  El   ﬁn  de  ＡÑO ", "Llamó al 600 123 456 — ¿vale? 你好 ✓", "a"]
    for s in sentences[:12] + extra:
        ids = tok(s, return_tensors="pt").input_ids
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=24, num_beams=1, do_sample=False)
            # What `bletchley translate` asks of a sentence: twice its input tokens and ten,
            # within the window.
            limit = min(2 * ids.shape[1] + 10, config.max_position_embeddings - 1)
            whole = model.generate(ids, max_new_tokens=limit, num_beams=1, do_sample=False)
            # Beam search as OPUS-MT models ask for it (four beams, transformers' defaults
            # otherwise: length penalty 1, no early stopping).
            beams = model.generate(ids, max_new_tokens=24, num_beams=4, do_sample=False)
            first = model(
                input_ids=ids, decoder_input_ids=torch.tensor([[config.decoder_start_token_id]])
            ).logits[0, -1]
        reference["cases"].append(
            {
                "text": s,
                "input_ids": ids[0].tolist(),
                "output_ids": gen[0].tolist(),
                "output_text": tok.decode(gen[0], skip_special_tokens=True),
                "first_logits": [round(float(x), 6) for x in first],
                "translation": tok.decode(whole[0], skip_special_tokens=True),
                "beam4_output_ids": beams[0].tolist(),
            }
        )
    with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reference sentence vectors from sentence-transformers (PyTorch), for the embedding test.

    python scripts/embedding-reference.py MODEL_DIR TEXTS.txt OUT.json

Embeds each line of TEXTS.txt (split on '\\n' only, as `bletchley embed` splits) with
sentence-transformers and writes the vectors with the versions that made them. The test suite
ships the output for all-MiniLM-L6-v2 (crates/bletchley/tests/data/embed/), so a run needs no
PyTorch; rerun this to check the shipped vectors or another model:

    python3 -m venv /tmp/st && /tmp/st/bin/pip install sentence-transformers
    /tmp/st/bin/python scripts/embedding-reference.py ~/.cache/bletchley/models/all-minilm-l6-v2 \\
        crates/bletchley/tests/data/embed/texts.txt crates/bletchley/tests/data/embed/minilm-reference.json
"""

import json
import sys

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer


def main() -> None:
    model_dir, texts_path, out_path = sys.argv[1:4]
    with open(texts_path, encoding="utf-8") as f:
        texts = f.read().split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    model = SentenceTransformer(model_dir, device="cpu")
    vectors = model.encode(texts, batch_size=32, convert_to_numpy=True)
    out = {
        "model": model_dir.rstrip("/").rsplit("/", 1)[-1],
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "texts": texts,
        "vectors": [[round(float(x), 7) for x in v] for v in vectors],
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()

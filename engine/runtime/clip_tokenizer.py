"""CLIP's byte-level BPE tokenizer without torch, for text queries through ONNX Runtime.

open_clip's SimpleTokenizer (from OpenAI's CLIP, MIT licence) returns torch tensors, and
importing open_clip imports torch (about 2 s of a query process on 2 cores). This is the same
algorithm over the same merges file (read from the installed open_clip package, not imported)
giving numpy int64 rows; tests/engine/test_clip_text_onnx.py checks it token for token against
open_clip's on varied text. Only the defaults open_clip uses for CLIP models are supported:
'lower' cleaning and truncation that keeps the end-of-text token.
"""
from __future__ import annotations

import gzip
import html
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

SOT, EOT = "<start_of_text>", "<end_of_text>"


def default_merges() -> Path:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("open_clip is not installed: its BPE merges file is needed")
    return Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"


@lru_cache(maxsize=1)
def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _fixed(text: str) -> str:
    """ftfy.fix_text, as open_clip cleans text; plain ASCII without '&' or control characters is
    what ftfy leaves alone (mojibake, curly quotes, widths and ligatures need other characters,
    line breaks are whitespace here anyway), and importing ftfy costs ~0.1 s of a query process."""
    if text.isascii() and "&" not in text and all(c >= " " or c in "\t\n\r" for c in text) and "\x7f" not in text:
        return text
    import ftfy

    return ftfy.fix_text(text)


class ClipTokenizer:
    def __init__(self, merges_file: Path | None = None, context_length: int = 77):
        import regex

        lines = gzip.open(merges_file or default_merges()).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
        byte_chars = list(_bytes_to_unicode().values())
        vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [SOT, EOT]
        self.encoder = {t: i for i, t in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.sot, self.eot = self.encoder[SOT], self.encoder[EOT]
        self.context_length = context_length
        self._cache = {SOT: SOT, EOT: EOT}
        self._pat = regex.compile(SOT + "|" + EOT + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                                  regex.IGNORECASE)

    def _bpe(self, token: str) -> str:
        if token in self._cache:
            return self._cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:])}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == best[0] and word[i + 1] == best[1]:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        out = " ".join(word)
        self._cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        text = " ".join(html.unescape(html.unescape(_fixed(text))).strip().split()).lower()
        enc = _bytes_to_unicode()
        ids = []
        for token in self._pat.findall(text):
            token = "".join(enc[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(token).split(" "))
        return ids

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.context_length), np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot] + self.encode(text) + [self.eot]
            if len(ids) > self.context_length:
                ids = ids[:self.context_length]
                ids[-1] = self.eot
            out[row, :len(ids)] = ids
        return out

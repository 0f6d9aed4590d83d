"""Text -> the input tokens an encoder's backend scores, for token-level explanations.

Both backends answer the same three questions: which input ids a text becomes and which of
their positions are stored as rows (``tokenized``), what each id is as a string (``strings``),
and where the text's own tokens lie in it (``text_spans``). The torch view asks
sentence-transformers' ``MultiVectorEncoder``; the ONNX view asks the exported ``tokenizers``
file and the spec of :mod:`.onnx_encoder`, so explaining the hits of an ONNX index never
imports torch.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence

Span = tuple[int, int]


class TokenView(Protocol):
    special_ids: set[int]  # ids of markers, padding, unknown and mask tokens

    def tokenized(self, text: str, task: str) -> tuple[list[int], list[int]]:
        """(input ids, positions stored as rows) of ``text`` for ``task`` ("query" or
        "document"): padding and, for documents, skip-list tokens left out of the positions."""

    def strings(self, ids: Sequence[int]) -> list[str]:
        """The vocabulary string of each id."""

    def text_spans(self, text: str, max_length: int) -> list[tuple[int, Span]]:
        """(id, [start, end) in ``text``) of the text's own (non-special) tokens, encoded
        alone and truncated to ``max_length`` ids with the special tokens."""


class TorchTokenView:
    """The tokens of a sentence-transformers ``MultiVectorEncoder`` (the torch backend)."""

    def __init__(self, model: Any, prefixes: dict[str, str | None],
                 skiplist: Sequence[str] | None) -> None:
        self.model = model
        self.tokenizer = model.tokenizer
        self.prefixes = prefixes
        self.skip_ids = _resolve_skiplist(self.tokenizer, skiplist or [])
        self.special_ids = {int(i) for i in self.tokenizer.all_special_ids}

    def tokenized(self, text: str, task: str) -> tuple[list[int], list[int]]:
        feats = self.model.preprocess([text], prompt=self.prefixes[task], task=task)
        ids = [int(x) for x in feats["input_ids"][0].tolist()]
        keep = [p for p, a in enumerate(feats["attention_mask"][0].tolist()) if a]
        if task == "document":
            keep = [p for p in keep if ids[p] not in self.skip_ids]
        return ids, keep

    def strings(self, ids: Sequence[int]) -> list[str]:
        return self.tokenizer.convert_ids_to_tokens(list(ids))

    def text_spans(self, text: str, max_length: int) -> list[tuple[int, Span]]:
        try:
            enc = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=True,
                                 truncation=True, max_length=max_length)
        except (NotImplementedError, TypeError, ValueError):
            return []
        return [(int(i), (int(s[0]), int(s[1])))
                for i, s in zip(enc["input_ids"], enc["offset_mapping"])
                if i not in self.special_ids]


def _resolve_skiplist(tokenizer: Any, words: Sequence[str]) -> set[int]:
    # As MultiVectorMask resolves it: a word the vocabulary maps to the unknown token is dropped
    # (unless the word is the unknown token itself).
    unk_id, unk = getattr(tokenizer, "unk_token_id", None), getattr(tokenizer, "unk_token", None)
    out = set()
    for word in words:
        i = tokenizer.convert_tokens_to_ids(word)
        if unk_id is None or i != unk_id or word == unk:
            out.add(int(i))
    return out


class OnnxTokenView:
    """The tokens of an :class:`~.onnx_encoder.OnnxTextModel` (``tokenizers`` only)."""

    def __init__(self, onnx_model: Any) -> None:
        self.onnx_model = onnx_model
        self.tokenizer = onnx_model.tokenizer
        self.special_ids = {int(i) for i, tok in self.tokenizer.get_added_tokens_decoder().items()
                            if tok.special}

    def tokenized(self, text: str, task: str) -> tuple[list[int], list[int]]:
        return self.onnx_model.scored_token_ids(text, task)

    def strings(self, ids: Sequence[int]) -> list[str]:
        return [self.tokenizer.id_to_token(int(i)) or "" for i in ids]

    def text_spans(self, text: str, max_length: int) -> list[tuple[int, Span]]:
        self.tokenizer.enable_truncation(max_length)
        enc = self.tokenizer.encode(text, add_special_tokens=True)
        return [(int(i), (int(s[0]), int(s[1])))
                for i, s, special in zip(enc.ids, enc.offsets, enc.special_tokens_mask)
                if not special]

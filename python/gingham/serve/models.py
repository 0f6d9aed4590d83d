"""Request and response bodies of the HTTP API (pydantic models; they make the OpenAPI schema).

An embedding (one query or document) travels in one of two forms, wherever the API takes one:

- nested JSON lists, ``[[float] * dim] * n_tokens``;
- packed (:class:`PackedMatrix`): ``{"dtype": "float32", "shape": [n_tokens, dim], "data":
  base64 of the n_tokens * dim little-endian float32 values, row-major}`` — about 4x smaller
  than the JSON text and decoded without parsing a number per value; ``gingham.Client`` sends
  this form.

Shapes, dims and finiteness are checked by the service against the open index, not here.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from .limits import InvalidArgument


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PackedMatrix(_Body):
    """A float32 matrix as bytes: ``data`` is the standard base64 (RFC 4648, with padding) of
    shape[0] * shape[1] little-endian float32 values in row-major order."""

    dtype: Literal["float32"] = Field("float32", description="element type (only float32)")
    shape: Tuple[StrictInt, StrictInt] = Field(description="[n_tokens, dim]")
    data: StrictStr = Field(description="base64 of the little-endian float32 values, "
                                        "row-major; exactly 4 * n_tokens * dim bytes")

    def to_array(self, name: str) -> np.ndarray:
        """The (n_tokens, dim) float32 array; InvalidArgument naming ``name`` for a negative
        shape, invalid base64 or a byte count that does not match the shape."""
        rows, cols = self.shape
        if rows < 0 or cols < 0:
            raise InvalidArgument(f"{name}.shape must be two non-negative integers; got "
                             f"{list(self.shape)}")
        try:
            raw = base64.b64decode(self.data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidArgument(f"{name}.data is not valid base64 ({exc})") from None
        if len(raw) != 4 * rows * cols:
            raise InvalidArgument(f"{name}.data holds {len(raw)} bytes; shape {list(self.shape)} "
                             f"float32 needs {4 * rows * cols}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(rows, cols)


Matrix = Union[List[List[float]], PackedMatrix]
Scalar = Union[StrictBool, StrictInt, StrictFloat, StrictStr, None]


def as_array(x: Any, name: str) -> Any:
    """A PackedMatrix decoded to a float32 array; nested lists are returned unchanged."""
    return x.to_array(name) if isinstance(x, PackedMatrix) else x


class SearchRequest(_Body):
    """Exactly one of ``query``, ``queries``, ``embedding``, ``embeddings``."""

    query: Optional[StrictStr] = Field(None, description="one text query (text indexes)")
    queries: Optional[List[StrictStr]] = Field(None, description="several text queries")
    embedding: Optional[Matrix] = Field(None, description="one query: n_tokens x dim floats "
                                                          "(nested lists or packed)")
    embeddings: Optional[List[Matrix]] = Field(None, description="several query embeddings")
    k: int = Field(10, ge=1, description="hits per query")
    mode: Literal["plaid", "exact"] = "plaid"
    hybrid: Optional[bool] = Field(None, description="fuse BM25 scores (text queries of an "
                                                     "index built with BM25; default false)")
    subset: Optional[List[StrictStr]] = Field(None, description="search only these ids")
    where: Optional[StrictStr] = Field(
        None, description="SQL expression over each document's metadata JSON, e.g. "
                          "\"json_extract(metadata, '$.lang') = ?\"")
    params: Optional[List[Scalar]] = Field(None, description="values bound to ? in where")
    with_documents: bool = Field(False, description="embedding queries: add text and metadata "
                                                    "to each hit")


class Hit(BaseModel):
    id: str
    score: float = Field(description="raw MaxSim sum (or the fused score for hybrid search)")
    rank: int
    text: Optional[str] = None
    metadata: Optional[Dict[str, Any]] = None


class SearchResponse(BaseModel):
    results: List[List[Hit]] = Field(description="one hit list per query, best first")
    took_ms: float


class RerankRequest(_Body):
    """Exactly one of ``query`` (text) and ``embedding``."""

    query: Optional[StrictStr] = None
    embedding: Optional[Matrix] = None
    ids: List[StrictStr] = Field(description="candidate document ids")
    k: Optional[int] = Field(None, ge=1, description="keep the best k (default: all)")


class RerankResponse(BaseModel):
    results: List[Hit]
    took_ms: float


class DocumentIn(_Body):
    id: StrictStr = Field(min_length=1, max_length=512)
    text: Optional[StrictStr] = Field(None, description="encoded by a text index; stored with "
                                                        "embeddings otherwise")
    embedding: Optional[Matrix] = Field(None, description="n_tokens x dim floats (nested "
                                                          "lists or packed)")
    metadata: Optional[Dict[str, Any]] = None


class AddRequest(_Body):
    documents: List[DocumentIn]
    upsert: bool = Field(False, description="replace documents whose id exists (without it, "
                                            "an existing id is refused with 422)")


class AddResponse(BaseModel):
    added: int
    ids: List[str]
    n_docs: int


class DeleteRequest(_Body):
    ids: List[StrictStr]
    missing: Literal["raise", "ignore"] = Field(
        "raise", description="raise: 404 when an id is unknown; ignore: skip unknown ids")


class DeleteResponse(BaseModel):
    deleted: int
    n_docs: int


class Document(BaseModel):
    id: str
    text: Optional[str] = None
    metadata: Optional[Dict[str, Any]] = None


class Health(BaseModel):
    status: Literal["ok"]


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. invalid_argument, "
                                  "not_found, limit_exceeded, overloaded, timeout, internal")
    message: str
    details: Optional[List[Dict[str, Any]]] = None


class ErrorResponse(BaseModel):
    error: ErrorBody

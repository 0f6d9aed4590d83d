"""Request and response bodies of the HTTP API (pydantic models; they make the OpenAPI schema).

Embeddings travel as nested JSON lists: one query or document is ``[[float] * dim] * n_tokens``.
Shapes, dims and finiteness are checked by the service against the open index, not here.
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

Matrix = List[List[float]]
Scalar = Union[StrictBool, StrictInt, StrictFloat, StrictStr, None]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchRequest(_Body):
    """Exactly one of ``query``, ``queries``, ``embedding``, ``embeddings``."""

    query: Optional[StrictStr] = Field(None, description="one text query (text indexes)")
    queries: Optional[List[StrictStr]] = Field(None, description="several text queries")
    embedding: Optional[Matrix] = Field(None, description="one query: n_tokens x dim floats")
    embeddings: Optional[List[Matrix]] = Field(None, description="several query embeddings")
    k: int = Field(10, ge=1, description="hits per query")
    mode: Literal["plaid", "exact"] = "plaid"
    hybrid: Optional[bool] = Field(None, description="fuse BM25 (text queries; default: the "
                                                     "index's setting)")
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
    embedding: Optional[Matrix] = Field(None, description="n_tokens x dim floats")
    metadata: Optional[Dict[str, Any]] = None


class AddRequest(_Body):
    documents: List[DocumentIn]
    upsert: bool = Field(False, description="replace documents whose id exists")


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
                                  "not_found, limit_exceeded, overloaded, timeout")
    message: str
    details: Optional[List[Dict[str, Any]]] = None


class ErrorResponse(BaseModel):
    error: ErrorBody

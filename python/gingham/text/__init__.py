"""The text layer: encoder, PCA, BM25, fusion, token explanations, document readers and the
Retriever.

Loaded only when used (``gingham.Retriever`` is a lazy attribute); torch is imported only when
a model encodes.
"""

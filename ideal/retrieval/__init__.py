"""Retrieval: retrievers (`retriever`), the faiss scene index (`index`) and embeddings on disk (`embeddings`).

Import from the submodules; this package imports nothing itself, so loading one part does not load faiss or torch.
"""

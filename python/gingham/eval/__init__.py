"""Evaluation on BEIR folders: metrics, the embedding cache and the method comparison."""

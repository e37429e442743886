"""Pretrained music representations (embeddings) used as features for mood models."""

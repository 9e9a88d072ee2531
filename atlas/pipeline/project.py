"""Project embeddings to 2D with UMAP (cosine), reusing the kNN graph already computed."""

from __future__ import annotations

import warnings

import numpy as np

from atlas.errors import AtlasError
from atlas.pipeline.neighbors import Neighbors
from atlas.settings import ProjectSettings


def project(
    vectors: np.ndarray, neighbors: Neighbors, *, settings: ProjectSettings, seed: int | None
) -> np.ndarray:
    """float32 (N, 2) map coordinates."""
    import umap

    if not (vectors != vectors[0]).any():  # UMAP's PCA init divides by their zero spread
        raise AtlasError(f"all {len(vectors):,} texts have the same embedding (the same text?); "
                         "a map needs texts that differ")

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=neighbors.indices.shape[1],
        metric="cosine",
        min_dist=settings.min_dist,
        init="pca",  # spectral init fails or takes minutes past ~100k records
        n_epochs=settings.n_epochs,
        random_state=seed,
        precomputed_knn=(neighbors.indices, neighbors.distances, None),
        low_memory=True,
        verbose=False,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        xy = reducer.fit_transform(vectors)
    return np.asarray(xy, dtype=np.float32)

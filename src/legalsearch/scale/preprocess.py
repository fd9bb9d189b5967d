"""Preprocessing as Ray Data: the token cache's batches (``tokencache._batches``) mapped by actors that each
hold one ``Preprocessor`` (spaCy loads once per actor), in order, into the same lines the single-process path
writes (``tokencache._lines``): the entry is byte-identical."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from legalsearch import tokencache
from legalsearch.config import PreprocessConfig
from legalsearch.text import Preprocessor


class _Preprocess:
    """A Ray Data actor: one preprocessor, batches of cache batches in, their finished lines out."""

    def __init__(self, config: PreprocessConfig, snippet_head: int) -> None:
        self.preprocessor = Preprocessor(dataclasses.replace(config, n_process=1))
        self.snippet_head = snippet_head

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"kind": [], "text": [], "tokens": [], "documents": [], "spans": []}
        for kind, texts in zip(batch["kind"].tolist(), batch["texts"], strict=True):
            lines = tokencache._lines(self.preprocessor, (str(kind), [str(t) for t in texts]), self.snippet_head)
            out["kind"].append(lines.kind)
            out["text"].append(lines.text)
            out["tokens"].append(lines.tokens)
            out["documents"].append(lines.documents)
            out["spans"].append(lines.spans)
        return out


def ray_lines(batches: Iterator[tokencache._Batch], config: PreprocessConfig, snippet_head: int = 0,
              actors: int | None = None) -> Iterator[tokencache._Lines]:
    """``tokencache.fill(lines_of=ray_lines)``: the batches preprocessed by Ray Data actors, in order."""
    import ray
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    items = [{"kind": kind, "texts": texts} for kind, texts in batches]
    if not items:
        return
    n = actors if actors is not None else max(1, int(ray.cluster_resources().get("CPU", 1)))
    source = ray.data.from_items(items, override_num_blocks=min(len(items), 4 * n))
    ds = source.map_batches(_Preprocess, fn_constructor_args=(config, snippet_head), batch_size=1, batch_format="numpy",
                        concurrency=min(n, len(items)), num_cpus=1)
    for row in ds.iter_rows():
        yield tokencache._Lines(str(row["kind"]), str(row["text"]), int(row["tokens"]), int(row["documents"]),
                                str(row["spans"]))

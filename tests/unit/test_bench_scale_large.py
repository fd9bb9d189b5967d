"""bench/scale_large.py on small inputs: the chunked mixture repeats, the streamed exact top-10 is exact search's,
and a streamed IVF-PQ + refine build reports its figures and a markdown section."""

from __future__ import annotations

import numpy as np

from bench.report import markdown
from bench.scale_large import IndexSpec, Mixture, RunningTopK, default_spec, recall_at_10, run_scale_large


def test_chunks_are_made_again_the_same_and_are_unit_vectors() -> None:
    mix = Mixture(2500, 16, seed=3, clusters=20, chunk=1000)
    assert mix.n_chunks == 3
    blocks = [b for _, b in mix.chunks()]
    assert [len(b) for b in blocks] == [1000, 1000, 500]
    np.testing.assert_array_equal(mix.chunk_at(1), blocks[1])
    np.testing.assert_array_equal(Mixture(2500, 16, seed=3, clusters=20, chunk=1000).chunk_at(2), blocks[2])
    np.testing.assert_array_equal(mix.head(1200), np.concatenate(blocks)[:1200])
    np.testing.assert_allclose(np.linalg.norm(np.concatenate(blocks), axis=1), 1.0, atol=1e-5)
    q = mix.queries(5)
    assert q.shape == (5, 16) and not np.isin(q, np.concatenate(blocks)).all(axis=1).any()


def test_the_running_top10_is_exact_search() -> None:
    mix = Mixture(3000, 16, seed=4, clusters=30, chunk=700)
    q = mix.queries(40)
    top = RunningTopK(q)
    for first, block in mix.chunks():
        top.update(first, block)
    x = np.concatenate([b for _, b in mix.chunks()])
    exact = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :10]
    assert recall_at_10(top.rows, exact) == 1.0
    assert (top.rows == exact).mean() > 0.99  # order too, up to float ties


def test_a_small_streamed_build_reports_every_figure() -> None:
    out = run_scale_large([3000], d=16, queries=30, nprobes=(2, 8), k_factors=(1, 8), threads=1,
                          specs=[IndexSpec(16, 4)], chunk=1000)
    (build,) = out["builds"]
    assert build["index"] == "IVF16,PQ4x8,Refine(SQ8)" and build["n"] == 3000
    assert build["disk_mb"] > 0 and build["peak_rss_mb"] >= build["rss_after_build_mb"] > 0
    by = {(s["nprobe"], s["k_factor"]): s["recall_at_10"] for s in build["searches"]}
    assert by[(8, 8)] >= 0.9 and by[(8, 8)] >= by[(8, 1)]  # the refine step re-ranks with better distances
    assert build["batch"]["queries"] == 30
    text = markdown({"run": {}, "machine": {}, "scale-large": out})
    assert "IVF16,PQ4x8,Refine(SQ8)" in text and "| 8 | 8 |" in text


def test_the_default_index_for_10m_200d() -> None:
    assert default_spec(10_000_000, 200) == IndexSpec(4096, 50)
    assert default_spec(1_000_000, 200) == IndexSpec(4096, 50)
    assert default_spec(20_000, 200) == IndexSpec(512, 50)

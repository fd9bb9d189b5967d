"""Suggestion lookups: folding, prefix ranking by document frequency, and typo matches checked by brute force."""

from __future__ import annotations

import random

import pytest
from rapidfuzz.distance import Levenshtein

from legalsearch.errors import EmptyQueryError
from legalsearch.suggest import SuggestionIndex, _Entries, _prefix_distances_within, fold, prefix_distances


def _index(words: dict[str, int]) -> SuggestionIndex:
    entries = _Entries([], [], [], [], [], [])
    for text, df in words.items():
        entries.text.append(text)
        entries.kind.append("keyword")
        entries.doc_id.append(None)
        entries.law.append(None)
        entries.df.append(df)
        entries.keys.append([fold(text)])
    return SuggestionIndex(entries)


def test_fold_spells_out_umlauts_and_ignores_case_accents_and_spacing() -> None:
    assert fold("Kündigung") == fold("KUENDIGUNG") == "kuendigung"
    assert fold("Straße") == "strasse"
    assert fold("Café  crème") == "cafe creme"
    assert fold("BGB §573") == fold("bgb § 573") == "bgb § 573"
    assert fold("  ordentliche_kündigung ") == "ordentliche kuendigung "


def test_prefix_matches_ranked_by_document_frequency_then_text() -> None:
    index = _index({"kündigung": 50, "kündigen": 70, "kündigungsfrist": 10, "kunde": 99, "miete": 5, "kündbar": 10})
    # the exact prefix matches first, then "kündbar" one typo away ("kuendi" -> "kuendb"): 5 characters allow one
    assert [(s.text, s.edits) for s in index.suggest("Kündi", 8)] == [
        ("kündigen", 0), ("kündigung", 0), ("kündigungsfrist", 0), ("kündbar", 1)]
    assert [s.text for s in index.suggest("kuend", 2)] == ["kündigen", "kündigung"]
    # ties by key: "kündbar" and "kündigungsfrist" both have 10
    assert [s.text for s in index.suggest("künd", 8)][2:] == ["kündbar", "kündigungsfrist"]
    assert all(s.edits == 0 for s in index.suggest("kün", 8))
    with pytest.raises(EmptyQueryError):
        index.suggest("   ")


def test_typos_one_from_five_characters_two_from_nine() -> None:
    index = _index({"mietvertrag": 30, "mietverträge": 3, "kündigung": 20, "verwaltungsakt": 7})
    assert [s.text for s in index.suggest("kündu", 8)] == ["kündigung"]
    assert [s.text for s in index.suggest("mietvertarg", 8)] == ["mietvertrag", "mietverträge"]
    assert index.suggest("mietvertarg", 8)[0].edits == 2
    assert [s.text for s in index.suggest("mitve", 8)] == ["mietvertrag", "mietverträge"]  # one edit, 5 chars
    assert index.suggest("mitv", 8) == []  # 4 characters: no typo allowed
    assert [(s.text, s.edits) for s in index.suggest("verwaltngsak", 8)] == [("verwaltungsakt", 1)]
    assert index.suggest("vrwaltngsakt", 8)[0].edits == 2
    assert index.suggest("vrwltngsakt", 8) == []  # three edits


def _brute(keys: list[str], query: str, edits: int) -> set[str]:
    out = set()
    for key in keys:
        best = min(Levenshtein.distance(query, key[:n]) for n in range(len(key) + 1))
        if best <= edits:
            out.add(key)
    return out


def _typo(rng: random.Random, word: str, alphabet: str, edits: int) -> str:
    chars = list(word)
    for _ in range(edits):
        i = rng.randrange(len(chars))
        op = rng.choice("dis")
        if op == "d" and len(chars) > 1:
            del chars[i]
        elif op == "i":
            chars.insert(i, rng.choice(alphabet))
        else:
            chars[i] = rng.choice(alphabet)
    return "".join(chars)


def test_typo_matches_equal_a_brute_force_search() -> None:
    rng = random.Random(7)
    alphabet = "aeinrstuk"
    words = {"".join(rng.choice(alphabet) for _ in range(rng.randint(3, 14))): rng.randint(1, 50)
             for _ in range(3000)}
    index = _index(words)
    for _ in range(150):
        base = rng.choice(list(words))
        q = _typo(rng, base[: rng.randint(5, len(base))] if len(base) >= 5 else base, alphabet, rng.randint(0, 2))
        edits = 2 if len(q) >= 9 else 1 if len(q) >= 5 else 0
        got = {s.text for s in index.suggest(q, len(words))}
        assert got == _brute(list(words), q, edits), q


def test_long_typo_queries_refined_level_by_level_equal_a_brute_force_search() -> None:
    # keys and queries long enough for several refinement levels; the one-edit answer comes from the two-edit search
    rng = random.Random(11)
    alphabet = "aeinrstu"
    stems = ["".join(rng.choice(alphabet) for _ in range(rng.randint(6, 12))) for _ in range(40)]
    words = {stem + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 18))): rng.randint(1, 50)
             for stem in stems for _ in range(40)}
    index = _index(words)
    for _ in range(120):
        base = rng.choice(list(words))
        q = _typo(rng, base[: rng.randint(9, max(9, len(base)))], alphabet, rng.randint(0, 3))
        edits = 2 if len(q) >= 9 else 1 if len(q) >= 5 else 0
        assert {s.text for s in index.suggest(q, len(words))} == _brute(list(words), q, edits), q
        if len(q) >= 9:
            assert sorted(index._one_edit_groups(index._typo_ranges(q, 2), len(q))) == sorted(
                index._typo_ranges(q, 1)), q


def test_prefix_distances_within_agree_with_prefix_distances() -> None:
    rng = random.Random(3)
    alphabet = "aeinrst"
    for _ in range(60):
        query = "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 16)))
        texts = [_typo(rng, query, alphabet, rng.randint(0, 5)) + "".join(rng.choice(alphabet) for _ in range(
            rng.randint(0, 3))) for _ in range(rng.choice((3, 40)))] + ["", query[:2]]
        for limit in (1, 2):
            want = prefix_distances(query, texts, limit)
            assert _prefix_distances_within(query, texts, limit, exact=True).tolist() == want
            within = _prefix_distances_within(query, texts, limit, exact=False)
            assert (within <= limit).tolist() == [d <= limit for d in want]


def test_prefix_distances_by_batch_equal_one_by_one() -> None:
    texts = ["kuendigung", "kuendigen", "kundig", "k", "", "kuendigungsfrist"]
    got = prefix_distances("kuendigugn", texts, 2)
    want = [min(min(Levenshtein.distance("kuendigugn", t[:n]) for n in range(len(t) + 1)), 3) for t in texts]
    assert got == want


def test_a_query_with_a_digit_gets_no_typos() -> None:
    index = _index({"bgb § 573 kündigung": 1, "bgb § 574 widerspruch": 1, "bgb § 5737": 1})
    assert [s.text for s in index.suggest("BGB § 573", 8)] == ["bgb § 573 kündigung", "bgb § 5737"]
    assert index.suggest("BGB § 575", 8) == []


def test_the_training_artifact_answers_as_a_fresh_build(demo_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from plugin_model import memory_mapped

    from legalsearch.suggest import SUGGEST_DIR, SuggestionIndex, build_suggestions

    assert (demo_model.path / SUGGEST_DIR).is_dir()
    assert f"{SUGGEST_DIR}/strings.json" in demo_model.manifest["files"]
    loaded = demo_model.suggestion_index
    assert loaded is not None and demo_model.suggestions is loaded
    assert memory_mapped(loaded._deletions[2].strings)
    fresh = build_suggestions(demo_model.keyword_model, demo_model.documents, demo_model.index.ids)
    for q in ("kündi", "Kuendigung", "kündigugn", "DMietG § 1", "dmietg", "Demo-Miet", "a", "mietvertrga",
              "ordentliche kü", "Demo-Mietrechtsgestz", "zz"):
        assert loaded.suggest(q, 20) == fresh.suggest(q, 20), q
    assert SuggestionIndex.load(tmp_path / "none") is None  # a model trained before the artifact: built at load


def test_a_long_typed_query_that_folds_short_keeps_its_one_edit_matches() -> None:
    # 9 characters typed (two edits allowed), 5 once spaces are folded: "kund" is one edit away but too short for
    # the two-edit search's heads
    index = _index({"kund": 5, "kundig": 3, "ku nd x": 1})
    assert [(s.text, s.edits) for s in index.suggest("ku     nd", 8)] == [("ku nd x", 0), ("kund", 1), ("kundig", 1)]

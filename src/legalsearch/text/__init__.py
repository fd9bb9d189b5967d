"""German preprocessing: spaCy's blank German tokenizer, lookup lemmas, legal abbreviations, citations.

- ``tokenizer``: the tokenizer set-up, the rule data files and the lemma table;
- ``citations``: citations in running text ("§ 573 Abs. 2 BGB" -> "§573", "§573@bgb");
- ``compounds``: compounds split against the lemma table;
- ``parallel``: preprocessing in worker processes and the wire format of their answers;
- ``memo``: the byte budget of the word memos;
- ``preprocessor``: the ``Preprocessor`` that puts them together.

The rules and the reasons for them are documented in ``docs/preprocessing.md``.
"""

from legalsearch.text.compounds import MAX_COMPOUND_CHARS, MAX_COMPOUND_PARTS, MIN_COMPOUND_PART
from legalsearch.text.memo import set_memo_budget
from legalsearch.text.preprocessor import GROUP_SEP, RULES_VERSION, Preprocessor, TokenSpan, split_groups
from legalsearch.text.tokenizer import MAX_CHUNK_CHARS

__all__ = [
    "GROUP_SEP",
    "MAX_CHUNK_CHARS",
    "MAX_COMPOUND_CHARS",
    "MAX_COMPOUND_PARTS",
    "MIN_COMPOUND_PART",
    "RULES_VERSION",
    "Preprocessor",
    "TokenSpan",
    "set_memo_budget",
    "split_groups",
]

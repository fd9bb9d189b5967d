from legalsearch.corpus.gesetze import strip_heading_labels
from legalsearch.tokencache import lexical_fields
from legalsearch.types import Document


def test_heading_labels_are_stripped_but_their_titles_kept() -> None:
    path = "Buch 2 - Recht der Schuldverhältnisse > Titel 5 - Mietvertrag, Pachtvertrag > Untertitel 2 - Wohnraum"
    stripped = strip_heading_labels(path)
    for label in ("Buch", "Titel", "Untertitel", " 2 ", " 5 "):
        assert label not in stripped
    for title in ("Recht der Schuldverhältnisse", "Mietvertrag, Pachtvertrag", "Wohnraum"):
        assert title in stripped
    assert "Allgemeines" in strip_heading_labels("Zweiter Abschnitt > Erster Titel: Allgemeines")
    assert "Abschnitt" not in strip_heading_labels("Zweiter Abschnitt > Erster Titel: Allgemeines")


def test_lexical_fields_put_the_citation_with_the_title() -> None:
    doc = Document(id="BGB § 573", text="(1) Der Vermieter kann nur kündigen, …", title="Ordentliche Kündigung",
                   type="statute", metadata={"law": "BGB", "section": "§ 573", "heading_path": "Titel 5 - Mietvertrag"})
    title, heading, text = lexical_fields(doc)
    assert title == "§ 573 BGB Ordentliche Kündigung"
    assert heading.strip() == "Mietvertrag"
    assert text == doc.text
    plain = Document(id="x", text="Text", title="Titel")
    assert lexical_fields(plain) == ("Titel", "", "Text")

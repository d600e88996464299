"""The knowledge README's code table cites, for each code, one of the code's own provenance notes from the
knowledge. (That the notes and every text of the repository name no lookup is a text rule of
``tools/lint_text.py``, run by ``make lint``.)"""

from __future__ import annotations

from fhirsvc.terminology import SYSTEM_NAMES
from tests.conftest import KNOWLEDGE_DIR
from tests.knowledge.test_coverage import markdown_table
from tools.lint_text import lookup_words, provenance_notes


def test_readme_code_table_cites_the_knowledge_provenance_and_no_lookup():
    """Each row's "verified against" is one of the code's own provenance notes (``|`` written as ``/``)."""
    systems = {name: system for system, name in SYSTEM_NAMES.items()}
    notes: dict[tuple[str | None, str | None], set[str]] = {}
    for _, system, code, source in provenance_notes(KNOWLEDGE_DIR):
        notes.setdefault((system, code), set()).add(source.replace("|", "/"))
    rows = markdown_table(KNOWLEDGE_DIR / "README.md", "| system | code |")
    assert rows
    for cells in rows:
        key = (systems.get(cells[0], cells[0]), cells[1].strip("`"))
        assert not lookup_words(cells[-1]), f"README provenance of {key}: {cells[-1]!r}"
        assert cells[-1] in notes.get(key, ()), f"README provenance of {key} is not the knowledge's: {cells[-1]!r}"

"""docs/settings.md's table is generated from streams.settings.Settings and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from streams import settings_doc
from streams.settings import Settings


def test_docs_settings_table_is_up_to_date() -> None:
    current = settings_doc.DOC_PATH.read_text(encoding="utf-8")
    assert settings_doc.render_doc(current) == current, "run: python -m streams.settings_doc --write"


def test_every_field_has_a_row_and_every_note_a_field() -> None:
    table = settings_doc.render_table()
    for name in Settings.model_fields:
        assert f"| `CATALOG_{name.upper()}` |" in table
    assert settings_doc.stale_notes() == []


def test_check_fails_on_a_stale_table_and_write_repairs_it(tmp_path: Path) -> None:
    doc = tmp_path / "settings.md"
    doc.write_text(f"# Settings\n\nprose before\n\n{settings_doc.BEGIN}\n| old |\n{settings_doc.END}\n\nprose after\n")
    assert settings_doc.main(["--check", "--doc", str(doc)]) == 1
    assert settings_doc.main(["--write", "--doc", str(doc)]) == 0
    assert settings_doc.main(["--check", "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Settings\n\nprose before\n") and text.endswith("prose after\n")
    assert "| `CATALOG_MILVUS_URI` | string | `./data/milvus.db` |" in text


def test_cells_escape_pipes_and_html_outside_code() -> None:
    assert settings_doc._cell("a | b <x> `<y>`") == "a \\| b &lt;x> `<y>`"

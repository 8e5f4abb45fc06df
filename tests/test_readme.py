"""The README's generated parts stay in step with the code they describe."""

from __future__ import annotations

import os

from watchnext.components.log_example_gen.schema import markdown_schema

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def test_log_schema_in_readme_is_the_one_the_ingester_enforces():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    assert markdown_schema() in text, "regenerate the README's log schema from schema.markdown_schema()"


def test_readme_names_the_test_command_ci_runs():
    with open(README, encoding="utf-8") as f:
        assert "make test" in f.read()
    with open(os.path.join(os.path.dirname(README), ".ci", "run"), encoding="utf-8") as f:
        assert "make test" in f.read()


def test_table_rejection_reasons_in_readme_are_the_ones_the_table_example_gen_uses():
    from watchnext.components.table_example_gen.parsing import markdown_rejection_reasons

    with open(README, encoding="utf-8") as f:
        text = f.read()
    assert markdown_rejection_reasons() in text, "regenerate from parsing.markdown_rejection_reasons()"


def test_reports_and_plots_the_readme_shows_are_in_the_repository():
    """Every relative link and `reports/...` path in the README names a file that is committed."""
    import re

    root = os.path.dirname(README)
    with open(README, encoding="utf-8") as f:
        text = f.read()
    links = re.findall(r"\]\(((?!https?:|#)[^)\s]+)\)", text)
    paths = re.findall(r"`(reports/[\w/.-]+\.(?:md|json|png))`", text)  # not reports/<name>.md
    assert links and paths
    missing = [p for p in {*links, *paths} if not os.path.exists(os.path.join(root, p))]
    assert not missing, missing

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

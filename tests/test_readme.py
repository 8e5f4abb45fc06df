"""The README and the guides under docs/ stay in step with the code they describe."""

from __future__ import annotations

import os

from watchnext.core.log_schema import markdown_schema

import pytest

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")
# The full log schema and the rejection reasons live in the guide the README links to.
LOG_SCHEMA_DOC = os.path.join(os.path.dirname(README), "docs", "log_schema.md")


def read_log_schema_doc_linked_from_readme() -> str:
    """docs/log_schema.md's text, after checking that the README links to it (users reach it from there)."""
    with open(README, encoding="utf-8") as f:
        assert "](docs/log_schema.md)" in f.read(), "the README must link to docs/log_schema.md"
    with open(LOG_SCHEMA_DOC, encoding="utf-8") as f:
        return f.read()


def test_log_schema_in_the_docs_is_the_one_the_ingester_enforces():
    text = read_log_schema_doc_linked_from_readme()
    assert markdown_schema() in text, "regenerate docs/log_schema.md from markdown_schema()"


def test_readme_names_the_test_command_ci_runs():
    with open(README, encoding="utf-8") as f:
        assert "make test" in f.read()
    with open(os.path.join(os.path.dirname(README), ".ci", "run"), encoding="utf-8") as f:
        assert "make test" in f.read()


def test_table_rejection_reasons_in_the_docs_are_the_ones_the_table_example_gen_uses():
    from watchnext.components.table_example_gen.parsing import markdown_rejection_reasons

    text = read_log_schema_doc_linked_from_readme()
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


# Commands other than watchnext and make that README examples may use: each is the tool a
# user runs where the README says so (a shell builtin, TF Serving, Kubernetes, Docker, gcloud).
EXTERNAL_COMMANDS = {".", "source", "cd", "cat", "export", "curl", "docker", "kubectl", "tensorboard",
                     "gsutil", "python", "pip", "git", "0"}  # "0": a crontab line's minute field


def readme_shell_commands(text: str) -> list[str]:
    """Each command line of the README's shell examples (```sh, ```bash, ```cron and plain blocks
    whose lines start with `watchnext`), comments dropped, `\\` continuations joined, heredoc
    bodies skipped."""
    import re

    commands = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
        if lang not in ("sh", "bash", "cron", ""):
            continue
        lines, heredoc_end, pending = body.splitlines(), None, ""
        for raw in lines:
            if heredoc_end is not None:
                heredoc_end = None if raw.strip() == heredoc_end else heredoc_end
                continue
            line = pending + raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else pending
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if not line.strip():
                continue
            if lang == "" and not line.lstrip().startswith("watchnext "):
                continue  # a diagram or a listing, not a command
            heredoc = re.search(r"<<'?(\w+)'?", line)
            if heredoc:
                heredoc_end = heredoc.group(1)
            commands.append(line.strip())
    return commands


def is_bench_command(words: list[str]) -> bool:
    """`python -m bench ...` or `.venv/bin/python -m bench.<module> ...` (bench/ runs from the root)."""
    return (len(words) >= 3 and (words[0] == "python" or words[0].endswith("/python")) and words[1] == "-m"
            and words[2].split(".")[0] == "bench")


def check_bench_command(words: list[str], command: str) -> None:
    """`python -m bench <name> ...` parses with bench's own parser; `python -m bench.<module>`
    names a module that exists in bench/."""
    import argparse
    import importlib.util

    module = words[2]
    if module == "bench":
        from bench.cli import add_arguments

        parser = argparse.ArgumentParser(prog="python -m bench")
        add_arguments(parser)
        try:
            parser.parse_args(words[3:])
        except SystemExit:
            raise AssertionError(f"bench command does not parse: {command}") from None
    else:
        assert importlib.util.find_spec(module) is not None, f"no module {module}: {command}"


def test_bench_commands_in_the_readme_and_guides_parse():
    """Every `python -m bench ...` line of the README's and docs/*.md's shell examples names a real
    benchmark and real flags (bench/ left the `watchnext` command; it runs from the repository root)."""
    import glob
    import shlex

    root = os.path.dirname(README)
    checked = []
    for path in [README, *sorted(glob.glob(os.path.join(root, "docs", "*.md")))]:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert "watchnext bench" not in text, f"{path} still names `watchnext bench` (now `python -m bench`)"
        for command in readme_shell_commands(text):
            words = shlex.split(command)
            if is_bench_command(words):
                check_bench_command(words, command)
                checked.append(command)
    assert checked, "no `python -m bench` example in the README or docs/*.md"
    with pytest.raises(AssertionError, match="does not parse"):
        check_bench_command(["python", "-m", "bench", "no_such_benchmark"], "no_such_benchmark")


def test_every_readme_command_works_as_typed():
    """Each `watchnext` line parses with the real parser (subcommands and flags exist), each
    `make` line names a real target, and nothing else is an unknown command."""
    import shlex

    from watchnext.cli import build_parser

    with open(README, encoding="utf-8") as f:
        commands = readme_shell_commands(f.read())
    with open(os.path.join(os.path.dirname(README), "Makefile"), encoding="utf-8") as f:
        makefile = f.read()
    assert any(c.startswith("watchnext run") for c in commands), commands
    parser = build_parser()
    for command in commands:
        for part in command.split("&&"):
            words = shlex.split(part.split(">>")[0].split(" | ")[0])
            if words and words[0] == "0":  # crontab: minute hour day month weekday command
                continue
            if is_bench_command(words):
                check_bench_command(words, command)
            elif words[0].endswith("/watchnext") or words[0] == "watchnext":
                try:
                    parser.parse_args(words[1:])
                except SystemExit:
                    raise AssertionError(f"README command does not parse: {command}") from None
            elif words[0] == "make":
                for target in (w for w in words[1:] if "=" not in w):
                    assert f"\n{target}:" in makefile, f"README names make target {target!r}: {command}"
            else:
                assert words[0] in EXTERNAL_COMMANDS, f"README command {words[0]!r} is unknown: {command}"


def test_links_in_the_guides_under_docs_name_committed_files():
    """docs/*.md (the README's details) link reports and plots relative to docs/."""
    import glob
    import re

    root = os.path.dirname(README)
    guides = sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    assert guides
    for guide in guides:
        with open(guide, encoding="utf-8") as f:
            text = f.read()
        links = re.findall(r"\]\(((?!https?:|#)[^)\s#]+)[^)\s]*\)", text)
        missing = [p for p in links if not os.path.exists(os.path.join(os.path.dirname(guide), p))]
        assert not missing, (guide, missing)
        paths = re.findall(r"`((?:reports|docs)/[\w/.-]+\.(?:md|json|png))`", text)
        missing = [p for p in paths if not os.path.exists(os.path.join(root, p))]
        assert not missing, (guide, missing)


def test_readme_layout_lists_the_tree():
    """The README's layout block names every top-level folder of the repository (what .gitignore
    does not exclude), and every folder and file it names exists."""
    import fnmatch
    import re

    root = os.path.dirname(README)
    with open(README, encoding="utf-8") as f:
        section = f.read().split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```text\n(.*?)```", section, re.S)
    named = [line.split()[0] for line in block.splitlines() if line.strip()]
    missing = [p for p in named if not os.path.exists(os.path.join(root, p))]
    assert not missing, f"the README's layout names what is not in the tree: {missing}"
    with open(os.path.join(root, ".gitignore"), encoding="utf-8") as f:
        ignored = [line.strip().strip("/") for line in f if line.strip() and not line.startswith("#")]
    folders = {f"{d}/" for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
               and not d.startswith(".") and not any(fnmatch.fnmatch(d, p) for p in ignored)}
    assert folders == {p for p in named if p.endswith("/")}, "the README's layout and the tree differ"


def test_configuration_reference_names_every_config_key():
    """docs/configuration.md's reference lists every key of the typed config (lists of entries as
    `<key>[].<field>`), and the README links to it."""
    import dataclasses

    from watchnext.core.config import Config

    def keys(cls: type, prefix: str) -> list[str]:
        found = []
        for f in dataclasses.fields(cls):
            key = f"{prefix}.{f.name}" if prefix else f.name
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(default):
                found += keys(type(default), key)
            elif isinstance(default, tuple) and default and dataclasses.is_dataclass(default[0]):
                found += [key, *keys(type(default[0]), f"{key}[]")]
            else:
                found.append(key)
        return found

    root = os.path.dirname(README)
    with open(README, encoding="utf-8") as f:
        assert "](docs/configuration.md)" in f.read()
    with open(os.path.join(root, "docs", "configuration.md"), encoding="utf-8") as f:
        text = f.read()
    missing = [k for k in keys(Config, "") if f"| `{k}` |" not in text]
    assert not missing, f"docs/configuration.md's reference lacks {missing}"

"""The documentation cannot fall behind the code: settings, commands, routes, filter syntax, links.

``docs/settings.md`` and ``docs/cli.md`` are generated (``docs/gen_settings.py``,
``docs/gen_cli.py``); these tests fail when they are stale, and name what is missing.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from passerelle.core.settings import Settings
from passerelle.tracking import search

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
# Routers whose routes the docs must list; a new domain adds its tag with its guide page.
DOCUMENTED_API_TAGS = {"health", "tracking", "admin", "serving", "tracing", "monitoring"}


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def all_docs_text() -> str:
    return "\n".join(p.read_text() for p in [*PAGES, ROOT / "README.md"])


# -- settings ----------------------------------------------------------------------------------
def test_every_setting_is_documented() -> None:
    page = (DOCS / "settings.md").read_text()
    missing = [
        f"PASSERELLE_{name.upper()}"
        for name in Settings.model_fields
        if f"`PASSERELLE_{name.upper()}`" not in page
    ]
    assert not missing, f"settings missing from docs/settings.md: {missing}"


def test_every_setting_has_a_description() -> None:
    assert [n for n, f in Settings.model_fields.items() if not (f.description or "").strip()] == []


def test_settings_page_is_up_to_date() -> None:
    expected = load("gen_settings").render()
    assert (DOCS / "settings.md").read_text() == expected, (
        "docs/settings.md is stale: run `uv run python docs/gen_settings.py`"
    )


def test_flags_named_in_the_settings_page_exist() -> None:
    gen_cli = load("gen_cli")
    options = {
        name: {opt for p in cmd.params for opt in getattr(p, "opts", [])}
        for name, cmd, _ in gen_cli.commands()
    }
    for field, flags in load("gen_settings").CLI_FLAGS.items():
        assert field in Settings.model_fields
        for command, flag in flags:
            full = f"passerelle {command}".strip()
            assert flag in options[full], f"{full} has no {flag} (documented for {field})"


# -- CLI ---------------------------------------------------------------------------------------
def test_every_cli_command_has_a_section() -> None:
    page = (DOCS / "cli.md").read_text()
    headings = set(re.findall(r"^#+ `(passerelle[^`]*)`$", page, flags=re.MULTILINE))
    commands = [n for n in load("gen_cli").command_names() if n != "passerelle"]
    missing = [n for n in commands if n not in headings]
    assert not missing, f"commands without a section in docs/cli.md: {missing}"
    assert "## Global options" in page


def test_cli_page_is_up_to_date() -> None:
    expected = load("gen_cli").render()
    assert (DOCS / "cli.md").read_text() == expected, (
        "docs/cli.md is stale: run `uv run python docs/gen_cli.py`"
    )


# -- REST API and search language -------------------------------------------------------------
def test_every_route_is_documented(tmp_path: Path) -> None:
    from passerelle.app import create_app

    app = create_app(Settings(home=tmp_path / "home", _env_file=None))
    try:
        paths = app.openapi()["paths"]
    finally:
        app.state.engine.dispose()
    text = all_docs_text()
    missing = []
    for path, operations in paths.items():
        for method, operation in operations.items():
            if not DOCUMENTED_API_TAGS & set(operation.get("tags", [])):
                continue
            if f"{method.upper()} {path}" not in text:
                missing.append(f"{method.upper()} {path}")
    assert not missing, f"routes missing from the docs: {missing}"


def test_the_filter_language_is_fully_documented() -> None:
    guide = (DOCS / "tracking.md").read_text()
    for op in search.OPERATORS:
        assert f"`{op}`" in guide, f"operator {op} is not documented"
    for name in search.ATTRIBUTES:
        assert f"`{name}`" in guide, f"attribute {name} is not documented"
    for prefix in search.KIND_PREFIXES:
        assert f"`{prefix}.`" in guide, f"prefix {prefix}. is not documented"


def test_filter_examples_in_the_guide_parse() -> None:
    """Every line of the guide's example block is a filter the server accepts."""
    guide = (DOCS / "tracking.md").read_text()
    section = guide.split("## The search language", 1)[1].split("### Order by", 1)[0]
    blocks = re.findall(r"```text\n(.*?)```", section, flags=re.DOTALL)
    examples = [line for block in blocks for line in block.splitlines() if line.strip()]
    assert len(examples) >= 5
    for example in examples:
        assert search.parse_filter(example), example


# -- pages and links ---------------------------------------------------------------------------
def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}


@pytest.mark.parametrize("page", [*PAGES, ROOT / "README.md"], ids=lambda p: p.name)
def test_links_resolve(page: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"^[a-z]+://", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        assert linked.exists(), f"{page.name}: broken link {target}"
        if anchor:
            assert anchor in anchors(linked), f"{page.name}: no heading for {target}"


def test_index_links_every_page() -> None:
    index = (DOCS / "index.md").read_text()
    for page in PAGES:
        if page.name != "index.md":
            assert f"({page.name})" in index, f"docs/index.md does not link {page.name}"


def test_readme_gives_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL))
    assert "uv run passerelle server" in blocks
    assert "uv run pytest" in blocks
    assert "uv run python examples/quickstart.py" in blocks
    assert "pip install uv" in readme
    intro = readme.split("\n## ", 1)[0].strip().splitlines()[1:]
    assert len([line for line in intro if line.strip()]) == 5  # what it is, in five lines

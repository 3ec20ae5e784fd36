"""The project's own documentation: every section cited as § in the code, tests, notebooks, params,
benchmarks, README and docs is a heading of docs/reference.md, and README's layout names every module."""
from __future__ import annotations

import re

import pytest

from tinysm.paths import repo_root

ROOT = repo_root()
HEADING = re.compile(r"^#+\s+(\d+(?:\.\d+)*)[.\s]", re.MULTILINE)
CITATION = re.compile(r"§\s?(\d+(?:\.\d+)*)")
CITING = ["tinysm/**/*.py", "tests/*.py", "notebooks/*.ipynb", "params/**/*.yaml", "benchmarks/*.py",
          "benchmarks/*.sh", "benchmarks/*.md", "README.md", "docs/*.md"]


def reference_sections() -> set[str]:
    return set(HEADING.findall((ROOT / "docs" / "reference.md").read_text()))


def test_reference_has_the_numbered_sections_in_order():
    numbers = HEADING.findall((ROOT / "docs" / "reference.md").read_text())
    assert numbers == ["1", "1.1", "1.2", "1.3", "2", "2.1", "2.2", "2.3", "3", "4", "5", "6", "6.1", "6.2",
                       "6.3", "6.4", "7", "7.1", "8"]


@pytest.mark.parametrize("pattern", CITING)
def test_every_cited_section_exists_in_the_reference(pattern):
    sections = reference_sections()
    files = sorted(ROOT.glob(pattern))
    assert files, pattern
    dangling = {f"{path.relative_to(ROOT)}: §{number}" for path in files
                for number in CITATION.findall(path.read_text()) if number not in sections}
    assert not dangling


def test_the_checker_finds_a_dangling_citation():
    cited = "see reference " + "§4 step 2, §5 and §" + "9.9."  # split: this file is checked too
    assert CITATION.findall(cited) == ["4", "5", "9.9"]
    assert "9.9" not in reference_sections()


def test_readme_layout_names_every_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    layout = layout[:layout.index("\n## ", 1)] if "\n## " in layout[1:] else layout
    modules = sorted(path.relative_to(ROOT / "tinysm") for path in (ROOT / "tinysm").rglob("*.py")
                     if path.name not in ("__init__.py", "__main__.py"))
    missing = [str(module) for module in modules if module.stem not in layout]
    assert not missing, f"README's layout section does not name {missing}"


def study_numbers(csv_path) -> list[str]:
    """Each row's numbers of a CPU-study table as README writes them: 'mean ± std', 'Δ ± std', paper Δ."""
    import pandas as pd

    numbers = []
    for row in pd.read_csv(csv_path).itertuples():
        numbers.append(f"{row.AP50_tiny_mean:.2f} ± {row.AP50_tiny_std:.2f}")
        if not pd.isna(row.delta_vs_none_mean):
            numbers.append(f"{row.delta_vs_none_mean:+.2f} ± {row.delta_vs_none_std:.2f}")
        if not pd.isna(row.paper_delta):
            numbers.append(f"{row.paper_delta:+.2f}")
    return numbers


@pytest.mark.parametrize("table", ["figures/cpu_study.csv", "figures/cpu_unfrozen/cpu_study.csv"])
def test_readme_states_the_cpu_study_numbers_of_the_committed_table(table):
    """README's CPU-study numbers are the ones the study command wrote, not typed from memory."""
    readme = (ROOT / "README.md").read_text()
    study = readme[readme.index("### The CPU study"):readme.index("### Run one experiment")]
    missing = [number for number in study_numbers(ROOT / table) if number not in study]
    assert not missing, f"README's CPU study section lacks {missing} of {table}"


def test_the_number_check_sees_a_changed_value(tmp_path):
    (tmp_path / "t.csv").write_text("detector,arm,seeds,AP50_tiny_mean,AP50_tiny_std,delta_vs_none_mean,"
                                    "delta_vs_none_std,paper_delta\nf,none,3,48.1117,3.7489,,,\n"
                                    "f,sm,3,37.108,1.7367,-11.0037,3.3593,0.49\n")
    assert study_numbers(tmp_path / "t.csv") == ["48.11 ± 3.75", "37.11 ± 1.74", "-11.00 ± 3.36", "+0.49"]

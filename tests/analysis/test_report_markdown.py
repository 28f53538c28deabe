"""report.md as GitHub renders it: cmark-gfm (GitHub's own renderer, with its
table extension) turns it into HTML, and every table must keep the cell count
of its header row in every row: an unescaped `|` in a cell (the candidate bits
`w1|2|3|4`) would split it. Console tables carry their headers too."""
import html.parser
import json
import os
import pathlib
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURE = HERE / "fixture" / "sweep"
EDMIPS = os.environ.get("EDMIPS_BINARY", str(ROOT / "build" / "src" / "edmips"))
CMARK = shutil.which("cmark-gfm")


class Tables(html.parser.HTMLParser):
    """Each <table> as a list of rows, each row the texts of its cells."""

    def __init__(self):
        super().__init__()
        self.tables, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


@pytest.fixture
def report(tmp_path):
    target = tmp_path / "sweep"
    shutil.copytree(FIXTURE, target)
    result = subprocess.run([EDMIPS, "pareto", str(target)], capture_output=True, text=True, check=True)
    return target, result.stdout


@pytest.mark.skipif(CMARK is None, reason="cmark-gfm not installed (scripts/install-deps.sh installs it)")
def test_report_tables_render_with_one_cell_per_column(report):
    directory, _ = report
    rendered = subprocess.run([CMARK, "-e", "table", str(directory / "report.md")], capture_output=True, text=True,
                              check=True).stdout
    parser = Tables()
    parser.feed(rendered)
    pareto = json.loads((directory / "pareto.json").read_text())
    # The dominance table, one per group, the recommendations' allocation tables.
    assert len(parser.tables) >= 1 + len(pareto["groups"]) + len(pareto["recommendations"])
    for table in parser.tables:
        header = table[0]
        assert all(len(row) == len(header) for row in table), (header, [len(r) for r in table])
    dominance = parser.tables[0]
    assert dominance[0][:2] == ["baseline", "mixed group"]
    groups = {d["mixed_group"] for d in pareto["dominance"]}
    assert any("|" in g for g in groups)  # the case that used to break
    assert {row[1] for row in dominance[1:]} == groups
    verdicts = [row[dominance[0].index("verdict")] for row in dominance[1:]]
    assert sorted(verdicts) == sorted(d["verdict"] or "-" for d in pareto["dominance"])


def test_console_tables_have_headers_and_full_trial_ids(report):
    directory, stdout = report
    assert "  baseline  mixed group" in stdout
    assert "  configuration  top-1 %" in stdout
    pareto = json.loads((directory / "pareto.json").read_text())
    for rec in pareto["recommendations"]:
        assert len(rec["trial"]) == 12 and rec["trial"] in stdout
        assert rec["trial_directory"] in stdout

"""Jupyter shows a Resolution and a Cluster as tables (issue 9: chosen row, price, nodes)."""

from __future__ import annotations

from html.parser import HTMLParser

import ccdsl
from fixtures_executor import data_dir


class Cells(HTMLParser):
    """The text of every table cell, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        self._in = tag in ("td", "th")
        if self._in:
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.rows[-1][-1] += data


def cells(html: str) -> list[list[str]]:
    p = Cells()
    p.feed(html)
    return p.rows


def test_resolution_html_shows_the_chosen_row_and_price():
    r = ccdsl.resolve(ccdsl.parse("c = @cluster(node_count => 4, node_machinetype => EC2Type_T3_xLarge)")["c"])
    html = r._repr_html_()
    rows = cells(html)
    assert rows[0][:5] == ["", "provider", "region", "instance type", "nodes"]
    chosen = rows[1]
    assert chosen[0] == "chosen" and chosen[3] == "t3.xlarge" and chosen[4] == "4"
    cluster = rows[0].index("$/hour (cluster)")
    assert float(chosen[cluster]) == r.price_per_hour and f"${r.price_per_hour:.4f}/hour" in html
    assert chosen[rows[0].index("price source"):] == [r.choice.price_source, r.choice.price_date]


def test_cluster_html_shows_its_nodes(data_dir):
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=2))
    try:
        html = c._repr_html_()
        rows = cells(html)
        assert [r[:3] for r in rows[1:]] == [["worker", "0", "local-0"], ["worker", "1", "local-1"]]
        assert c.handle in html and "running" in html
    finally:
        c.terminate()

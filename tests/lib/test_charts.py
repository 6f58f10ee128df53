"""The SVG chart builder: axes that end on a round number, bars that stack, titles escaped."""

from __future__ import annotations

import re

from django.test import SimpleTestCase

from portal.lib.charts import Cell, Reference, Series, heatmap, nice_ceiling, time_series


class ChartsTestCase(SimpleTestCase):
    def test_it_ends_the_axis_on_a_round_number(self) -> None:
        self.assertEqual([nice_ceiling(v) for v in (0, 7, 11, 230, 0.3)], [1.0, 10.0, 20.0, 250.0, 0.5])

    def test_it_stacks_bars_in_series_order(self) -> None:
        svg = time_series(
            title="t",
            labels=["a", "b"],
            series=[Series("x", [1, 0], "series-1"), Series("y", [3, 2], "series-2")],
            stacked=True,
            height=212,  # a 172-pixel plot: top of the axis is 5, so one unit is 34.4 pixels
        )
        heights = [float(h) for h in re.findall(r'<rect class="series-\d" [^>]*height="([\d.]+)"', svg)]
        self.assertEqual(heights, [34.4, 103.2, 68.8])  # the empty bar is not drawn

    def test_it_draws_lines_and_a_labelled_reference_line(self) -> None:
        svg = time_series(
            title="Complaints <per> 1,000",
            labels=["1 Nov", "2 Nov"],
            series=[Series("rate", [1, 2])],
            reference=Reference(1.5, "average 1.5"),
        )
        self.assertIn('aria-label="Complaints &lt;per&gt; 1,000"', svg)
        self.assertEqual(svg.count("<polyline"), 1)
        self.assertIn('class="reference"', svg)
        self.assertIn(">average 1.5</text>", svg)

    def test_it_draws_a_heatmap_cell_per_address_with_its_label(self) -> None:
        cells = [Cell(f"10.0.0.{n}: not listed", "heat-clean") for n in range(256)]
        cells[9] = Cell("10.0.0.9: listed on <SBL>", "heat-abuse", "!")
        svg = heatmap(title="10.0.0.0/24", cells=cells)
        self.assertEqual(svg.count("<rect"), 256)
        self.assertIn('viewBox="0 0 385 385"', svg)
        self.assertIn("<title>10.0.0.9: listed on &lt;SBL&gt;</title>", svg)

"""Report figures and the self-contained index page, from synthetic trials (no training, no MLflow)."""

import base64
import io
import itertools
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import ErrorbarContainer
from matplotlib.text import Text
from PIL import Image

from search.reporting import figures
from search.reporting.pages import caption_for, write_figures, write_indexes, write_tables
from search.reporting.tables import compare


def trials(groups: list[dict], varying: str) -> pd.DataFrame:
    """One finished trial per replicate: each group is its key values, `values` (one per seed) and costs."""
    rows = []
    for group in groups:
        group = dict(group)
        values, converged = group.pop("values"), group.pop("converged", None)
        for seed, value in enumerate(values, start=1):
            rows.append({**group, "seed": seed, "status": "FINISHED", "best_val_accuracy": value, "train_seconds": 1.0,
                         "converged": np.nan if converged is None else converged[seed - 1]})
    frame = pd.DataFrame(rows)
    return frame.assign(run_id=[f"r{i}" for i in range(len(frame))], experiment="e", varying=varying, objective="val_accuracy")


def vgg(**costs) -> list[dict]:
    """Configs A and A-LRN at the same cost and nearly the same score (a crowded corner), B-E apart;
    A-LRN has a single replicate."""
    groups = [
        {"config": "A", "values": [0.88, 0.885, 0.882], "params": 146098.0, "flops": 12.719e6},
        {"config": "A-LRN", "values": [0.8849], "params": 146098.0, "flops": 12.7195e6},
        {"config": "B", "values": [0.87, 0.89], "params": 149074.0, "flops": 12.721e6},
        {"config": "C", "values": [0.86, 0.87], "params": 158930.0, "flops": 12.722e6},
        {"config": "D", "values": [0.884, 0.886], "params": 232658.0, "flops": 12.723e6},
    ]
    return [{**g, **{k: v[i] for k, v in costs.items()}} for i, g in enumerate(groups)]


def drawn(figure):
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    return renderer


def test_error_bars_only_where_a_group_has_replicates_and_n_1_is_said():
    comparison = compare(trials(vgg(), "config"))
    axis = figures.metric_by_axis(comparison).axes[0]
    table = comparison.table.set_index("config")
    bars = [c for c in axis.containers if isinstance(c, ErrorbarContainer)]
    segments = [s for c in bars for s in c.lines[2][0].get_segments()]
    half = sorted(round((s[1][1] - s[0][1]) / 2, 9) for s in segments)
    assert half == sorted(round(table.loc[c, "std"], 9) for c in ("A", "B", "C", "D")), "one bar per group with n > 1, ±1 std"
    assert "n = 1" in " ".join(t.get_text() for t in axis.get_legend().get_texts())
    assert "where n > 1" in axis.get_ylabel()

    single = compare(trials([{"config": c, "values": [0.8 + i / 100], "params": 1.0, "flops": 1.0} for i, c in enumerate("AB")], "config"))
    axis = figures.metric_by_axis(single).axes[0]
    assert not axis.containers and "mean ± std" not in axis.get_ylabel() and "n = 1" in axis.get_ylabel()

    replicated = compare(trials([g for g in vgg() if g["config"] != "A-LRN"], "config"))
    axis = figures.metric_by_axis(replicated).axes[0]
    assert "mean ± std over replicates" in axis.get_ylabel() and axis.get_legend() is None


@pytest.mark.parametrize("values", [["A", "A-LRN", "B"], [True, False], ["True", "False"]], ids=["letters", "bool", "bool-text"])
def test_categorical_axes_are_points_never_joined_by_a_line(values):
    groups = [{"x": v, "width": w, "values": [0.8 + i / 50, 0.81 + i / 50], "params": 1.0, "flops": 1.0}
              for i, (v, w) in enumerate(itertools.product(values, (1, 2)))]
    axis = figures.metric_by_axis(compare(trials(groups, "x,width"))).axes[0]
    assert [t.get_text() for t in axis.get_xticklabels()] == sorted(str(v) for v in values)
    assert axis.get_lines() and all(line.get_linestyle() == "None" for line in axis.get_lines())
    points = [line for line in axis.get_lines() if line.get_marker() == "o" and line.get_markerfacecolor() != "white"]
    xs = sorted(x for line in points for x in line.get_xdata())
    assert len(xs) == len(groups)
    assert len(set(np.round(xs, 6))) == len(xs), "two series at one category stand side by side"


def test_a_numeric_axis_keeps_its_lines():
    groups = [{"depth": d, "values": [0.9 - d / 1000, 0.91 - d / 1000], "params": d * 1e3, "flops": d * 1e4} for d in (20, 32, 56)]
    axis = figures.metric_by_axis(compare(trials(groups, "depth"))).axes[0]
    [line] = [line for line in axis.get_lines() if line.get_linestyle() == "-"]
    assert line.get_xdata().tolist() == [20, 32, 56]


def tick_labels(axis, renderer):
    low, high = axis.get_xlim()
    return [t for t, loc in zip(axis.xaxis.get_ticklabels(), axis.xaxis.get_ticklocs()) if low <= loc <= high and t.get_visible()]


UNITS = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}


UNDER_A_DECADE = {"params": [270810.0, 466138.0, 661466.0, 859738.0, 273754.0]}
QUARTER_STEPS = {"params": [1.1e6, 1.3e6, 1.6e6, 1.8e6, 2.0e6]}  # ticks at 1.25M, 1.50M, ...


@pytest.mark.parametrize("costs", [{}, UNDER_A_DECADE, QUARTER_STEPS], ids=["narrow", "under-a-decade", "quarter-steps"])
def test_costs_under_a_decade_get_a_linear_axis_whose_ticks_read_exactly(costs):
    figure = figures.metric_vs_cost(compare(trials(vgg(**costs), "config")))
    renderer = drawn(figure)
    for axis in figure.axes:
        assert axis.get_xscale() == "linear", axis.get_xlabel()
        ticks = tick_labels(axis, renderer)
        labels = [t.get_text() for t in ticks]
        assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
        assert all(len(text) <= 9 and re.fullmatch(r"[0-9.,]+[kMG]?", text) for text in labels), labels
        for tick in ticks:  # each label is its tick's value, not a rounding of it
            number, unit = re.fullmatch(r"([0-9.,]+)([kMG]?)", tick.get_text()).groups()
            assert float(number.replace(",", "")) * UNITS[unit] == pytest.approx(tick.get_position()[0], rel=1e-9), tick.get_text()
        assert axis.xaxis.get_offset_text().get_text() == "", "nothing to add from a corner"
    if not costs:
        assert "12.720M" in [t.get_text() for t in tick_labels(figure.axes[1], renderer)]


def test_costs_over_a_decade_get_a_log_axis():
    wide = figures.metric_vs_cost(compare(trials(vgg(params=[1e4, 3e4, 1e5, 4e5, 2e6]), "config")))
    assert [axis.get_xscale() for axis in wide.axes] == ["log", "linear"]


def overlap(a, b) -> float:
    return max(min(a.x1, b.x1) - max(a.x0, b.x0), 0) * max(min(a.y1, b.y1) - max(a.y0, b.y0), 0)


SIX_AT_ONE_POINT = [  # five groups within 0.004 of each other at one cost, one far below
    {"bn": bn, "learning_rate": lr, "values": [0.88 + i / 1000, 0.881 + i / 1000] if bn != "none" or lr != 0.1 else [0.1, 0.11],
     "params": 859354.0, "flops": 250905856.0}
    for i, (bn, lr) in enumerate(itertools.product(("none", "pre", "post"), (0.1, 0.01)))
]


@pytest.mark.parametrize("crowd", [vgg(), SIX_AT_ONE_POINT], ids=["vgg", "six-at-one-point"])
def test_cost_labels_neither_overlap_nor_leave_the_figure(crowd):
    comparison = compare(trials(crowd, ",".join(k for k in crowd[0] if k not in ("values", "params", "flops"))))
    figure = figures.metric_vs_cost(comparison)
    renderer = drawn(figure)
    page = figure.bbox
    texts = [t for axis in figure.axes for t in [*axis.texts, axis.xaxis.label, axis.yaxis.label, *tick_labels(axis, renderer)]]
    texts += [t for legend in figure.legends for t in legend.get_texts()]
    boxes = [(t.get_text(), Text.get_window_extent(t, renderer)) for t in texts if t.get_text() and t.get_visible()]  # text only
    for text, box in boxes:
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, f"{text!r} leaves the figure"
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert overlap(box_a, box_b) < 1.0, f"{a!r} overlaps {b!r}"
    keys = comparison.keys
    labels = sorted(", ".join(f"{k}={row[k]}" for k in keys) for _, row in comparison.table.iterrows())
    for axis in figure.axes:
        inside = axis.get_window_extent(renderer)
        assert sorted(t.get_text() for t in axis.texts) == labels, "each group labelled once on each axis"
        [front] = [line for line in axis.get_lines() if line.get_label() == "Pareto front"]
        corners = axis.transData.transform(front.get_xydata())
        front = np.concatenate([a + (b - a) * np.linspace(0, 1, 200)[:, None] for a, b in zip(corners[:-1], corners[1:])] or [corners])
        for note in axis.texts:
            box = Text.get_window_extent(note, renderer)
            assert overlap(box, inside) == pytest.approx(box.width * box.height), f"{note.get_text()!r} leaves the axes"
            assert not box.padded(-1.0).count_contains(front), f"the front crosses {note.get_text()!r}"
            if note.arrow_patch is not None:  # a leader line crosses no other label
                start, ends = axis.transData.transform(note.xy), note.arrow_patch.get_path().vertices[[0, -1]]
                leader = np.linspace(start, ends[np.argmax(np.linalg.norm(ends - start, axis=1))], 40)[1:]
                for other in axis.texts:
                    crossed = other is not note and Text.get_window_extent(other, renderer).padded(-1.0).count_contains(leader)
                    assert not crossed, f"the leader of {note.get_text()!r} crosses {other.get_text()!r}"


def test_user_text_is_drawn_as_text_not_mathtext():
    groups = [{"config": c, "values": [0.8, 0.81 + i / 100], "params": 1e3 * (i + 1), "flops": 1e3 * (i + 1)}
              for i, c in enumerate((r"$\frac$", "B"))]
    comparison = compare(trials(groups, "config"))
    for figure in (figures.metric_by_axis(comparison), figures.metric_vs_cost(comparison)):
        Image.open(io.BytesIO(figures.figure_bytes(figure, "png"))).verify()  # a `$\frac$` parsed as math fails here


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_index_embeds_each_figure_as_the_png_beside_it_and_runs_nothing(tmp_path):
    hostile = "<script>alert(1)</script>"
    groups = [{"config": c, "values": [0.8, 0.82 + i / 100], "params": 1e3 * (i + 1), "flops": 2e3 * (i + 1)}
              for i, c in enumerate(("A", "<img src=x onerror=alert(1)>", "B`x`"))]
    comparison = compare(trials(groups, "config"))
    drawn_figures = {"metric_by_axis": figures.metric_by_axis(comparison), "metric_vs_cost": figures.metric_vs_cost(comparison)}
    images = {name: {fmt: figures.figure_bytes(f, fmt) for fmt in ("png", "svg")} for name, f in drawn_figures.items()}
    write_tables(tmp_path, comparison, None)
    write_figures(tmp_path, images)
    write_indexes(tmp_path, comparison, [hostile], {name: formats["png"] for name, formats in images.items()}, None)

    source = (tmp_path / "index.html").read_text()
    page = Page()
    page.feed(source)
    images_shown = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert len(images_shown) == 2 and all(src.startswith("data:image/png;base64,") for src in images_shown)
    for name, src in zip(drawn_figures, images_shown):
        embedded = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        beside = (tmp_path / f"{name}.png").read_bytes()
        assert embedded == beside
        with Image.open(io.BytesIO(embedded)) as a, Image.open(tmp_path / f"{name}.png") as b:
            assert a.size == b.size and a.size[0] > 500 and np.array_equal(np.asarray(a), np.asarray(b))
        assert (tmp_path / f"{name}.svg").read_bytes().lstrip().startswith(b"<?xml")
    links = [value for _, attrs in page.tags for name, value in attrs.items() if name in ("src", "href", "srcset", "action")]
    assert len(links) == 2 and all(link.startswith("data:image/png;base64,") for link in links), "no relative link is left"
    assert {tag for tag, _ in page.tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "code", "img",
                                             "table", "thead", "tbody", "tr", "th", "td", "strong"}
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs), "no event handler"
    assert f"Comparison: {hostile}" in page.text and "<img src=x onerror=alert(1)>" in page.text, "user text is shown as text"
    assert "default-src 'none'" in source
    caption = source.split("<p>", 1)[1].split("</p>", 1)[0]
    assert "config=B`x`" in caption, "the best group, the baseline: user text, shown as it is"
    assert "`" not in caption.replace("B`x`", "")
    assert "<code>n</code>" in caption and "<code>best_val_accuracy</code>" in caption


def test_markdown_caption_keeps_code_spans_and_html_caption_escapes_the_baseline():
    groups = [{"config": c, "values": [0.8, 0.82 + i / 100], "params": 1.0, "flops": 1.0} for i, c in enumerate(("A", "<b>B</b>"))]
    comparison = compare(trials(groups, "config"), baseline="config=<b>B</b>")
    assert "`n` replicates" in caption_for(comparison) and "baseline config=<b>B</b>" in caption_for(comparison)
    marked = caption_for(comparison, "html")
    assert "baseline config=&lt;b&gt;B&lt;/b&gt;" in marked and "<b>" not in marked and "`" not in marked

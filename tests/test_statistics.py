"""Replicate statistics: intervals, paired and Welch differences, Holm's correction, the replicates a
difference needs, and how `compare` turns them into verdicts and bold. Checked against formulas written
out here with numpy (and textbook t quantiles), and against properties, never against the code's own output."""

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from search.errors import TableError
from search.reporting.statistics import difference, holm, needed, summarise
from search.reporting.tables import compare, render

T_975 = {1: 12.7062, 2: 4.3027, 4: 2.7764, 5: 2.5706, 9: 2.2622}  # Student t 0.975 quantiles, from a printed table


def test_interval_of_the_mean_is_student_t():
    values = [0.91, 0.93, 0.90, 0.95, 0.92]
    summary = summarise(values)
    half = T_975[4] * np.std(values, ddof=1) / math.sqrt(5)
    assert summary.n == 5 and summary.mean == pytest.approx(np.mean(values))
    assert summary.std == pytest.approx(np.std(values, ddof=1))
    assert (summary.low, summary.high) == pytest.approx((np.mean(values) - half, np.mean(values) + half), abs=1e-4)


def test_one_replicate_has_no_spread_and_no_interval():
    summary = summarise([0.9])
    assert summary.n == 1 and summary.mean == 0.9
    assert all(math.isnan(v) for v in (summary.std, summary.low, summary.high))
    assert summarise([]).n == 0


def test_shared_seeds_are_paired_and_match_the_paired_formula():
    base = np.array([0.80, 0.85, 0.90, 0.83, 0.88, 0.86])
    shift = np.array([0.012, 0.018, 0.011, 0.016, 0.014, 0.019])
    seeds = [1, 2, 3, 4, 5, 6]
    result = difference(base + shift, seeds, base, seeds)
    d = shift.mean()
    sd = shift.std(ddof=1)
    t = d / (sd / math.sqrt(6))
    assert result.test == "paired" and result.n == 6
    assert result.diff == pytest.approx(d)
    assert result.p == pytest.approx(2 * stats.t.sf(abs(t), 5))
    assert (result.low, result.high) == pytest.approx((d - T_975[5] * sd / math.sqrt(6), d + T_975[5] * sd / math.sqrt(6)), abs=1e-4)
    assert result.needed == needed(sd, d)


def test_without_shared_seeds_the_arms_are_compared_by_welch():
    a = np.array([0.70, 0.74, 0.69, 0.75, 0.72])
    b = np.array([0.66, 0.71, 0.60, 0.64, 0.69, 0.62, 0.65])
    result = difference(a, [1, 2, 3, 4, 5], b, [6, 7, 8, 9, 10, 11, 12])
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    d = a.mean() - b.mean()
    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    assert result.test == "welch" and result.n == 5
    assert result.p == pytest.approx(2 * stats.t.sf(abs(d) / math.sqrt(va + vb), dof))
    assert (result.low, result.high) == pytest.approx((d - half, d + half))
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    assert result.needed == needed(math.sqrt(2) * pooled, d), "s is the sd of one unpaired difference"


def test_pairing_by_seed_changes_the_test_and_removes_the_seed_effect():
    """A large seed effect shared by both arms hides a small consistent shift from Welch, not from the paired test."""
    seed_effect = np.array([0.60, 0.70, 0.80, 0.90, 0.65, 0.75])
    seeds = [1, 2, 3, 4, 5, 6]
    arm = seed_effect + 0.01 + np.array([0.001, -0.001, 0.0005, 0.0, -0.0005, 0.001])
    paired = difference(arm, seeds, seed_effect, seeds)
    welch = difference(arm, [None] * 6, seed_effect, [None] * 6)
    assert (paired.test, welch.test) == ("paired", "welch")
    assert paired.diff == pytest.approx(welch.diff)
    assert paired.p < 1e-4 < 0.5 < welch.p
    assert paired.needed < welch.needed


def test_one_shared_seed_is_not_enough_to_pair():
    result = difference([0.9, 0.8, 0.85], [1, 2, 3], [0.7, 0.72, 0.71], [1, 8, 9])
    assert result.test == "welch"


def test_several_trials_of_one_seed_are_averaged_before_pairing():
    result = difference([0.9, 0.7, 0.8, 0.6], [1, 1, 2, 2], [0.5, 0.4], [1, 2])
    assert result.test == "paired" and result.n == 2
    assert result.diff == pytest.approx(np.mean([0.8 - 0.5, 0.7 - 0.4]))


def test_identical_arms_resolve_nothing():
    values, seeds = [0.8, 0.82, 0.79, 0.81], [1, 2, 3, 4]
    for other_seeds in (seeds, [None] * 4):
        result = difference(values, seeds, values, other_seeds)
        assert result.diff == 0 and result.needed is None
        assert math.isnan(result.p) or result.p > 0.5


def holm_by_definition(p):
    """Holm's adjusted p of each hypothesis: the largest min(1, (m - j + 1) p_(j)) over the ranks j up to its own."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    scaled = [min(1.0, (m - rank) * p[i]) for rank, i in enumerate(order)]
    return [max(scaled[: order.index(i) + 1]) for i in range(m)]


@pytest.mark.parametrize("seed", range(5))
def test_holm_is_at_least_the_raw_p_monotone_in_rank_and_matches_its_definition(seed):
    p = np.random.default_rng(seed).uniform(0, 0.2, size=6)
    adjusted = holm(p)
    assert np.all(adjusted >= p) and np.all(adjusted <= 1)
    ranked = adjusted[np.argsort(p)]
    assert np.all(np.diff(ranked) >= 0)
    assert adjusted == pytest.approx(holm_by_definition(list(p)))


def test_holm_leaves_one_p_alone_and_skips_missing_ones():
    assert holm([0.03]) == pytest.approx([0.03])
    adjusted = holm([0.01, math.nan, 0.04])
    assert math.isnan(adjusted[1]) and adjusted[[0, 2]] == pytest.approx([0.02, 0.04])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def simulated_power(n: int, d: float, s: float, alpha: float, trials: int = 20_000) -> float:
    """How often a two-sided paired t-test at `alpha` rejects, over simulated studies of n differences ~ N(d, s)."""
    samples = np.random.default_rng(0).normal(d, s, size=(trials, n))
    t = samples.mean(axis=1) / (samples.std(axis=1, ddof=1) / math.sqrt(n))
    return float(np.mean(np.abs(t) > stats.t.ppf(1 - alpha / 2, n - 1)))


@pytest.mark.parametrize("s, d, alpha", [(1.0, 0.5, 0.05), (1.0, 1.5, 0.05), (1.0, 1.5, 0.01), (0.3, 0.1, 0.05 / 3)])
def test_needed_replicates_are_the_fewest_with_80_percent_power(s, d, alpha):
    """Simulated studies: n = needed(s, d, alpha) replicates reach 80% power, n - 1 do not (within the
    simulation's error); at few replicates that is more than the rule of thumb 8 (s/d)^2."""
    n = needed(s, d, alpha)
    assert simulated_power(n, d, s, alpha) > 0.79 and (n - 1 < 2 or simulated_power(n - 1, d, s, alpha) < 0.81)
    if alpha == 0.05:
        assert n >= math.ceil(8 * (s / d) ** 2)


def test_needed_grows_as_alpha_falls_and_handles_edges():
    assert needed(1.0, 1.5) == 6 and needed(1.0, 1.5, 0.01) == 9 and math.ceil(8 / 1.5**2) == 4  # vgg_depth's B - D
    assert needed(1.0, 0.0) is None and needed(math.nan, 0.1) is None and needed(0.0, 0.1) == 2
    assert needed(1.0, 1e-4) == 10**6, "beyond a million replicates the count stops"


def arms(shifts: dict, noise=0.001, seeds=5, metric="best_val_accuracy", base=0.80):
    """Trials of the groups depth=<key>, one per seed, each `base + shift + seed effect + noise`."""
    rng = np.random.default_rng(1)
    seed_effect = rng.normal(0, 0.02, size=seeds)
    rows = [
        {"depth": depth, "seed": seed + 1, "status": "FINISHED", metric: base + shift + seed_effect[seed] + rng.normal(0, noise),
         "params": 1.0, "flops": 1.0, "train_seconds": 1.0}
        for depth, shift in shifts.items()
        for seed in range(seeds)
    ]
    frame = pd.DataFrame(rows)
    return frame.assign(run_id=[f"r{i}" for i in range(len(frame))], experiment="e", varying="depth", objective="val_accuracy")


def test_a_large_shift_with_small_noise_is_resolved_and_the_baseline_is_bold_in_every_format():
    result = compare(arms({20: 0.0, 32: 0.05, 56: 0.10}))
    table = result.table.set_index("depth")
    assert result.baseline == "depth=56" and table.loc[56, "verdict"] == "baseline"
    assert table.loc[20, "verdict"] == table.loc[32, "verdict"] == "worse"
    assert set(table["test"].dropna()) == {"paired"}
    assert table.loc[20, "diff"] == pytest.approx(-0.10, abs=0.005) and table.loc[20, "diff_high"] < 0
    assert table["best"].tolist() == [True, False, False]
    assert render(result, "markdown").count("**") == 2
    assert render(result, "latex").count(r"\textbf") == 1 and render(result, "html").count("<strong>") == 1
    assert json.loads(render(result, "json"))["groups"][0]["best"] is True
    csv = pd.read_csv(io.StringIO(render(result, "csv")))
    assert csv["best"].tolist() == [True, False, False] and csv["verdict"].tolist() == ["baseline", "worse", "worse"]


def test_against_a_worse_baseline_the_others_are_better_and_nothing_is_bold():
    result = compare(arms({20: 0.0, 32: 0.05, 56: 0.10}), baseline="depth=20")
    table = result.table.set_index("depth")
    assert table.loc[32, "verdict"] == table.loc[56, "verdict"] == "better" and table.loc[20, "verdict"] == "baseline"
    assert table.loc[56, "diff"] > 0 and not table["best"].any()


def test_for_a_loss_lower_is_better():
    result = compare(arms({20: 0.0, 56: 0.10}, metric="loss", base=0.5), metric="loss")
    table = result.table.set_index("depth")
    assert not result.maximise and result.baseline == "depth=20"
    assert table.loc[56, "verdict"] == "worse" and table.loc[56, "diff"] > 0 and table.loc[20, "best"]
    flipped = compare(arms({20: 0.0, 56: 0.10}, metric="loss", base=0.5), metric="loss", baseline="depth=56").table.set_index("depth")
    assert flipped.loc[20, "verdict"] == "better"


def test_identical_arms_are_not_resolved_and_nothing_is_bold():
    frame = arms({20: 0.0, 32: 0.0})
    frame.loc[frame["depth"] == 32, "best_val_accuracy"] = frame.loc[frame["depth"] == 20, "best_val_accuracy"].to_numpy()
    result = compare(frame)
    other = result.table[result.table["verdict"] != "baseline"].iloc[0]
    assert other["verdict"] == "not resolved (n=5)" and pd.isna(other["needed"])
    assert not result.table["best"].any() and "**" not in render(result, "markdown")


def test_one_unresolved_comparison_keeps_the_baseline_plain():
    result = compare(arms({20: 0.0, 55: 0.0995, 56: 0.10}, noise=0.01))
    table = result.table.set_index("depth")
    assert table.loc[20, "verdict"] == "worse" and table.loc[55, "verdict"].startswith("not resolved")
    assert not result.table["best"].any()


def test_holm_corrects_over_the_table_and_verdicts_follow_the_corrected_p():
    result = compare(arms({20: 0.0, 30: 0.004, 40: 0.008, 50: 0.012, 60: 0.016}, noise=0.004, seeds=4))
    compared = result.table[result.table["verdict"] != "baseline"]
    assert compared["p_holm"].tolist() == pytest.approx(holm_by_definition(compared["p"].tolist()))
    for _, row in compared.iterrows():
        assert row["verdict"] == ("worse" if row["p_holm"] < 0.05 else "not resolved (n=4)")


def test_seeds_decide_paired_or_welch_in_the_table():
    paired = compare(arms({20: 0.0, 56: 0.01})).table
    unpaired = compare(arms({20: 0.0, 56: 0.01}).drop(columns="seed")).table
    assert set(paired["test"].dropna()) == {"paired"} and set(unpaired["test"].dropna()) == {"welch"}
    assert paired["p"].dropna().iloc[0] < unpaired["p"].dropna().iloc[0]


def replicated(shifts: dict, repeats=4, searches=(1,), noise=0.001, converged=None) -> pd.DataFrame:
    """Trials of the groups depth=<key>, one per search seed, each logging `repeats` replicates as a
    trial does (`<metric>/replicate_<i>`, `replicate_seeds`), every replicate `0.8 + shift + its seed's
    effect + noise`; `converged`: {depth: flags per replicate}."""
    rng = np.random.default_rng(2)
    effect = {}
    rows = []
    for depth, shift in shifts.items():
        for seed in searches:
            seeds = [seed * 100 + i for i in range(repeats)]
            values = [0.8 + shift + effect.setdefault(s, rng.normal(0, 0.02)) + rng.normal(0, noise) for s in seeds]
            row = {"depth": depth, "seed": seed, "status": "FINISHED", "replicate_seeds": ",".join(map(str, seeds)),
                   "test_accuracy": np.mean(values), "best_val_accuracy": np.mean(values) + 0.01}
            flags = (converged or {}).get(depth, [1.0] * repeats)
            row |= {f"test_accuracy/replicate_{i}": v for i, v in enumerate(values)}
            row |= {f"converged/replicate_{i}": f for i, f in enumerate(flags)} | {"converged": min(flags)}
            rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.assign(run_id=[f"r{i}" for i in range(len(frame))], experiment="e", varying="depth", objective="val_accuracy")


def test_every_replicate_of_a_trial_counts_and_is_paired_by_its_own_seed():
    frame = replicated({20: 0.0, 56: 0.05}, repeats=4, searches=(1, 2))
    result = compare(frame)
    assert result.metric == "test_accuracy"  # the test part leads where the trials have one
    table = result.table.set_index("depth")
    assert table["n"].tolist() == [8, 8]  # two searches x four replicates
    assert table.loc[20, "test"] == "paired" and table.loc[20, "verdict"] == "worse"
    per_replicate = frame.filter(like="test_accuracy/replicate_").to_numpy()
    assert table.loc[56, "mean"] == pytest.approx(per_replicate[frame["depth"] == 56].mean())
    assert table.loc[56, "converged"] == 8


def test_two_searches_never_share_a_replicate_seed():
    from search.spec.schema import MAX_SEED, Search

    first = [Search(seed=s, repeats=100).replicate_seeds() for s in (1, 2, 3, 99, MAX_SEED)]
    flat = [seed for seeds in first for seed in seeds]
    assert len(set(flat)) == len(flat) and max(flat) < 2**31
    assert Search(seed=1, repeats=2).replicate_seeds() == [100, 101]
    # pooled over searches 1 and 2 with two replicates each: four distinct seeds, so no pair shared by accident
    frame = replicated({20: 0.0}, repeats=2, searches=(1, 2))
    assert compare(frame).table.loc[0, "n"] == 4


def test_a_verdict_resting_on_an_unconverged_replicate_says_so():
    frame = replicated({20: 0.0, 56: 0.05, 32: 0.049}, repeats=5, converged={20: [1, 1, 0, 1, 1]})
    table = compare(frame).table.set_index("depth")
    assert table.loc[20, "verdict"] == "worse, not converged" and table.loc[20, "converged"] == 4
    assert table.loc[32, "verdict"] in ("worse", "not resolved (n=5)")  # both of its arms converged
    assert "4/5" in render(compare(frame), "markdown")
    flags = replicated({20: 0.0, 56: 0.05}, repeats=5, converged={56: [0, 1, 1, 1, 1]})
    baseline_unconverged = compare(flags).table.set_index("depth")
    assert baseline_unconverged.loc[20, "verdict"] == "worse, not converged"
    assert baseline_unconverged.loc[56, "best"]  # resolved all the same; the verdicts carry the caveat


def test_every_format_carries_the_comparison_columns():
    result = compare(arms({20: 0.0, 56: 0.10}))
    for fmt in ("markdown", "latex", "html"):
        text = render(result, fmt)
        for column in ("95", "difference", "p (Holm)", "test", "verdict", "needed", "paired", "worse"):
            assert column in text, (fmt, column)
    data = json.loads(render(result, "json"))
    assert data["baseline"] == "depth=56"
    csv = pd.read_csv(io.StringIO(render(result, "csv")))
    for name in ("n", "mean", "std", "ci_low", "ci_high", "diff", "diff_low", "diff_high", "test", "p", "p_holm", "verdict", "needed", "best"):
        assert name in data["groups"][0] and name in csv.columns, name


def test_top_keeps_the_baseline():
    result = compare(arms({20: 0.0, 32: 0.05, 56: 0.10}), baseline="depth=20", top=1)
    assert result.table["depth"].tolist() == [56, 20]


@pytest.mark.parametrize(
    "baseline, fragment",
    [
        ("depth=21", "--baseline 'depth=21': no group matches; groups: depth=20; depth=56"),
        ("width=1", "'width' is not a grouping key; keys: depth"),
        ("depth", "write the group as key=value pairs"),
        ("depth=20,depth=56", "'depth' is given twice"),
    ],
)
def test_a_bad_baseline_is_one_line_naming_the_option(baseline, fragment):
    with pytest.raises(TableError) as caught:
        compare(arms({20: 0.0, 56: 0.1}), baseline=baseline)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_a_baseline_must_name_exactly_one_group_with_finished_trials():
    frame = pd.concat([arms({20: 0.0, 56: 0.1}).assign(residual="True"), arms({20: 0.0}).assign(residual="False")], ignore_index=True)
    frame["varying"] = "depth,residual"
    with pytest.raises(TableError, match="matches 2 groups .*give the value of every key in depth, residual"):
        compare(frame, baseline="depth=20")
    assert compare(frame, baseline="residual=True, depth=20").baseline == "depth=20,residual=True"
    frame.loc[frame["residual"] == "False", "status"] = "FAILED"
    with pytest.raises(TableError, match="no finished trial"):
        compare(frame, baseline="depth=20,residual=False")


def test_a_baseline_value_may_hold_commas():
    frame = arms({20: 0.0, 56: 0.1}).assign(ops=lambda f: np.where(f["depth"] == 20, "conv,sep", "conv"))
    assert compare(frame, rows=["ops"], baseline="ops=conv,sep").baseline == "ops=conv,sep"


def test_groups_sharing_every_seed_pair_in_any_order():
    frame = arms({20: 0.0, 56: 0.05})
    shuffled = frame.sample(frac=1.0, random_state=3)
    a, b = (compare(f).table.set_index("depth") for f in (frame, shuffled))
    assert a.loc[20, "p"] == pytest.approx(b.loc[20, "p"]) and a.loc[20, "test"] == "paired"


def test_pivot_shows_the_metric_cells_with_bold_only_when_resolved():
    frame = pd.concat([arms({20: 0.0, 56: 0.1}).assign(residual=r) for r in ("True", "False")], ignore_index=True)
    frame.loc[frame["residual"] == "True", "best_val_accuracy"] += 0.1
    frame["varying"] = "depth,residual"
    pivot = render(compare(frame), "markdown", cols=["residual"])
    assert pivot.splitlines()[0] == "| depth | residual=False | residual=True |" and pivot.count("**") == 2
    bold = [line for line in pivot.splitlines() if "**" in line]
    assert len(bold) == 1 and bold[0].startswith("| 56 |") and bold[0].split("|")[-2].strip().startswith("**"), "depth 56 with residual"


def test_the_terminal_ranking_leaves_the_statistics_to_compare_and_gives_verdicts_below_once_there_are_replicates():
    from search.reporting.tables import TERMINAL_OMITS, ranking_frame, verdict_lines

    comparison = compare(arms({20: 0.0, 56: 0.10}))
    replicated = ranking_frame(comparison)
    assert not set(TERMINAL_OMITS) & set(replicated.columns)
    assert "*" in replicated["best_val_accuracy"].iloc[0]
    row = comparison.table.set_index("depth").loc[20]
    assert verdict_lines(comparison) == [
        "against depth=56:",
        f"depth=20: worse ({row['diff']:+.4f} [{row['diff_low']:+.4f}, {row['diff_high']:+.4f}], paired, p (Holm) <0.0001)",
    ]
    single = compare(arms({20: 0.0, 56: 0.10}, seeds=1))
    assert verdict_lines(single) == [] and "n" in ranking_frame(single).columns


def test_choose_picks_each_groups_learning_rate_on_validation_and_reports_its_test_values():
    """Per group, the learning rate with the best mean validation score is kept, whatever its test score:
    the arm is then reported on data that took no part in choosing."""
    frames = []
    # bn=pre is best on validation at 0.1 but best on test at 0.01; bn=post the other way round
    for bn, rate, val_shift, test_shift in (("pre", 0.1, 0.05, 0.0), ("pre", 0.01, 0.0, 0.03), ("post", 0.1, 0.0, 0.04), ("post", 0.01, 0.02, 0.0)):
        frame = replicated({20: test_shift}, repeats=3).assign(bn=bn, learning_rate=rate)
        frame["best_val_accuracy"] = 0.7 + val_shift
        frames.append(frame)
    trials = pd.concat(frames, ignore_index=True).assign(varying="bn,learning_rate", depth=20)
    result = compare(trials, choose=["learning_rate"])
    table = result.table.set_index("bn")
    assert result.keys == ["bn", "learning_rate"] and result.chosen == ("learning_rate",)
    assert table.loc["pre", "learning_rate"] == 0.1 and table.loc["post", "learning_rate"] == 0.01
    kept = trials[((trials["bn"] == "pre") & (trials["learning_rate"] == 0.1)) | ((trials["bn"] == "post") & (trials["learning_rate"] == 0.01))]
    for bn in ("pre", "post"):
        values = kept[kept["bn"] == bn].filter(like="test_accuracy/replicate_").to_numpy()
        assert table.loc[bn, "mean"] == pytest.approx(values.mean()) and table.loc[bn, "n"] == 3
    assert json.loads(render(result, "json"))["chosen_on_validation"] == ["learning_rate"]
    with pytest.raises(TableError, match="either grouped by or chosen"):
        compare(trials, rows=["bn", "learning_rate"], choose=["learning_rate"])


def test_rows_the_default_baseline_and_top_are_chosen_on_validation_not_on_test():
    """With a test part, the group best on validation is the baseline even where another is better on
    test: choosing the baseline (or the kept groups) by the test metric would be a choice made on it."""
    frame = replicated({20: 0.0, 56: 0.02}, repeats=4)
    frame.loc[frame["depth"] == 20, "best_val_accuracy"] = 0.95  # 20 selects better, 56 tests better
    result = compare(frame)
    assert result.metric == "test_accuracy" and result.ranked_by == "best_val_accuracy"
    assert result.table["depth"].tolist() == [20, 56] and result.baseline == "depth=20"
    assert result.table.set_index("depth").loc[56, "verdict"] == "better"
    assert compare(frame, top=1).table["depth"].tolist() == [20]
    assert "| depth | test_accuracy | best_val_accuracy |" in render(result, "markdown")
    assert compare(frame, metric="best_val_accuracy").ranked_by == "best_val_accuracy"

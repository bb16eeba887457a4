"""Thompson allocation from the sufficient statistics, against a closed form: for two arms with
normal posteriors, P(B best) = Phi((mean_B - mean_A) / sqrt(se_A^2 + se_B^2))."""

import duckdb
import pytest
from scipy import stats

from dispatch.allocation import MIN_UNITS, thompson


def stats_table(rows):
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA marts")
    conn.execute("CREATE TABLE marts.fct_experiment_stats (experiment_id VARCHAR, variant VARCHAR, metric VARCHAR, "
                 "metric_type VARCHAR, scope VARCHAR, dimension VARCHAR, dimension_value VARCHAR, analysis_date DATE, "
                 "n BIGINT, sum_x DOUBLE, sum_x2 DOUBLE, sum_y DOUBLE, sum_y2 DOUBLE, sum_xy DOUBLE)")
    for row in rows:
        conn.execute("INSERT INTO marts.fct_experiment_stats VALUES (?, ?, ?, ?, 'cumulative', 'overall', '(all)', ?, ?, ?, ?, 0, 0, 0)", row)
    return conn


def proportion(variant, n, successes, day="2026-12-01"):
    return ["exp", variant, "converted", "proportion", day, n, successes, successes]


def test_chance_to_be_best_matches_the_normal_closed_form():
    conn = stats_table([proportion("a", 2000, 200), proportion("b", 2000, 236)])
    result = thompson(conn, "exp", "converted", {"a": 0.5, "b": 0.5}, floor=0.0)
    pa, pb = 0.1, 0.118
    se = ((pa * (1 - pa) + pb * (1 - pb)) / 2000) ** 0.5
    expected = stats.norm.cdf((pb - pa) / se)
    assert result.method == "thompson"
    assert result.chance_to_be_best["b"] == pytest.approx(expected, abs=0.01)
    assert result.weights["b"] == pytest.approx(expected, abs=0.01)


def test_the_floor_keeps_every_arm_alive():
    conn = stats_table([proportion("a", 5000, 250), proportion("b", 5000, 500)])
    result = thompson(conn, "exp", "converted", {"a": 0.5, "b": 0.5}, floor=0.1)
    assert result.weights["a"] == pytest.approx(0.1, abs=1e-9)
    assert sum(result.weights.values()) == pytest.approx(1.0)


def test_the_latest_cumulative_day_is_used():
    conn = stats_table([proportion("a", 2000, 200, "2026-11-30"), proportion("b", 2000, 100, "2026-11-30"),
                        proportion("a", 4000, 400), proportion("b", 4000, 560)])
    assert thompson(conn, "exp", "converted", {"a": 0.5, "b": 0.5}, 0.0).weights["b"] > 0.99


def test_too_few_units_keep_the_planned_weights_with_a_reason():
    conn = stats_table([proportion("a", MIN_UNITS - 1, 10), proportion("b", 3000, 300)])
    result = thompson(conn, "exp", "converted", {"a": 0.7, "b": 0.3}, 0.1)
    assert result.method == "fixed" and result.weights == {"a": 0.7, "b": 0.3}
    assert "fewer than" in result.note and "a" in result.note

"""The example experiment definitions a user copies ingest cleanly."""

from tests.conftest import ROOT, query, run_cli


def test_the_example_experiment_definitions_ingest_without_quarantine(settings):
    proc = run_cli("ingest", str(ROOT / "examples" / "experiments" / "experiments.yml"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert query(settings, "SELECT experiment_id FROM raw.experiments") == [("exp_parcel_eta_wording",)]
    assert query(settings, "SELECT count(*) FROM raw.quarantine") == [(0,)]

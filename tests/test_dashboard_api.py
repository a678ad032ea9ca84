"""The dashboard's data endpoints and pages through the ASGI app, on a real SQLite store
holding a real analytic sweep (OFAT then Bayes, run by `sweepctl launch`) and a hostile
sweep whose names and error text are HTML."""

from __future__ import annotations

import html
import time
from datetime import timedelta
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from sweepctl.cli import main
from sweepctl.service import dashboard_data
from sweepctl.service.app import create_app
from sweepctl.service.dashboard_data import overfitting_epoch
from sweepctl.service.settings import ServeSettings
from sweepctl.storage import EvaluationRecord, Store, TrialState
from tests.service_client import TOKEN, local_client
from tests.test_strategies import SPACE
from tests.test_sweep_cli import INLINE
from tests.test_sweep_lifecycle import write_analytic_spec

NASTY = "<script>alert(1)</script>"
NASTY_STAGE = "<i>stage</i>/x"
NASTY_ERROR = "<b>boom</b> & the loss went <nan>"
# training loss falls throughout; validation loss turns up at epoch 3
TRAIN = (1.0, 0.8, 0.6, 0.5)
VALID = (0.9, 0.7, 0.75, 0.8)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{tmp / 'dash.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SWEEPCTL_HOME", str(tmp / "home"))
        spec_path = write_analytic_spec(tmp, "dash")
        assert main(["launch", str(spec_path), "--db", url, *INLINE]) == 0
    store = Store(url)
    try:
        nasty = _nasty_sweep(store, yaml.safe_load(spec_path.read_text()))
        sweep = store.get_sweep("dash")
    finally:
        store.close()
    return {"url": url, "home": tmp / "home", "sweep": sweep, **nasty}


def _nasty_sweep(store: Store, spec: dict[str, Any]) -> dict[str, Any]:
    """Created directly in the store: a name the spec loader would never produce."""
    spec = {**spec, "name": NASTY}
    sweep_id = store.create_sweep(NASTY, spec, [(NASTY_STAGE, "random")])
    trial_id = store.create_trial(NASTY, spec, {"learning_rate": 3e-5}, {}, stage=NASTY_STAGE)
    store.set_trial_state(trial_id, TrialState.RUNNING)
    for epoch, (train, valid) in enumerate(zip(TRAIN, VALID, strict=True), start=1):
        row = EvaluationRecord(epoch=float(epoch), step=epoch, training_loss=train, eval_loss=valid)
        store.record_evaluation(trial_id, row)
    store.set_trial_state(
        trial_id, TrialState.FAILED, error=NASTY_ERROR, traceback=f"Traceback\n  {NASTY_ERROR}"
    )
    return {"nasty_id": sweep_id, "nasty_trial": trial_id}


@pytest.fixture(scope="module")
def client(world: dict[str, Any]) -> Any:
    settings = ServeSettings(
        db_url=world["url"], home=str(world["home"]), run_controller=False, token=TOKEN
    )
    with local_client(create_app(settings)) as test_client:
        yield test_client


def _trials(client: TestClient, sweep_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/sweeps/{sweep_id}/trials")
    assert response.status_code == 200
    return response.json()


def test_trials_endpoint_lists_every_trial_with_a_monotone_best_so_far(
    client: TestClient, world: dict[str, Any]
) -> None:
    body = _trials(client, world["sweep"].id)
    counts = world["sweep"].trial_counts
    assert len(body["trials"]) == sum(counts.values()) == counts["COMPLETED"] == 11
    assert [p["name"] for p in body["parameters"]] == list(SPACE)
    assert body["parameters"][0]["log"] is True
    assert [t["number"] for t in body["trials"]] == sorted(t["number"] for t in body["trials"])
    row = body["trials"][0]
    assert set(row["params"]) == set(SPACE) and row["epochs"] == 4.0 and row["evaluations"] == 4
    assert row["duration_s"] is not None and row["objective"] is not None
    steps = body["best_so_far"]  # the improvements, then the last completed trial
    done = sorted(
        (t for t in body["trials"] if t["state"] == "COMPLETED"), key=lambda t: t["number"]
    )
    running_best = [min(t["objective"] for t in done[: i + 1]) for i in range(len(done))]
    improved = [
        t["number"] for i, t in enumerate(done) if i == 0 or running_best[i] < running_best[i - 1]
    ]
    assert [p["number"] for p in steps] == sorted({*improved, done[-1]["number"]})
    assert all(
        p["best"] == running_best[[t["number"] for t in done].index(p["number"])] for p in steps
    )
    assert steps[-1]["best"] == body["sweep"]["best"]["objective"] == min(running_best)
    assert body["full"] is True and body["cursor"]
    assert [s["name"] for s in body["sweep"]["stages"]] == ["screen", "bayes"]
    assert body["sweep"]["stages"][0]["done"] == 7 == body["sweep"]["stages"][0]["planned"]


def test_later_polls_send_only_the_rows_that_changed(
    client: TestClient, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard_data, "CURSOR_MARGIN", timedelta(0))
    sweep_id = world["sweep"].id
    first = _trials(client, sweep_id)
    quiet = client.get(
        f"/api/v1/sweeps/{sweep_id}/trials", params={"since": first["cursor"]}
    ).json()
    assert quiet["full"] is False and quiet["trials"] == []
    assert quiet["sweep"]["trial_counts"] == first["sweep"]["trial_counts"]  # always whole
    with Store(world["url"]) as store:
        new = store.create_trial("dash", {}, {"learning_rate": 1e-5}, {}, stage="bayes")
        store.set_trial_state(new, TrialState.RUNNING)
        store.set_trial_state(new, TrialState.FAILED, error="cancelled by the test")
    changed = client.get(f"/api/v1/sweeps/{sweep_id}/trials", params={"since": quiet["cursor"]})
    assert [(t["id"], t["state"]) for t in changed.json()["trials"]] == [(new, "FAILED")]
    bad = client.get(f"/api/v1/sweeps/{sweep_id}/trials", params={"since": "yesterday"}).json()
    assert bad["full"] is True and len(bad["trials"]) == len(first["trials"]) + 1


def test_curves_only_for_the_asked_trials_of_this_sweep(
    client: TestClient, world: dict[str, Any]
) -> None:
    rows = _trials(client, world["sweep"].id)["trials"]
    asked = [rows[3]["id"], rows[0]["id"], world["nasty_trial"]]  # the last is another sweep's
    query = ",".join(map(str, asked))
    response = client.get(f"/api/v1/sweeps/{world['sweep'].id}/curves?trials={query}")
    curves = response.json()["curves"]
    assert [c["id"] for c in curves] == asked[:2]
    assert all(c["epochs"] == [1.0, 2.0, 3.0, 4.0] for c in curves)
    assert curves[0]["eval_loss"][-1] == pytest.approx(rows[3]["objective"])
    assert all(c["overfitting_from_epoch"] is None for c in curves)  # no training loss
    bad = client.get(f"/api/v1/sweeps/{world['sweep'].id}/curves?trials=1,abc")
    assert bad.status_code == 422 and "abc" in bad.json()["detail"]
    assert client.get(f"/api/v1/sweeps/{world['sweep'].id}/curves").json() == {"curves": []}


def test_overfitting_is_flagged_where_validation_rises_and_training_falls(
    client: TestClient, world: dict[str, Any]
) -> None:
    trial = world["nasty_trial"]
    curves = client.get(f"/api/v1/sweeps/{world['nasty_id']}/curves?trials={trial}").json()
    assert curves["curves"][0]["overfitting_from_epoch"] == 3.0
    assert curves["curves"][0]["training_loss"] == list(TRAIN)
    detail = client.get(f"/api/v1/trials/{trial}").json()
    assert detail["overfitting_from_epoch"] == 3.0
    assert [r["flag"] for r in detail["epochs"]] == [False, False, True, False]
    both_rise = [EvaluationRecord(epoch=float(i), step=i, training_loss=v, eval_loss=v) for i, v in
                 enumerate((1.0, 0.9, 1.1), start=1)]  # fmt: skip
    assert overfitting_epoch(both_rise) is None  # diverging, not overfitting


def test_ofat_chart_matches_the_stage_summary(client: TestClient, world: dict[str, Any]) -> None:
    body = client.get(f"/api/v1/sweeps/{world['sweep'].id}/ofat").json()
    stored = world["sweep"].stages[0].summary["ofat"]
    assert body["metric"] == "loss" and [s["stage"] for s in body["stages"]] == ["screen"]
    chart = body["stages"][0]
    assert chart["baseline"] == stored["baseline"]
    spread = stored["baseline"]["std"] or 0.0
    assert chart["band"] == {
        "low": stored["baseline"]["mean"] - spread,
        "high": stored["baseline"]["mean"] + spread,
    }
    assert [p["name"] for p in chart["parameters"]] == [p["name"] for p in stored["ranking"]]
    for bar, ranked in zip(chart["parameters"], stored["ranking"], strict=True):
        assert bar["impact"] == pytest.approx(ranked["impact"])
        assert [e["mean"] for e in bar["effects"]] == [e["mean"] for e in ranked["effects"]]
    assert chart["parameters"][0]["name"] == "learning_rate"  # the analytic truth


def _importance(client: TestClient, sweep_id: int) -> dict[str, Any]:
    """Until the background computation is done the endpoint answers pending."""
    deadline = time.monotonic() + 60
    while True:
        body = client.get(f"/api/v1/sweeps/{sweep_id}/importance").json()
        if not body["pending"] or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_importance_comes_from_the_sweeps_optuna_study(
    client: TestClient, world: dict[str, Any]
) -> None:
    first = _importance(client, world["sweep"].id)
    assert first["evaluator"] == "PedAnovaImportanceEvaluator" and first["trials"] == 11
    assert {i["name"] for i in first["importances"]} == set(SPACE)
    assert first["importances"][0]["name"] == "learning_rate"
    assert first["optuna_study_id"] is not None
    again = _importance(client, world["sweep"].id)
    assert again == first
    none = _importance(client, world["nasty_id"])
    assert none["importances"] == [] and none["reason"] and none["optuna_study_id"] is None


def test_trial_detail_has_evaluations_resources_and_unknown_ids_are_404(
    client: TestClient, world: dict[str, Any]
) -> None:
    row = _trials(client, world["sweep"].id)["trials"][0]
    detail = client.get(f"/api/v1/trials/{row['id']}").json()
    assert detail["sweep_id"] == world["sweep"].id and len(detail["epochs"]) == 4
    assert detail["resources"]["wall_time_s"] >= 0 and detail["wandb_run"] is None
    assert client.get("/api/v1/trials/99999").status_code == 404
    assert client.get("/api/v1/sweeps/99999/trials").status_code == 404
    assert client.get("/api/v1/sweeps/99999/curves?trials=1").status_code == 404


def test_pages_render_the_sweep_its_trials_and_the_assets(
    client: TestClient, world: dict[str, Any]
) -> None:
    sweep = world["sweep"]
    home = client.get("/")
    assert home.status_code == 200 and f'href="/sweeps/{sweep.id}"' in home.text
    assert "screen 7/7" in home.text and "bayes 4/4" in home.text
    page = client.get(f"/sweeps/{sweep.id}")
    assert page.status_code == 200
    for fmt in ("yaml", "json", "hf-args", "csv"):
        href = f"/api/v1/sweeps/{sweep.id}/export?format={fmt}"
        assert href in page.text and client.get(href).status_code == 200
    assert "/dashboard/studies/" in page.text and "/assets/plotly.min.js" in page.text
    assert 'id="chart-parallel"' in page.text and 'id="chart-curves"' in page.text
    assert "cdn" not in page.text.lower()
    first = _trials(client, sweep.id)["trials"][0]
    trial = client.get(f"/trials/{first['id']}")
    assert trial.status_code == 200 and 'id="epochs"' in trial.text and "wall time" in trial.text
    assert client.get("/launch").status_code == 200
    assert client.get("/sweeps/424242").status_code == 404
    plotly = client.get("/assets/plotly.min.js")
    assert plotly.status_code == 200 and "javascript" in plotly.headers["content-type"]
    for asset in ("common.js", "sweep.js", "charts.js", "launch.js", "dashboard.css"):
        assert client.get(f"/assets/{asset}").status_code == 200


def test_user_strings_are_escaped_in_every_page(client: TestClient, world: dict[str, Any]) -> None:
    escaped = html.escape(NASTY, quote=False)
    for url in ("/", f"/sweeps/{world['nasty_id']}", f"/trials/{world['nasty_trial']}"):
        text = client.get(url).text
        assert NASTY not in text and escaped in text, url
    sweep_page = client.get(f"/sweeps/{world['nasty_id']}").text
    assert "<i>stage</i>" not in sweep_page and "&lt;i&gt;stage&lt;/i&gt;/x" in sweep_page
    trial_page = client.get(f"/trials/{world['nasty_trial']}").text
    assert "<b>boom" not in trial_page and "&lt;b&gt;boom&lt;/b&gt; &amp; the loss" in trial_page
    assert "Overfitting from epoch 3" in trial_page
    assert 'class="state state-failed"' in trial_page


def test_page_filters_format_blanks_numbers_and_sizes() -> None:
    from sweepctl.service.formatting import duration, number, size

    assert (
        duration(75) == "1m 15s"
        and number(0.123456) == "0.1235"
        and number(None) == "–"
        and size(2048) == "2.0 KiB"
    )

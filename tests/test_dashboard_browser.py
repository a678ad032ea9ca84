"""The dashboard in headless Chromium (Playwright) against a real `sweepctl serve`
subprocess running analytic sweeps whose trials take about a second each.

Chromium is the system one (/usr/bin/chromium, installed by apt in CI); no browser is ever
downloaded. Without it the test fails in CI (CI set) and is skipped elsewhere. Each page
logs in as a user would, through the `?token=` login URL `serve` prints; the page's
writes then go with the HttpOnly cookie.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sweepctl.orchestrator.backends import InlineBackend
from sweepctl.orchestrator.comparison import compare_sweep, objective_text
from sweepctl.orchestrator.confirmed import mean_ci
from sweepctl.orchestrator.sweep import SweepRun, launch
from sweepctl.spec.models import load_spec
from sweepctl.storage import Store, SweepState
from tests.conftest import REPO
from tests.failing_runner import RUNNER as FAILING_RUNNER
from tests.service_process import running_server
from tests.test_compare import CONFIRM, GRID, SCORED, SCREEN, TPE
from tests.test_strategies import analytic_spec
from tests.test_sweep_lifecycle import write_analytic_spec

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = REPO / "tests" / "artifacts"
NASTY = "<script>alert(1)</script>"
WAIT_MS = 30_000


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    _require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{tmp / 'serve.db'}"
    with running_server(tmp, url, step_seconds=0.3, extra=("--max-sweeps", "3")) as live:
        yield {"base": live.url, "url": url, "tmp": tmp, "auth": live.auth, "token": live.token}


@pytest.fixture(scope="module")
def browser(server: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def anonymous_page(browser: Any) -> Iterator[Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(anonymous_page: Any, server: dict[str, Any]) -> Any:
    """Logged in through the login URL, which leaves a clean address bar behind."""
    anonymous_page.goto(f"{server['base']}/?token={server['token']}")
    assert anonymous_page.url == f"{server['base']}/"
    return anonymous_page


def _spec_text(tmp: Path, name: str) -> str:
    return write_analytic_spec(tmp, name).read_text()


def _submit(server: dict[str, Any], name: str) -> int:
    body = {"yaml": _spec_text(server["tmp"], name)}
    response = httpx.post(
        f"{server['base']}/api/v1/sweeps", json=body, headers=server["auth"], timeout=30
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _plot_traces(page: Any, element_id: str) -> int:
    script = (
        "id => { const n = document.getElementById(id); return n && n.data ? n.data.length : 0 }"
    )
    return int(page.evaluate(script, element_id))


def test_sweep_page_updates_live_draws_charts_and_downloads_the_export(
    server: dict[str, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    sweep_id = _submit(server, "live")
    page.goto(f"{server['base']}/sweeps/{sweep_id}")
    page.evaluate("window.__sameDocument = 'marker'")
    running = page.locator('#trials tr[data-state="RUNNING"]').first
    expect(running).to_be_visible()
    trial_id = running.get_attribute("data-trial-id")
    row = page.locator(f'#trials tr[data-trial-id="{trial_id}"]')
    expect(row).to_have_attribute("data-state", "COMPLETED")
    expect(row.locator(".state")).to_have_text("COMPLETED")
    assert page.evaluate("window.__sameDocument") == "marker"  # no reload happened
    expect(page.locator("#chart-objective.js-plotly-plot")).to_be_visible()

    page.click("#panel-parallel summary")
    expect(page.locator("#chart-parallel.js-plotly-plot .parcoords")).to_be_attached()
    assert _plot_traces(page, "chart-parallel") == 1

    row.locator('input[type="checkbox"]').check()
    page.click("#panel-curves summary")
    expect(page.locator("#chart-curves.js-plotly-plot .scatterlayer .trace").first).to_be_attached()
    names = page.evaluate("document.getElementById('chart-curves').data.map(t => t.name)")
    number = row.locator("a").first.inner_text()
    assert names == [f"{number} validation"]

    with page.expect_download() as download_info:
        page.click('a[data-format="yaml"]')
    exported = server["tmp"] / "live-best.yaml"
    download_info.value.save_as(exported)
    spec = load_spec(exported)
    assert spec.name == "live-best" and yaml.safe_load(exported.read_text())["training"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sweep-page.png"), full_page=True)


def test_launch_page_shows_the_apis_message_and_queues_a_valid_spec(
    server: dict[str, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    broken = _spec_text(server["tmp"], "broken").replace("stages:", "stagez:")
    body = {"yaml": broken, "source": "pasted spec"}  # what the page sends for pasted text
    answer = httpx.post(
        f"{server['base']}/api/v1/sweeps", json=body, headers=server["auth"], timeout=30
    )
    assert answer.status_code == 422
    page.goto(f"{server['base']}/launch")
    page.fill("#spec-text", broken)
    page.click("#launch-submit")
    expect(page.locator("#launch-error")).to_have_text(answer.json()["detail"])

    page.fill("#spec-text", _spec_text(server["tmp"], "from-the-page"))
    page.click("#launch-submit")
    expect(page.locator("#new-sweep")).to_have_text("from-the-page")
    page.click("#new-sweep")
    expect(page.locator("#sweep-name")).to_have_text("from-the-page")
    page.goto(server["base"] + "/")
    expect(page.locator("#sweeps a.sweep-link", has_text="from-the-page")).to_be_visible()


def test_a_script_sweep_name_is_shown_as_text(server: dict[str, Any], page: Any) -> None:
    from playwright.sync_api import expect

    spec = yaml.safe_load(_spec_text(server["tmp"], "plain"))
    with Store(server["url"]) as store:  # not queued for the server: it only has to be shown
        sweep_id = store.create_sweep(NASTY, {**spec, "name": NASTY}, [("<b>s</b>", "random")])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(server["base"] + "/")
    expect(page.locator("#sweeps a.sweep-link", has_text=NASTY)).to_be_visible()
    page.goto(f"{server['base']}/sweeps/{sweep_id}")
    expect(page.locator("#sweep-name")).to_have_text(NASTY)
    expect(page.locator("#stages .stage-name")).to_have_text("<b>s</b>")
    expect(page.locator("#live")).not_to_be_empty()  # the scripts ran and drew the page
    assert dialogs == []


def test_cancel_and_resume_from_the_sweep_page(server: dict[str, Any], page: Any) -> None:
    from playwright.sync_api import expect

    sweep_id = _submit(server, "resumable")
    page.on("dialog", lambda dialog: dialog.accept())  # "Cancel this sweep?"
    page.goto(f"{server['base']}/sweeps/{sweep_id}")
    expect(page.locator('#trials tr[data-state="RUNNING"]').first).to_be_visible()
    expect(page.locator("#resume")).to_be_hidden()
    page.click("#cancel")
    expect(page.locator("#sweep-state")).to_have_text("CANCELLED")
    expect(page.locator("#cancel")).to_be_hidden()
    page.click("#resume")
    expect(page.locator("#sweep-state")).to_have_text("COMPLETED", timeout=90_000)
    expect(page.locator("#resume")).to_be_hidden()
    with Store(server["url"]) as store:
        completed = [t for t in store.list_trials("resumable") if t.state.name == "COMPLETED"]
    assert len(completed) == 11  # the cancelled points ran again after the resume


def test_a_page_opened_without_the_login_url_cannot_launch(
    server: dict[str, Any], anonymous_page: Any
) -> None:
    from playwright.sync_api import expect

    anonymous_page.goto(f"{server['base']}/launch")
    anonymous_page.fill("#spec-text", _spec_text(server["tmp"], "anonymous"))
    anonymous_page.click("#launch-submit")
    expect(anonymous_page.locator("#launch-error")).to_contain_text("login URL")
    with Store(server["url"]) as store:
        assert "anonymous" not in [s.name for s in store.sweep_rows()]


def _run_here(server: dict[str, Any], name: str, stages: list[Any], **extra: Any) -> int:
    """A sweep run to the end by this process (inline, scored as accuracy on 400 rows) in
    the server's database: the page only has to show it."""
    spec = analytic_spec(name, stages, objective={"metric": "accuracy"}, **extra)
    with Store(server["url"]) as store:
        home = str(server["tmp"] / "home-here")
        run = SweepRun(spec, store, InlineBackend(), server["url"], home, SCORED)
        assert launch(run) is SweepState.COMPLETED
        return store.get_sweep(name).id


def _confirmed_rows(confirmed: dict[str, Any]) -> list[dict[str, Any]]:
    """The configurations, then the baseline when it was rerun apart from them (as
    `sweepctl status` lists them)."""
    rows = list(confirmed["configurations"])
    baseline = confirmed["baseline"]
    return [*rows, baseline] if baseline and not any(r["is_baseline"] for r in rows) else rows


def _api(server: dict[str, Any], path: str) -> Any:
    reply = httpx.get(f"{server['base']}/api/v1{path}", headers=server["auth"], timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_a_confirmed_sweep_shows_mean_ci_the_comparison_warnings_and_degenerate_trials(
    server: dict[str, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    sweep_id = _run_here(server, "confirmed", [SCREEN, GRID, TPE, CONFIRM])
    overview = _api(server, f"/sweeps/{sweep_id}")
    page.goto(f"{server['base']}/sweeps/{sweep_id}")
    confirmed = overview["confirmed"]
    expect(page.locator("#confirmed-winner")).to_contain_text(mean_ci(confirmed["winner"]))
    cells = page.locator("#confirmed-table tbody td.interval")
    expect(cells).to_have_text([mean_ci(row) for row in _confirmed_rows(confirmed)])

    with Store(server["url"]) as store:
        comparison = compare_sweep(store, store.get_sweep("confirmed"), server["url"])
    table = page.locator("#comparison-table")
    expect(table.locator("tbody tr")).to_have_count(5)
    for row in comparison.rows:
        line = table.locator(f'tbody tr[data-kind="{row.kind}"]')
        expect(line.locator("td").first).to_have_text(row.label)
        expect(line.locator("td.interval")).to_have_text(objective_text(row))
        expect(line.locator("a")).to_have_text(f"#{row.trial_number}")
    expect(page.locator("#comparison")).to_contain_text(
        f"Sweep total: {comparison.total.trainings} trainings"
    )

    warnings = overview.get("warnings") or []  # service/overview.py's list, when it has one
    if warnings:
        expect(page.locator("#warnings li")).to_have_text(warnings)
    else:
        expect(page.locator("#warnings")).to_be_hidden()

    trials = _api(server, f"/sweeps/{sweep_id}/trials")["trials"]
    collapsed = next(t for t in trials if t["params"]["learning_rate"] == 1.0e-5)
    detail = _api(server, f"/trials/{collapsed['id']}")
    page.goto(f"{server['base']}/trials/{collapsed['id']}")
    expect(page.locator("#degenerate")).to_have_text(f"degenerate: {detail['degenerate']}")
    expect(page.locator("#objective-interval")).to_contain_text("(wilson, 400 rows)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "degenerate-trial.png"), full_page=True)


def test_configurations_the_seeds_cannot_tell_apart_are_named_as_tied(
    server: dict[str, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    # warmup moves accuracy by a row or less of 400: three seeds cannot separate its values
    space = {"warmup_steps": {"type": "int", "low": 0, "high": 500, "ofat": [0, 200]}}
    confirm = {**CONFIRM, "top": 2}
    sweep_id = _run_here(server, "tied", [SCREEN, confirm], search_space=space)
    confirmed = _api(server, f"/sweeps/{sweep_id}")["confirmed"]
    assert confirmed["tied"], confirmed
    page.goto(f"{server['base']}/sweeps/{sweep_id}")
    ties = page.locator("#confirmed-ties")
    expect(ties).to_contain_text("The top configurations cannot be told apart")
    for params in [confirmed["winner"]["params"], *confirmed["tied"]]:
        expect(ties).to_contain_text(", ".join(f"{k}={v}" for k, v in params.items()))
    picked = page.locator("#confirmed-winner")
    expect(picked).to_contain_text("Picked from the tie")
    expect(picked).to_contain_text(mean_ci(confirmed["winner"]))
    expect(page.locator("#confirmed-table tbody tr")).to_have_count(
        len(confirmed["configurations"])
    )
    expect(page.locator('#comparison-table tr[data-kind="confirmed"] td.interval')).to_contain_text(
        "±"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sweep-page-confirmed.png"), full_page=True)


def test_a_sweep_stopped_at_its_budget_shows_the_reason_and_each_limit_used_and_left(
    server: dict[str, Any], page: Any
) -> None:
    from playwright.sync_api import expect

    rates = {"learning_rate": [1e-5, 2e-5, 3e-5, 5e-5]}
    spec = analytic_spec(
        "overbudget",
        [{"name": "grid", "strategy": "grid", "values": rates}],
        objective={"metric": "accuracy"},
        budget={"max_failures": 2, "max_wall_time": "1h"},
    )
    with Store(server["url"]) as store:
        home = str(server["tmp"] / "home-here")
        run = SweepRun(spec, store, InlineBackend(), server["url"], home, FAILING_RUNNER)
        assert launch(run) is SweepState.STOPPED
        sweep_id = store.get_sweep("overbudget").id
    overview = _api(server, f"/sweeps/{sweep_id}")
    budget = overview["budget"]
    assert budget["limits"]["max_failures"] == {"used": 2, "limit": 2, "left": 0.0}
    page.goto(f"{server['base']}/sweeps/{sweep_id}")
    expect(page.locator("#sweep-state")).to_have_text("STOPPED")
    expect(page.locator("#sweep-error")).to_have_text(overview["error"])
    assert overview["error"].startswith("budget max_failures used up")
    expect(page.locator("#budget li")).to_have_text(budget["lines"])
    expect(page.locator("#budget")).to_have_class("budget exhausted")

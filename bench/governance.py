"""``make bench``, part ``governance``: the governance view over 100,000 issued cards and 20,000 feedback items
(bench/history.py, all in the last 30 days, so the default page reads every one of them), on each backend (SQLite;
PostgreSQL when its binaries are installed: a throwaway cluster, bench/pgcluster.py).

For each backend: the time to load the history; p50/p99 of ``GET /governance/`` (the whole page: counts, report,
both charts, Jinja), of the JSON and CSV twins, and of the store's counting alone; the plan of each counting
statement (SQLite: ``EXPLAIN QUERY PLAN``; PostgreSQL: ``EXPLAIN (ANALYZE, FORMAT JSON)``: the planner's total
cost and the execution time); and order-sign in process alone and while another process reads the governance
counts of the same database in a loop (the CDS calls never wait on those reads: WAL readers and PostgreSQL's MVCC
snapshots take no lock a writer waits for; the two processes still share the machine's 2 CPUs).
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

try:
    from bench.history import default_window, generate, load  # the tests
    from bench.pgcluster import find_bin_dir, throwaway_cluster
except ImportError:
    from history import default_window, generate, load  # bench/run.py, run with bench/ on its path
    from pgcluster import find_bin_dir, throwaway_cluster

ORDER_SIGN = "/cds-services/medication-safety-order-sign"


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {"n": len(ms), "p50_ms": statistics.median(ms), "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
            "max_ms": ms[-1]}


def _timed(action: Callable[[], Any], runs: int, warmup: int = 2) -> tuple[dict[str, float], int]:
    """p50/p99 of ``action`` (a test-client request or a store call); errors: responses that are not 200."""
    errors = 0
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        result = action()
        samples.append(time.perf_counter() - began)
        errors += getattr(result, "status_code", 200) != 200
    return _summary(samples), errors


def query_plans(store, first, last) -> dict[str, Any]:
    """The plan of each counting statement of the default page (every service, the period)."""
    plans: dict[str, Any] = {}
    for name, (sql, params) in store.count_queries(None, first, last, True).items():
        if store.backend == "sqlite":
            rows = store._conn().execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            plans[name] = {"plan": [row[-1] for row in rows]}
        else:
            with store.pool().connection() as conn:
                plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchone()[0][0]
            plans[name] = {"total_cost": plan["Plan"]["Total Cost"], "execution_ms": plan["Execution Time"],
                           "top_node": plan["Plan"]["Node Type"]}
    if store.backend != "sqlite":
        plans["total_cost"] = sum(p["total_cost"] for p in plans.values())
        plans["execution_ms"] = sum(p["execution_ms"] for p in plans.values() if isinstance(p, dict))
    return plans


def _read_counts_until(url: str, stop, first, last) -> None:
    """In another process: the governance counts, read again and again until ``stop`` is set."""
    from fhirsvc.storage import open_store

    store = open_store(url)
    while not stop.is_set():
        store.governance(None, first, last)
    store.close()


def _order_sign(client, body: bytes, runs: int) -> tuple[dict[str, float], int]:
    return _timed(lambda: client.post(ORDER_SIGN, data=body, content_type="application/json"), runs, warmup=20)


def measure_backend(url: str, history, order_sign_body: bytes, runs: int, scratch: Path) -> tuple[dict, int]:
    from fhirsvc import create_app
    from fhirsvc.governance.report import parse_period
    from fhirsvc.storage import get_store, open_store

    store = open_store(url)
    began = time.perf_counter()
    load(store, history)
    loaded_s = time.perf_counter() - began
    if store.backend != "sqlite":  # what autovacuum would do after such a load: planner statistics
        with store.pool().connection() as conn:
            conn.execute("VACUUM ANALYZE issued_cards")
            conn.execute("VACUUM ANALYZE feedback")
    store.close()
    app = create_app({"KNOWLEDGE_PATH": "", "DATABASE_URL": url, "GOVERNANCE": "on", "AUTH": "off",
                      "VALIDATION_CACHE": str(scratch / "validated.txt")})
    client = app.test_client()
    errors = 0
    result: dict[str, Any] = {"load_s": loaded_s}
    from fhirsvc.governance.charts import cache_clear

    def drawn():  # the page with its charts drawn anew, as after any change of the numbers
        cache_clear()
        return client.get("/governance/")

    result["page"], bad = _timed(drawn, runs)
    errors += bad
    for name, route in (("page_charts_kept", "/governance/"), ("json", "/governance/report.json"),
                        ("csv", "/governance/report.csv")):
        result[name], bad = _timed(lambda route=route: client.get(route), runs)
        errors += bad
    page = client.get("/governance/")
    result["page_bytes"] = len(page.get_data())
    document = client.get("/governance/report.json").get_json()
    result["cards_in_period"] = document["totals"]["cardsIssued"]
    result["feedback_in_period"] = document["totals"]["feedback"] + document["unknownRule"]["feedback"]
    result["rules"] = len(document["rules"])
    period = parse_period(document["period"]["from"], document["period"]["to"], date.today())
    store = get_store(app)
    result["counts"], _ = _timed(lambda: store.governance(None, period.first, period.last), runs)
    result["plans"] = query_plans(store, period.first, period.last)

    result["order_sign_alone"], bad = _order_sign(client, order_sign_body, runs * 10)
    errors += bad
    stop = multiprocessing.get_context("spawn").Event()
    reader = multiprocessing.get_context("spawn").Process(target=_read_counts_until,
                                                          args=(url, stop, period.first, period.last))
    reader.start()
    try:
        time.sleep(2)  # the reader is importing and then reading
        result["order_sign_while_counting"], bad = _order_sign(client, order_sign_body, runs * 10)
        errors += bad
    finally:
        stop.set()
        reader.join(timeout=60)
    get_store(app).close()
    return result, errors


def measure_governance(quick: bool, scratch: Path, order_sign_body: bytes) -> tuple[dict[str, Any], int]:
    cards, feedback = (20_000, 4_000) if quick else (100_000, 20_000)
    runs = 10 if quick else 30
    history = generate(2026, cards, feedback, *default_window(30))
    result: dict[str, Any] = {"cards": cards, "feedback": feedback, "runs": runs, "backends": {},
                              "cards_per_order": measure_cards_per_order(scratch)}
    errors = 0
    print(f"  governance, sqlite: {cards} cards, {feedback} feedback items ...", flush=True)
    result["backends"]["sqlite"], bad = measure_backend(f"sqlite:///{scratch / 'governance.sqlite3'}", history,
                                                        order_sign_body, runs, scratch)
    errors += bad
    if find_bin_dir() is None:
        result["backends"]["postgresql"] = None  # `make postgres` installs it
    else:
        print("  governance, postgresql ...", flush=True)
        with throwaway_cluster() as cluster:
            result["backends"]["postgresql"], bad = measure_backend(cluster.create_database("governance"), history,
                                                                    order_sign_body, runs, scratch)
            errors += bad
    return result, errors


def measure_cards_per_order(scratch: Path) -> dict[str, Any]:
    """Cards per anakinra order (mean, p90) before and after the shipped example configuration, over the history of
    bench/config_history.py (the golden scenarios' real cards), as governance reads them from a SQLite store."""
    from fhirsvc import create_app

    try:
        from bench import config_history
    except ImportError:
        import config_history  # type: ignore[no-redef]  # bench/run.py, run with bench/ on its path

    url = f"sqlite:///{scratch / 'config-change.sqlite3'}"
    app = create_app({"TESTING": True, "KNOWLEDGE_PATH": "", "AUTH": "off", "DATABASE_URL": url, "GOVERNANCE": "on",
                      "SITE_CONFIG": str(config_history.EXAMPLE), "CARD_RETENTION_DAYS": 3650})
    from fhirsvc.knowledge import get_knowledge
    from fhirsvc.storage import get_store

    history = config_history.generate(get_knowledge(app))
    config_history.load(get_store(app), history)
    first = history.orders[0].at.date().isoformat()
    report = app.test_client().get(f"/governance/report.json?from={first}").get_json()
    found = report["cardsPerOrder"].get("anakinra", {})
    return {"overall": {k: found.get(k) for k in ("orders", "mean", "p90")},
            "by_configuration": found.get("byConfiguration", {}), "change": history.change.isoformat()}


def report_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"Governance view over {result['cards']:,} issued cards and {result['feedback']:,} feedback items "
             f"(last 30 days; {result['runs']} requests each, in process):"]
    for backend, part in result["backends"].items():
        if part is None:
            lines.append(f"  {backend}: not measured (no PostgreSQL binaries: make postgres)")
            continue
        plans = part["plans"]
        names = ("issued", "answered", "feedback", "unknown")
        cost = (f"; plan cost {plans['total_cost']:.0f} ("
                + ", ".join(f"{name} {plans[name]['total_cost']:.0f}" for name in names)
                + f"), executed in {plans['execution_ms']:.0f} ms"
                if "total_cost" in plans else
                "; plans: " + "; ".join(f"{name}: {' / '.join(plans[name]['plan'])}" for name in names))
        lines.append(
            f"  {backend}: page p50 {part['page']['p50_ms']:.0f} ms (p99 {part['page']['p99_ms']:.0f}; charts "
            f"kept from the last request {part['page_charts_kept']['p50_ms']:.0f} ms), JSON "
            f"{part['json']['p50_ms']:.0f} ms, CSV {part['csv']['p50_ms']:.0f} ms, counts alone "
            f"{part['counts']['p50_ms']:.0f} ms{cost}; {part['cards_in_period']:,} cards and "
            f"{part['feedback_in_period']:,} feedback items in the period, {part['rules']} rules; loaded in "
            f"{part['load_s']:.1f} s")
        lines.append(f"    order-sign p50 alone {part['order_sign_alone']['p50_ms']:.2f} ms, while another process "
                     f"reads the counts in a loop {part['order_sign_while_counting']['p50_ms']:.2f} ms (p99 "
                     f"{part['order_sign_alone']['p99_ms']:.2f} / {part['order_sign_while_counting']['p99_ms']:.2f})")
    per_order = result.get("cards_per_order")
    if per_order:
        lines.append("Cards per anakinra order (the golden scenarios' real cards, 8 weeks, configuration changed on "
                     f"{per_order['change'][:10]}): " + "; ".join(
                         f"{version} mean {numbers['mean']:.2f}, p90 {numbers['p90']} ({numbers['orders']} orders)"
                         for version, numbers in per_order["by_configuration"].items()))
    return lines


if __name__ == "__main__":  # a quick look without the rest of the bench
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.workload import order_sign

    with tempfile.TemporaryDirectory() as directory:
        measured, _ = measure_governance("--quick" in sys.argv, Path(directory),
                                         json.dumps(order_sign(1, 100)).encode())
    print("\n".join(report_lines(measured)))
    print(json.dumps(measured, indent=2, default=str))

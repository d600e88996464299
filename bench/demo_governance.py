"""``make demo-governance``: a realistic generated history (bench/history.py: the last 90 days, 20,000 card shows,
5,000 feedback items) and the history of a site configuration change (bench/config_history.py: eight weeks of
anakinra orders with the golden scenarios' real cards, the shipped example configuration in force from the fifth
week) in a temporary SQLite store, served by ``fhirsvc serve`` with the governance view on, that configuration in
force and CDS authentication off, until Ctrl-C; then the store is deleted. Open http://HOST:PORT/governance/?from=...
(the command prints the period of the change)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import config_history
from bench.history import default_window, generate, load
from fhirsvc.config import knowledge_dirs, load_config
from fhirsvc.knowledge import load_knowledge
from fhirsvc.storage import open_store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--feedback", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fhirsvc-governance-demo-") as directory:
        url = f"sqlite:///{Path(directory) / 'state.sqlite3'}"
        print(f"demo-governance: generating {args.cards} card shows and {args.feedback} feedback items over the "
              f"last 90 days into {url}", flush=True)
        store = open_store(url)
        load(store, generate(args.seed, args.cards, args.feedback, *default_window(90)))
        change = config_history.generate(load_knowledge(knowledge_dirs(load_config())), args.seed)
        config_history.load(store, change)
        store.close()
        for version, numbers in config_history.cards_per_order(change).items():
            print(f"demo-governance: cards per anakinra order under {version}: mean {numbers['mean']:.2f}, "
                  f"p90 {numbers['p90']} ({numbers['orders']} orders)", flush=True)
        first = change.orders[0].at.date().isoformat()
        print(f"demo-governance: open http://{args.host}:{args.port}/governance/?from={first} (Ctrl-C stops and "
              "deletes the store)", flush=True)
        env = {**os.environ, "FHIRSVC_DATABASE_URL": url, "FHIRSVC_GOVERNANCE": "on", "FHIRSVC_AUTH": "off",
               "FHIRSVC_SITE_CONFIG": str(config_history.EXAMPLE),
               "FHIRSVC_CARD_RETENTION_DAYS": "90",  # the whole generated history
               "FHIRSVC_WORKERS": "2"}
        server = subprocess.Popen([sys.executable, "-m", "fhirsvc.cli", "serve", "--host", args.host, "--port",
                                   str(args.port)], env=env)
        try:
            return server.wait()
        except KeyboardInterrupt:
            server.terminate()
            server.wait(timeout=30)
            return 0


if __name__ == "__main__":
    sys.exit(main())

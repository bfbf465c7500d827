"""Starting the service: open and migrate the database, verify the pool, and run uvicorn (in the foreground for
``dpbench serve``, or in a background thread for tests, the demo and the load benchmark)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from dpbench.errors import DpbenchError
from dpbench_leaderboard.boards import PROTOCOLS, load_served_pool
from dpbench_leaderboard.config import Settings
from dpbench_leaderboard.db import Database
from dpbench_leaderboard.service import Service


def open_database(url: str, migrate: bool = True) -> Database:
    """The database at ``url``, its schema brought to the newest migration unless ``migrate`` is False."""
    db = Database(url)
    if migrate:
        db.migrate()
    return db


def build_service(settings: Settings, pool: Path | None, protocols: tuple[str, ...] = PROTOCOLS,
                  db: Database | None = None) -> Service:
    """A service over ``settings.database_url``; with ``pool`` it verifies it and opens its boards for submissions,
    without it the service only shows what is stored."""
    served = load_served_pool(pool, protocols) if pool is not None else None
    return Service(db or open_database(settings.database_url), served, settings)


class BackgroundServer:
    """uvicorn serving an app on a loopback port in a daemon thread; ``stop`` ends it."""

    def __init__(self, service: Service, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        from dpbench_leaderboard.app import create_app

        self.service = service
        config = uvicorn.Config(create_app(service), host=host, port=port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="dpbench-leaderboard", daemon=True)
        self.url = ""

    def start(self, timeout: float = 20) -> str:
        """Start serving; returns the base URL (``http://127.0.0.1:PORT``)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise DpbenchError("the leaderboard server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        """Stop serving and wait for the thread (bounded)."""
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.service.views.close()

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(service: Service, host: str, port: int, root_path: str = "", proxy: bool = False) -> None:
    """Run the service in the foreground until interrupted."""
    import uvicorn

    from dpbench_leaderboard.app import create_app

    uvicorn.run(create_app(service), host=host, port=port, root_path=root_path, proxy_headers=proxy,
                forwarded_allow_ips="127.0.0.1" if proxy else None, log_level="info", server_header=False)

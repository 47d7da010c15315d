"""Look at the built site as a reader would: serve ``site/`` on 127.0.0.1 and take screenshots of the front page,
the language page and the parameter reference with headless Chromium (Debian's ``chromium`` package).

    mkdocs build --strict && python tools/screenshots.py            # PNGs in screenshots/ (git-ignored)
    python tools/screenshots.py --site site --out /tmp/shots --width 1280 --height 2000

Nothing here is committed but the script: the pictures are for looking at before calling a docs change done.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"front": "", "language": "language/", "parameters": "reference/parameters/"}


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no chromium on PATH: `apt-get install chromium` (Debian's package)")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # one line per asset would bury the PNG paths
        pass


def serve(site: Path) -> http.server.ThreadingHTTPServer:
    """The site on 127.0.0.1 at a free port, in a daemon thread (loopback only: nothing else may reach it)."""
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def shoot(chromium: str, url: str, out: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile: no state from earlier runs or other users
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
               f"--window-size={width},{height}", f"--screenshot={out}", url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or not out.is_file():
        raise SystemExit(f"chromium failed on {url} (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site", help="the built site (mkdocs build)")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="where the PNGs go")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=1800)
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        raise SystemExit(f"{args.site} holds no built site: run `mkdocs build --strict` first")
    chromium = find_chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    server = serve(args.site)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        for name, page in PAGES.items():
            out = args.out / f"{name}.png"
            shoot(chromium, base + page, out, args.width, args.height)
            print(out)
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Take the docs' pictures anew from the chat page's browser journeys: ``python
docs/make_pictures.py`` (needs Debian's chromium and the dev extra). It runs the journeys of
``tests/test_ui.py`` that take them, against the offline replica, and copies their screenshots
here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
#: docs picture <- the journey's screenshot
PICTURES = {
    "ui.png": "ui-reply-note.png",
    "ui-wait.png": "ui-countdown.png",
    "ui-phone.png": "ui-phone.png",
}
JOURNEYS = "keeps_its_settings or counts_down or phone_shows"


def main() -> None:
    command = [sys.executable, "-m", "pytest", "tests/test_ui.py", "-q", "-k", JOURNEYS]
    subprocess.run(command, cwd=ROOT, check=True, env=None)
    for picture, screenshot in PICTURES.items():
        shutil.copyfile(ARTIFACTS / screenshot, DOCS / picture)
        print(f"docs/{picture} <- tests/artifacts/{screenshot}")


if __name__ == "__main__":
    main()

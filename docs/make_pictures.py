"""Take the docs' pictures anew: ``python docs/make_pictures.py`` (needs Debian's chromium and
the dev extra). The page talks to the offline replica, with the conversation a user would have."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from qwen_gradio.replica import ReplicaServer
from qwen_gradio.ui import close, serve

DOCS = Path(__file__).resolve().parent
QUESTIONS = ["What is the capital of France?", "And of Italy?"]


def main() -> None:
    chromium = shutil.which("chromium")
    assert chromium, "apt-get install chromium"
    with ReplicaServer(delay=0.01) as space:
        demo = serve(space.url, port=None, prevent_thread_lock=True)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                page = browser.new_page(viewport={"width": 1100, "height": 760})
                page.goto(demo.local_url)
                message = page.locator("textarea[data-testid=textbox]").first
                for question in QUESTIONS:
                    message.fill(question)
                    message.press("Enter")
                    expect(page.locator('[data-testid="bot"]').last).to_contain_text(question)
                page.locator("textarea").last.fill("Be brief.")
                page.screenshot(path=str(DOCS / "ui.png"))
                browser.close()
        finally:
            close(demo)


if __name__ == "__main__":
    main()

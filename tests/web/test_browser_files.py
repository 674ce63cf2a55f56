"""Files through the page (docs/files.md): a file picked in the page (the drop target and the
"Send files" button share one path) arrives on the host intact; a file the host offers arrives in
the page as a download with the same bytes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SOURCE = ("--source", "synthetic", "--size", "320x240", "--fps", "30", "--trust", "any")


def test_files_both_ways(chromium: Any, web: Any, tmp_path: Path) -> None:
    up = tmp_path / "to-host.bin"
    up.write_bytes(os.urandom(300_000))
    down = tmp_path / "from-host.bin"
    down.write_bytes(os.urandom(200_000))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    args = (*SOURCE, "--file-out-dir", str(inbox), "--send-file", str(down))
    with web.host(tmp_path / "home", *args) as host:
        page = web.open_page(chromium, host.link())
        try:
            web.wait_stats(page, lambda s: s.get("framesDecoded", 0) >= 5)
            page.set_input_files("#file-input", str(up))
            m = host.wait_for(r"received to-host\.bin -> (\S+)", timeout=60)
            assert Path(m.group(1)).read_bytes() == up.read_bytes()
            link = page.wait_for_selector("#transfers a[download='from-host.bin']", timeout=60_000)
            assert link is not None
            with page.expect_download() as saving:
                link.click()
            saved = tmp_path / "saved.bin"
            saving.value.save_as(saved)
            assert saved.read_bytes() == down.read_bytes()
            host.wait_for(r"sent from-host\.bin")
        finally:
            page.context.close()

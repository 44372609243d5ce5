"""What the package ships, as ``uv build`` makes it: the LICENSE in the wheel and the sdist, and
a long description whose links all work on a package index page (no relative links)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import zipfile
from email import message_from_string
from email.message import Message
from pathlib import Path

import pytest

# Builds the package (uv fetches the build backend from the registry): a real process.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# A markdown link or image whose target is not a URL nor an anchor on the same page.
RELATIVE_LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)\s]+)\)")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel and the sdist ``uv build`` makes of this checkout."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [uv, "build", "--out-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_the_license_is_in_the_wheel_and_the_sdist(built: tuple[Path, Path]) -> None:
    """LICENSE (MIT) is in the wheel's .dist-info/licenses and at the top of the sdist, and the
    metadata names it."""
    wheel, sdist = built
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License")
    with zipfile.ZipFile(wheel) as whl:
        [shipped] = [n for n in whl.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert whl.read(shipped).decode() == license_text
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        member = tar.extractfile(f"{top}/LICENSE")
        assert member is not None
        assert member.read().decode() == license_text
    assert metadata(wheel)["License-File"] == "LICENSE"


def test_the_long_description_has_no_relative_links(built: tuple[Path, Path]) -> None:
    """README.md's relative links (docs/..., examples/) point into the repository in the
    package's long description; the description is the README otherwise."""
    wheel, _ = built
    described = metadata(wheel)
    description = str(described.get_payload())
    assert described["Description-Content-Type"] == "text/markdown"
    assert RELATIVE_LINK.findall(description) == []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert RELATIVE_LINK.findall(readme), "the README has relative links to rewrite"
    homepage = str(described["Project-URL"]).split(", ", 1)[1]
    absolute = RELATIVE_LINK.sub(rf"]({homepage}/blob/main/\1)", readme)
    assert description.strip() == absolute.strip()


def metadata(wheel: Path) -> Message:
    """The wheel's METADATA, parsed as the email message it is."""
    with zipfile.ZipFile(wheel) as whl:
        [name] = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        return message_from_string(whl.read(name).decode("utf-8"))

"""CI's rule, held by tests/conftest.py: under ATLAS_STRICT=1 (or CI=true) a skip fails the run."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SKIPS = '''import pytest

def test_needs_a_browser():
    pytest.skip("no chromium here")

@pytest.mark.skipif(True, reason="no model here")
def test_needs_a_model():
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_known_bug():
    assert False
'''


@pytest.mark.parametrize("env, code", [({}, 0), ({"ATLAS_STRICT": "1"}, 1), ({"CI": "true"}, 1)])
def test_skips_fail_only_when_strict(tmp_path, env, code):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path)
    (tmp_path / "test_skips.py").write_text(SKIPS)
    clean = {k: v for k, v in os.environ.items() if k not in ("ATLAS_STRICT", "CI")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path, env={**clean, **env})
    assert result.returncode == code, result.stdout
    if code:
        assert "1 failed, 1 xfailed, 1 error" in result.stdout  # a skip in setup fails as an error
        for reason in ("no chromium here", "no model here"):
            assert f"skipped under ATLAS_STRICT=1 (CI), which fails every skip: {reason}" in result.stdout
    else:
        assert "2 skipped, 1 xfailed" in result.stdout

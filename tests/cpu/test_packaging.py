"""The source distribution: what `pip install fastattn-<version>.tar.gz` (PyPI's form of the
package) gets. An sdist holds only what setuptools is told to put in it, so a file the build needs
can be missing from it while every test of the checkout passes: before MANIFEST.in, the sdist
lacked csrc/find_cublaslt.py (setup.py imports it, so installing failed outright) and every header
the CUDA sources include."""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUOTED_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def _checkout_files():
    """Files of the checkout that git tracks (what a maintainer builds the sdist from)."""
    listed = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True,
                            check=True).stdout.decode()
    return [path for path in listed.split("\0")
            if path and os.path.isfile(os.path.join(ROOT, path))]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """(path of the built sdist, its member names relative to its top folder)."""
    source = tmp_path_factory.mktemp("source")
    for path in _checkout_files():
        os.makedirs(source / os.path.dirname(path), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, path), source / path)
    out = tmp_path_factory.mktemp("dist")
    # setuptools' PEP 517 hook, what `python -m build --sdist` calls; FASTATTN_SKIP_CUDA_BUILD
    # because the sdist's contents must not depend on whether this machine could build _C. As pip
    # and build run the hook, the project is the working directory but not on sys.path: there its
    # kernels/ would shadow the PyPI package `kernels` (transformers 5.2x installs it), whose
    # setuptools plugin (an egg_info writer) the hook loads.
    subprocess.run([sys.executable, "-c", "import sys; sys.path.remove(''); "
                    "from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])",
                    str(out)], cwd=source, check=True,
                   capture_output=True, env=dict(os.environ, FASTATTN_SKIP_CUDA_BUILD="1"))
    (archive,) = out.glob("fastattn-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    return archive, names


def test_sdist_holds_every_source_the_build_and_the_package_need(sdist):
    _, names = sdist
    needed = [path for path in _checkout_files()
              if path.startswith(("csrc/", "kernels/", "fastattn/"))
              or path in ("setup.py", "pyproject.toml", "README.md")]
    assert any(path.startswith("csrc/") and path.endswith(".h") for path in needed)
    missing = sorted(set(needed) - names)
    assert not missing, f"the sdist lacks {missing}: add them to MANIFEST.in"


def test_every_quoted_include_of_the_cuda_sources_is_in_the_sdist(sdist):
    _, names = sdist
    sources = [name for name in names if name.startswith("csrc/")
               and name.endswith((".cu", ".cuh", ".cpp", ".h"))]
    assert sources
    for name in sources:
        with open(os.path.join(ROOT, name)) as f:
            for header in QUOTED_INCLUDE.findall(f.read()):
                assert f"csrc/{header}" in names, f"{name} includes {header}, not in the sdist"


def test_package_installed_from_the_sdist_imports_and_computes(sdist, tmp_path):
    archive, _ = sdist
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(archive)],
                   check=True, capture_output=True,
                   env=dict(os.environ, FASTATTN_SKIP_CUDA_BUILD="1"))
    # Run from an empty folder, so that the checkout cannot be imported instead of the install.
    script = textwrap.dedent("""
        import sys, torch, fastattn
        import fastattn.kernels.attention_fwd  # the Triton kernels, installed from kernels/
        assert fastattn.__file__.startswith(sys.argv[1]), fastattn.__file__
        q, k, v = (torch.randn(2, 3, 5, 16) for _ in range(3))
        mask = torch.tensor([[True] * 5, [False, True, True, False, True]])
        out = fastattn.attention(q, k, v, key_padding_mask=mask)
        ref = fastattn.reference.attention(q, k, v, key_padding_mask=mask)
        assert (out - ref).abs().max() < 1e-5, (out - ref).abs().max()
        print("ok")
        """)
    run = subprocess.run([sys.executable, "-c", script, str(target)], cwd=tmp_path,
                         capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(target)))
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]

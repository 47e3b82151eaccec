"""find_cublaslt.find_cublaslt (how setup.py finds cuBLASLt) on fake toolkit and site-packages trees."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "csrc"))
import find_cublaslt  # noqa: E402


def add_header(include_dir, major):
    include_dir.mkdir(parents=True, exist_ok=True)
    (include_dir / "cublasLt.h").write_text("/* fake */\n")
    (include_dir / "cublas_api.h").write_text(f"#define CUBLAS_VER_MAJOR {major}\n#define CUBLAS_VER_MINOR 1\n")


def add_library(lib_dir, *names):
    lib_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        (lib_dir / name).write_text("")


@pytest.fixture
def toolkit(tmp_path):
    """A toolkit without cuBLAS (as ours is)."""
    root = tmp_path / "cuda"
    (root / "include").mkdir(parents=True)
    (root / "lib64").mkdir()
    return root


def test_pip_package_of_cuda_13(tmp_path, toolkit):
    site = tmp_path / "site-packages"
    add_header(site / "nvidia" / "cu13" / "include", 13)
    add_library(site / "nvidia" / "cu13" / "lib", "libcublasLt.so.13", "libcublas.so.13")
    found, notes = find_cublaslt.find_cublaslt(str(toolkit), [str(site)])
    assert found is not None, notes
    assert found.include_dir == str(site / "nvidia" / "cu13" / "include")
    assert not found.header_from_toolkit
    assert (found.library_dir, found.library_file, found.version_major) == (
        str(site / "nvidia" / "cu13" / "lib"), "libcublasLt.so.13", 13)
    assert find_cublaslt.compile_flags(found) == ["-DFASTATTN_WITH_CUBLASLT", "-idirafter",
                                                   found.include_dir]
    assert find_cublaslt.link_flags(found) == [f"-L{found.library_dir}", "-l:libcublasLt.so.13",
                                                f"-Wl,-rpath,{found.library_dir}"]


def test_cuda_12_layout_and_the_soname_over_the_full_version(tmp_path):
    site = tmp_path / "site-packages"
    add_header(site / "nvidia" / "cublas" / "include", 12)
    add_library(site / "nvidia" / "cublas" / "lib", "libcublasLt.so.12.8.4.1", "libcublasLt.so.12")
    found, notes = find_cublaslt.find_cublaslt(None, [str(site)])
    assert found is not None, notes
    assert found.library_file == "libcublasLt.so.12"


def test_toolkit_header_wins_and_pip_library_is_linked(tmp_path, toolkit):
    """The toolkit's include/ is on the compiler's path anyway; the library torch loads is pip's."""
    add_header(toolkit / "include", 13)
    add_library(toolkit / "lib64", "libcublasLt.so", "libcublasLt.so.13")
    site = tmp_path / "site-packages"
    add_header(site / "nvidia" / "cu13" / "include", 13)
    add_library(site / "nvidia" / "cu13" / "lib", "libcublasLt.so.13")
    found, _ = find_cublaslt.find_cublaslt(str(toolkit), [str(site)])
    assert found.header_from_toolkit and found.include_dir == str(toolkit / "include")
    assert found.library_dir == str(site / "nvidia" / "cu13" / "lib")
    assert find_cublaslt.compile_flags(found) == ["-DFASTATTN_WITH_CUBLASLT"]


def test_toolkit_alone(toolkit):
    add_header(toolkit / "include", 13)
    add_library(toolkit / "lib64", "libcublasLt.so", "libcublasLt.so.13", "libcublasLt.so.13.1.1")
    found, _ = find_cublaslt.find_cublaslt(str(toolkit), [])
    assert (found.library_dir, found.library_file) == (str(toolkit / "lib64"), "libcublasLt.so.13")


def test_a_library_of_another_major_version_is_skipped(tmp_path, toolkit):
    add_header(toolkit / "include", 13)
    site = tmp_path / "site-packages"
    add_library(site / "nvidia" / "cublas" / "lib", "libcublasLt.so.12")
    (site / "nvidia" / "cublas" / "include").mkdir(parents=True)
    (site / "nvidia" / "cublas" / "include" / "cublasLt.h").write_text("")
    found, notes = find_cublaslt.find_cublaslt(str(toolkit), [str(site)])
    assert found is None
    assert any("version 12 is not the header's 13" in note for note in notes)


def test_nothing_found_says_where_it_looked(tmp_path, toolkit):
    found, notes = find_cublaslt.find_cublaslt(str(toolkit), [str(tmp_path / "empty")])
    assert found is None
    assert str(toolkit / "include") in notes[0] and str(tmp_path / "empty") in notes[0]


def test_header_without_version_is_refused(tmp_path):
    site = tmp_path / "site-packages"
    include = site / "nvidia" / "cu13" / "include"
    include.mkdir(parents=True)
    (include / "cublasLt.h").write_text("")
    add_library(site / "nvidia" / "cu13" / "lib", "libcublasLt.so.13")
    found, notes = find_cublaslt.find_cublaslt(None, [str(site)])
    assert found is None and "CUBLAS_VER_MAJOR" in notes[-1]


def test_this_machine(tmp_path):
    """Where torch's nvidia pip packages hold cuBLASLt (CI, the GPU machines), it is found."""
    torch = pytest.importorskip("torch")
    if torch.version.cuda is None:
        pytest.skip("a CPU build of torch brings no NVIDIA pip packages")
    site = os.path.dirname(os.path.dirname(torch.__file__))
    if not find_cublaslt.pip_roots([site]):
        pytest.skip(f"no nvidia/*/include/cublasLt.h under {site}")
    found, notes = find_cublaslt.find_cublaslt(None, [site])
    assert found is not None, notes
    assert found.version_major == int(torch.version.cuda.split(".")[0])

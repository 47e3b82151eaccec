"""Finds cuBLASLt's header and library for the build of fastattn._C (setup.py) and for the compile
tier. Standard library only: the compile tier runs where torch is not installed.

torch's CUDA wheels bring cuBLAS(Lt) as NVIDIA pip packages (nvidia/cu13/ for CUDA 13,
nvidia/cublas/ for CUDA 12), headers included, and torch loads that library when it is imported. A
CUDA toolkit may or may not ship cuBLAS (ours does not). So:
- the header: the toolkit's include/ when it has cublasLt.h (it is already on the compiler's include
  path and would shadow any other), else a pip package's include/;
- the library: a pip package's first (the very library torch has loaded: linking its soname makes
  fastattn._C share it), else the toolkit's lib64/;
- both must be the same major version (CUBLAS_VER_MAJOR against the soname), else no cuBLASLt.
"""

import glob
import os
import re
from dataclasses import dataclass, field

HEADER = "cublasLt.h"
# The one source file that includes cublasLt.h: compiled only when cuBLASLt is found.
SOURCE = "csrc/ffn_cublaslt.cpp"
_VERSION_MAJOR = re.compile(r"^\s*#\s*define\s+CUBLAS_VER_MAJOR\s+(\d+)", re.MULTILINE)
_SONAME_MAJOR = re.compile(r"^libcublasLt\.so\.(\d+)")


@dataclass
class CublasLt:
    """What to compile and link with; `header_from_toolkit` means no extra include path is needed."""
    include_dir: str
    header_from_toolkit: bool
    library_dir: str
    library_file: str          # linked as -l:<library_file>
    version_major: int
    notes: list = field(default_factory=list)


def header_major(include_dir):
    """CUBLAS_VER_MAJOR from cublas_api.h beside cublasLt.h, or None when it cannot be read."""
    try:
        with open(os.path.join(include_dir, "cublas_api.h"), encoding="utf-8", errors="replace") as f:
            match = _VERSION_MAJOR.search(f.read())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def library_in(folder):
    """(file name, major) of the newest libcublasLt in `folder`, by the name the loader matches
    (the soname: pip packages ship nothing else), or None."""
    found = []
    for path in glob.glob(os.path.join(folder, "libcublasLt.so*")):
        match = _SONAME_MAJOR.match(os.path.basename(path))
        if match:
            found.append((os.path.basename(path), int(match.group(1))))
    if not found:
        return None
    newest = max(major for _, major in found)
    # libcublasLt.so.13 before libcublasLt.so.13.1.1.3: the soname is what the loader matches.
    return min((item for item in found if item[1] == newest), key=lambda item: len(item[0]))


def pip_roots(site_dirs):
    """nvidia/<package>/ folders holding include/cublasLt.h, in site_dirs' order."""
    roots = []
    for site_dir in site_dirs:
        for header in sorted(glob.glob(os.path.join(site_dir, "nvidia", "*", "include", HEADER))):
            root = os.path.dirname(os.path.dirname(header))
            if root not in roots:
                roots.append(root)
    return roots


def toolkit_library_dirs(toolkit_root):
    return [os.path.join(toolkit_root, "lib64"), os.path.join(toolkit_root, "lib")] + sorted(
        glob.glob(os.path.join(toolkit_root, "targets", "*", "lib")))


def find_cublaslt(toolkit_root, site_dirs):
    """(CublasLt, notes) or (None, notes): notes say what was looked at, for the build log."""
    notes = []
    roots = pip_roots(site_dirs)
    toolkit_include = os.path.join(toolkit_root, "include") if toolkit_root else None
    if toolkit_include and os.path.exists(os.path.join(toolkit_include, HEADER)):
        include_dir, from_toolkit = toolkit_include, True
    elif roots:
        include_dir, from_toolkit = os.path.join(roots[0], "include"), False
    else:
        notes.append(f"no {HEADER} in {toolkit_include or 'the toolkit'} nor under nvidia/*/include "
                     f"in {', '.join(site_dirs) or 'no site-packages'}")
        return None, notes
    major = header_major(include_dir)
    if major is None:
        notes.append(f"{include_dir}/cublas_api.h gives no CUBLAS_VER_MAJOR")
        return None, notes
    notes.append(f"{HEADER} {major}.x in {include_dir}")

    library_dirs = [os.path.join(root, "lib") for root in roots]
    if toolkit_root:
        library_dirs += toolkit_library_dirs(toolkit_root)
    for folder in library_dirs:
        library = library_in(folder)
        if library is None:
            continue
        if library[1] != major:
            notes.append(f"skipped {folder}/{library[0]}: version {library[1]} is not the header's {major}")
            continue
        notes.append(f"linking {folder}/{library[0]}")
        return CublasLt(include_dir, from_toolkit, folder, library[0], major, notes), notes
    notes.append(f"no libcublasLt.so.{major} in {', '.join(library_dirs)}")
    return None, notes


def compile_flags(found):
    """Flags for the host compiler. -idirafter, not -I: a pip include/ also holds cuda_runtime.h
    and friends, which must not shadow the toolkit's."""
    flags = ["-DFASTATTN_WITH_CUBLASLT"]
    if not found.header_from_toolkit:
        flags += ["-idirafter", found.include_dir]
    return flags


def link_flags(found):
    """-l:<file> links the soname itself (pip ships no unversioned libcublasLt.so); the rpath lets
    fastattn._C load without LD_LIBRARY_PATH even before torch has loaded the library."""
    return [f"-L{found.library_dir}", f"-l:{found.library_file}", f"-Wl,-rpath,{found.library_dir}"]

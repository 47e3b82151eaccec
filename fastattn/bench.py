"""`python -m fastattn bench`: run the benchmark suites of the source checkout, compare two results
files, or regenerate the README's results section.

The suites live in the checkout's `benchmarks/` folder, which is not installed: this module finds
it next to the `fastattn` package it was imported from (an editable install or PYTHONPATH), else in
the current directory, and says so when there is none. The suites run in a pytest subprocess
(pytest-benchmark plugins, fixtures and per-suite hooks are pytest's), which prints a line per case
and ends with the results table; results merge into <results-dir>/<device>.json.
"""

import os
import subprocess
import sys

# Suite name -> file in benchmarks/. Files not written yet are reported, not failed on.
SUITES = {
    "attention": "test_attention.py",
    "softmax": "test_masked_softmax.py",
    "layernorm": "test_layer_norm_residual.py",
    "gelu": "test_bias_gelu.py",
    "ffn": "test_ffn.py",
    "models": "test_models.py",
}
NO_CHECKOUT = ("python -m fastattn bench needs the fastattn source checkout (its benchmarks/ folder "
               "is not installed with the package). Run it from the checkout (cd fastattn && python "
               "-m fastattn bench), or install the checkout editable: pip install "
               "--no-build-isolation -e .")


def add_arguments(parser):
    parser.add_argument("--suite", action="append", choices=sorted(SUITES), metavar="NAME",
                        help=f"run only this suite (repeatable): {', '.join(SUITES)}; default all")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="fewer and smaller cases (what `make gpu` runs); the default on CPU")
    size.add_argument("--full", action="store_true", help="all cases, also on CPU")
    parser.add_argument("--results-dir", metavar="DIR",
                        help="where <device>.json/.md/.png go (default benchmarks/results)")
    parser.add_argument("-k", metavar="EXPR", help="pytest -k expression to select cases")
    parser.add_argument("--compare", nargs="+", metavar="JSON",
                        help="OLD.json [NEW.json]: print the change per case and flag regressions "
                             "(NEW defaults to this device's file in the results dir); runs nothing")
    parser.add_argument("--threshold", type=float, default=None, metavar="FRACTION",
                        help="with --compare: smallest change that counts (default 0.05), raised "
                             "per case to the spread of its timings")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="with --compare: exit 1 when any case regressed")
    parser.add_argument("--readme", action="store_true",
                        help="rewrite README.md's results section from the newest GPU results")


def find_checkout():
    """The source checkout holding benchmarks/, or None."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for root in (here, os.getcwd()):
        if os.path.isfile(os.path.join(root, "benchmarks", "conftest.py")):
            return root
    return None


def _import_benchmarks(root):
    # benchmarks/ is a package of the checkout, not of the installation.
    if root not in sys.path:
        sys.path.insert(0, root)


def _say(message):
    print(f"fastattn bench: {message}", flush=True)


def _device_line():
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        return True, f"GPU: {props.name} (sm_{props.major}{props.minor})"
    return False, ("no GPU present: running the CPU cases (torch backend against eager PyTorch) at "
                   "small sizes; CPU wall-clock numbers check the machinery and say nothing about "
                   "GPU performance. Results are labelled CPU.")


def _pytest_command(files, args, quick, results_dir):
    # One suite that fails to import must not stop the others: a broken suite shows as an error.
    # Classic console style: our progress lines already count cases, pytest's [NN%] would not.
    command = [sys.executable, "-m", "pytest", *files, "--benchmark-only", "--benchmark-quiet",
               "--progress", "-q", "-ra", "--continue-on-collection-errors",
               "-o", "console_output_style=classic", "--results-dir", results_dir]
    if quick:
        command.append("--quick")
    if args.k:
        command += ["-k", args.k]
    return command


def run_suites(root, args):
    has_gpu, device_line = _device_line()
    _say(device_line)
    names = list(dict.fromkeys(args.suite or SUITES))
    present = [n for n in names if os.path.isfile(os.path.join(root, "benchmarks", SUITES[n]))]
    for name in names:
        if name not in present:
            _say(f"suite {name!r}: benchmarks/{SUITES[name]} does not exist yet; skipped")
    if not present:
        _say("no suite to run")
        return 0
    quick = args.quick or (not has_gpu and not args.full)
    results_dir = os.path.abspath(args.results_dir or os.path.join(root, "benchmarks", "results"))
    _say(f"running {', '.join(present)} ({'quick' if quick else 'full'} sizes"
         + (", quick by default on CPU: --full for all" if quick and not has_gpu and not args.quick
            else "") + f"); results merge into {results_dir}")
    files = [os.path.join("benchmarks", SUITES[n]) for n in present]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    suites = subprocess.Popen(_pytest_command(files, args, quick, results_dir), cwd=root, env=env)
    try:
        return suites.wait()
    except KeyboardInterrupt:
        # Ctrl-C (or a time budget's SIGINT) reaches the suites' pytest too, which stops after the
        # case in hand and still writes the results of the finished cases: wait for it to do so.
        _say("interrupted: keeping the results of the finished cases")
        suites.wait()
        return 130


def run_compare(root, args):
    from benchmarks import compare, results_file
    from benchmarks.device_info import device_slug

    if len(args.compare) > 2:
        _say("--compare takes OLD.json and at most one NEW.json")
        return 2
    old_path = args.compare[0]
    new_path = args.compare[1] if len(args.compare) == 2 else os.path.join(
        args.results_dir or os.path.join(root, "benchmarks", "results"), device_slug() + ".json")
    try:
        old, new = results_file.load(old_path), results_file.load(new_path)
    except (OSError, ValueError) as exc:
        _say(f"cannot compare: {exc}")
        return 2
    threshold = compare.DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    result = compare.compare_records(old["records"], new["records"], threshold)
    print(compare.format_comparison(result, old, new, old_path, new_path))
    return 1 if args.fail_on_regression and compare.regressions(result) else 0


def run_readme(root, args):
    from benchmarks import readme_results

    results_dir = args.results_dir or readme_results.RESULTS_DIR
    readme = os.path.join(root, "README.md")
    changed = readme_results.update_readme(readme, results_dir)
    _say(f"{readme}: benchmark section {'rewritten' if changed else 'already up to date'}")
    return 0


def main(args):
    root = find_checkout()
    if root is None:
        print(NO_CHECKOUT, file=sys.stderr)
        return 2
    _import_benchmarks(root)
    if args.compare:
        return run_compare(root, args)
    if args.readme:
        return run_readme(root, args)
    return run_suites(root, args)

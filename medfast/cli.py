"""The ``medfast`` command line (also ``python -m medfast``).

Commands: ``info`` (what files and DICOM folders hold), ``convert`` (DICOM
-> NIfTI, one input or a batch, local worker processes or Dask),
``resample``, ``reorient``, ``bench`` and ``config``.  This module parses
arguments, shows progress and reports; the work is done by the library
(:mod:`medfast.batch`, :mod:`medfast.info`, :func:`medfast.resample`...).

Conventions: exit status 0 when everything was done, 1 when some inputs
failed or were left out (each listed on stderr), 2 for a usage error, 130
when interrupted; errors are one line on stderr (a traceback with
``--debug``); progress bars go to stderr and only to a terminal.
"""
import argparse
import contextlib
import json
import os
import sys

import numpy as np

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A command line that cannot run (exit status 2)."""


def _one_line(exc):
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"  # not "[Errno 2] ...: 'name'"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class _Output:
    """Where a command writes: results on stdout, problems on stderr,
    progress bars on stderr when it is a terminal."""

    def __init__(self, command, quiet=False, verbose=False):
        self.command = command
        self.quiet = quiet
        self.verbose = verbose

    def result(self, line):
        if not self.quiet:
            print(line)

    def problem(self, kind, text):
        print(f"medfast {self.command}: {kind}: {text}", file=sys.stderr)

    def note(self, text, verbose_only=False):
        if not self.quiet and (self.verbose or not verbose_only):
            print(f"medfast {self.command}: {text}", file=sys.stderr)

    def bar(self, total=None, desc="", unit="file"):
        """A tqdm bar on stderr, disabled with --quiet or when stderr is not
        a terminal (logs and pipelines get no control characters)."""
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                    disable=self.quiet or not sys.stderr.isatty(), dynamic_ncols=True)


# --------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------
def _follow(bar):
    """A progress callback ``(stage, done, total)`` that moves `bar`."""
    def progress(stage, done, total):
        bar.total = total
        bar.update(done - bar.n)
    return progress


def _print_image_info(info, out):
    shape = "x".join(str(n) for n in info["shape"])
    spacing = "x".join(f"{v:g}" for v in info["spacing"])
    out.result(f"{info['path']}: {info['format']}, {shape} {info['dtype']}, "
               f"voxels {spacing} mm, orientation {info['orientation']}")
    if "qform_code" in info:
        from .info import xform_name
        slope, inter = info["scl_slope"], info["scl_inter"]
        scaling = "none" if slope is None else f"slope {slope:g}, intercept {inter or 0:g}"
        out.result(f"  qform_code {info['qform_code']} ({xform_name(info['qform_code'])}), "
                   f"sform_code {info['sform_code']} ({xform_name(info['sform_code'])}), "
                   f"scaling {scaling}")
    if "frame_time" in info:
        out.result(f"  frame time {info['frame_time']:g}")
    for row in info["affine"]:
        out.result("  affine " + " ".join(f"{v:10.4f}" for v in row))


def _print_dicom_info(info, out):
    out.result(f"{info['path']}: DICOM, {len(info['series'])} volume(s), "
               f"{len(info['skipped'])} file(s) not used")
    for s in info["series"]:
        shape = "x".join(str(n) for n in s["shape"])
        spacing = "x".join(f"{v:.3g}" for v in s["spacing"])
        out.result(f"  series {s['name']}: {s['description'] or s['protocol'] or '-'} "
                   f"[{s['modality']}, {s['manufacturer']}] {shape} voxels of {spacing} mm, "
                   f"{s['orientation']}, {s['files']} file(s)")
        for problem in s["problems"]:
            out.result(f"    problem: {problem}")
    for s in info["skipped"]:
        out.result(f"  {s['kind']}: {s['path']}: {_one_line(s['reason'])}")


def info_command(args, out):
    """``medfast info PATH...``: one description per path (text or JSON)."""
    from .info import describe

    described, status = [], EXIT_OK
    for path in args.paths:
        try:
            with out.bar(None, f"scanning {path}") as bar:
                described.append(describe(path, progress=_follow(bar)))
        except (OSError, ValueError) as exc:
            text = _one_line(exc)
            out.problem("error", text if text.startswith(path) else f"{path}: {text}")
            status = EXIT_FAILED
            continue
        if not args.json:
            (_print_dicom_info if described[-1]["format"] == "DICOM"
             else _print_image_info)(described[-1], out)
    if args.json:
        print(json.dumps(described, indent=2))
    return status


# --------------------------------------------------------------------------
# convert
# --------------------------------------------------------------------------
def _dask_client(address):
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--dask needs dask.distributed: pip install \"medfast[dask]\"") \
            from None
    return Client(address)


def _print_task(result, out):
    """The lines of one input: volumes written (stdout), then its problems."""
    for volume in result.volumes:
        shape = "x".join(str(n) for n in volume["shape"])
        out.result(f"{volume['nifti']} ({shape}, series {volume['series']})")
    sys.stdout.flush()  # written volumes first when both streams go to one place
    if result.status == "failed":
        out.problem("error", result.reason)
        return
    if not out.quiet:
        for volume in result.volumes:
            for problem in volume["problems"]:
                out.problem("warning", f"series {volume['series']}: {problem}")
    for item in result.skipped:
        if item["kind"] != "duplicate" or not out.quiet:
            out.problem(item["kind"], f"{item['path']}: {item['reason']}")
    for failure in result.failed:
        out.problem("error", f"series {failure['series']}: {failure['reason']}")
    if not out.quiet:
        for kept in result.kept:
            out.problem("kept", f"{kept['nifti']}: series {kept['series']}: already converted")


def _task_counts(result):
    kinds = [s["kind"] for s in result.skipped]
    return [(len(result.kept), "volume(s) already converted"),
            (kinds.count("skipped"), "file(s) skipped"),
            (kinds.count("duplicate"), "duplicate file(s) ignored"),
            (kinds.count("dropped"), "file(s) dropped"),
            (len(result.failed), "series not converted")]


def _summary(report, out):
    """One line for one input (as before batches); a table for several."""
    if len(report) == 1:
        result = report[0]
        parts = [f"{n} {label}" for n, label in _task_counts(result) if n]
        if parts and result.status != "failed":
            out.note(f"{len(result.volumes)} volume(s) written; " + "; ".join(parts))
        return
    if out.quiet and report.ok:
        return
    counts = report.counts
    table = [f"{len(report)} input(s): " + ", ".join(f"{counts[s]} {s}" for s in counts)
             + f" ({report.seconds:.1f} s, {report.where})"]
    for result in report:
        if result.status in ("partial", "failed") or out.verbose:
            detail = result.reason or f"{len(result.volumes)} volume(s) written"
            if detail.startswith(result.src + ": "):
                detail = detail[len(result.src) + 2:]
            table.append(f"  {result.status:<8} {result.src}: {detail}")
    print("medfast convert: " + "\n".join(table), file=sys.stderr)


def convert_command(args, out):
    """``medfast convert SRC... -o DST``: one input in this process with a
    progress bar over its files and volumes, several in worker processes
    (or on Dask) with a bar over the inputs; a summary, ``--report``."""
    from .batch import TaskResult, default_workers, expand_sources, make_tasks, run_batch
    from .dicom.convert import check_pattern

    try:
        check_pattern(args.pattern)
        sources, missing = expand_sources(args.src, args.from_list)
    except (TypeError, ValueError, OSError) as exc:
        raise UsageError(_one_line(exc)) from None
    if not sources:
        if not missing:
            raise UsageError("no input: give SRC folders or files, or --from-list FILE")
        raise UsageError("; ".join(f"{m}: no such file or folder" for m in missing))
    if os.path.lexists(args.dst) and not os.path.isdir(args.dst):
        raise UsageError(f"{args.dst}: exists and is not a folder")
    address = args.dask or (os.environ.get("MEDFAST_DASK_SCHEDULER") if len(sources) > 1
                            else None)
    workers = args.workers or default_workers()
    threads = max(1, default_workers() // workers) if len(sources) > 1 and not address \
        else None
    try:
        tasks = make_tasks(sources, args.dst, pattern=args.pattern,
                           compress=args.compress == "y", sidecar=args.sidecar == "y",
                           anonymize=args.anonymize == "y", threads=threads,
                           existing=("skip", "overwrite", "suffix")[int(args.existing)],
                           annotations=args.annotations, suv=args.suv)
    except ValueError as exc:
        raise UsageError(_one_line(exc)) from None
    for path in missing:
        out.problem("error", f"{path}: no such file or folder")
    client = _dask_client(address) if address else None
    bars = {}

    def progress(stage, done, total):  # one input, in this process
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = out.bar(total, "scanning" if stage == "scan" else "converting",
                                  "file" if stage == "scan" else "volume")
        bars[stage].update(done - bars[stage].n)

    with contextlib.ExitStack() as stack:
        if client is not None:
            stack.enter_context(client)
        bar = out.bar(len(tasks), "inputs", "input") if len(tasks) > 1 else None
        if bar is not None:
            stack.enter_context(bar)
        totals = {"written": 0, "skipped": 0, "failed": 0}

        def on_result(result):
            for bar_of_input in bars.values():
                bar_of_input.close()
            if bar is not None:
                totals["written"] += len(result.volumes)
                totals["skipped"] += sum(s["kind"] != "duplicate" for s in result.skipped)
                totals["failed"] += result.status == "failed"
                bar.set_postfix(volumes=totals["written"], files_skipped=totals["skipped"],
                                failed=totals["failed"], refresh=False)
                bar.update(1)
            _print_task(result, out)
            if len(tasks) > 1:
                out.note(f"input {result.status}: {result.src} ({result.seconds:.1f} s)",
                         verbose_only=True)

        report = run_batch(tasks, workers=workers, client=client, on_result=on_result,
                           progress=progress)
    report.extend(TaskResult(path, args.dst, "failed", "no such file or folder")
                  for path in missing)
    _summary(report, out)
    if args.report:
        report.write_json(args.report)
    return EXIT_OK if report.ok else EXIT_FAILED


# --------------------------------------------------------------------------
# resample, reorient
# --------------------------------------------------------------------------
def _grid_affine(values):
    """--affine: 16 numbers, or a file holding a 4x4 matrix (text or .npy)."""
    if len(values) == 1:
        path = values[0]
        try:
            matrix = np.load(path) if path.endswith(".npy") else np.loadtxt(path)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--affine {path}: {_one_line(exc)}") from None
    elif len(values) == 16:
        try:
            matrix = np.array([float(v) for v in values]).reshape(4, 4)
        except ValueError:
            raise UsageError("--affine: 16 numbers expected") from None
    else:
        raise UsageError(f"--affine takes 16 numbers or one file, got {len(values)} values")
    if np.shape(matrix) != (4, 4):
        raise UsageError(f"--affine: a 4x4 matrix expected, got shape {np.shape(matrix)}")
    return matrix


def _check_inputs(*paths):
    for path in paths:
        if path is not None and not os.path.exists(path):
            raise UsageError(f"{path}: no such file or folder")


def resample_command(args, out):
    """``medfast resample IN OUT``: medfast.resample onto the grid chosen."""
    import medfast

    _check_inputs(args.input, args.like)
    order = args.order
    grid = {}
    if args.spacing is not None:
        if len(args.spacing) not in (1, 3):
            raise UsageError(f"--spacing takes 1 or 3 values, got {len(args.spacing)}")
        grid["spacing"] = args.spacing[0] if len(args.spacing) == 1 else args.spacing
    elif args.like is not None:
        grid["like"] = medfast.load(args.like)
    else:
        if args.shape is None and args.affine is None:
            raise UsageError("choose the output grid: --spacing, --like, or --shape/--affine")
        if args.shape is not None:
            grid["shape"] = args.shape
        if args.affine is not None:
            grid["affine"] = _grid_affine(args.affine)
    img = medfast.load(args.input)
    with out.bar(None, "resampling", "image"):
        result = medfast.resample(img, order=order, antialias=args.antialias,
                                  threads=args.threads, **grid)
    if args.canonical:
        result = medfast.as_canonical(result)
    medfast.save(result, args.output)
    out.result(f"{args.output} ({'x'.join(map(str, result.shape))}, "
               f"{result.orientation}, voxels {'x'.join(f'{v:g}' for v in result.spacing)} mm)")
    return EXIT_OK


def reorient_command(args, out):
    """``medfast reorient IN OUT --to CODES``: flips and permutations only."""
    import medfast
    from .orientation import check_axcodes

    try:
        check_axcodes(args.to)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--to {args.to}: {_one_line(exc)}") from None
    _check_inputs(args.input)
    img = medfast.load(args.input)
    result = medfast.reorient(img, args.to)
    medfast.save(result, args.output)
    out.result(f"{args.output} ({'x'.join(map(str, result.shape))}, {result.orientation})")
    return EXIT_OK


# --------------------------------------------------------------------------
# bench, config
# --------------------------------------------------------------------------
def bench_command(args, out):
    """``medfast bench``: see :func:`medfast._bench.bench`."""
    from ._bench import bench
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {args.threads}")
    return bench(quick=args.quick, threads=args.threads)


def config_command(args, out):
    """``medfast config``: the build configuration."""
    from . import show_config
    show_config()
    return EXIT_OK


# --------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------
def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a positive integer expected, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _parser():
    from . import __version__

    common = argparse.ArgumentParser(add_help=False)
    noise = common.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true",
                       help="print only problems: no list of outputs, no progress bar")
    noise.add_argument("-v", "--verbose", action="store_true",
                       help="say more (one line per input of a batch, with its time)")
    common.add_argument("--debug", action="store_true",
                        help="show the traceback of an error")

    def command(name, help, examples, description=None):
        return sub.add_parser(
            name, help=help, description=description or help, parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog="examples:\n" + "\n".join("  " + e for e in examples))

    parser = argparse.ArgumentParser(
        prog="medfast", description="Fast, correct medical image conversion and resampling.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  medfast info t1.nii.gz exam/\n  medfast convert exam/ -o nifti/\n"
               "  medfast resample t1.nii.gz t1_1mm.nii.gz --spacing 1\n"
               "  medfast COMMAND --help")
    parser.add_argument("--version", action="version", version=f"medfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = command("info", "describe images and DICOM folders from their headers",
                ["medfast info t1.nii.gz", "medfast info exam/ --json > exam.json"])
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="NIfTI/MGH file, or DICOM folder or file")
    p.add_argument("--json", action="store_true", help="one JSON list on stdout")

    p = command("convert", "convert DICOM to NIfTI + BIDS JSON sidecars (as dcm2niix)",
                ["medfast convert exam/ -o nifti/",
                 "medfast convert exam/ -o nifti/ -f %n/%p_%s -z n",
                 "medfast convert 'study/sub-*' -o nifti/ --workers 4 --report run.json",
                 "medfast convert --from-list exams.txt -o nifti/ --dask tcp://head:8786"],
                description="Convert every DICOM volume under SRC to NIfTI, with a BIDS "
                            "JSON sidecar and .bval/.bvec for diffusion series, as dcm2niix "
                            "does.  Several inputs run in parallel worker processes (or on "
                            "a Dask cluster), each into DST/NAME (NAME: the input's folder "
                            "name).  A run again skips outputs already complete, so an "
                            "interrupted batch resumes.")
    p.add_argument("src", nargs="*", metavar="SRC",
                   help="DICOM folders (searched recursively) or files; glob patterns "
                        "are expanded ('**' for any depth)")
    p.add_argument("-o", "--output", dest="dst", required=True, metavar="DST",
                   help="output folder (created if missing)")
    p.add_argument("--from-list", metavar="FILE",
                   help="read inputs from FILE, one per line (# comments)")
    p.add_argument("-f", "--filename", dest="pattern", default="%p_%s", metavar="PATTERN",
                   help="output name, dcm2niix placeholders: %%p protocol, %%s series "
                        "number, %%d description, %%t study date+time, %%n patient name, "
                        "%%i patient ID, %%e echo, %%f input folder, %%m manufacturer, "
                        "%%j series UID, %%k study UID... (default %%p_%%s)")
    p.add_argument("-z", dest="compress", choices=("y", "n"), default="y",
                   help="gzip the NIfTI files (.nii.gz; default y)")
    p.add_argument("-b", dest="sidecar", choices=("y", "n"), default="y",
                   help="write the BIDS JSON sidecar (default y)")
    p.add_argument("--anonymize", choices=("y", "n"), default="y",
                   help="leave identifying fields out of the sidecar (default y, as "
                        "dcm2niix -ba y)")
    p.add_argument("-w", dest="existing", choices=("0", "1", "2"), default="0",
                   help="an output name already taken, as dcm2niix: 0 keep a complete "
                        "output and skip the volume (default; an incomplete one is "
                        "replaced), 1 overwrite, 2 add a suffix letter (a, b, ...)")
    p.add_argument("--annotations", action="store_true",
                   help="also write each SEG/RTSTRUCT beside its image (_seg, _rtstruct)")
    p.add_argument("--suv", choices=("bw",), default=None,
                   help="PET volumes in body-weight SUV (factor and Units in the sidecar)")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="worker processes for several inputs (default: the cores)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run the inputs on this dask.distributed scheduler (default: "
                        "$MEDFAST_DASK_SCHEDULER for several inputs, else local workers)")
    p.add_argument("--report", metavar="FILE.json",
                   help="write what became of every input (done, skipped, partial, "
                        "failed, with the files and reasons) as JSON")

    p = command("resample", "resample an image onto a new grid",
                ["medfast resample t1.nii.gz t1_1mm.nii.gz --spacing 1",
                 "medfast resample flair.nii.gz flair_on_t1.nii.gz --like t1.nii.gz",
                 "medfast resample seg.nii.gz seg_07.nii.gz --spacing 0.7 --order label",
                 "medfast resample t1.nii.gz small.nii.gz --spacing 2 --antialias "
                 "--canonical"])
    p.add_argument("input", metavar="IN", help="image file, or a DICOM folder of one series")
    p.add_argument("output", metavar="OUT", help="output file (.nii, .nii.gz, .mgh, .mgz)")
    grid = p.add_mutually_exclusive_group()
    grid.add_argument("--spacing", type=float, nargs="+", metavar="S",
                      help="voxel size in mm (one value, or three), same field of view")
    grid.add_argument("--like", metavar="REF", help="the grid of this image")
    p.add_argument("--shape", type=_positive_int, nargs=3, metavar="N",
                   help="explicit grid: spatial shape (default: the input's)")
    p.add_argument("--affine", nargs="+", metavar="A",
                   help="explicit grid: voxel -> RAS affine, 16 numbers or a file "
                        "(4x4 text or .npy; default: the input's)")
    p.add_argument("--order", choices=("nearest", "linear", "label", "cubic"),
                   default="linear", help="interpolation (default linear; label: label "
                                          "maps with smooth boundaries)")
    p.add_argument("--canonical", action="store_true",
                   help="write the result in RAS orientation (a flip/permutation, no "
                        "interpolation)")
    p.add_argument("--antialias", action="store_true",
                   help="smooth before downsampling (linear only)")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="threads (default: all available cores)")

    p = command("reorient", "flip and permute the axes of an image (no interpolation)",
                ["medfast reorient t1.nii.gz t1_ras.nii.gz --to RAS",
                 "medfast reorient dwi.nii.gz dwi_lpi.nii.gz --to LPI"])
    p.add_argument("input", metavar="IN", help="image file, or a DICOM folder of one series")
    p.add_argument("output", metavar="OUT", help="output file")
    p.add_argument("--to", required=True, metavar="CODES",
                   help="axis codes, one of R/L, A/P, S/I per axis (e.g. RAS, LPS, PSR)")

    p = command("bench", "resample the built-in phantom; print the speed-up over scipy",
                ["medfast bench --quick"])
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for medfast (default: all available cores)")
    command("config", "show how medfast was built (OpenMP, threads)", ["medfast config"])
    return parser


_COMMANDS = {"info": info_command, "convert": convert_command, "resample": resample_command,
             "reorient": reorient_command, "bench": bench_command, "config": config_command}


def main(argv=None):
    """Entry point of the ``medfast`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 everything done, 1 some inputs failed or were left
        out (listed on stderr), 2 usage error, 130 interrupted.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    out = _Output(args.command, quiet=args.quiet, verbose=args.verbose)
    try:
        return _COMMANDS[args.command](args, out)
    except KeyboardInterrupt:
        print(f"medfast {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except UsageError as exc:
        if args.debug:
            raise
        out.problem("error", str(exc))
        return EXIT_USAGE
    except Exception as exc:  # the command line reports, it does not crash
        if args.debug:
            raise
        out.problem("error", _one_line(exc))
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``medfast`` command line.

``medfast bench [--quick]`` resamples the built-in phantom with medfast and
with scipy.ndimage and prints the speed-up (and checks the answers agree);
``medfast config`` prints the build configuration; ``medfast convert SRC -o
DST`` converts DICOM to NIfTI + BIDS JSON as dcm2niix does.
"""
import argparse
import sys
import time

import numpy as np


def _best_time(func, repeats):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def rotation_about_last_axis(shape, degrees=10.0, scale=0.9):
    """The benchmark transform: rotation about the last axis times a scaling,
    centred on the volume.

    Parameters
    ----------
    shape : tuple of 3 int
        Volume shape.
    degrees : float, optional
        Rotation angle.
    scale : float, optional
        Isotropic scaling factor.

    Returns
    -------
    matrix : ndarray, shape (3, 3)
    offset : ndarray, shape (3,)
        Such that output index ``o`` samples the input at ``matrix @ o + offset``
        and the centre maps onto itself.
    """
    theta = np.deg2rad(degrees)
    c, s = np.cos(theta), np.sin(theta)
    matrix = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) * scale
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
    return matrix, centre - matrix @ centre


def bench(quick=False, threads=None, shape=(256, 256, 180)):
    """Resample the phantom with medfast and scipy; print timings.

    Parameters
    ----------
    quick : bool, optional
        Fewer repetitions (a few seconds in all).
    threads : int, optional
        Threads for medfast (default: all available cores).
    shape : tuple of 3 int, optional
        Phantom shape.

    Returns
    -------
    int
        Exit status: 0, or 1 if medfast's answer differs from scipy's.
    """
    from . import ndimage, get_num_threads
    from .phantom import shepp_logan
    try:
        import scipy.ndimage as scipy_ndimage
    except ImportError:
        scipy_ndimage = None

    threads = threads or get_num_threads()
    volume = shepp_logan(shape)
    matrix, offset = rotation_about_last_axis(volume.shape)
    print(f"medfast: resampling a {'x'.join(map(str, volume.shape))} float32 "
          f"Shepp-Logan phantom (built in)")
    print(f"transform: 10 degree rotation about the last axis x 0.9 scaling, "
          f"centred; medfast on {threads} thread(s), scipy on 1 (it has no threads)")
    print()
    print(f"{'order':<22}{'scipy.ndimage':>15}{'medfast':>12}{'speed-up':>11}   answers")
    status = 0
    runs = 3 if quick else 10
    for order, name in ((1, "1 (linear)"), (0, "0 (nearest)")):
        ndimage.affine_transform(volume, matrix, offset, order=order, threads=threads)
        t_mf, ours = _best_time(lambda: ndimage.affine_transform(
            volume, matrix, offset, order=order, threads=threads), runs)
        if scipy_ndimage is None:
            print(f"{name:<22}{'(not installed)':>15}{t_mf * 1e3:>9.1f} ms")
            continue
        t_sp, ref = _best_time(lambda: scipy_ndimage.affine_transform(
            volume, matrix, offset, order=order), 1 if quick else 3)
        same = np.array_equal(ours.view(np.uint32), ref.view(np.uint32))
        status |= not same
        print(f"{name:<22}{t_sp * 1e3:>12.1f} ms{t_mf * 1e3:>9.1f} ms"
              f"{t_sp / t_mf:>10.1f}x   {'identical' if same else 'DIFFERENT'}")
    if scipy_ndimage is None:
        print("\nscipy is not installed: pip install scipy to compare against it")
    return status


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def convert_command(src, dst, pattern="%p_%s", compress=True, sidecar=True, anonymize=True,
                    existing="skip", annotations=False):
    """Run :func:`medfast.convert` for the command line.

    Prints one line per volume written (stdout) and, on stderr, never a
    traceback but one line per input file not used and per volume not
    written (``medfast convert: skipped|duplicate|dropped: PATH: REASON``,
    ``medfast convert: error: series NAME: REASON``, ``medfast convert:
    kept: NIFTI: series NAME: already converted``), one per problem found
    in a volume written (``warning``), and a count of each kind.

    Returns
    -------
    int
        Exit status: 0 when every image found was converted (duplicates of
        converted images and volumes converted before included), 1 when
        anything was skipped, dropped or not converted (what could be
        converted is still written) or nothing could be, 2 for a usage
        error (an invalid pattern, SRC missing, DST not a folder), 130 when
        interrupted.
    """
    import os
    from .dicom import convert
    from .dicom.convert import check_pattern
    try:
        check_pattern(pattern)
        if not os.path.exists(src):
            raise ValueError(f"{src}: no such file or folder")
        if os.path.lexists(dst) and not os.path.isdir(dst):
            raise ValueError(f"{dst}: exists and is not a folder")
    except (TypeError, ValueError) as exc:
        print(f"medfast convert: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    try:
        result = convert(src, dst, pattern=pattern, compress=compress, sidecar=sidecar,
                         anonymize=anonymize, existing=existing, annotations=annotations)
    except KeyboardInterrupt:
        print("medfast convert: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the command line reports, it does not crash
        print(f"medfast convert: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    for out in result.outputs:
        shape = "x".join(str(n) for n in out.shape)
        print(f"{out.nifti} ({shape}, series {out.series})")
    sys.stdout.flush()  # written volumes first when both streams go to one place
    for out in result.outputs:
        for problem in out.problems:
            print(f"medfast convert: warning: series {out.series}: {_one_line(problem)}",
                  file=sys.stderr)
    counts = {}
    for item in result.skipped:
        counts[item.kind] = counts.get(item.kind, 0) + 1
        print(f"medfast convert: {item.kind}: {item.path}: {_one_line(item.reason)}",
              file=sys.stderr)
    for failure in result.failed:
        print(f"medfast convert: error: {_one_line(failure)}", file=sys.stderr)
    for volume in result.kept:
        print(f"medfast convert: kept: {_one_line(volume)}", file=sys.stderr)
    summary = [f"{n} {label}" for n, label in (
        (len(result.kept), "volume(s) already converted"),
        (counts.get("skipped", 0), "file(s) skipped"),
        (counts.get("duplicate", 0), "duplicate file(s) ignored"),
        (counts.get("dropped", 0), "file(s) dropped"),
        (len(result.failed), "series not converted")) if n]
    if summary:
        print(f"medfast convert: {len(result)} volume(s) written; " + "; ".join(summary),
              file=sys.stderr)
    return 0 if result.ok else 1


def main(argv=None):
    """Entry point of the ``medfast`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Process exit status.
    """
    parser = argparse.ArgumentParser(
        prog="medfast", description="Fast, correct resampling of medical images.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_bench = sub.add_parser(
        "bench", help="resample the built-in phantom; print the speed-up over scipy")
    p_bench.add_argument("--quick", action="store_true", help="fewer repetitions")
    p_bench.add_argument("--threads", type=int, default=None,
                         help="threads for medfast (default: all available cores)")
    sub.add_parser("config", help="show how medfast was built (OpenMP, threads)")
    p_convert = sub.add_parser(
        "convert", help="convert DICOM to NIfTI + BIDS JSON sidecars (as dcm2niix)",
        description="Convert every DICOM volume under SRC to NIfTI, with a BIDS JSON "
                    "sidecar and .bval/.bvec for diffusion series, as dcm2niix does.")
    p_convert.add_argument("src", metavar="SRC", help="DICOM folder (searched recursively) "
                           "or file")
    p_convert.add_argument("-o", "--output", dest="dst", required=True, metavar="DST",
                           help="output folder (created if missing)")
    p_convert.add_argument("-f", "--filename", dest="pattern", default="%p_%s",
                           metavar="PATTERN",
                           help="output name, dcm2niix placeholders: %%p protocol, %%s series "
                                "number, %%d description, %%t study date+time, %%n patient "
                                "name, %%i patient ID, %%e echo, %%f input folder, %%m "
                                "manufacturer, %%j series UID, %%k study UID... "
                                "(default %%p_%%s)")
    p_convert.add_argument("-z", dest="compress", choices=("y", "n"), default="y",
                           help="gzip the NIfTI files (.nii.gz; default y)")
    p_convert.add_argument("-b", dest="sidecar", choices=("y", "n"), default="y",
                           help="write the BIDS JSON sidecar (default y)")
    p_convert.add_argument("--anonymize", choices=("y", "n"), default="y",
                           help="leave identifying fields out of the sidecar (default y, "
                                "as dcm2niix -ba y)")
    p_convert.add_argument("-w", dest="existing", choices=("0", "1", "2"), default="0",
                           help="an output name already taken, as dcm2niix: 0 keep a "
                                "complete output and skip the volume (default; an "
                                "incomplete one is replaced), 1 overwrite, 2 add a suffix "
                                "letter (a, b, ...)")
    p_convert.add_argument("--annotations", action="store_true",
                           help="also write each SEG/RTSTRUCT beside its image (_seg, _rtstruct)")
    args = parser.parse_args(argv)
    if args.command == "bench":
        if args.threads is not None and args.threads < 1:
            parser.error(f"--threads must be a positive integer, got {args.threads}")
        return bench(quick=args.quick, threads=args.threads)
    if args.command == "convert":
        return convert_command(args.src, args.dst, pattern=args.pattern,
                               compress=args.compress == "y", sidecar=args.sidecar == "y",
                               anonymize=args.anonymize == "y",
                               existing=("skip", "overwrite", "suffix")[int(args.existing)],
                               annotations=args.annotations)
    if args.command == "config":
        from . import show_config
        show_config()
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

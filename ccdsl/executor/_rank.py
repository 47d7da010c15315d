"""What every MPI rank runs: ``python [FLAGS] _rank.py fn|script|module PAYLOAD [ARGS...]``.

This file is copied to the nodes as is (``mpi.prepare_cluster``) and must not import ccdsl: nodes only need
python, mpi4py and cloudpickle.  Rank 0 reads the payload file (only rank 0's node has it) and broadcasts it, so
ccdsl uploads one file per run instead of one per node.

Results travel back on the output streams, framed by a record separator the user's program will not print:
``\\x1eccdsl-result:<base64 pickle>`` on stdout (rank 0, after every rank finished) and
``\\x1eccdsl-error:<base64 json>`` on stderr (the rank that raised, before it aborts the job so the others do not
wait forever in a collective).  The error record is also left in ``<payload>.error.<rank>`` on the rank's node,
because MPI_Abort may end the job before the process manager forwarded the rank's last output.
"""

import base64
import io
import json
import os
import pickle
import sys
import traceback

MARK = "\x1eccdsl-"


def _emit(stream, kind, data):
    stream.flush()
    stream.write(MARK + kind + ":" + base64.b64encode(data).decode("ascii") + "\n")
    stream.flush()


def _fail(comm, exc, payload_path, code=1):
    info = {"rank": comm.Get_rank(), "type": type(exc).__name__, "message": str(exc),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}
    record = MARK + "error:" + base64.b64encode(json.dumps(info).encode()).decode("ascii") + "\n"
    # also in a file next to the payload: MPI_Abort may kill the process manager before it forwards stderr
    path = f"{payload_path}.error.{comm.Get_rank()}"
    try:
        with open(path + ".tmp", "w") as f:
            f.write(record)
        os.replace(path + ".tmp", path)
    except OSError:
        pass
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stderr.write(record)
        sys.stderr.flush()
    except (OSError, ValueError):  # output closed: the file above carries the record
        pass
    if comm.Get_size() > 1:
        comm.Abort(code)
    sys.exit(code)


def main(argv):
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    workdir = os.environ.get("CCDSL_WORKDIR")
    if workdir:  # the project's folder synced to the node: the ranks' working directory, importable
        os.chdir(workdir)
        sys.path.insert(0, workdir)
    for stream in (sys.stdout, sys.stderr):  # one write per line, so lines of different ranks do not mix
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True, write_through=False)  # (python -u: lines still come at once)
    mode, payload_path, args = argv[0], argv[1], argv[2:]
    data = None
    if comm.Get_rank() == 0:
        with open(payload_path, "rb") as f:
            data = f.read()
        try:
            os.unlink(payload_path)  # read once; nothing is left behind on the node
        except OSError:
            pass
    data = comm.bcast(data, root=0)
    if mode == "fn":
        try:
            import cloudpickle

            fn, fargs, fkwargs = cloudpickle.loads(data)
            value = fn(comm, *fargs, **fkwargs)
        except BaseException as exc:  # every failure is reported, with its traceback
            _fail(comm, exc, payload_path)
        sys.stdout.flush()
        sys.stderr.flush()
        comm.Barrier()
        if comm.Get_rank() == 0:
            try:
                import cloudpickle

                blob = cloudpickle.dumps(value)
            except BaseException as exc:
                _fail(comm, TypeError(f"rank 0's return value cannot be pickled: {exc}"), payload_path)
            _emit(sys.stdout, "result", blob)
        return 0
    if mode == "module":  # python -m NAME: as CPython does it, with the working directory first on sys.path
        import runpy

        name = pickle.loads(data)
        sys.argv = [name, *args]
        sys.path.insert(0, os.getcwd())
        return _as_main(comm, payload_path, lambda: runpy.run_module(name, run_name="__main__", alter_sys=True))
    path, source = pickle.loads(data)  # a script, or python -c CODE (path "-c")
    sys.argv = [path, *args]
    module = {"__name__": "__main__", "__builtins__": __builtins__}
    if path != "-c":
        module["__file__"] = path
    sys.path.insert(0, os.getcwd() if path == "-c" else os.path.dirname(os.path.abspath(path)))
    filename = "<string>" if path == "-c" else path
    return _as_main(comm, payload_path, lambda: exec(compile(source, filename, "exec"), module))


def _as_main(comm, payload_path, run):
    """Run a program as ``__main__``: its exit status, or its exception reported (and the job aborted)."""
    try:
        run()
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:  # the user's frames, not ours
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        _fail(comm, exc, payload_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

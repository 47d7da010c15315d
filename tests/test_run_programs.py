"""``ccdsl run HANDLE -- …``: python's own command line (-c, -m, options before the script) and any other program,
read as CPython reads it, then run on every rank of a real local mpiexec."""

from __future__ import annotations

import sys

import pytest

from ccdsl.errors import ExecutionError
from ccdsl.executor.model import Node
from ccdsl.executor.mpi import Launcher
from ccdsl.executor.program import Program, parse


@pytest.mark.parametrize("argv,want", [
    (["python", "prog.py", "--n", "10"], Program("script", "prog.py", ("--n", "10"))),
    (["python3", "-u", "-O", "prog.py", "-c", "x"], Program("script", "prog.py", ("-c", "x"), ("-u", "-O"))),
    (["/usr/bin/python3.11", "-W", "error", "-X", "dev", "p.py"],
     Program("script", "p.py", (), ("-W", "error", "-X", "dev"))),
    (["python", "-Werror", "-uB", "p.py"], Program("script", "p.py", (), ("-Werror", "-uB"))),
    (["python", "-c", "print(1)", "a", "-m", "b"], Program("code", "print(1)", ("a", "-m", "b"))),
    (["python", "-uc", "print(1)"], Program("code", "print(1)", (), ("-u",))),
    (["python", "-cprint(2)"], Program("code", "print(2)")),
    (["python", "-m", "pkg.main", "--x"], Program("module", "pkg.main", ("--x",))),
    (["python", "-I", "-mplatform"], Program("module", "platform", (), ("-I",))),
    (["python", "--", "-odd.py", "a"], Program("script", "-odd.py", ("a",))),
    (["python", "--check-hash-based-pycs", "never", "p.py"],
     Program("script", "p.py", (), ("--check-hash-based-pycs", "never"))),
    (["python", "-V"], Program("exec", "python", ("-V",))),
    (["python3", "--version"], Program("exec", "python3", ("--version",))),
    (["hostname"], Program("exec", "hostname")),
    (["./a.out", "-c", "1"], Program("exec", "./a.out", ("-c", "1"))),
    (["pythonista", "x"], Program("exec", "pythonista", ("x",))),
])
def test_command_lines_read_like_cpython_reads_them(argv, want) -> None:
    assert parse(argv) == want


@pytest.mark.parametrize("argv,message", [
    ([], "nothing to run"),
    (["python"], "python needs a program to run on every rank"),
    (["python", "-u"], "python needs a program"),
    (["python", "-c"], "-c needs a value"),
    (["python", "-W"], "-W needs a value"),
    (["python", "-"], "cannot read the program from standard input"),
    (["python", "-Z", "p.py"], "python has no option -Z"),
])
def test_command_lines_that_cannot_run_say_why(argv, message) -> None:
    with pytest.raises(ExecutionError, match=message) as info:
        parse(argv)
    assert "python -c CODE" in (info.value.hint or "")


# -------------------------------------------------------------------------------------- on a real local mpiexec

pytest.importorskip("mpi4py")


@pytest.fixture()
def launcher():
    with Launcher([Node(i, "worker", f"local-{i}", "local") for i in range(3)], mode="local") as launcher:
        yield launcher


def run(launcher, *argv: str, np: int | None = None) -> tuple[int, list[str], list[str]]:
    lines: list[tuple[str, str]] = []
    code = launcher.run_program(parse(argv), np, stream=lambda line, stream: lines.append((stream, line)))
    return code, [x for s, x in lines if s == "stdout"], [x for s, x in lines if s == "stderr"]


def test_python_c_runs_on_every_rank_with_its_arguments(launcher) -> None:
    code, out, _ = run(launcher, "python", "-c", "import sys; from mpi4py import MPI; "
                       "print(MPI.COMM_WORLD.Get_rank(), sys.argv)", "a", "-b")
    assert code == 0
    assert sorted(out) == [f"{r} ['-c', 'a', '-b']" for r in range(3)]


def test_interpreter_options_reach_the_ranks(launcher) -> None:
    code, out, _ = run(launcher, "python3", "-O", "-W", "error::DeprecationWarning", "-c",
                       "import sys; print(sys.flags.optimize, sys.warnoptions)", np=1)
    assert (code, out) == (0, ["1 ['error::DeprecationWarning']"])


def test_python_m_runs_a_module_as_main(launcher, tmp_path, monkeypatch) -> None:
    (tmp_path / "mymod.py").write_text("import sys\nfrom mpi4py import MPI\n"
                                       "if __name__ == '__main__':\n    print('main', MPI.COMM_WORLD.size, "
                                       "sys.argv[1:])\n    sys.exit(4)\n")
    monkeypatch.chdir(tmp_path)  # -m finds modules of the working directory, as python does
    code, out, _ = run(launcher, "python", "-m", "mymod", "--x", np=2)
    assert code == 4 and out == ["main 2 ['--x']"] * 2


def test_a_script_error_shows_the_users_traceback_only(launcher) -> None:
    code, _, err = run(launcher, "python", "-c", "raise ValueError('broken')", np=1)
    assert code != 0
    assert "ValueError: broken" in err and 'File "<string>", line 1' in "\n".join(err)
    assert not any("_rank.py" in line for line in err)


def test_any_other_program_runs_once_per_rank_with_the_mpi_environment(launcher) -> None:
    code, out, _ = run(launcher, "sh", "-c", "echo rank $PMI_RANK of $PMI_SIZE")
    assert code == 0 and sorted(out) == ["rank 0 of 3", "rank 1 of 3", "rank 2 of 3"]
    code, out, _ = run(launcher, "hostname", np=2)
    assert code == 0 and len(out) == 2 and out[0] == out[1] != ""
    code, _, _ = run(launcher, "sh", "-c", "exit 7", np=1)
    assert code == 7


def test_python_without_a_program_runs_as_is(launcher) -> None:
    code, out, _ = run(launcher, sys.executable, "-V", np=1)
    assert code == 0 and out == [f"Python {sys.version.split()[0]}"]


def test_a_rank_killed_by_a_signal_exits_with_its_number(launcher) -> None:
    """gforker (the local mpiexec) exits 0 when a rank dies of a signal; the run says the signal, as hydra does."""
    code, _, _ = run(launcher, "sh", "-c", 'if [ "$PMI_RANK" = 1 ]; then kill -KILL $$; fi', np=2)
    assert code == 9
    code, _, _ = run(launcher, "python", "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", np=1)
    assert code == 11


def test_output_beyond_ascii_reaches_us_whole(launcher) -> None:
    """gforker's own relay ends a rank's output at its first byte above 0x7f; the ranks write to ccdsl's pipes."""
    text = "import sys; print('café ×', sys.argv[1]); print('after', file=sys.stderr); print('end')"
    code, out, err = run(launcher, "python", "-c", text, "é", np=2)
    assert (code, sorted(out), err) == (0, ["café × é"] * 2 + ["end"] * 2, ["after"] * 2)
    assert run(launcher, "sh", "-c", "printf 'caf\\303\\251\\n'; echo after", np=1) == (0, ["café", "after"], [])
    lines: list[tuple[str, str]] = []
    code = launcher.run_program(parse(["python", "-c", "print('α'); print('β')"]), 2, label_ranks=True,
                                stream=lambda line, stream: lines.append((stream, line)))
    assert code == 0 and sorted(lines) == [("stdout", f"[{r}] {x}") for r in range(2) for x in "αβ"]


def test_the_signal_said_is_the_one_gforker_did_not_send() -> None:
    """Once a rank died, gforker ends the others with SIGINT, then SIGQUIT; its report lists the ranks in order, so
    the signal the job died of may come after theirs (rank 0 was still running when rank 1 was killed)."""
    from ccdsl.executor.mpi import gforker_signal

    report = "[0]0:Return code = 0, signaled with Interrupt\n[0]1:Return code = 0, signaled with Killed\n"
    assert gforker_signal([report]) == 9
    assert gforker_signal(["Interrupt", "Quit", "Segmentation fault"]) == 11
    assert gforker_signal(["Quit", "Interrupt"]) == 3  # only gforker's own: the first


def test_mpiexec_arguments_of_the_configuration_still_reach_mpiexec() -> None:
    """``[mpi] extra_args`` are hydra's arguments: a local run that has them runs under hydra, which knows them."""
    from ccdsl.executor.mpi import MpiOptions

    nodes = [Node(0, "worker", "local-0", "local")]
    with Launcher(nodes, mode="local", options=MpiOptions(extra_args=("-prepend-rank",))) as hydra:
        assert run(hydra, "sh", "-c", "echo hi") == (0, ["[0] hi"], [])


def test_output_that_looks_like_a_rank_label_is_only_text(launcher) -> None:
    """gforker's labels ("0>") are rewritten as hydra's ("[0] ") only when labels were asked for."""
    code, out, err = run(launcher, "sh", "-c", "echo '1>2'; echo '0(err)>x' >&2", np=1)
    assert (code, out, err) == (0, ["1>2"], ["0(err)>x"])
    lines: list[tuple[str, str]] = []
    code = launcher.run_program(parse(["sh", "-c", "echo '1>2'; echo e >&2"]), 1, label_ranks=True,
                                stream=lambda line, stream: lines.append((stream, line)))
    assert code == 0 and sorted(lines) == [("stderr", "[0] e"), ("stdout", "[0] 1>2")]

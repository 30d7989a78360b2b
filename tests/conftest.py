from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spin-waits when the CI cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def refused(capsys):
    """``refused(argv, out)``: the command line refuses ``argv`` as a user mistake — exit 2, one
    ``deepresolve: error:`` line on stderr, no traceback — and writes nothing at ``out``; returns that line."""
    from deepresolve.cli import main

    def run(argv: list[str], out: Path | None = None) -> str:
        with pytest.raises(SystemExit) as info:
            main(argv)
        err = capsys.readouterr().err
        assert info.value.code == 2, err
        assert err.startswith("deepresolve: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert out is None or not Path(out).exists()
        return err

    return run

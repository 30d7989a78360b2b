"""Reading models and sequences.

- :mod:`~deepresolve.io.models`: :func:`load_model`, the one loader for every model format (Keras 0.x-3.x,
  TorchScript, ONNX, ``"package.module:factory"`` + a state dict), told apart by :mod:`~deepresolve.io.formats`
  from the files' content.
- :mod:`~deepresolve.io.keras`: Keras ``Sequential`` and functional models (json + HDF5, ``.h5``, ``.keras``)
  rebuilt as PyTorch modules, without Keras.
- :mod:`~deepresolve.io.sequences`: one-hot encoding (through tangermeme) and FASTA files.
- :mod:`~deepresolve.io.tables`: names, label matrices and motif tables (the CLI's other input files).
"""

from .keras import check_input_shape, load_keras, sequence_input
from .models import load_model
from .sequences import decode, load_inputs, one_hot, read_fasta, write_fasta
from .tables import read_labels, read_motif_matches, read_names

__all__ = ["check_input_shape", "decode", "load_inputs", "load_keras", "load_model", "one_hot", "read_fasta",
           "read_labels", "read_motif_matches", "read_names", "sequence_input", "write_fasta"]

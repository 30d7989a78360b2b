"""``python -m deepresolve``: the same program as the ``deepresolve`` command."""

from .cli import main

main()

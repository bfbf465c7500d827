"""``python -m dpbench``: the same CLI as the ``dpbench`` console script."""

from dpbench.cli import main

if __name__ == "__main__":
    main()

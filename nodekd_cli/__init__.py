"""nodekd: Neural ODEs improved by knowledge distillation (Chu et al.), as a command-line toolkit.

This package is the application: thin Typer commands (`nodekd_cli.commands`) over modules for data, training,
run folders and output. The networks live in the sibling package `models`.
"""

import os

# nodekd runs Keras on the torch backend; set before anything imports Keras (cheap: nothing is imported here).
os.environ["KERAS_BACKEND"] = "torch"

__version__ = "0.1.0"

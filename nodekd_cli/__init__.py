"""nodekd: Neural ODEs improved by knowledge distillation (Chu et al.), as a command-line toolkit.

This package is the application: thin Typer commands (`nodekd_cli.commands`) over modules for data, training,
run folders and output. The networks live in the sibling package `models`.
"""

__version__ = "0.1.0"

"""The ``econv bench`` subcommand's own parser, for the bench tests."""

import argparse

from numba_kernels import bench


def bench_args(*argv):
    """``argv`` (after ``econv``) parsed by a parser that has only the bench subcommand."""
    p = argparse.ArgumentParser(prog="econv")
    bench.add_parser(p.add_subparsers(dest="command"))
    return p.parse_args(list(argv))

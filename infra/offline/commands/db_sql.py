"""`db-sql`: the per-tool role SQL an environment applies, passwords bound only at run time."""

from __future__ import annotations

import argparse

from infra.offline.commands.source import add_source_arguments, load_config
from infra.pure.database.sql import role_sql
from infra.pure.network import used_databases


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db-sql", help="print the role SQL of each database")
    add_source_arguments(parser, allow_dir=False)
    parser.add_argument("--database", help="only this database (a key of `databases`)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    names = used_databases(config)
    if args.database is not None:
        if args.database not in names:
            print(
                f"error: --database {args.database!r} is not used by any MCP server "
                f"(used: {', '.join(names)})"
            )
            return 2
        names = [args.database]
    for name in names:
        print(f"-- database {name}: roles of {config.environment}")
        print(role_sql(config, name))
    return 0

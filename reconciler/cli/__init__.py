"""The `reconciler` command line: a thin layer that turns options into calls.

Each command lives in its own module of this package and is registered in `COMMANDS`; the
group imports a command's module only when that command runs, so `reconciler validate` does
not pay for FastAPI or SQLAlchemy. One handler maps errors to exit codes: a
`ReconcilerError` is the user's to fix (its message, exit 2 unless it says otherwise), any
other exception is a bug (exit 3).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from reconciler import __version__
from reconciler.errors import EXIT_BUG, ReconcilerError, mask_password

# command name -> "module:attribute" inside reconciler.cli
COMMANDS: dict[str, str] = {}


def register(name: str, target: str) -> None:
    """Make `reconciler NAME` run the click command at `target` (`module:attribute`)."""
    COMMANDS[name] = target


register("check-approvals", "check_approvals:check_approvals")
register("init", "init:init")
register("schema", "schema_cmd:schema")
register("validate", "validate:validate")
register("reconcile", "reconcile_cmd:reconcile")
register("run", "run:run")
register("serve", "serve:serve_cmd")
register("token", "token:token")
register("audit", "audit:audit")
register("plan", "plan:plan")
register("verify", "verify:verify")
register("status", "status:status")
register("changes", "changes:changes")
register("flags", "flags:flags")


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        module = importlib.import_module(f"reconciler.cli.{module_name}")
        command: click.Command = getattr(module, attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ReconcilerError as err:
            click.echo(f"error: {mask_password(str(err))}", err=True)
            sys.exit(err.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as err:  # the one place a bug is turned into an exit code
            click.echo(
                f"internal error (a bug in reconciler, please report it): {mask_password(repr(err))}",
                err=True,
            )
            if ctx.obj and ctx.obj.get("debug"):
                raise
            sys.exit(EXIT_BUG)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="reconciler")
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Review feature-flag changes like code: validate, plan, reconcile and serve."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug

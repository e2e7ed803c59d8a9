"""Shared options: every command names and explains them the same way."""

from __future__ import annotations

from collections.abc import Iterator

import click

from reconciler.cli import COMMANDS, LazyGroup, main
from reconciler.cli import options as shared
from reconciler.service import LOG_FORMATS

SHARED = ("--store", "--repo", "--branch", "--path", "--host", "--port", "--allow-anonymous", "--log-format")


def _declared(*decorators: object) -> dict[str, click.Option]:
    """The click options the shared decorators add, by their help text."""

    def command() -> None: ...

    for decorator in decorators:
        assert callable(decorator)
        command = decorator(command)
    params: list[click.Option] = command.__click_params__  # type: ignore[attr-defined]
    return {p.help or "": p for p in params}


def _commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(main)
    assert isinstance(main, LazyGroup)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            yield from ((f"{name} {sub}", c) for sub, c in command.commands.items())
        else:
            yield name, command


def test_each_shared_option_reads_the_same_in_every_command() -> None:
    declared = _declared(
        shared.store_option,
        shared.compare_store_option,
        shared.repo_option,
        shared.checkout_option,
        shared.branch_option,
        shared.path_option,
        shared.server_options,
    )
    seen = set()
    for name, command in _commands():
        for param in command.params:
            flag = next((o for o in param.opts if o in SHARED), None)
            if flag is None:
                continue
            assert isinstance(param, click.Option)
            origin = declared.get(param.help or "")
            assert origin is not None, f"{name} declares {flag} itself"
            assert (param.opts, param.name) == (origin.opts, origin.name), name
            seen.add(flag)
    assert seen == set(SHARED)


def test_log_format_choices_are_the_services() -> None:
    option = _declared(shared.log_format_option)
    (param,) = option.values()
    assert isinstance(param.type, click.Choice)
    assert tuple(param.type.choices) == LOG_FORMATS

"""One ``error:`` line with exit status 2 for every failure a user can cause."""

from __future__ import annotations

import sys

import click

from culvert_py.errors import CulvertError

#: Exit status of every user error (bad input, unreachable store); 1 is left to crashes.
USER_ERROR = 2


class _UsageLine(click.ClickException):
    """A click usage error (bad option value, unknown option or command, missing argument)
    shown as one ``error:`` line, exit 2, instead of click's usage block."""

    exit_code = USER_ERROR

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


def _one_line(exc: click.ClickException) -> click.ClickException:
    """``exc`` as a :class:`_UsageLine`: ``--limit: 'abc' is not a valid integer (see …)``."""
    if isinstance(exc, _UsageLine | click.exceptions.NoArgsIsHelpError):
        return exc  # already one line, or the help text `culvert` alone prints
    param = getattr(exc, "param", None)
    if isinstance(exc, click.BadParameter) and param is not None and exc.message:
        name = param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
        text = f"{name}: {_lower_first(exc.message)}"
    else:
        text = _lower_first(exc.format_message())
    text = " ".join(text.split()).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        text += f" (see {ctx.command_path} --help)"
    return _UsageLine(text)


def _lower_first(text: str) -> str:
    # "Invalid value" -> "invalid value", but "FILE" and "'abc'" stay as they are.
    return text[0].lower() + text[1:] if text[:2].istitle() else text


class CulvertGroup(click.Group):
    """A group that turns every user error into one ``error:`` line and exit 2: a
    :class:`CulvertError` (with a traceback under ``--debug``), and click's usage errors."""

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as exc:
            raise _one_line(exc) from exc

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CulvertError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(USER_ERROR)
        except click.ClickException as exc:
            raise _one_line(exc) from exc

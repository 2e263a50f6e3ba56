"""`whistle report monthly --township CODE --month YYYY-MM -o FILE.xlsx`: a township's monthly
report on demand, written to a file (nothing stored, nobody notified)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from command.org.models import Township
from supervision import reports


class Command(BaseCommand):
    help = "Reports for supervisors: `report monthly` writes a township's monthly workbook."

    def add_arguments(self, parser: CommandParser) -> None:
        kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
        monthly = kinds.add_parser(
            "monthly",
            help="a township's report for a month as an .xlsx workbook",
            called_from_command_line=getattr(parser, "called_from_command_line", None),
        )
        monthly.add_argument("--township", required=True, help="the township's code")
        monthly.add_argument("--month", required=True, help="YYYY-MM, on the township's clock")
        monthly.add_argument(
            "-o", "--output", required=True, help="the .xlsx file to write (replaced if there)"
        )
        monthly.add_argument(
            "--language",
            default=settings.LANGUAGE_CODE,
            help="the headers' language (default: the platform's, %(default)s)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        township = Township.objects.filter(code=options["township"]).first()
        if township is None:
            known = ", ".join(Township.objects.order_by("code").values_list("code", flat=True))
            raise CommandError(
                f"unknown township {options['township']!r} (known: {known or 'none'})"
            )
        try:
            month = reports.Month.parse(options["month"])
        except ValueError:
            raise CommandError(
                f"bad month {options['month']!r}: give it as YYYY-MM, e.g. 2026-10"
            ) from None
        output = Path(options["output"])
        if not output.parent.is_dir():
            raise CommandError(f"cannot write {output}: no folder {output.parent}")
        languages = dict(settings.LANGUAGES)
        if options["language"] not in languages:
            raise CommandError(
                f"unknown language {options['language']!r} (one of: {', '.join(languages)})"
            )
        started = time.perf_counter()
        self.stderr.write(f"Reading {township.code}'s figures for {month} …")
        with translation.override(options["language"]):
            figures = reports.monthly_figures(township=township, month=month)
            read = time.perf_counter()
            self.stderr.write(f"Writing the workbook ({read - started:.1f} s so far) …")
            book = reports.workbook(figures)
        try:
            output.write_bytes(book)
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror or exc}") from None
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"{output}: {township.code} {month}, {figures['intake']['total']} intake items, "
            f"{len(figures['departments'])} departments, {len(book):,} bytes, {elapsed:.1f} s"
        )

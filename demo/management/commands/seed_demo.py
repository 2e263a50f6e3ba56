"""`whistle seed_demo`: create or refresh the demo township 清水镇 and print how to log in."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from command.org.models import User
from demo.data import ADMIN_USERNAMES, DEMO_USERNAMES
from demo.past import DAYS, seed_demo_past
from demo.seed import seed_demo


class Command(BaseCommand):
    help = (
        "Create or refresh the demo township 清水镇 (Qingshui Town): departments, responsibility "
        "list, grids, devices and demo accounts. Safe to run again: it changes nothing that is "
        "already in place."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            action="append",
            default=[],
            metavar="USERNAME=SECRET",
            help=f"set one account's password; repeatable. Accounts: {', '.join(DEMO_USERNAMES)}",
        )
        parser.add_argument(
            "--password-for-all",
            metavar="SECRET",
            help="set the same password on every demo account but the administrator, which "
            "gets its own with --password admin=… or keeps a random one (a --password "
            "overrides it)",
        )
        parser.add_argument(
            "--past",
            action="store_true",
            help="also write the township's last 90 days (incidents, alerts, readings), as "
            "`whistle demo` does on its first run; nothing when the township has a past",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        passwords: dict[str, str] = {}
        if options["password_for_all"]:
            # One shared password must never open the administrator's account too.
            passwords = dict.fromkeys(
                (name for name in DEMO_USERNAMES if name not in ADMIN_USERNAMES),
                options["password_for_all"],
            )
        for item in options["password"]:
            username, sep, secret = item.partition("=")
            if not sep or not username or not secret:
                raise CommandError(f"--password wants USERNAME=SECRET, got {item!r}")
            if username not in DEMO_USERNAMES:
                raise CommandError(
                    f"{username!r} is not a demo account ({', '.join(DEMO_USERNAMES)})"
                )
            passwords[username] = secret

        problems = []
        for username, secret in sorted(passwords.items()):
            try:
                validate_password(secret, user=User(username=username))
            except ValidationError as exc:
                problems.append(f"{username}: {' '.join(exc.messages)}")
        if problems:
            raise CommandError(
                "密码不符合要求 / password refused by the password validators:\n  "
                + "\n  ".join(problems)
            )

        summary = seed_demo(passwords=passwords)

        out = self.stdout
        if summary.created or summary.updated:
            out.write(
                self.style.SUCCESS(
                    f"演示乡镇已就绪 / Demo township ready: {summary.township} "
                    f"(新建 created {summary.created}, 更新 updated {summary.updated})"
                )
            )
        else:
            out.write(
                self.style.SUCCESS(
                    f"演示乡镇已是最新 / Demo township already up to date: {summary.township}"
                )
            )
        out.write(
            f"  网格 grids: {summary.grids} "
            f"(综合 comprehensive {summary.comprehensive_grids}, "
            f"专属 dedicated {summary.dedicated_grids})"
        )
        out.write(
            f"  设备 devices: {summary.devices} "
            f"(摄像头 cameras {summary.cameras}, 传感器 sensors {summary.sensors}, "
            f"网关 gateways {summary.gateways})"
        )
        out.write(
            f"  部门 departments: {summary.departments}, 事项类别 categories: "
            f"{summary.categories}, 清单条目 responsibilities: {summary.responsibilities}"
        )
        if options["past"]:
            past = seed_demo_past()
            if past.written:
                out.write(
                    f"  过去 {DAYS} 天 / the last {DAYS} days: 事件 incidents {past.incidents}, "
                    f"告警 alerts {past.alerts}, 读数 readings {past.readings} "
                    f"({past.seconds:.1f} s)"
                )
            else:
                out.write("  已有历史数据 / the township already has a past: nothing written")
        out.write("账号 / Accounts:")
        for username, role, password in summary.accounts:
            shown = password if password is not None else "(密码未改 / password unchanged)"
            out.write(f"  {username:<11} {role:<18} {shown}")

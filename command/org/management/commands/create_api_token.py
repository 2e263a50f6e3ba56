from django.core.management.base import BaseCommand, CommandError

from command.org.models import User
from command.org.tokens import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user (a department's system, a gateway integration)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("name", help="what the token is for, e.g. 'police dispatch system'")

    def handle(self, *args, username: str, name: str, **options) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        _token, raw = api_token_create(user=user, name=name)
        self.stdout.write(f"API token for {username} ({name}); shown once, keep it safe:")
        self.stdout.write(raw)

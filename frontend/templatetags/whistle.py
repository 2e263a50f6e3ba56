import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def tojson(value: Any) -> str:
    """JSON for an HTML attribute value; Django's autoescape makes the quotes safe."""
    return json.dumps(value, ensure_ascii=False, default=str)

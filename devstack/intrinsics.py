"""Just enough of CloudFormation's intrinsic functions to apply, locally, what moto's
CloudFormation does not: the bucket notification and the S3 Vectors index."""

from __future__ import annotations

import re
from typing import Any

_NO_VALUE = object()


class Resolver:
    def __init__(
        self, template: dict[str, Any], parameters: dict[str, str], attributes: dict[tuple[str, str], str]
    ) -> None:
        defaults = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.parameters = {**defaults, **parameters}
        self.conditions = template.get("Conditions", {})
        self.attributes = attributes  # (logical id, attribute) -> value, e.g. ("TaggingQueue", "Arn")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [r for v in value if (r := self.resolve(v)) is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.parameters[arg]
            if fn == "Fn::GetAtt":
                return self.attributes[(arg[0], arg[1])]
            if fn == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if fn == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if fn == "Fn::Not":
                return not self.resolve(arg[0])
            if fn == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if fn == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if fn in ("Fn::Condition", "Condition"):
                return self.condition(arg)
            if fn == "Fn::Sub" and isinstance(arg, str):
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._named(m.group(1)), arg)
        return {k: r for k, v in value.items() if (r := self.resolve(v)) is not _NO_VALUE}

    def _named(self, name: str) -> str:
        """``${Param}`` or ``${Resource.Attribute}`` inside a Fn::Sub string."""
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self.attributes[(resource, attribute)]
        return self.parameters[name]

"""Work that libraries do eagerly at import or registration, deferred to its first use.

Start-up pays only for what the first request needs; each deferral falls back to the library's own
behaviour when the library's internals are not the ones expected.
"""
from __future__ import annotations

import importlib
import re
import sys

from werkzeug.routing import Rule

_compile = re.compile


class LazyRule(Rule):
    """A URL rule that compiles its URL builders on first use.

    werkzeug compiles two builders (an AST turned into code) for every rule as it is added: most of
    the cost of mounting the providers' routes, while the sandbox builds only a few of those URLs.
    Matching does not use the builders.
    """
    if hasattr(Rule, "_compile_builder"):
        def _compile_builder(self, append_unknown: bool = True):
            compile_now = super()._compile_builder
            compiled = None

            def build(rule, /, **values):
                nonlocal compiled
                if compiled is None:   # two threads racing here compile the same code: harmless
                    compiled = compile_now(append_unknown)
                return compiled(rule, **values)
            return build

    if hasattr(Rule, "_parse_rule"):
        _parsed: dict = {}
        _COMPILED = frozenset({"_parts", "_trace", "_converters", "_build", "_build_unknown"})

        def compile(self) -> None:
            # Parsing a rule into the parts the matcher reads is the rest of what mounting costs, and
            # every app of a process (a test suite starts about a thousand) parses the same rules.
            # What parsing makes depends on the rule and on the map's options and converter classes;
            # the converters it makes are shared, as werkzeug's converters keep no state of a map's.
            m = self.map
            key = (self.rule, self.subdomain, self.host, m.host_matching, self.merge_slashes,
                   tuple(m.converters.items()))
            parsed = self._parsed.get(key)
            if parsed is None:
                before = set(vars(self))
                super().compile()
                # a werkzeug whose compile sets more than this copies would be copied wrongly
                if set(vars(self)) - before <= self._COMPILED:
                    self._parsed[key] = (self._parts, self._trace, self._converters)
                return
            parts, trace, converters = parsed
            self._parts, self._trace, self._converters = list(parts), list(trace), dict(converters)
            self.arguments.update(converters)
            self._build = self._compile_builder(False).__get__(self, None)
            self._build_unknown = self._compile_builder(True).__get__(self, None)


class LazyModule:
    """A module imported when one of its names is first read.

    A provider's request schemas were about a tenth of the sandbox's start: every marshmallow
    class is built at import, and no schema is needed before that provider's first request.
    """

    def __init__(self, name: str) -> None:
        self.__dict__["_name"] = name

    def __getattr__(self, attr: str):
        # the import system's lock per module: one thread imports, any other waits for the whole module
        module = importlib.import_module(self.__dict__["_name"])
        self.__dict__.update(vars(module))   # later reads find the names without this call
        return getattr(module, attr)


class _DeferredPattern:
    """A compiled pattern that is compiled when first used."""
    __slots__ = ("_source", "_compiled")

    def __init__(self, pattern: str, flags: int) -> None:
        self._source = (pattern, flags)
        self._compiled = None

    def __getattr__(self, name):
        if name.startswith("__"):   # class machinery probing (abc's __isabstractmethod__) is no use
            raise AttributeError(name)
        if self._compiled is None:
            self._compiled = _compile(*self._source)
        return getattr(self._compiled, name)


def import_marshmallow() -> None:
    """Import marshmallow with its e-mail validator's domain pattern compiled on first use.

    ``marshmallow.validate.Email`` compiles, at import, a case-insensitive pattern whose classes
    span the whole Basic Multilingual Plane; case-folding every code point of them takes longer
    than importing the rest of marshmallow. Only such patterns are deferred, and only while
    marshmallow is imported.
    """
    if "marshmallow.validate" in sys.modules:
        return

    def compile(pattern, flags=0):
        if isinstance(pattern, str) and flags & re.IGNORECASE and "\uffff" in pattern:
            return _DeferredPattern(pattern, flags)
        return _compile(pattern, flags)
    re.compile = compile
    try:
        import marshmallow.validate  # noqa: F401
    finally:
        re.compile = _compile

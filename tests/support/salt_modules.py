"""
The custom Salt modules as plain Python modules, for the unit tests: ``load`` imports one file of
``_modules``, ``_states``, ``_runners`` or ``_utils`` under a name of its own (several share the
name ``webstack``), ``UTILS`` is what the loader's ``__utils__`` holds (every ``_utils`` function
as ``"<module>.<function>"``), and ``functions`` maps an execution module's public functions
under the names ``__salt__`` gives them.
"""

import importlib.util
import inspect
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def load(kind, name, alias=None):
    """Import ``<kind>/<name>.py`` (kind ``_modules``, ``_states``, ``_runners``, ``_utils``) as
    ``alias`` (default ``<kind>_<name>``), once."""
    alias = alias or f"{kind.strip('_')}_{name}"
    if alias not in sys.modules:
        spec = importlib.util.spec_from_file_location(alias, REPO / kind / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[alias] = module
        spec.loader.exec_module(module)
    return sys.modules[alias]


def public_functions(module):
    """``{name: function}`` of the functions ``module`` defines, without the private ones."""
    return {
        name: func
        for name, func in inspect.getmembers(module, inspect.isfunction)
        if not name.startswith("_") and func.__module__ == module.__name__
    }


def functions(module, virtualname=None):
    """``{"<virtualname>.<function>": function}``: the module's entries in ``__salt__``."""
    prefix = virtualname or getattr(module, "__virtualname__", None) or module.__name__
    return {f"{prefix}.{name}": func for name, func in public_functions(module).items()}


UTILS_NAMES = sorted(path.stem for path in (REPO / "_utils").glob("*.py"))
UTILS_MODULES = {name: load("_utils", name) for name in UTILS_NAMES}
#: ``__utils__`` as the loader fills it from ``_utils`` (plain Python: no dunders of their own).
UTILS = {
    key: func
    for name, module in UTILS_MODULES.items()
    for key, func in functions(module, name).items()
}

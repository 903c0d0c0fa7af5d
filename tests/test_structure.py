"""The shape of the code: every route is thin (check the input, one call into its area, render).

Every route of the app, in every package, is read as code (its AST): neither
it nor the private helpers of its module that it calls may hold SQL, open a
write transaction or write the audit log. That is the area's work, in a
service function the tests and the commands can call too.
"""
import ast
import inspect
import re
import sys
from functools import cache
from pathlib import Path

import pytest

import fieldapp

from fieldapp.audit import log as audit_log

# A string that is a statement: SELECT … FROM, INSERT INTO, UPDATE … SET, DELETE FROM (SQL's capitals only,
# so a sentence such as "Select a district from the list" is not taken for one).
SQL = re.compile(r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+(OR\s+[A-Z]+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b")

@cache
def _module_tree(module_name):
    """The parsed module and its top-level functions by name."""
    module = sys.modules[module_name]
    tree = ast.parse(inspect.getsource(module))
    return {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _faults(function, module):
    """What in `function`'s own body makes it more than a thin view."""
    faults = []
    for node in ast.walk(function):
        if isinstance(node, ast.JoinedStr):
            text = "".join(part.value for part in node.values if isinstance(part, ast.Constant))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            text = None
        if text and SQL.search(text):
            faults.append(f"SQL ({text[:40]!r})")
        if (isinstance(node, ast.Name) and node.id == "write_transaction") or (
                isinstance(node, ast.Attribute) and node.attr == "write_transaction"):
            faults.append("write_transaction")
        if isinstance(node, ast.Call) and _is_audit_record(node.func, module):
            faults.append("audit record")
    return faults


def _is_audit_record(func, module):
    """Whether a call's function is the audit log's `record`, however the module imported it."""
    if isinstance(func, ast.Name):
        return getattr(module, func.id, None) is audit_log.record
    if isinstance(func, ast.Attribute) and func.attr == "record" and isinstance(func.value, ast.Name):
        return getattr(module, func.value.id, None) is audit_log
    return False


def _view_faults(view):
    """The view's faults, and those of the private helpers (`_name`) of its module it calls, however deep.

    A private helper is part of the page; a public function is the area's own,
    which other code and the tests may call, and is not followed.
    """
    module = sys.modules[view.__module__]
    functions = _module_tree(view.__module__)
    seen, todo, found = set(), [view.__name__], []
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        node = functions[name]
        found += [f"{fault} in {name}()" for fault in _faults(node, module)]
        todo += [call.func.id for call in ast.walk(node)
                 if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id.startswith("_")]
    return found


def _views(app):
    """{'module.function': function} for every route of the app's own code."""
    views = {}
    for function in app.view_functions.values():
        function = inspect.unwrap(function)
        if function.__module__.startswith("fieldapp."):
            views[f"{function.__module__}.{function.__name__}"] = function
    return views


def test_every_area_has_routes_to_check(app):
    views = _views(app)
    assert len(views) > 60
    assert {name.split(".")[1] for name in views} >= {
        "api", "board", "delivery", "duty", "identity", "ops", "program", "reference", "requests"}


def test_views_hold_no_sql_transactions_or_audit_writes(app):
    fat = {name: faults for name, view in sorted(_views(app).items()) if (faults := _view_faults(view))}
    assert fat == {}


@pytest.mark.parametrize("text", [
    "SELECT id FROM users", "INSERT INTO duty (user_id) VALUES (?)", "INSERT OR IGNORE INTO roster (user_id) VALUES (?)",
    "UPDATE duty SET on_duty = 0", "DELETE FROM push_subscriptions WHERE user_id = ?",
])
def test_the_check_knows_sql(text):
    assert SQL.search(text)


@pytest.mark.parametrize("text", ["Select a district from the list.", "Update your settings", "Delete from here?"])
def test_the_check_leaves_sentences_alone(text):
    assert not SQL.search(text)


PACKAGE = Path(fieldapp.__file__).parent
README = PACKAGE.parent / "README.md"


def _modules_on_disk():
    return {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
            if "__pycache__" not in path.parts and path.name != "__init__.py"}


def _modules_in_the_readme_map():
    """The modules README.md's map of the code names, as paths under fieldapp/."""
    text = README.read_text()
    block = text[text.index("## How it fits together"):]
    block = block[block.index("```\nfieldapp/") + 4:]
    block = block[:block.index("```")]
    named, package = set(), None
    for line in block.splitlines():
        if not line.startswith("  ") or line.startswith("  --"):
            continue
        word = line.split()[0]
        if line.startswith("    ") and not line.startswith("     ") and word.endswith(".py"):
            named.add(f"{package}/{word}")
        elif not line.startswith("    ") and word.endswith("/"):
            package = word.rstrip("/")
        elif not line.startswith("    ") and word.endswith(".py") and word != "__init__.py":
            named.add(word)
    return named


def test_the_readme_map_names_every_module_and_no_other():
    assert _modules_in_the_readme_map() == _modules_on_disk()


def test_at_most_twelve_modules_stand_at_the_top():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top


def test_every_area_says_what_it_holds():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc.split()) >= 20, f"{init.parent.name}/__init__.py should say what the area holds and owns"

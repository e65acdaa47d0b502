"""A pickle reader in which every effect an opcode can have goes through a policy of ours.

A pickle is a small program: besides pushing numbers, strings and containers, its opcodes
call functions (``REDUCE``), create instances (``NEWOBJ``), hand state to objects
(``BUILD``, which runs their ``__setstate__``) and insert into whatever object lies on the
stack (``SETITEM``, ``APPEND``, ``ADDITEMS``). Restricting only the names a file may refer
to is not enough: numpy's and torch's own ``__setstate__`` methods, called with crafted
state, corrupt memory or build enormous views.

:class:`GuardedUnpickler` is the pure-Python unpickler of the standard library with those
opcodes routed through methods a subclass defines (:meth:`~GuardedUnpickler.call`,
:meth:`~GuardedUnpickler.new_object`, :meth:`~GuardedUnpickler.build`); by default every
one of them refuses. Insertions go only into real ``dict``/``list``/``set`` objects, call
arguments must be real tuples (``func(*args)`` of a tensor would iterate it), and the
opcodes no weights file uses (``INST``, ``OBJ``, extension codes, out-of-band buffers,
persistent ids) are refused. Its memo is a dict, so a memo index cannot make it allocate
(the C unpickler grows an array to the largest index it sees).
"""

from __future__ import annotations

import pickle
import pickletools
from typing import IO, Any

__all__ = ["MAX_OPCODES", "GuardedUnpickler", "PickleRefused", "check_opcodes"]

# Every opcode makes at most one object, of up to ~100 bytes for one to a few bytes of file:
# a cap on their number caps what a file of tiny objects (``}}}}...``) can make us hold.
# A 1024 px NVIDIA pickle (G, D, G_ema, augment pipe) has about 10^5.
MAX_OPCODES = 5_000_000


class PickleRefused(Exception):
    """The pickle is damaged, is not a pickle, or asks for something we do not allow."""

    def __init__(self, reason: str, global_name: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.global_name = global_name


def _kind(obj: Any) -> str:
    return type(obj).__name__


def _load_reduce(self: GuardedUnpickler) -> None:
    stack = self.stack
    args = stack.pop()
    func = stack[-1]
    if type(args) is not tuple:
        raise PickleRefused("a call in it has arguments that are not a tuple (damaged?)")
    stack[-1] = self.call(func, args)


def _load_newobj(self: GuardedUnpickler) -> None:
    args = self.stack.pop()
    cls = self.stack.pop()
    if type(args) is not tuple:
        raise PickleRefused("an object in it is created from arguments that are not a tuple")
    self.append(self.new_object(cls, args, {}))


def _load_newobj_ex(self: GuardedUnpickler) -> None:
    kwargs = self.stack.pop()
    args = self.stack.pop()
    cls = self.stack.pop()
    if type(args) is not tuple or type(kwargs) is not dict:
        raise PickleRefused("an object in it is created from malformed arguments")
    self.append(self.new_object(cls, args, kwargs))


def _load_build(self: GuardedUnpickler) -> None:
    state = self.stack.pop()
    self.build(self.stack[-1], state)


def _load_setitem(self: GuardedUnpickler) -> None:
    value = self.stack.pop()
    key = self.stack.pop()
    self.set_items(self.stack[-1], [(key, value)])


def _load_setitems(self: GuardedUnpickler) -> None:
    items = self.pop_mark()
    if len(items) % 2:
        raise PickleRefused("a dict in it has a key without a value (damaged?)")
    self.set_items(self.stack[-1], [(items[i], items[i + 1]) for i in range(0, len(items), 2)])


def _load_append(self: GuardedUnpickler) -> None:
    item = self.stack.pop()
    self.append_items(self.stack[-1], [item])


def _load_appends(self: GuardedUnpickler) -> None:
    items = self.pop_mark()
    self.append_items(self.stack[-1], items)


def _load_additems(self: GuardedUnpickler) -> None:
    items = self.pop_mark()
    self.add_items(self.stack[-1], items)


def _load_inst(self: GuardedUnpickler) -> None:
    module = self.readline()[:-1].decode("ascii")
    name = self.readline()[:-1].decode("ascii")
    self.find_class(module, name)  # names the reference when it is not allowed at all
    raise PickleRefused("it uses the INST opcode (protocol 0 objects), which weights files "
                        "never do")


def _refuse(what: str) -> Any:
    def load(self: GuardedUnpickler) -> None:
        raise PickleRefused(f"it uses {what}, which weights files never do")

    return load


class GuardedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """``pickle``'s pure-Python unpickler with every side effect behind a policy method.

    Subclasses override :meth:`find_class` (what a name refers to), :meth:`call`
    (``REDUCE``), :meth:`new_object` (``NEWOBJ``), :meth:`build` (``BUILD``),
    :meth:`set_items` / :meth:`append_items` / :meth:`add_items` (``SETITEM(S)``,
    ``APPEND(S)``, ``ADDITEMS``) and :meth:`persistent_load`.
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]
    dispatch[pickle.REDUCE[0]] = _load_reduce
    dispatch[pickle.NEWOBJ[0]] = _load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = _load_newobj_ex
    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.SETITEM[0]] = _load_setitem
    dispatch[pickle.SETITEMS[0]] = _load_setitems
    dispatch[pickle.APPEND[0]] = _load_append
    dispatch[pickle.APPENDS[0]] = _load_appends
    dispatch[pickle.ADDITEMS[0]] = _load_additems
    dispatch[pickle.INST[0]] = _load_inst
    dispatch[pickle.OBJ[0]] = _refuse("the OBJ opcode (protocol 1 objects)")
    for _op in (pickle.EXT1, pickle.EXT2, pickle.EXT4):
        dispatch[_op[0]] = _refuse("copyreg extension codes")
    dispatch[pickle.NEXT_BUFFER[0]] = _refuse("out-of-band buffers")
    dispatch[pickle.READONLY_BUFFER[0]] = _refuse("out-of-band buffers")
    del _op

    def find_class(self, module: str, name: str) -> Any:
        raise PickleRefused(f"it refers to {module}.{name}", global_name=f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise PickleRefused("it uses persistent ids")

    def call(self, func: Any, args: tuple) -> Any:
        raise PickleRefused(f"it calls a {_kind(func)}")

    def new_object(self, cls: Any, args: tuple, kwargs: dict) -> Any:
        raise PickleRefused(f"it creates an object of a {_kind(cls)}")

    def build(self, inst: Any, state: Any) -> None:
        raise PickleRefused(f"it changes a {_kind(inst)} after creating it")

    def set_items(self, target: Any, pairs: list[tuple[Any, Any]]) -> None:
        if type(target) is not dict:
            raise PickleRefused(f"it inserts dict items into a {_kind(target)}")
        for key, value in pairs:
            target[key] = value

    def append_items(self, target: Any, items: list) -> None:
        if type(target) is not list:
            raise PickleRefused(f"it appends items to a {_kind(target)}, which only lists allow")
        target.extend(items)

    def add_items(self, target: Any, items: list) -> None:
        if type(target) is not set:
            raise PickleRefused(f"it adds set items to a {_kind(target)}")
        target.update(items)


def check_opcodes(f: IO[bytes], max_ops: int | None = None) -> int:
    """Walk one pickle from ``f``'s position to its STOP without building anything (leaves
    ``f`` after it): catches truncation, unknown opcodes, length fields that point past the
    end (the pure-Python unpickler would silently take a short read) and more opcodes than
    ``max_ops``. Returns the number of opcodes."""
    max_ops = MAX_OPCODES if max_ops is None else max_ops
    count = 0
    try:
        for _ in pickletools.genops(f):
            count += 1
            if count > max_ops:
                raise PickleRefused(
                    f"it holds more than {max_ops:,} pickle instructions, far more than any "
                    "weights file"
                )
    except (ValueError, UnicodeDecodeError) as exc:
        text = str(exc)
        if "exhausted" in text or ("only" in text and "remain" in text):
            raise PickleRefused("it ends early (truncated download?)") from None
        lines = text.strip().splitlines()
        raise PickleRefused(f"it is damaged ({lines[0][:160] if lines else 'bad opcode'})") from None
    return count

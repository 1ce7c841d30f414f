"""What the spec models accept at a field path, read from the pydantic models themselves.

The loader asks before pydantic sees the data: which keys a block accepts (for "did you
mean"), which maps hold free text (label values YAML would read as numbers or booleans),
and how Sloth's Kubernetes form spells each field.
"""

from __future__ import annotations

import functools
import types
import typing

from pydantic import BaseModel

from modelmon.spec import SloFile

PathPart = str | int
FieldPath = tuple[PathPart, ...]


def unwrap(annotation: object) -> object:
    """Strip Annotated[...] and Optional[...] down to the type that holds fields or items."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def fields(annotation: object) -> dict[str, object]:
    """A model's fields by the key a spec spells them with, and their types; {} for anything else."""
    annotation = unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {info.alias or name: info.annotation for name, info in annotation.model_fields.items()}
    return {}


def child(annotation: object, part: PathPart) -> object | None:
    """The type of `part` (a key, or a list index) inside a value of type `annotation`."""
    annotation = unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin is list:
        return typing.get_args(annotation)[0] if isinstance(part, int) else None
    if origin is dict:
        return typing.get_args(annotation)[1]
    return fields(annotation).get(part) if isinstance(part, str) else None


def is_text_map(annotation: object) -> bool:
    """A map of names to strings: labels, annotations, route matchers."""
    annotation = unwrap(annotation)
    return typing.get_origin(annotation) is dict and unwrap(typing.get_args(annotation)[1]) is str


# Keyed by label names too (a label map's values): bounded, as files hold few distinct paths.
@functools.lru_cache(maxsize=4096)
def _at(root: type[BaseModel], path: FieldPath) -> object | None:
    annotation: object | None = root
    for part in path:
        annotation = child(annotation, part) if annotation is not None else None
    return annotation


def annotation_at(path: FieldPath, root: type[BaseModel] = SloFile) -> object | None:
    """The type the value at `path` of a document of model `root` must have; None where it has no such place."""
    # Every item of a list has one type: one cache entry serves all of them.
    return _at(root, tuple(0 if isinstance(part, int) else part for part in path))


def allowed_keys(path: FieldPath, root: type[BaseModel] = SloFile) -> list[str]:
    """The keys a document of model `root` accepts at `path` (for "did you mean" suggestions)."""
    annotation = annotation_at(path, root)
    return list(fields(annotation)) if annotation is not None else []

"""Import neighborhoods from a GeoJSON FeatureCollection: all features or none."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from .geometry import GeometryError, parse_area
from .models import Neighborhood, unique_slug

NAME_MAX_LENGTH = Neighborhood._meta.get_field("name").max_length


class ImportFailed(Exception):
    """The file cannot be imported; ``problems`` lists each bad feature with its index and reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def read_feature_collection(path: str | Path) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ImportFailed([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ImportFailed([f"{path} is not UTF-8 text"]) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed([f"{path} is not JSON: {exc.msg} at line {exc.lineno}"]) from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ImportFailed(["the file is not a GeoJSON FeatureCollection"])
    if not isinstance(data.get("features"), list) or not data["features"]:
        raise ImportFailed(["the FeatureCollection has no features"])
    return data


def import_neighborhoods(
    data: dict, *, name_property: str, description_property: str | None = None
) -> ImportResult:
    """Create or update (matched by name) one neighborhood per feature, in one transaction."""
    problems: list[str] = []
    parsed: list[tuple[str, dict, dict, str]] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(data["features"]):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.append(f"feature {index}: not a GeoJSON Feature")
            continue
        properties = feature.get("properties")
        if not isinstance(properties, dict):
            properties = {}
        name = properties.get(name_property)
        if not isinstance(name, str) or not name.strip():
            problems.append(f"feature {index}: no {name_property!r} property")
            continue
        name = " ".join(name.split())
        if len(name) > NAME_MAX_LENGTH:
            problems.append(f"feature {index}: name is longer than {NAME_MAX_LENGTH} characters")
            continue
        if name in seen:
            problems.append(f"feature {index}: name {name!r} repeats feature {seen[name]}")
            continue
        seen[name] = index
        try:
            area = parse_area(feature.get("geometry"))
        except GeometryError as exc:
            problems.append(f"feature {index} ({name}): {exc}")
            continue
        description = ""
        if description_property:
            description = str(properties.get(description_property) or "")
        parsed.append((name, area, properties, description))
    if problems:
        raise ImportFailed(problems)

    result = ImportResult()
    with transaction.atomic():
        existing = {n.name: n for n in Neighborhood.objects.select_for_update()}
        for name, area, properties, description in parsed:
            neighborhood = existing.get(name)
            if neighborhood is None:
                neighborhood = Neighborhood(name=name, slug=unique_slug(Neighborhood, name))
                result.created.append(name)
            else:
                result.updated.append(name)
            neighborhood.set_boundary(area)
            neighborhood.source_properties = _json_safe(properties)
            if description:
                neighborhood.description = description
            neighborhood.save()
    return result


def _json_safe(properties: dict) -> dict:
    return json.loads(json.dumps(properties, default=str))

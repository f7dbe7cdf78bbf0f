"""`kustomize build` for what deploy/k8s uses, without the kustomize binary: `resources`
(files and folders with their own kustomization), `namespace`, `labels`, `images` and JSON 6902
`patches`. Any other kustomization field fails the build rather than being ignored, and a
resource that does not exist fails it too."""

from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION = "kustomization.yaml"
_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
_CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
}


class BuildError(ValueError):
    """The kustomization cannot be built."""


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of ``path``."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def build(folder: Path) -> list[dict[str, Any]]:
    """The objects ``kustomize build folder`` prints."""
    spec = load_documents(folder / KUSTOMIZATION)[0]
    unknown = set(spec) - _FIELDS
    if unknown:
        raise BuildError(f"{folder / KUSTOMIZATION}: fields this renderer lacks: {unknown}")
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        if target.is_dir():
            objects += build(target)
        elif target.is_file():
            objects += load_documents(target)
        else:
            raise BuildError(f"{folder / KUSTOMIZATION}: resource {entry!r} does not exist")
    for patch in spec.get("patches", []):
        _patch(objects, patch, folder)
    for label in spec.get("labels", []):
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
            if label.get("includeSelectors"):
                raise BuildError("labels with includeSelectors are not rendered here")
    for image in spec.get("images", []):
        for container in _containers(objects):
            name, _, _tag = container["image"].partition(":")
            if name == image["name"]:
                new = image.get("newName", name)
                container["image"] = f"{new}:{image['newTag']}" if "newTag" in image else new
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in _CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
    return objects


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(workload, pod spec)`` of every Deployment, StatefulSet, DaemonSet and Job."""
    return [
        (obj, obj["spec"]["template"]["spec"])
        for obj in objects
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ]


def _containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        container
        for _, spec in pod_specs(objects)
        for container in spec.get("initContainers", []) + spec["containers"]
    ]


def _patch(objects: list[dict[str, Any]], patch: dict[str, Any], folder: Path) -> None:
    target = patch["target"]
    matches = [
        obj
        for obj in objects
        if obj["kind"] == target.get("kind", obj["kind"])
        and obj["metadata"]["name"] == target.get("name", obj["metadata"]["name"])
    ]
    if not matches:
        raise BuildError(f"{folder / KUSTOMIZATION}: patch target {target} matches nothing")
    operations = yaml.safe_load(patch["patch"])
    for obj in matches:
        for op in operations:
            *parents, last = [part.replace("~1", "/") for part in op["path"].split("/")[1:]]
            node: Any = obj
            for part in parents:
                node = node[int(part)] if isinstance(node, list) else node[part]
            if op["op"] in ("replace", "add"):
                if op["op"] == "replace" and last not in node:
                    raise BuildError(f"patch replaces {op['path']}, which is not there")
                node[last] = op["value"]
            elif op["op"] == "remove":
                del node[last]
            else:
                raise BuildError(f"patch op {op['op']!r} is not rendered here")

#!/usr/bin/env python3
"""Checks deploy/kubernetes/ and deploy/compose/ against the schemas and against the rest of the
repository. Run it through deploy/validate-manifests.sh, which provides the virtual environment
(kubernetes-validate, jsonschema, PyYAML).

    validate_manifests.py [--root DIR] [--kubernetes-version 1.34] [--self-test]

Prints one line per check ("ok   name: what was checked" or "FAIL name: what is wrong", one
line per problem) and exits 1 when any check failed. --self-test copies the files the checks
read into temporary folders, breaks one thing in each copy (a misspelt setting, a probe on a path
the process does not serve, an unknown field, ...) and exits 1 unless every break is caught by
the check meant to catch it.

Rendering the kustomization: kustomize is often not installed (CI's machine has neither
kustomize nor a package that ships it), so this script renders deploy/kubernetes itself: it
loads the files listed in `resources`, applies `labels`, `configMapGenerator` (with kustomize's
content-hash name suffix, and the renamed references) and `images`, and refuses any other
kustomization field rather than render it wrongly. When `kubectl` is on PATH its
`kubectl kustomize` output is compared with this rendering, object by object.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

DEFAULT_KUBERNETES_VERSION = "1.34"

KUSTOMIZE_DIR = "deploy/kubernetes"
OPTIONAL_DIR = "deploy/kubernetes/optional"
SCHEMA_DIR = "deploy/kubernetes/schemas"
COMPOSE_FILE = "deploy/compose/compose.yaml"
COMPOSE_SCHEMA = "deploy/compose/schema/compose-spec.json"
README = "README.md"
TOPOLOGY = "topology.json"
CLI_SOURCES = "Sources/tearsheet-sync"
METRICS_ENDPOINT = "Sources/tearsheet-sync/Services/MetricsServer.swift"
MIGRATIONS = "Sources/TearsheetSyncCore/Schema/SchemaMigrations.swift"
BULLHORN_CONFIGURATION = "Sources/BullhornClient/BullhornCredentials.swift"

CRD_FILES = {
    "ScaledObject": "keda.sh_scaledobjects.yaml",
    "TriggerAuthentication": "keda.sh_triggerauthentications.yaml",
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
}
PART_OF = ("app.kubernetes.io/part-of", "tearsheet-sync")
# The settings each subcommand cannot start without (README, Configuration).
REQUIRED_SETTINGS = {
    "migrate": {"TSYNC_DATABASE_URL"},
    "topology": {"TSYNC_AMQP_URL", "TSYNC_MANAGEMENT_URL", "TSYNC_TOPOLOGY"},
    "work": {"TSYNC_AMQP_URL", "TSYNC_DATABASE_URL", "TSYNC_SECRET_KEY", "TSYNC_TOPOLOGY"},
    "publish": {"TSYNC_AMQP_URL", "TSYNC_DATABASE_URL", "TSYNC_SECRET_KEY", "TSYNC_TOPOLOGY"},
    "depth": {"TSYNC_AMQP_URL", "TSYNC_MANAGEMENT_URL", "TSYNC_TOPOLOGY"},
    "simulate": set(),
}
WORKLOAD_TEMPLATE_PATHS = {
    "Deployment": [("spec", "template")],
    "StatefulSet": [("spec", "template")],
    "DaemonSet": [("spec", "template")],
    "ReplicaSet": [("spec", "template")],
    "Job": [("spec", "template")],
    "CronJob": [("spec", "jobTemplate", "spec", "template")],
}


class CheckFailure(Exception):
    pass


@dataclass
class Results:
    lines: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)  # check name -> [messages]

    def ok(self, name, detail):
        self.lines.append(f"ok   {name}: {detail}")

    def fail(self, name, message):
        self.lines.append(f"FAIL {name}: {message}")
        self.failed.setdefault(name, []).append(message)


# ------------------------------------------------------------------------------------------
# Loading


def load_docs(path: Path) -> list:
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def ident(obj) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def dig(obj, *path, default=None):
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


def pod_templates(obj):
    """(template, where) pairs of a workload; a Pod is its own template."""
    if obj.get("kind") == "Pod":
        return [(obj, ident(obj))]
    found = []
    for path in WORKLOAD_TEMPLATE_PATHS.get(obj.get("kind"), []):
        template = dig(obj, *path)
        if isinstance(template, dict):
            found.append((template, ident(obj)))
    return found


def containers_of(obj):
    """(container, pod spec, where) for every container and init container of a workload."""
    for template, where in pod_templates(obj):
        spec = template.get("spec", {})
        for group in ("initContainers", "containers"):
            for container in spec.get(group, []) or []:
                yield container, spec, f"{where} container {container.get('name')}"


def manifest_files(root: Path) -> list:
    """Every file of ours under deploy/kubernetes and deploy/compose (not the vendored schemas,
    not the topology copy)."""
    files = []
    for base in (KUSTOMIZE_DIR, "deploy/compose"):
        for path in sorted((root / base).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if not path.is_file() or "/schemas/" in rel or "/schema/" in rel or path.name == "topology.json":
                continue
            if path.suffix in (".yaml", ".yml", ".json", ".conf", ".env"):
                files.append(path)
    return files


# ------------------------------------------------------------------------------------------
# Rendering the kustomization (see the module docstring)

SUPPORTED_KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "labels", "resources", "configMapGenerator", "images"}


def go_json(value) -> str:
    """json.Marshal's encoding of maps of strings: sorted keys, no spaces, HTML-escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def configmap_hash(data: dict) -> str:
    # kustomize (api/hasher) hashes {"data", "kind", "name"} of a ConfigMap; its lookup of
    # "metadata/name" finds nothing (kyaml takes that as one field name), so the name it hashes is
    # empty. Cross-checked against `kubectl kustomize` whenever kubectl is installed.
    digest = hashlib.sha256(go_json({"data": data, "kind": "ConfigMap", "name": ""}).encode("utf-8")).hexdigest()
    return digest[:10].translate(str.maketrans("013ae", "ghkmt"))


def split_image(image: str):
    """(name, tag or None, digest or None); a registry port is part of the name."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        image, tag = image[:colon], image[colon + 1:]
    return image, tag, digest


def rename_configmap_refs(spec: dict, renames: dict):
    for volume in spec.get("volumes", []) or []:
        if "configMap" in volume and volume["configMap"].get("name") in renames:
            volume["configMap"]["name"] = renames[volume["configMap"]["name"]]
        for source in dig(volume, "projected", "sources", default=[]) or []:
            if "configMap" in source and source["configMap"].get("name") in renames:
                source["configMap"]["name"] = renames[source["configMap"]["name"]]
    for group in ("initContainers", "containers"):
        for container in spec.get(group, []) or []:
            for env_from in container.get("envFrom", []) or []:
                ref = env_from.get("configMapRef")
                if ref and ref.get("name") in renames:
                    ref["name"] = renames[ref["name"]]
            for env in container.get("env", []) or []:
                ref = dig(env, "valueFrom", "configMapKeyRef")
                if ref and ref.get("name") in renames:
                    ref["name"] = renames[ref["name"]]


def render_kustomization(directory: Path) -> list:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unsupported = set(kustomization) - SUPPORTED_KUSTOMIZATION_FIELDS
    if unsupported:
        raise CheckFailure(f"kustomization.yaml uses {sorted(unsupported)}, which this renderer does not implement")
    objects = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if not path.is_file():
            raise CheckFailure(f"resource {resource} is not a file in {directory}")
        objects.extend(load_docs(path))

    renames = {}
    for generator in kustomization.get("configMapGenerator", []) or []:
        unknown = set(generator) - {"name", "files"}
        if unknown:
            raise CheckFailure(f"configMapGenerator {generator.get('name')}: {sorted(unknown)} not implemented here")
        data = {}
        for entry in generator.get("files", []):
            key, _, rel = entry.partition("=") if "=" in entry else (Path(entry).name, "", entry)
            source = (directory / rel).resolve()
            if directory.resolve() not in source.parents:
                raise CheckFailure(f"configMapGenerator file {rel} is outside {directory} (kustomize refuses it)")
            data[key] = source.read_text(encoding="utf-8")
        name = f"{generator['name']}-{configmap_hash(data)}"
        renames[generator["name"]] = name
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})

    for obj in objects:
        for template, _ in pod_templates(obj):
            rename_configmap_refs(template.get("spec", {}), renames)

    for entry in kustomization.get("labels", []) or []:
        if entry.get("includeSelectors"):
            raise CheckFailure("labels with includeSelectors: true are not implemented here")
        pairs = entry.get("pairs", {})
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
            if entry.get("includeTemplates"):
                if obj.get("kind") == "CronJob":
                    dig(obj, "spec", "jobTemplate").setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
                for template, _ in pod_templates(obj):
                    template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)

    for rule in kustomization.get("images", []) or []:
        for obj in objects:
            for container, _, _ in containers_of(obj):
                name, tag, digest = split_image(container.get("image", ""))
                if name != rule["name"]:
                    continue
                name = rule.get("newName", name)
                if "digest" in rule:
                    container["image"] = f"{name}@{rule['digest']}"
                else:
                    tag = rule.get("newTag", tag)
                    container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest and "newTag" not in rule else "")
    return objects


def kubectl_render(directory: Path):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return None, "kubectl not installed: own rendering only"
    run = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        raise CheckFailure(f"kubectl kustomize failed: {run.stderr.strip()}")
    version = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, timeout=60).stdout
    found = re.search(r"Kustomize Version: (\S+)", version)
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc], f"kustomize {found.group(1) if found else '?'}"


# ------------------------------------------------------------------------------------------
# Facts read from the repository


def readme_settings(root: Path) -> set:
    names = set()
    for line in (root / README).read_text(encoding="utf-8").splitlines():
        if line.startswith("| `TSYNC_"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`(TSYNC_[A-Z0-9_]+)`", first_cell))
    return names


def served_paths(root: Path):
    """The HTTP paths the process serves on --metrics-port, read from its router.get(...) calls:
    string literals, constants (`static let live = "/healthz/live"`) and `for path in [..]` loops."""
    endpoint = root / METRICS_ENDPOINT
    if endpoint.is_file():
        files = [endpoint]
    else:  # the endpoint's code moved: take the files of the command line that register routes
        files = [p for p in sorted((root / CLI_SOURCES).rglob("*.swift")) if "router.get(" in p.read_text(encoding="utf-8")]
    if not files:
        raise CheckFailure(f"no router.get(...) found in {METRICS_ENDPOINT} or under {CLI_SOURCES}")
    paths = set()
    for path in files:
        source = path.read_text(encoding="utf-8")
        constants = dict(re.findall(r'\blet\s+(\w+)\s*(?::\s*String\s*)?=\s*"([^"]*)"', source))
        loops = {var: items for var, items in re.findall(r"\bfor\s+(\w+)\s+in\s+\[([^\]]*)\]", source)}

        def resolve(expr: str, depth=0):
            expr = expr.strip()
            if expr.startswith('"'):
                return [expr.strip('"')]
            last = expr.split(".")[-1]
            if last in constants:
                return [constants[last]]
            if expr in loops and depth == 0:
                return [p for item in loops[expr].split(",") if item.strip() for p in resolve(item, 1)]
            raise CheckFailure(f"{path.relative_to(root)}: cannot tell which path router.get({expr}) serves")

        for expr in re.findall(r"router\.get\(\s*(?:RouterPath\(\s*)?([^,)\s]+)", source):
            paths.update(resolve(expr))
    return paths, [p.relative_to(root).as_posix() for p in files]


def cli_vocabulary(root: Path):
    """Subcommand names and long option names declared by the command line's sources."""
    commands, options = set(), {"--help"}
    for path in (root / CLI_SOURCES).rglob("*.swift"):
        source = path.read_text(encoding="utf-8")
        commands.update(re.findall(r'commandName:\s*"([^"]+)"', source))
        options.update("--" + name for name in re.findall(r'\.customLong\("([^"]+)"\)', source))
        for start in (m.end() for m in re.finditer(r"@(?:Option|Flag)\b", source)):
            end = skip_parenthesized(source, start)
            declared = re.match(r"\s*var\s+(\w+)", source[end:])
            if declared:
                options.add("--" + re.sub(r"(?<!^)(?=[A-Z])", "-", declared.group(1)).lower())
    return commands, options


def skip_parenthesized(source: str, index: int) -> int:
    """The index after a parenthesized argument list starting at `index` (strings may hold
    parentheses), or `index` itself when none starts there."""
    if index >= len(source) or source[index] != "(":
        return index
    depth, in_string = 0, False
    while index < len(source):
        char = source[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return index


def worker_max_sessions(root: Path) -> int:
    source = ""
    for path in (root / CLI_SOURCES).rglob("*.swift"):
        text = path.read_text(encoding="utf-8")
        if 'commandName: "work"' in text:
            source = text
    found = re.search(r"var\s+maxSessions\s*=\s*(\d+)", source)
    if not found:
        raise CheckFailure(f"cannot read work --max-sessions' default under {CLI_SOURCES}")
    return int(found.group(1))


def bullhorn_request_timeout(root: Path) -> int:
    found = re.search(r"requestTimeout:\s*Duration\s*=\s*\.seconds\((\d+)\)", (root / BULLHORN_CONFIGURATION).read_text(encoding="utf-8"))
    if not found:
        raise CheckFailure(f"cannot read the Bullhorn request timeout in {BULLHORN_CONFIGURATION}")
    return int(found.group(1))


def schema_tables(root: Path) -> dict:
    """table -> columns, from the CREATE TABLE and ALTER TABLE ... ADD COLUMN statements."""
    source = (root / MIGRATIONS).read_text(encoding="utf-8")
    tables = {}
    for name, body in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)\s*\((.*?)\n\s*\);", source, re.S):
        columns = set()
        for line in body.split("\n"):
            word = re.match(r"\s*(\w+)\s", line)
            if word and word.group(1).upper() not in ("PRIMARY", "UNIQUE", "CONSTRAINT", "FOREIGN", "CHECK", "EXCLUDE"):
                columns.add(word.group(1))
        tables.setdefault(name, set()).update(columns)
    for name, column in re.findall(r"ALTER TABLE (\w+) ADD COLUMN (?:IF NOT EXISTS )?(\w+)", source):
        tables.setdefault(name, set()).add(column)
    return tables


# ------------------------------------------------------------------------------------------
# Schemas


@functools.lru_cache(maxsize=None)
def kubernetes_validator(kind: str, api_version: str, version: str):
    """A strict validator for a built-in kind: kubernetes-validate's schemas (its validate() reads
    the definitions file again for each object; this keeps one validator per kind)."""
    from importlib import resources

    from kubernetes_validate import utils as kv
    from packaging.version import Version
    from referencing import Registry, Resource

    available = [v for v in kv.all_versions() if Version(kv.major_minor(v)) <= Version(kv.major_minor(version))]
    if not available:
        raise CheckFailure(f"kubernetes-validate has no schemas for Kubernetes {version}")
    chosen = available[-1]
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema", f"v{chosen}-local-strict")
    schema_file = folder.joinpath(f"{kind.lower()}-{group}.json")
    if not schema_file.is_file():
        return None, chosen
    schema = json.loads(schema_file.read_text())
    definitions = json.loads(folder.joinpath("_definitions.json").read_text())
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry), chosen


def structural_to_jsonschema(schema):
    """A CRD's structural schema as JSON Schema: int-or-string and nullable spelt out, and
    objects with declared properties closed unless they preserve unknown fields."""
    if isinstance(schema, list):
        return [structural_to_jsonschema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: structural_to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = structural_to_jsonschema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = structural_to_jsonschema(value)
        elif not key.startswith("x-kubernetes-") and key != "nullable":
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = out.get("anyOf", []) + [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=None)
def crd_validator(root: str, kind: str):
    crd = load_docs(Path(root) / SCHEMA_DIR / CRD_FILES[kind])[0]
    spec = crd["spec"]
    served = {}
    for version in spec["versions"]:
        if version.get("served", True):
            schema = structural_to_jsonschema(version["schema"]["openAPIV3Schema"])
            served[f"{spec['group']}/{version['name']}"] = jsonschema.Draft7Validator(schema)
    return spec["names"]["kind"], served


def schema_errors(validator, document) -> list:
    return [f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
            for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]


# ------------------------------------------------------------------------------------------
# Helpers for the cross-file checks


def option_value(args, name):
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def labels_match(selector: dict, labels: dict) -> bool:
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def resolve_port(container: dict, port):
    if isinstance(port, int):
        return port
    for declared in container.get("ports", []) or []:
        if declared.get("name") == port:
            return declared.get("containerPort")
    return None


def probes(container: dict):
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container.get(kind)
        if probe:
            yield kind, probe


def container_settings(container: dict, objects_by_kind: dict) -> set:
    """Setting names a container sees: env, and the keys of the Secrets and ConfigMaps it imports."""
    names = {env["name"] for env in container.get("env", []) or []}
    for env_from in container.get("envFrom", []) or []:
        for ref_key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            ref = env_from.get(ref_key)
            if ref:
                obj = objects_by_kind.get(kind, {}).get(ref.get("name"))
                if obj:
                    names.update((obj.get("data") or {}).keys())
                    names.update((obj.get("stringData") or {}).keys())
    return names


def env_value(container: dict, name: str):
    for env in container.get("env", []) or []:
        if env["name"] == name:
            return env.get("value")
    return None


def compose_environment(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def compose_args(service: dict) -> list:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def compose_volume_binds(service: dict):
    for volume in service.get("volumes", []) or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                yield volume["source"], volume["target"]
        else:
            parts = volume.split(":")
            if len(parts) >= 2 and (parts[0].startswith(".") or parts[0].startswith("/")):
                yield parts[0], parts[1]


def expand_default(value: str) -> str:
    """Compose interpolation, enough for the checks: ${VAR:-default} and ${VAR-default} give the default."""
    return re.sub(r"\$\{[A-Z0-9_]+:?-([^}]*)\}", r"\1", value) if isinstance(value, str) else value


# ------------------------------------------------------------------------------------------
# The checks


class Validation:
    def __init__(self, root: Path, kubernetes_version: str, use_kubectl: bool = True):
        self.root = root
        self.kubernetes_version = kubernetes_version
        self.use_kubectl = use_kubectl
        self.results = Results()
        self.objects = []  # the rendered kustomization
        self.optional = []  # deploy/kubernetes/optional/*.yaml, not in the kustomization
        self.compose = None

    # Each check runs even when another failed; a check that cannot run says why and fails.
    def run(self) -> Results:
        for name, check in [
            ("kustomize", self.check_render),
            ("kubernetes-schema", self.check_kubernetes_schema),
            ("crd-schema", self.check_crd_schema),
            ("compose-schema", self.check_compose_schema),
            ("env-names", self.check_env_names),
            ("probe-paths", self.check_probe_paths),
            ("topology-copy", self.check_topology),
            ("broker-and-table-names", self.check_names),
            ("metrics-ports", self.check_metrics_ports),
            ("service-monitor", self.check_service_monitor),
            ("references", self.check_references),
            ("commands", self.check_commands),
            ("keda", self.check_keda),
            ("lifecycle", self.check_lifecycle),
            ("security", self.check_security),
            ("labels", self.check_labels),
            ("secret-placeholders", self.check_secret_placeholders),
            ("compose-wiring", self.check_compose_wiring),
        ]:
            try:
                before = len(self.results.failed.get(name, []))
                detail = check(name)
                if len(self.results.failed.get(name, [])) == before:
                    self.results.ok(name, detail)
            except CheckFailure as error:
                self.results.fail(name, str(error))
            except Exception as error:  # a check that crashed is a failed check, with its reason
                self.results.fail(name, f"{type(error).__name__}: {error}")
        return self.results

    def fail(self, name, message):
        self.results.fail(name, message)

    # -- rendering and schemas ----------------------------------------------------------------

    def all_objects(self):
        return self.objects + self.optional

    def check_render(self, name):
        directory = self.root / KUSTOMIZE_DIR
        self.objects = render_kustomization(directory)
        for path in sorted((self.root / OPTIONAL_DIR).glob("*.yaml")):
            self.optional.extend(load_docs(path))
        self.compose = yaml.safe_load((self.root / COMPOSE_FILE).read_text(encoding="utf-8"))
        summary = f"{len(self.objects)} objects rendered from {KUSTOMIZE_DIR}, {len(self.optional)} optional"
        if not self.use_kubectl:
            return summary + " (kubectl comparison skipped)"
        reference, how = kubectl_render(directory)
        if reference is None:
            return f"{summary} ({how})"
        key = lambda o: (o.get("apiVersion"), o.get("kind"), o.get("metadata", {}).get("name"))
        ours, theirs = {key(o): o for o in self.objects}, {key(o): o for o in reference}
        for missing in sorted(set(theirs) - set(ours), key=str):
            self.fail(name, f"kubectl kustomize renders {missing} and this script does not")
        for extra in sorted(set(ours) - set(theirs), key=str):
            self.fail(name, f"this script renders {extra} and kubectl kustomize does not")
        for common in sorted(set(ours) & set(theirs), key=str):
            if ours[common] != theirs[common]:
                self.fail(name, f"{common[1]}/{common[2]} differs from kubectl kustomize's rendering")
        return f"{summary}; identical to `kubectl kustomize` ({how})"

    def check_kubernetes_schema(self, name):
        count = 0
        for obj in self.all_objects():
            if obj.get("kind") in CRD_FILES:
                continue
            validator, version = kubernetes_validator(obj["kind"], obj["apiVersion"], self.kubernetes_version)
            if validator is None:
                self.fail(name, f"{ident(obj)}: no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {version}")
                continue
            for error in schema_errors(validator, obj):
                self.fail(name, f"{ident(obj)}: {error}")
            count += 1
        return f"{count} built-in objects valid against Kubernetes {self.kubernetes_version} schemas, strict (unknown fields fail)"

    def check_crd_schema(self, name):
        count = 0
        for obj in self.all_objects():
            if obj.get("kind") not in CRD_FILES:
                continue
            kind, served = crd_validator(str(self.root), obj["kind"])
            validator = served.get(obj.get("apiVersion"))
            if validator is None:
                self.fail(name, f"{ident(obj)}: apiVersion {obj.get('apiVersion')} is not served by the CRD (served: {sorted(served)})")
                continue
            if not dig(obj, "metadata", "name"):
                self.fail(name, f"{ident(obj)}: no metadata.name")
            for error in schema_errors(validator, obj):
                self.fail(name, f"{ident(obj)}: {error}")
            count += 1
        kinds = {o["kind"] for o in self.objects}
        for kind in CRD_FILES:
            if kind not in kinds:
                self.fail(name, f"no {kind} in the kustomization")
        return f"{count} custom resources valid against the vendored CRDs' openAPIV3Schema (unknown fields fail)"

    def check_compose_schema(self, name):
        schema = json.loads((self.root / COMPOSE_SCHEMA).read_text(encoding="utf-8"))
        # The schema names draft-07 without the trailing "#" jsonschema looks up: say it here.
        draft = jsonschema.Draft7Validator if "draft-07" in schema.get("$schema", "") else jsonschema.validators.validator_for(schema)
        validator = draft(schema)
        for error in schema_errors(validator, self.compose):
            self.fail(name, f"{COMPOSE_FILE}: {error}")
        return f"{COMPOSE_FILE} valid against the Compose specification's schema"

    # -- cross-file invariants ----------------------------------------------------------------

    def check_env_names(self, name):
        documented = readme_settings(self.root)
        if not documented:
            raise CheckFailure(f"no `TSYNC_` rows found in {README}'s configuration table")
        used = 0
        for path in manifest_files(self.root):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for setting in re.findall(r"\bTSYNC_[A-Z0-9_]+", line):
                    used += 1
                    if setting not in documented:
                        self.fail(name, f"{path.relative_to(self.root)}:{number}: {setting} is not in {README}'s configuration table")
        return f"{used} uses of TSYNC_* settings, all in {README}'s configuration table ({len(documented)} settings)"

    def check_probe_paths(self, name):
        paths, files = served_paths(self.root)
        used = set()
        for obj in self.all_objects():
            for container, _, where in containers_of(obj):
                for kind, probe in probes(container):
                    path = dig(probe, "httpGet", "path")
                    if path is None:
                        self.fail(name, f"{where}: {kind} is not an httpGet probe")
                        continue
                    used.add(path)
                    if path not in paths:
                        self.fail(name, f"{where}: {kind} on {path}, which the process does not serve (it serves {sorted(paths)}, per {', '.join(files)})")
        for service_name, service in (self.compose.get("services") or {}).items():
            test = " ".join(map(str, (service.get("healthcheck") or {}).get("test") or []))
            for path in re.findall(r"(/healthz[\w/]*|/metrics)", test):
                used.add(path)
                if path not in paths:
                    self.fail(name, f"compose service {service_name}: healthcheck on {path}, which the process does not serve")
        return f"probes use {sorted(used)}; served: {sorted(paths)} ({', '.join(files)})"

    def check_topology(self, name):
        repository = (self.root / TOPOLOGY).read_bytes()
        copy_path = self.root / KUSTOMIZE_DIR / "topology.json"
        if copy_path.read_bytes() != repository:
            self.fail(name, f"{KUSTOMIZE_DIR}/topology.json differs from {TOPOLOGY}: run `cp {TOPOLOGY} {KUSTOMIZE_DIR}/topology.json`")
        configmaps = {dig(o, "metadata", "name"): o for o in self.objects if o.get("kind") == "ConfigMap"}
        topology_maps = {n for n, o in configmaps.items() if "topology.json" in (o.get("data") or {})}
        for map_name in topology_maps:
            if configmaps[map_name]["data"]["topology.json"].encode("utf-8") != repository:
                self.fail(name, f"ConfigMap {map_name}'s topology.json differs from {TOPOLOGY}")
        if not topology_maps:
            self.fail(name, "no ConfigMap holds topology.json")
        base_names = {re.sub(r"-[a-z0-9]{10}$", "", n) for n in topology_maps}
        mounted = 0
        for obj in self.all_objects():
            for container, spec, where in containers_of(obj):
                value = env_value(container, "TSYNC_TOPOLOGY")
                args = [str(a) for a in container.get("args", []) or []]
                value = option_value(args, "--topology") or option_value(args, "--file") or value
                if value is None:
                    continue
                volumes = {v["name"]: v for v in spec.get("volumes", []) or []}
                found = False
                for mount in container.get("volumeMounts", []) or []:
                    cm = dig(volumes.get(mount["name"], {}), "configMap", "name")
                    if cm not in topology_maps and cm not in base_names:
                        continue
                    items = dig(volumes[mount["name"]], "configMap", "items")
                    keys = {i["path"]: i["key"] for i in items} if items else {"topology.json": "topology.json"}
                    if mount.get("subPath"):
                        found |= mount["mountPath"] == value and keys.get(mount["subPath"]) == "topology.json"
                    else:
                        found |= any(value == f"{mount['mountPath'].rstrip('/')}/{p}" and k == "topology.json" for p, k in keys.items())
                if not found:
                    self.fail(name, f"{where}: TSYNC_TOPOLOGY {value} is not topology.json mounted from the topology ConfigMap")
                mounted += 1
        compose_dir = (self.root / COMPOSE_FILE).parent
        for service_name, service in (self.compose.get("services") or {}).items():
            binds = list(compose_volume_binds(service))
            for source, target in binds:
                if Path(source).name == "topology.json" or target.endswith("topology.json"):
                    if (compose_dir / source).resolve() != (self.root / TOPOLOGY).resolve():
                        self.fail(name, f"compose service {service_name}: {target} is bound to {source}, not to the repository's {TOPOLOGY}")
            value = expand_default(compose_environment(service).get("TSYNC_TOPOLOGY"))
            if value and service.get("image", "").startswith("tearsheet-sync"):
                if not any(target == value and (compose_dir / source).resolve() == (self.root / TOPOLOGY).resolve() for source, target in binds):
                    self.fail(name, f"compose service {service_name}: TSYNC_TOPOLOGY {value} is not the repository's {TOPOLOGY} bound in")
                mounted += 1
        return f"{KUSTOMIZE_DIR}/topology.json and the ConfigMap are byte-identical to {TOPOLOGY}; {mounted} TSYNC_TOPOLOGY paths are that file, mounted"

    def check_names(self, name):
        topology = json.loads((self.root / TOPOLOGY).read_text(encoding="utf-8"))
        known = {e["name"] for e in topology.get("exchanges", [])} | {q["name"] for q in topology.get("queues", [])}
        prefixes = set()
        for policy in topology.get("policies", []):
            if policy.get("apply-to") in ("queues", "all"):
                literal = re.match(r"\^((?:[^\\.*+?()\[\]{}|^$]|\\\.)+)", policy["pattern"])
                if literal:
                    prefixes.add(literal.group(1).replace("\\.", "."))
        referenced = set()
        for path in manifest_files(self.root):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for token in re.findall(r"(?<![\w.-])tearsheet\.[A-Za-z0-9_.{}-]*[A-Za-z0-9_}-]|(?<![\w.-])tearsheet\.(?=\s|$|[\"'`),])", line):
                    referenced.add(token)
                    ok = token in known or any(token.startswith(p) or token == p.rstrip(".") for p in prefixes)
                    if not ok:
                        self.fail(name, f"{path.relative_to(self.root)}:{number}: {token} is no exchange or queue of {TOPOLOGY} (known: {sorted(known)}, session queues {sorted(prefixes)}*)")
        tables = schema_tables(self.root)
        queries = 0
        for obj in self.objects:
            if obj.get("kind") != "ScaledObject":
                continue
            for trigger in dig(obj, "spec", "triggers", default=[]):
                query = dig(trigger, "metadata", "query")
                if trigger.get("type") != "postgresql" or not query:
                    continue
                queries += 1
                used_tables = re.findall(r"\bFROM\s+(\w+)", query, re.I) + re.findall(r"\bJOIN\s+(\w+)", query, re.I)
                for table in used_tables:
                    if table not in tables:
                        self.fail(name, f"{ident(obj)}: query reads table {table}, which {MIGRATIONS} does not create")
                columns = set().union(*(tables.get(t, set()) for t in used_tables)) if used_tables else set()
                words = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b", re.sub(r"'[^']*'", "", query)))
                keywords = {"select", "from", "where", "and", "or", "not", "count", "null", "is", "as", "in", "join", "on", "sum", "now", "interval", "distinct"}
                for word in sorted(words - keywords - set(used_tables)):
                    if word not in columns:
                        self.fail(name, f"{ident(obj)}: query uses {word}, no column of {used_tables} in {MIGRATIONS}")
        if queries == 0:
            self.fail(name, "no postgresql trigger query found to check against the schema")
        return f"broker names {sorted(referenced) or '(none)'} are in {TOPOLOGY}; {queries} KEDA query's tables and columns exist in {MIGRATIONS}"

    def check_metrics_ports(self, name):
        checked = 0
        for obj in self.all_objects():
            for container, _, where in containers_of(obj):
                args = [str(a) for a in container.get("args", []) or []]
                port = option_value(args, "--metrics-port")
                declared = {p.get("name"): p.get("containerPort") for p in container.get("ports", []) or []}
                if port is None:
                    if any(True for _ in probes(container)) or "metrics" in declared:
                        self.fail(name, f"{where}: probes or a metrics port but no --metrics-port in its args")
                    continue
                port = int(port)
                checked += 1
                if declared.get("metrics") != port:
                    self.fail(name, f"{where}: --metrics-port {port} but containerPort named metrics is {declared.get('metrics')}")
                for kind, probe in probes(container):
                    target = resolve_port(container, dig(probe, "httpGet", "port"))
                    if target != port:
                        self.fail(name, f"{where}: {kind} on port {dig(probe, 'httpGet', 'port')} ({target}), not --metrics-port {port}")
                if container.get("livenessProbe") is None or container.get("readinessProbe") is None:
                    self.fail(name, f"{where}: serves /metrics on {port} but lacks a liveness or readiness probe")
        # Compose: one port per network namespace; what a namespace's owner publishes is served there.
        services = self.compose.get("services") or {}
        namespaces = {}
        for service_name, service in services.items():
            mode = service.get("network_mode", "")
            owner = mode.split(":", 1)[1] if mode.startswith("service:") else service_name
            args = compose_args(service)
            for option in ("--metrics-port", "--port"):
                value = option_value(args, option)
                if value is not None:
                    checked += 1
                    namespaces.setdefault(owner, []).append((int(value), service_name))
        for owner, ports in namespaces.items():
            seen = {}
            for port, service_name in ports:
                if port in seen:
                    self.fail(name, f"compose: {service_name} and {seen[port]} both listen on {port} in the network namespace of {owner}")
                seen[port] = service_name
            for published in services.get(owner, {}).get("ports", []) or []:
                text = str(published.get("target") if isinstance(published, dict) else published)
                target = int(text.split(":")[-1].split("/")[0])
                if target not in seen:
                    self.fail(name, f"compose: {owner} publishes {target}, which nothing in its network namespace listens on")
        return f"{checked} --metrics-port/--port values match their containerPort, probes and published ports, none shared"

    def check_service_monitor(self, name):
        services = [o for o in self.objects if o.get("kind") == "Service"]
        monitors = [o for o in self.objects if o.get("kind") == "ServiceMonitor"]
        pods = [(t, o) for o in self.objects for t, _ in pod_templates(o)]
        metric_services = [s for s in services if any(p.get("name") == "metrics" for p in dig(s, "spec", "ports", default=[]))]
        if not monitors:
            raise CheckFailure("no ServiceMonitor")
        for service in services:
            selector = dig(service, "spec", "selector", default={})
            matched = [(t, o) for t, o in pods if selector and all(dig(t, "metadata", "labels", default={}).get(k) == v for k, v in selector.items())]
            if len(matched) != 1:
                self.fail(name, f"{ident(service)}: selector {selector} matches {len(matched)} pod templates, not 1")
                continue
            template, owner = matched[0]
            for port in dig(service, "spec", "ports", default=[]):
                resolved = [resolve_port(c, port.get("targetPort", port.get("port"))) for c in dig(template, "spec", "containers", default=[])]
                if not any(resolved):
                    self.fail(name, f"{ident(service)}: targetPort {port.get('targetPort')} is no port of {ident(owner)}'s containers")
        for monitor in monitors:
            selector = dig(monitor, "spec", "selector", default={})
            selected = [s for s in services if labels_match(selector, dig(s, "metadata", "labels", default={}))]
            for service in metric_services:
                if service not in selected:
                    self.fail(name, f"{ident(monitor)}: selector does not match {ident(service)} (labels {dig(service, 'metadata', 'labels')})")
            if not selected:
                self.fail(name, f"{ident(monitor)}: selector matches no Service")
            for endpoint in dig(monitor, "spec", "endpoints", default=[]):
                for service in selected:
                    if endpoint.get("port") not in {p.get("name") for p in dig(service, "spec", "ports", default=[])}:
                        self.fail(name, f"{ident(monitor)}: endpoint port {endpoint.get('port')!r} is not a port name of {ident(service)}")
        return f"{len(monitors)} ServiceMonitor selects {sorted(dig(s, 'metadata', 'name') for s in metric_services)} by labels and port name; every Service selects one pod template and a declared port"

    def check_references(self, name):
        by_kind = {}
        for obj in self.objects:
            by_kind.setdefault(obj["kind"], {})[dig(obj, "metadata", "name")] = obj
        configmaps = set(by_kind.get("ConfigMap", {}))
        base_configmaps = configmaps | {re.sub(r"-[a-z0-9]{10}$", "", n) for n in configmaps}
        count = 0
        for origin, objects, maps in (("", self.objects, configmaps), ("optional ", self.optional, base_configmaps)):
            for obj in objects:
                for template, where in pod_templates(obj):
                    spec = template.get("spec", {})
                    account = spec.get("serviceAccountName")
                    if account and account not in by_kind.get("ServiceAccount", {}):
                        self.fail(name, f"{origin}{where}: ServiceAccount {account} not defined")
                    for volume in spec.get("volumes", []) or []:
                        cm = dig(volume, "configMap", "name")
                        if cm and cm not in maps:
                            self.fail(name, f"{origin}{where}: ConfigMap {cm} not defined")
                        count += 1
                for container, _, where in containers_of(obj):
                    for env_from in container.get("envFrom", []) or []:
                        secret = dig(env_from, "secretRef", "name")
                        if secret and secret not in by_kind.get("Secret", {}):
                            self.fail(name, f"{origin}{where}: Secret {secret} not defined")
                        count += 1
                    args = [str(a) for a in container.get("args", []) or []]
                    command = args[0] if args else None
                    missing = REQUIRED_SETTINGS.get(command, set()) - container_settings(container, by_kind)
                    if missing:
                        self.fail(name, f"{origin}{where}: `{command}` needs {sorted(missing)}, not set")
        for pdb in by_kind.get("PodDisruptionBudget", {}).values():
            selector = dig(pdb, "spec", "selector")
            if not any(labels_match(selector, dig(t, "metadata", "labels", default={})) for o in self.objects for t, _ in pod_templates(o)):
                self.fail(name, f"{ident(pdb)}: selector matches no pod template")
            count += 1
        for auth in by_kind.get("TriggerAuthentication", {}).values():
            for ref in dig(auth, "spec", "secretTargetRef", default=[]):
                secret = by_kind.get("Secret", {}).get(ref.get("name"))
                keys = set((secret or {}).get("stringData", {}) or {}) | set((secret or {}).get("data", {}) or {})
                if secret is None or ref.get("key") not in keys:
                    self.fail(name, f"{ident(auth)}: Secret {ref.get('name')} key {ref.get('key')} not defined")
                count += 1
        return f"{count} references (ServiceAccount, ConfigMap, Secret and its keys, PDB selector) resolve; every container has the settings its command needs"

    def check_commands(self, name):
        commands, options = cli_vocabulary(self.root)
        used = 0
        argument_lists = [(where, [str(a) for a in c.get("args", []) or []]) for o in self.all_objects() for c, _, where in containers_of(o)]
        argument_lists += [(f"compose service {n}", compose_args(s)) for n, s in (self.compose.get("services") or {}).items()
                           if str(s.get("image", "")).startswith("tearsheet-sync")]
        for where, args in argument_lists:
            if not args:
                self.fail(name, f"{where}: no arguments (the image's entrypoint is the command line; args name the subcommand)")
                continue
            if args[0] not in commands and args[0] != "--help":
                self.fail(name, f"{where}: {args[0]} is not a subcommand of tearsheet-sync ({sorted(commands)})")
            for arg in args:
                flag = arg.split("=", 1)[0]
                if flag.startswith("--"):
                    used += 1
                    if flag not in options:
                        self.fail(name, f"{where}: {flag} is not an option of tearsheet-sync")
        return f"{len(argument_lists)} command lines use declared subcommands and {used} declared options (read from {CLI_SOURCES})"

    def check_keda(self, name):
        max_sessions_default = worker_max_sessions(self.root)
        deployments = {dig(o, "metadata", "name"): o for o in self.objects if o.get("kind") == "Deployment"}
        auths = {dig(o, "metadata", "name") for o in self.objects if o.get("kind") == "TriggerAuthentication"}
        scaled = [o for o in self.objects if o.get("kind") == "ScaledObject"]
        if not scaled:
            raise CheckFailure("no ScaledObject")
        for obj in scaled:
            spec = obj["spec"]
            target = deployments.get(dig(spec, "scaleTargetRef", "name"))
            if target is None or dig(spec, "scaleTargetRef", "kind", default="Deployment") != "Deployment":
                self.fail(name, f"{ident(obj)}: scaleTargetRef {spec.get('scaleTargetRef')} is not a Deployment of the kustomization")
                continue
            worker = [c for c, _, _ in containers_of(target) if (c.get("args") or [None])[0] == "work"]
            if not worker:
                self.fail(name, f"{ident(obj)}: scales {ident(target)}, which does not run `work`")
                continue
            if "replicas" in target["spec"]:
                self.fail(name, f"{ident(target)}: sets replicas, which every apply would write over KEDA's count")
            max_sessions = int(option_value([str(a) for a in worker[0]["args"]], "--max-sessions") or max_sessions_default)
            for trigger in spec.get("triggers", []):
                ref = dig(trigger, "authenticationRef", "name")
                if ref and ref not in auths:
                    self.fail(name, f"{ident(obj)}: authenticationRef {ref} is not a TriggerAuthentication of the kustomization")
                if trigger.get("type") == "postgresql":
                    target_value = float(dig(trigger, "metadata", "targetQueryValue", default="0"))
                    if target_value != max_sessions:
                        self.fail(name, f"{ident(obj)}: targetQueryValue {target_value:g} is not the worker's --max-sessions ({max_sessions})")
            low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
            if not 0 <= low <= high:
                self.fail(name, f"{ident(obj)}: minReplicaCount {low} / maxReplicaCount {high}")
            if dig(spec, "advanced", "horizontalPodAutoscalerConfig", "behavior", "scaleDown", "stabilizationWindowSeconds", default=0) < 60:
                self.fail(name, f"{ident(obj)}: scale-down stabilization under 60 s: a rebalancing fleet would flap")
        return f"ScaledObject scales the `work` Deployment (no replicas field) with targetQueryValue = --max-sessions ({max_sessions_default}), a defined TriggerAuthentication and a scale-down stabilization window"

    def check_lifecycle(self, name):
        timeout = bullhorn_request_timeout(self.root)
        needed = timeout + 30
        for obj in self.all_objects():
            for template, where in pod_templates(obj):
                commands = [(c.get("args") or [None])[0] for c in template["spec"].get("containers", [])]
                grace = template["spec"].get("terminationGracePeriodSeconds", 30)
                if "work" in commands and grace < needed:
                    self.fail(name, f"{where}: terminationGracePeriodSeconds {grace} < Bullhorn request timeout {timeout} s + 30 s of drain")
                if obj.get("kind") == "Deployment" and ("publish" in commands or "depth" in commands):
                    if obj["spec"].get("replicas", 1) != 1 or dig(obj, "spec", "strategy", "type") != "Recreate":
                        self.fail(name, f"{where}: the publisher and the monitor run as one replica with strategy Recreate")
        for service_name, service in (self.compose.get("services") or {}).items():
            if (compose_args(service) or [None])[0] == "work":
                grace = service.get("stop_grace_period", "10s")
                seconds = int(re.match(r"(\d+)", str(grace)).group(1)) * (60 if str(grace).endswith("m") else 1)
                if seconds < needed:
                    self.fail(name, f"compose service {service_name}: stop_grace_period {grace} < {needed}s")
        return f"workers get at least {needed} s to drain (Bullhorn request timeout {timeout} s + 30 s); publisher and monitor: 1 replica, Recreate"

    def check_security(self, name):
        count = 0
        for obj in self.all_objects():
            for template, where in pod_templates(obj):
                pod = template["spec"].get("securityContext", {})
                if pod.get("runAsNonRoot") is not True:
                    self.fail(name, f"{where}: pod securityContext.runAsNonRoot is not true")
                if dig(pod, "seccompProfile", "type") != "RuntimeDefault":
                    self.fail(name, f"{where}: pod seccompProfile is not RuntimeDefault")
                if template["spec"].get("automountServiceAccountToken") is not False:
                    self.fail(name, f"{where}: automountServiceAccountToken is not false")
            for container, _, where in containers_of(obj):
                count += 1
                context = container.get("securityContext", {})
                if context.get("readOnlyRootFilesystem") is not True:
                    self.fail(name, f"{where}: readOnlyRootFilesystem is not true")
                if context.get("allowPrivilegeEscalation") is not False:
                    self.fail(name, f"{where}: allowPrivilegeEscalation is not false")
                if "ALL" not in (dig(context, "capabilities", "drop", default=[]) or []):
                    self.fail(name, f"{where}: capabilities do not drop ALL")
                if not dig(container, "resources", "limits", "memory") or not dig(container, "resources", "requests", "memory"):
                    self.fail(name, f"{where}: no memory request and limit")
        for service_name, service in (self.compose.get("services") or {}).items():
            if not str(service.get("image", "")).startswith("tearsheet-sync"):
                continue
            count += 1
            user = str(service.get("user", "0")).split(":")[0]
            if user in ("0", "root"):
                self.fail(name, f"compose service {service_name}: runs as root")
            if service.get("read_only") is not True or "ALL" not in (service.get("cap_drop") or []):
                self.fail(name, f"compose service {service_name}: not read_only with cap_drop ALL")
            if service.get("pull_policy") != "never":
                self.fail(name, f"compose service {service_name}: pull_policy is not never (a same-named public image could be pulled)")
        return f"{count} containers: non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp, memory bounded"

    def check_labels(self, name):
        key, value = PART_OF
        for obj in self.objects:
            if dig(obj, "metadata", "labels", key) != value:
                self.fail(name, f"{ident(obj)}: no label {key}: {value}")
            for template, where in pod_templates(obj):
                if dig(template, "metadata", "labels", key) != value:
                    self.fail(name, f"{where}: pod template without label {key}: {value}")
            if dig(obj, "metadata", "namespace"):
                self.fail(name, f"{ident(obj)}: sets a namespace; the base is namespace-agnostic")
        return f"every object and pod template carries {key}: {value}; no object names a namespace"

    def check_secret_placeholders(self, name):
        count = 0
        for obj in self.objects:
            if obj.get("kind") != "Secret":
                continue
            if obj.get("type") != "Opaque" or obj.get("data"):
                self.fail(name, f"{ident(obj)}: expected type Opaque with stringData only")
            for key, value in (obj.get("stringData") or {}).items():
                count += 1
                if "CHANGE-ME" not in str(value):
                    self.fail(name, f"{ident(obj)}: {key} does not hold a CHANGE-ME placeholder (real secrets never go in the base)")
        return f"{count} Secret values are CHANGE-ME placeholders"

    def check_compose_wiring(self, name):
        services = self.compose.get("services") or {}
        compose_dir = (self.root / COMPOSE_FILE).parent
        for service_name, service in services.items():
            mode = service.get("network_mode", "")
            if mode.startswith("service:"):
                if mode.split(":", 1)[1] not in services:
                    self.fail(name, f"{service_name}: network_mode {mode} names no service")
                if service.get("ports"):
                    self.fail(name, f"{service_name}: publishes ports while sharing {mode}'s network (Compose refuses it)")
            depends = service.get("depends_on") or {}
            for dependency, how in (depends.items() if isinstance(depends, dict) else [(d, {}) for d in depends]):
                other = services.get(dependency)
                if other is None:
                    self.fail(name, f"{service_name}: depends on {dependency}, which is no service")
                    continue
                condition = (how or {}).get("condition", "service_started")
                if condition == "service_healthy" and not other.get("healthcheck"):
                    self.fail(name, f"{service_name}: waits for {dependency} to be healthy, which has no healthcheck")
                if condition == "service_completed_successfully" and other.get("restart", "no") != "no":
                    self.fail(name, f"{service_name}: waits for {dependency} to complete, which restarts")
            for source, _ in compose_volume_binds(service):
                if not (compose_dir / source).exists():
                    self.fail(name, f"{service_name}: bind source {source} does not exist")
        # Credentials and definitions: what the fleet logs in with is what the servers create.
        rabbit = services.get("rabbitmq", {})
        conf = {}
        definitions = {}
        for source, target in compose_volume_binds(rabbit):
            path = compose_dir / source
            if target.startswith("/etc/rabbitmq/conf.d/"):
                for line in path.read_text(encoding="utf-8").splitlines():
                    if "=" in line and not line.lstrip().startswith("#"):
                        key, value = (part.strip() for part in line.split("=", 1))
                        conf[key] = value
            else:
                definitions[target] = path
        load = conf.get("load_definitions")
        if load is None:
            raise CheckFailure("rabbitmq: no load_definitions in its conf.d files")
        files = sorted((t, p) for t, p in definitions.items() if t.startswith(load.rstrip("/") + "/"))
        if not any(p.resolve() == (self.root / TOPOLOGY).resolve() for _, p in files):
            self.fail(name, f"rabbitmq: {TOPOLOGY} is not among the definitions loaded from {load}")
        vhosts, users, permitted = set(), {}, set()
        topology_vhosts = set()
        for target, path in files:
            document = json.loads(path.read_text(encoding="utf-8"))
            if path.resolve() == (self.root / TOPOLOGY).resolve():
                topology_vhosts = {item["vhost"] for key in ("exchanges", "queues", "bindings", "policies") for item in document.get(key, [])}
                missing_vhosts = topology_vhosts - vhosts
                if missing_vhosts:
                    self.fail(name, f"rabbitmq: {target} uses virtual hosts {sorted(missing_vhosts)} that no earlier definitions file creates (RabbitMQ 3.10 seeds none when it loads definitions)")
            vhosts |= {v["name"] for v in document.get("vhosts", [])}
            users.update({u["name"]: u for u in document.get("users", [])})
            permitted |= {(p["user"], p["vhost"]) for p in document.get("permissions", [])}
        from urllib.parse import unquote, urlsplit
        postgres_env = compose_environment(services.get("postgres", {}))
        for service_name, service in services.items():
            env = compose_environment(service)
            for setting in ("TSYNC_AMQP_URL", "TSYNC_MANAGEMENT_URL"):
                if setting not in env:
                    continue
                url = urlsplit(expand_default(env[setting]))
                user = users.get(url.username)
                if user is None or user.get("password") != url.password:
                    self.fail(name, f"{service_name}: {setting} logs in as {url.username!r}, not a user (with that password) of the broker's definitions")
                vhost = unquote(url.path[1:]) if setting == "TSYNC_AMQP_URL" and len(url.path) > 1 else "/"
                if (url.username, vhost) not in permitted:
                    self.fail(name, f"{service_name}: {setting}: user {url.username!r} has no permissions on virtual host {vhost!r}")
            if "TSYNC_DATABASE_URL" in env and postgres_env:
                url = urlsplit(expand_default(env["TSYNC_DATABASE_URL"]))
                expected = (postgres_env.get("POSTGRES_USER"), postgres_env.get("POSTGRES_PASSWORD"), postgres_env.get("POSTGRES_DB"))
                if (url.username, url.password, url.path.lstrip("/")) != expected:
                    self.fail(name, f"{service_name}: TSYNC_DATABASE_URL's user, password or database is not the postgres service's")
        return f"{len(services)} services: dependencies wait on healthchecks and one-shots, shared namespaces publish nothing, binds exist; RabbitMQ loads {[t for t, _ in files]} ({len(users)} user(s) for the fleet's URLs), PostgreSQL's credentials match"


# ------------------------------------------------------------------------------------------
# Self-test: break a copy, expect the right check to say so

COPIED = [README, TOPOLOGY, CLI_SOURCES, MIGRATIONS, BULLHORN_CONFIGURATION, KUSTOMIZE_DIR, "deploy/compose"]

MUTATIONS = [
    # (what, file, old, new, check expected to fail, text its message must contain)
    ("misspelt setting name", "deploy/kubernetes/worker.yaml", "name: TSYNC_LOG_FORMAT", "name: TSYNC_LOG_FROMAT", "env-names", "TSYNC_LOG_FROMAT"),
    ("misspelt setting in compose", "deploy/compose/compose.yaml", "TSYNC_LOG_LEVEL: info", "TSYNC_LOGLEVEL: info", "env-names", "TSYNC_LOGLEVEL"),
    ("probe on a path not served", "deploy/kubernetes/worker.yaml", "path: /healthz/live", "path: /healthz/livez", "probe-paths", "/healthz/livez"),
    ("unknown field in a Deployment", "deploy/kubernetes/worker.yaml", "terminationGracePeriodSeconds: 120", "terminationGracePeriod: 120", "kubernetes-schema", "terminationGracePeriod"),
    ("unknown field in a ScaledObject", "deploy/kubernetes/keda.yaml", "maxReplicaCount: 20", "maxReplicas: 20", "crd-schema", "maxReplicas"),
    ("unknown field in a ServiceMonitor", "deploy/kubernetes/servicemonitor.yaml", "scrapeTimeout: 10s", "scrapeTimeoutSeconds: 10", "crd-schema", "scrapeTimeoutSeconds"),
    ("unknown key in compose", "deploy/compose/compose.yaml", "stop_grace_period: 60s", "stop_grace_periods: 60s", "compose-schema", "stop_grace_periods"),
    ("topology copy out of date", "deploy/kubernetes/topology.json", '"delivery-limit": 20', '"delivery-limit": 5', "topology-copy", "differs"),
    ("TSYNC_TOPOLOGY not the mounted file", "deploy/kubernetes/publisher.yaml", "value: /etc/tearsheet-sync/topology.json", "value: /etc/tsync/topology.json", "topology-copy", "/etc/tsync/topology.json"),
    ("a queue name topology.json lacks", "deploy/compose/compose.yaml", "grep -qxF tearsheet.dead-letter", "grep -qxF tearsheet.deadletter", "broker-and-table-names", "tearsheet.deadletter"),
    ("KEDA query on a table the schema lacks", "deploy/kubernetes/keda.yaml", "FROM session_work", "FROM session_works", "broker-and-table-names", "session_works"),
    ("KEDA query on a column the schema lacks", "deploy/kubernetes/keda.yaml", "published_seq > drained_seq\"", "published_sequence > drained_seq\"", "broker-and-table-names", "published_sequence"),
    ("--metrics-port other than the probes' port", "deploy/kubernetes/worker.yaml", '"--metrics-port", "9090"', '"--metrics-port", "9091"', "metrics-ports", "9091"),
    ("two metrics ports in one compose namespace", "deploy/compose/compose.yaml", '"--metrics-port", "9092"', '"--metrics-port", "9091"', "metrics-ports", "9091"),
    ("ServiceMonitor port name not on the Services", "deploy/kubernetes/servicemonitor.yaml", "- port: metrics", "- port: metric", "service-monitor", "'metric'"),
    ("ServiceMonitor selector missing a Service", "deploy/kubernetes/servicemonitor.yaml", 'values: ["worker", "publisher", "monitor"]', 'values: ["worker", "publisher"]', "service-monitor", "tearsheet-sync-monitor"),
    ("KEDA target other than --max-sessions", "deploy/kubernetes/keda.yaml", 'targetQueryValue: "16"', 'targetQueryValue: "10"', "keda", "--max-sessions"),
    ("Secret name misspelt in envFrom", "deploy/kubernetes/monitor.yaml", "name: tearsheet-sync\n          env:", "name: tearsheet-synk\n          env:", "references", "tearsheet-synk"),
    ("misspelt option", "deploy/kubernetes/publisher.yaml", '"--every", "1m"', '"--evry", "1m"', "commands", "--evry"),
    ("short grace period", "deploy/kubernetes/worker.yaml", "terminationGracePeriodSeconds: 120", "terminationGracePeriodSeconds: 30", "lifecycle", "terminationGracePeriodSeconds 30"),
    ("writable root file system", "deploy/kubernetes/worker.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "security", "readOnlyRootFilesystem"),
    ("a real value in the example Secret", "deploy/kubernetes/secret.yaml", '"CHANGE-ME-base64-of-32-random-bytes"', '"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="', "secret-placeholders", "TSYNC_SECRET_KEY"),
    ("broker definitions without the virtual host", "deploy/compose/rabbitmq/00-access.json", '{ "name": "/" }', '{ "name": "/other" }', "compose-wiring", "virtual hosts"),
    ("compose password out of step", "deploy/compose/compose.yaml", "amqp://tsync:tsync-dev-only@", "amqp://tsync:wrong@", "compose-wiring", "TSYNC_AMQP_URL"),
]


def self_test(root: Path, kubernetes_version: str) -> int:
    failures = 0
    baseline = Validation(root, kubernetes_version, use_kubectl=False).run().failed
    with tempfile.TemporaryDirectory(prefix="validate-manifests-") as scratch:
        for number, (what, rel, old, new, check, expected) in enumerate(MUTATIONS, 1):
            copy_root = Path(scratch) / f"case{number}"
            for item in COPIED:
                source, target = root / item, copy_root / item
                target.parent.mkdir(parents=True, exist_ok=True)
                if source.is_dir():
                    shutil.copytree(source, target)
                else:
                    shutil.copy2(source, target)
            path = copy_root / rel
            text = path.read_text(encoding="utf-8")
            if text.count(old) < 1:
                print(f"FAIL self-test: {what}: {rel} no longer contains {old!r}; update the mutation")
                failures += 1
                continue
            path.write_text(text.replace(old, new, 1), encoding="utf-8")
            failed = Validation(copy_root, kubernetes_version, use_kubectl=False).run().failed
            new_messages = [m for m in failed.get(check, []) if m not in baseline.get(check, [])]
            caught = [m for m in new_messages if expected in m]
            if caught:
                print(f"ok   self-test: {what} ({rel}) caught by {check}: {caught[0]}")
            else:
                print(f"FAIL self-test: {what} ({rel}) not caught by {check} (its new messages: {new_messages or 'none'})")
                failures += 1
    print(f"self-test: {len(MUTATIONS) - failures} of {len(MUTATIONS)} broken copies caught")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent, help="repository root")
    parser.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    parser.add_argument("--self-test", action="store_true", help="break copies of the files and expect each break caught")
    parser.add_argument("--no-kubectl", action="store_true", help="do not compare with `kubectl kustomize`")
    args = parser.parse_args()
    root = args.root.resolve()
    if args.self_test:
        return self_test(root, args.kubernetes_version)
    results = Validation(root, args.kubernetes_version, use_kubectl=not args.no_kubectl).run()
    for line in results.lines:
        print(line)
    failed = sorted(results.failed)
    total = len({line.split(":")[0][5:] for line in results.lines})
    print(f"validate-manifests: {total - len(failed)} of {total} checks passed" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

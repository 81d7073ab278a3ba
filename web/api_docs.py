"""/api/docs: the JSON API's routes as one small page that works offline.

FastAPI's own docs page loads Swagger UI from a CDN, so it is blank on a machine without the
internet. This page is written here from the app's own OpenAPI schema: each route's method,
path, summary and parameters (and its request body's fields), with no script and nothing
fetched from elsewhere. Served only where the schema is (without an access file).
"""

from __future__ import annotations

from html import escape
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")
STYLE = """
body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; max-width: 960px; margin: 2em auto;
       padding: 0 1em; line-height: 1.5; color: #1f2937; }
h1 { font-size: 1.5em; } h2 { font-size: 1.05em; margin: 1.6em 0 0.3em; }
.method { display: inline-block; min-width: 4.5em; font-weight: bold; color: #1d4ed8; }
code { background: #f3f4f6; padding: 1px 4px; border-radius: 3px; }
table { border-collapse: collapse; margin: 0.3em 0 0; font-size: 0.92em; }
th, td { border: 1px solid #e5e7eb; padding: 3px 8px; text-align: left; vertical-align: top; }
.summary { margin: 0.2em 0; }
"""


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A schema object, following one `$ref` into components."""
    ref = spec.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        found: Any = schema
        for part in ref[2:].split("/"):
            found = found.get(part, {}) if isinstance(found, dict) else {}
        return found if isinstance(found, dict) else {}
    return spec


def _type(schema: dict[str, Any], spec: dict[str, Any]) -> str:
    spec = _resolve(schema, spec)
    if "anyOf" in spec:
        return " | ".join(_type(schema, option) for option in spec["anyOf"])
    kind = spec.get("type", "")
    if kind == "array":
        return f"{_type(schema, spec.get('items', {}))}[]"
    return str(kind or spec.get("title", ""))


def _rows(schema: dict[str, Any], operation: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(name, where, type, description) of each parameter and body field of a route."""
    rows = []
    for parameter in operation.get("parameters", []):
        parameter = _resolve(schema, parameter)
        required = "，必填" if parameter.get("required") else ""
        rows.append(
            (
                parameter.get("name", ""),
                f"{parameter.get('in', '')}{required}",
                _type(schema, parameter.get("schema", {})),
                parameter.get("description", ""),
            )
        )
    content = operation.get("requestBody", {}).get("content", {})
    for media, body in content.items():
        fields = _resolve(schema, body.get("schema", {}))
        required = set(fields.get("required", []))
        for name, field in fields.get("properties", {}).items():
            rows.append(
                (
                    name,
                    f"body ({media}){'，必填' if name in required else ''}",
                    _type(schema, field),
                    _resolve(schema, field).get("description", ""),
                )
            )
    return rows


def api_docs_html(schema: dict[str, Any]) -> str:
    """The page listing every route of `schema` (an OpenAPI document)."""
    sections = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            summary = operation.get("summary", "")
            description = (operation.get("description") or "").strip()
            parts = [
                f'<h2><span class="method">{method.upper()}</span> <code>{escape(path)}</code>'
                "</h2>",
                f'<p class="summary">{escape(summary)}</p>' if summary else "",
                f"<p>{escape(description)}</p>" if description else "",
            ]
            rows = _rows(schema, operation)
            if rows:
                cells = "".join(
                    "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>"
                    for row in rows
                )
                parts.append(
                    "<table><tr><th>参数</th><th>位置</th><th>类型</th><th>说明</th></tr>"
                    f"{cells}</table>"
                )
            sections.append(f'<section class="route">{"".join(parts)}</section>')
    title = escape(schema.get("info", {}).get("title", "API"))
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{STYLE}</style></head><body>"
        f"<h1>{title}</h1>"
        "<p>每个路由的方法、路径、说明和参数，取自本程序的 OpenAPI 描述"
        '（<a href="openapi.json">/api/openapi.json</a>）。请求和回答都是 JSON；'
        "查询参数里的中文要按 URL 编码（例如 <code>?base=%E4%BA%BA%E4%BA%8B</code>，"
        "或 <code>curl --get --data-urlencode base=人事</code>）。</p>"
        f"{''.join(sections)}</body></html>"
    )

#!/usr/bin/python3
"""Checks recorded HTTP exchanges against docs/openapi.json (standard library only).

usage: openapi_check.py OPENAPI.json DIR [SCOPE]

DIR holds, per exchange NAME: NAME.meta ("METHOD PATH", then "undocumented"
for a request made outside the document on purpose), NAME.hdr (the
response's status line and headers, as curl -D writes them) and NAME.body.
Every exchange must match a documented path, method and status, with the
documented media type, the required headers and a body valid against the
schema.  Every documented (path, method, status) must have been seen; with SCOPE (a
regular expression), only those of the paths it matches (each test script
checks the endpoints it exercises).
Prints "ok - ..." or "not ok - ..." per check (unnumbered: the calling TAP script
numbers them); exits 1 on a failure.
"""
import json
import os
import re
import sys


def resolve(doc, schema):
    while "$ref" in schema:
        ref = schema["$ref"]
        node = doc
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def validate(doc, schema, value, where):
    """Errors (a list of strings) of value against an OpenAPI 3.0 schema."""
    schema = resolve(doc, schema)
    errs = []
    if value is None:
        if schema.get("nullable") or ("enum" in schema and None in schema["enum"]):
            return []
        if "type" in schema or "oneOf" not in schema:
            return [f"{where}: null where {schema.get('type', 'a value')} is expected"]
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not validate(doc, s, value, where)]
        if len(ok) != 1:
            return [f"{where}: matches {len(ok)} of the oneOf schemas, not exactly one"]
        return []
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t in types and not isinstance(value, types[t]):
        return [f"{where}: not a {t}"]
    if t == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{where}: not an integer"]
    if t == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return [f"{where}: not a number"]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1 << 30):
            errs.append(f"{where}: length out of range")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < schema.get("minimum", float("-inf")) or value > schema.get("maximum", float("inf")):
            errs.append(f"{where}: {value} out of range")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in value:
                errs.append(f"{where}: {k} missing")
        for k, v in value.items():
            if k in props:
                errs += validate(doc, props[k], v, f"{where}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{where}: {k} is not documented")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1 << 30):
            errs.append(f"{where}: {len(value)} items out of range")
        for i, v in enumerate(value):
            errs += validate(doc, schema.get("items", {}), v, f"{where}[{i}]")
    return errs


def match_path(doc, path):
    for template in doc["paths"]:
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(rx, path.split("?")[0]):
            return template
    return None


def main():
    doc = json.load(open(sys.argv[1]))
    d = sys.argv[2]
    n = 0
    failed = 0
    seen = set()
    names = sorted(f[:-5] for f in os.listdir(d) if f.endswith(".meta"))
    for name in names:
        meta = open(os.path.join(d, name + ".meta")).read().split()
        method, path = meta[:2]
        if "undocumented" in meta[2:]:
            # on purpose outside the document (an unknown path, a wrong method)
            continue
        hdr = open(os.path.join(d, name + ".hdr"), encoding="latin-1", newline="").read().split("\r\n\r\n")
        hdr = [h for h in hdr if h.strip()][-1].split("\r\n")
        status = hdr[0].split()[1]
        headers = {}
        for line in hdr[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = open(os.path.join(d, name + ".body"), "rb").read()
        errs = []
        template = match_path(doc, path)
        op = doc["paths"].get(template, {}).get(method.lower()) if template else None
        resp = op["responses"].get(status) if op else None
        if resp is None:
            errs.append(f"{method} {path} {status} is not documented")
        else:
            seen.add((template, method.lower(), status))
            ctype = headers.get("content-type", "").split(";")[0].strip()
            content = resp.get("content", {})
            if not content:
                # an answer documented without content (204): none sent
                if body:
                    errs.append(f"a body where none is documented ({len(body)} bytes)")
            elif ctype not in content:
                errs.append(f"content type {ctype!r} is not among {list(content)}")
            else:
                schema = content[ctype].get("schema", {})
                if ctype.endswith("json"):
                    try:
                        errs += validate(doc, schema, json.loads(body), "body")
                    except ValueError as e:
                        errs.append(f"body is not JSON: {e}")
            for hname, h in resp.get("headers", {}).items():
                h = resolve(doc, h)
                v = headers.get(hname.lower())
                if v is None:
                    if h.get("required"):
                        errs.append(f"header {hname} missing")
                    continue
                errs += validate(doc, h.get("schema", {}), v, f"header {hname}")
        n += 1
        if errs:
            failed += 1
            print(f"not ok - {name}: {method} {path} -> {status} as documented")
            for e in errs[:10]:
                print(f"#   {e}")
        else:
            print(f"ok - {name}: {method} {path} -> {status} as documented")
    missing = []
    scope = re.compile(sys.argv[3]) if len(sys.argv) > 3 else None
    for template, ops in doc["paths"].items():
        if scope and not scope.search(template):
            continue
        for m, op in ops.items():
            for status in op["responses"]:
                if (template, m, status) not in seen:
                    missing.append(f"{m.upper()} {template} {status}")
    n += 1
    if missing:
        failed += 1
        print(f"not ok - every documented answer was seen in the tests")
        print("#   never seen: " + ", ".join(missing))
    else:
        print(f"ok - every documented answer ({len(seen)}) was seen in the tests")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

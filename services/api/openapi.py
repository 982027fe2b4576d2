"""The hand-written OpenAPI 3.0 description served at /openapi.json (a test keeps it in sync)."""

from __future__ import annotations

import copy

from .params import MAX_LIMIT, MAX_OFFSET

_DATE = {
    "name": "date", "in": "path", "required": True,
    "description": "A processing date `YYYY-MM-DD` (a real calendar date) or `latest`.",
    "schema": {"type": "string", "pattern": r"^(\d{4}-\d{2}-\d{2}|latest)$"},
}
_NETWORK = {
    "name": "network", "in": "query", "required": False,
    "description": "Answered 404 unless it is this deployment's network.",
    "schema": {"type": "string"},
}
_PAGE = [
    {"name": "limit", "in": "query", "required": False,
     "description": "At most this many rows (default: all).",
     "schema": {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT}},
    {"name": "offset", "in": "query", "required": False,
     "description": "Skip this many rows first (default 0).",
     "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}},
]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "Malformed date or parameter"),
    "404": _json(_ref("Error"), "Unknown or not completely published date, or another network"),
    "500": _json(_ref("Error"), "Internal error: the description carries an id, and the "
                                "server log has the details under it"),
}
_CACHED = {
    "304": {"description": "Not modified (If-None-Match matched the ETag)"},
}


def _date_get(summary: str, schema: str, paged: bool) -> dict:
    parameters = [_DATE, _NETWORK, *(_PAGE if paged else [])]
    responses = {"200": _json(_ref(schema), summary), **_CACHED, **_ERRORS}
    return {"get": {"summary": summary, "parameters": parameters, "responses": responses}}


def _envelope(list_key: str, total_key: str, row: str) -> dict:
    return {
        "type": "object",
        "required": ["processing_date", "network", "window_days", "model_version", total_key,
                     list_key, "metadata"],
        "properties": {
            "processing_date": {"type": "string", "format": "date"},
            "network": {"type": "string"},
            "window_days": {"type": "integer"},
            "model_version": {"type": "string", "nullable": True},
            total_key: {"type": "integer", "description": "Rows in the whole date, also on a page"},
            list_key: {"type": "array", "items": _ref(row)},
            "metadata": _ref("EnvelopeMetadata"),
        },
    }


_SCORE = {"type": "number", "minimum": 0, "maximum": 1, "nullable": True,
          "description": "Exact float64 (shortest round-trip form)"}

SCHEMAS = {
    "Error": {"type": "object", "required": ["code", "name", "description"],
              "properties": {"code": {"type": "integer"}, "name": {"type": "string"},
                             "description": {"type": "string"}}},
    "AlertScore": {"type": "object", "properties": {"alert_id": {"type": "string"}, "score": _SCORE}},
    "AlertRank": {"type": "object", "properties": {"alert_id": {"type": "string"},
                                                   "rank": {"type": "integer", "minimum": 1},
                                                   "score": _SCORE}},
    "ClusterScore": {"type": "object", "properties": {"cluster_id": {"type": "string"},
                                                      "score": _SCORE}},
    "EnvelopeMetadata": {"type": "object", "required": ["processed_at"], "properties": {
        "processed_at": {"type": "string", "description": "metadata.json `timestamp` (ISO UTC)"},
        "model_versions": {"type": "object", "additionalProperties": {"type": "string"}},
        "model_github_url": {"type": "string",
                             "description": "Where the models' code lives (MODEL_GITHUB_URL)"},
        "alert_count": {"type": "integer"}, "cluster_count": {"type": "integer"}}},
    "AlertScores": _envelope("scores", "total_alerts", "AlertScore"),
    "AlertRankings": _envelope("rankings", "total_alerts", "AlertRank"),
    "ClusterScores": _envelope("scores", "total_clusters", "ClusterScore"),
    "Metadata": {"type": "object", "additionalProperties": True,
                 "description": "The date's metadata.json exactly as the processor wrote it",
                 "properties": {"processing_date": {"type": "string"}, "network": {"type": "string"},
                                "window_days": {"type": "integer"}, "timestamp": {"type": "string"},
                                "alert_count": {"type": "integer"},
                                "cluster_count": {"type": "integer"},
                                "model_versions": {"type": "object"}}},
    "Dates": {"type": "object", "required": ["dates", "latest"], "properties": {
        "dates": {"type": "array", "items": {"type": "string", "format": "date"},
                  "description": "Newest first"},
        "latest": {"type": "string", "format": "date", "nullable": True}}},
    "Health": {"type": "object", "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "output_dir_readable": {"type": "boolean"},
        "latest": {"type": "string", "nullable": True}, "network": {"type": "string"},
        "version": {"type": "string", "description": "the aml-miner package version serving"}}},
}

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "aml-miner result API", "version": "1.0.0",
             "description": "Pre-computed alert scores, alert rankings and cluster scores per "
                            "processing date. GET only; every error is JSON {code, name, description}."},
    "paths": {
        "/scores/alerts/{date}": _date_get("Alert scores of a date", "AlertScores", True),
        "/rankings/alerts/{date}": _date_get("Alert rankings of a date", "AlertRankings", True),
        "/scores/clusters/{date}": _date_get("Cluster scores of a date", "ClusterScores", True),
        "/metadata/{date}": _date_get("metadata.json of a date", "Metadata", False),
        "/dates": {"get": {"summary": "Published dates", "parameters": [_NETWORK],
                           "responses": {"200": _json(_ref("Dates"), "Published dates"), **_CACHED,
                                         "404": _ERRORS["404"]}}},
        "/health": {"get": {"summary": "Liveness and output folder check", "responses": {
            "200": _json(_ref("Health"), "Healthy"),
            "503": _json(_ref("Health"), "OUTPUT_DIR is not readable")}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {
            "200": {"description": "OpenAPI 3.0 document"}, **_CACHED}}},
    },
    "components": {"schemas": SCHEMAS},
}


def document(networks: tuple[str, ...]) -> dict:
    """The description for the configured networks: SPEC itself for one network; with several,
    `network` lists them (the first its default) and /health its `networks` map."""
    if len(networks) == 1:
        return SPEC
    spec = copy.deepcopy(SPEC)
    network = {**_NETWORK, "description": "Which network's results (default: the first "
                                          "configured); another one is answered 404.",
               "schema": {"type": "string", "enum": list(networks), "default": networks[0]}}
    for item in spec["paths"].values():
        parameters = item["get"].get("parameters", [])
        item["get"]["parameters"] = [network if p["name"] == "network" else p for p in parameters]
    health = spec["components"]["schemas"]["Health"]["properties"]
    health["networks"] = {"type": "object", "additionalProperties": {"type": "string",
                                                                     "nullable": True},
                          "description": "Each network's newest date (`latest` and `network` "
                                         "are the default network's)"}
    return spec

"""The OpenAPI 3.1 document of the serving app, published at ``/openapi.json``.

Written out by hand from the routes in ``app`` (the protocols are fixed by OIP v2 and
MLflow, not derived from Python types); the test suite fuzzes the server against it.
"""

from __future__ import annotations

from typing import Any

from .._version import __version__
from .protocols import MAX_JSON_DEPTH, OIP_DATATYPES

__all__ = ["openapi_document"]

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
_MLFLOW_ERROR = {
    "type": "object",
    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error_code", "message"],
}
_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype", "data"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": sorted(OIP_DATATYPES)},
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}


def _errors(schema: dict[str, Any], *codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed request",
        401: "Missing or wrong bearer token",
        404: "Unknown model or version",
        413: "Body over the size limit",
        415: "Unsupported content type",
        422: "Input does not match the model signature",
        500: "The model or the server failed",
        503: "Not ready",
    }
    return {
        str(c): {"description": text[c], "content": {"application/json": {"schema": schema}}}
        for c in codes
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}}
    }


def openapi_document(model: Any = None) -> dict[str, Any]:
    """The document; with a loaded model its name and columns fill in the examples."""
    name = model.name if model is not None else "model"
    columns = model.schema.names if model is not None else ["x0"]
    name_param = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "example": name,
    }
    version_param = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "The version being served; any other answers 404.",
        "example": str(model.version) if model is not None else "1",
    }
    bearer = [{"bearer": []}]
    infer_request = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string", "maxLength": 64},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": _TENSOR, "minItems": 1},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "enum": ["predict", "predict_proba"]}
                    },
                },
            },
        },
    }
    infer_example = {
        "inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [0.0]} for c in columns]
    }
    infer_response = {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": _TENSOR},
        },
    }
    health = {"type": "object"}
    infer_op = {
        "summary": "Predict (Open Inference Protocol v2)",
        "description": (
            "Each tensor's data is a flat list in row-major order, or lists nested once per "
            "dimension (never ragged), with as many values as its shape says; values must "
            "fit its datatype (INT8 from -128 to 127, ...; BOOL true or false; BYTES "
            f"strings); null is a missing value. JSON nesting deeper than {MAX_JSON_DEPTH} "
            "levels is refused (400)."
        ),
        "security": bearer,
        "parameters": [name_param],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": infer_request, "example": infer_example}},
        },
        "responses": {
            **_ok(infer_response),
            **_errors(_ERROR, 400, 401, 404, 413, 415, 422, 503),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"jupyter_mlops serving: {name}",
            "version": __version__,
            "description": "Open Inference Protocol v2 and MLflow scoring for a registered model.",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/v2/health/live": {
                "get": {"summary": "Liveness", "responses": _ok(health)},
            },
            "/v2/health/ready": {
                "get": {
                    "summary": "Readiness",
                    "responses": {**_ok(health), **_errors(health, 503)},
                },
            },
            "/v2": {
                "get": {
                    "summary": "Server metadata",
                    "security": bearer,
                    "responses": {**_ok({"type": "object"}), **_errors(_ERROR, 401)},
                }
            },
            "/v2/models/{name}": {
                "get": {
                    "summary": "Model metadata: its inputs and outputs",
                    "security": bearer,
                    "parameters": [name_param],
                    "responses": {**_ok({"type": "object"}), **_errors(_ERROR, 401, 404, 503)},
                }
            },
            "/v2/models/{name}/ready": {
                "get": {
                    "summary": "Model readiness",
                    "security": bearer,
                    "parameters": [name_param],
                    "responses": {**_ok({"type": "object"}), **_errors(_ERROR, 401, 404, 503)},
                }
            },
            "/v2/models/{name}/infer": {"post": infer_op},
            "/v2/models/{name}/versions/{version}": {
                "get": {
                    "summary": "Model metadata of the version being served",
                    "security": bearer,
                    "parameters": [name_param, version_param],
                    "responses": {**_ok({"type": "object"}), **_errors(_ERROR, 401, 404, 503)},
                }
            },
            "/v2/models/{name}/versions/{version}/ready": {
                "get": {
                    "summary": "Readiness of the version being served",
                    "security": bearer,
                    "parameters": [name_param, version_param],
                    "responses": {**_ok({"type": "object"}), **_errors(_ERROR, 401, 404, 503)},
                }
            },
            "/v2/models/{name}/versions/{version}/infer": {
                "post": {
                    **infer_op,
                    "summary": "Predict with the version being served (404 for another)",
                    "parameters": [name_param, version_param],
                }
            },
            "/v2/models/{name}/feedback": {
                "post": {
                    "summary": "Ground-truth labels for logged predictions",
                    "security": bearer,
                    "parameters": [name_param],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["request_ids", "labels"],
                                    "properties": {
                                        "request_ids": {
                                            "type": "array",
                                            "items": {"type": "string"},
                                        },
                                        "labels": {"type": "array"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        **_ok({"type": "object", "properties": {"stored": {"type": "integer"}}}),
                        **_errors(_ERROR, 400, 401, 404, 413, 415, 503),
                    },
                }
            },
            "/v2/models/{name}/flush": {
                "post": {
                    "summary": "Write the inference log now (predictions answered before "
                    "this request are stored when it returns)",
                    "security": bearer,
                    "parameters": [name_param],
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "properties": {
                                    "flushed": {"type": "boolean"},
                                    "written": {"type": "integer"},
                                    "logging": {"type": "boolean"},
                                },
                            }
                        ),
                        **_errors(_ERROR, 401, 404, 503),
                    },
                }
            },
            "/invocations": {
                "post": {
                    "summary": "Predict (MLflow scoring protocol)",
                    "security": bearer,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "dataframe_split": {
                                            "type": "object",
                                            "properties": {
                                                "columns": {
                                                    "type": "array",
                                                    "items": {"type": "string"},
                                                },
                                                "data": {
                                                    "type": "array",
                                                    "items": {"type": "array"},
                                                },
                                            },
                                        },
                                        "dataframe_records": {
                                            "type": "array",
                                            "items": {"type": "object"},
                                        },
                                        "instances": {"type": "array"},
                                        "inputs": {},
                                    },
                                },
                                "example": {
                                    "dataframe_split": {
                                        "columns": columns,
                                        "data": [[0.0] * len(columns)],
                                    }
                                },
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "required": ["predictions"],
                                "properties": {"predictions": {"type": "array"}},
                            }
                        ),
                        **_errors(_MLFLOW_ERROR, 400, 401, 413, 415, 422, 503),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "security": bearer,
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_errors(_ERROR, 401),
                    },
                }
            },
        },
    }

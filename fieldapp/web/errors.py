"""Error pages: every failure answers in the app's own style, never a bare 500."""
import json

from flask import current_app, render_template, request
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 413: "Content too large", 415: "Unsupported media type", 422: "Unprocessable content",
          429: "Too many requests", 500: "Internal server error"}


def problem(status, detail):
    """An RFC 9457 problem-details response."""
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail}
    headers = {"Content-Type": "application/problem+json"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fieldapp"'
    return json.dumps(body), status, headers


def wants_json():
    """API callers (devices, feeds, scripts) get JSON errors; people get pages."""
    return (
        request.is_json
        or request.path.startswith(("/api/", "/push/"))
        or request.accept_mimetypes.best == "application/json"
    )


def handle_http_error(error):
    """Render any HTTP error with its status and a plain message."""
    message = error.description or error.name
    if request.path.startswith("/api/v1/"):
        return problem(error.code, message)
    if wants_json():
        return {"error": message, "status": error.code}, error.code
    return render_template("errors.html", error=error, message=message), error.code


def handle_unexpected(error):
    """Log the cause; show the user a calm page without internals."""
    current_app.logger.exception("Unhandled error on %s %s", request.method, request.path)
    return handle_http_error(InternalServerError())


def handle_too_deep(error):
    """Data nested past Python's recursion limit is bad input, not a server fault.

    Python's json module raises RecursionError (not ValueError) for a deeply
    nested array such as 30,000 '[', so `get_json(silent=True)` and every
    `json.loads` of a form field let it through; it is refused here, once, for
    every route that reads JSON.
    """
    current_app.logger.warning("Refused input nested too deeply on %s %s", request.method, request.path)
    return handle_http_error(BadRequest("The data sent is nested too deeply."))


def init_app(app):
    """Register the handlers."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(RecursionError, handle_too_deep)
    app.register_error_handler(Exception, handle_unexpected)

"""The browsable API docs (/api/docs) work offline and behind the Great Firewall: the Swagger UI
files come from the `swagger-ui-bundle` package and are served by the app itself, never a CDN.

The folder's name carries Swagger UI's version (e.g. swagger-ui-4.15.5), and so do the asset URLs:
a browser may keep them for a year, and an upgrade of the package changes the URLs.
"""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = f"/api/docs/assets/{swagger_ui_path.name}/"
_ONE_YEAR = 365 * 24 * 3600

blp = Blueprint("docs_assets", __name__)


@blp.route(f"{ASSETS_URL}<path:filename>")
def swagger_ui_asset(filename: str) -> Response:
    """One Swagger UI file (script, stylesheet, icon); a name outside the folder answers 404."""
    return send_from_directory(str(swagger_ui_path), filename, max_age=_ONE_YEAR)


# flask-smorest's page at /api/docs loads swagger-ui.css, swagger-ui-bundle.js and
# swagger-ui-standalone-preset.js from OPENAPI_SWAGGER_UI_URL. Swagger UI would also send the
# document to validator.swagger.io for a badge: not from here.
SWAGGER_UI_CONFIG = {"OPENAPI_SWAGGER_UI_URL": ASSETS_URL, "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None}}

"""URLs of the one Django site: admin, the annotation app and its API, the job API, health.

The API docs (Swagger UI and Redoc, served from drf-spectacular-sidecar's static files) are pages: a signed-out
visitor is sent to the login page. The schema itself stays an API resource (401 without credentials).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

admin.site.site_header = "fsml administration"
admin.site.site_title = "fsml admin"
admin.site.index_title = "Records"

# In the product layout (and so with its navigation), each from the app's own static files.
swagger = SpectacularSwaggerView.as_view(url_name="api-schema", template_name="annotation/api_docs.html")
redoc = SpectacularRedocView.as_view(url_name="api-schema", template_name="annotation/api_redoc.html")

handler404 = "fsml.api.not_found"
handler500 = "fsml.middleware.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="annotation/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", login_required(swagger), name="api-docs"),
    path("api/redoc/", login_required(redoc), name="api-redoc"),
    path("", include("serving.urls")),
    path("", include("crawler.urls")),
    path("", include("evaluation.urls")),
    path("", include("annotation.urls")),
]

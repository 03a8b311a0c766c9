from __future__ import annotations

from django.urls import path

from crawler import views

urlpatterns = [
    path("crawls/", views.job_list, name="crawl-jobs"),
    path("api/crawls/", views.CrawlJobList.as_view(), name="api-crawl-jobs"),
]

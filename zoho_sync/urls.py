from django.urls import path

from zoho_sync import views

urlpatterns = [
    path("zoho/webhooks/", views.zoho_webhook, name="zoho_webhook"),
]

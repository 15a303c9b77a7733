from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    """Sends newcomers on to set their home location once their e-mail address is confirmed."""

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        return reverse("neighborhoods:home_location")

    def get_email_verification_redirect_url(self, email_address) -> str:
        return reverse("neighborhoods:home_location")

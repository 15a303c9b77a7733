from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """Sends people to their profile after e-mail confirmation, where they set their home."""

    def get_email_verification_redirect_url(self, email_address):
        from django.urls import reverse

        return reverse("neighborhoods:home_location")

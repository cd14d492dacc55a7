import secrets

import factory

from tenants.models import Tenant, WixApp


def random_secret() -> str:
    return secrets.token_urlsafe(32)


class WixAppFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WixApp

    name = factory.Sequence(lambda n: f"Agency app {n}")
    app_id = factory.Faker("uuid4")
    app_secret = factory.LazyFunction(random_secret)


class TenantFactory(factory.django.DjangoModelFactory):
    """A tenant reached with an API key; `oauth=True` gives a Wix app instance instead."""

    class Meta:
        model = Tenant

    class Params:
        oauth = factory.Trait(
            wix_app=factory.SubFactory(WixAppFactory),
            instance_id=factory.Faker("uuid4"),
            api_key="",
        )

    name = factory.Sequence(lambda n: f"Client site {n}")
    site_id = factory.Faker("uuid4")
    api_key = factory.LazyFunction(random_secret)

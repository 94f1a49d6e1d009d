from __future__ import annotations

import factory

from portal.models import Delegation, Membership, Organization, User
from portal.policy import Scope

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Customer {n} Ltda")
    address = "Rua Augusta 500\nSão Paulo"
    country = "BR"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.ADMIN


class PartnerFactory(OrganizationFactory):
    name = factory.Sequence(lambda n: f"Channel Partner {n} S.A.")
    kind = Organization.Kind.PARTNER


class DelegationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delegation

    customer = factory.SubFactory(OrganizationFactory)
    partner = factory.SubFactory(PartnerFactory)
    scopes = factory.LazyFunction(lambda: [scope.value for scope in Scope])
    status = Delegation.Status.ACTIVE

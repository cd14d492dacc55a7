"""The admin site's own pages answer bad input with 404s, not server errors."""

import pytest
from django.contrib.contenttypes.models import ContentType

from connections.models import Job

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("object_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_view_on_site_with_a_bad_or_unknown_id_is_a_404(admin_client, object_id):
    content_type = ContentType.objects.get_for_model(Job)

    response = admin_client.get(f"/admin/r/{content_type.pk}/{object_id}/")

    assert response.status_code == 404

import pytest

from tests.conftest import DEMO_PASSWORDS

ADMIN_PAGES = [
    "/admin/",
    "/admin/org/township/",
    "/admin/org/grid/",
    "/admin/org/department/",
    "/admin/org/department/add/",
    "/admin/org/device/",
    "/admin/org/user/",
    "/admin/org/responsibility/",
    "/admin/org/category/",
    "/admin/streams/deadletter/",
    "/admin/streams/gridreport/",
    "/admin/alerts/alert/",
    "/admin/alerts/delivery/",
    "/admin/alerts/alertrule/",
    "/admin/alerts/alertrule/add/",
    "/admin/org/apitoken/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_render_for_the_administrator(client, demo, path):
    client.login(username="admin", password=DEMO_PASSWORDS["admin"])
    assert client.get(path).status_code == 200


@pytest.mark.django_db
def test_admin_is_closed_to_a_duty_officer(client, demo):
    client.login(username="duty", password=DEMO_PASSWORDS["duty"])
    response = client.get("/admin/org/device/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]

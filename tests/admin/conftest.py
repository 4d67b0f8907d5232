import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

CHANGELIST = "/admin/events/{}/"


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, *, perms: tuple[str, ...] = (), groups: tuple[str, ...] = (), staff: bool = True):
        user = django_user_model.objects.create_user(
            username, f"{username}@example.com", "pw", is_staff=staff
        )
        if perms:
            user.user_permissions.add(
                *Permission.objects.filter(content_type__app_label="events", codename__in=perms)
            )
        for name in groups:
            user.groups.add(Group.objects.get(name=name))
        return user

    return make


@pytest.fixture
def login():
    def as_user(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return as_user


VIEW_PERMS = tuple(
    f"view_{m}"
    for m in (
        "delivery",
        "repository",
        "owner",
        "testcase",
        "testcaseowner",
        "statuschange",
        "monitor",
        "monitorevent",
        "monitorstate",
        "investigation",
        "investigationfact",
        "quarantinechange",
        "triageevent",
        "ownertarget",
    )
)


@pytest.fixture
def triager(make_user):
    return make_user("tri", groups=("triager",))


@pytest.fixture
def viewer(make_user):
    """Staff with only "view" permissions."""
    return make_user("viewer", perms=VIEW_PERMS)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # admin_client and make_user hash a password per test: the default hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

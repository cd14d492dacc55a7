from portal.checks import check_secret_key


def test_placeholder_secret_key_is_an_error_without_debug(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = settings.INSECURE_DEV_SECRET_KEY

    assert [e.id for e in check_secret_key()] == ["portal.E001"]


def test_real_secret_key_or_debug_passes(settings):
    settings.DEBUG = True
    settings.SECRET_KEY = settings.INSECURE_DEV_SECRET_KEY
    assert check_secret_key() == []

    settings.DEBUG = False
    settings.SECRET_KEY = "a-long-random-production-key-0123456789"
    assert check_secret_key() == []
